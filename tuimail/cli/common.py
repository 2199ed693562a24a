"""What several commands share: the CLI's error, passwords, profiles, sessions."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, TypeVar

from tuimail.cli import exitcodes
from tuimail.errors import NotFound, TuimailError

if TYPE_CHECKING:
    from tuimail.console import EntryPrinter
    from tuimail.credentials import Secret
    from tuimail.outbox import RetryPolicy
    from tuimail.profiles import Profile
    from tuimail.session import Remedy, SessionReport

T = TypeVar("T")


class CLIError(TuimailError):
    """A problem to report in one line, with its exit code."""

    def __init__(self, message: str, code: int = exitcodes.CONFIG) -> None:
        from tuimail.terminal_text import escape_controls

        # Messages quote file names, server and DNS text: never raw on a terminal.
        super().__init__(escape_controls(message, keep_newlines=True))
        self.code = code


# -- helpers ------------------------------------------------------------------


#: Longer than any password, and than the largest OAuth2 access tokens (a few KiB).
MAX_SECRET_CHARS = 64 * 1024


def read_password(from_stdin: bool, prompt: str) -> Secret:
    from tuimail.credentials import Secret

    if from_stdin:
        # Bounded: `--password-stdin < /dev/zero` must end in an error, not eat memory.
        line = sys.stdin.readline(MAX_SECRET_CHARS + 1)
        value = line.rstrip("\r\n")
        if len(value) > MAX_SECRET_CHARS:
            raise CLIError(
                f"the first line of standard input is longer than {MAX_SECRET_CHARS:,} "
                "characters; that is not a password or token"
            )
        if "\0" in value:
            raise CLIError("the password read from standard input contains a NUL character")
    elif sys.stdin.isatty():
        import getpass

        from tuimail.terminal_text import escape_controls

        # The prompt names a user and host from profiles.toml, written raw to the tty.
        value = getpass.getpass(escape_controls(prompt))
    else:
        raise CLIError(
            "a password is needed: use --password-stdin, or run in a terminal to be asked"
        )
    if not value:
        raise CLIError("the password is empty")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        # Bytes that are not UTF-8 arrive as surrogates (surrogateescape); a
        # password must be text, and encoding one for the transcript's
        # redaction would otherwise end the command in a traceback.
        raise CLIError("the password is not valid UTF-8 text")
    return Secret(value)


#: Longest timeout or deadline the command line takes.
MAX_SECONDS = 86_400


def seconds(text: str) -> float:
    """An argparse type: seconds above 0 and at most a day (a session timeout or deadline).

    ``float`` alone takes ``nan``, ``inf`` and ``-1``: a probe with ``--timeout inf``
    (or ``1e308``) waited on a silent server for ever, and ``--deadline nan``
    stopped every send at once.
    """
    value = _seconds(text, allow_zero=False)
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r}: at most {MAX_SECONDS:,} seconds (a day)")
    return value


def threshold_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, 0 or more (a warning threshold)."""
    return _seconds(text, allow_zero=True)


def _seconds(text: str, *, allow_zero: bool) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        least = "0 or more" if allow_zero else "more than 0"
        raise argparse.ArgumentTypeError(f"{text!r}: a finite number of seconds, {least}")
    return value


def split_server(text: str, option: str = "--server") -> tuple[str, int]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    # isdigit() alone accepts "²" and "٣", which int() then refuses or reads as a port.
    if port_text and not (port_text.isascii() and port_text.isdigit() and int(port_text) <= 65535):
        raise CLIError(f"{option}: {port_text!r} is not a port number", exitcodes.USAGE)
    return host, int(port_text or 0)


def saved_profile(name: str) -> Profile:
    from tuimail.profiles import ProfileStore

    return checked(lambda: ProfileStore().get(name))


def running_sandbox(name: str, doing: str) -> Profile | None:
    """The running built-in sandbox when ``name`` is its name and no saved profile has it.

    ``accounts list`` shows the sandbox, so the commands that reach a profile's
    server (``accounts test``, ``probe``) take its name too; it has a server
    only while it runs, which is said in words when it does not.
    """
    from tuimail.profiles import ProfileStore, ProfileStoreError
    from tuimail.sandbox_profile import SANDBOX_PROFILE, find_running

    if name != SANDBOX_PROFILE:
        return None
    try:
        if SANDBOX_PROFILE in ProfileStore().load():
            return None
    except ProfileStoreError:
        return None  # the command's own reading of the file says what is wrong
    running = find_running()
    if running is None:
        raise CLIError(
            f"'{SANDBOX_PROFILE}' is the built-in sandbox and none is running: "
            f"start it with 'tuimail serve' (or the app), then {doing} it"
        )
    return running


def checked(make: Callable[[], T]) -> T:
    """Run a profile operation, turning its errors into one-line CLI errors."""
    from tuimail.profiles import ProfileError, ProfileStoreError

    try:
        return make()
    except (ProfileError, ProfileStoreError) as exc:
        raise CLIError(str(exc)) from None
    except NotFound as exc:
        raise CLIError(str(exc)) from None


#: ``--auth``'s values: tuimail/profiles.py's ``AuthMechanism`` (spelt out: no import at start-up).
AUTH_CHOICES = ["auto", "plain", "login", "cram-md5", "xoauth2", "oauthbearer"]
AUTH_HELP = (
    "SASL mechanism (default auto: for a password PLAIN, LOGIN or CRAM-MD5; "
    "for a token OAUTHBEARER, else XOAUTH2)"
)


