"""Compose and send: profile, addresses, subject, body, attachments.

From is the profile's address until the user edits it (then a change of
profile leaves it alone); Reply-To and extra headers wait behind "More".
Every field is checked with the core's own checks (the same as ``tuimail
send``'s), as it is left and again, in full, when the message is built.

Validation happens as you leave each address field and again, in full, in the
core when you send. Sending runs in a worker on the app; the form is locked
while it runs, so nothing is typed into a message that is already on its way.

After a send the message has exactly one home: sent, or in the outbox (queued
for a retry, or possibly delivered) with the form cleared, or, when it failed
for good, back here as a draft and no longer in the outbox, so fixing it and
sending again cannot deliver it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import date
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.events import DescendantBlur, Resize, ScreenResume
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import (
    Button,
    Checkbox,
    Input,
    Label,
    ListItem,
    ListView,
    Select,
    Static,
    TextArea,
)

from tuimail import editor as external_editor
from tuimail import paths
from tuimail.address_book import (
    AddressBook,
    Completion,
    Source,
    Suggestion,
    address_book_command,
    checked,
)
from tuimail.addresses import mailbox_text, split_address_list
from tuimail.drafts import DraftStore, SavedDraft
from tuimail.errors import TuimailError
from tuimail.message import Draft, DraftInvalid, split_header, validate_extra_headers
from tuimail.profiles import Profile, Security
from tuimail.signatures import SignatureUnreadable, body_with_signature
from tuimail.size_limits import (
    AttachmentSize,
    SeenLimit,
    age_words,
    body_wire_size,
    estimated_wire_size,
    last_seen,
    measure_attachment,
    server_key,
    size_words,
)
from tuimail.terminal_text import escape_terminal_controls
from tuimail.ui.commands import ListedCommands
from tuimail.ui.history import RunKind, SentState, SessionRun
from tuimail.ui.messages import ProfilesChanged, SendRequest, SendStopped
from tuimail.ui.model import OpenedDraft
from tuimail.ui.outside import shown
from tuimail.ui.screens.base import ModelScreen
from tuimail.ui.screens.compose_form import LESS_LABEL, MORE_LABEL, compose_form
from tuimail.ui.widgets.address_field import AddressField
from tuimail.ui.widgets.pgp_controls import PgpControls
from tuimail.ui.widgets.smime_toggle import SmimeToggle
from tuimail.ui.widgets.transcript_view import TranscriptView
from tuimail.ui.words import profile_warnings, sign_in_key, sign_in_status
from tuimail.user_config import ConfigError

if TYPE_CHECKING:
    from tuimail.session import RecipientRefusal
    from tuimail.templates import Template

WIDE = 120
#: The address fields the form shows; other fields' errors go to the status line.
ADDRESS_FIELDS = ("from", "to", "cc", "bcc", "reply-to")
#: The fields that complete addresses as they are typed.
COMPLETING_FIELDS = ("to", "cc", "bcc")
#: The inputs whose addresses the OpenPGP key line follows.
RECIPIENT_INPUTS = ("input-to", "input-cc", "input-bcc")

#: The fields behind the "More" toggle (the extra headers' errors are theirs too).
MORE_FIELDS = ("reply-to", "headers")
#: Seconds of quiet typing before the draft is written.
DRAFT_SAVE_DELAY = 2.0
#: Seconds after the last change to the body before the size as sent is counted again
#: (a Markdown body is rendered for it, in a worker).
TOTAL_DELAY = 1.0
_MENTIONS_ATTACHMENT = re.compile(r"\battach(ed|ment|ments|ing)?\b|\benclosed\b", re.IGNORECASE)


def breakpoint_classes(screen: Screen[Any]) -> dict[str, bool]:
    """The size classes Textual's breakpoints give ``screen`` at the app's present size.

    Textual's own rule (``Screen._on_resize``): for each axis, the class of the
    largest breakpoint the size reaches; the others off.
    """
    app = screen.app
    width, height = app.size
    horizontal = (
        app.HORIZONTAL_BREAKPOINTS
        if screen.HORIZONTAL_BREAKPOINTS is None
        else screen.HORIZONTAL_BREAKPOINTS
    ) or []
    vertical = (
        app.VERTICAL_BREAKPOINTS
        if screen.VERTICAL_BREAKPOINTS is None
        else screen.VERTICAL_BREAKPOINTS
    ) or []
    classes = {name: False for _at, name in horizontal + vertical}
    for breakpoints, size in ((horizontal, width), (vertical, height)):
        for at, name in sorted(breakpoints, reverse=True):
            if size >= at:
                classes[name] = True
                break
    return classes


def unusable_file_name(path: Path) -> str:
    """Why a file cannot be attached by this name ("" when it can)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return shown(f"{path.name}: the file name is not valid UTF-8; rename the file to attach it")
    return ""


def profile_label(profile: Profile, *, builtin: bool = False, running: bool = True) -> str:
    """How a profile reads in the profile selector; the built-in sandbox says so.

    Short enough to be read whole beside the live transcript at 120 columns.
    """
    where = profile.address if running else "not running"
    label = f"{profile.name} · {profile.security.label} · {where}"
    return f"{label} · built-in" if builtin else label


#: The built-in "direct" choice of the profile selector: no relay, each recipient
#: domain's MX hosts (tuimail/routing.py). A saved profile of that name wins.
DIRECT_LABEL = "direct · to each recipient domain's MX hosts · built-in"
DIRECT_NOTE = (
    "no relay: each recipient domain's MX hosts, on port 25; TLS as the domain's DANE "
    "or MTA-STS demands, else opportunistic (never shown as secure). The EHLO name is "
    "config.toml's [direct] ehlo_name, else this machine's name; DNS from [dns] servers"
)


#: tuimail/routing.py's ``DIRECT``, the entry's name, spelled here: routing brings the
#: SMTP client (tuimail/session.py, aiosmtplib), which the first screen does without
#: (tests/test_ui_launch.py checks that the two agree).
DIRECT = "direct"


def direct_choice() -> Profile:
    """What the selector's "direct" entry stands for until Send (no server, no account)."""
    return Profile(name=DIRECT, host="direct", port=25, security=Security.NONE)


def direct_send_profile(draft: Draft) -> Profile:
    """The outbox's settings for sending ``draft`` direct, from config.toml (blocking: a thread).

    The same settings ``tuimail send --direct`` makes from its flags
    (tuimail/routing.py ``direct_profile``): the EHLO name from ``[direct]
    ehlo_name`` or this machine's name, refused when MX servers would refuse
    it; the resolvers from ``[dns] servers``. Raises
    :class:`~tuimail.routing.EhloNameRefused`, :class:`ConfigError` or
    :class:`ValueError` (a resolver that is not an address), each in words.
    """
    from tuimail import mx, routing, user_config

    config = user_config.load_config()
    ehlo = routing.choose_ehlo_name("", user_config.direct_ehlo_name(config))
    servers = user_config.dns_servers(config)
    for server in servers:
        mx.parse_server(server)
    recipients = [*draft.to, *draft.cc, *draft.bcc]
    first = recipients[0].rpartition("@")[2].strip(" >").lower() if recipients else ""
    return routing.direct_profile(
        first or "direct",
        ehlo_name=ehlo,
        # Read at each send (not bound as a default): the tests' MX servers listen elsewhere.
        mx_port=routing.SMTP_PORT,
        dns_servers=servers,
    )


def profile_sender(profile: Profile | None) -> str:
    """The From a profile gives a new message ("" when it has no address)."""
    if profile is None or not profile.from_address:
        return ""
    return mailbox_text(profile.display_name, profile.from_address)


