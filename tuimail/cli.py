"""Command-line faces of tuimail: one function per subcommand, no business logic.

Heavy modules are imported inside the subcommand that needs them, so
``tuimail send`` never pays for Textual and ``tuimail --help`` is instant.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tuimail import __version__, exitcodes

if TYPE_CHECKING:
    from tuimail.credentials import Secret
    from tuimail.profiles import Profile

T = TypeVar("T")


class CLIError(Exception):
    """A problem to report in one line, with its exit code."""

    def __init__(self, message: str, code: int = exitcodes.CONFIG) -> None:
        super().__init__(message)
        self.code = code


# -- argument parsing ---------------------------------------------------------


def build_parser(define: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The command line, with the options of the commands in ``define`` (default: all).

    Every command is listed either way (for ``tuimail --help``), but defining
    the options of all fifteen parsers costs a scripted ``tuimail send`` more
    than its SMTP session does, so :func:`main` defines only the one it runs.
    """
    parser = argparse.ArgumentParser(
        prog="tuimail",
        description="The SMTP workbench for the terminal. With no command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"tuimail {__version__}")
    parser.add_argument("--profile", help="profile to open the app with")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (summary, define_options) in _COMMANDS.items():
        command = commands.add_parser(name, help=summary)
        if define is None or name in define:
            define_options(command)
    return parser


def _command_in(arguments: Sequence[str]) -> str | None:
    """The command argparse will find in ``arguments``, if it is one of ours.

    Skips the top-level options, and the value of ``--profile`` (or of a
    prefix of it, which argparse also accepts).
    """
    takes_value = False
    for argument in arguments:
        if takes_value:
            takes_value = False
        elif argument.startswith("-"):
            takes_value = len(argument) > 2 and "--profile".startswith(argument)
        else:
            return argument if argument in _COMMANDS else None
    return None


def _define_send(send: argparse.ArgumentParser) -> None:
    send.description = "Send one message and print the SMTP conversation as it happens."
    send.epilog = exitcodes.help_text()
    send.formatter_class = argparse.RawDescriptionHelpFormatter
    _add_connection_options(send, with_profile=True)
    send.add_argument(
        "--from", dest="from_address", metavar="ADDR", help="sender (default: the profile's)"
    )
    send.add_argument(
        "--to", action="append", default=[], metavar="ADDR", help="recipient (repeatable)"
    )
    send.add_argument("--cc", action="append", default=[], metavar="ADDR")
    send.add_argument(
        "--bcc",
        action="append",
        default=[],
        metavar="ADDR",
        help="envelope only, never in a header",
    )
    send.add_argument("--reply-to", action="append", default=[], metavar="ADDR")
    send.add_argument("--subject", default="", metavar="TEXT")
    body = send.add_mutually_exclusive_group()
    body.add_argument("--body", metavar="TEXT", help="message text (default: read standard input)")
    body.add_argument("--body-file", type=Path, metavar="PATH")
    send.add_argument("--attach", action="append", default=[], type=Path, metavar="PATH")
    send.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'")
    send.add_argument("--json", action="store_true", help="print JSON Lines instead of text")
    send.add_argument(
        "--no-queue",
        action="store_true",
        help="one attempt, no outbox: nothing is kept or retried (as swaks does)",
    )
    send.add_argument("--quiet", "-q", action="store_true", help="print only the outcome")
    send.set_defaults(handler=cmd_send)


def _define_accounts(accounts: argparse.ArgumentParser) -> None:
    account_commands = accounts.add_subparsers(
        dest="accounts_command", metavar="ACTION", required=True
    )
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


def _define_probe(probe: argparse.ArgumentParser) -> None:
    probe.description = (
        "Probe one SMTP server (or a domain's MX hosts): connect, banner, EHLO, "
        "STARTTLS or TLS, the certificate chain, optionally AUTH, QUIT; each stage timed. "
        "No mail is sent."
    )
    probe.epilog = "exit codes (Nagios): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"
    probe.add_argument("server", nargs="?", metavar="HOST[:PORT]")
    probe.add_argument("--mx", metavar="DOMAIN", help="probe every MX host of DOMAIN on port 25")
    probe.add_argument("--mx-port", type=int, default=25, metavar="N", help="port for --mx hosts")
    probe.add_argument("--dns-server", metavar="HOST[:PORT]", help="resolver for --mx lookups")
    probe.add_argument("--profile", metavar="NAME", help="probe a profile's server (and its AUTH)")
    probe.add_argument("--security", choices=["tls", "starttls", "none"])
    probe.add_argument("--ca-file", metavar="PATH")
    probe.add_argument("--warn-days", type=int, default=21, metavar="N")
    probe.add_argument("--crit-days", type=int, default=7, metavar="N")
    probe.add_argument("--warn-seconds", type=float, default=5.0, metavar="S")
    probe.add_argument("--crit-seconds", type=float, default=15.0, metavar="S")
    probe.add_argument("--timeout", type=float, default=10.0, metavar="S")
    probe.add_argument("--ehlo", metavar="NAME")
    probe.add_argument(
        "--password-stdin", action="store_true", help="password for --profile's AUTH"
    )
    probe.add_argument(
        "--no-history", action="store_true", help="neither read nor write the history"
    )
    output = probe.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON document")
    output.add_argument("--nagios", action="store_true", help="one Nagios plugin line")
    probe.set_defaults(handler=cmd_probe)


def _define_outbox(outbox: argparse.ArgumentParser) -> None:
    outbox.description = "The outbox keeps every message until the server accepts it."
    outbox.epilog = (
        "exit codes: 0 nothing left to send, 75 some still queued, 1 some failed, 2 bad arguments"
    )
    outbox_commands = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    outbox_list = outbox_commands.add_parser("list", help="what is queued or failed")
    outbox_list.add_argument("--json", action="store_true")
    outbox_list.set_defaults(handler=cmd_outbox_list)
    flush = outbox_commands.add_parser("flush", help="send the messages that are due")
    flush.add_argument("--all", action="store_true", help="also those whose retry time is ahead")
    flush.add_argument("--verbose", "-v", action="store_true", help="print the transcripts")
    flush.set_defaults(handler=cmd_outbox_flush)
    retry = outbox_commands.add_parser("retry", help="send one message now (also a failed one)")
    retry.add_argument("id")
    retry.add_argument("--password-stdin", action="store_true")
    retry.set_defaults(handler=cmd_outbox_retry)
    drop = outbox_commands.add_parser("drop", help="delete one message from the outbox")
    drop.add_argument("id")
    drop.set_defaults(handler=cmd_outbox_drop)


def _define_serve(serve: argparse.ArgumentParser) -> None:
    serve.description = (
        "Run the sandbox: every message is kept in a Maildir, nothing is "
        "delivered, and each session's transcript is printed as it happens."
    )
    serve.epilog = _fault_help()
    serve.formatter_class = argparse.RawDescriptionHelpFormatter
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--port", type=int, default=2525, help="port (default: %(default)s; 0 = any free port)"
    )
    serve.add_argument("--maildir", type=Path, metavar="PATH", help="where to keep mail")
    tls = serve.add_mutually_exclusive_group()
    tls.add_argument(
        "--tls", action="store_true", help="offer STARTTLS (certificate made on first use)"
    )
    tls.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte")
    auth = serve.add_mutually_exclusive_group()
    auth.add_argument("--auth", choices=["any"], help="offer AUTH and accept any credentials")
    auth.add_argument(
        "--auth-file", type=Path, metavar="PATH", help="offer AUTH; 'user:password' lines"
    )
    serve.add_argument("--auth-required", action="store_true", help="refuse mail without AUTH")
    serve.add_argument(
        "--size", type=int, default=32 * 1024 * 1024, metavar="BYTES", help="SIZE limit (0 = none)"
    )
    serve.add_argument("--idle-timeout", type=float, default=60.0, metavar="SECONDS")
    serve.add_argument(
        "--fault", action="append", default=[], metavar="SPEC", help="inject a fault (repeatable)"
    )
    serve.add_argument("--fault-seed", type=int, metavar="N", help="seed for fault probabilities")
    serve.add_argument("--quiet", "-q", action="store_true", help="one line per session")
    serve.add_argument("--json", action="store_true", help="JSON Lines, each with its session id")
    serve.set_defaults(handler=cmd_serve)


