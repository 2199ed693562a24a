"""What the embedded sandbox captured: each message with the server's side of its session."""

from __future__ import annotations

import contextlib
import time

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Label, Static

from tuimail.sandbox import Sandbox, SessionRecord, StoredMessage
from tuimail.ui.outside import cell, message_preview, shown
from tuimail.ui.screens.base import ModelScreen
from tuimail.ui.widgets.mode_bar import ModeBar
from tuimail.ui.widgets.transcript_view import TranscriptView


class MessageRead(Message, bubble=False):
    """A worker read one captured message from the Maildir; ``text`` is it as shown."""

    def __init__(self, key: str, text: str) -> None:
        super().__init__()
        self.key = key
        self.text = text


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
        model.sandbox_session_ended.subscribe(self, lambda _record: self.reload())
        table = self.query_one("#captured", DataTable)
        table.add_columns("Received", "From", "To", "Size", "Session")
        self.messages: dict[str, tuple[StoredMessage, SessionRecord]] = {}
        self.reload()

    def reload(self) -> None:
        status = self.query_one("#sandbox-status", Static)
        sandbox = self.model.sandbox
        if sandbox is None:
            status.update(shown(self.model.sandbox_note or "The sandbox is not running."))
            return
        profile = sandbox.client_profile()
        status_text = f"Sandbox listening on {profile.address}; mail kept in {sandbox.maildir_path}"
        if self.model.sandbox_note:  # why it is not on its usual port
            status_text += f"\nNote: {self.model.sandbox_note}."
        status.update(shown(status_text))
        table = self.query_one("#captured", DataTable)
        for record in list(sandbox.sessions):
            for stored in record.messages:
                if stored.key in self.messages:
                    continue
                self.messages[stored.key] = (stored, record)
                # Text, not str: DataTable parses str cells as markup, and a
                # client chooses these addresses.
                table.add_row(
                    Text(time.strftime("%H:%M:%S", time.localtime(stored.received_at))),
                    cell(stored.mail_from or "<>"),
                    cell(", ".join(stored.rcpt_tos)),
                    Text(f"{stored.size:,}", justify="right"),
                    cell(record.id),
                    key=stored.key,
                )

    @on(DataTable.RowHighlighted, "#captured")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key else None
        if key is None or key not in self.messages:
            return
        stored, record = self.messages[key]
        self.query_one("#server-view", TranscriptView).show(record.transcript)
        if self.model.sandbox is not None:
            self.read_message(self.model.sandbox, stored)

    @work(thread=True, group="sandbox-message", exit_on_error=False)
    def read_message(self, sandbox: Sandbox, stored: StoredMessage) -> None:
        """Read the message from the Maildir (file I/O, in a thread) and render it."""
        text = self._message_text(sandbox, stored)
        with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
            self.post_message(MessageRead(stored.key, text))

    @on(MessageRead)
    def _message_read(self, read: MessageRead) -> None:
        table = self.query_one("#captured", DataTable)
        if table.row_count == 0:
            return
        if table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == read.key:
            self.query_one("#message-view", Static).update(read.text)

    def _message_text(self, sandbox: Sandbox, stored: StoredMessage) -> str:
        """The message as a client sent it, every control character escaped."""
        try:
            raw = sandbox.read_message(stored.key)
        except (LookupError, OSError) as exc:  # NotFound is a LookupError
            return shown(f"cannot read {stored.key}: {exc}")
        envelope = f"{stored.mail_from or '<>'} → {', '.join(stored.rcpt_tos)}"
        return message_preview(
            raw, full_copy="the full message is in the Maildir", envelope=envelope
        )