def profile_identities(profile: Profile) -> tuple[Suggestion, ...]:
    """The From addresses a profile offers: its own, then its ``aliases`` (each checked
    when the profile was made, tuimail/profiles.py's ``aliases_problem``)."""
    texts = [profile_sender(profile), *split_address_list(profile.aliases)]
    found: list[Suggestion] = []
    for text in texts:
        parsed = checked(text.strip()) if text.strip() else None
        if parsed is not None and all(s.address != parsed.addr_spec for s in found):
            found.append(Suggestion(parsed.display_name, parsed.addr_spec, Source.PROFILE))
    return tuple(found)


def header_lines(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The extra headers box as (name, value) pairs, and why lines are not headers.

    Each non-empty line is one header, ``Name: value`` (split as ``tuimail
    send --header`` splits it); a line without a colon is kept as a name
    with an empty value, so a draft still holds it, and reported.
    """
    pairs: list[tuple[str, str]] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        pair = split_header(line)
        if pair is None:
            problems.append(f"line {number}: {line.strip()!r} is not in the form 'Name: value'")
            pair = (line.strip(), "")
        pairs.append(pair)
    return pairs, problems


def headers_text(headers: list[tuple[str, str]]) -> str:
    """Extra headers as the box shows them, one ``Name: value`` a line."""
    return "\n".join(f"{name}: {value}" for name, value in headers)


@dataclass(frozen=True, eq=False)
class DraftWrite:
    """One draft write asked for: save ``saved`` as draft ``draft_id`` (None: delete it).

    ``set_aside``: the form is emptied afterwards, so the next start leaves the
    drafts saved so far in the drafts list (:meth:`DraftStore.latest`).
    """

    draft_id: str
    saved: SavedDraft | None
    set_aside: bool = False

    def run(self) -> None:
        """The file work (in the app's writing thread); raises OSError, or ValueError
        for a file name that is not UTF-8, as :meth:`DraftStore.save` does."""
        if self.saved is None:
            DraftStore().delete(self.draft_id)
        else:
            DraftStore().save(self.saved)
        if self.set_aside:
            DraftStore().set_aside()


class DraftWritten(Message, bubble=False):
    """A draft write ended (in its thread); ``problem`` says why it failed ("" when it did not)."""

    def __init__(self, request: DraftWrite, problem: str = "") -> None:
        super().__init__()
        self.request = request
        self.problem = problem


class ComposeCommands(ListedCommands):
    """Compose's own palette entries (the app's are in tuimail/ui/commands.py)."""

    #: The templates in the config dir, listed (in a thread) when the palette opens.
    _templates: tuple[str, ...] = ()

    async def startup(self) -> None:
        from tuimail.templates import list_templates

        try:
            self._templates = tuple(await asyncio.to_thread(list_templates))
        except (OSError, TuimailError):
            self._templates = ()

    def _available(self) -> list[tuple[str, Callable[[], object]]]:
        screen = self.screen
        if not isinstance(screen, ComposeScreen):
            return []
        available: list[tuple[str, Callable[[], object]]] = [
            ("Edit the body in $EDITOR", screen.action_edit_body),
            ("Markdown on or off for this message", screen.action_toggle_markdown),
            ("Preview the Markdown", screen.action_preview),
            ("Open an .eml file in Compose", screen.action_open_eml),
            ("Save the draft as .eml", screen.action_save_eml),
        ]
        for name in self._templates:
            available.append((f"Start from template {name}", partial(screen.use_template, name)))
        return available


class ComposeScreen(ModelScreen):
    """Write a message and send it; on wide terminals the live transcript is beside it."""

    COMMANDS = {ComposeCommands}
    BINDINGS = [
        Binding("ctrl+s", "send", "Send", id="compose.send", priority=True),
        Binding("ctrl+n", "new_message", "New", id="compose.new", show=False),
        Binding("ctrl+o", "attach", "Attach", id="compose.attach", show=False),
        # One key both ways, so its footer words name both (the toggle says which).
        Binding("ctrl+r", "toggle_more", "More/less", id="compose.more"),
        Binding("ctrl+g", "edit_body", "Editor", id="compose.editor", show=False),
        Binding("f9", "toggle_markdown", "Markdown", id="compose.markdown", show=False),
        Binding("f8", "preview", "Preview", id="compose.preview", show=False),
    ]

    #: Shown once already (see :meth:`_styled_already`).
    _resumed = False

    def compose(self) -> ComposeResult:
        # Decided before the children mount: a class change after that restyles
        # every one of them (47 widgets; a fifth of the start-up's styling work).
        self.set_class(self.app.size.width >= WIDE, "-wide")
        # The same for the app's size classes (TuimailApp.VERTICAL_BREAKPOINTS), which
        # Textual sets at the screen's first Resize, once every widget is styled:
        # set now, that Resize finds them in place and restyles nothing.
        for name, wanted in breakpoint_classes(self).items():
            self.set_class(wanted, name, update=False)  # (update_classes: not in 8.2.0)
        yield from compose_form(self._profile_options())

    @on(ScreenResume)
    def _styled_already(self, event: ScreenResume) -> None:
        """The first time the screen is shown, its widgets were styled as they mounted,
        with the CSS of the moment: Textual would style all of them again (a tenth of
        the start-up). A later change of the CSS (a theme) restyles the screen by
        itself; a later resume (after another mode) still restyles, as Textual does."""
        if not self._resumed:
            self._resumed = True
            event.refresh_styles = False

    def on_mount(self) -> None:
        model = self.model
        model.profiles_changed.subscribe(self, self._profiles_changed)
        model.session_started.subscribe(self, self._session_started)
        model.session_finished.subscribe(self, self._session_finished)
        model.send_stopped.subscribe(self, self._send_stopped)
        # Immediate: the draft is in the form when the mode switch shows it, and
        # saved before the app exits.
        model.draft_opened.subscribe(self, self.load_draft, immediate=True)
        model.closing.subscribe(self, lambda _none: self.save_draft_now(), immediate=True)
        model.follow_live(self.query_one("#live-view", TranscriptView))
        self.attachments: list[Path] = []
        #: Each attachment's size in bytes, once measured (in a thread); None: unreadable.
        self.attachment_sizes: dict[Path, int | None] = {}
        #: Each attachment's bytes as sent, once measured (tuimail/size_limits.py).
        self.attachment_wire: dict[Path, AttachmentSize] = {}
        #: The profile's server's SIZE as last seen (read in a thread), for :attr:`_limit_for`.
        self.seen_limit: SeenLimit | None = None
        self._limit_for = ""
        #: The body's parts as sent, measured in a thread (a Markdown body's HTML is
        #: rendered for it): (the body, Markdown on, bytes, None if it could not be
        #: measured); another body: not known yet.
        self._body_wire: tuple[str, bool, int | None] | None = None
        #: The body and Markdown setting being measured now, so it is not asked twice.
        self._body_measuring: tuple[str, bool] | None = None
        #: Send was pressed and waits for that measuring: another press adds nothing.
        self._send_measuring = False
        self.draft_id = DraftStore.new_id()
        self._last_draft_write: DraftWrite | None = None
        self._draft_dirty = False
        self._draft_save_failing = False
        self._draft_timer: Timer | None = None
        self._total_timer: Timer | None = None
        self._loading = False
        #: From was typed by the user: a change of profile no longer replaces it.
        self._from_edited = False
        #: The text :meth:`_fill_from` last put in From (what is not typed).
        self._filled_from = ""
        self._book: AddressBook | None = None
        self._book_lock = threading.Lock()
        #: The profiles' own From texts, offered too (set on the loop, read by the lookups).
        self._own_addresses: tuple[str, ...] = ()
        try:
            self._book_command = address_book_command(model.config)
        except ConfigError as exc:
            self._book_command = ""
            self.notify(
                shown(str(exc)), title="Address completion", severity="warning", markup=False
            )
        for name in COMPLETING_FIELDS:
            self.query_one(f"#field-{name}", AddressField).completer = self.complete_address
        #: The profile's From and its aliases, offered in From (set on the loop).
        self._identities: tuple[Suggestion, ...] = ()
        sender = self.query_one("#field-from", AddressField)
        sender.completer = self.complete_identity
        sender.offer_on_focus = True
        #: Markdown was set for this message (by the user or its draft): the profile's
        #: default no longer replaces it.
        self._markdown_chosen = False
        #: The form holds a new message (not a draft reopened): a signature may be added.
        self._fresh = True
        #: The body the signature made, while untouched ("" when none was added).
        self._signature_body = ""
        self._signing = 0
        self.reload_profiles(model.initial_profile)
        self.app.set_focus(self.query_one("#input-to", Input))

    def complete_identity(self, query: str) -> Completion:
        """From's suggestions: the profile's address and its ``aliases`` ("" offers all)."""
        wanted = query.lower()
        offered = tuple(
            s for s in self._identities if wanted in s.text.lower() or wanted in s.address
        )
        return Completion(query, offered if len(self._identities) > 1 else ())

    def complete_address(self, query: str) -> Completion:
        """Suggestions for what is typed in To, Cc or Bcc: blocks (files, the address-book
        command), so the fields call it in their thread workers, never on the loop."""
        with self._book_lock:
            if self._book is None:
                from tuimail.outbox import Outbox  # the SMTP client: only once completing

                self._book = AddressBook(Outbox().sent_dir, command=self._book_command)
            book = self._book
        book.set_own(self._own_addresses)
        return book.complete(query)

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width >= WIDE, "-wide")

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        """Enter in a one-line field moves on to the next field, as in the account and
        target dialogs; it never sends (that is its own key)."""
        event.stop()
        self.focus_next()

    # -- more fields: Reply-To and extra headers ---------------------------

    @property
    def more_shown(self) -> bool:
        return self.has_class("-more")

    def action_toggle_more(self) -> None:
        """Show the more fields and go to Reply-To; hide them, leaving none of them focused."""
        more = self.query_one("#more-fields")
        was_inside = self.focused is not None and more in self.focused.ancestors
        self.show_more(not self.more_shown)
        if self.more_shown:
            self.app.set_focus(self.query_one("#input-reply-to", Input))
        elif was_inside:
            self.app.set_focus(self.query_one("#input-from", Input))

    def show_more(self, shown_: bool = True) -> None:
        """Show or hide Reply-To and the extra headers (what is in them is sent either way)."""
        self.set_class(shown_, "-more")
        self._label_more()

    def _label_more(self) -> None:
        """The toggle says when hidden fields hold something, so nothing is sent unseen."""
        label = LESS_LABEL
        if not self.more_shown:
            draft = self.draft()
            label = f"{MORE_LABEL} (in use)" if draft.reply_to or draft.headers else MORE_LABEL
        toggle = self.query_one("#more-toggle", Button)
        if str(toggle.label) != label:
            toggle.label = label
            # A Button's label change repaints it at its old width: without a
            # new layout, "(in use)" would be cut off and never read.
            toggle.refresh(layout=True)

    @on(Button.Pressed, "#more-toggle")
    def _more_pressed(self) -> None:
        self.action_toggle_more()

    def headers_valid(self) -> bool:
        """Check the extra headers with the core's checks; show the first problem inline."""
        pairs, problems = header_lines(self.query_one("#headers", TextArea).text)
        if not problems:
            try:
                validate_extra_headers(pairs)
            except DraftInvalid as exc:
                problems = [str(error) for error in exc.errors]
        self.show_headers_error(problems[0] if problems else "")
        return not problems

    def show_headers_error(self, message: str) -> None:
        error = self.query_one("#headers-error", Label)
        error.update(message)
        error.set_class(bool(message), "-shown")
        if message:
            self.show_more()

    def on_descendant_blur(self, event: DescendantBlur) -> None:
        if event.widget.id == "headers":
            self.headers_valid()
        elif event.widget.id == "input-from" and not self._field_value("from").strip():
            # Emptied and left: the profile's address again, as its placeholder says.
            self._from_edited = False
            self._fill_from(profile_sender(self.profile))

    def _field_value(self, field: str) -> str:
        return self.query_one(f"#field-{field}", AddressField).value

    @on(TextArea.Changed, "#headers")
    def _revalidate_headers(self) -> None:
        if self.query_one("#headers-error", Label).has_class("-shown"):
            self.headers_valid()

    # -- From: the profile's until edited ------------------------------------

    def _fill_from(self, text: str) -> None:
        """Set From without counting it as the user's edit (see :meth:`_from_changed`)."""
        self._filled_from = text
        self.query_one("#field-from", AddressField).value = text

    def _from_changed(self, value: str) -> bool:
        """From changed: True when the user typed it (not the profile's fill-in).

        An event whose value is no longer the field's is an earlier fill-in's,
        arriving late (the profile changed again meanwhile): not an edit.
        """
        if value != self.query_one("#field-from", AddressField).value:
            return False
        if value == self._filled_from:
            return False
        if not self._loading:
            typed = value.strip()
            self._from_edited = bool(typed) and typed != profile_sender(self.profile)
        return True

    # -- profiles -----------------------------------------------------------

    def _profiles_changed(self, change: ProfilesChanged) -> None:
        self.reload_profiles(change.select)

    def reload_profiles(self, select_name: str | None = None) -> None:
        profiles = self.model.all_profiles()
        select = self.query_one("#profile", Select)
        current = select_name or (select.value if isinstance(select.value, str) else None)
        select.set_options(self._profile_options())
        if current in profiles or (current is not None and self._is_direct_choice(current)):
            select.value = current
        elif profiles:
            select.value = next(iter(profiles))
        # Same value, new label (the sandbox's port is known now): redraw it.
        select.mutate_reactive(Select.value)  # type: ignore[misc]  # the generic descriptor
        self._own_addresses = tuple(profile_sender(p) for p in profiles.values())
        self._show_profile()

    def _profile_options(self) -> list[tuple[Text, str]]:
        model = self.model
        options = []
        for profile in model.all_profiles().values():
            builtin = model.is_builtin_sandbox(profile)
            running = not model.sandbox_unavailable(profile)
            # Text, not str: Select parses str prompts as markup.
            label = Text(shown(profile_label(profile, builtin=builtin, running=running)))
            options.append((label, profile.name))
        if self._is_direct_choice(direct_choice().name):
            options.append((Text(DIRECT_LABEL), direct_choice().name))
        return options

    def _is_direct_choice(self, name: str) -> bool:
        """``name`` is the built-in direct entry (no saved profile took its name)."""
        return name == DIRECT and DIRECT not in self.model.all_profiles()

    @property
    def profile(self) -> Profile | None:
        value = self.query_one("#profile", Select).value
        if not isinstance(value, str):
            return None
        if self._is_direct_choice(value):
            return direct_choice()
        return self.model.all_profiles().get(value)

    @on(Select.Changed, "#profile")
    def _profile_changed(self) -> None:
        self._show_profile()

    def _show_profile(self) -> None:
        profile = self.profile
        badge = self.query_one("#security-badge", Static)
        warning = self.query_one("#profile-warning", Static)
        if profile is None:
            badge.update("")
            warning.update("")
            return
        direct = self._is_direct_choice(profile.name)
        badge.update(" per domain " if direct else f" {profile.security.label} ")
        for security in Security:
            badge.set_class(profile.security is security and not direct, f"-{security.value}")
        warnings = [DIRECT_NOTE] if direct else profile_warnings(profile)
        warning.update(shown("⚠ " + "; ".join(warnings)) if warnings else "")
        warning.set_class(bool(warnings), "-shown")
        if not self._from_edited:
            self._fill_from(profile_sender(profile))
        if not self._markdown_chosen:
            self._set_markdown(profile.markdown)
        self.query_one(PgpControls).follow_profile(profile)
        self._identities = profile_identities(profile)
        self.query_one(SmimeToggle).show_for(None if direct else profile)
        self._sign()
        self._read_limit(profile)

    # -- signature ------------------------------------------------------------

    def _sign(self) -> None:
        """A new message, nothing typed in its body: the profile's signature below ``-- ``
        (read in a thread: it may be a file). A reopened draft keeps its body as it is."""
        profile = self.profile
        body = self.query_one("#body", TextArea).text
        if profile is None or not self._fresh or body not in ("", self._signature_body):
            return
        self._signing += 1
        self._read_signature(profile, self._signing)

    @work(thread=True, group="signature", exit_on_error=False)
    def _read_signature(self, profile: Profile, signing: int) -> None:
        problem = ""
        try:
            # A file's text, shown in the body: what a terminal obeys is escaped,
            # as in a reopened draft or a template.
            body = escape_terminal_controls(body_with_signature("", profile))
        except SignatureUnreadable as exc:
            body, problem = "", str(exc)
        with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
            self.app.call_from_thread(self._signed, signing, body, problem)

    def _signed(self, signing: int, body: str, problem: str) -> None:
        area = self.query_one("#body", TextArea)
        if signing != self._signing or not self._fresh:
            return  # another profile or message since, or a draft was opened
        if area.text not in ("", self._signature_body):
            return  # the user has begun writing: the body is theirs
        if problem:
            self.set_status(problem, "warning")
        with area.prevent(TextArea.Changed):  # not typed: no draft for it alone
            area.text = body
        self._signature_body = body
        area.move_cursor((0, 0))  # writing goes above the signature

    # -- draft --------------------------------------------------------------

    def draft(self) -> Draft:
        """The form as a draft: what is sent, and what a saved draft holds."""
        headers, _problems = header_lines(self.query_one("#headers", TextArea).text)
        return Draft(
            from_address=self.query_one("#field-from", AddressField).value,
            to=self._addresses("to"),
            cc=self._addresses("cc"),
            bcc=self._addresses("bcc"),
            reply_to=self._addresses("reply-to"),
            subject=self.query_one("#subject", Input).value,
            body=self.query_one("#body", TextArea).text,
            attachments=list(self.attachments),
            headers=headers,
            markdown=self.query_one("#markdown", Checkbox).value,
        )

    def _addresses(self, field: str) -> list[str]:
        value = self.query_one(f"#field-{field}", AddressField).value
        return [value] if value.strip() else []

    def fields_valid(self) -> bool:
        results = [field.validate(sending=True) for field in self.query(AddressField)]
        results.append(self.headers_valid())
        if self.query_one("#field-reply-to", AddressField).has_class("-invalid"):
            self.show_more()  # its error must be seen
        return all(results)

    def show_field_errors(self, errors: list[tuple[str, str]]) -> None:
        """Errors from the core's full validation, shown beside their fields.

        Only the address fields have a place of their own; the rest (an
        attachment's error names its file, which is no widget id) go to the
        status line.
        """
        other = []
        header_problem = ""
        for field, message in errors:
            if field in ADDRESS_FIELDS:
                self.query_one(f"#field-{field}", AddressField).show_error(message)
                if field in MORE_FIELDS:
                    self.show_more()
            elif field.startswith("header "):
                header_problem = header_problem or f"{field}: {message}"
            else:
                other.append(f"{field}: {message}")
        if header_problem:
            self.show_headers_error(header_problem)
        if other:
            self.set_status("; ".join(other) + ". Your draft is kept.", "error")
        else:
            self.set_status("fix the fields marked in red", "error")

    def set_status(self, text: str, kind: str = "") -> None:
        status = self.query_one("#send-status", Static)
        # Server replies and file names end up here; a multi-line reply keeps its lines.
        status.update(shown(text, keep_newlines=True))
        for name in ("error", "ok", "busy", "warning"):
            status.set_class(kind == name, f"-{name}")

    # -- drafts: saved as you type -----------------------------------------

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Select.Changed, "#profile")
    def _changed(self, event: Message | None = None) -> None:
        if (
            isinstance(event, Input.Changed)
            and event.input.id == "input-from"
            and not self._from_changed(event.value)
        ):
            return  # the profile's address filled in: nothing typed
        if isinstance(event, Input.Changed) and event.input.id in RECIPIENT_INPUTS:
            self._pgp_recipients()
        if self._loading:
            return
        if (
            isinstance(event, TextArea.Changed)
            and event.text_area.id == "body"
            and self.attachments
        ):
            # The size as sent follows the body, once typing pauses.
            if self._total_timer is not None:
                self._total_timer.stop()
            self._total_timer = self.set_timer(TOTAL_DELAY, self.show_total)
        self._draft_dirty = True
        if self._draft_timer is not None:
            self._draft_timer.stop()
        self._draft_timer = self.set_timer(DRAFT_SAVE_DELAY, self.save_draft_now)

    def _pgp_recipients(self) -> None:
        """The OpenPGP key line follows To, Cc and Bcc (tuimail/ui/widgets/pgp_controls.py)."""
        value = {n: self.query_one(f"#{n}", Input).value for n in RECIPIENT_INPUTS}
        shown_fields = [value["input-to"], value["input-cc"]]
        self.query_one(PgpControls).recipients_changed(shown_fields, [value["input-bcc"]])

    def _is_empty(self, draft: Draft) -> bool:
        """Nothing typed but what the form starts with (From is the profile's until edited)."""
        typed = draft.to or draft.cc or draft.bcc or draft.reply_to or draft.headers
        body = draft.body.strip() and draft.body != self._signature_body
        return not (typed or self._from_edited or draft.subject or body)

    def save_draft_now(self, *, set_aside: bool = False) -> None:
        """Write the draft (a small file, atomically, in a thread): a crash loses seconds."""
        if not self._draft_dirty:
            return
        draft = self.draft()
        self._draft_dirty = False
        profile = self.profile
        saved = None  # an empty form leaves no draft behind
        if not self._is_empty(draft):
            saved = SavedDraft(self.draft_id, profile.name if profile else "", draft)
        self._write_draft(self.draft_id, saved, set_aside=set_aside)

    def forget_draft(self) -> None:
        """The message went out (or into the outbox): its draft is done."""
        self._write_draft(self.draft_id, None, set_aside=True)
        self.draft_id = DraftStore.new_id()
        self._draft_dirty = False

    def _write_draft(
        self, draft_id: str, saved: SavedDraft | None, *, set_aside: bool = False
    ) -> None:
        """Queue the write on the app's writing thread (in order: the later content wins)."""
        request = DraftWrite(draft_id, saved, set_aside or saved is None)
        self._last_draft_write = request
        self.model.saves.submit(request.run).add_done_callback(
            lambda done: self._draft_write_ended(request, done)
        )

    def _draft_write_ended(self, request: DraftWrite, done: Future[None]) -> None:
        """In the writing thread: the outcome goes back to the screen as a message."""
        exc = done.exception()
        problem = ""
        if isinstance(exc, OSError):
            problem = str(exc.strerror or exc)
        elif exc is not None:
            problem = str(exc)
        with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
            self.post_message(DraftWritten(request, problem))

    @on(DraftWritten)
    def _draft_written(self, written: DraftWritten) -> None:
        if not written.problem:
            self._draft_save_failing = False
            return
        if written.request is self._last_draft_write and written.request.draft_id == self.draft_id:
            self._draft_dirty = True  # the form is not on disk: the next pause tries again
        if not self._draft_save_failing:  # say it once, not at every key
            self.notify(
                shown(f"The draft could not be saved ({written.problem}); it is still here."),
                title="Drafts",
                severity="warning",
                markup=False,
            )
        self._draft_save_failing = True

    def load_draft(self, opened: OpenedDraft) -> None:
        """Fill the form from a draft, the cursor at the end of its body (where writing goes on)."""
        saved = opened.saved
        if opened.unasked and (self.attachments or not self._is_empty(self.draft())):
            return  # typing began before the draft was read: it stays in F7's list
        self._loading = True
        try:
            self.clear_draft()
            self._fresh = False
            self._signature_body = ""
            draft = saved.draft
            # A draft file (or a queued message made a draft again) is text from
            # outside the form: Input and TextArea draw an ESC in it as is, and the
            # terminal obeys it. Control characters are shown escaped instead.
            fields = {
                "#field-to": ", ".join(draft.to),
                "#field-cc": ", ".join(draft.cc),
                "#field-bcc": ", ".join(draft.bcc),
                "#field-reply-to": ", ".join(draft.reply_to),
            }
            for selector, text in fields.items():
                self.query_one(selector, AddressField).value = escape_terminal_controls(text)
            fields["#subject"] = draft.subject
            fields["#headers"] = headers_text(draft.headers)
            self.query_one("#headers", TextArea).text = escape_terminal_controls(fields["#headers"])
            self.query_one("#subject", Input).value = escape_terminal_controls(draft.subject)
            body = draft.body.replace("\r\n", "\n").replace("\r", "\n")
            body_area = self.query_one("#body", TextArea)
            body_area.text = escape_terminal_controls(body)
            body_area.move_cursor(body_area.document.end)
            self.app.set_focus(body_area)
            escaped = any(escape_terminal_controls(t) != t for t in (*fields.values(), body))
            for path in draft.attachments:
                self._attached(path)
            self._set_markdown(draft.markdown, chosen=True)  # the draft's, whatever the profile's
            if saved.profile in self.model.all_profiles() or self._is_direct_choice(saved.profile):
                self.reload_profiles(saved.profile)
            # After the profile: From is the draft's, edited or not.
            sender = escape_terminal_controls(draft.from_address)
            self.query_one("#field-from", AddressField).value = sender
            self._from_edited = bool(sender.strip()) and sender != profile_sender(self.profile)
            escaped = escaped or sender != draft.from_address
            if draft.reply_to or draft.headers:
                self.show_more()  # nothing the message will carry is out of sight
        finally:
            self.call_after_refresh(self._loaded)
        self.draft_id = saved.id
        self.set_status(opened.note or f"draft {saved.title}", "")
        if escaped:
            self.set_status(
                "this draft held control characters; they are shown (and would be sent) "
                "as \\xNN text",
                "error",
            )

    def _loaded(self) -> None:
        self._loading = False
        self._label_more()

    def clear_for_next(self) -> None:
        """The message has left this form (sent, or its home is the outbox): an empty
        form, the cursor in To for the next message."""
        self.forget_draft()
        self.clear_draft()
        self._start_fresh()
        self.app.set_focus(self.query_one("#input-to", Input))

    def _start_fresh(self) -> None:
        """The form is a new message: its signature comes (again)."""
        self._fresh = True
        self._signature_body = ""
        self._sign()

    def clear_draft(self) -> None:
        """Empty the form for a new message; From goes back to the profile's."""
        for field in self.query(AddressField):
            field.value = ""
            field.show_error("")
        self._from_edited = False
        self._fill_from(profile_sender(self.profile))
        self.query_one("#headers", TextArea).text = ""
        self.show_headers_error("")
        self._label_more()
        self.query_one("#subject", Input).value = ""
        self.query_one("#body", TextArea).text = ""
        self._set_markdown(self.profile is not None and self.profile.markdown)
        self.attachments.clear()
        self.attachment_sizes.clear()
        self.attachment_wire.clear()
        self._body_wire = None
        self.query_one("#attachments", ListView).clear()
        self.show_total()

    # -- actions ------------------------------------------------------------

    async def action_send(self) -> None:
        if self.model.busy:
            self.set_status("a send is already running", "error")
            return
        profile = self.profile
        if profile is None:
            self.set_status("choose a profile first", "error")
            return
        if self.model.sandbox_unavailable(profile):
            note = self.model.sandbox_note or "the sandbox is not running"
            self.set_status(note, "error")
            return
        if not self.fields_valid():
            self.set_status("fix the fields marked in red", "error")
            return
        if refused := self.query_one(PgpControls).refusal():
            self.set_status(refused, "error")  # never downgraded to plaintext
            return
        draft = self.draft()
        question = self._needs_confirmation(draft)
        if question:
            from tuimail.ui.screens.dialogs import ConfirmDialog  # dialogs: when first opened

            # An empty subject is usually meant: Enter sends. A forgotten
            # attachment is usually not: Enter cancels.
            dialog = ConfirmDialog(question, enter_confirms=not draft.subject.strip())
            self.app.push_screen(dialog, self._confirmed)
            return
        self._start_unless_too_large(profile, draft)

    def _confirmed(self, confirmed: bool | None) -> None:
        profile = self.profile
        if not confirmed:
            self.set_status("Not sent: you cancelled. The draft is kept.", "warning")
        elif profile is not None:
            self._start_unless_too_large(profile, self.draft())

    def _start_unless_too_large(
        self, profile: Profile, draft: Draft, *, measured: bool = False
    ) -> None:
        """Send, after asking when the message looks larger than the server's limit as
        last seen. Enter cancels: the server would most likely refuse it (the session
        itself refuses before MAIL when the limit it reads now is smaller). When a limit
        applies, the body's parts are measured first (in a thread: a Markdown body's
        HTML is rendered for it), unless ``measured`` says that was tried."""
        if (
            not measured
            and self._limit_applies()
            and not self._body_known(draft.body, draft.markdown)
        ):
            if not self._send_measuring:
                self._send_measuring = True
                self.set_status("Measuring the message before sending…", "")
                self._measure_body(then_send=True)
            return
        over = self.over_limit()
        if over is None:
            self._start(profile, draft)
            return
        from tuimail.ui.screens.dialogs import ConfirmDialog  # dialogs: when first opened

        estimate, seen = over
        assert seen.limit is not None
        ago = age_words(max(0.0, time.time() - seen.seen_at))
        question = (
            f"The message is about {size_words(estimate)} as sent{self._encoding_words()}, and "
            f"{profile.name}'s server accepted at most {size_words(seen.limit)} "
            f"({seen.limit:,} bytes) when last seen, {ago}. It will probably refuse it. "
            "Send anyway?"
        )
        self.app.push_screen(ConfirmDialog(question), self._size_confirmed)

    def _size_confirmed(self, confirmed: bool | None) -> None:
        profile = self.profile
        if not confirmed:
            self.set_status("Not sent: you cancelled. The draft is kept.", "warning")
        elif profile is not None:
            self._start(profile, self.draft())

    def _start(self, profile: Profile, draft: Draft) -> None:
        # Checked again here: while the question was open, a connection test
        # may have started, and a new session would cancel it (exclusive worker).
        if self.model.busy:
            self.set_status("a send is already running", "error")
            return
        self.lock_form(True)
        if self._is_direct_choice(profile.name):
            self.set_status("sending direct: reading the settings…", "busy")
            self._start_direct(draft)
            return
        self.set_status(f"sending via {profile.name}…", "busy")
        profile = self.query_one(PgpControls).applied(profile)  # the OpenPGP toggles
        profile = self.query_one(SmimeToggle).applied(profile)  # this message's S/MIME choice
        self.model.start(SendRequest(profile, draft))

    @work(exclusive=True, group="compose-direct", exit_on_error=False)
    async def _start_direct(self, draft: Draft) -> None:
        """The direct profile from config.toml (in a thread), then the send as any other's.

        The outbox stores it and tuimail/routing.py delivers it, each
        decision (MX order, DANE, MTA-STS) a line of the live transcript.
        """
        from tuimail.routing import EHLO_CONFIG, EhloNameRefused

        try:
            profile = await asyncio.to_thread(direct_send_profile, draft)
        except EhloNameRefused as exc:
            where = (
                "config.toml [direct] ehlo_name"
                if exc.source == EHLO_CONFIG
                else "this machine's name"
            )
            self._direct_refused(
                f"{where}: {exc}; set [direct] ehlo_name in config.toml to this machine's "
                "name in DNS (like mail.example.org)"
            )
            return
        except (ConfigError, ValueError) as exc:
            self._direct_refused(str(exc))
            return
        if self.model.busy:
            self._direct_refused("a send is already running")
            return
        self.set_status(f"sending direct to {profile.host}…", "busy")
        self.model.start(SendRequest(profile, draft))

    def _direct_refused(self, words: str) -> None:
        self.lock_form(False)
        self.set_status(f"Not sent: {words}. The draft is kept.", "error")

    @property
    def form_locked(self) -> bool:
        return self.query_one("#compose-form").disabled

    def lock_form(self, locked: bool) -> None:
        """Lock the form while its message is being sent; unlock when that ends.

        What is sent is what the form held when Send was pressed; an edit typed
        meanwhile would be cleared with the form after a successful send, or,
        after a failure, sit beside an outbox copy that no longer matches it.
        """
        self.query_one("#compose-form").disabled = locked
        self.model.compose_locked = locked
        if not locked:
            self.query_one("#send", Button).disabled = False

    def _refuse_while_locked(self) -> bool:
        if self.form_locked:
            self.notify("The message is being sent; the form is locked until that ends.")
        return self.form_locked

    def _needs_confirmation(self, draft: Draft) -> str:
        if not draft.subject.strip():
            return "The subject is empty. Send anyway?"
        if not draft.attachments and _MENTIONS_ATTACHMENT.search(draft.body):
            return "The message mentions an attachment, but nothing is attached. Send anyway?"
        return ""

    def action_new_message(self) -> None:
        if self._refuse_while_locked():
            return
        # Written now, then set aside: the next start does not bring it back unasked.
        self._draft_dirty = True
        self.save_draft_now(set_aside=True)
        self.draft_id = DraftStore.new_id()
        self.clear_draft()
        self._start_fresh()
        self.set_status("")
        self.app.set_focus(self.query_one("#input-to", Input))

    async def action_edit_body(self) -> None:
        """The body in ``$VISUAL``/``$EDITOR`` (``vi``), the app suspended meanwhile.

        The editor works on a 0600 file in the runtime (or data) dir, removed
        afterwards; a failed editor or an unchanged file keeps the body. The
        editor runs in a thread so the app's loop (the embedded sandbox, the
        outbox) goes on; what the app draws meanwhile is dropped, and the
        screen is drawn whole on resume.
        """
        if self._refuse_while_locked():
            return
        try:
            argv = external_editor.editor_argv(os.environ)
        except ValueError as exc:
            self.set_status(f"$VISUAL/$EDITOR cannot be run: {exc}", "error")
            return
        area = self.query_one("#body", TextArea)
        before = area.text
        try:
            path = await asyncio.to_thread(external_editor.write_body, before)
        except OSError as exc:
            self.set_status(f"the body could not be written for the editor: {exc}", "error")
            return
        status: int | None = None
        after: str | None = None
        unusable = ""
        try:
            with self.app.suspend():
                status = await asyncio.to_thread(external_editor.run_editor, argv, path)
        except SuspendNotSupported:
            pass
        finally:
            try:
                after = await asyncio.to_thread(external_editor.read_edited, path)
            except external_editor.Unusable as exc:
                after, unusable = None, f"the edited file {exc}"
            finally:
                await asyncio.to_thread(external_editor.remove, path)
        if status is None:
            why = "the editor needs a terminal, and this one cannot be suspended"
        else:
            edited = external_editor.edited_body(before, after, status)
            if status:
                why = f"{argv[0]} exited with status {status}"
            else:  # a file that cannot be taken back is not "nothing changed"
                why = unusable or "nothing changed"
        if status is None or edited is None:
            self.set_status(f"The body is as it was: {why}.", "warning")
            return
        area.text = escape_terminal_controls(edited)
        area.move_cursor(area.document.end)
        self.app.set_focus(area)
        self.set_status(f"the body is back from {argv[0]}", "ok")

    # -- templates --------------------------------------------------------------

    def use_template(self, name: str) -> None:
        """Fill the form from the template ``name`` (read in a thread); what is typed stays."""
        if self._refuse_while_locked():
            return
        self._read_template(name)

    @work(thread=True, group="template", exit_on_error=False)
    def _read_template(self, name: str) -> None:
        from tuimail.templates import load_template

        try:
            template = load_template(name)
        except (OSError, TuimailError) as exc:
            with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
                self.app.call_from_thread(self.set_status, f"template {name}: {exc}", "error")
            return
        with contextlib.suppress(RuntimeError):
            self.app.call_from_thread(self._apply_template, template)

    def _apply_template(self, template: Template) -> None:
        from tuimail.templates import apply_template, fields_for

        profile = self.profile
        draft = self.draft()
        if draft.body == self._signature_body:
            draft = replace(draft, body=draft.body.lstrip("\n"))  # the signature below it
        name = profile.name if profile else ""
        filled = apply_template(draft, template, fields_for(draft, name, date.today().isoformat()))
        saved = SavedDraft(self.draft_id, name, filled)
        self.load_draft(OpenedDraft(saved, note=f"started from template {template.name}"))
        self._draft_dirty = True
        self._changed()

    # -- .eml files --------------------------------------------------------------

    def action_open_eml(self) -> None:
        """An .eml file into the form: its headers in the fields, its text as the body,
        its other parts as attachments (tuimail/eml.py)."""
        from tuimail.ui.screens.dialogs import FilePickerDialog  # dialogs: when first opened

        if self._refuse_while_locked():
            return
        self.app.push_screen(FilePickerDialog(Path.cwd()), self._eml_chosen)

    def _eml_chosen(self, path: Path | None) -> None:
        if path is not None:
            self._read_eml(path, DraftStore.new_id(), list(self.attachments))

    @work(thread=True, group="eml", exit_on_error=False)
    def _read_eml(self, path: Path, draft_id: str, held: list[Path]) -> None:
        """``held``: the form's attachments, kept by the pruning of ``opened/`` (not saved yet)."""
        from tuimail.eml import draft_from_eml, opened_parts_dir, prune_opened
        from tuimail.message import MAX_MESSAGE_BYTES
        from tuimail.small_files import NotReadable, read_small_file

        prune_opened(held)
        try:
            raw = read_small_file(path, MAX_MESSAGE_BYTES)
            draft = draft_from_eml(raw, opened_parts_dir(draft_id))
        except NotReadable as exc:
            problem = f"{path.name} {exc.words}"
        except OSError as exc:
            problem = f"{path.name} cannot be read ({exc.strerror or exc})"
        except (TuimailError, ValueError) as exc:
            problem = f"{path.name} is not a message tuimail can open: {exc}"
        else:
            saved = SavedDraft(draft_id, "", draft)
            opened = OpenedDraft(saved, note=f"opened {path.name}")
            with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
                self.app.call_from_thread(self._eml_read, opened)
            return
        with contextlib.suppress(RuntimeError):
            self.app.call_from_thread(self.set_status, problem, "error")

    def _eml_read(self, opened: OpenedDraft) -> None:
        self.save_draft_now()  # what the form held stays a draft (F7)
        self.load_draft(opened)
        self._draft_dirty = True

    def action_save_eml(self) -> None:
        """The form as an .eml file in the exports folder (nothing there is replaced)."""
        self._write_eml(self.draft(), self.draft_id)

    @work(thread=True, group="eml", exit_on_error=False)
    def _write_eml(self, draft: Draft, draft_id: str) -> None:
        from tuimail.eml import draft_as_eml
        from tuimail.ui.screens.dialogs import write_export

        try:
            data = draft_as_eml(draft)  # built as a send would (attachments read here)
            [written] = write_export(paths.exports_dir() / f"draft-{draft_id}", [(".eml", data)])
        except DraftInvalid as exc:
            first = exc.errors[0]
            words, kind = f"Not saved as .eml: {first.field}: {first.message}", "error"
        except OSError as exc:
            words, kind = f"Not saved as .eml: {exc.strerror or exc}", "error"
        else:
            words, kind = f"draft saved as {written}", "ok"
        with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
            self.app.call_from_thread(self.set_status, words, kind)

    # -- Markdown -------------------------------------------------------------

    def _set_markdown(self, on: bool, *, chosen: bool = False) -> None:
        """Set the toggle without counting it as the user's choice (unless ``chosen``)."""
        self._markdown_chosen = chosen
        box = self.query_one("#markdown", Checkbox)
        if box.value != on:
            with box.prevent(Checkbox.Changed):
                box.value = on

    @on(Checkbox.Changed, "#markdown")
    def _markdown_toggled(self, event: Checkbox.Changed) -> None:
        self._markdown_chosen = True
        self._changed()
        self.show_total()  # the HTML part counts in the size as sent

    def action_toggle_markdown(self) -> None:
        """Markdown on or off for this message (sent as text and HTML when on)."""
        if self._refuse_while_locked():
            return
        box = self.query_one("#markdown", Checkbox)
        box.value = not box.value
        self.set_status(
            "Markdown on: sent as your text and its HTML rendering"
            if box.value
            else "Markdown off: sent as plain text",
            "",
        )

    def action_preview(self) -> None:
        """The body as its Markdown renders (the form stays as typed)."""
        from tuimail.inbox.protection_view import planned
        from tuimail.ui.screens.markdown_preview import MarkdownPreview

        body = self.query_one("#body", TextArea).text
        markdown_on = self.query_one("#markdown", Checkbox).value
        profile, protection = self.profile, []
        if profile is not None and not self._is_direct_choice(profile.name):
            profile = self.query_one(PgpControls).applied(profile)
            profile = self.query_one(SmimeToggle).applied(profile)
            draft = self.draft()
            protection = planned(profile, [*draft.to, *draft.cc])
        self.app.push_screen(MarkdownPreview(body, markdown_on=markdown_on, protection=protection))

    def action_attach(self) -> None:
        from tuimail.ui.screens.dialogs import FilePickerDialog  # dialogs: when first opened

        if self._refuse_while_locked():
            return
        self.app.push_screen(FilePickerDialog(Path.cwd()), self._attached)

    def _attached(self, path: Path | None) -> None:
        if path is None or path in self.attachments:
            return
        problem = unusable_file_name(path)
        if problem:
            # Refused here: a draft naming it could not be saved, nor the message built.
            self.set_status(problem, "error")
            return
        self._changed()
        self.attachments.append(path)
        label = Label(shown(f"{path.name} (…)"), markup=False)
        self.query_one("#attachments", ListView).append(ListItem(label))
        self.show_total()
        self.show_size(path, label)

    @work(thread=True, group="attachment-size", exit_on_error=False)
    def show_size(self, path: Path, label: Label) -> None:
        """The attachment's size beside its name (a stat, and for a saved message a
        read, in a thread: never on the loop)."""
        measured: AttachmentSize | None
        try:
            measured = measure_attachment(path)
        except OSError:
            measured = None  # a draft's file may have gone; sending will say so
        with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
            self.app.call_from_thread(self._size_measured, path, label, measured)

    def _size_measured(self, path: Path, label: Label, measured: AttachmentSize | None) -> None:
        if path not in self.attachments:
            return  # removed (or the form cleared) meanwhile
        self.attachment_sizes[path] = None if measured is None else measured.size
        if measured is None:
            self.attachment_wire.pop(path, None)
            words = "missing"
        else:
            # As sent: base64, or a saved message as it is (tuimail/message.py).
            self.attachment_wire[path] = measured
            words = f"{size_words(measured.size)}, {size_words(measured.wire)} as sent"
        label.update(shown(f"{path.name} ({words})"))
        self.show_total()

    # -- the total and the server's limit ------------------------------------

    @work(thread=True, exclusive=True, group="size-limit", exit_on_error=False)
    def _read_limit(self, profile: Profile) -> None:
        """The profile's server's SIZE as last seen (a small file: in a thread)."""
        seen = last_seen(profile.name, server_key(profile.host, profile.effective_port))
        with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
            self.app.call_from_thread(self._limit_read, profile.name, seen)

    def _limit_read(self, name: str, seen: SeenLimit | None) -> None:
        profile = self.profile
        if profile is None or profile.name != name:
            return  # another profile was chosen meanwhile: its own reading follows
        self.seen_limit = seen
        self._limit_for = name
        self.show_total()

    def _known_limit(self) -> SeenLimit | None:
        profile = self.profile
        if profile is None or profile.name != self._limit_for:
            return None
        return self.seen_limit

    def _body_and_markdown(self) -> tuple[str, bool]:
        return self.query_one("#body", TextArea).text, self.query_one("#markdown", Checkbox).value

    def _body_known(self, body: str, markdown: bool) -> bool:
        """Whether this very body and setting were measured (or found unmeasurable)."""
        return self._body_wire is not None and self._body_wire[:2] == (body, markdown)

    def _measured_body(self, body: str, markdown: bool) -> int | None:
        """The body's parts as sent, when measured for this very body and setting."""
        known = self._body_wire
        return known[2] if known is not None and self._body_known(body, markdown) else None

    def _measure_body(self, *, then_send: bool = False) -> None:
        """Measure the form's body as sent, in a thread; ``then_send``: go on sending."""
        wanted = self._body_and_markdown()
        if not then_send and self._body_measuring == wanted:
            return  # already being measured
        self._body_measuring = wanted
        self.measure_body(*wanted, then_send)

    @work(thread=True, group="body-size", exit_on_error=False)
    def measure_body(self, body: str, markdown: bool, then_send: bool) -> None:
        """:func:`~tuimail.size_limits.body_wire_size` off the loop (Markdown rendered)."""
        size: int | None
        try:
            size = body_wire_size(body, markdown=markdown)
        except Exception:  # building the message says what is wrong with it
            size = None
        with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
            self.app.call_from_thread(self._body_measured, body, markdown, size, then_send)

    def _body_measured(self, body: str, markdown: bool, size: int | None, send: bool) -> None:
        if self._body_measuring == (body, markdown):
            self._body_measuring = None
        self._body_wire = (body, markdown, size)  # None: a guess from the text stands
        self.show_total()
        if not send:
            return
        self._send_measuring = False
        if (body, markdown) != self._body_and_markdown():
            # The form changed meanwhile (a new message, a draft opened): send nothing unseen.
            self.set_status("Not sent: the message changed while it was measured.", "warning")
            return
        profile = self.profile
        if profile is not None:
            self._start_unless_too_large(profile, self.draft(), measured=True)

    def estimated_size(self) -> int:
        """About how large the message is on the wire, from the sizes measured so far
        (the body's parts once measured, with a Markdown message's HTML part)."""
        measured = [self.attachment_wire.get(path) for path in self.attachments]
        body, markdown = self._body_and_markdown()
        wires = [m.wire for m in measured if m is not None]
        return estimated_wire_size(body, wires, body_wire=self._measured_body(body, markdown))

    def _encoding_words(self) -> str:
        """How the attachments go, beside the size as sent."""
        measured = [self.attachment_wire.get(path) for path in self.attachments]
        if any(m is not None and m.as_message for m in measured):
            return " (files base64-encoded, attached messages as they are)"
        return " (base64-encoded)"

    def _limit_applies(self) -> bool:
        """Whether the size is compared with a limit: attachments, and a limit last seen."""
        seen = self._known_limit()
        return bool(self.attachments) and seen is not None and seen.limit is not None

    def over_limit(self) -> tuple[int, SeenLimit] | None:
        """The estimated size and the limit it is over, when it is over one last seen."""
        seen = self._known_limit()
        if not self._limit_applies() or seen is None or seen.limit is None:
            return None
        estimate = self.estimated_size()
        return (estimate, seen) if estimate > seen.limit else None

    def show_total(self) -> None:
        """The attachments' total and the message's size as sent beside the server's
        limit as last seen; hidden while nothing is attached."""
        line = self.query_one("#attachments-total", Static)
        line.set_class(bool(self.attachments), "-shown")
        if not self.attachments:
            line.set_class(False, "-over")
            return
        sizes = [self.attachment_sizes.get(path, -1) for path in self.attachments]
        known = [size for size in sizes if size is not None and size >= 0]
        total = f"Total {size_words(sum(known))}" + (" so far" if len(known) < len(sizes) else "")
        wire = f"about {size_words(self.estimated_size())} as sent{self._encoding_words()}"
        body, markdown = self._body_and_markdown()
        if not self._body_known(body, markdown):
            self._measure_body()  # in a thread; this line is shown again when it is done
            wire += " (the HTML part not counted yet)" if markdown else ""
        seen = self._known_limit()
        profile = self.profile
        if profile is not None and self._is_direct_choice(profile.name):
            # Direct delivery (tuimail/routing.py): no one server, no one limit.
            limit = "each recipient's mail server has its own limit"
        elif seen is None:
            limit = "server limit not known yet (a send or a connection test reads it)"
        else:
            ago = age_words(max(0.0, time.time() - seen.seen_at))
            if seen.limit is None:
                limit = f"the server announced no limit (last seen {ago})"
            else:
                limit = f"server limit {size_words(seen.limit)} (last seen {ago})"
        over = self.over_limit() is not None
        line.update(shown(f"{'⚠ ' if over else ''}{total}; {wire}; {limit}"))
        line.set_class(over, "-over")

    @on(Button.Pressed, "#add-attachment")
    def _add_pressed(self) -> None:
        self.action_attach()

    @on(Button.Pressed, "#remove-attachment")
    def _remove_pressed(self) -> None:
        if self._refuse_while_locked():
            return
        view = self.query_one("#attachments", ListView)
        index = view.index
        if index is not None and 0 <= index < len(self.attachments):
            removed = self.attachments.pop(index)
            self.attachment_sizes.pop(removed, None)
            self.attachment_wire.pop(removed, None)
            view.remove_items([index])
            self.show_total()

    @on(Button.Pressed, "#send")
    async def _send_pressed(self) -> None:
        await self.action_send()

    # -- sessions (from the model's signals) ---------------------------------

    def _session_started(self, run: SessionRun) -> None:
        if run.kind is RunKind.SEND:
            self.query_one("#send", Button).disabled = True
            self.query_one("#live-view", TranscriptView).show(run.transcript)
            # Until now the body had the width (an empty pane says nothing);
            # from the first send on, its transcript is beside the form.
            self.add_class("-live")

    def _send_stopped(self, stopped: SendStopped) -> None:
        """The session stopped without an outcome: unlock, and say why."""
        self.lock_form(False)
        if stopped.kept_in_outbox:
            self.clear_for_next()
        if stopped.field_errors:
            self.show_field_errors(list(stopped.field_errors))
        if stopped.status:
            self.set_status(stopped.status, "error")

    def _session_finished(self, run: SessionRun) -> None:
        profile = self.profile
        if profile is not None and run.profile_name == profile.name:
            self._read_limit(profile)  # a send or a connection test has just read it
        if run.kind is not RunKind.SEND:
            return
        self.lock_form(False)
        report = run.report
        if report is None:
            return
        if run.outbox_state is SentState.NOT_STORED:
            return  # the app has said why; the draft stays
        if report.failure is not None:
            failure = report.failure
            kind = "temporary" if failure.temporary else "permanent"
            kept = {
                SentState.QUEUED: " Queued in the outbox: it will be retried (F7).",
                SentState.POSSIBLY_DELIVERED: " It may have arrived; kept in the outbox (F7).",
                SentState.RETURNED: " Not sent: the draft is here to fix and send again.",
                SentState.FAILED: " Kept in the outbox as failed (F7).",
            }.get(run.outbox_state, "")
            explanation = failure.explanation
            if failure.needs_sign_in:  # the app's key, not the command line's command
                explanation = sign_in_status(
                    explanation, sign_in_key(getattr(self.app, "keymap", {}))
                )
            self.set_status(
                f"✗ {failure.stage.value} failed ({kind}): {explanation}{kept}", "error"
            )
            if run.outbox_state in (
                SentState.QUEUED,
                SentState.POSSIBLY_DELIVERED,
                SentState.FAILED,
            ):
                # Its home is the outbox now: sending it from here too could deliver it twice.
                self.clear_for_next()
            elif run.outbox_state is SentState.RETURNED:
                self._draft_dirty = True  # kept as a saved draft, as typed
                self.save_draft_now()
        elif report.delivery is not None:
            self.set_status(
                f"✓ sent {report.delivery.message_id}{refusal_note(report.delivery.refused)}",
                "warning" if report.delivery.refused else "ok",
            )
            self.clear_for_next()
        elif run.outbox_state is SentState.QUEUED:
            # Stored, then taken by another sender (the flush timer) before this
            # attempt: the outbox has it, so Compose lets go of its copy.
            self.set_status("Queued in the outbox; it is being sent from there (F7).", "busy")
            self.clear_for_next()


def refusal_note(refused: list[RecipientRefusal]) -> str:
    """Which recipients were refused, told apart: retried later (4xx) or for good (5xx).

    A temporary refusal keeps the message queued for those recipients only; a
    permanent one is final. The user needs to know which is which.
    """
    later = [r for r in refused if r.temporary]
    never = [r for r in refused if not r.temporary]
    parts = []
    if later:
        parts.append(
            "refused for now, queued for them only (F7): "
            + ", ".join(f"{r.address} ({r.code})" for r in later)
        )
    if never:
        parts.append(
            "refused for good: " + ", ".join(f"{r.address} ({r.code} {r.reply})" for r in never)
        )
    return "".join(f"; {part}" for part in parts)