def _define_doctor(doctor: argparse.ArgumentParser) -> None:
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(handler=cmd_doctor)


def _add_connection_options(parser: argparse.ArgumentParser, *, with_profile: bool) -> None:
    group = parser.add_argument_group("server (a profile, or these settings)")
    if with_profile:
        group.add_argument("--profile", metavar="NAME", help="use a saved profile")
    group.add_argument("--server", metavar="HOST[:PORT]", help="connect to this server instead")
    group.add_argument("--security", choices=["tls", "starttls", "none"])
    group.add_argument("--user", metavar="USER", help="authenticate as USER")
    group.add_argument("--auth", choices=["auto", "plain", "login", "cram-md5", "xoauth2"])
    group.add_argument(
        "--ca-file", metavar="PATH", help="trust this CA file instead of the system store"
    )
    group.add_argument(
        "--no-verify", action="store_true", help="do not verify the certificate (unsafe)"
    )
    group.add_argument(
        "--allow-plaintext-auth", action="store_true", help="allow AUTH without TLS (unsafe)"
    )
    group.add_argument("--ehlo", metavar="NAME", help="name to send in EHLO")
    group.add_argument("--timeout", type=float, metavar="SECONDS", help="per-command timeout")
    group.add_argument(
        "--deadline",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="limit for the whole session",
    )
    group.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )


