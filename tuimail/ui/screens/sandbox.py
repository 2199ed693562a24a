"""What the sandbox's Maildir holds, whoever received it: each message with the server's side.

The built-in sandbox is one per data dir, served by this app or by another
process ('tuimail serve', another app, a 'tuimail send'), and its Maildir
outlives them all. So F5 lists the Maildir itself, read in a worker thread
(:class:`~tuimail.sandbox.captured.CapturedReader`): at most
:data:`~tuimail.sandbox.captured.MAX_LISTED` rows, the newest first, looked at
again every :data:`CAPTURED_POLL` seconds while F5 is shown and whenever a
session of this app's sandbox ends; an unchanged Maildir costs three ``stat``
calls. A session this app received is shown from memory, live; one another
process received from its session file, when there is one.
"""

from __future__ import annotations

import contextlib
import time

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Label, Static

from tuimail.sandbox import SessionRecord, StoredMessage
from tuimail.sandbox.captured import Captured, CapturedReader, Listing
from tuimail.transcript import EventKind, Transcript
from tuimail.ui.outside import cell, message_preview, shown
from tuimail.ui.screens.base import ModelScreen
from tuimail.ui.widgets.mode_bar import ModeBar
from tuimail.ui.widgets.transcript_view import TranscriptView

#: Seconds between looks at the Maildir while F5 is shown.
CAPTURED_POLL = 1.0
#: Seconds from the end of a session of this app's sandbox to a look at the Maildir.
SESSION_END_LOOK = 0.2


class MessageRead(Message, bubble=False):
    """A worker read one captured message from the Maildir; ``text`` is it as shown."""

    def __init__(self, key: str, text: str) -> None:
        super().__init__()
        self.key = key
        self.text = text


class CapturedListed(Message, bubble=False):
    """A worker looked at the Maildir; ``listing`` is None when nothing changed."""

    def __init__(self, reader: CapturedReader, listing: Listing | None) -> None:
        super().__init__()
        self.reader = reader
        self.listing = listing


class SessionRead(Message, bubble=False):
    """A worker read the session file of the message ``key`` (None: there is none)."""

    def __init__(self, key: str, transcript: Transcript | None) -> None:
        super().__init__()
        self.key = key
        self.transcript = transcript


