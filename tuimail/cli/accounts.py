"""``tuimail accounts``: list, add, edit, remove and test profiles."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from tuimail.cli import exitcodes
from tuimail.cli.common import (
    AUTH_CHOICES,
    AUTH_HELP,
    CLIError,
    add_secret_command_options,
    password_for,
    read_password,
    run_session_command,
    running_sandbox,
    saved_profile,
    secret_command_overrides,
)
from tuimail.console import terminal_json
from tuimail.errors import NotFound
from tuimail.terminal_text import escape_controls

if TYPE_CHECKING:
    from tuimail.credentials import Secret
    from tuimail.oauth.providers import ClientApp, Provider
    from tuimail.oauth.tokens import Tokens
    from tuimail.profiles import Profile


def define_options(accounts: argparse.ArgumentParser) -> None:
    accounts.description = "With no action, lists the profiles (as 'tuimail accounts list')."
    account_commands = accounts.add_subparsers(
        dest="accounts_command", metavar="ACTION", required=False
    )
    accounts.set_defaults(handler=cmd_accounts_list, json=False)
    listing = account_commands.add_parser("list", help="list profiles")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_accounts_list)
    add = account_commands.add_parser("add", help="add a profile (password to the OS keyring)")
    add.add_argument("name")
    _add_profile_options(add, required_host=True)
    add.set_defaults(handler=cmd_accounts_add)
    edit = account_commands.add_parser("edit", help="change a profile")
    edit.add_argument("name")
    edit.add_argument("--rename", metavar="NEW_NAME")
    _add_profile_options(edit, required_host=False)
    edit.set_defaults(handler=cmd_accounts_edit)
    remove = account_commands.add_parser("remove", help="remove a profile and its keyring entry")
    remove.add_argument("name")
    remove.set_defaults(handler=cmd_accounts_remove)
    test = account_commands.add_parser(
        "test",
        help="connect, TLS, AUTH and QUIT; no mail is sent",
        epilog=exitcodes.test_help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    test.add_argument("name")
    test.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    test.add_argument("--json", action="store_true", help="the transcript as JSON Lines")
    test.set_defaults(handler=cmd_accounts_test)
    login = account_commands.add_parser(
        "login",
        help="sign in with OAuth 2.0 and keep the refresh token in the keyring",
        description="Sign in at the profile's OAuth provider (docs/oauth.md): in the browser, "
        "which comes back to a one-shot listener on 127.0.0.1, or with --device by a code "
        "entered on another device. Only the refresh token is kept, in the OS keyring.",
        epilog=exitcodes.login_help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    login.add_argument("name")
    login.add_argument(
        "--device",
        action="store_true",
        help="show a code to enter on another device (no browser needed here; not Google)",
    )
    login.add_argument(
        "--no-browser",
        action="store_true",
        help="print the sign-in address instead of opening a browser",
    )
    login.add_argument(
        "--port",
        type=_port,
        default=0,
        help="listen for the browser on this port of 127.0.0.1 (one forwarded over SSH); "
        "default: a random free port",
    )
    login.set_defaults(handler=cmd_accounts_login)


def _add_profile_options(parser: argparse.ArgumentParser, *, required_host: bool) -> None:
    parser.add_argument("--host", required=required_host, help="the SMTP server's name")
    parser.add_argument(
        "--port", type=int, help="its port (default: 465 for tls, 587 for starttls, 25 for none)"
    )
    parser.add_argument(
        "--security",
        choices=["tls", "starttls", "none"],
        help="TLS from the start, STARTTLS, or none (default starttls)",
    )
    parser.add_argument("--user", dest="username", help="the AUTH user name (none: no AUTH)")
    parser.add_argument(
        "--from", dest="from_address", metavar="ADDR", help="the From address of your mail"
    )
    parser.add_argument("--display-name", help="the name shown with From")
    parser.add_argument("--auth", dest="auth_mechanism", choices=AUTH_CHOICES, help=AUTH_HELP)
    verify = parser.add_mutually_exclusive_group()
    verify.add_argument(
        "--no-verify",
        dest="verify_tls",
        action="store_false",
        default=None,
        help="do not check the server's certificate (tests only)",
    )
    verify.add_argument(
        "--verify", dest="verify_tls", action="store_true", help="check it (the default)"
    )
    parser.add_argument("--ca-file", help="trust the CA certificates in this PEM file")
    plain = parser.add_mutually_exclusive_group()
    plain.add_argument(
        "--allow-plaintext-auth",
        dest="allow_plaintext_auth",
        action="store_true",
        default=None,
        help="let AUTH send the password without TLS",
    )
    plain.add_argument(
        "--deny-plaintext-auth",
        dest="allow_plaintext_auth",
        action="store_false",
        help="never send the password without TLS (the default)",
    )
    parser.add_argument(
        "--timeout", type=float, help="seconds to wait for each server reply (default 30)"
    )
    parser.add_argument("--ehlo-name", help="the name given in EHLO (default: this machine's)")
    password = parser.add_mutually_exclusive_group()
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    password.add_argument(
        "--no-password", action="store_true", help="do not ask for a password now"
    )
    add_secret_command_options(password)
    ask = parser.add_mutually_exclusive_group()
    ask.add_argument(
        "--ask-at-send",
        dest="ask_at_send",
        action="store_true",
        default=None,
        help="keep no password: ask for it at each send (the app in a dialog, the command "
        "line on the terminal or with --password-stdin); not with a command or OAuth",
    )
    if not required_host:  # edit: a way back to the keyring (or to a command, or OAuth)
        ask.add_argument(
            "--no-ask-at-send",
            dest="ask_at_send",
            action="store_false",
            help="stop asking at each send: the password comes from the keyring again "
            "(give it with --password-stdin) unless a command or OAuth is set",
        )
    oauth = parser.add_argument_group("OAuth 2.0 sign-in (docs/oauth.md)")
    oauth.add_argument(
        "--oauth-provider",
        choices=["google", "microsoft", "custom"],
        help="sign in at this provider with 'tuimail accounts login NAME'",
    )
    oauth.add_argument(
        "--oauth-client-id", metavar="ID", help="the client id of the app you registered"
    )
    oauth.add_argument(
        "--oauth-client-secret-stdin",
        action="store_true",
        help="read the app's client secret (Google's, or a custom provider's) from stdin, "
        "into the keyring",
    )
    oauth.add_argument(
        "--oauth-authorize-url", metavar="URL", help="custom: authorization endpoint"
    )
    oauth.add_argument("--oauth-token-url", metavar="URL", help="custom: token endpoint")
    oauth.add_argument(
        "--oauth-device-url", metavar="URL", help="custom: device authorization endpoint"
    )
    oauth.add_argument("--oauth-scope", metavar="SCOPE", help="custom: the scope for sending mail")


def cmd_accounts_list(args: argparse.Namespace) -> int:
    """The saved profiles, then the built-in ``sandbox`` the app also offers.

    The sandbox is listed (marked built-in, ``"builtin": true`` in JSON)
    unless a saved profile takes its name, as in the app; its address is
    the running sandbox's, if one runs.
    """
    from tuimail.profiles import ProfileStore, ProfileStoreError
    from tuimail.sandbox_profile import SANDBOX_PROFILE, builtin_profile, find_running

    try:
        profiles = ProfileStore().load()
    except ProfileStoreError as exc:
        raise CLIError(str(exc)) from None
    sandbox = None
    if SANDBOX_PROFILE not in profiles:
        sandbox = find_running() or builtin_profile()
    if args.json:
        records = [
            {**p.to_json(), "warnings": _warnings(p), "builtin": False} for p in profiles.values()
        ]
        if sandbox is not None:
            records.append({**sandbox.to_json(), "warnings": [], "builtin": True})
        print(terminal_json(records, indent=2))
        return exitcodes.OK
    names = [*profiles, *([sandbox.name] if sandbox else [])]
    width = max(len(name) for name in names) if names else 0
    for profile in profiles.values():
        user = profile.username or "(no login)"
        line = f"{profile.name:<{width}}  {profile.address:<28} {profile.security.label:<8} {user}"
        if profile.from_address:
            line += f"  from {profile.from_address}"
        # profiles.toml is a file anyone may have edited: its text is escaped.
        print(escape_controls(line))
        for warning in _warnings(profile):
            print(escape_controls(f"{'':<{width}}  ! {warning}"))
    if sandbox is not None:
        where = sandbox.address if sandbox.port else "started when first used"
        print(f"{sandbox.name:<{width}}  {where:<28} {'built-in':<8} local capture server")
    if not profiles:
        print("No profiles of your own yet. Add one with: tuimail accounts add NAME --host HOST")
    return exitcodes.OK


def _builtin_sandbox(name: str, doing: str) -> None:
    """Refuse, in true words, to ``doing`` the built-in ``sandbox`` (it is in no file).

    ``accounts list`` shows it; without this, edit and remove would answer
    that no profile of that name exists. A saved profile named ``sandbox``
    replaces the built-in one and is handled as any other.
    """
    from tuimail.profiles import ProfileStore, ProfileStoreError
    from tuimail.sandbox_profile import SANDBOX_PROFILE

    if name != SANDBOX_PROFILE:
        return
    try:
        if SANDBOX_PROFILE in ProfileStore().load():
            return
    except ProfileStoreError:
        return  # the command's own reading of the file says what is wrong
    raise CLIError(
        f"'{SANDBOX_PROFILE}' is the built-in profile of the local capture server, not a "
        f"saved one: it cannot be {doing} ('tuimail accounts add {SANDBOX_PROFILE} ...' "
        "saves a profile that takes its place)"
    )


def _warnings(profile: Profile) -> list[str]:
    """The profile's warnings in the command line's words: a secret in the file
    names the command that moves it to the keyring."""
    return [
        warning.words(f"tuimail accounts edit {warning.profile} --password-stdin")
        for warning in profile.warnings()
    ]


def _profile_changes(args: argparse.Namespace) -> dict[str, object]:
    """The options given, by profile field: values still to be checked by ``with_changes``."""
    keys = (
        "host",
        "port",
        "security",
        "username",
        "from_address",
        "display_name",
        "auth_mechanism",
        "verify_tls",
        "ca_file",
        "allow_plaintext_auth",
        "timeout",
        "ehlo_name",
    )
    changes = {key: getattr(args, key) for key in keys if getattr(args, key, None) is not None}
    changes = {**changes, **secret_command_overrides(args), **_oauth_changes(args)}
    ask_at_send = getattr(args, "ask_at_send", None)
    if ask_at_send is not None:
        # Given with a command or OAuth, the profile's own check refuses it in words.
        changes["ask_at_send"] = ask_at_send
    elif any(changes.get(key) for key in ("password_command", "token_command", "oauth_provider")):
        # Choosing another source for the secret stops the asking, as in the app.
        changes["ask_at_send"] = False
    return changes


def _oauth_changes(args: argparse.Namespace) -> dict[str, object]:
    """The OAuth options given, by profile field.

    A profile that signs in with OAuth takes no secret command: setting
    ``--oauth-provider`` clears one (unless one is given too, which the
    profile's check then refuses in words). Choosing a preset drops a custom
    provider's endpoints and scope.
    """
    from tuimail.profiles import OAUTH_FIELDS

    changes: dict[str, object] = {}
    for name in OAUTH_FIELDS:
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    if changes.get("oauth_provider") and not secret_command_overrides(args):
        changes.update(password_command="", token_command="")
    if changes.get("oauth_provider") in ("google", "microsoft"):
        # A preset has its own endpoints and scope: a custom provider's are dropped.
        for name in ("oauth_authorize_url", "oauth_token_url", "oauth_device_url", "oauth_scope"):
            changes.setdefault(name, "")
    return changes


def _port(text: str) -> int:
    """An argparse type: a port from 1 to 65535 (or 0, for a random one)."""
    if not (text.isascii() and text.isdigit() and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def _client_secret(args: argparse.Namespace) -> Secret | None:
    """``--oauth-client-secret-stdin``: the client secret from the first line of stdin."""
    if not getattr(args, "oauth_client_secret_stdin", False):
        return None
    if getattr(args, "password_stdin", False):
        raise CLIError(
            "--password-stdin and --oauth-client-secret-stdin both read standard input: "
            "give one at a time",
            exitcodes.USAGE,
        )
    return read_password(True, "")


#: This command's own ways around a keyring that refuses (the keyring's fix comes first).
_WITHOUT_A_KEYRING = (
    " Or, with this command: --password-command CMD (the profile runs it at each send), or"
    " no password stored at all, given at each send instead (tuimail send --password-stdin)."
)


def cmd_accounts_add(args: argparse.Namespace) -> int:
    from tuimail.accounts import save_account
    from tuimail.credentials import KeyringError
    from tuimail.profiles import (
        Profile,
        ProfileError,
        ProfileStore,
        ProfileStoreError,
        with_changes,
    )

    store = ProfileStore()
    try:
        changes = _profile_changes(args)
        host = str(changes.pop("host"))
        profile = with_changes(Profile(name=args.name, host=host), **changes)
        if args.name in store.load():
            raise CLIError(
                f"a profile named {args.name!r} already exists; use 'tuimail accounts edit'"
            )
        client_secret = _client_secret(args)
        _check_client_secret(profile, client_secret)
        if profile.ask_at_send and args.password_stdin:
            raise CLIError(
                "--ask-at-send keeps no password: give it at each send "
                "(tuimail send --password-stdin), not now"
            )
        secret = None
        if profile.secret_in_keyring and not args.no_password:
            secret = read_password(args.password_stdin, f"Password for {profile.username}: ")
        warnings = save_account(profile, password=secret, client_secret=client_secret, store=store)
    except KeyringError as exc:
        raise CLIError(f"{exc}{_WITHOUT_A_KEYRING}") from None
    except (ProfileError, ProfileStoreError) as exc:
        raise CLIError(str(exc)) from None
    return _report("Added", profile, warnings)


def cmd_accounts_edit(args: argparse.Namespace) -> int:
    """Checks first, the profile file next, the keyring last (see :mod:`tuimail.accounts`)."""
    from tuimail.accounts import save_account
    from tuimail.credentials import KeyringError
    from tuimail.profiles import ProfileError, ProfileStore, ProfileStoreError, with_changes

    _builtin_sandbox(args.name, "edited")
    store = ProfileStore()
    try:
        old = store.get(args.name)
        changes = _profile_changes(args)
        if args.rename:
            changes["name"] = args.rename
        profile = with_changes(old, **changes)
        client_secret = _client_secret(args)
        _check_client_secret(profile, client_secret)
        if profile.ask_at_send and args.password_stdin:
            raise CLIError(
                "the profile asks for its password at each send and keeps none: "
                "give --no-ask-at-send to store one"
            )
        new_secret = read_password(True, "") if args.password_stdin else None
        warnings = save_account(
            profile,
            original_name=old.name,
            password=new_secret,
            client_secret=client_secret,
            store=store,
        )
    except NotFound as exc:
        raise CLIError(str(exc)) from None
    except KeyringError as exc:
        raise CLIError(f"{exc}{_WITHOUT_A_KEYRING}") from None
    except (ProfileError, ProfileStoreError) as exc:
        raise CLIError(str(exc)) from None
    return _report("Saved", profile, warnings)


def _check_client_secret(profile: Profile, client_secret: Secret | None) -> None:
    """A client secret only for a profile that signs in with OAuth."""
    if client_secret is not None and not profile.uses_oauth:
        raise CLIError(
            "--oauth-client-secret-stdin is for a profile that signs in with OAuth: "
            "give --oauth-provider too",
            exitcodes.USAGE,
        )


def _report(done: str, profile: Profile, leftovers: list[str]) -> int:
    """What was saved, what is unsafe about it, and what the keyring kept behind."""
    print(
        escape_controls(
            f"{done} profile {profile.name} ({profile.address}, {profile.security.label})."
        )
    )
    for warning in _warnings(profile):
        print(escape_controls(f"Warning: {warning}"))
    for leftover in leftovers:
        print(escape_controls(f"tuimail: {leftover}"), file=sys.stderr)
    if profile.uses_oauth and done == "Added":
        print(escape_controls(f"Sign in with: tuimail accounts login {profile.name}"))
    return exitcodes.OK


def cmd_accounts_remove(args: argparse.Namespace) -> int:
    from tuimail.accounts import remove_account
    from tuimail.credentials import KeyringError
    from tuimail.profiles import ProfileStoreError

    _builtin_sandbox(args.name, "removed")
    try:
        profile, removed_secret = remove_account(args.name)
    except NotFound as exc:
        raise CLIError(str(exc)) from None
    except ProfileStoreError as exc:
        raise CLIError(str(exc)) from None
    except KeyringError as exc:
        print(
            escape_controls(f"tuimail: the profile is removed, but its password was not: {exc}"),
            file=sys.stderr,
        )
        return exitcodes.CONFIG
    kept = "sign-in" if profile.uses_oauth else "password"
    suffix = f" and its {kept}" if removed_secret else ""
    print(escape_controls(f"Removed profile {profile.name}{suffix}."))
    return exitcodes.OK


def _testable_profile(name: str) -> Profile:
    """A saved profile to test; an unknown name is refused with the profiles there are.

    The built-in sandbox can be tested too, so it is listed, in the launcher's
    words (``tuimail --profile``): one listing wherever a profile is asked for
    by a name the sandbox may answer to. The exit code stays this command's.
    """
    from tuimail.cli import check_app_profile

    try:
        check_app_profile(name)
    except CLIError as exc:
        exc.code = exitcodes.CONFIG
        raise
    return saved_profile(name)


def cmd_accounts_test(args: argparse.Namespace) -> int:
    from tuimail.session import check_account

    profile = running_sandbox(args.name, "test") or _testable_profile(args.name)
    password = password_for(profile, args.password_stdin, saved=True)
    args.quiet = False
    return run_session_command(
        args, lambda printer: check_account(profile, password, on_entry=printer)
    )


def cmd_accounts_login(args: argparse.Namespace) -> int:
    """Sign in at the profile's provider; exit 0 once the refresh token is in the keyring.

    The browser flow waits on a one-shot listener on 127.0.0.1; the device
    flow polls until the code was approved. What the provider says is
    escaped; no token is ever printed.
    """
    from tuimail.credentials import KeyringError
    from tuimail.oauth.errors import (
        OAuthError,
        SignInDenied,
        SignInTimedOut,
        StateMismatch,
    )
    from tuimail.oauth_account import OAuthSecrets, client_for, provider_for

    _builtin_sandbox(args.name, "signed in")
    profile = saved_profile(args.name)
    if not profile.uses_oauth:
        raise CLIError(
            f"the profile {profile.name!r} does not sign in with OAuth: give it a provider "
            f"and client id first ('tuimail accounts edit {profile.name} --oauth-provider "
            "google|microsoft|custom --oauth-client-id ID', docs/oauth.md)"
        )
    if args.device and (args.no_browser or args.port):
        raise CLIError(
            "--device shows a code to enter elsewhere: it takes neither --no-browser nor --port",
            exitcodes.USAGE,
        )
    secrets = OAuthSecrets()
    try:
        provider = provider_for(profile)
        if args.device and provider.device_url is None:
            raise CLIError(_no_device_words(profile), exitcodes.USAGE)
        client = client_for(profile, secrets)
    except KeyringError as exc:
        raise CLIError(str(exc)) from None
    except OAuthError as exc:
        raise CLIError(str(exc)) from None
    try:
        if args.device:
            tokens = _device_sign_in(provider, client)
        else:
            tokens = _browser_sign_in(profile, provider, client, args)
    except SignInDenied as exc:
        raise CLIError(str(exc), exitcodes.SIGN_IN_DENIED) from None
    except SignInTimedOut as exc:
        raise CLIError(str(exc), exitcodes.SIGN_IN_TIMED_OUT) from None
    except StateMismatch as exc:
        raise CLIError(str(exc), exitcodes.SIGN_IN_WRONG_STATE) from None
    except OAuthError as exc:
        raise CLIError(f"the sign-in did not work: {exc}", exitcodes.SIGN_IN_FAILED) from None
    if tokens.refresh_token is None:
        raise CLIError(
            "the provider signed you in but gave no refresh token, so tuimail cannot send "
            "later without a new sign-in; for a custom provider, the scope usually needs "
            "offline_access (docs/oauth.md)",
            exitcodes.SIGN_IN_FAILED,
        )
    try:
        secrets.store_refresh_token(profile.name, tokens.refresh_token)
    except KeyringError as exc:
        raise CLIError(f"signed in, but the sign-in could not be kept: {exc}") from None
    print(
        escape_controls(
            f"Signed in: the refresh token for {profile.name} is in the keyring. "
            f"'tuimail accounts test {profile.name}' checks it with the server."
        )
    )
    return exitcodes.OK


def _no_device_words(profile: Profile) -> str:
    if profile.oauth_provider == "google":
        return (
            "Google does not give mail access through the device sign-in (--device). Over "
            "SSH, forward a port and sign in with the browser on your own machine: "
            "'ssh -L 8765:127.0.0.1:8765 HOST', then 'tuimail accounts login "
            f"{profile.name} --no-browser --port 8765' (docs/oauth.md, Google over SSH)"
        )
    return (
        f"the profile {profile.name!r} has no device endpoint: add the provider's with "
        f"'tuimail accounts edit {profile.name} --oauth-device-url URL', or sign in "
        "with the browser (without --device)"
    )


def _has_display() -> bool:
    """Whether a browser can open a window here: never a text browser in this terminal."""
    import os

    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _browser_sign_in(
    profile: Profile, provider: Provider, client: ClientApp, args: argparse.Namespace
) -> Tokens:
    from tuimail.oauth.flows import BROWSER_TIMEOUT, BrowserSignIn

    try:
        signing_in = BrowserSignIn(provider, client, port=args.port, login_hint=profile.username)
    except OSError as exc:
        where = f"port {args.port} of 127.0.0.1" if args.port else "a port of 127.0.0.1"
        raise CLIError(
            f"cannot listen for the browser on {where}: {exc.strerror or exc}"
            + ("; choose another --port" if args.port else ""),
        ) from None
    with signing_in:
        opened = False
        if not args.no_browser and _has_display():
            import webbrowser

            try:
                opened = webbrowser.open(signing_in.url)
            except webbrowser.Error:
                opened = False
        minutes = BROWSER_TIMEOUT / 60
        if opened:
            print("Sign in in the browser window that opened. If none did, open this address:")
        else:
            print("Open this address in a browser, sign in and allow access:")
        # On a line of its own: a script (or a person with a mouse) takes it whole.
        print(signing_in.url, flush=True)
        print(
            f"Waiting up to {minutes:.0f} minutes for the browser to come back to "
            f"{signing_in.redirect_uri} (Ctrl-C stops).",
            flush=True,
        )
        return signing_in.finish()


def _device_sign_in(provider: Provider, client: ClientApp) -> Tokens:
    from tuimail.oauth.flows import DeviceCode, sign_in_with_device

    def show(code: DeviceCode) -> None:
        # The provider chose these: checked printable and bounded by the core, escaped here.
        print(f"Open {escape_controls(code.verification_uri)} on any device")
        print(f"and enter the code: {escape_controls(code.user_code)}")
        if code.verification_uri_complete:
            print(
                "(or open this address, with the code in it: "
                f"{escape_controls(code.verification_uri_complete)})"
            )
        print(
            f"Waiting up to {code.expires_in / 60:.0f} minutes for the approval (Ctrl-C stops).",
            flush=True,
        )

    return sign_in_with_device(provider, client, show)