def _add_profile_options(parser: argparse.ArgumentParser, *, required_host: bool) -> None:
    parser.add_argument("--host", required=required_host)
    parser.add_argument("--port", type=int)
    parser.add_argument("--security", choices=["tls", "starttls", "none"])
    parser.add_argument("--user", dest="username")
    parser.add_argument("--from", dest="from_address", metavar="ADDR")
    parser.add_argument("--display-name")
    parser.add_argument(
        "--auth", dest="auth_mechanism", choices=["auto", "plain", "login", "cram-md5", "xoauth2"]
    )
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


# -- helpers ------------------------------------------------------------------


def _read_password(from_stdin: bool, prompt: str) -> Secret:
    from tuimail.credentials import Secret

    if from_stdin:
        line = sys.stdin.readline()
        value = line.rstrip("\r\n")
    elif sys.stdin.isatty():
        import getpass

        value = getpass.getpass(prompt)
    else:
        raise CLIError(
            "a password is needed: use --password-stdin, or run in a terminal to be asked"
        )
    if not value:
        raise CLIError("the password is empty")
    return Secret(value)


def _split_server(text: str) -> tuple[str, int]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if port_text and not port_text.isdigit():
        raise CLIError(f"--server: {port_text!r} is not a port number", exitcodes.USAGE)
    return host, int(port_text or 0)


def _connection_profile(args: argparse.Namespace) -> Profile:
    """The profile named by ``--profile``, or one made from ``--server``, plus option overrides."""
    from tuimail.profiles import Profile, with_changes

    overrides: dict[str, Any] = {}
    for key, value in (
        ("security", args.security),
        ("username", args.user),
        ("auth_mechanism", args.auth),
        ("ca_file", args.ca_file),
        ("verify_tls", False if args.no_verify else None),
        ("allow_plaintext_auth", True if args.allow_plaintext_auth else None),
        ("ehlo_name", args.ehlo),
        ("timeout", args.timeout),
    ):
        if value is not None and value != "":
            overrides[key] = value
    if args.server:
        host, port = _split_server(args.server)
        base = _checked(lambda: Profile(name="command-line", host=host, port=port))
    elif getattr(args, "running_sandbox", None) is not None:
        base = args.running_sandbox
    elif args.profile:
        base = _saved_profile(args.profile)
    else:
        raise CLIError("say where to send: --profile NAME or --server HOST[:PORT]", exitcodes.USAGE)
    return _checked(lambda: with_changes(base, **overrides)) if overrides else base


def _saved_profile(name: str) -> Profile:
    from tuimail.profiles import ProfileStore

    return _checked(lambda: ProfileStore().get(name))


def _wants_embedded_sandbox(args: argparse.Namespace) -> bool:
    """``--profile sandbox`` with no user profile of that name and no sandbox running."""
    if args.server or args.profile != "sandbox":
        return False  # decided before importing anything: start-up time
    from tuimail.profiles import ProfileStore
    from tuimail.sandbox_profile import SANDBOX_PROFILE, find_running

    if SANDBOX_PROFILE in _checked(ProfileStore().load):
        return False
    running = find_running()
    if running is not None:
        args.running_sandbox = running
        return False
    return True


def _checked(make: Callable[[], T]) -> T:
    """Run a profile operation, turning its errors into one-line CLI errors."""
    from tuimail.profiles import ProfileError, ProfileStoreError

    try:
        return make()
    except (ProfileError, ProfileStoreError) as exc:
        raise CLIError(str(exc)) from None
    except KeyError as exc:
        raise CLIError(str(exc.args[0])) from None


def _password_for(profile: Profile, from_stdin: bool, saved: bool) -> Secret | None:
    """Where the password comes from: stdin, the keyring (saved profiles), or a prompt."""
    if not profile.username:
        return None
    if from_stdin:
        return _read_password(True, "")
    if saved:
        from tuimail.credentials import CredentialStore, KeyringError

        try:
            secret = CredentialStore().get(profile.name)
        except KeyringError as exc:
            raise CLIError(str(exc)) from None
        if secret is not None:
            return secret
    return _read_password(False, f"Password for {profile.username} at {profile.host}: ")


def _run_session_command(args: argparse.Namespace, coroutine_factory: Any) -> int:
    from tuimail.console import EntryPrinter, print_json, summarise

    printer = None if args.quiet else EntryPrinter(as_json=args.json)
    report = asyncio.run(coroutine_factory(printer))
    if args.json:
        print_json({"result": report.to_json()})
    if not args.json or args.quiet:
        summarise(report)
    if report.failure is not None:
        return exitcodes.for_stage(report.failure.stage)
    if report.delivery is not None and report.delivery.refused:
        return exitcodes.PARTIAL
    return exitcodes.OK


# -- subcommands --------------------------------------------------------------


