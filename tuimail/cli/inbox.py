"""``tuimail inbox``: the sandbox's Maildir as an inbox for scripts and test suites.

List, show, search, delete, save attachments, release a message to a real
server, and wait for one to arrive. Everything a message says is escaped
before it reaches the terminal; ``--json`` goes through ``terminal_json``.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuimail.cli import exitcodes
from tuimail.cli.common import CLIError, local_time, seconds

if TYPE_CHECKING:
    from tuimail.inbox import InboxEntry, InboxIndex, MailboxRule
    from tuimail.inbox.authcheck import Checked
    from tuimail.inbox.mime import MessageView
    from tuimail.inbox.protection_view import ProtectionReport

#: ``wait`` gives up after this long unless --timeout says otherwise.
DEFAULT_WAIT = 30.0
#: Exit code of ``inbox wait`` when nothing matched in time, and of a missing message.
NOT_FOUND = 1


def define_options(inbox: argparse.ArgumentParser) -> None:
    inbox.description = (
        "What the sandbox caught, kept across restarts: list, show, search, delete, save "
        "attachments, release to a real server, and wait for a message."
    )
    inbox.epilog = (
        "exit codes: 0 done, 1 no such message (wait: none arrived in time), "
        "2 bad arguments or an ambiguous id, 3 release: the message cannot be sent as it is, "
        "4 config.toml or the index cannot be used; release gives 'tuimail send''s codes"
    )
    actions = inbox.add_subparsers(dest="inbox_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="the newest messages first")
    listing.add_argument("--mailbox", metavar="M", help="only this mailbox")
    listing.add_argument("--limit", type=int, default=100, metavar="N", help="at most N (100)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)

    show = actions.add_parser("show", help="one message: headers, text, HTML as text, parts")
    show.add_argument("id", metavar="ID", help="a message id, or an unambiguous prefix of one")
    shown = show.add_mutually_exclusive_group()
    shown.add_argument("--raw", action="store_true", help="the message as received")
    shown.add_argument("--json", action="store_true")
    add_check_options(show)
    show.set_defaults(handler=cmd_show)

    search = actions.add_parser(
        "search",
        help="from:, to:, subject:, mailbox:, tag:, has:attachment, is:read|unread, free text",
    )
    search.add_argument("query", metavar="QUERY")
    search.add_argument("--limit", type=int, default=100, metavar="N", help="at most N (100)")
    search.add_argument("--json", action="store_true")
    search.set_defaults(handler=cmd_search)

    delete = actions.add_parser("delete", help="delete messages (their files and index rows)")
    delete.add_argument("ids", nargs="*", metavar="ID")
    delete.add_argument("--all", action="store_true", help="every message of the Maildir")
    delete.add_argument("--yes", action="store_true", help="with --all: do not ask")
    delete.set_defaults(handler=cmd_delete)

    save = actions.add_parser("save", help="save attachments under safe names")
    save.add_argument("id", metavar="ID")
    save.add_argument("part", nargs="?", metavar="PART", help="a part number or file name")
    save.add_argument("--all", action="store_true", help="every attachment")
    save.add_argument("--dir", type=Path, default=Path("."), metavar="DIR")
    save.set_defaults(handler=cmd_save)

    release = actions.add_parser(
        "release",
        help="send a captured message on to a real server (a profile or --server)",
    )
    release.description = (
        "Sends the message as it was captured, through the outbox like 'tuimail send', "
        "to its envelope recipients or to --to."
    )
    release.epilog = exitcodes.help_text()
    release.formatter_class = argparse.RawDescriptionHelpFormatter
    release.add_argument("id", metavar="ID")
    from tuimail.cli.send import add_connection_options

    add_connection_options(release, with_profile=True)
    release.add_argument(
        "--to", action="append", default=[], metavar="ADDR", help="recipient instead (repeatable)"
    )
    release.add_argument("--json", action="store_true", help="print JSON Lines instead of text")
    release.add_argument("--no-queue", action="store_true", help="one attempt, no outbox")
    release.add_argument("--quiet", "-q", action="store_true", help="print only the outcome")
    release.set_defaults(handler=cmd_release)

    wait = actions.add_parser(
        "wait", help="wait until a matching message is in the inbox (one there already counts)"
    )
    wait.add_argument("--to", default="", metavar="ADDR", help="a recipient contains this")
    wait.add_argument("--from", dest="from_address", default="", metavar="ADDR")
    wait.add_argument("--subject", default="", metavar="TEXT", help="the subject contains this")
    wait.add_argument(
        "--timeout", type=seconds, default=DEFAULT_WAIT, metavar="SECONDS", help="(30)"
    )
    wait.add_argument("--new", action="store_true", help="only a message arriving after the call")
    wait.add_argument("--json", action="store_true")
    wait.set_defaults(handler=cmd_wait)


def add_check_options(show: argparse.ArgumentParser) -> None:
    """The authentication check's options (each overrides config.toml's ``[inbox.check]``)."""
    check = show.add_argument_group(
        "authentication check",
        "DKIM, SPF and DMARC as a receiver would check them, and a spam score from spamd "
        "(config.toml: [inbox.check] spf_ip, dkim_keys, spamd, dns_timeout; [dns] servers)",
    )
    check.add_argument(
        "--no-check", action="store_true", help="show the message without checking it"
    )
    check.add_argument(
        "--spf-ip", metavar="IP", help="evaluate SPF as if the message came from this address"
    )
    check.add_argument(
        "--dkim-key",
        action="append",
        default=[],
        metavar="[NAME=]FILE",
        help="a DKIM public key (DNS record text or PEM; a PEM private key gives its public "
        "half) instead of DNS: for every signature, or only for NAME "
        "(SELECTOR._domainkey.DOMAIN); repeatable",
    )
    check.add_argument(
        "--dns-server",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="ask this resolver (repeatable; default: [dns] servers, else the system's)",
    )
    check.add_argument("--spamd", metavar="HOST[:PORT]", help="score the message with spamd")
    check.add_argument(
        "--dns-timeout", type=seconds, metavar="SECONDS", help="for each DNS question (5)"
    )


def _check_settings(args: argparse.Namespace) -> Any:
    """The check's settings: config.toml, then the flags (exit 2 for a bad flag, 4 for the file)."""
    import dataclasses

    from tuimail.inbox import authcheck, spamc
    from tuimail.user_config import ConfigError, load_config

    try:
        settings = authcheck.settings_from_config(load_config())
    except (authcheck.CheckSettingInvalid, ConfigError) as exc:
        raise CLIError(f"{exc} (or give --no-check)") from None
    changes: dict[str, Any] = {}

    def parsed(flag: str, parse: Callable[[str], Any], value: str) -> Any:
        try:
            return parse(value)
        except ValueError as exc:
            raise CLIError(f"{flag}: {exc}", exitcodes.USAGE) from None

    if args.spf_ip is not None:
        changes["spf_ip"] = parsed("--spf-ip", authcheck.parse_ip, args.spf_ip)
    if args.dkim_key:
        loaded = tuple(parsed("--dkim-key", authcheck.load_key_file, k) for k in args.dkim_key)
        changes["dkim_keys"] = loaded + settings.dkim_keys
    if args.spamd is not None:
        changes["spamd"] = parsed("--spamd", spamc.parse_address, args.spamd)
    for server in args.dns_server:
        try:
            authcheck.check_dns_server(server, "--dns-server")
        except authcheck.CheckSettingInvalid as exc:
            raise CLIError(str(exc), exitcodes.USAGE) from None
    if args.dns_server:
        changes["dns_servers"] = tuple(args.dns_server)
    if args.dns_timeout is not None:
        changes["dns_timeout"] = min(args.dns_timeout, 60.0)
    return dataclasses.replace(settings, **changes)


