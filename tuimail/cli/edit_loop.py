"""``tuimail send --edit``: the message written in the user's editor, as mblaze's ``mcom``.

The message (From, To, Cc, Bcc, Subject, the text; filled in from the other
options, the template and the signature) opens in ``$VISUAL``/``$EDITOR``
(``vi``) in a private 0600 file (tuimail/editor.py, the file and editor
Compose uses too). When the editor exits, the text is read back and checked
exactly as composed mail (:func:`tuimail.message.build_message`), and the
terminal asks: send, edit again, save as a draft, or cancel. A message that
does not pass is not offered for sending: its problems are listed and the
user edits again (or keeps it as a draft, or cancels). Sending goes the way
of every ``send`` (the outbox, the transcript, the exit codes).

The questions are asked on the terminal itself (``/dev/tty``), so standard
output can go to a file; without a terminal the command refuses at once.
The file is removed however the loop ends: a choice, an error, Ctrl-C, or
SIGTERM/SIGHUP (turned into an exit here while the loop runs).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from tuimail.cli import exitcodes
from tuimail.cli.common import CLIError

if TYPE_CHECKING:
    from tuimail.message import Draft, FieldError, OutgoingMessage

#: The choices at the prompt, by their letter.
SEND, EDIT, DRAFT, CANCEL = "s", "e", "d", "c"


class Terminal:
    """The controlling terminal, read and written apart from standard input and output."""

    def __init__(self) -> None:
        try:
            self.fd = os.open("/dev/tty", os.O_RDWR)
        except OSError:
            raise CLIError(
                "send --edit needs a terminal: it runs your editor and asks what to do "
                "with the message; without one, give the text with --body or --body-file",
                exitcodes.USAGE,
            ) from None
        self.reader: TextIO = open(  # noqa: SIM115 (closed in close())
            self.fd, encoding="utf-8", errors="replace", closefd=False
        )

    def say(self, text: str) -> None:
        """One or more lines on the terminal, outside text escaped."""
        from tuimail.terminal_text import escape_controls

        data = (escape_controls(text, keep_newlines=True) + "\n").encode("utf-8", "replace")
        with contextlib.suppress(OSError):
            os.write(self.fd, data)

    def ask(self, question: str) -> str | None:
        """The line typed after ``question`` (None at end of input, Ctrl-D)."""
        with contextlib.suppress(OSError):
            os.write(self.fd, question.encode("utf-8"))
        line = self.reader.readline()
        return None if line == "" else line.strip()

    def close(self) -> None:
        self.reader.close()
        os.close(self.fd)


@dataclass
class Checked:
    """The text as last edited, and what it makes: a message to send, or its problems."""

    text: str
    draft: Draft
    outgoing: OutgoingMessage | None
    problems: list[FieldError]


def edit_message(draft: Draft, profile_name: str) -> OutgoingMessage | int:
    """Write, check and decide, in a loop: the message to send, or the exit code of
    what was done instead (kept as a draft under ``profile_name``, or cancelled).

    Raises :class:`~tuimail.cli.common.CLIError` (exit 2) without a terminal,
    or when ``$VISUAL``/``$EDITOR`` cannot be split into words.
    """
    from tuimail.editor import editor_argv, message_text

    try:
        argv = editor_argv(os.environ)
    except ValueError as exc:
        raise CLIError(f"$VISUAL/$EDITOR cannot be run: {exc}", exitcodes.USAGE) from None
    terminal = Terminal()
    try:
        checked = _loop(terminal, argv, message_text(draft), draft)
    finally:
        terminal.close()
    if checked is None:
        print("tuimail: cancelled; nothing was sent or kept", file=sys.stderr)
        return exitcodes.EDIT_CANCELLED
    if checked.outgoing is None:
        return _save_draft(profile_name, checked)
    return checked.outgoing


def _loop(terminal: Terminal, argv: list[str], text: str, base: Draft) -> Checked | None:
    """Edit until the user decides; the message to send or keep, or None for cancel.

    A draft to keep comes back with ``outgoing`` None, a message to send
    with it set.
    """
    from tuimail.editor import Unusable, read_edited, remove, run_editor, write_body

    try:
        path = write_body(text, prefix="message-", suffix=".eml")
    except OSError as exc:
        raise CLIError(
            f"the message could not be written for the editor: {exc}", exitcodes.STORE_FAILED
        ) from None
    try:
        with _exits_on_hangup():
            while True:
                status = run_editor(argv, path, terminal=terminal.fd)
                after: str | None = None
                if status != 0:
                    started = " (is it installed? see $VISUAL and $EDITOR)" if status == 127 else ""
                    terminal.say(
                        f"{argv[0]} exited with status {status}{started}: what it left is "
                        "not used; the message is as it was."
                    )
                else:
                    try:
                        after = read_edited(path)
                    except Unusable as exc:
                        terminal.say(f"The file {exc}: the message is as it was.")
                if after is None:
                    _rewrite(path, text)
                elif after == text:
                    terminal.say("Nothing changed.")
                else:
                    text = after
                checked = _check(text, base)
                choice = _choose(terminal, checked)
                if choice == SEND:
                    return checked
                if choice == DRAFT:
                    checked.outgoing = None
                    return checked
                if choice == CANCEL:
                    return None
    finally:
        remove(path)


def _rewrite(path: Path, text: str) -> None:
    """The message as it was, back in the editor's file (made anew: see tuimail/editor.py)."""
    from tuimail.editor import rewrite

    try:
        rewrite(path, text)
    except OSError as exc:
        raise CLIError(
            f"the message could not be written for the editor: {exc}", exitcodes.STORE_FAILED
        ) from None