def cmd_send(args: argparse.Namespace) -> int:
    from tuimail.message import Draft, DraftInvalid, build_message, parse_header_option
    from tuimail.session import send

    embedded = _wants_embedded_sandbox(args)
    if embedded:
        from tuimail.sandbox_profile import builtin_profile

        profile = builtin_profile()
    else:
        profile = _connection_profile(args)
    if args.password_stdin and args.body is None and args.body_file is None:
        raise CLIError(
            "with --password-stdin, give the text with --body or --body-file", exitcodes.USAGE
        )
    password = _password_for(
        profile, args.password_stdin, saved=bool(args.profile and not args.server)
    )
    body = _read_body(args)
    sender = args.from_address or _profile_sender(profile)
    try:
        headers = [parse_header_option(h) for h in args.header]
        draft = Draft(
            from_address=sender,
            to=args.to,
            cc=args.cc,
            bcc=args.bcc,
            reply_to=args.reply_to,
            subject=args.subject,
            body=body,
            attachments=args.attach,
            headers=headers,
        )
        outgoing = build_message(draft)
    except DraftInvalid as exc:
        for error in exc.errors:
            print(f"tuimail: {_option_name(error.field)}: {error.message}", file=sys.stderr)
        return exitcodes.INVALID_MESSAGE
    if embedded:
        return _run_session_command(
            args, lambda printer: _send_to_embedded_sandbox(args, outgoing, printer)
        )
    if args.no_queue:
        return _run_session_command(
            args,
            lambda printer: send(
                profile, outgoing, password, on_entry=printer, deadline=args.deadline
            ),
        )
    return _send_through_outbox(args, profile, outgoing, password)


def _send_through_outbox(
    args: argparse.Namespace, profile: Any, outgoing: Any, password: Any
) -> int:
    """Store durably, then try once; a temporary failure stays queued (exit 75)."""
    from tuimail.outbox import Outbox, OutboxError, short_id

    outbox = Outbox(policy=_retry_policy())
    try:
        queued = outbox.enqueue(profile, outgoing)
    except OutboxError as exc:
        raise CLIError(str(exc), exitcodes.STORE_FAILED) from None
    outcome: Any = None

    async def attempt(printer: Any) -> Any:
        nonlocal outcome
        outcome = await outbox.attempt(
            queued.key, password, on_entry=printer, deadline=args.deadline, outgoing=outgoing
        )
        return outcome.report

    code = _run_session_command(args, attempt)
    assert outcome is not None
    if outcome.state == "queued":
        when = _when(outbox.get(queued.key).next_attempt)
        print(
            f"tuimail: queued for retry as {short_id(queued.key)} (next attempt {when}); "
            "'tuimail outbox flush' sends due messages",
            file=sys.stderr,
        )
        return exitcodes.QUEUED
    if outcome.state in ("failed", "possibly-delivered"):
        note = (
            "it may have arrived; 'tuimail outbox retry' would send the same message again"
            if outcome.state == "possibly-delivered"
            else "kept in the outbox as failed; 'tuimail outbox retry' or 'drop'"
        )
        print(f"tuimail: {short_id(queued.key)}: {note}", file=sys.stderr)
    return code


def _retry_policy() -> Any:
    from tuimail import paths
    from tuimail.outbox import RetryPolicy

    try:
        text = (paths.config_dir() / "config.toml").read_text("utf-8")
    except (OSError, ValueError):
        return RetryPolicy()
    import tomllib  # only once there is a file to read: it costs a scripted send 5 ms

    try:
        config = tomllib.loads(text)
    except ValueError:
        return RetryPolicy()
    try:
        return RetryPolicy.from_config(config.get("outbox", {}))
    except (TypeError, ValueError) as exc:
        raise CLIError(f"config.toml [outbox]: {exc}") from None


