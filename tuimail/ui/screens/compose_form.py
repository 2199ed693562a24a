"""The compose screen's layout: its widgets, their ids and nesting, and nothing it does.

Apart from :mod:`tuimail.ui.screens.compose` so that the benchmarks' widget
floor (benchmarks/apps/floor.py) builds the very same tree in a plain Textual
app, paying only for Textual and these widgets, not for the screen's module
(drafts, messages, the model).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Input, Label, ListView, Select, Static, TextArea

from tuimail.ui.widgets.address_field import AddressField
from tuimail.ui.widgets.mode_bar import ModeBar
from tuimail.ui.widgets.transcript_view import TranscriptView


def compose_form(
    profile_options: list[tuple[Text, str]], *, badge: str = "", badge_class: str = ""
) -> ComposeResult:
    """The compose screen's widgets, in their layout, before the screen fills them.

    ``profile_options`` fill the From selector; ``badge`` and ``badge_class``
    the security badge beside it (the screen sets both once it has a
    profile).
    """
    yield ModeBar("compose")
    with Horizontal(id="compose-main"):
        with Vertical(id="compose-form"):
            with Horizontal(id="from-row"):
                yield Label("From", classes="field-label")
                yield Select[str](profile_options, allow_blank=False, id="profile")
                yield Static(badge, id="security-badge", classes=badge_class, markup=False)
            yield Static("", id="profile-warning", markup=False)
            yield AddressField("To", "to", placeholder="name@example.com, Name <x@y.org>")
            yield AddressField("Cc", "cc")
            yield AddressField("Bcc", "bcc", placeholder="envelope only, never shown")
            with Horizontal(id="subject-row"):
                yield Label("Subject", classes="field-label")
                yield Input(id="subject")
            yield TextArea(id="body", soft_wrap=True, show_line_numbers=False)
            with Horizontal(id="attachments-row"):
                yield Label("Attach", classes="field-label")
                yield ListView(id="attachments")
                yield Button("Add…", id="add-attachment", compact=True)
                yield Button("Remove", id="remove-attachment", compact=True)
            with Horizontal(id="actions"):
                yield Button("Send", variant="primary", id="send", compact=True)
                # Server replies end up here: never parse them as markup.
                yield Static("", id="send-status", markup=False)
        with Vertical(id="live"):
            yield Label("Live transcript", classes="pane-title")
            yield TranscriptView(id="live-view")
    yield Footer()