def add_secret_command_options(group: argparse._ActionsContainer) -> None:
    """``--password-command`` and ``--token-command``, for send and accounts add/edit."""
    group.add_argument(
        "--password-command",
        metavar="CMD",
        help="run CMD (no shell unless you write sh -c) and use the first line it prints "
        "as the password, at each send",
    )
    group.add_argument(
        "--token-command",
        metavar="CMD",
        help="run CMD at each send and use the first line it prints as an OAuth 2.0 "
        "access token (XOAUTH2 or OAUTHBEARER)",
    )


def secret_command_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The profile fields the command options set: one command replaces the other.

    An empty CMD clears that command.
    """
    password_command = getattr(args, "password_command", None)
    token_command = getattr(args, "token_command", None)
    if token_command is not None:
        return {"token_command": token_command, "password_command": ""}
    if password_command is not None:
        return {"password_command": password_command, "token_command": ""}
    return {}


def password_for(
    profile: Profile, from_stdin: bool, saved: bool, *, run_command: bool = False
) -> Secret | None:
    """Where the password comes from: stdin, the keyring (saved profiles), or a prompt.

    A profile with ``ask_at_send`` keeps none: it is read from the terminal (or
    ``--password-stdin``) each time, never from the keyring.

    A profile whose secret comes from a command, or from its OAuth sign-in,
    gives None: the session runs the command (or gets a fresh access token)
    each time it authenticates, so the outbox's retries do too. With
    ``run_command`` (a caller that authenticates outside a session, the
    probe), that happens now.
    """
    if not profile.username:
        return None
    if from_stdin:
        return read_password(True, "")
    if profile.secret_command:
        return command_secret_now(profile) if run_command else None
    if profile.uses_oauth:
        return oauth_token_now(profile) if run_command else None
    if saved and profile.secret_in_keyring:  # a profile that asks at send time skips it
        from tuimail.credentials import CredentialStore, KeyringError

        try:
            secret = CredentialStore().get(profile.name)
        except KeyringError as exc:
            # The keyring's fix, and this command's own way around it.
            raise CLIError(
                f"{exc} Or give the password on standard input with --password-stdin."
            ) from None
        if secret is not None:
            return secret
    return read_password(False, f"Password for {profile.username} at {profile.host}: ")


def command_secret_now(profile: Profile) -> Secret | None:
    """The secret the profile's command prints, or its failure as the CLI's error."""
    from tuimail.secret_command import SecretCommandError, command_secret

    try:
        return command_secret(profile)
    except SecretCommandError as exc:
        raise CLIError(str(exc), exitcodes.CONFIG) from None


def oauth_token_now(profile: Profile) -> Secret:
    """A fresh access token from the profile's stored sign-in, or why not as the CLI's error.

    A sign-in that is missing or no longer works exits with its own code
    (:data:`~tuimail.cli.exitcodes.SIGN_IN_NEEDED`), its words naming the
    command that signs in.
    """
    from tuimail.credentials import KeyringError
    from tuimail.oauth.errors import OAuthError, SignInAgain
    from tuimail.oauth_account import NotSignedIn, account_token

    try:
        return account_token(profile)
    except (NotSignedIn, SignInAgain) as exc:
        raise CLIError(str(exc), exitcodes.SIGN_IN_NEEDED) from None
    except OAuthError as exc:
        raise CLIError(f"no access token from the provider: {exc}") from None
    except KeyringError as exc:
        raise CLIError(str(exc)) from None


def run_session_command(
    args: argparse.Namespace,
    coroutine_factory: Callable[[EntryPrinter | None], Coroutine[object, None, SessionReport]],
) -> int:
    from tuimail.console import EntryPrinter, print_json, summarise

    printer = None if args.quiet else EntryPrinter(as_json=args.json)
    report = asyncio.run(coroutine_factory(printer))
    if args.json:
        print_json({"result": report.to_json()})
    if not args.json or args.quiet:
        # A --server session has no profile to change: its remedies are this command's flags.
        summarise(report, remedies=flag_remedies() if getattr(args, "server", None) else None)
    if report.failure is not None:
        if report.failure.needs_sign_in:
            return exitcodes.SIGN_IN_NEEDED
        return exitcodes.for_stage(report.failure.stage)
    if report.delivery is not None and report.delivery.refused:
        return exitcodes.PARTIAL
    return exitcodes.OK


def flag_remedies() -> dict[Remedy, str]:
    """The session's remedies as the connection flags of ``tuimail send``.

    The session words a remedy as a profile's setting; a ``--server`` send
    has no profile to change, only these flags to give again.
    """
    from tuimail.session import Remedy

    return {
        Remedy.CA_FILE: (
            "give its CA certificate with --ca-file PATH to trust it, if you know this server"
        ),
        Remedy.IMPLICIT_TLS: "try --security tls",
        Remedy.STARTTLS: "try --security starttls",
        Remedy.ENCRYPT_OR_ALLOW_PLAINTEXT: (
            "use --security tls or starttls, or allow it with --allow-plaintext-auth"
        ),
        Remedy.AUTH_MECHANISM: "use --auth auto, or a mechanism the server offers",
    }


def retry_policy() -> RetryPolicy:
    """The outbox's retry timing from config.toml; a bad ``[outbox]`` stops the command."""
    from tuimail.user_config import ConfigError
    from tuimail.user_config import retry_policy as configured_policy

    try:
        return configured_policy()
    except ConfigError as exc:
        raise CLIError(str(exc)) from None


def local_time(timestamp: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def settle_imports() -> None:
    """Leave what the imports created out of the collector's passes.

    A long-running command (the app, ``serve``) holds several hundred
    thousand objects from its imports for its whole life. Without this, each
    full collection walks them all again, and the first comes during the
    app's start-up: about 100 ms of its 500 ms to the first screen here.
    """
    gc.freeze()