def _check(text: str, base: Draft) -> Checked:
    """The text as a draft, built as composed mail is built (every header checked)."""
    from tuimail.editor import draft_of_text
    from tuimail.message import Draft, DraftInvalid, build_message

    try:
        draft = draft_of_text(text, base)
    except DraftInvalid as exc:
        # Not even headers and a text: kept whole as a draft's text.
        return Checked(text, Draft(body=text, markdown=base.markdown), None, exc.errors)
    try:
        return Checked(text, draft, build_message(draft), [])
    except DraftInvalid as exc:
        return Checked(text, draft, None, exc.errors)


def _choose(terminal: Terminal, checked: Checked) -> str:
    """Ask until one of the offered letters is typed (Enter alone edits a refused message)."""
    if checked.problems:
        terminal.say("The message cannot be sent as it is:")
        terminal.say("\n".join(f"  {_words(error)}" for error in checked.problems))
        question, offered = "(e)dit again, save as (d)raft, (c)ancel [e]? ", EDIT + DRAFT + CANCEL
    else:
        assert checked.outgoing is not None
        count = len(checked.outgoing.recipients)
        size = len(checked.outgoing.to_bytes())
        terminal.say(f"Ready: {count} recipient{'s' if count != 1 else ''}, {size:,} bytes.")
        question, offered = (
            "(s)end, (e)dit again, save as (d)raft, (c)ancel? ",
            SEND + EDIT + DRAFT + CANCEL,
        )
    while True:
        answer = terminal.ask(question)
        if answer is None:
            terminal.say("")
            return CANCEL
        letter = answer[:1].lower() or (EDIT if checked.problems else "")
        if letter in offered and letter:
            return letter
        terminal.say(f"Type one of {', '.join(offered)} and Enter.")


def _words(error: FieldError) -> str:
    """One problem, naming the line of the message it is about."""
    names = {"from": "From", "to": "To", "cc": "Cc", "bcc": "Bcc", "reply-to": "Reply-To"}
    names |= {"subject": "Subject", "body": "the text", "attach": "Attach", "message": "message"}
    where = names.get(error.field, error.field)
    if error.instead:
        return f"{where}: write it as the {names.get(error.instead, error.instead)} line instead"
    return f"{where}: {error.message}"


def _save_draft(profile_name: str, checked: Checked) -> int:
    """Keep the message as a draft (F7 in the app lists it); nothing is sent."""
    from tuimail.drafts import DraftStore, SavedDraft

    saved = SavedDraft(DraftStore.new_id(), profile_name, checked.draft)
    try:
        DraftStore().save(saved)
    except OSError as exc:
        raise CLIError(f"the draft could not be saved: {exc}", exitcodes.STORE_FAILED) from None
    print(f"tuimail: not sent; saved as draft {saved.id} (F7 in the app lists it)", file=sys.stderr)
    return exitcodes.EDIT_SAVED


class _HungUp(SystemExit):
    """SIGTERM or SIGHUP while the loop runs: an exit that still removes the file."""


@contextlib.contextmanager
def _exits_on_hangup() -> Iterator[None]:
    """SIGTERM and SIGHUP end the loop by an exception (the ``finally`` removes the file)."""

    def stop(number: int, frame: FrameType | None) -> None:
        raise _HungUp(128 + number)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
