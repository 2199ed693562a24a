"""``tuimail serve``: run the sandbox, printing each session as it happens."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuimail.cli import exitcodes
from tuimail.cli.common import CLIError, settle_imports

if TYPE_CHECKING:
    from tuimail.faults import FaultPlan
    from tuimail.profiles import Security
    from tuimail.sandbox import Sandbox, SandboxConfig, SessionRecord
    from tuimail.sandbox.bearer_check import Introspection
    from tuimail.sandbox_profile import Claim
    from tuimail.transcript import Entry


def define_options(serve: argparse.ArgumentParser) -> None:
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
        "--port",
        type=int,
        help="port (default: config.toml's [sandbox] port, else 2525; 0 = any free port)",
    )
    serve.add_argument("--maildir", type=Path, metavar="PATH", help="where to keep mail")
    tls = serve.add_mutually_exclusive_group()
    tls.add_argument(
        "--tls", action="store_true", help="offer STARTTLS (certificate made on first use)"
    )
    tls.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte")
    auth = serve.add_mutually_exclusive_group()
    auth.add_argument(
        "--auth",
        choices=["any"],
        help="offer AUTH and accept any credentials (any password; any well-formed token "
        "by XOAUTH2 or OAUTHBEARER, unless --oauth-introspect checks them)",
    )
    auth.add_argument(
        "--auth-file", type=Path, metavar="PATH", help="offer AUTH; 'user:password' lines"
    )
    serve.add_argument("--auth-required", action="store_true", help="refuse mail without AUTH")
    serve.add_argument(
        "--oauth-introspect",
        metavar="URL",
        help="check each XOAUTH2/OAUTHBEARER token at this RFC 7662 introspection endpoint "
        "(needs --oauth-introspect-client-file)",
    )
    serve.add_argument(
        "--oauth-introspect-client-file",
        type=Path,
        metavar="FILE",
        help="the sandbox's own client credentials there: one line, client_id:secret",
    )
    serve.add_argument(
        "--size", type=int, default=32 * 1024 * 1024, metavar="BYTES", help="SIZE limit (0 = none)"
    )
    serve.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="close a connection that sends no command for this long (default: %(default)s)",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="connections served at once; more are answered 421 "
        "(default: half of what the open-file limit leaves free)",
    )
    serve.add_argument(
        "--max-recipients",
        type=int,
        metavar="N",
        help="recipients accepted per message; more RCPTs are answered 452 and the session "
        "goes on (default: config.toml's [sandbox] max_recipients, else 1000)",
    )
    serve.add_argument(
        "--throttle",
        type=int,
        metavar="BYTES_PER_SECOND",
        help="a slow link: each connection's bytes both ways at this rate (0 = none; "
        "default: config.toml's [sandbox] throttle)",
    )
    serve.add_argument(
        "--throttle-up",
        type=int,
        metavar="BYTES_PER_SECOND",
        help="the rate from the client to the sandbox alone (overrides --throttle)",
    )
    serve.add_argument(
        "--throttle-down",
        type=int,
        metavar="BYTES_PER_SECOND",
        help="the rate from the sandbox to the client alone (overrides --throttle)",
    )
    serve.add_argument(
        "--accept-probability",
        type=float,
        metavar="P",
        help="serve each new connection with this chance (0.0-1.0); the others are greeted "
        "421 and closed, as MailHog's Jim does (default: config.toml's [sandbox] "
        "accept_probability, else 1)",
    )
    serve.add_argument(
        "--fault", action="append", default=[], metavar="SPEC", help="inject a fault (repeatable)"
    )
    serve.add_argument(
        "--fault-seed",
        "--seed",
        type=int,
        metavar="N",
        help="seed for fault probabilities and --accept-probability (repeatable runs)",
    )
    serve.add_argument("--quiet", "-q", action="store_true", help="one line per session")
    serve.add_argument("--json", action="store_true", help="JSON Lines, each with its session id")
    serve.set_defaults(handler=cmd_serve)


def _fault_help() -> str:
    from tuimail import faults

    doc = faults.__doc__ or ""
    start = doc.index("STAGE[")
    return (
        "fault specs:\n    "
        + doc[start:].strip().replace("\n", "\n")
        + (
            "\n\nexit codes: 0 stopped with Ctrl-C or SIGTERM (or the sandbox already runs "
            "with these settings), 1 could not start, 2 bad arguments"
        )
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from tuimail import user_config
    from tuimail.faults import FaultPlan, FaultSpecError
    from tuimail.profiles import Security
    from tuimail.sandbox import Sandbox, SandboxError, load_auth_file, sandbox_config_from

    loaded = user_config.load_config()
    chaos = _chaos(args, loaded.tables.get("sandbox", {}))
    try:
        faults = FaultPlan.from_specs(
            args.fault, seed=args.fault_seed, accept_probability=chaos.pop("accept_probability")
        )
    except FaultSpecError as exc:
        raise CLIError(f"--fault {exc}", exitcodes.USAGE) from None
    port = args.port
    if port is None:
        port, problem = user_config.sandbox_port(loaded)
        if problem:
            print(f"tuimail: {problem}", file=sys.stderr)
    try:
        users = load_auth_file(args.auth_file) if args.auth_file else ({} if args.auth else None)
        notes: list[str] = []
        introspection = _introspection(args, notes)
        config = sandbox_config_from(
            host=args.host,
            port=port,
            maildir=args.maildir,
            security=Security.STARTTLS
            if args.tls
            else Security.TLS
            if args.implicit_tls
            else Security.NONE,
            auth_users=users,
            auth_required=args.auth_required,
            size_limit=args.size,
            idle_timeout=args.idle_timeout,
            max_connections=args.max_connections,
            auth_hint="see --auth",
            oauth_introspect=introspection,
            **chaos,
        )
        plan = _who_serves(config, faults, args.port)
        if plan is None:
            return exitcodes.OK
        claim, apart = plan
        if apart and args.port is None:
            config.port = 0  # its own server: on a port of its own
        sandbox = Sandbox(
            config,
            faults=faults,
            on_entry=None if args.quiet else _serve_entry_printer(args.json),
            on_session_end=_serve_summary_printer(args.json) if args.quiet else None,
        )
        settle_imports()
        try:
            return asyncio.run(_serve(sandbox, claim, apart, notes))
        finally:
            if claim is not None:
                claim.release()
    except SandboxError as exc:
        raise CLIError(_in_option_words(exc), 1) from None


def _chaos(args: argparse.Namespace, table: object) -> dict[str, Any]:
    """The throttle, the recipient limit and the accept probability: options over config.toml.

    A config.toml value that cannot be used is said on stderr and left out,
    as ``[sandbox] port`` is; an option out of range is refused (exit 2).
    """
    from tuimail.sandbox.config import chaos_from_table

    found, problems = chaos_from_table(table)
    for problem in problems:
        print(f"tuimail: {problem}", file=sys.stderr)
    for option, value in (
        ("--throttle", args.throttle),
        ("--throttle-up", args.throttle_up),
        ("--throttle-down", args.throttle_down),
    ):
        if value is not None and value < 0:
            raise CLIError(f"{option} must be 0 (no throttle) or more", exitcodes.USAGE)
    if args.throttle is not None:
        found["throttle_up"] = found["throttle_down"] = args.throttle
    if args.throttle_up is not None:
        found["throttle_up"] = args.throttle_up
    if args.throttle_down is not None:
        found["throttle_down"] = args.throttle_down
    if args.max_recipients is not None:
        found["max_recipients"] = args.max_recipients
    chance = args.accept_probability
    if chance is not None:
        if not 0 <= chance <= 1:
            raise CLIError("--accept-probability must be from 0.0 to 1.0", exitcodes.USAGE)
        found["accept_probability"] = chance
    found.setdefault("accept_probability", 1.0)
    return found


def _introspection(args: argparse.Namespace, notes: list[str]) -> Introspection | None:
    """``--oauth-introspect`` with its client file, read now; a problem is refused in words.

    The client secret is read from a file, never taken on the command line
    (where ``ps`` shows it to every user); a file others can read is used,
    with a warning added to ``notes``.
    """
    from tuimail.sandbox.bearer_check import ClientFileProblem, Introspection, load_client_file
    from tuimail.terminal_text import escape_controls

    url, path = args.oauth_introspect, args.oauth_introspect_client_file
    if url is None:
        if path is not None:
            raise CLIError(
                "--oauth-introspect-client-file is used only with --oauth-introspect URL",
                exitcodes.USAGE,
            )
        return None
    if path is None:
        raise CLIError(
            "--oauth-introspect needs --oauth-introspect-client-file FILE: the sandbox's "
            "client_id:secret at the introspection endpoint, on one line",
            exitcodes.USAGE,
        )
    if args.auth is None and args.auth_file is None:
        raise CLIError("--oauth-introspect needs --auth any or --auth-file", exitcodes.USAGE)
    try:
        loaded = load_client_file(path)
    except ClientFileProblem as exc:
        raise CLIError(str(exc), 1) from None
    if loaded.readable_by_others is not None:
        # Said after the listening line, which scripts wait for first.
        notes.append(
            escape_controls(
                f"warning: {path} can be read by other users of this machine "
                f"(mode {loaded.readable_by_others:o}); it holds a client secret: "
                f"chmod 600 {path}"
            )
        )
    return Introspection(url, loaded.client_id, loaded.client_secret)


def _who_serves(
    config: SandboxConfig, faults: FaultPlan, port: int | None
) -> tuple[Claim | None, str] | None:
    """Serve the data dir's sandbox (a claim), or run apart (a note saying why), or neither.

    None: the sandbox already runs with these very settings, and this says
    where (the app, or another ``tuimail serve``, serves it: one per data dir,
    as a second Mailpit would not start either). A serve whose settings differ
    (TLS, faults, another port) runs as a server of its own, on its own port,
    and says so in one line.
    """
    from tuimail.sandbox import SandboxError
    from tuimail.sandbox.builtin import differences, settings_of
    from tuimail.sandbox_profile import RunningSandbox, SandboxBusy, claim_or_find

    try:
        found = claim_or_find()
    except SandboxBusy as exc:
        raise SandboxError(str(exc)) from None
    except OSError as exc:
        raise SandboxError(f"cannot use the state dir: {exc.strerror or exc}") from None
    if not isinstance(found, RunningSandbox):
        return found, ""
    differ = differences(found, settings_of(config, faults), port)
    if not differ:
        from tuimail.terminal_text import escape_controls

        print(
            escape_controls(
                f"tuimail sandbox already listening on {found.address}, served by "
                f"{found.server_words}; mail kept in {found.maildir}. Nothing more to start: "
                "send to it there (its sessions show where it runs), or give --port 0 "
                "for a server of your own"
            ),
            file=sys.stderr,
            flush=True,
        )
        return None
    if port is not None and port == found.port:
        raise SandboxError(
            f"port {port} is where the sandbox of this data dir listens, served by "
            f"{found.server_words} with other settings ({', '.join(differ)}); "
            "choose another with --port, or --port 0 for any free port"
        )
    note = (
        f"the sandbox of this data dir runs on {found.address}, served by {found.server_words}, "
        f"with other settings ({', '.join(differ)}): this one is a server of its own"
    )
    return None, note


#: A refused setting, in the words of the option that set it.
_OPTION_WORDS = {
    "port": "--port {value} is not a port number (0-65535)",
    "size_limit": "--size must be 0 (no limit) or more",
    "idle_timeout": "--idle-timeout must be more than 0 and at most 3600 seconds",
    "auth_required": "--auth-required needs --auth any or --auth-file",
    "max_connections": "--max-connections must be 1 or more",
    "oauth_introspect": "--oauth-introspect {value}: {requirement}",
    "throttle_up": "--throttle-up (or --throttle) {value}: {requirement}",
    "throttle_down": "--throttle-down (or --throttle) {value}: {requirement}",
    "max_recipients": "--max-recipients {value}: {requirement}",
}


def _in_option_words(error: Exception) -> str:
    """A sandbox error as ``tuimail serve`` says it: with the option to change."""
    from tuimail.sandbox import PortUnavailable, SettingRefused

    if isinstance(error, SettingRefused) and error.setting in _OPTION_WORDS:
        return _OPTION_WORDS[error.setting].format(value=error.value, requirement=error.requirement)
    if isinstance(error, PortUnavailable):
        if error.in_use:
            return (
                f"{error} (another 'tuimail serve' or mail server?); "
                "choose another with --port, or --port 0 for any free port"
            )
        return f"{error}, so choose another with --port"
    return str(error)


def _serve_entry_printer(as_json: bool) -> Callable[[SessionRecord, Entry], None]:
    from tuimail.console import EntryPrinter

    printers: dict[str, EntryPrinter] = {}

    def show(record: SessionRecord, entry: Entry) -> None:
        printer = printers.get(record.id)
        if printer is None:
            prefix = record.id if as_json else f"[{record.id}] "
            printer = printers[record.id] = EntryPrinter(as_json=as_json, prefix=prefix)
        printer(entry)
        if entry.kind == "closed":
            printers.pop(record.id, None)

    return show


def _serve_summary_printer(as_json: bool) -> Callable[[SessionRecord], None]:
    from tuimail.console import terminal_json
    from tuimail.terminal_text import escape_controls

    def show(record: SessionRecord) -> None:
        # The summary quotes the client's HELO name: the client chose it.
        if as_json:
            summary = {k: v for k, v in record.to_json().items() if k != "transcript"}
            print(terminal_json(summary), flush=True)
        else:
            print(escape_controls(record.summary()), flush=True)

    return show


def _listening_words(security: Security) -> str:
    """How the listening line names ``security``, as ``tuimail serve`` always has.

    Scripts that wait for the line may match it, so these are this face's own
    words rather than the profile's short label.
    """
    from tuimail.profiles import Security

    words = {Security.NONE: "no TLS", Security.STARTTLS: "STARTTLS", Security.TLS: "implicit TLS"}
    return words[security]


def _limits(config: SandboxConfig) -> list[str]:
    """The throttle and a recipient limit other than the default, said at start."""
    from tuimail.sandbox.config import DEFAULT_MAX_RECIPIENTS
    from tuimail.sandbox.throttle import describe

    lines = []
    throttled = describe(config.throttle_up, config.throttle_down)
    if throttled:
        lines.append(f"{throttled} per connection")
    if config.max_recipients != DEFAULT_MAX_RECIPIENTS:
        lines.append(f"at most {config.max_recipients:,} recipient(s) per message; more get 452")
    return lines


def _token_words(config: SandboxConfig) -> str:
    """What becomes of an OAuth token here, said at start: checked where, or not at all."""
    from tuimail.terminal_text import escape_controls

    if not config.takes_tokens:
        return ""
    introspection = config.oauth_introspect
    if introspection is None:
        return (
            "AUTH XOAUTH2 and OAUTHBEARER: any well-formed token is accepted, as any password "
            "is (give --oauth-introspect URL to check tokens with an authorization server)"
        )
    return escape_controls(
        f"AUTH XOAUTH2 and OAUTHBEARER: each token is checked at {introspection.url} "
        f"as client {introspection.client_id}"
    )


async def _serve(sandbox: Sandbox, claim: Claim | None, apart: str, notes: list[str]) -> int:
    """Serve until Ctrl-C or SIGTERM; announced as the data dir's sandbox when it holds ``claim``."""
    import signal

    from tuimail import sandbox as sandbox_module
    from tuimail.sandbox.builtin import settings_of

    await sandbox.start()
    if claim is not None:
        sandbox_module.announce(sandbox, "serve", settings_of(sandbox.config, sandbox.faults))
        claim.port = sandbox.port
    try:
        config = sandbox.config
        print(
            f"tuimail sandbox listening on {config.host}:{sandbox.port} "
            f"({_listening_words(config.security)}); "
            f"mail kept in {sandbox.maildir_path}",
            file=sys.stderr,
            flush=True,
        )
        if apart:
            print(f"tuimail: {apart}", file=sys.stderr, flush=True)
        if sandbox.ca_file:
            print(f"clients can verify it with CA file {sandbox.ca_file}", file=sys.stderr)
        if not sandbox.client_profile().is_loopback:
            print(
                f"warning: listening on {config.host}: anyone who can reach it can send mail in",
                file=sys.stderr,
            )
        for note in [_token_words(config), *notes]:
            if note:
                print(note, file=sys.stderr, flush=True)
        for described in sandbox.faults.describe():
            print(f"fault: {described}", file=sys.stderr)
        for described in _limits(config):
            print(described, file=sys.stderr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        if claim is not None:
            sandbox_module.withdraw()  # nobody new finds it while it finishes
        if sandbox.active:
            print(f"stopping: finishing {len(sandbox.active)} session(s)", file=sys.stderr)
        await sandbox.stop()
        if sandbox.refused_connections:
            print(
                f"refused {sandbox.refused_connections:,} connection(s) beyond the cap of "
                f"{sandbox.max_connections:,} at once (see --max-connections)",
                file=sys.stderr,
            )
        print("tuimail sandbox stopped", file=sys.stderr)
    finally:
        if claim is not None:
            sandbox_module.withdraw()
    return exitcodes.OK
