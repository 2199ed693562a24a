"""``tuimail outbox``: list, flush, retry and drop the messages waiting to be sent."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import TYPE_CHECKING

from tuimail.cli import exitcodes
from tuimail.cli.common import CLIError, local_time, read_password, retry_policy

if TYPE_CHECKING:  # imported when used: ``tuimail outbox list`` stays quick to start
    from tuimail.console import EntryPrinter
    from tuimail.credentials import Secret
    from tuimail.outbox import MessageNotFound, NotRetryable, Outbox, Outcome, Queued, Stuck
    from tuimail.profiles import Profile
    from tuimail.transcript import Entry


def define_options(outbox: argparse.ArgumentParser) -> None:
    outbox.description = "The outbox keeps every message until the server accepts it."
    outbox.epilog = (
        "exit codes: 0 nothing left to send (or nothing due), 75 some still queued, "
        "1 some failed, 2 bad arguments, 4 retry needs --password-stdin"
    )
    outbox.description += " With no action, lists them (as 'tuimail outbox list')."
    outbox_commands = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", required=False)
    outbox.set_defaults(handler=cmd_outbox_list, json=False)
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


def _outbox() -> Outbox:
    from tuimail.outbox import Outbox

    return Outbox(policy=retry_policy())


def _stored_password(profile: Profile) -> Secret | None:
    """The keyring password of a saved profile; None for others (they are skipped).

    The outbox asks only for a message that follows its saved profile, with
    that profile as it is now, so the password always belongs to the settings.
    """
    from tuimail.credentials import CredentialStore, KeyringError
    from tuimail.profiles import ProfileStore, ProfileStoreError

    if not profile.secret_in_keyring:  # asked for each time (--password-stdin), or a command
        return None
    try:
        if profile.name not in ProfileStore().load():
            return None
        return CredentialStore().get(profile.name)
    except (KeyringError, ProfileStoreError) as exc:
        print(f"tuimail: {profile.name}: {exc}", file=sys.stderr)
        return None


#: Longest subject ``outbox list`` prints (a line each, so a long one is cut).
SUBJECT_WIDTH = 72


def cmd_outbox_list(args: argparse.Namespace) -> int:
    """Each message with what tells it apart (subject, recipients) and where it stands.

    ``--json`` keeps every key it always had (scripts read them) and adds
    ``subject`` and ``attempt_count``.
    """
    from tuimail.outbox import State, short_id
    from tuimail.terminal_text import escape_controls

    outbox = _outbox()
    entries = outbox.entries()
    if args.json:
        from tuimail.console import terminal_json

        records = [
            {
                **e.to_json(),
                "last_error": _last_error(e),
                "subject": outbox.subject(e),
                "attempt_count": len(e.attempts),
            }
            for e in entries
        ]
        print(terminal_json(records, indent=2))
        return exitcodes.OK
    if not entries:
        print("The outbox is empty.")
        return exitcodes.OK
    for entry in entries:
        due = (
            "due now"
            if entry.next_attempt <= time.time()
            else (f"next attempt {local_time(entry.next_attempt)}")
        )
        state = f"queued, {due}" if entry.state is State.QUEUED else entry.state.value
        attempts = len(entry.attempts)
        print(
            escape_controls(
                f"{short_id(entry.key)}  {state}  ({attempts} attempt{'s' * (attempts != 1)})"
                f"  via {entry.profile_name}"
            )
        )
        # From files anyone may have changed: escaped, and one bounded line each.
        subject = _bounded(escape_controls(outbox.subject(entry)), SUBJECT_WIDTH)
        print(f"    subject: {subject or '(none)'}")
        print(f"    to: {escape_controls(', '.join(entry.recipients))}")
        if entry.last_error:
            print(f"    last error: {escape_controls(_last_error(entry))}")
    return exitcodes.OK


def _bounded(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, an ellipsis saying it was cut."""
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _flush_exit(outcomes: list[Outcome]) -> int:
    from tuimail.outbox import State

    remaining = _outbox().entries()
    if any(e.state is State.FAILED or e.state is State.POSSIBLY_DELIVERED for e in remaining):
        return 1
    if any(e.state in (State.QUEUED, State.SENDING) for e in remaining):
        # Waiting for the user to sign in again, not for the server: scripts can tell.
        if any(o.report and o.report.failure and o.report.failure.needs_sign_in for o in outcomes):
            return exitcodes.SIGN_IN_NEEDED
        return exitcodes.QUEUED
    return exitcodes.OK


def cmd_outbox_flush(args: argparse.Namespace) -> int:
    from tuimail.console import EntryPrinter
    from tuimail.outbox import short_id
    from tuimail.terminal_text import escape_controls

    outbox = _outbox()
    printers: dict[str, EntryPrinter] = {}

    def show(queued: Queued, entry: Entry) -> None:
        printer = printers.setdefault(queued.key, EntryPrinter(prefix=f"[{short_id(queued.key)}] "))
        printer(entry)

    outcomes = asyncio.run(
        outbox.flush(
            _stored_password, include_not_due=args.all, on_entry=show if args.verbose else None
        )
    )
    for outcome in outcomes:
        detail = f": {_detail(outcome)}" if outcome.detail else ""
        print(escape_controls(f"{short_id(outcome.key)}  {outcome.result}{detail}"))
    if not outcomes:
        print(_nothing_due(outbox))
        # Waiting is not failing: only a failed message (1) changes the code.
        code = _flush_exit(outcomes)
        return exitcodes.OK if code == exitcodes.QUEUED else code
    return _flush_exit(outcomes)


