"""``tuimail send``: one message, its SMTP conversation printed as it happens."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tuimail.cli import exitcodes
from tuimail.cli.common import (
    AUTH_CHOICES,
    AUTH_HELP,
    CLIError,
    add_secret_command_options,
    checked,
    local_time,
    password_for,
    retry_policy,
    run_session_command,
    saved_profile,
    seconds,
    secret_command_overrides,
    split_server,
)
from tuimail.cli.dkim import add_dkim_options
from tuimail.cli.pgp_options import add_pgp_options
from tuimail.cli.smime import add_smime_options

if TYPE_CHECKING:
    from tuimail.console import EntryPrinter
    from tuimail.credentials import Secret
    from tuimail.message import Draft, DraftInvalid, FieldError, OutgoingMessage
    from tuimail.outbox import Outcome
    from tuimail.profiles import Profile
    from tuimail.session import SessionReport


def define_options(send: argparse.ArgumentParser) -> None:
    send.description = "Send one message and print the SMTP conversation as it happens."
    send.epilog = exitcodes.help_text()
    send.formatter_class = argparse.RawDescriptionHelpFormatter
    add_connection_options(send, with_profile=True)
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
    send.add_argument(
        "--markdown",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send the text as Markdown with an HTML rendering (default: the profile's)",
    )
    send.add_argument(
        "--no-signature", action="store_true", help="do not add the profile's signature"
    )
    send.add_argument(
        "--template", metavar="NAME", help="start from a template in the config dir's templates/"
    )
    send.add_argument(
        "--edit",
        action="store_true",
        help="write the message in $VISUAL/$EDITOR (vi), then send, edit again, save as a "
        "draft or cancel; the other options fill it in first",
    )
    prepared = send.add_argument_group("a prepared message (as sendmail takes one)")
    prepared.add_argument(
        "--eml",
        metavar="PATH",
        help="send this RFC 5322 message as it is ('-' reads standard input)",
    )
    prepared.add_argument(
        "-t",
        "--read-recipients",
        action="store_true",
        help="with --eml: send to its To, Cc and Bcc (Bcc is removed from the message)",
    )
    direct = send.add_argument_group("direct delivery (no relay: each recipient domain's MX hosts)")
    direct.add_argument(
        "--direct",
        action="store_true",
        help="deliver to the recipients' mail servers found in DNS, one message per domain",
    )
    direct.add_argument(
        "--dns-server",
        metavar="HOST[:PORT]",
        help="with --direct: the resolver to ask (default: config.toml [dns] servers, "
        "else the system's)",
    )
    direct.add_argument(
        "--mx-port",
        type=int,
        default=None,
        metavar="N",
        help="with --direct: the MX port, for tests only (mail servers listen on 25)",
    )
    direct.add_argument(
        "--mta-sts-port",
        type=int,
        default=None,
        metavar="N",
        help="with --direct: the MTA-STS policy server's port, for tests only (443 is the real one)",
    )
    add_dkim_options(send)
    add_pgp_options(send)
    add_smime_options(send)
    send.add_argument("--json", action="store_true", help="print JSON Lines instead of text")
    send.add_argument(
        "--no-queue",
        action="store_true",
        help="one attempt, no outbox: nothing is kept or retried (as swaks does)",
    )
    send.add_argument("--quiet", "-q", action="store_true", help="print only the outcome")
    send.set_defaults(handler=cmd_send)


def add_connection_options(parser: argparse.ArgumentParser, *, with_profile: bool) -> None:
    """The server options of ``send``, shared with ``inbox release`` so both take the same."""
    group = parser.add_argument_group("server (a profile, or these settings)")
    if with_profile:
        group.add_argument("--profile", metavar="NAME", help="use a saved profile")
    group.add_argument("--server", metavar="HOST[:PORT]", help="connect to this server instead")
    group.add_argument("--security", choices=["tls", "starttls", "none"])
    group.add_argument("--user", metavar="USER", help="authenticate as USER")
    group.add_argument("--auth", choices=AUTH_CHOICES, help=AUTH_HELP)
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
    group.add_argument("--timeout", type=seconds, metavar="SECONDS", help="per-command timeout")
    group.add_argument(
        "--deadline",
        type=seconds,
        default=300.0,
        metavar="SECONDS",
        help="limit for the whole session",
    )
    secret = group.add_mutually_exclusive_group()
    secret.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )
    add_secret_command_options(secret)


def connection_profile(args: argparse.Namespace) -> Profile:
    """The profile named by ``--profile``, or one made from ``--server``, plus option overrides."""
    from tuimail.profiles import Profile, with_changes

    overrides: dict[str, object] = {}
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
    overrides.update(secret_command_overrides(args))
    if args.server:
        host, port = split_server(args.server)
        base = checked(lambda: Profile(name="command-line", host=host, port=port))
    elif getattr(args, "running_sandbox", None) is not None:
        base = args.running_sandbox
    elif args.profile:
        base = saved_profile(args.profile)
    else:
        raise CLIError("say where to send: --profile NAME or --server HOST[:PORT]", exitcodes.USAGE)
    return checked(lambda: with_changes(base, **overrides)) if overrides else base


def _wants_embedded_sandbox(args: argparse.Namespace) -> bool:
    """``--profile sandbox`` with no user profile of that name and no sandbox running.

    The built-in sandbox is one per data dir: a running one (the app's, or
    'tuimail serve''s) is used; else this process takes the claim and serves
    it for the length of the send (``args.sandbox_claim``).
    """
    if args.server or args.profile != "sandbox":
        return False  # decided before importing anything: start-up time
    from tuimail.profiles import ProfileStore
    from tuimail.sandbox_profile import SANDBOX_PROFILE, RunningSandbox, SandboxBusy, claim_or_find

    if SANDBOX_PROFILE in checked(ProfileStore().load):
        return False
    try:
        found = claim_or_find()
    except (SandboxBusy, OSError) as exc:
        raise CLIError(f"the sandbox could not start: {exc}") from None
    if isinstance(found, RunningSandbox):
        args.running_sandbox = found.profile()
        return False
    args.sandbox_claim = found
    return True


def send_profile(args: argparse.Namespace) -> tuple[Profile, bool]:
    """The profile to send through, and whether this process serves the built-in sandbox."""
    embedded = False if args.direct else _wants_embedded_sandbox(args)
    if args.direct:
        profile = _direct_base(args)
    elif embedded:
        from tuimail.sandbox_profile import builtin_profile

        profile = builtin_profile()
    else:
        profile = connection_profile(args)
    return profile, embedded


def cmd_send(args: argparse.Namespace) -> int:
    from tuimail.message import Draft, DraftInvalid, build_message

    if args.edit:
        _check_prepared_options(args)
        return _send_edited(args)
    profile, embedded = send_profile(args)
    _check_prepared_options(args)
    reads_stdin = args.eml is None and args.template is None
    if args.password_stdin and reads_stdin and args.body is None and args.body_file is None:
        raise CLIError(
            "with --password-stdin, give the text with --body or --body-file", exitcodes.USAGE
        )
    password = (
        None
        if args.direct
        else password_for(
            profile, args.password_stdin, saved=bool(args.profile and not args.server)
        )
    )
    if args.eml is not None:
        outgoing_or_code = _prepared_message(args)
        if isinstance(outgoing_or_code, int):
            return outgoing_or_code
        return send_outgoing(args, profile, outgoing_or_code, password, embedded)
    body = (
        ""
        if args.template is not None and args.body is None and args.body_file is None
        else _read_body(args)
    )
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
            markdown=profile.markdown if args.markdown is None else args.markdown,
        )
        draft = _started(args, profile, draft)
        outgoing = build_message(draft)
    except DraftInvalid as exc:
        return refused_exit(exc)
    return send_outgoing(args, profile, outgoing, password, embedded)


def _send_edited(args: argparse.Namespace) -> int:
    """``--edit``: the message from the options, written in the editor (tuimail/cli/edit_loop.py),
    then sent as any other; or kept as a draft, or dropped, as the user chose there.

    The profile to send through (and the built-in sandbox, when it is the one)
    is taken only once the user sends, not held while they write.
    """
    from tuimail.cli.edit_loop import edit_message
    from tuimail.message import Draft, DraftInvalid

    drafting = _drafting_profile(args)
    given_text = args.body is not None or args.body_file is not None
    try:
        draft = Draft(
            from_address=args.from_address or _profile_sender(drafting),
            to=list(args.to),
            cc=list(args.cc),
            bcc=list(args.bcc),
            reply_to=list(args.reply_to),
            subject=args.subject,
            body=_read_body(args) if given_text else "",
            attachments=list(args.attach),
            headers=[parse_header_option(h) for h in args.header],
            markdown=drafting.markdown if args.markdown is None else args.markdown,
        )
    except DraftInvalid as exc:
        return refused_exit(exc)
    edited = edit_message(_started(args, drafting, draft), args.profile or "")
    if isinstance(edited, int):
        return edited
    profile, embedded = send_profile(args)
    password = (
        None
        if args.direct
        else password_for(
            profile, args.password_stdin, saved=bool(args.profile and not args.server)
        )
    )
    return send_outgoing(args, profile, edited, password, embedded)


def _drafting_profile(args: argparse.Namespace) -> Profile:
    """The profile whose From and signature an edited message starts with; nothing claimed."""
    if args.direct:
        return _direct_base(args)
    if not args.server and args.profile == "sandbox":
        from tuimail.profiles import ProfileStore
        from tuimail.sandbox_profile import SANDBOX_PROFILE, builtin_profile

        if SANDBOX_PROFILE not in checked(ProfileStore().load):
            return builtin_profile()
    return connection_profile(args)


def refused_exit(exc: DraftInvalid) -> int:
    """Print each problem of an invalid message, naming this command's options; exit 3."""
    from tuimail.terminal_text import escape_controls

    for error in exc.errors:
        # An attachment error names the file, and file names may hold anything.
        line = f"tuimail: {_option_name(error.field)}: {_field_words(error)}"
        print(escape_controls(line), file=sys.stderr)
    return exitcodes.INVALID_MESSAGE


#: Options that write parts of a message: a prepared one (--eml) is already written.
_COMPOSING_OPTIONS = (
    ("from_address", "--from"),
    ("reply_to", "--reply-to"),
    ("subject", "--subject"),
    ("body", "--body"),
    ("body_file", "--body-file"),
    ("attach", "--attach"),
    ("header", "--header"),
    ("markdown", "--markdown"),
    ("template", "--template"),
    ("edit", "--edit"),
)


def _check_prepared_options(args: argparse.Namespace) -> None:
    """Refuse options that do not go with --eml (or -t without it) as usage errors."""
    if args.eml is None:
        if args.read_recipients:
            raise CLIError(
                "-t/--read-recipients reads a prepared message: give --eml", exitcodes.USAGE
            )
        return
    for attribute, option in _COMPOSING_OPTIONS:
        if getattr(args, attribute) not in (None, "", [], False):
            raise CLIError(
                f"--eml sends a message as it is written; {option} cannot change it",
                exitcodes.USAGE,
            )
    if args.eml == "-" and args.password_stdin:
        raise CLIError(
            "--eml - reads the message from standard input: not also the password",
            exitcodes.USAGE,
        )


def _prepared_message(args: argparse.Namespace) -> OutgoingMessage | int:
    """The message of --eml made ready to send, or exit 3 after saying why not."""
    from tuimail.eml import build_prepared
    from tuimail.message import MAX_MESSAGE_BYTES, DraftInvalid, read_regular_file
    from tuimail.small_files import NotReadable

    if args.eml == "-":
        raw = sys.stdin.buffer.read(MAX_MESSAGE_BYTES + 1)
    else:
        try:
            raw = read_regular_file(Path(args.eml))
        except NotReadable as exc:
            raise CLIError(f"--eml: {args.eml!r} {exc.words}", exitcodes.INVALID_MESSAGE) from None
    try:
        return build_prepared(
            raw, to=args.to, cc=args.cc, bcc=args.bcc, read_recipients=args.read_recipients
        )
    except DraftInvalid as exc:
        return refused_exit(exc)


def _started(args: argparse.Namespace, profile: Profile, draft: Draft) -> Draft:
    """The draft as a new message starts: from --template, then with the signature."""
    from tuimail.errors import NotFound
    from tuimail.signatures import SignatureUnreadable, add_signature, signature_of
    from tuimail.templates import (
        TemplateError,
        TemplateNameInvalid,
        apply_template,
        fields_for,
        load_template,
    )

    if args.template is not None:  # "" too: refused as a name, never ignored
        import datetime

        try:
            template = load_template(args.template)
        except TemplateNameInvalid as exc:
            raise CLIError(f"--template: {exc}", exitcodes.USAGE) from None
        except TemplateError as exc:
            raise CLIError(f"--template: {exc}") from None
        except NotFound as exc:
            raise CLIError(f"--template: {exc}") from None
        today = datetime.date.today().isoformat()
        draft = apply_template(draft, template, fields_for(draft, profile.name, today))
    if not args.no_signature:
        try:
            signature = signature_of(profile)
        except SignatureUnreadable as exc:
            raise CLIError(f"{exc} (or send with --no-signature)") from None
        draft.body = add_signature(draft.body, signature)
    return draft


def send_outgoing(
    args: argparse.Namespace,
    profile: Profile,
    outgoing: OutgoingMessage,
    password: Secret | None,
    embedded: bool,
) -> int:
    """Send a built message: to the embedded sandbox, once (--no-queue), or via the outbox.

    Signing and encryption, when the profile or the options ask for them, are
    the last changes (tuimail/cli/protection.py): the outbox stores the signed
    bytes, so a retry sends them as signed.
    """
    from tuimail.cli.protection import protected_as_asked
    from tuimail.session import send

    outgoing = protected_as_asked(args, profile, outgoing)
    if getattr(args, "direct", False):
        return _send_direct(args, profile, outgoing)
    warn_if_over_seen_limit(profile, len(outgoing.to_bytes()), server=getattr(args, "server", None))
    if embedded:
        return run_session_command(
            args, lambda printer: _send_to_embedded_sandbox(args, outgoing, printer)
        )
    if args.no_queue:
        return run_session_command(
            args,
            lambda printer: send(
                profile, outgoing, password, on_entry=printer, deadline=args.deadline
            ),
        )
    return _send_through_outbox(args, profile, outgoing, password)


def warn_if_over_seen_limit(profile: Profile, size: int, *, server: str | None = None) -> None:
    """Say on standard error when the message is larger than the profile's server took
    when last seen (tuimail/size_limits.py); the send goes on: the session refuses it
    before MAIL if the limit the server announces now is still smaller. ``server`` is
    the ``--server`` given, named instead of the profile the command line made of it."""
    import time

    from tuimail.size_limits import age_words, last_seen, server_key, size_words

    seen = last_seen(profile.name, server_key(profile.host, profile.effective_port))
    if seen is None or seen.limit is None or size <= seen.limit:
        return
    which = f"server {server}" if server else f"server of profile {profile.name}"
    print(
        f"tuimail: warning: the message is {size_words(size)} ({size:,} bytes) and the "
        f"{which} accepted at most {size_words(seen.limit)} "
        f"({seen.limit:,} bytes) when last seen, {age_words(time.time() - seen.seen_at)}; "
        "it will probably refuse it",
        file=sys.stderr,
    )


def _send_through_outbox(
    args: argparse.Namespace, profile: Profile, outgoing: OutgoingMessage, password: Secret | None
) -> int:
    """Store durably, then try once; a temporary failure stays queued (exit 75)."""
    from tuimail.outbox import Outbox, OutboxError, Result, short_id

    outbox = Outbox(policy=retry_policy())
    try:
        # A --server send never follows a saved profile; saying so spares a read.
        follows = None if not args.server and not getattr(args, "direct", False) else False
        queued = outbox.enqueue(
            profile,
            outgoing,
            follows_profile=follows,
            # A release (tuimail inbox release): recipients given apart from the message.
            explicit_envelope=getattr(args, "explicit_envelope", False),
        )
    except OutboxError as exc:
        raise CLIError(str(exc), exitcodes.STORE_FAILED) from None
    outcome: Outcome | None = None

    async def attempt(printer: EntryPrinter | None) -> SessionReport:
        nonlocal outcome
        outcome = await outbox.attempt(
            queued.key, password, on_entry=printer, deadline=args.deadline, outgoing=outgoing
        )
        if outcome.report is None:
            raise _NotTried
        return outcome.report

    try:
        code = run_session_command(args, attempt)
    except _NotTried:
        from tuimail.terminal_text import escape_controls

        # Another process (a cron flush) took the message between queueing and
        # this attempt: it is in the outbox's hands, and this command must
        # not look like a failure a script would answer by sending again.
        assert outcome is not None
        print(
            f"tuimail: {short_id(queued.key)} was not tried by this command: "
            f"{escape_controls(outcome.detail)} ('tuimail outbox list' shows where it is)",
            file=sys.stderr,
        )
        return exitcodes.QUEUED
    assert outcome is not None
    if outcome.result is Result.QUEUED:
        when = local_time(outbox.get(queued.key).next_attempt)
        print(
            f"tuimail: queued for retry as {short_id(queued.key)} (next attempt {when}); "
            "'tuimail outbox flush' sends due messages",
            file=sys.stderr,
        )
        # Waiting for the user to sign in, not for the server: scripts can tell.
        return exitcodes.SIGN_IN_NEEDED if code == exitcodes.SIGN_IN_NEEDED else exitcodes.QUEUED
    if outcome.result in (Result.FAILED, Result.POSSIBLY_DELIVERED):
        note = (
            "it may have arrived; 'tuimail outbox retry' would send the same message again"
            if outcome.result is Result.POSSIBLY_DELIVERED
            else "kept in the outbox as failed; 'tuimail outbox retry' or 'drop'"
        )
        print(f"tuimail: {short_id(queued.key)}: {note}", file=sys.stderr)
    return code


#: Options that name a relay or an account: direct delivery has neither.
_RELAY_OPTIONS = (
    ("profile", "--profile"),
    ("server", "--server"),
    ("security", "--security"),
    ("user", "--user"),
    ("auth", "--auth"),
    ("no_verify", "--no-verify"),
    ("allow_plaintext_auth", "--allow-plaintext-auth"),
    ("password_stdin", "--password-stdin"),
    ("password_command", "--password-command"),
    ("token_command", "--token-command"),
)


def _direct_base(args: argparse.Namespace) -> Profile:
    """The settings a --direct send drafts with (no relay, no account); each domain gets its own."""
    from tuimail.profiles import Profile, Security

    for name, flag in _RELAY_OPTIONS:
        if getattr(args, name, None):
            raise CLIError(
                f"--direct sends to each domain's MX hosts: {flag} has no use with it",
                exitcodes.USAGE,
            )
    for port, flag in ((args.mx_port, "--mx-port"), (args.mta_sts_port, "--mta-sts-port")):
        if port is not None and not 0 < port < 65536:
            raise CLIError(f"{flag}: a port number from 1 to 65535", exitcodes.USAGE)
    return checked(lambda: Profile(name="direct", host="direct", port=25, security=Security.NONE))


def _direct_settings(args: argparse.Namespace) -> tuple[str, list[str]]:
    """The EHLO name (--ehlo, else [direct] ehlo_name, else the FQDN) and the resolvers."""
    from tuimail import user_config
    from tuimail.mx import parse_server
    from tuimail.routing import (
        EHLO_CONFIG,
        EHLO_GIVEN,
        EhloNameRefused,
        choose_ehlo_name,
    )

    config = user_config.load_config()
    try:
        configured = "" if args.ehlo else user_config.direct_ehlo_name(config)
    except user_config.ConfigError as exc:
        raise CLIError(str(exc)) from None
    try:
        ehlo = choose_ehlo_name(args.ehlo or "", configured)
    except EhloNameRefused as exc:
        source = {EHLO_GIVEN: "--ehlo", EHLO_CONFIG: "config.toml [direct] ehlo_name"}.get(
            exc.source, "this machine's name"
        )
        raise CLIError(
            f"{source}: {exc}; give one with --ehlo NAME or [direct] ehlo_name in config.toml",
            exitcodes.USAGE,
        ) from None
    if args.dns_server:
        servers = [args.dns_server]
    else:
        try:
            servers = user_config.dns_servers(config)
        except user_config.ConfigError as exc:
            raise CLIError(str(exc)) from None
    for server in servers:
        try:
            parse_server(server)
        except ValueError as exc:
            raise CLIError(f"--dns-server: {exc}", exitcodes.USAGE) from None
    return ehlo, servers


def _send_direct(args: argparse.Namespace, base: Profile, outgoing: OutgoingMessage) -> int:
    """One message for every recipient domain, through the outbox (or once with --no-queue).

    tuimail/routing.py tries each domain's MX hosts; a domain that fails for
    now is retried alone, as recipients refused for now are.
    """
    from tuimail.routing import HTTPS_PORT, SMTP_PORT, by_domain, direct_profile, send_direct

    ehlo, servers = _direct_settings(args)
    domains = list(by_domain(outgoing.envelope_recipients))
    profile = direct_profile(
        domains[0],
        ehlo_name=ehlo,
        mx_port=args.mx_port or SMTP_PORT,
        dns_servers=servers,
        ca_file=args.ca_file or "",
        timeout=args.timeout or base.timeout,
        mta_sts_port=args.mta_sts_port or HTTPS_PORT,
    )
    if args.no_queue:
        return run_session_command(
            args,
            lambda printer: send_direct(
                profile, outgoing, on_entry=printer, deadline=args.deadline
            ),
        )
    return _send_through_outbox(args, profile, outgoing, None)


async def _send_to_embedded_sandbox(
    args: argparse.Namespace, outgoing: OutgoingMessage, printer: EntryPrinter | None
) -> SessionReport:
    """Serve the built-in sandbox in this process for one send, and show both sides.

    This process holds the claim (no sandbox ran: see :func:`_wants_embedded_sandbox`)
    and announces the sandbox while it runs, so an app started meanwhile uses
    it and takes over serving when it stops. It starts on the port the app's
    would (config.toml's ``[sandbox] port``, else 2525), falling back to a free port with a note, through the same
    :func:`~tuimail.sandbox.builtin.start_builtin`.
    """
    from tuimail import user_config
    from tuimail.console import EntryPrinter
    from tuimail.faults import FaultPlan
    from tuimail.sandbox import Sandbox, SandboxConfig, SandboxError, announce, withdraw
    from tuimail.sandbox.builtin import settings_of, start_builtin
    from tuimail.sandbox.config import chaos_from_table
    from tuimail.session import send

    claim = args.sandbox_claim
    loaded = user_config.load_config()
    port, problem = user_config.sandbox_port(loaded)
    # The throttle, recipient limit and accept probability of [sandbox], as the app's.
    chaos, problems = chaos_from_table(loaded.tables.get("sandbox", {}))
    for said in (problem, *problems):
        if said:
            print(f"tuimail: {said}", file=sys.stderr)
    faults = FaultPlan(accept_probability=float(chaos.pop("accept_probability", 1.0)))
    try:
        try:
            sandbox, note = await start_builtin(
                port, lambda port: Sandbox(SandboxConfig(port=port, **chaos), faults=faults)
            )
        except SandboxError as exc:
            raise CLIError(f"the sandbox could not start: {exc}") from None
        if note:
            print(f"tuimail: {note}", file=sys.stderr)
        try:
            # Others (the app, another send) use it while this send runs.
            announce(sandbox, "send", settings_of(sandbox.config, sandbox.faults))
            claim.port = sandbox.port
            profile = sandbox.client_profile()
            report = await send(profile, outgoing, None, on_entry=printer, deadline=args.deadline)
        finally:
            withdraw()  # nobody new finds it while it stops
            await sandbox.stop()
    finally:
        claim.release()
    if printer is not None:
        if not args.json:
            print(f"--- the sandbox's side (mail kept in {sandbox.maildir_path}) ---")
        server_printer = EntryPrinter(as_json=args.json, prefix="sandbox" if args.json else "")
        for record in sandbox.sessions:
            for entry in record.transcript:
                server_printer(entry)
    return report


def _profile_sender(profile: Profile) -> str:
    from tuimail.addresses import mailbox_text

    return mailbox_text(profile.display_name, profile.from_address) if profile.from_address else ""


def parse_header_option(text: str) -> tuple[str, str]:
    """Split ``'Name: value'`` as given to ``--header``."""
    from tuimail.message import DraftInvalid, FieldError, split_header

    pair = split_header(text)
    if pair is None:
        raise DraftInvalid([FieldError("--header", f"{text!r} is not in the form 'Name: value'")])
    return pair


def _field_words(error: FieldError) -> str:
    """The core's sentence, naming this command's option where it names a draft field."""
    if error.instead:
        return f"cannot be set as an extra header; use {_option_name(error.instead)} instead"
    return error.message


def _option_name(field: str) -> str:
    return (
        f"--{field}"
        if field in ("from", "to", "cc", "bcc", "reply-to", "subject", "body", "eml")
        else field
    )


def _read_body(args: argparse.Namespace) -> str:
    """The message text, bounded as attachments are: only a regular file, and
    never more than a message may hold (``/dev/zero`` or a FIFO would not end)."""
    from tuimail.message import MAX_MESSAGE_BYTES, decode_text, read_text_file
    from tuimail.small_files import NotReadable

    if args.body is not None:
        return str(args.body)
    if args.body_file is not None:
        try:
            return read_text_file(Path(args.body_file))
        except NotReadable as exc:
            raise CLIError(
                f"--body-file: {str(args.body_file)!r} {exc.words}", exitcodes.INVALID_MESSAGE
            ) from None
    if sys.stdin.isatty():
        print("Type the message; end with Ctrl-D.", file=sys.stderr)
    data = sys.stdin.buffer.read(MAX_MESSAGE_BYTES + 1)
    if len(data) > MAX_MESSAGE_BYTES:
        limit = MAX_MESSAGE_BYTES // (1024 * 1024)
        raise CLIError(
            f"the text on standard input is larger than the limit of {limit} MiB",
            exitcodes.INVALID_MESSAGE,
        )
    try:
        return decode_text(data)
    except NotReadable as exc:
        raise CLIError(
            f"the text on standard input {exc.words}", exitcodes.INVALID_MESSAGE
        ) from None


class _NotTried(Exception):
    """The outbox did not try the message just queued (another process holds it)."""