def _when(timestamp: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


async def _send_to_embedded_sandbox(args: argparse.Namespace, outgoing: Any, printer: Any) -> Any:
    """Start a sandbox in this process on a free port, send, and show both sides."""
    from tuimail.console import EntryPrinter
    from tuimail.sandbox import Sandbox, SandboxConfig, SandboxError
    from tuimail.session import send

    try:
        async with Sandbox(SandboxConfig(port=0)) as sandbox:
            profile = sandbox.client_profile()
            report = await send(profile, outgoing, None, on_entry=printer, deadline=args.deadline)
    except SandboxError as exc:
        raise CLIError(f"the sandbox could not start: {exc}") from None
    if printer is not None:
        if not args.json:
            print(f"--- the sandbox's side (mail kept in {sandbox.maildir_path}) ---")
        server_printer = EntryPrinter(as_json=args.json, prefix="sandbox" if args.json else "")
        for record in sandbox.sessions:
            for entry in record.transcript:
                server_printer(entry)
    return report


def _profile_sender(profile: Profile) -> str:
    if not profile.from_address:
        return ""
    if profile.display_name:
        escaped = profile.display_name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" <{profile.from_address}>'
    return profile.from_address


def _option_name(field: str) -> str:
    return (
        f"--{field}"
        if field in ("from", "to", "cc", "bcc", "reply-to", "subject", "body")
        else field
    )


def _read_body(args: argparse.Namespace) -> str:
    if args.body is not None:
        return str(args.body)
    if args.body_file is not None:
        try:
            return Path(args.body_file).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CLIError(
                f"--body-file: cannot read {args.body_file}: {exc}", exitcodes.INVALID_MESSAGE
            ) from None
    if sys.stdin.isatty():
        print("Type the message; end with Ctrl-D.", file=sys.stderr)
    return sys.stdin.read()


def cmd_accounts_list(args: argparse.Namespace) -> int:
    from tuimail.profiles import ProfileStore, ProfileStoreError

    try:
        profiles = ProfileStore().load()
    except ProfileStoreError as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        records = [
            {"name": p.name, **p.to_toml_table(), "warnings": p.warnings()}
            for p in profiles.values()
        ]
        print(json.dumps(records, indent=2))
        return exitcodes.OK
    if not profiles:
        print("No profiles yet. Add one with: tuimail accounts add NAME --host HOST --user USER")
        return exitcodes.OK
    width = max(len(name) for name in profiles)
    for profile in profiles.values():
        user = profile.username or "(no login)"
        line = f"{profile.name:<{width}}  {profile.address:<28} {profile.security.label:<8} {user}"
        if profile.from_address:
            line += f"  from {profile.from_address}"
        print(line)
        for warning in profile.warnings():
            print(f"{'':<{width}}  ! {warning}")
    return exitcodes.OK


def _profile_changes(args: argparse.Namespace) -> dict[str, Any]:
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
    return {key: getattr(args, key) for key in keys if getattr(args, key, None) is not None}


def cmd_accounts_add(args: argparse.Namespace) -> int:
    from tuimail.credentials import CredentialStore, KeyringError
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
        profile = with_changes(Profile(name=args.name, host=changes.pop("host")), **changes)
        if args.name in store.load():
            raise CLIError(
                f"a profile named {args.name!r} already exists; use 'tuimail accounts edit'"
            )
        if profile.username and not args.no_password:
            secret = _read_password(args.password_stdin, f"Password for {profile.username}: ")
            CredentialStore().set(profile.name, secret)
        store.add(profile)
    except (ProfileError, ProfileStoreError, KeyringError) as exc:
        raise CLIError(str(exc)) from None
    print(f"Added profile {profile.name} ({profile.address}, {profile.security.label}).")
    for warning in profile.warnings():
        print(f"Warning: {warning}")
    return exitcodes.OK


def cmd_accounts_edit(args: argparse.Namespace) -> int:
    from tuimail.credentials import CredentialStore, KeyringError
    from tuimail.profiles import ProfileError, ProfileStore, ProfileStoreError, with_changes

    store = ProfileStore()
    try:
        old = store.get(args.name)
        changes = _profile_changes(args)
        if args.rename:
            changes["name"] = args.rename
        profile = with_changes(old, **changes)
        credentials = CredentialStore()
        new_secret = None
        if args.password_stdin:
            new_secret = _read_password(True, "")
        if profile.name != old.name and old.username:
            moved = new_secret or credentials.get(old.name)
            if moved is not None:
                credentials.set(profile.name, moved)
        elif new_secret is not None:
            credentials.set(profile.name, new_secret)
        store.save(profile, replace_name=old.name)
        if profile.name != old.name and old.username:
            credentials.delete(old.name)
    except KeyError as exc:
        raise CLIError(str(exc.args[0])) from None
    except (ProfileError, ProfileStoreError, KeyringError) as exc:
        raise CLIError(str(exc)) from None
    print(f"Saved profile {profile.name} ({profile.address}, {profile.security.label}).")
    for warning in profile.warnings():
        print(f"Warning: {warning}")
    return exitcodes.OK


def cmd_accounts_remove(args: argparse.Namespace) -> int:
    from tuimail.credentials import CredentialStore, KeyringError
    from tuimail.profiles import ProfileStore, ProfileStoreError

    store = ProfileStore()
    try:
        profile = store.get(args.name)
        store.remove(profile.name)
    except KeyError as exc:
        raise CLIError(str(exc.args[0])) from None
    except ProfileStoreError as exc:
        raise CLIError(str(exc)) from None
    removed_secret = False
    if profile.username:
        try:
            removed_secret = CredentialStore().delete(profile.name)
        except KeyringError as exc:
            print(
                f"tuimail: the profile is removed, but its password was not: {exc}", file=sys.stderr
            )
            return exitcodes.CONFIG
    suffix = " and its password" if removed_secret else ""
    print(f"Removed profile {profile.name}{suffix}.")
    return exitcodes.OK


def cmd_accounts_test(args: argparse.Namespace) -> int:
    from tuimail.session import check_account

    profile = _saved_profile(args.name)
    password = _password_for(profile, args.password_stdin, saved=True)
    args.quiet = False
    return _run_session_command(
        args, lambda printer: check_account(profile, password, on_entry=printer)
    )


def _fault_help() -> str:
    from tuimail import faults

    doc = faults.__doc__ or ""
    start = doc.index("STAGE[")
    return (
        "fault specs:\n    "
        + doc[start:].strip().replace("\n", "\n")
        + ("\n\nexit codes: 0 stopped with Ctrl-C or SIGTERM, 1 could not start, 2 bad arguments")
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from tuimail.faults import FaultPlan, FaultSpecError
    from tuimail.sandbox import Sandbox, SandboxError, load_auth_file, sandbox_config_from

    try:
        faults = FaultPlan.from_specs(args.fault, seed=args.fault_seed)
    except FaultSpecError as exc:
        raise CLIError(f"--fault {exc}", exitcodes.USAGE) from None
    try:
        users = load_auth_file(args.auth_file) if args.auth_file else ({} if args.auth else None)
        config = sandbox_config_from(
            host=args.host,
            port=args.port,
            maildir=args.maildir,
            tls="starttls" if args.tls else "implicit" if args.implicit_tls else "none",
            auth_users=users,
            auth_required=args.auth_required,
            size_limit=args.size,
            idle_timeout=args.idle_timeout,
        )
        sandbox = Sandbox(
            config,
            faults=faults,
            on_entry=None if args.quiet else _serve_entry_printer(args.json),
            on_session_end=_serve_summary_printer(args.json) if args.quiet else None,
        )
        settle_imports()
        return asyncio.run(_serve(sandbox))
    except SandboxError as exc:
        raise CLIError(str(exc), 1) from None


def _serve_entry_printer(as_json: bool) -> Any:
    from tuimail.console import EntryPrinter

    printers: dict[str, EntryPrinter] = {}

    def show(record: Any, entry: Any) -> None:
        printer = printers.get(record.id)
        if printer is None:
            prefix = record.id if as_json else f"[{record.id}] "
            printer = printers[record.id] = EntryPrinter(as_json=as_json, prefix=prefix)
        printer(entry)
        if entry.kind == "closed":
            printers.pop(record.id, None)

    return show


def _serve_summary_printer(as_json: bool) -> Any:
    def show(record: Any) -> None:
        if as_json:
            summary = {k: v for k, v in record.to_json().items() if k != "transcript"}
            print(json.dumps(summary, ensure_ascii=False), flush=True)
        else:
            print(record.summary(), flush=True)

    return show


async def _serve(sandbox: Any) -> int:
    import signal

    from tuimail import sandbox as sandbox_module

    await sandbox.start()
    sandbox_module.announce(sandbox)
    try:
        config = sandbox.config
        tls = {"none": "no TLS", "starttls": "STARTTLS", "implicit": "implicit TLS"}[config.tls]
        print(
            f"tuimail sandbox listening on {config.host}:{sandbox.port} ({tls}); "
            f"mail kept in {sandbox.maildir_path}",
            file=sys.stderr,
            flush=True,
        )
        if sandbox.ca_file:
            print(f"clients can verify it with CA file {sandbox.ca_file}", file=sys.stderr)
        if not sandbox.client_profile().is_loopback:
            print(
                f"warning: listening on {config.host}: anyone who can reach it can send mail in",
                file=sys.stderr,
            )
        for described in sandbox.faults.describe():
            print(f"fault: {described}", file=sys.stderr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        if sandbox.active:
            print(f"stopping: finishing {len(sandbox.active)} session(s)", file=sys.stderr)
        await sandbox.stop()
        print("tuimail sandbox stopped", file=sys.stderr)
    finally:
        sandbox_module.withdraw()
    return exitcodes.OK


def cmd_probe(args: argparse.Namespace) -> int:
    from tuimail.probe import Status, Thresholds

    if args.crit_days > args.warn_days:
        raise CLIError("--crit-days must not be more than --warn-days", exitcodes.USAGE)
    if sum(bool(x) for x in (args.server, args.mx, args.profile)) != 1:
        raise CLIError(
            "probe one thing: HOST[:PORT], --mx DOMAIN or --profile NAME", exitcodes.USAGE
        )
    thresholds = Thresholds(args.warn_days, args.crit_days, args.warn_seconds, args.crit_seconds)
    try:
        return int(asyncio.run(_probe(args, thresholds)))
    except CLIError as exc:
        # Nagios convention: a check that cannot run is UNKNOWN (3), whatever the cause.
        print(f"SMTP UNKNOWN - {exc}" if args.nagios else f"tuimail: {exc}", file=sys.stderr)
        return int(Status.UNKNOWN)


async def _probe(args: argparse.Namespace, thresholds: Any) -> int:
    from tuimail.console import EntryPrinter, print_probe
    from tuimail.mx import MXLookupError, lookup_mx
    from tuimail.probe import ProbeTarget, Status, probe, worst
    from tuimail.probe_history import ProbeHistory
    from tuimail.profiles import Security

    security = Security(args.security) if args.security else None
    password = None
    if args.profile:
        profile = _saved_profile(args.profile)
        target = ProbeTarget.from_profile(profile, thresholds)
        if profile.username:
            password = _password_for(profile, args.password_stdin, saved=True)
        targets = [target]
    elif args.mx:
        try:
            if args.dns_server:
                dns_host, dns_port = _split_server(args.dns_server)
                hosts = await lookup_mx(
                    args.mx, nameservers=[dns_host], port=dns_port or 53, timeout=args.timeout
                )
            else:
                hosts = await lookup_mx(args.mx, timeout=args.timeout)
        except MXLookupError as exc:
            raise CLIError(str(exc)) from None
        targets = [
            ProbeTarget(host=mx.host, port=args.mx_port, security=security or Security.STARTTLS,
                        ca_file=args.ca_file or "", thresholds=thresholds, timeout=args.timeout,
                        ehlo_name=args.ehlo or "", name=f"MX {mx.preference} {mx.host}")
            for mx in hosts
        ]  # fmt: skip
    else:
        host, port = _split_server(args.server)
        if security is None:
            security = Security.TLS if port == 465 else Security.STARTTLS
        targets = [
            ProbeTarget(host=host, port=port, security=security, ca_file=args.ca_file or "",
                        thresholds=thresholds, timeout=args.timeout, ehlo_name=args.ehlo or "")
        ]  # fmt: skip
    history = None if args.no_history else ProbeHistory.load()
    quiet = args.json or args.nagios
    reports = []
    for target in targets:
        printer = None if quiet else EntryPrinter(prefix=f"[{target.label}] " if args.mx else "")
        previous = history.last_capabilities(target.key) if history else None
        report = await probe(target, password, on_entry=printer, previous_capabilities=previous)
        reports.append(report)
        if history is not None:
            history.add(report)
    if history is not None:
        try:
            history.save()
        except OSError as exc:
            print(f"tuimail: the probe history was not saved: {exc}", file=sys.stderr)
    status = worst(reports)
    if args.nagios:
        if len(reports) == 1:
            print(reports[0].nagios())
        else:
            details = "; ".join(f"{r.target.label} {r.status.name}" for r in reports)
            perf = " ".join(
                f"'{r.target.host}'={r.total:.6f}s;{thresholds.warn_seconds:g};{thresholds.crit_seconds:g};0"
                for r in reports
            )
            print(f"SMTP {status.name} - {args.mx}: {details} | {perf}")
    elif args.json:
        if len(reports) == 1 and not args.mx:
            document = reports[0].to_json()
        else:
            document = {"domain": args.mx, "status": status.name, "exit_code": int(status),
                        "targets": [r.to_json() for r in reports]}  # fmt: skip
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        for report in reports:
            print_probe(report)
    return int(status if status is not Status.UNKNOWN or reports else Status.UNKNOWN)


def _outbox() -> Any:
    from tuimail.outbox import Outbox

    return Outbox(policy=_retry_policy())


def _stored_password(profile: Any) -> Any:
    """The keyring password of a saved profile; None for others (they are skipped)."""
    from tuimail.credentials import CredentialStore, KeyringError
    from tuimail.profiles import ProfileStore, ProfileStoreError

    try:
        if profile.name not in ProfileStore().load():
            return None
        return CredentialStore().get(profile.name)
    except (KeyringError, ProfileStoreError) as exc:
        print(f"tuimail: {profile.name}: {exc}", file=sys.stderr)
        return None


def cmd_outbox_list(args: argparse.Namespace) -> int:
    from tuimail.outbox import short_id

    entries = _outbox().entries()
    if args.json:
        print(json.dumps([e.to_json() for e in entries], indent=2, ensure_ascii=False))
        return exitcodes.OK
    if not entries:
        print("The outbox is empty.")
        return exitcodes.OK
    for entry in entries:
        due = "due now" if entry.next_attempt <= 0 else f"next {_when(entry.next_attempt)}"
        state = entry.state.value if entry.state.value != "queued" else f"queued, {due}"
        print(
            f"{short_id(entry.key)}  {state}  via {entry.profile_name}  to {', '.join(entry.recipients)}"
            f"  ({len(entry.attempts)} attempt(s))"
        )
        if entry.last_error:
            print(f"              last error: {entry.last_error}")
    return exitcodes.OK


def _flush_exit(outcomes: list[Any]) -> int:
    from tuimail.outbox import State

    remaining = _outbox().entries()
    if any(e.state is State.FAILED or e.state is State.POSSIBLY_DELIVERED for e in remaining):
        return 1
    if any(e.state is State.QUEUED for e in remaining):
        return exitcodes.QUEUED
    return exitcodes.OK


def cmd_outbox_flush(args: argparse.Namespace) -> int:
    from tuimail.console import EntryPrinter
    from tuimail.outbox import short_id

    outbox = _outbox()
    printers: dict[str, Any] = {}

    def show(queued: Any, entry: Any) -> None:
        printer = printers.setdefault(queued.key, EntryPrinter(prefix=f"[{short_id(queued.key)}] "))
        printer(entry)

    def password(profile: Any) -> Any:
        secret = _stored_password(profile)
        return secret

    outcomes = asyncio.run(
        outbox.flush(password, include_not_due=args.all, on_entry=show if args.verbose else None)
    )
    for outcome in outcomes:
        detail = f": {outcome.detail}" if outcome.detail else ""
        print(f"{short_id(outcome.key)}  {outcome.state}{detail}")
    if not outcomes:
        print("Nothing is due.")
    return _flush_exit(outcomes)


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    from tuimail.console import EntryPrinter, summarise
    from tuimail.outbox import OutboxError, short_id

    outbox = _outbox()
    try:
        entry = outbox.requeue(args.id)
    except KeyError as exc:
        raise CLIError(str(exc.args[0]), exitcodes.USAGE) from None
    except (OSError, OutboxError) as exc:
        raise CLIError(str(exc)) from None
    from tuimail.outbox import _profile_from

    profile = _profile_from(entry.profile)
    password = None
    if profile.username:
        password = _read_password(True, "") if args.password_stdin else _stored_password(profile)
    outcome = asyncio.run(outbox.attempt(entry.key, password, on_entry=EntryPrinter()))
    if outcome.report is not None:
        summarise(outcome.report)
    print(
        f"{short_id(entry.key)}  {outcome.state}{': ' + outcome.detail if outcome.detail else ''}"
    )
    return _flush_exit([outcome])


def cmd_outbox_drop(args: argparse.Namespace) -> int:
    from tuimail.outbox import OutboxError, short_id

    try:
        entry = _outbox().drop(args.id)
    except KeyError as exc:
        raise CLIError(str(exc.args[0]), exitcodes.USAGE) from None
    except (OSError, OutboxError) as exc:
        raise CLIError(str(exc)) from None
    print(f"Dropped {short_id(entry.key)} ({entry.message_id} to {', '.join(entry.recipients)}).")
    return exitcodes.OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from tuimail.doctor import run_checks

    checks = run_checks()
    if args.json:
        print(json.dumps([c.to_json() for c in checks], indent=2))
    else:
        for check in checks:
            mark = "ok  " if check.ok else "FAIL"
            print(f"[{mark}] {check.name}: {check.detail}")
            if not check.ok and check.fix:
                print(f"       fix: {check.fix}")
    return exitcodes.OK if all(c.ok for c in checks) else 1


def cmd_app(args: argparse.Namespace) -> int:
    from tuimail.ui.app import run_app

    settle_imports()
    return run_app(profile=args.profile)


def settle_imports() -> None:
    """Leave what the imports created out of the collector's passes.

    A long-running command (the app, ``serve``) holds several hundred
    thousand objects from its imports for its whole life. Without this, each
    full collection walks them all again, and the first comes during the
    app's start-up: about 100 ms of its 500 ms to the first screen here.
    """
    gc.freeze()


#: Each command: its one-line summary, and the function that defines its options.
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "send": ("send one message and print the SMTP transcript live", _define_send),
    "accounts": ("list, add, edit, remove and test profiles", _define_accounts),
    "probe": (
        "check a server's banner, EHLO, TLS, certificate and latency (Nagios-compatible)",
        _define_probe,
    ),
    "outbox": ("messages waiting to be sent: list, flush, retry, drop", _define_outbox),
    "serve": (
        "run the sandbox: a local capture SMTP server with transcripts and faults",
        _define_serve,
    ),
    "doctor": ("check the keyring, config paths and TLS trust store", _define_doctor),
}


def run() -> None:
    """The ``tuimail`` command: :func:`main`, then a quick exit.

    Once the command is done, what is left is tearing down the modules it
    imported, and the garbage collector's passes over every object during that
    teardown cost a 170 ms ``tuimail send`` 25-35 ms on the benchmark machine.
    Frozen objects are left out of those passes. Only here, for the process's
    own command: a caller of :func:`main` (a test, a script) keeps a working
    collector.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = _command_in(arguments)
    parser = build_parser(define=[command] if command else [])
    args = parser.parse_args(arguments)
    handler = getattr(args, "handler", cmd_app)
    try:
        return int(handler(args))
    except CLIError as exc:
        print(f"tuimail: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("tuimail: interrupted", file=sys.stderr)
        return 130
