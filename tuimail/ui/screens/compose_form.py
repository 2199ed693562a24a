"""The compose screen's layout: its widgets, their ids and nesting, and nothing it does.

Apart from :mod:`tuimail.ui.screens.compose` so that the benchmarks' widget
floor (benchmarks/apps/floor.py) builds the very same tree in a plain Textual
app, paying only for Textual and these widgets, not for the screen's module
(drafts, messages, the model).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Button,
    Footer,
    Input,
    Label,
    ListView,
    Select,
    Static,
    TextArea,
)

from tuimail.ui.widgets.address_field import AddressField
from tuimail.ui.widgets.form_checkbox import FormCheckbox
from tuimail.ui.widgets.mode_bar import ModeBar
from tuimail.ui.widgets.pgp_controls import PgpControls
from tuimail.ui.widgets.smime_toggle import SmimeToggle
from tuimail.ui.widgets.transcript_view import TranscriptView

#: The toggle's label while Reply-To and the extra headers are hidden, and while shown.
MORE_LABEL = "More ▾"
LESS_LABEL = "Less ▴"
#: What the extra headers box says while empty: the one form its lines take.
HEADERS_PLACEHOLDER = "Name: value, one a line (X-Ticket: 42)"


def compose_form(
    profile_options: list[tuple[Text, str]], *, badge: str = "", badge_class: str = ""
) -> ComposeResult:
    """The compose screen's widgets, in their layout, before the screen fills them.

    ``profile_options`` fill the profile selector; ``badge`` and ``badge_class``
    the security badge beside it (the screen sets both once it has a
    profile). Reply-To and the extra headers sit in ``#more-fields``, hidden
    until asked for, so the first screen stays small; the form scrolls when
    the terminal is too short for it (40x12), so Send is always reachable.
    """
    yield ModeBar("compose")
    with Horizontal(id="compose-main"):
        # Not focusable itself: Tab goes from field to field, never to the container.
        with VerticalScroll(id="compose-form", can_focus=False):
            with Horizontal(id="profile-row"):
                yield Label("Profile", classes="field-label")
                # Compact: one line, so the first screen keeps its rows for the message.
                yield Select[str](profile_options, allow_blank=False, id="profile", compact=True)
                yield Static(badge, id="security-badge", classes=badge_class, markup=False)
            yield Static("", id="profile-warning", markup=False)
            # Out of the Tab order (Tab walks the fields; its key is in the footer).
            more = Button(MORE_LABEL, id="more-toggle", compact=True)
            more.can_focus = False
            yield AddressField("From", "from", placeholder="the profile's address", after=more)
            yield AddressField("To", "to", placeholder="name@example.com, Name <x@y.org>")
            yield AddressField("Cc", "cc")
            yield AddressField("Bcc", "bcc", placeholder="envelope only, never shown")
            yield PgpControls(id="pgp")  # sign/encrypt toggles, recipients' keys
            with Vertical(id="more-fields"):
                yield AddressField("Reply-To", "reply-to", placeholder="where answers go")
                with Horizontal(id="headers-row"):
                    yield Label("Headers", classes="field-label")
                    yield TextArea(
                        id="headers",
                        soft_wrap=True,
                        show_line_numbers=False,
                        compact=True,
                        placeholder=HEADERS_PLACEHOLDER,
                    )
                # The error quotes what was typed: never parse it as markup.
                yield Label("", id="headers-error", classes="error", markup=False)
            with Horizontal(id="subject-row"):
                yield Label("Subject", classes="field-label")
                yield Input(id="subject")
            yield TextArea(id="body", soft_wrap=True, show_line_numbers=False)
            with Horizontal(id="attachments-row"):
                yield Label("Attach", classes="field-label")
                yield ListView(id="attachments")
                yield Button("Add…", id="add-attachment", compact=True)
                yield Button("Remove", id="remove-attachment", compact=True)
            # The attachments' total as sent, and the server's limit as last seen
            # (shown while something is attached); file names in it: never markup.
            yield Static("", id="attachments-total", markup=False)
            with Horizontal(id="actions"):
                yield Button("Send", variant="primary", id="send", compact=True)
                # Per message; a new one starts from the profile's ``markdown``.
                yield FormCheckbox("Markdown", id="markdown", compact=True)
                yield SmimeToggle(id="smime")  # only for a profile with S/MIME files
                # Server replies end up here: never parse them as markup.
                yield Static("", id="send-status", markup=False)
        with Vertical(id="live"):
            yield Label("Live transcript", classes="pane-title")
            yield TranscriptView(id="live-view")
    yield Footer()