def _nothing_due(outbox: Outbox) -> str:
    """Why a flush sent nothing: what waits, when it is next due, and how to send it now.

    Nothing due is not an error (timers run ``flush`` every few minutes), so
    the caller exits 0; a user who fixed the server learns of ``--all`` here.
    """
    from tuimail.outbox import State

    entries = outbox.entries()
    waiting = [e for e in entries if e.state is State.QUEUED]
    stopped = len(entries) - len(waiting)
    aside = f" ({stopped} more need you: see 'tuimail outbox list')" if stopped else ""
    if not waiting:
        return f"Nothing is due: no message waits to be sent{aside}."
    count = f"{len(waiting)} message{'s' * (len(waiting) != 1)}"
    nearest = min(e.next_attempt for e in waiting)
    return (
        f"Nothing is due: {count} wait{'s' * (len(waiting) == 1)}, the next due "
        f"{local_time(nearest)}{aside}. 'tuimail outbox flush --all' sends "
        f"{'it' if len(waiting) == 1 else 'them'} now."
    )


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    from tuimail.console import EntryPrinter, summarise
    from tuimail.outbox import MessageNotFound, NotRetryable, OutboxError, short_id

    outbox = _outbox()
    try:
        if not args.password_stdin:
            _check_password(outbox, args.id)
        entry = outbox.requeue(args.id)
    except (MessageNotFound, NotRetryable) as exc:
        raise CLIError(_lookup_words(exc), exitcodes.USAGE) from None
    except (OSError, OutboxError) as exc:
        raise CLIError(str(exc)) from None
    password = read_password(True, "") if args.password_stdin else None
    outcome = asyncio.run(
        outbox.attempt(entry.key, password, passwords=_stored_password, on_entry=EntryPrinter())
    )
    if outcome.report is not None:
        summarise(outcome.report)
    from tuimail.terminal_text import escape_controls

    detail = f": {_detail(outcome)}" if outcome.detail else ""
    print(escape_controls(f"{short_id(entry.key)}  {outcome.result}{detail}"))
    return _flush_exit([outcome])


def _check_password(outbox: Outbox, key: str) -> None:
    """Refuse, before anything connects, a retry whose server wants a password it lacks.

    The message is left as it was (not made due again), and the words name
    the flag that gives the password.
    """
    from tuimail.outbox import WaitReason, short_id

    wait = outbox.password_wait(key, _stored_password)
    if wait is None:
        return
    how = f"'tuimail outbox retry {short_id(outbox.get(key).key)} --password-stdin'"
    if wait.reason is WaitReason.NONE_STORED:
        words = f"{wait.words()}; save one or give it with {how}"
    else:
        words = f"{wait.words(aside=' (--server)')}; give it with {how}"
    raise CLIError(f"nothing was sent: {words.removeprefix('waiting: ')}")


def cmd_outbox_drop(args: argparse.Namespace) -> int:
    from tuimail.outbox import MessageNotFound, OutboxError, short_id

    try:
        entry = _outbox().drop(args.id)
    except MessageNotFound as exc:
        raise CLIError(_lookup_words(exc), exitcodes.USAGE) from None
    except (OSError, OutboxError) as exc:
        raise CLIError(str(exc)) from None
    from tuimail.terminal_text import escape_controls

    recipients = ", ".join(entry.recipients)
    print(escape_controls(f"Dropped {short_id(entry.key)} ({entry.message_id} to {recipients})."))
    return exitcodes.OK


def _remedies() -> dict[Stuck, str]:
    """What the user can do about a message that waits for them, in commands."""
    from tuimail.outbox import Stuck

    return {
        Stuck.CRASHED_WHILE_SENDING: "'tuimail outbox retry' sends it again",
        Stuck.RECORD_UNREADABLE: "'tuimail outbox drop' deletes it",
    }


def _last_error(entry: Queued) -> str:
    """The message's last error, with the command that helps if it waits for the user."""
    from tuimail.outbox import with_remedy

    return with_remedy(entry.last_error, entry.stuck, _remedies())


def _lookup_words(exc: MessageNotFound | NotRetryable) -> str:
    """The outbox's refusal, with the command that helps next."""
    from tuimail.outbox import EmptyMessageId, NotRetryable, with_remedy

    if isinstance(exc, EmptyMessageId):
        return "give a message id (see 'tuimail outbox list'); an empty one is refused"
    if isinstance(exc, NotRetryable) and exc.delivered:
        return f"{exc} ('tuimail outbox flush' moves it to sent/)"
    if isinstance(exc, NotRetryable):
        return with_remedy(str(exc), exc.stuck, _remedies())
    return str(exc)


def _detail(outcome: Outcome) -> str:
    """Why the outcome is what it is; a missing password names the command that gives one."""
    from tuimail.outbox import WaitReason, short_id, with_remedy

    wait = outcome.password_wait
    if wait is None:
        return with_remedy(outcome.detail, outcome.stuck, _remedies())
    how = f"'tuimail outbox retry {short_id(outcome.key)} --password-stdin'"
    if wait.reason is WaitReason.NONE_STORED:
        return f"{wait.words()}; save one or use {how}"
    return f"{wait.words(aside=' (--server)')}; send it with {how}"