def _handled(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``handler`` with the index's failures worded as the command line's (exit 4), never a traceback."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        import sqlite3

        from tuimail.inbox import IndexBusy

        try:
            return handler(args)
        except IndexBusy as exc:
            raise CLIError(str(exc)) from None
        except sqlite3.Error as exc:
            raise CLIError(f"the inbox index cannot be used: {exc}") from None

    return run


def _open_index(catch_up: bool = True) -> InboxIndex:
    """The built-in sandbox's inbox, caught up with its Maildir (unless not ``catch_up``:
    ``wait`` does it within its timeout)."""
    from tuimail.inbox import IndexBusy, MailboxRuleInvalid, rules_from_config
    from tuimail.user_config import load_config

    config = load_config()
    if config.problem:
        raise CLIError(config.problem)
    try:
        index = _sandbox_index(rules_from_config(config.tables))
        if catch_up:
            index.refresh()
    except MailboxRuleInvalid as exc:
        raise CLIError(str(exc)) from None
    except IndexBusy as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:
        raise CLIError(f"the inbox cannot be read: {exc}") from None
    if index.rebuilt_because:
        print(f"tuimail: {index.rebuilt_because}", file=sys.stderr)
    return index


def _sandbox_index(rules: tuple[MailboxRule, ...]) -> InboxIndex:
    """The inbox of the built-in sandbox's Maildir: the one the running sandbox keeps
    (``tuimail serve --maildir DIR``), as F5 lists it, else the data dir's."""
    from tuimail.inbox import InboxIndex
    from tuimail.sandbox_profile import running_sandbox

    running = running_sandbox()
    if running is not None and running.maildir and running.sessions_dir:
        return InboxIndex.beside(Path(running.maildir), Path(running.sessions_dir), rules)
    return InboxIndex.for_sandbox(rules)


def _find(index: InboxIndex, prefix: str) -> InboxEntry:
    from tuimail.errors import NotFound
    from tuimail.inbox import Ambiguous
    from tuimail.terminal_text import escape_controls

    try:
        return index.find(prefix)
    except NotFound:
        raise CLIError(f"no message {escape_controls(prefix)!r} in the inbox", NOT_FOUND) from None
    except Ambiguous as exc:
        names = "\n  ".join(exc.matches)
        more = " (and more)" if len(exc.matches) >= 20 else ""
        raise CLIError(
            f"{escape_controls(prefix)!r} names several messages{more}; give more of the id:\n"
            f"  {escape_controls(names, keep_newlines=True)}",
            exitcodes.USAGE,
        ) from None


def _line(entry: InboxEntry) -> str:
    from tuimail.terminal_text import escape_controls

    to = entry.to or " ".join(entry.envelope_to)
    flags = ("" if entry.read else "*") + ("@" if entry.has_attachment else "")
    tags = f" [{' '.join(entry.tags)}]" if entry.tags else ""
    text = (
        f"{entry.id}  {local_time(entry.received_at)}  {entry.mailbox}{tags}  {flags or '-'}  "
        f"{entry.mail_from or entry.envelope_from} -> {to}  {entry.subject!s}  "
        f"({entry.size:,} bytes)"
    )
    return escape_controls(text)


def _print_entries(entries: tuple[InboxEntry, ...], as_json: bool, empty: str) -> None:
    if as_json:
        from tuimail.console import terminal_json

        print(terminal_json([e.to_json() for e in entries], indent=2))
    elif not entries:
        print(empty)
    else:
        for entry in entries:
            print(_line(entry))


@_handled
def cmd_list(args: argparse.Namespace) -> int:
    with _open_index() as index:
        page = index.page(mailbox=args.mailbox, limit=max(1, args.limit))
        _print_entries(page.entries, args.json, "The inbox is empty.")
    return exitcodes.OK


@_handled
def cmd_search(args: argparse.Namespace) -> int:
    with _open_index() as index:
        page = index.page(args.query, limit=max(1, args.limit))
        _print_entries(page.entries, args.json, "No message matches.")
    return exitcodes.OK


def _read(index: InboxIndex, entry: InboxEntry) -> bytes:
    from tuimail.errors import NotFound

    try:
        return index.read_bytes(entry)
    except (NotFound, FileNotFoundError):
        raise CLIError(f"message {entry.id} was deleted meanwhile", NOT_FOUND) from None
    except OSError as exc:
        raise CLIError(f"message {entry.id} cannot be read: {exc}", NOT_FOUND) from None


@_handled
def cmd_show(args: argparse.Namespace) -> int:
    from tuimail.inbox.mime import view
    from tuimail.terminal_text import escape_controls

    settings = None if args.raw or args.no_check else _check_settings(args)
    with _open_index() as index:
        entry = _find(index, args.id)
        raw = _read(index, entry)
    if args.raw:
        if sys.stdout.isatty():
            text = raw.decode("utf-8", "replace").replace("\r\n", "\n")
            print(escape_controls(text, keep_newlines=True))
        else:  # into a file or a pipe: the exact bytes, as captured
            sys.stdout.flush()
            sys.stdout.buffer.write(raw)
            sys.stdout.buffer.flush()
        return exitcodes.OK
    shown = view(raw)
    checked = None
    if settings is not None:
        from tuimail.inbox.authcheck import check_blocking, envelope_sender

        sender = envelope_sender(entry.envelope_from, entry.envelope_to, entry.session_id)
        checked = check_blocking(raw, sender, settings)
    from tuimail.inbox.protection_view import describe  # gpg and openssl check signatures

    protection = describe(raw, dkim=checked.dkim if checked is not None else None)
    if args.json:
        from tuimail.console import terminal_json

        document: dict[str, Any] = {
            **entry.to_json(),
            "headers": [[name, value] for name, value in shown.headers],
            "text": shown.text,
            "html_as_text": shown.html_text,
            "parts": [_part_json(p) for p in shown.parts],
            "authentication": checked.to_json() if checked is not None else None,
            "spam": checked.spam.to_json() if checked and checked.spam else None,
        }
        from tuimail.smime import smime_json  # openssl checks a signature (tuimail/smime.py)

        document["smime"] = smime_json(raw)
        document["protection"] = protection.to_json()
        print(terminal_json(document, indent=2))
        return exitcodes.OK
    for line in _show_lines(entry, shown, checked, protection):
        print(escape_controls(line, keep_newlines=True))
    return exitcodes.OK


def _part_json(part: Any) -> dict[str, Any]:
    return {
        "number": part.number,
        "depth": part.depth,
        "content_type": part.content_type,
        "size": part.size,
        "filename": part.filename,
        "attachment": part.is_attachment,
        "unread": part.unread,
    }


def _show_lines(
    entry: InboxEntry, shown: MessageView, checked: Checked | None, protection: ProtectionReport
) -> list[str]:
    from tuimail.inbox.mime import header_block

    lines = [f"Id: {entry.id}", f"Received: {local_time(entry.received_at)}"]
    heads = ("From", "To", "Cc", "Subject", "Date", "Message-ID")
    lines += [f"{name}: {value}" for name, value in header_block(heads, shown.header, protection)]
    if entry.envelope_from or entry.envelope_to:
        lines.append(f"Envelope: {entry.envelope_from} -> {', '.join(entry.envelope_to)}")
    lines.append(
        f"Mailbox: {entry.mailbox}"
        + (f"  tags: {' '.join(entry.tags)}" if entry.tags else "")
        + (f"  session: {entry.session_id}" if entry.session_id else "")
        + (f"  authenticated as: {entry.auth_user}" if entry.auth_user else "")
    )
    if checked is not None:
        lines.append(f"Authentication-Results: {checked.authentication_results()}")
        if checked.spam is not None:
            lines.append(f"Spam: {checked.spam.words()}")
    lines += [
        f"Protection: {line.strip()}" for line in protection.lines() if not line.startswith("  ")
    ]
    lines.append("")
    if shown.text:
        lines.append(shown.text.replace("\r\n", "\n").rstrip("\n"))
    if shown.html_text:
        lines += ["", "--- the HTML part, as text ---", shown.html_text]
    lines += ["", "--- MIME structure ---"]
    for part in shown.parts:
        name = f"  {part.filename!r}" if part.filename else ""
        mark = "  attachment" if part.is_attachment else ""
        mark += f"  (its headers were not read: {part.unread})" if part.unread else ""
        lines.append(f"{part.number:>3} {'  ' * part.depth}{part.content_type}{name}"
                     f"  {part.size:,} bytes{mark}")  # fmt: skip
    attachments = shown.attachments
    if attachments:
        lines += ["", f"{len(attachments)} attachment(s): 'tuimail inbox save {entry.id} --all'"]
    return lines


@_handled
def cmd_save(args: argparse.Namespace) -> int:
    from tuimail.inbox.mime import part_bytes, safe_filename, save_part, view
    from tuimail.terminal_text import escape_controls

    if bool(args.all) == bool(args.part):
        raise CLIError("say what to save: a PART (number or file name) or --all", exitcodes.USAGE)
    with _open_index() as index:
        entry = _find(index, args.id)
        raw = _read(index, entry)
    parts = view(raw).parts
    if args.all:
        chosen = [p for p in parts if p.is_attachment]
        if not chosen:
            print("The message has no attachment.")
            return exitcodes.OK
    else:
        chosen = [
            p
            for p in parts
            if not p.content_type.startswith("multipart/")
            and (str(p.number) == args.part or (p.filename and p.filename == args.part))
        ]
        if not chosen:
            raise CLIError(
                f"the message has no part {escape_controls(args.part)!r} "
                "('tuimail inbox show' lists them)",
                NOT_FOUND,
            )
    if not args.dir.is_dir():
        raise CLIError(
            f"--dir: {escape_controls(str(args.dir))!r} is not a directory", exitcodes.USAGE
        )
    for part in chosen[:1] if not args.all else chosen:
        name = safe_filename(part.filename, f"part-{part.number}")
        try:
            path = save_part(args.dir, name, part_bytes(raw, part.number))
        except OSError as exc:
            raise CLIError(f"could not save {escape_controls(name)!r}: {exc}") from None
        renamed = f" (the message calls it {part.filename!r})" if part.filename != path.name else ""
        print(escape_controls(f"saved {path}{renamed}"))
    return exitcodes.OK


def _refused_in_words(delete: Callable[[], int]) -> int:
    """``delete()``; the Maildir refusing (a read-only disk, another owner) is exit 4 in words."""
    from tuimail.terminal_text import escape_controls

    try:
        return delete()
    except OSError as exc:
        raise CLIError(f"the sandbox's Maildir refused: {escape_controls(str(exc))}") from None


@_handled
def cmd_delete(args: argparse.Namespace) -> int:
    if args.all == bool(args.ids):
        raise CLIError("say what to delete: IDs, or --all", exitcodes.USAGE)
    with _open_index() as index:
        if args.all:
            count = index.count()
            if not args.yes:
                if not sys.stdin.isatty():
                    raise CLIError(
                        "--all deletes every message: confirm with --yes", exitcodes.USAGE
                    )
                answer = input(f"Delete all {count:,} messages of the sandbox's inbox? [y/N] ")
                if answer.strip().lower() not in ("y", "yes"):
                    print("Nothing deleted.")
                    return exitcodes.OK
            removed = _refused_in_words(index.delete_all)
            print(f"Deleted {removed:,} message{'s' * (removed != 1)}.")
            return exitcodes.OK
        entries = [_find(index, prefix) for prefix in args.ids]  # all found, or none deleted
        _refused_in_words(lambda: index.delete(entries))
        for entry in entries:
            print(f"deleted {entry.id}")
    return exitcodes.OK


@_handled
def cmd_wait(args: argparse.Namespace) -> int:
    from tuimail.inbox import IndexBusy
    from tuimail.inbox.query import filters

    query = filters(to=args.to, mail_from=args.from_address, subject=args.subject)
    started = time.monotonic()
    found = None
    with _open_index(catch_up=False) as index:
        # Another process may hold the index's lock: what the index holds still
        # counts, but "new" needs every message there before the call indexed.
        try:
            index.refresh_within(args.timeout if args.new else args.timeout / 2)
            caught_up = True
        except IndexBusy:
            caught_up = False
        if caught_up or not args.new:
            after = index.newest_row() if args.new else 0
            left = max(0.0, args.timeout - (time.monotonic() - started))
            found = index.wait_for(query, timeout=left, after_row=after)
    if found is None:
        print(f"tuimail: no matching message arrived within {args.timeout:g} s", file=sys.stderr)
        return NOT_FOUND
    if args.json:
        from tuimail.console import terminal_json

        print(terminal_json({**found.to_json(), "waited": round(time.monotonic() - started, 3)}))
    else:
        print(_line(found))
    return exitcodes.OK


@_handled
def cmd_release(args: argparse.Namespace) -> int:
    """The captured bytes, to the envelope's recipients or --to, through ``send``'s path.

    The recipients are given apart from the message (as sendmail's command
    line gives them), so the outbox keeps the entry as one whose envelope
    was given explicitly: queued, retried and never sent twice like any
    other, and sent to those recipients alone, whoever its To and Cc name.
    """
    from email.utils import getaddresses

    from tuimail.cli.common import password_for
    from tuimail.cli.send import connection_profile, refused_exit, send_outgoing
    from tuimail.inbox.mime import view
    from tuimail.message import DraftInvalid
    from tuimail.outbox import release_outgoing

    with _open_index() as index:
        entry = _find(index, args.id)
        raw = _read(index, entry)
    profile = connection_profile(args)
    recipients = list(args.to or entry.envelope_to)
    if not recipients:
        shown = view(raw)
        named = shown.all_values("To") + shown.all_values("Cc")
        recipients = [a for _, a in getaddresses(named) if a]
    if not recipients:
        raise CLIError(
            "the message names no recipient (no session file, no To or Cc): give --to",
            exitcodes.USAGE,
        )
    try:
        outgoing = release_outgoing(raw, recipients)
    except DraftInvalid as exc:
        return refused_exit(exc)
    args.explicit_envelope = True  # the outbox's record says so (see release_outgoing)
    password = password_for(
        profile, args.password_stdin, saved=bool(args.profile and not args.server)
    )
    return send_outgoing(args, profile, outgoing, password, False)
