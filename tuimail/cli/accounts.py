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
    saved_profile,
    secret_command_overrides,
)
from tuimail.console import terminal_json
from tuimail.errors import NotFound
from tuimail.terminal_text import escape_controls

if TYPE_CHECKING:
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
        epilog=exitcodes.help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    test.add_argument("name")
    test.add_argument("--password-stdin", action="store_true")
    test.add_argument("--json", action="store_true")
    test.set_defaults(handler=cmd_accounts_test)


def _add_profile_options(parser: argparse.ArgumentParser, *, required_host: bool) -> None:
    parser.add_argument("--host", required=required_host)
    parser.add_argument("--port", type=int)
    parser.add_argument("--security", choices=["tls", "starttls", "none"])
    parser.add_argument("--user", dest="username")
    parser.add_argument("--from", dest="from_address", metavar="ADDR")
    parser.add_argument("--display-name")
    parser.add_argument("--auth", dest="auth_mechanism", choices=AUTH_CHOICES, help=AUTH_HELP)
    verify = parser.add_mutually_exclusive_group()
    verify.add_argument("--no-verify", dest="verify_tls", action="store_false", default=None)
    verify.add_argument("--verify", dest="verify_tls", action="store_true")
    parser.add_argument("--ca-file")
    plain = parser.add_mutually_exclusive_group()
    plain.add_argument(
        "--allow-plaintext-auth", dest="allow_plaintext_auth", action="store_true", default=None
    )
    plain.add_argument("--deny-plaintext-auth", dest="allow_plaintext_auth", action="store_false")
    parser.add_argument("--timeout", type=float)
    parser.add_argument("--ehlo-name")
    password = parser.add_mutually_exclusive_group()
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    password.add_argument(
        "--no-password", action="store_true", help="do not ask for a password now"
    )
    add_secret_command_options(password)


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
    return {**changes, **secret_command_overrides(args)}


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
        secret = None
        if profile.needs_password and not args.no_password:
            secret = read_password(args.password_stdin, f"Password for {profile.username}: ")
        warnings = save_account(profile, password=secret, store=store)
    except (ProfileError, ProfileStoreError, KeyringError) as exc:
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
        new_secret = read_password(True, "") if args.password_stdin else None
        warnings = save_account(profile, original_name=old.name, password=new_secret, store=store)
    except NotFound as exc:
        raise CLIError(str(exc)) from None
    except (ProfileError, ProfileStoreError, KeyringError) as exc:
        raise CLIError(str(exc)) from None
    return _report("Saved", profile, warnings)


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
    suffix = " and its password" if removed_secret else ""
    print(escape_controls(f"Removed profile {profile.name}{suffix}."))
    return exitcodes.OK


def _running_sandbox(name: str) -> Profile | None:
    """The running built-in sandbox, when ``name`` is it; refused in words if none runs."""
    from tuimail.sandbox_profile import SANDBOX_PROFILE, find_running

    if name != SANDBOX_PROFILE:
        return None
    try:
        _builtin_sandbox(name, "tested")
    except CLIError:
        running = find_running()
        if running is None:
            raise CLIError(
                f"'{SANDBOX_PROFILE}' is the built-in sandbox and none is running: "
                "start it with 'tuimail serve' (or the app), then test it"
            ) from None
        return running
    return None


def cmd_accounts_test(args: argparse.Namespace) -> int:
    from tuimail.session import check_account

    profile = _running_sandbox(args.name) or saved_profile(args.name)
    password = password_for(profile, args.password_stdin, saved=True)
    args.quiet = False
    return run_session_command(
        args, lambda printer: check_account(profile, password, on_entry=printer)
    )
