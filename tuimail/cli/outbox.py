"""``tuimail outbox``: list, flush, retry and drop the messages waiting to be sent."""

from __future__ import annotations

import argparse
import asyncio
import sys
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

    try:
        if profile.name not in ProfileStore().load():
            return None
        return CredentialStore().get(profile.name)
    except (KeyringError, ProfileStoreError) as exc:
        print(f"tuimail: {profile.name}: {exc}", file=sys.stderr)
        return None


def cmd_outbox_list(args: argparse.Namespace) -> int:
    from tuimail.outbox import State, short_id
    from tuimail.terminal_text import escape_controls

    entries = _outbox().entries()
    if args.json:
        from tuimail.console import terminal_json

        records = [{**e.to_json(), "last_error": _last_error(e)} for e in entries]
        print(terminal_json(records, indent=2))
        return exitcodes.OK
    if not entries:
        print("The outbox is empty.")
        return exitcodes.OK
    for entry in entries:
        due = "due now" if entry.next_attempt <= 0 else f"next {local_time(entry.next_attempt)}"
        state = f"queued, {due}" if entry.state is State.QUEUED else entry.state.value
        print(
            escape_controls(
                f"{short_id(entry.key)}  {state}  via {entry.profile_name}  "
                f"to {', '.join(entry.recipients)}  ({len(entry.attempts)} attempt(s))"
            )
        )
        if entry.last_error:
            print(f"              last error: {escape_controls(_last_error(entry))}")
    return exitcodes.OK


def _flush_exit(outcomes: list[Outcome]) -> int:
    from tuimail.outbox import State

    remaining = _outbox().entries()
    if any(e.state is State.FAILED or e.state is State.POSSIBLY_DELIVERED for e in remaining):
        return 1
    if any(e.state in (State.QUEUED, State.SENDING) for e in remaining):
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
        print("Nothing is due.")
    return _flush_exit(outcomes)


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    from tuimail.console import EntryPrinter, summarise
    from tuimail.outbox import MessageNotFound, NotRetryable, OutboxError, short_id

    outbox = _outbox()
    try:
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