class SandboxScreen(ModelScreen):
    def compose(self) -> ComposeResult:
        yield ModeBar("sandbox")
        with Vertical():
            yield Static("", id="sandbox-status", markup=False)
            yield DataTable(id="captured", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="captured-detail"):
                with VerticalScroll(id="message-pane"):
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
        table = self.query_one("#captured", DataTable)
        table.add_columns("Received", "From", "To", "Size", "Session")
        #: The rows shown, by Maildir key, newest first.
        self.messages: dict[str, Captured] = {}
        self._shown_rows: list[tuple[str, str]] = []
        self._reader: CapturedReader | None = None
        self._listing: Listing | None = None
        #: A look at the Maildir is under way; ``_again``: another was asked for meanwhile.
        self.reading = False
        self._again = False
        self._soon: Timer | None = None
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
        self.look()

    def _reader_now(self) -> CapturedReader:
        maildir, sessions_dir = self.model.sandbox_place()
        reader = self._reader
        if reader is None or (reader.maildir, reader.sessions_dir) != (maildir, sessions_dir):
            reader = self._reader = CapturedReader(maildir, sessions_dir)
        return reader

    def look(self) -> None:
        """Look at the Maildir in a worker (one look at a time; one more if asked meanwhile)."""
        if self.reading:
            self._again = True
            return
        self.reading = True
        self._list(self._reader_now())

    @work(thread=True, group="sandbox-list", exit_on_error=False)
    def _list(self, reader: CapturedReader) -> None:
        listing: Listing | None = None
        try:
            listing = reader.read_if_changed()
        finally:
            with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
                self.post_message(CapturedListed(reader, listing))

    @on(CapturedListed)
    def _listed(self, listed: CapturedListed) -> None:
        self.reading = False
        if listed.listing is not None and listed.reader is self._reader:
            self._listing = listed.listing
            self._show_listing(listed.listing)
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

    def _show_listing(self, listing: Listing) -> None:
        own = self._own_messages()
        rows: list[Captured] = []
        for captured in listing.messages:
            if captured.key in own:
                stored, record = own[captured.key]
                captured = Captured(
                    stored.key,
                    stored.received_at,
                    stored.mail_from,
                    stored.rcpt_tos,
                    stored.size,
                    record.id,
                )
            rows.append(captured)
        shown_rows = [(c.key, c.session_id) for c in rows]
        if shown_rows == self._shown_rows:
            return
        table = self.query_one("#captured", DataTable)
        selected = self._selected_key()
        table.clear()
        self.messages = {c.key: c for c in rows}
        today = time.strftime("%Y-%m-%d")
        for captured in rows:
            received = time.localtime(captured.received_at)
            day = time.strftime("%Y-%m-%d", received)
            when = time.strftime("%H:%M:%S" if day == today else "%Y-%m-%d %H:%M", received)
            # Text, not str: DataTable parses str cells as markup, and a
            # client chooses these addresses.
            table.add_row(
                Text(when),
                cell(captured.mail_from or "<>"),
                cell(", ".join(captured.rcpt_tos)),
                Text(f"{captured.size:,}", justify="right"),
                cell(captured.session_id or "-"),
                key=captured.key,
            )
        self._shown_rows = shown_rows
        if selected is not None and selected in self.messages:
            table.move_cursor(row=table.get_row_index(selected))

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
        listing = self._listing
        if listing is not None and listing.problem:
            lines.append(listing.problem)
        elif listing is not None and listing.total > len(listing.messages):
            lines.append(
                f"The Maildir holds {listing.total:,} messages; the newest "
                f"{len(listing.messages):,} are listed."
            )
        # Each line escaped on its own: the line ends are the screen's, not text to show.
        self.query_one("#sandbox-status", Static).update("\n".join(shown(line) for line in lines))

    # -- one message ------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#captured")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key else None
        if key is None or key not in self.messages:
            return
        captured = self.messages[key]
        reader = self._reader_now()
        own = self._own_messages().get(key)
        view = self.query_one("#server-view", TranscriptView)
        if own is not None:
            view.show(own[1].transcript)  # this app's session: from memory, live
        else:
            view.show(None)
            self.read_session(reader, captured)
        self.read_message(reader, captured)

    @work(thread=True, group="sandbox-session", exit_on_error=False)
    def read_session(self, reader: CapturedReader, captured: Captured) -> None:
        """Read the session file of a message another process received (in a thread)."""
        transcript = None
        if captured.session_id:
            with contextlib.suppress(OSError):
                transcript = reader.session_transcript(captured.session_id)
        with contextlib.suppress(RuntimeError):
            self.post_message(SessionRead(captured.key, transcript))

    @on(SessionRead)
    def _session_read(self, read: SessionRead) -> None:
        if self._selected_key() != read.key:
            return
        transcript = read.transcript
        if transcript is None:
            captured = self.messages.get(read.key)
            transcript = Transcript(title="not on disk")
            if captured is not None and captured.session_id:
                words = (
                    f"Session {captured.session_id} was received by another process; "
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
    def read_message(self, reader: CapturedReader, captured: Captured) -> None:
        """Read the message from the Maildir (file I/O, in a thread) and render it."""
        text = self._message_text(reader, captured)
        with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
            self.post_message(MessageRead(captured.key, text))

    @on(MessageRead)
    def _message_read(self, read: MessageRead) -> None:
        if self._selected_key() == read.key:
            self.query_one("#message-view", Static).update(read.text)

    def _message_text(self, reader: CapturedReader, captured: Captured) -> str:
        """The message as a client sent it, every control character escaped."""
        try:
            raw = reader.read_message(captured.key)
        except OSError as exc:
            return shown(f"cannot read {captured.key}: {exc.strerror or 'it is gone'}")
        envelope = ""
        if captured.session_id:
            envelope = f"{captured.mail_from or '<>'} → {', '.join(captured.rcpt_tos)}"
        return message_preview(
            raw, full_copy="the full message is in the Maildir", envelope=envelope
        )
