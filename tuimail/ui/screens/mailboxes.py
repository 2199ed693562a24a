"""Outbox, drafts and sent mail (F7): what is waiting, what was started, what went out.

Outbox: retry (r), edit as a draft (e), or delete (d, after a question) a
queued or failed message. Drafts: open one in Compose (enter or o) or delete it (d). Sent: read a
message with its transcript, export it as ``.eml`` and the transcript as text
and JSON Lines (x). Everything here reads the core's stores; nothing is cached.

Every read and write of those stores runs in a worker thread; what it found
comes back as a message, and the tables follow. The newest reading wins: a
listing older than the last one asked for is dropped.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from tuimail import paths
from tuimail.drafts import DraftStore, SavedDraft
from tuimail.errors import TuimailError
from tuimail.message import Draft, extra_headers_of
from tuimail.outbox import (
    MessageNotFound,
    Outbox,
    OutboxError,
    Queued,
    sent_to_sandbox,
    short_id,
)
from tuimail.profiles import Profile, ProfileError
from tuimail.transcript import Transcript
from tuimail.ui.history import SessionRun
from tuimail.ui.messages import RetryRequest
from tuimail.ui.outside import cell, header_text, message_preview, shown
from tuimail.ui.screens.base import ModelScreen
from tuimail.ui.screens.dialogs import ConfirmDialog, ExportDialog, ExportRequest, write_export
from tuimail.ui.screens.forward_dialog import ForwardDialog, ForwardHow
from tuimail.ui.widgets.mode_bar import ModeBar
from tuimail.ui.widgets.transcript_view import TranscriptView
from tuimail.ui.words import SANDBOX_SENT_NOTE, SANDBOX_SENT_TAG, last_error
from tuimail.user_config import ConfigError

if TYPE_CHECKING:
    from tuimail.inbox.protection_view import ProtectionReport
    from tuimail.replies import Original

#: What reading back a stored transcript raises when its file was edited or cut short:
#: a line that is not a record (AttributeError, KeyError, TypeError), or nested so
#: deep that json gives up (RecursionError), besides bad JSON and I/O (ValueError, OSError).
_UNREADABLE_TRANSCRIPT = (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError)


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else "now"


def draft_from_message(data: bytes, queued: Queued) -> Draft:
    """A queued message back into an editable draft (Bcc comes from the envelope;
    From, Reply-To and the extra headers from the message, as Compose shows them)."""
    message = message_from_bytes(data, policy=policy.default)
    shown = {a.lower() for header in ("To", "Cc") for a in _addresses(message.get(header, ""))}
    body_part = message.get_body(preferencelist=("plain",))
    return Draft(
        from_address=str(message.get("From", "")),
        to=[str(message["To"])] if message["To"] else [],
        cc=[str(message["Cc"])] if message["Cc"] else [],
        bcc=[r for r in queued.recipients if r.lower() not in shown],
        reply_to=[str(message["Reply-To"])] if message["Reply-To"] else [],
        subject=str(message.get("Subject", "")),
        body=body_part.get_content() if body_part is not None else "",
        headers=extra_headers_of(message),
    )


def lost_in_a_draft(data: bytes) -> str:
    """What a draft made from this message would lose ("" when nothing).

    A draft holds text and file paths; a queued message holds its attachments'
    bytes, whose files may be gone or changed, and perhaps no plain-text body.
    """
    message = message_from_bytes(data, policy=policy.default)
    attachments = [part.get_filename() or "unnamed" for part in message.iter_attachments()]
    if attachments:
        return f"its attachments ({', '.join(attachments)})"
    if message.get_body(preferencelist=("plain",)) is None:
        return "its body, which has no plain-text part"
    return ""


def settings_left_behind(queued: Queued, profiles: Mapping[str, Profile]) -> str:
    """Which of a queued message's sending settings Compose would not use ("" when none).

    Compose sends through a profile the app knows; a message queued by
    ``tuimail send --server`` (or through a profile since deleted or moved,
    or with command-line changes) would quietly go elsewhere as a draft.
    """
    table = dict(queued.profile)
    name = str(table.pop("name", ""))
    try:
        where = Profile.from_toml_table(name or "queued", table).address
    except ProfileError:
        where = f"{table.get('host', '?')}:{table.get('port', '?')}"
    profile = profiles.get(name)
    if profile is None and name == "command-line":
        return f"It was queued by the command line to go via {where} (--server)"
    if profile is None:
        return f"It was queued through the profile {name!r}, which no longer exists, via {where}"
    if profile.address != where:
        return f"It was queued via {where}; the profile {name!r} now goes via {profile.address}"
    if queued.overrides:
        changed = ", ".join(sorted(queued.overrides))
        return f"It was queued through {name!r} with command-line changes ({changed})"
    return ""


def _addresses(value: object) -> list[str]:
    addresses = getattr(value, "addresses", ())
    return [a.addr_spec for a in addresses]


@dataclass(frozen=True)
class SentRow:
    """One line of the Sent table: the message's key, when it went, its To and Subject,
    and whether it went to the built-in sandbox rather than to a mail server."""

    key: str
    when: float
    to: str
    subject: str
    sandbox: bool = False


@dataclass(frozen=True)
class Listing:
    """The three mailboxes as read at one moment (``problem``: why they could not be read)."""

    queued: dict[str, Queued] = field(default_factory=dict)
    drafts: dict[str, SavedDraft] = field(default_factory=dict)
    sent: dict[str, bytes] = field(default_factory=dict)
    sent_rows: list[SentRow] = field(default_factory=list)
    problem: str = ""


def read_listing(outbox: Outbox) -> Listing:
    """Read the outbox, the drafts and sent mail (file I/O: call it in a thread)."""
    try:
        queued = {q.key: q for q in outbox.entries()}
        drafts = {d.id: d for d in DraftStore().list()}
        sent = dict(outbox.sent())
    except (OSError, OutboxError) as exc:
        return Listing(problem=f"The mailboxes could not be read: {exc}")
    rows = []
    for key, data in reversed(list(sent.items())):
        message = message_from_bytes(data[:65536], policy=policy.default)
        try:
            when = (outbox.sent_dir / "new" / key).stat().st_mtime
        except OSError:  # removed since it was listed
            when = 0.0
        to, subject = header_text(message, "To"), header_text(message, "Subject")
        rows.append(SentRow(key, when, to, subject, sent_to_sandbox(key)))
    return Listing(queued, drafts, sent, rows)


def sent_preview(outbox: Outbox, data: bytes, key: str) -> tuple[str, Transcript | None]:
    """A sent message as :func:`~tuimail.ui.outside.message_preview` shows it, and its
    transcript (in a thread)."""
    from tuimail.inbox.protection_view import describe  # gpg, openssl: bounded, in this thread

    try:
        report: ProtectionReport | None = describe(data)
    except Exception:  # the preview is shown even when its protection cannot be read
        report = None
    # A signed-only message's protected headers are shown by their signed value.
    text = message_preview(data, full_copy="export it (x) to read it all", protection=report)
    protection = report.lines() if report is not None else []
    if protection:
        lines = [x if x.startswith("  ") else f"Protection: {x}" for x in protection]
        text = "\n".join(shown(x) for x in lines) + "\n\n" + text
    if sent_to_sandbox(key):
        text = f"{SANDBOX_SENT_NOTE}\n\n{text}"
    try:
        transcript: Transcript | None = Transcript.from_jsonl(outbox.sent_transcript(key))
    except _UNREADABLE_TRANSCRIPT:
        transcript = None
    return text, transcript


class ListingRead(Message, bubble=False):
    """A worker read the mailboxes: ``number`` is the reading asked for."""

    def __init__(self, number: int, listing: Listing) -> None:
        super().__init__()
        self.number = number
        self.listing = listing


class SentPreviewRead(Message, bubble=False):
    """A worker read one sent message and its transcript."""

    def __init__(self, key: str, text: str, transcript: Transcript | None) -> None:
        super().__init__()
        self.key = key
        self.text = text
        self.transcript = transcript


class MailboxesScreen(ModelScreen):
    BINDINGS = [
        # Before the table's own arrows: the table has the focus, so its rows
        # answer Up, Down and Enter, and Left and Right still change tabs.
        Binding("left", "tab(-1)", "Tab", id="mailboxes.previous_tab", priority=True, show=False),
        Binding("right", "tab(1)", "Tab", id="mailboxes.next_tab", priority=True, show=False),
        Binding("r", "retry", "Retry", id="mailboxes.retry"),
        Binding("e", "edit", "Edit as draft", id="mailboxes.edit"),
        Binding("d", "delete", "Delete", id="mailboxes.delete"),
        Binding("x", "export", "Export", id="mailboxes.export"),
        Binding("v", "decrypt", "Decrypt", id="mailboxes.decrypt"),
        Binding("o", "open_draft", "Open draft", id="mailboxes.open"),
        Binding("a", "answer('reply')", "Reply", id="mailboxes.reply"),
        Binding("g", "answer('reply_all')", "Reply all", id="mailboxes.reply_all"),
        Binding("f", "answer('forward')", "Forward", id="mailboxes.forward"),
    ]

    def compose(self) -> ComposeResult:
        yield ModeBar("mailboxes")
        with TabbedContent(id="boxes"):
            with TabPane("Outbox", id="tab-outbox"):
                yield DataTable(id="outbox-table", cursor_type="row", zebra_stripes=True)
                yield Static("", id="outbox-detail", markup=False)
            with TabPane("Drafts", id="tab-drafts"):
                yield DataTable(id="drafts-table", cursor_type="row", zebra_stripes=True)
            # The table above, the message and its transcript side by side below: three
            # panes in a row ran the table's columns into the message at 120 columns.
            with TabPane("Sent", id="tab-sent"):
                yield DataTable(id="sent-table", cursor_type="row", zebra_stripes=True)
                with Horizontal(id="sent-detail"):
                    with VerticalScroll(id="sent-message"):
                        yield Static("", id="sent-view", markup=False)
                    yield TranscriptView(id="sent-transcript")
        yield Footer()

    #: The tab each action works on: the footer shows only the current tab's.
    ACTION_TABS = {
        "retry": ("tab-outbox",),
        "edit": ("tab-outbox",),
        "delete": ("tab-outbox", "tab-drafts"),
        "open_draft": ("tab-drafts",),
        "export": ("tab-sent",),
        "decrypt": ("tab-sent",),
        "answer": ("tab-sent",),
    }

    #: Each tab's table: the one that has the focus while the tab is shown.
    TAB_TABLES = {
        "tab-outbox": "outbox-table",
        "tab-drafts": "drafts-table",
        "tab-sent": "sent-table",
    }

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """An action of another tab is hidden from the footer (and does nothing here);
        one of an empty tab is greyed out, since there is no row for it to act on."""
        tabs = self.ACTION_TABS.get(action)
        if tabs is None:
            return True
        try:
            tab = self.current_tab
            if tab not in tabs:
                return False
            table = self.query_one(f"#{self.TAB_TABLES[tab]}", DataTable)
        except NoMatches:  # asked before the tabs are composed
            return True
        return True if table.row_count else None

    @on(TabbedContent.TabActivated, "#boxes")
    def _tab_changed(self) -> None:
        self.refresh_bindings()
        self._focus_table()

    def _focus_table(self) -> None:
        """The current tab's table has the focus: Up, Down and Enter move through its
        rows, and each key acts on the row shown highlighted (not the tab strip's)."""
        with contextlib.suppress(NoMatches, KeyError):
            self.query_one(f"#{self.TAB_TABLES[self.current_tab]}", DataTable).focus()

    def action_tab(self, step: int) -> None:
        """The tab before or after the current one (Left, Right), its table focused."""
        tabs = list(self.TAB_TABLES)
        index = (tabs.index(self.current_tab) + step) % len(tabs)
        self.query_one("#boxes", TabbedContent).active = tabs[index]

    def on_mount(self) -> None:
        model = self.model
        self.queued: dict[str, Queued] = {}
        self.drafts: dict[str, SavedDraft] = {}
        self.sent: dict[str, bytes] = {}
        self._asked = self._shown = 0
        self._previews_asked = 0
        model.mailboxes_changed.subscribe(self, lambda _none: self.reload())
        model.session_finished.subscribe(self, self._session_finished)
        self.query_one("#outbox-table", DataTable).add_columns(
            "State", "To", "Subject", "Via", "Attempts", "Next", "Last error"
        )
        self.query_one("#drafts-table", DataTable).add_columns(
            "Saved", "Subject and recipients", "Profile"
        )
        self.query_one("#sent-table", DataTable).add_columns("Sent", "Where", "To", "Subject")
        self._focus_table()
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    @property
    def current_tab(self) -> str:
        return str(self.query_one("#boxes", TabbedContent).active)

    @property
    def reading(self) -> bool:
        """The screen waits for its stores: a reading not shown yet, or a worker still at work."""
        if self._shown != self._asked or self._previews_asked:
            return True
        return any(worker.node is self and not worker.is_finished for worker in self.app.workers)

    # -- loading ------------------------------------------------------------

    def reload(self) -> None:
        """Read the mailboxes again, in a thread; the tables follow when it is done."""
        self._asked += 1
        try:
            outbox = self.model.outbox
        except ConfigError as exc:
            self._shown = self._asked
            self.queued, self.drafts, self.sent = {}, {}, {}
            self.query_one("#outbox-detail", Static).update(shown(exc))
            return
        self.read_mailboxes(self._asked, outbox)

    @work(thread=True, group="mailboxes", exit_on_error=False)
    def read_mailboxes(self, number: int, outbox: Outbox) -> None:
        self._tell(ListingRead(number, read_listing(outbox)))

    def _tell(self, message: Message) -> None:
        """Hand a worker's result to this screen (from its thread)."""
        with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
            self.post_message(message)

    @on(ListingRead)
    def _show_listing(self, read: ListingRead) -> None:
        if read.number < self._shown:
            return  # an older reading than the one on screen
        self._shown = read.number
        listing = read.listing
        self.queued, self.drafts, self.sent = listing.queued, listing.drafts, listing.sent
        # Each cursor stays on its row: a reading follows every dialog (an export, a
        # delete asked about), and the next key must act on the row the user chose.
        chosen = {
            name: self._selected(name) for name in ("outbox-table", "drafts-table", "sent-table")
        }
        table = self.query_one("#outbox-table", DataTable)
        table.clear()
        for queued in self.queued.values():
            # Text cells: DataTable parses a str as markup, and a server wrote the error.
            table.add_row(
                cell(queued.state.value),
                cell(", ".join(queued.recipients)),
                # Two messages to one address are told apart by what they are about.
                cell(queued.subject[:60]),
                cell(queued.profile_name),
                str(len(queued.attempts)),
                _when(queued.next_attempt) if queued.state.value == "queued" else "—",
                cell(queued.last_error[:80]),
                key=queued.key,
            )
        drafts = self.query_one("#drafts-table", DataTable)
        drafts.clear()
        for saved in self.drafts.values():
            drafts.add_row(_when(saved.saved), cell(saved.title), cell(saved.profile), key=saved.id)
        sent = self.query_one("#sent-table", DataTable)
        sent.clear()
        for row in listing.sent_rows:
            where = cell(SANDBOX_SENT_TAG, style="bold") if row.sandbox else cell("server")
            sent.add_row(_when(row.when), where, cell(row.to), cell(row.subject), key=row.key)
        for name, key in chosen.items():
            refilled = self.query_one(f"#{name}", DataTable)
            if key is not None and key in refilled.rows:
                refilled.move_cursor(row=refilled.get_row_index(key), animate=False)
        # The detail follows the table as it is now: a deleted message is not shown.
        self._outbox_row()
        self.refresh_bindings()  # an empty tab's keys are greyed, a filled one's not
        if listing.problem:
            self.query_one("#outbox-detail", Static).update(shown(listing.problem))

    def _selected(self, table_id: str) -> str | None:
        table = self.query_one(f"#{table_id}", DataTable)
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    @on(DataTable.RowHighlighted, "#outbox-table")
    def _outbox_row(self) -> None:
        key = self._selected("outbox-table")
        queued = self.queued.get(key or "")
        detail = self.query_one("#outbox-detail", Static)
        if queued is None:
            detail.update("")
            return
        lines = [
            f"{short_id(queued.key)}  {queued.message_id}",
            *([f"subject: {queued.subject}"] if queued.subject else []),
            f"from {queued.sender} to {', '.join(queued.recipients)} via {queued.profile_name}",
            f"queued {_when(queued.created)}; {len(queued.attempts)} attempt(s)",
        ]
        if queued.last_error:
            lines.append(f"last error: {last_error(queued)}")
        # keep_newlines: a multi-line server reply in the last error, line by line.
        detail.update("\n".join(shown(line, keep_newlines=True) for line in lines))

    @on(DataTable.RowHighlighted, "#sent-table")
    def _sent_row(self) -> None:
        key = self._selected("sent-table")
        if key is None or key not in self.sent:
            return
        self._previews_asked += 1
        self.read_sent(key, self.sent[key], self.model.outbox)

    @work(thread=True, group="sent-preview", exit_on_error=False)
    def read_sent(self, key: str, data: bytes, outbox: Outbox) -> None:
        self._tell(SentPreviewRead(key, *sent_preview(outbox, data, key)))

    def action_decrypt(self) -> None:
        """Show the highlighted sent message decrypted (it is encrypted to your own key too),
        a locked key's passphrase asked for as in F5; in memory, never written anywhere."""
        key = self._selected("sent-table") if self.current_tab == "tab-sent" else None
        if key is None or key not in self.sent:
            self.notify("Choose a sent message first (Sent tab).", severity="warning")
            return
        from tuimail.ui.screens.sandbox import (
            STILL_DECRYPTING,
            decrypting_profile,
            still_decrypting,
        )

        if still_decrypting(self, "sent-decrypt"):
            self.notify(STILL_DECRYPTING, severity="warning")
            return
        chosen = decrypting_profile(self.model.all_profiles(), self.model.initial_profile)
        self.notify("Decrypting…")
        self.decrypt_sent(key, self.sent[key], chosen)

    @work(group="sent-decrypt", exit_on_error=False)
    async def decrypt_sent(self, key: str, data: bytes, profile: Profile | None) -> None:
        """:func:`~tuimail.ui.screens.sandbox.report_for_display` with passphrases asked."""
        from tuimail.ui.screens.sandbox import report_for_display
        from tuimail.ui.widgets.pgp_controls import asking_for_passphrases

        answer = await asking_for_passphrases(
            self.app, lambda typed: report_for_display(data, profile, typed)
        )
        report, problem = answer if answer is not None else (None, "no passphrase given (Escape)")
        if report is None or report.cleartext is None:
            self.notify(
                shown(f"Not decrypted: {problem or 'it is not encrypted'}"), severity="warning"
            )
            return
        if key != self._selected("sent-table"):
            return  # the cursor has moved on
        from tuimail.inbox.protection_view import with_outer_headers

        lines = [x if x.startswith("  ") else f"Protection: {x}" for x in report.lines()]
        opened = message_preview(
            with_outer_headers(data, report.cleartext), full_copy="export it (x) to read it all"
        )
        text = "\n".join(shown(x) for x in lines) + "\n\n" + opened
        self.query_one("#sent-view", Static).update(text)

    @on(SentPreviewRead)
    def _show_sent(self, read: SentPreviewRead) -> None:
        self._previews_asked -= 1
        if read.key != self._selected("sent-table"):
            return  # the cursor has moved on
        self.query_one("#sent-view", Static).update(read.text)
        self.query_one("#sent-transcript", TranscriptView).show(read.transcript)

    # -- actions ------------------------------------------------------------

    def action_retry(self) -> None:
        key = self._selected("outbox-table") if self.current_tab == "tab-outbox" else None
        if key is None:
            return
        if not self.model.start(RetryRequest(key)):
            self.notify("A session is already running.", severity="warning")

    def _compose_busy(self) -> bool:
        """Compose is sending: its form is not replaced (nor this message dropped) now."""
        busy = self.model.compose_locked
        if busy:
            self.notify("Compose is sending a message; try again when it is done.")
        return busy

    def action_edit(self) -> None:
        key = self._selected("outbox-table") if self.current_tab == "tab-outbox" else None
        queued = self.queued.get(key or "")
        if queued is None or self._compose_busy():
            return
        outbox = self.model.outbox
        left_behind = settings_left_behind(queued, self.model.all_profiles())
        if not left_behind:
            self.edit_as_draft(queued, outbox)
            return
        # As neomutt's postponed messages: a draft is sent through the account
        # chosen when it is sent. Said before, since the server it was meant for
        # is not kept with the draft.
        question = (
            f"{left_behind}. Compose sends through a profile you choose there, so those "
            "settings will not be used. Edit it as a draft anyway?"
        )
        self.app.push_screen(
            ConfirmDialog(question, confirm="Edit as draft"),
            lambda yes: self._edit_confirmed(yes, queued, outbox, left_behind),
        )

    def _edit_confirmed(
        self, confirmed: bool | None, queued: Queued, outbox: Outbox, left_behind: str
    ) -> None:
        if not confirmed:
            self.notify("Not changed: the message stays queued in the outbox.")
        elif not self._compose_busy():
            self.edit_as_draft(queued, outbox, f"{left_behind}; choose the profile to send it")

    @work(thread=True, exclusive=True, group="mailboxes-edit", exit_on_error=False)
    def edit_as_draft(self, queued: Queued, outbox: Outbox, note: str = "") -> None:
        """Take the message out of the outbox as a draft, unless the draft would lose part of it.

        The draft is written before the outbox lets go of the message, so a
        crash between the two leaves it in both places, never in neither.
        """
        store = DraftStore()
        saved: SavedDraft | None = None
        try:
            data = outbox.message_bytes(queued.key)
            lost = lost_in_a_draft(data)
            if lost:
                problem = f"Editing it as a draft would lose {lost}; retry (r) or delete (d) it."
                self.app.call_from_thread(self._say, problem, "warning", 10)
                return
            saved = SavedDraft(
                DraftStore.new_id(), queued.profile_name, draft_from_message(data, queued)
            )
            store.save(saved)
            outbox.drop(queued.key)
        except (MessageNotFound, OSError, OutboxError, ValueError) as exc:
            if saved is not None:  # still queued: one home for it, the outbox
                with contextlib.suppress(OSError):
                    store.delete(saved.id)
            self.app.call_from_thread(self._say, str(exc))
            return
        self.app.call_from_thread(self._open_in_compose, saved, note)

    def _say(
        self, text: str, severity: SeverityLevel = "error", timeout: float | None = None
    ) -> None:
        """A notification quoting outside text (an error, a file name): escaped, never markup."""
        self.notify(shown(text), severity=severity, timeout=timeout, markup=False)

    def action_delete(self) -> None:
        """Ask first: a deleted message or draft is gone for good."""
        tab = self.current_tab
        if tab == "tab-outbox" and (key := self._selected("outbox-table")):
            queued = self.queued.get(key)
            if queued is None:
                return
            outbox = self.model.outbox
            question = (
                f"Delete the {queued.state.value} message to {', '.join(queued.recipients)} "
                f"({short_id(key)})? It will not be sent."
            )
            self.app.push_screen(
                ConfirmDialog(question, confirm="Delete"),
                lambda yes: self._delete(yes, lambda: outbox.drop(key)),
            )
        elif tab == "tab-drafts" and (draft_id := self._selected("drafts-table")):
            saved = self.drafts.get(draft_id)
            if saved is None:
                return
            self.app.push_screen(
                ConfirmDialog(f"Delete the draft {saved.title}?", confirm="Delete"),
                lambda yes: self._delete(yes, lambda: DraftStore().delete(draft_id)),
            )

    def _delete(self, confirmed: bool | None, delete: Callable[[], object]) -> None:
        if confirmed:
            self.delete_in_thread(delete)

    @work(thread=True, group="mailboxes-delete", exit_on_error=False)
    def delete_in_thread(self, delete: Callable[[], object]) -> None:
        try:
            delete()
        except (MessageNotFound, OSError, OutboxError) as exc:
            self.app.call_from_thread(self._say, str(exc))
        self.app.call_from_thread(self.reload)

    @on(DataTable.RowSelected, "#drafts-table")
    def _draft_chosen(self) -> None:
        self.action_open_draft()

    def action_open_draft(self) -> None:
        draft_id = self._selected("drafts-table") if self.current_tab == "tab-drafts" else None
        if draft_id and draft_id in self.drafts and not self._compose_busy():
            self._open_in_compose(self.drafts[draft_id])

    def _open_in_compose(self, saved: SavedDraft, note: str = "") -> None:
        """Continue a draft (or an outbox message turned back into one) in Compose."""
        self.app.switch_mode("compose")
        self.model.open_draft(saved, note)

    def action_answer(self, how: str) -> None:
        """Reply, reply to all or forward (inline or attached: asked) the highlighted sent message.

        The draft comes from tuimail/replies.py (To from Reply-To or From, the
        user's own addresses left out, ``In-Reply-To`` and ``References`` as
        extra headers, the text quoted); it opens in Compose like any draft.
        """
        from tuimail.replies import ReplyError, own_addresses_of, read_original, reply_all
        from tuimail.replies import reply as reply_to

        key = self._selected("sent-table") if self.current_tab == "tab-sent" else None
        if key is None or key not in self.sent or self._compose_busy():
            return
        own = own_addresses_of(self.model.all_profiles().values())
        try:
            original = read_original(self.sent[key])
        except ReplyError as exc:
            self.notify(shown(str(exc)), title="Sent", severity="warning", markup=False)
            return
        if how == "forward":
            self.app.push_screen(ForwardDialog(), lambda way: self._forward(original, way))
            return
        everyone = how == "reply_all"
        draft = reply_all(original, own) if everyone else reply_to(original, own)
        words = "a reply to all" if everyone else "a reply"
        saved = SavedDraft(DraftStore.new_id(), "", draft)
        self._open_in_compose(saved, f"{words} to the sent message")

    def _forward(self, original: Original, way: ForwardHow | None) -> None:
        """Forward the sent message inline (at once), or attached (its file written in a thread)."""
        from tuimail.replies import forward

        if way is ForwardHow.INLINE:
            saved = SavedDraft(DraftStore.new_id(), "", forward(original))
            self._open_in_compose(saved, "a forward of the sent message")
        elif way is ForwardHow.ATTACHED:
            self._forward_attached(original)

    @work(thread=True, group="mailboxes-forward", exit_on_error=False)
    def _forward_attached(self, original: Original) -> None:
        from tuimail.replies import forward, forwards_dir, write_forward_attachment

        try:
            path = write_forward_attachment(original, forwards_dir())
        except (OSError, TuimailError) as exc:
            self.app.call_from_thread(
                self.notify, shown(f"Cannot forward it attached: {exc}"), severity="error"
            )
            return
        saved = SavedDraft(DraftStore.new_id(), "", forward(original, attachment=path))
        self.app.call_from_thread(
            self._open_in_compose, saved, "a forward of the sent message, attached"
        )

    def action_export(self) -> None:
        key = self._selected("sent-table") if self.current_tab == "tab-sent" else None
        if key is None:
            self.notify("Choose a sent message to export.", severity="warning")
            return
        default = paths.exports_dir() / f"tuimail-{short_id(key)}.eml"
        dialog = ExportDialog(default, "the message (.eml) and its transcript")
        self.app.push_screen(dialog, lambda request: self._export(key, request))

    def _export(self, key: str, request: ExportRequest | None) -> None:
        if request is not None:
            self.write_export(key, request)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def write_export(self, key: str, request: ExportRequest) -> None:
        """The message as .eml beside the transcript in the chosen format."""
        suffix = ".jsonl" if request.format == "jsonl" else ".txt"
        try:
            transcript = Transcript.from_jsonl(self.model.outbox.sent_transcript(key))
            text = transcript.to_jsonl() if request.format == "jsonl" else transcript.to_text()
            eml, transcript_path = write_export(
                request.path, [(".eml", self.sent[key]), (suffix, text.encode("utf-8"))]
            )
        except _UNREADABLE_TRANSCRIPT as exc:
            self.app.call_from_thread(self._say, f"Export failed: {exc}")
            return
        kept = "" if eml.stem == request.path.stem else " (a file of that name was kept)"
        self.app.call_from_thread(
            self._say, f"Exported {eml} and {transcript_path.name}{kept}", "information"
        )

    def _session_finished(self, run: SessionRun) -> None:
        self.reload()
