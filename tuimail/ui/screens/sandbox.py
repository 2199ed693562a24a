"""F5: the sandbox's inbox, whoever received it, with each message's server side.

The built-in sandbox is one per data dir, served by this app or by another
process ('tuimail serve', another app, a 'tuimail send'), and its Maildir
outlives them all. So F5 lists the inbox index over that Maildir
(:class:`~tuimail.inbox.InboxIndex`), always in a worker thread: the newest
first, one page of :data:`PAGE` rows at a time, more as the cursor nears the
end (keyset paging: the table never holds the whole archive). The index is
brought up to date every :data:`CAPTURED_POLL` seconds while F5 is shown and
whenever a session of this app's sandbox ends; an unchanged Maildir costs a
few ``stat`` calls. The search field above the list runs each query in a
worker; a newer keystroke supersedes an older answer. A session this app
received is shown from memory, live; one another process received from its
session file, when there is one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import time
import webbrowser
from dataclasses import dataclass, field
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Label, Select, Static

from tuimail import replies
from tuimail.drafts import DraftStore, SavedDraft
from tuimail.errors import TuimailError
from tuimail.inbox import (
    Cursor,
    InboxEntry,
    InboxIndex,
    MailboxRule,
    MailboxRuleInvalid,
    mime,
    rules_from_config,
)
from tuimail.inbox.authcheck import (
    Checked,
    CheckSettingInvalid,
    check_blocking,
    envelope_sender,
    settings_from_config,
)
from tuimail.inbox.browser import write_html_for_browser
from tuimail.inbox.protection_view import ProtectionReport, with_outer_headers
from tuimail.inbox.protection_view import describe as describe_protection
from tuimail.outbox import release_outgoing
from tuimail.profiles import Profile
from tuimail.sandbox import SessionRecord, StoredMessage
from tuimail.sandbox.builtin import settings_of
from tuimail.sandbox.config import DEFAULT_MAX_RECIPIENTS
from tuimail.sandbox.throttle import describe
from tuimail.sandbox_profile import SANDBOX_PROFILE
from tuimail.transcript import EventKind, Transcript
from tuimail.ui.messages import RetryRequest
from tuimail.ui.outside import cell, message_preview, shown
from tuimail.ui.screens.base import ModelScreen
from tuimail.ui.screens.dialogs import ConfirmDialog
from tuimail.ui.screens.forward_dialog import ForwardDialog, ForwardHow
from tuimail.ui.screens.inbox_dialogs import (
    ALL_PARTS,
    ReleaseAsked,
    ReleaseDialog,
    SaveAsked,
    SaveAttachmentsDialog,
)
from tuimail.ui.widgets.mode_bar import ModeBar
from tuimail.ui.widgets.pgp_controls import Locked
from tuimail.ui.widgets.transcript_view import TranscriptView
from tuimail.user_config import ConfigError

#: Seconds between looks at the Maildir while F5 is shown.
CAPTURED_POLL = 1.0
#: Seconds from the end of a session of this app's sandbox to a look at the Maildir.
SESSION_END_LOOK = 0.2
#: Rows read from the index at a time (one more page when the cursor nears the end).
PAGE = 100
#: The cursor this close to the last row loaded asks for the next page.
PAGE_AHEAD = 10
#: The select value meaning every mailbox.
ALL_MAILBOXES = "\x00all"
#: Characters of a message's source shown at most (the whole is in the Maildir).
MAX_SOURCE_SHOWN = 200_000
#: Authentication checks kept for messages opened before (the oldest is forgotten first).
CHECKS_KEPT = 50


def index_for(maildir: Path, sessions_dir: Path, rules: tuple[MailboxRule, ...]) -> InboxIndex:
    """The index of this Maildir, kept beside it (the command line opens the same one)."""
    return InboxIndex.beside(maildir, sessions_dir, rules)


@dataclass
class Listed:
    """What one look at the index found: rows in order, where the next page starts."""

    entries: list[InboxEntry]
    next: Cursor | None
    total: int
    mailboxes: list[tuple[str, int]] = field(default_factory=list)
    problem: str = ""


class InboxListed(Message, bubble=False):
    """A worker read a page of the inbox; ``generation`` says for which question."""

    def __init__(self, generation: int, listed: Listed | None, appended: bool) -> None:
        super().__init__()
        self.generation = generation
        self.listed = listed
        self.appended = appended


class MessageRead(Message, bubble=False):
    """A worker read one message: its bytes and what a person is shown of it."""

    def __init__(
        self,
        key: str,
        raw: bytes,
        view: mime.MessageView | None,
        problem: str,
        marked: bool = False,
        protection: ProtectionReport | None = None,
    ) -> None:
        super().__init__()
        #: Signed by whom, encrypted to whom, DKIM (tuimail/inbox/protection_view.py).
        self.protection = protection
        #: The message was unread and is now marked read.
        self.marked = marked
        self.key = key
        self.raw = raw
        self.view = view
        self.problem = problem


class AuthChecked(Message, bubble=False):
    """A worker checked the message ``key`` as a receiver would (or says why it could not)."""

    def __init__(self, key: str, checked: Checked | None, problem: str = "") -> None:
        super().__init__()
        self.key = key
        self.checked = checked
        self.problem = problem


class Decrypted(Message, bubble=False):
    """A worker decrypted the message ``key`` for display (``read`` is None: it could not)."""

    def __init__(self, key: str, read: MessageRead | None, problem: str = "") -> None:
        super().__init__()
        self.key = key
        self.read = read
        self.problem = problem


class SessionRead(Message, bubble=False):
    """A worker read the session file of the message ``key`` (None: there is none)."""

    def __init__(self, key: str, transcript: Transcript | None) -> None:
        super().__init__()
        self.key = key
        self.transcript = transcript


#: How the message pane shows a message, by the key that chooses it.
VIEWS = {
    "text": "headers and text",
    "html": "HTML as text",
    "source": "raw source",
    "mime": "MIME tree",
    "auth": "authentication check",
}


class SandboxScreen(ModelScreen):
    # The footer shows the views, the check, decrypting and the common actions,
    # in that order, and must fit in 120 columns (a footer wider than the
    # screen is cut off at its right end): Delete all, Reply all and Forward
    # are in F1's help and the command palette, not the footer.
    BINDINGS = [
        Binding("t", "view('text')", "Text", id="sandbox.text"),
        Binding("h", "view('html')", "HTML", id="sandbox.html"),
        Binding("u", "view('source')", "Source", id="sandbox.source"),
        Binding("m", "view('mime')", "MIME", id="sandbox.mime"),
        Binding("a", "view('auth')", "Auth check", id="sandbox.auth"),
        Binding("x", "decrypt", "Decrypt", id="sandbox.decrypt"),
        Binding("s", "save", "Save", id="sandbox.save"),
        Binding("o", "browser", "Browser", id="sandbox.browser"),
        Binding("l", "release", "Release", id="sandbox.release"),
        Binding("d,delete", "delete", "Delete", id="sandbox.delete"),
        Binding("r", "reply('reply')", "Reply", id="sandbox.reply"),
        Binding("D", "delete_all", "Delete all", show=False, id="sandbox.delete_all"),
        Binding("R", "reply('all')", "Reply all", show=False, id="sandbox.reply_all"),
        Binding("f", "reply('forward')", "Forward", show=False, id="sandbox.forward"),
        Binding("slash", "search", "Search", show=False, id="sandbox.search"),
    ]

    def compose(self) -> ComposeResult:
        yield ModeBar("sandbox")
        with Vertical():
            yield Static("", id="sandbox-status", markup=False)
            with Horizontal(id="inbox-bar"):
                yield Select[str](
                    [("All mailboxes", ALL_MAILBOXES)],
                    id="inbox-mailbox",
                    allow_blank=False,
                    value=ALL_MAILBOXES,
                    compact=True,
                )
                yield Input(
                    placeholder="/ Search: from: to: subject: has:attachment or words",
                    id="inbox-search",
                    compact=True,
                )
            yield DataTable(id="captured", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="captured-detail"):
                with VerticalScroll(id="message-pane"):
                    yield Label(
                        "The message: headers and text", id="message-title", classes="pane-title"
                    )
                    # A message is shown as it arrived: its text is never markup.
                    yield Static("Select a message to read it.", id="message-view", markup=False)
                with Vertical(id="server-pane"):
                    yield Label("The server's side", classes="pane-title")
                    yield TranscriptView(id="server-view")
        yield Footer()

    def on_mount(self) -> None:
        model = self.model
        model.sandbox_changed.subscribe(self, lambda _none: self.reload())
        model.sandbox_session_ended.subscribe(self, lambda _record: self._look_soon())
        self.rules: tuple[MailboxRule, ...] = ()
        self.rules_problem = ""
        try:
            self.rules = rules_from_config(model.config.tables)
        except MailboxRuleInvalid as exc:
            self.rules_problem = str(exc)
        table = self.query_one("#captured", DataTable)
        columns = ["Received", "From", "To", "Subject", "Size", "Session"]
        if self.rules:
            columns += ["Mailbox", "Tags"]
        #: The Subject column (unread messages' subjects are bold).
        self.subject_column = table.add_columns(*columns)[3]
        selector = self.query_one("#inbox-mailbox", Select)
        selector.display = bool(self.rules)
        #: The rows shown, by message id, newest first.
        self.messages: dict[str, InboxEntry] = {}
        self._shown_rows: list[tuple[str, str, str, str, bool]] = []
        self._index: InboxIndex | None = None
        self._listed: Listed | None = None
        #: The question asked last (a newer one makes older answers stale).
        self.generation = 0
        #: A look at the index is under way; ``_again``: another was asked for meanwhile.
        self.reading = False
        self._again = False
        self._paging = False
        self._soon: Timer | None = None
        self.view_mode = "text"
        self._current: MessageRead | None = None
        #: Messages this screen marked read (bounded by what the user opens).
        self.marked: set[str] = set()
        #: The message shown in the panes (its id).
        self.opened: str | None = None
        #: Authentication checks done, by message id (at most CHECKS_KEPT), and under way.
        self.checks: dict[str, AuthChecked] = {}
        self.checking: set[str] = set()
        self.set_interval(CAPTURED_POLL, self._poll)
        self.reload()

    def on_screen_resume(self) -> None:
        self.look()

    def _poll(self) -> None:
        if self.is_current:
            self.look()

    def _look_soon(self) -> None:
        """A session of this app's sandbox ended: look shortly, once for a burst of them.

        An application under test may end hundreds of sessions a second; the
        list is read again at most once per :data:`SESSION_END_LOOK`.
        """
        if self._soon is None:
            self._soon = self.set_timer(SESSION_END_LOOK, self._looked_soon)

    def _looked_soon(self) -> None:
        self._soon = None
        self._poll()

    # -- the list -------------------------------------------------------------

    def reload(self) -> None:
        """Who serves the sandbox changed: say so, and look at its Maildir."""
        self._show_status()
        self.look(fresh=True)

    def index(self) -> InboxIndex:
        """The index of the Maildir the sandbox uses now (building the object reads nothing)."""
        maildir, sessions_dir = self.model.sandbox_place()
        index = self._index
        if index is None or (index.maildir, index.sessions_dir) != (maildir, sessions_dir):
            index = self._index = index_for(maildir, sessions_dir, self.rules)
        return index

    def query_now(self) -> tuple[str, str | None]:
        query = self.query_one("#inbox-search", Input).value
        chosen = self.query_one("#inbox-mailbox", Select).value
        return query, (chosen if isinstance(chosen, str) and chosen != ALL_MAILBOXES else None)

    def look(self, *, fresh: bool = False) -> None:
        """Catch up and read the first rows in a worker.

        One look at a time for the poll (one more if asked meanwhile); a new
        question (``fresh``: the search or mailbox changed) starts at once
        and makes the answers to older ones stale.
        """
        if fresh:
            self.generation += 1
        elif self.reading:
            self._again = True
            return
        self.reading = True
        query, mailbox = self.query_now()
        # As many rows as are shown (at least a page), so a look keeps the user's place.
        shown_rows = 0 if fresh else len(self.messages)
        limit = max(PAGE, shown_rows)
        first = fresh or self._listed is None or self._listed.problem != ""
        self._fetch(self.index(), self.generation, query, mailbox, None, limit, first)

    @work(thread=True, group="sandbox-list", exit_on_error=False)
    def _fetch(
        self,
        index: InboxIndex,
        generation: int,
        query: str,
        mailbox: str | None,
        after: Cursor | None,
        limit: int,
        fresh: bool = True,
    ) -> None:
        listed: Listed | None = Listed([], None, 0)
        try:
            if after is None and not index.refresh() and not fresh:
                listed = None  # nothing arrived, went or changed: the rows shown stand
            else:
                listed = self._read_page(index, query, mailbox, after, limit)
        except (OSError, TuimailError, ValueError, sqlite3.Error) as exc:
            listed = Listed([], None, 0, problem=f"The inbox cannot be read: {exc}")
        with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
            self.post_message(InboxListed(generation, listed, after is not None))

    def _read_page(
        self,
        index: InboxIndex,
        query: str,
        mailbox: str | None,
        after: Cursor | None,
        limit: int,
    ) -> Listed:
        """One page (from the newest when ``after`` is None, with the counts); in a thread."""
        page = index.page(query, mailbox=mailbox, after=after, limit=limit)
        listed = Listed(list(page.entries), page.next, 0)
        if after is None:
            listed.total = index.count(query, mailbox=mailbox)
            listed.mailboxes = index.mailboxes()
        if index.rebuilt_because:
            listed.problem = f"Note: {index.rebuilt_because}."
        return listed

    @on(InboxListed)
    def _listed_now(self, listed: InboxListed) -> None:
        if listed.appended:
            self._paging = False
            if listed.generation == self.generation and self._listed is not None and listed.listed:
                self._append(listed.listed)
            return
        self.reading = False
        if listed.generation == self.generation and listed.listed is not None:
            self._listed = listed.listed
            self._show_listing(listed.listed)
            self._show_mailboxes(listed.listed.mailboxes)
            self._show_status()
        if self._again:
            self._again = False
            self.look()

    def _own_messages(self) -> dict[str, tuple[StoredMessage, SessionRecord]]:
        """Messages this app's sandbox received in this run (their sessions are in memory)."""
        sandbox = self.model.sandbox
        if sandbox is None:
            return {}
        return {
            stored.key: (stored, record)
            for record in list(sandbox.sessions)
            for stored in record.messages
        }

    def _as_known(self, entry: InboxEntry) -> InboxEntry:
        """``entry``, read if this screen marked it so (a page read meanwhile may say unread)."""
        return dataclasses.replace(entry, read=True) if entry.id in self.marked else entry

    def _row(
        self, entry: InboxEntry, own: dict[str, tuple[StoredMessage, SessionRecord]]
    ) -> list[Text]:
        received_at, session_id = entry.received_at, entry.session_id
        if entry.id in own:  # this run's session: its own clock and id
            stored, record = own[entry.id]
            received_at, session_id = stored.received_at, record.id
        received = time.localtime(received_at)
        today = time.strftime("%Y-%m-%d")
        day = time.strftime("%Y-%m-%d", received)
        when = time.strftime("%H:%M:%S" if day == today else "%Y-%m-%d %H:%M", received)
        to = entry.to or ", ".join(entry.envelope_to)
        # Text, not str: DataTable parses str cells as markup, and a client chooses these.
        row = [
            Text(when),
            cell(clipped(entry.mail_from or entry.envelope_from or "<>", 24)),
            cell(clipped(to, 20)),
            cell(clipped(entry.subject, 40), style="" if entry.read else "bold"),
            Text(f"{entry.size:,}", justify="right"),
            cell(session_id or "-"),
        ]
        if self.rules:
            row += [cell(entry.mailbox), cell(" ".join(entry.tags))]
        return row

    def _show_listing(self, listed: Listed) -> None:
        own = self._own_messages()
        listed.entries = [self._as_known(e) for e in listed.entries]
        shown_rows = [(e.id, e.session_id, e.mailbox, e.subject, e.read) for e in listed.entries]
        if shown_rows == self._shown_rows:
            return
        table = self.query_one("#captured", DataTable)
        selected = self._selected_key()
        table.clear()
        self.messages = {}
        for entry in listed.entries:
            self.messages[entry.id] = entry
            table.add_row(*self._row(entry, own), key=entry.id)
        self._shown_rows = shown_rows
        if selected is not None and selected in self.messages:
            table.move_cursor(row=table.get_row_index(selected))
        elif selected is not None and table.row_count:
            table.move_cursor(row=0)

    def _append(self, listed: Listed) -> None:
        assert self._listed is not None
        own = self._own_messages()
        table = self.query_one("#captured", DataTable)
        for entry in map(self._as_known, listed.entries):
            if entry.id in self.messages:
                continue
            self.messages[entry.id] = entry
            table.add_row(*self._row(entry, own), key=entry.id)
            self._listed.entries.append(entry)
            self._shown_rows.append(
                (entry.id, entry.session_id, entry.mailbox, entry.subject, entry.read)
            )
        self._listed.next = listed.next

    def _more(self) -> None:
        """The cursor nears the last row: read the next page (one page at a time)."""
        listed = self._listed
        if listed is None or listed.next is None or self._paging:
            return
        self._paging = True
        query, mailbox = self.query_now()
        self._fetch(self.index(), self.generation, query, mailbox, listed.next, PAGE)

    def _show_mailboxes(self, found: list[tuple[str, int]]) -> None:
        if not self.rules:
            return
        selector = self.query_one("#inbox-mailbox", Select)
        names = {rule.name for rule in self.rules} | {name for name, _count in found}
        counts = dict(found)
        options = [("All mailboxes", ALL_MAILBOXES)] + [
            (f"{name} ({counts.get(name, 0)})", name) for name in sorted(names)
        ]
        if options != getattr(self, "_mailbox_options", None):
            chosen = selector.value
            self._mailbox_options = options
            with selector.prevent(Select.Changed):
                selector.set_options(options)
                selector.value = chosen if chosen in {v for _l, v in options} else ALL_MAILBOXES

    @on(Input.Changed, "#inbox-search")
    def _searched(self, _event: Input.Changed) -> None:
        self.look(fresh=True)

    @on(Input.Submitted, "#inbox-search")
    def _search_done(self, _event: Input.Submitted) -> None:
        self.query_one("#captured", DataTable).focus()

    @on(Select.Changed, "#inbox-mailbox")
    def _mailbox_chosen(self, _event: Select.Changed) -> None:
        self.look(fresh=True)

    def action_search(self) -> None:
        self.query_one("#inbox-search", Input).focus()

    def _selected_key(self) -> str | None:
        table = self.query_one("#captured", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return str(key) if key is not None else None

    def _show_status(self) -> None:
        model = self.model
        sandbox, running = model.sandbox, model.sandbox_running
        maildir, _sessions = model.sandbox_place()
        if sandbox is not None:
            where = f"Sandbox listening on {sandbox.client_profile().address}"
        elif running is not None:
            where = f"Sandbox listening on {running.address}, served by {running.server_words}"
        else:
            where = ""
        lines = [f"{where}; mail kept in {maildir}"] if where else []
        if not where:
            lines = [model.sandbox_note or "The sandbox is not running.", f"Mail kept in {maildir}"]
        if model.sandbox_note and sandbox is not None:  # why not on its port, a take-over
            lines.append(f"Note: {model.sandbox_note.rstrip('.')}.")
        if sandbox is not None:
            lines.extend(behaviour_lines(settings_of(sandbox.config, sandbox.faults)))
        elif running is not None:
            lines.extend(behaviour_lines(running.settings))
        if self.rules_problem:
            lines.append(f"Mailboxes are not used: {self.rules_problem}")
        listed = self._listed
        if listed is not None and listed.problem:
            lines.append(listed.problem)
        elif listed is not None:
            query, mailbox = self.query_now()
            noun = "message" if listed.total == 1 else "messages"
            if query or mailbox:
                lines.append(f"{listed.total:,} {noun} match.")
            elif listed.total > len(listed.entries):
                lines.append(
                    f"The inbox holds {listed.total:,} {noun}; more are listed as you scroll."
                )
        # Each line escaped on its own: the line ends are the screen's, not text to show.
        self.query_one("#sandbox-status", Static).update("\n".join(shown(line) for line in lines))

    # -- one message ------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#captured")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = self.query_one("#captured", DataTable)
        if event.cursor_row >= table.row_count - PAGE_AHEAD:
            self._more()
        key = event.row_key.value if event.row_key else None
        if key is None or key not in self.messages:
            return
        if key == self.opened:  # the list was read again around it: it is shown already
            return
        self.opened = key
        entry = self.messages[key]
        index = self.index()
        own = self._own_messages().get(key)
        view = self.query_one("#server-view", TranscriptView)
        if own is not None:
            view.show(own[1].transcript)  # this app's session: from memory, live
        else:
            view.show(None)
            self.read_session(index, entry)
        self.read_message(index, entry)

    @work(thread=True, group="sandbox-session", exit_on_error=False)
    def read_session(self, index: InboxIndex, entry: InboxEntry) -> None:
        """Read the session file of a message another process received (in a thread)."""
        transcript = None
        if entry.session_id:
            with contextlib.suppress(OSError):
                transcript = index.session_transcript(entry.session_id)
        with contextlib.suppress(RuntimeError):
            self.post_message(SessionRead(entry.id, transcript))

    @on(SessionRead)
    def _session_read(self, read: SessionRead) -> None:
        if self._selected_key() != read.key:
            return
        transcript = read.transcript
        if transcript is None:
            entry = self.messages.get(read.key)
            transcript = Transcript(title="not on disk")
            if entry is not None and entry.session_id:
                words = (
                    f"Session {entry.session_id} was received by another process; "
                    "its transcript is on disk once the session ends."
                )
            else:
                words = (
                    "This message was received by another process (or put in the Maildir "
                    "by another program); no session file tells its transcript."
                )
            transcript.event(EventKind.INFO, words)
        self.query_one("#server-view", TranscriptView).show(transcript)

    @work(thread=True, group="sandbox-message", exit_on_error=False)
    def read_message(self, index: InboxIndex, entry: InboxEntry) -> None:
        """Read the message from the Maildir and take it apart (file I/O, in a thread)."""
        raw, view, problem, marked = b"", None, "", False
        protection: ProtectionReport | None = None
        try:
            raw = index.read_bytes(entry)
            view = mime.view(raw)
            protection = protection_of(raw)
            if not entry.read:  # opened: read, as a mail client marks it (Maildir's S flag)
                with contextlib.suppress(OSError, TuimailError, sqlite3.Error):
                    index.mark_read(entry)
                    marked = True
        except TuimailError:
            problem = f"{entry.id} is no longer in the Maildir."
        except OSError as exc:
            problem = f"cannot read {entry.id}: {exc.strerror or 'it is gone'}"
        except Exception:  # a message the email package trips on: shown as it came
            view = None
        with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
            self.post_message(MessageRead(entry.id, raw, view, problem, marked, protection))

    @on(MessageRead)
    def _message_read(self, read: MessageRead) -> None:
        entry = self.messages.get(read.key)
        if read.marked:
            self.marked.add(read.key)
        if read.marked and entry is not None and not entry.read:
            entry = self.messages[read.key] = dataclasses.replace(entry, read=True)
            subject = cell(clipped(entry.subject, 40))
            self.query_one("#captured", DataTable).update_cell(
                read.key, self.subject_column, subject
            )
        if self._selected_key() == read.key:
            self._current = read
            self._show_message()

    def action_view(self, mode: str) -> None:
        """Show the selected message another way (text, HTML as text, source, MIME tree, check).

        The authentication check asks DNS (and spamd, when configured), so it
        runs only when asked for: the first time its view is chosen for a
        message, and again whenever ``a`` is pressed while it is shown.
        """
        again = mode == "auth" and self.view_mode == "auth"
        self.view_mode = mode
        if mode == "auth":
            self._check_selected(again)
        self._show_message()

    def _check_selected(self, again: bool) -> None:
        read = self._current
        key = self._selected_key()
        if read is None or read.key != key or read.problem or key in self.checking:
            return
        if key in self.checks and not again:
            return
        self.checks.pop(key, None)
        self.checking.add(key)
        entry = self.messages.get(key)
        own = self._own_messages().get(key)
        if own is not None:  # this run's session: the envelope from memory
            sender: str | None = own[0].mail_from
        elif entry is not None:
            sender = envelope_sender(entry.envelope_from, entry.envelope_to, entry.session_id)
        else:
            sender = None
        self.check_message(key, read.raw, sender)

    @work(thread=True, group="sandbox-check", exit_on_error=False)
    def check_message(self, key: str, raw: bytes, sender: str | None) -> None:
        """Check the message as a receiver would (key files, DNS, spamd: in a thread)."""
        checked, problem = None, ""
        try:
            settings = settings_from_config(self.model.config)
            checked = check_blocking(raw, sender, settings)
        except (CheckSettingInvalid, ConfigError) as exc:
            problem = f"Not checked: {exc}"
        except Exception as exc:  # the check must never take the screen down
            problem = f"Not checked: {type(exc).__name__}: {exc}"
        with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
            self.post_message(AuthChecked(key, checked, problem))

    @on(AuthChecked)
    def _auth_checked(self, done: AuthChecked) -> None:
        self.checking.discard(done.key)
        self.checks[done.key] = done
        while len(self.checks) > CHECKS_KEPT:
            del self.checks[next(iter(self.checks))]
        if self._selected_key() == done.key and self.view_mode == "auth":
            self._show_message()

    def action_decrypt(self) -> None:
        """Decrypt the selected message for display, with the user's gpg keyring or the
        profile's S/MIME key; asked for, never automatic, and never written anywhere."""
        read = self._chosen()
        if read is None:
            return
        if read.protection is None or not read.protection.encrypted:
            self.notify("This message is not encrypted.", severity="warning")
            return
        if read.protection.cleartext is not None:
            self.notify("This message is shown decrypted already.")
            return
        if still_decrypting(self, "sandbox-decrypt"):
            self.notify(STILL_DECRYPTING, severity="warning")
            return
        chosen = decrypting_profile(self.model.all_profiles(), self.model.initial_profile)
        self.notify("Decrypting…")
        self.decrypt_message(read, chosen)

    @work(group="sandbox-decrypt", exit_on_error=False)
    async def decrypt_message(self, read: MessageRead, profile: Profile | None) -> None:
        """gpg or the S/MIME key opens the message (a key file, a subprocess: in a thread).

        A locked key's passphrase is asked for with the masked dialog Compose signs
        with (:func:`~tuimail.ui.widgets.pgp_controls.asking_for_passphrases`), again
        after a wrong one, until it opens the key or Escape."""
        from tuimail.ui.widgets.pgp_controls import asking_for_passphrases

        answer = await asking_for_passphrases(
            self.app, lambda typed: opened_for_display(read, profile, typed)
        )
        opened, problem = answer if answer is not None else (None, "no passphrase given (Escape)")
        with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
            self.post_message(Decrypted(read.key, opened, problem))

    @on(Decrypted)
    def _decrypted(self, done: Decrypted) -> None:
        if done.read is None:
            self.notify(shown(f"Not decrypted: {done.problem}"), severity="warning")
            return
        if self._selected_key() == done.key:
            self._current = done.read  # in memory only: gone when another message is chosen
            self.view_mode = "text"
            self._show_message()

    # -- acting on the message ---------------------------------------------------

    def _chosen(self) -> MessageRead | None:
        """The selected message once read (None, with a word, before that)."""
        read = self._current
        if read is None or read.key != self._selected_key():
            self.notify("Choose a message first.", severity="warning")
            return None
        if read.problem:
            self.notify(shown(read.problem), severity="warning")
            return None
        return read

    def action_browser(self) -> None:
        """Open the HTML part in the browser, from a private temporary file."""
        read = self._chosen()
        if read is None:
            return
        if read.view is None:
            self.notify("This message cannot be taken apart into parts.", severity="warning")
            return
        if not read.view.html:
            self.notify("This message has no HTML part.", severity="warning")
            return
        self.open_html(read.view.html)

    @work(thread=True, group="sandbox-browser", exit_on_error=False)
    def open_html(self, html: str) -> None:
        """Write the HTML 0600 with remote loading forbidden, and hand it to the browser."""
        try:
            path, remote = write_html_for_browser(html)
            opened = webbrowser.open(path.as_uri())
        except OSError as exc:
            self.app.call_from_thread(self._say, f"Cannot write the HTML: {exc}", "error")
            return
        words = f"Opened {path} in the browser." if opened else f"No browser found; see {path}."
        if remote:
            words += " Its remote content (images, styles, scripts) is blocked."
        self.app.call_from_thread(self._say, words, "information")

    def _say(self, words: str, severity: str = "information") -> None:
        self.notify(shown(words), severity=severity)  # type: ignore[arg-type]

    def action_save(self) -> None:
        """Save one attachment or all of them into a directory the user names."""
        read = self._chosen()
        if read is None:
            return
        if read.view is None:
            self.notify("This message cannot be taken apart into parts.", severity="warning")
            return
        parts = read.view.attachments
        if not parts:
            self.notify("This message has no attachments.", severity="warning")
            return
        self.app.push_screen(
            SaveAttachmentsDialog(parts, Path.home()),
            lambda asked: self._save_asked(read, asked),
        )

    def _save_asked(self, read: MessageRead, asked: SaveAsked | None) -> None:
        if asked is not None and read.view is not None:
            self.save_parts(read.raw, read.view.attachments, asked)

    @work(thread=True, group="sandbox-save", exit_on_error=False)
    def save_parts(self, raw: bytes, parts: list[mime.Part], asked: SaveAsked) -> None:
        """Write the attachments under safe names; a taken name gets -2, -3... (in a thread)."""
        chosen = [p for p in parts if asked.number in (ALL_PARTS, p.number)]
        saved: list[str] = []
        try:
            if not asked.directory.is_dir():
                raise NotADirectoryError(f"{asked.directory} is not a directory")
            for part in chosen:
                name = mime.safe_filename(part.filename, f"attachment-{part.number}")
                path = mime.save_part(asked.directory, name, mime.part_bytes(raw, part.number))
                saved.append(path.name)
        except (OSError, ValueError, TuimailError) as exc:
            done = f" (saved before it: {', '.join(saved)})" if saved else ""
            self.app.call_from_thread(self._say, f"Not saved: {exc}{done}", "error")
            return
        words = f"Saved {', '.join(saved)} in {asked.directory}."
        self.app.call_from_thread(self._say, words, "information")

    def action_delete(self) -> None:
        key = self._selected_key()
        entry = self.messages.get(key or "")
        if entry is not None:
            self.delete_entries(self.index(), [entry])

    def action_delete_all(self) -> None:
        total = self._listed.total if self._listed is not None else 0
        question = (
            f"Delete all {total:,} messages of the sandbox's inbox? Their files are removed "
            "from the Maildir; this cannot be undone."
        )
        self.app.push_screen(
            ConfirmDialog(question, confirm="Delete all"),
            self._delete_all_answered,
        )

    def _delete_all_answered(self, yes: bool | None) -> None:
        if yes:
            self.delete_entries(self.index(), None)
        else:
            self.notify("Nothing deleted.")

    @work(thread=True, group="sandbox-delete", exit_on_error=False)
    def delete_entries(self, index: InboxIndex, entries: list[InboxEntry] | None) -> None:
        """Delete these messages (None: every one), then look again (in a thread)."""
        try:
            removed = index.delete_all() if entries is None else index.delete(entries)
        except (OSError, TuimailError, sqlite3.Error) as exc:
            self.app.call_from_thread(self._say, f"Not deleted: {exc}", "error")
            return
        noun = "message" if removed == 1 else "messages"
        self.app.call_from_thread(self._deleted, f"Deleted {removed:,} {noun}.")

    def _deleted(self, words: str) -> None:
        self.notify(words)
        self._current = None
        self.opened = None
        self.look(fresh=True)  # the index already forgot them: a refresh finds no change

    def action_reply(self, how: str) -> None:
        """Open Compose on a reply, reply-all or forward of the message."""
        read = self._chosen()
        if read is None:
            return
        if self.model.compose_locked:
            self.notify("Compose is sending a message; try again when it is done.")
            return
        own = replies.own_addresses_of(self.model.all_profiles().values())
        if how == "forward":

            def chosen(way: ForwardHow | None) -> None:
                if way is not None:
                    self.draft_of(read.raw, f"forward-{way.value}", own, self.model.initial_profile)

            self.app.push_screen(ForwardDialog(), chosen)
            return
        self.draft_of(read.raw, how, own, self.model.initial_profile)

    @work(thread=True, group="sandbox-reply", exit_on_error=False)
    def draft_of(self, raw: bytes, how: str, own: set[str], profile: str) -> None:
        """Make the draft from the message's bytes and save it (in a thread), then open it."""
        try:
            original = replies.read_original(raw)
            if how == "forward-attached":
                path = replies.write_forward_attachment(original, replies.forwards_dir())
                draft = replies.forward(original, attachment=path)
            elif how.startswith("forward"):
                draft = replies.forward(original)
            elif how == "all":
                draft = replies.reply_all(original, own)
            else:
                draft = replies.reply(original, own)
            saved = SavedDraft(DraftStore.new_id(), profile, draft)
            DraftStore().save(saved)
        except (OSError, ValueError, TuimailError) as exc:
            self.app.call_from_thread(self._say, f"Cannot make the draft: {exc}", "error")
            return
        note = ", ".join(original.skipped)
        self.app.call_from_thread(self._open_in_compose, saved, note)

    def _open_in_compose(self, saved: SavedDraft, skipped: str) -> None:
        if self.model.compose_locked:
            self.notify("Compose is sending a message; the draft is kept in F7's Drafts.")
            return
        self.app.switch_mode("compose")
        note = f"Left out (not valid addresses): {skipped}" if skipped else ""
        self.model.open_draft(saved, shown(note))

    def action_release(self) -> None:
        """Send the message on to a real server through a profile (recipients changeable).

        The message goes through the outbox and the app's own session (a
        retry of the queued message: the model's way of asking for a
        session), so it has a transcript on F3 and a place in F7 like any other.
        """
        read = self._chosen()
        entry = self.messages.get(read.key) if read is not None else None
        if read is None or entry is None:
            return
        if read.view is None:
            self.notify("This message cannot be taken apart, so not released.", severity="warning")
            return
        profiles = [name for name in self.model.all_profiles() if name != SANDBOX_PROFILE]
        if not profiles:
            self.notify("Save a profile for a real server first (F4).", severity="warning")
            return
        recipients = list(entry.envelope_to)
        if not recipients:
            named = read.view.all_values("To") + read.view.all_values("Cc")
            recipients = [address for _name, address in getaddresses(named) if address]
        self.app.push_screen(
            ReleaseDialog(profiles, recipients), lambda asked: self._release_asked(read, asked)
        )

    def _release_asked(self, read: MessageRead, asked: ReleaseAsked | None) -> None:
        if asked is None:
            return
        profile = self.model.all_profiles().get(asked.profile)
        if profile is not None:
            self.queue_release(read.raw, profile, asked.recipients)

    @work(thread=True, group="sandbox-release", exit_on_error=False)
    def queue_release(self, raw: bytes, profile: Profile, recipients: tuple[str, ...]) -> None:
        """Check the bytes and queue them in the outbox (in a thread), then ask for the session.

        The recipients are the ones the dialog gave, whoever the message's
        To and Cc name: the outbox keeps it as a release (its envelope given
        explicitly), sent to them alone, retried and never sent twice.
        """
        try:
            outgoing = release_outgoing(raw, recipients)
            queued = self.model.outbox.enqueue(profile, outgoing, explicit_envelope=True)
        except (OSError, ValueError, TuimailError) as exc:
            self.app.call_from_thread(self._say, f"Not released: {exc}", "error")
            return
        self.app.call_from_thread(self._release_queued, queued.key, profile.name)

    def _release_queued(self, key: str, profile: str) -> None:
        if self.model.start(RetryRequest(key)):
            self.notify(shown(f"Releasing through {profile}; F3 shows the session."))
        else:
            self.notify(
                "A session is running: the message waits in the outbox (F7) and is sent next."
            )

    def _show_message(self) -> None:
        read = self._current
        if read is None or read.key != self._selected_key():
            return
        self.query_one("#message-title", Label).update(f"The message: {VIEWS[self.view_mode]}")
        if self.view_mode == "auth":
            self._check_selected(again=False)  # another message chosen in this view
            text = auth_text(read, self.checks.get(read.key), read.key in self.checking)
        else:
            checked = self.checks.get(read.key)
            text = message_text(read, self.view_mode, checked.checked if checked else None)
        self.query_one("#message-view", Static).update(text)


def behaviour_lines(settings: dict[str, Any]) -> list[str]:
    """How the sandbox misbehaves on purpose (throttle, recipient limit, faults), for F5.

    ``settings`` is what the runtime file keeps
    (:func:`tuimail.sandbox.builtin.settings_of`), so a sandbox served by
    another process is described as one served here. Nothing when it
    behaves as a plain server does.
    """
    lines = []
    throttled = describe(
        int(settings.get("throttle_up") or 0), int(settings.get("throttle_down") or 0)
    )
    if throttled:
        lines.append(f"{throttled[:1].upper()}{throttled[1:]} per connection.")
    limit = settings.get("max_recipients")
    if isinstance(limit, int) and limit != DEFAULT_MAX_RECIPIENTS:
        lines.append(f"At most {limit:,} recipient(s) per message; more are answered 452.")
    faults = [str(f) for f in settings.get("faults") or []]
    if faults:
        lines.append("Faults: " + "; ".join(faults))
    return lines


def clipped(text: str, most: int) -> str:
    """``text`` cut to ``most`` characters (…), so one long address does not hide the rest."""
    return text if len(text) <= most else text[: most - 1] + "…"


def auth_text(read: MessageRead, done: AuthChecked | None, checking: bool) -> str:
    """The authentication view: each verdict in words, then the Authentication-Results line."""
    if read.problem:
        return shown(read.problem)
    if done is None:
        return "Checking DKIM, SPF and DMARC as a receiving server would (asking DNS)…"
    if done.checked is None:
        return shown(done.problem)
    checked = done.checked
    lines = ["As a receiving server would check it (a: check again)", ""]
    lines += checked.lines()
    lines += ["", f"Authentication-Results: {checked.authentication_results()}"]
    if not checked.spf.simulated_ip:
        lines += [
            "",
            "SPF needs the address the message would come from: set spf_ip under "
            "[inbox.check] in config.toml.",
        ]
    if checking:
        lines += ["", "Checking again…"]
    return "\n".join(shown(line) for line in lines)


#: Said to a second decrypt key while one decryption asks for a passphrase or runs.
STILL_DECRYPTING = "Still decrypting (answer the passphrase dialog, or wait for it)."


def still_decrypting(screen: ModelScreen, group: str) -> bool:
    """Whether ``screen``'s decrypt worker in ``group`` is pending or running: a second
    key press would start another, with a passphrase dialog of its own over the first."""
    return any(w.node is screen and w.group == group and not w.is_finished for w in screen.workers)


def decrypting_profile(profiles: dict[str, Profile], initial: str) -> Profile | None:
    """The profile whose S/MIME key decrypts for display: the one chosen in Compose, else
    the first that names a certificate and a key."""
    chosen = profiles.get(initial)
    if chosen is None or not (chosen.smime_cert and chosen.smime_key):
        chosen = next((p for p in profiles.values() if p.smime_cert and p.smime_key), chosen)
    return chosen


def report_for_display(
    raw: bytes, profile: Profile | None, typed: dict[str, str]
) -> tuple[ProtectionReport | None, str] | Locked:
    """The message's report decrypted with the user's gpg or ``profile``'s S/MIME key
    (blocks: in a thread): (the report with its clear text, or None; why not), or
    :class:`Locked` when a locked key's passphrase is needed (``typed``: what the
    user gave so far, by "pgp" or "smime"). F5 and F7 alike."""
    from tuimail import smime

    problem = ""
    try:
        signer = smime.signer_of(profile, typed.get("smime")) if profile is not None else None
    except smime.SmimePassphraseNeeded as exc:
        if smime.smime_summary(raw) is not None:
            wrong = "The passphrase given is wrong. " if exc.wrong else ""
            return Locked("smime", f"{wrong}Your S/MIME {exc.source} is locked. Its passphrase:")
        signer, problem = None, str(exc)
    except smime.SmimeError as exc:
        signer, problem = None, str(exc)
    try:
        report = describe_protection(
            raw, decrypt=True, smime_signer=signer, pgp_passphrase=typed.get("pgp")
        )
    except Exception as exc:  # a hostile message must never take the screen down
        return None, f"{type(exc).__name__}: {exc}"
    pgp = report.pgp
    if pgp is not None and pgp.key_locked:
        wrong = "The passphrase given is wrong. " if pgp.passphrase_wrong else ""
        return Locked("pgp", f"{wrong}Your OpenPGP secret key is locked. Its passphrase:")
    if report.cleartext is not None:
        return report, ""
    problem = next(
        (x.strip()[len("not decrypted: ") :] for x in report.lines() if "not decrypted" in x),
        problem or "no key of yours opens it",
    )
    return None, problem


def opened_for_display(
    read: MessageRead, profile: Profile | None, typed: dict[str, str]
) -> tuple[MessageRead | None, str] | Locked:
    """:func:`report_for_display` as F5 shows it (blocks: in a thread)."""
    answer = report_for_display(read.raw, profile, typed)
    if isinstance(answer, Locked):
        return answer
    report, problem = answer
    if report is None or report.cleartext is None:
        return None, problem
    try:
        view = mime.view(with_outer_headers(read.raw, report.cleartext))
    except Exception as exc:  # a hostile message must never take the screen down
        return None, f"{type(exc).__name__}: {exc}"
    return MessageRead(read.key, read.raw, view, "", protection=report), ""


def protection_of(raw: bytes) -> ProtectionReport | None:
    """Signed by whom, encrypted to whom (gpg, openssl, bounded by their timeouts: in a
    worker); None when reading it failed, so the message is still shown."""
    try:
        return describe_protection(raw)
    except Exception:  # a hostile message must not hide itself by tripping the check
        return None


def protection_lines(read: MessageRead, checked: Checked | None) -> list[str]:
    """Signed by whom, encrypted to whom and DKIM (the check's verdicts once it ran)."""
    report = read.protection
    if report is None:
        return []
    if checked is not None:
        report = dataclasses.replace(report, dkim=checked.dkim, dkim_domains=())
    lines = report.lines()
    if report.encrypted and report.cleartext is None:  # the hint under "encrypted to"
        at = next((i + 1 for i, line in enumerate(lines) if "encrypted to" in line), len(lines))
        lines.insert(at, "  x: decrypt it for display with your key")
    return lines


def message_text(read: MessageRead, mode: str, checked: Checked | None = None) -> str:
    """The message as ``mode`` shows it, every control character escaped."""
    if read.problem:
        return shown(read.problem)
    if mode == "source":
        source = read.raw.decode("utf-8", "replace")
        more = len(source) > MAX_SOURCE_SHOWN
        text = shown(source[:MAX_SOURCE_SHOWN], keep_newlines=True)
        return text + ("\n[… the rest is in the Maildir]" if more else "")
    view = read.view
    if view is None or (mode == "text" and not view.headers):
        # Not taken apart (the email package tripped on it): headers and text as they came.
        return message_preview(
            read.raw, full_copy="the full message is in the Maildir", protection=read.protection
        )
    if mode == "mime":
        lines = []
        for part in view.parts:
            name = f"  {part.filename!r}" if part.filename else ""
            flag = "  (attachment)" if part.is_attachment else ""
            flag += f"  (its headers were not read: {part.unread})" if part.unread else ""
            size = "" if part.content_type.startswith("multipart/") else f"  {part.size:,} bytes"
            lines.append(f"{'  ' * part.depth}{part.number}. {part.content_type}{size}{name}{flag}")
        return shown("\n".join(lines) or "(no MIME parts)", keep_newlines=True)
    wanted = ("From", "To", "Cc", "Reply-To", "Subject", "Date")
    # A signed-only message's protected headers: the signed value, not the unsigned outer
    # one (the protection lines below say that they differ).
    heads = [
        f"{name}: {value}"
        for name, value in mime.header_block(wanted, view.header, read.protection)
    ]
    heads += [
        line if line.startswith("  ") else f"Protection: {line}"
        for line in protection_lines(read, checked)
    ]
    attached = view.attachments
    if attached:
        heads.append(
            "Attachments: "
            + ", ".join(f"{p.filename or 'unnamed'} ({p.size:,} bytes)" for p in attached)
        )
    head = "\n".join(shown(line) for line in heads)
    if mode == "html":
        body = view.html_text if view.html else "(this message has no HTML part)"
    else:
        body = view.text or (
            "(no text part; press h for the HTML as text)" if view.html else "(no text part)"
        )
    return head + "\n\n" + shown(body, keep_newlines=True)
