"""F5's questions: where to save a message's attachments, and which of them.

A small dialog of its own (not :mod:`tuimail.ui.screens.dialogs`): it knows
the attachments of one captured message and answers with a :class:`SaveAsked`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from tuimail.inbox.mime import Part
from tuimail.ui.outside import shown
from tuimail.ui.screens.dialogs import typed_path

#: The select value meaning every attachment.
ALL_PARTS = -1


@dataclass(frozen=True)
class SaveAsked:
    """Save ``number`` (a MIME part's number, or :data:`ALL_PARTS`) into ``directory``."""

    directory: Path
    number: int


class SaveAttachmentsDialog(ModalScreen[SaveAsked | None]):
    """Ask for a directory and which attachment; Escape cancels.

    Names are made safe and nothing is replaced when the files are written
    (:func:`tuimail.inbox.mime.save_part`); the dialog only asks.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, parts: list[Part], start: Path) -> None:
        super().__init__()
        self.parts = parts
        self.start = start

    def compose(self) -> ComposeResult:
        options = [(f"All {len(self.parts)} attachments", ALL_PARTS)] if len(self.parts) > 1 else []
        options += [
            (shown(f"{p.filename or 'unnamed'} ({p.size:,} bytes)"), p.number) for p in self.parts
        ]
        with Vertical(classes="dialog wide"):
            yield Label("Save attachments", classes="title")
            yield Label("Into the directory")
            yield Input(str(self.start), id="save-directory")
            yield Label("Which")
            yield Select[int](options, id="save-which", allow_blank=False, value=options[0][1])
            yield Static("", id="save-problem", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#save-directory", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        directory, problem = typed_path(self.query_one("#save-directory", Input).value)
        if directory is None:
            self.query_one("#save-problem", Static).update(problem)
            return
        which = self.query_one("#save-which", Select).value
        self.dismiss(SaveAsked(directory, which if isinstance(which, int) else ALL_PARTS))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class ReleaseAsked:
    """Send the captured message on through ``profile`` to ``recipients``."""

    profile: str
    recipients: tuple[str, ...]


class ReleaseDialog(ModalScreen[ReleaseAsked | None]):
    """Ask which profile and which recipients a captured message is released to.

    The recipients start as the envelope's and may be changed freely: the
    outbox keeps a release as a message whose envelope was given apart from
    its headers (:func:`tuimail.outbox.release_outgoing`).
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, profiles: list[str], recipients: list[str]) -> None:
        super().__init__()
        self.profiles = profiles
        self.recipients = recipients

    def compose(self) -> ComposeResult:
        options = [(shown(name), name) for name in self.profiles]
        with Vertical(classes="dialog wide"):
            yield Label("Release the message to a real server", classes="title")
            yield Label("Through the profile")
            yield Select[str](options, id="release-profile", allow_blank=False)
            yield Label("To (comma-separated; sent to these alone, whoever its To and Cc name)")
            yield Input(", ".join(self.recipients), id="release-to")
            yield Static("", id="release-problem", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Release", variant="warning", id="release")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#release-to", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#release")
    def _release(self) -> None:
        typed = self.query_one("#release-to", Input).value
        recipients = tuple(r.strip() for r in typed.split(",") if r.strip())
        if not recipients:
            self.query_one("#release-problem", Static).update("Name at least one recipient.")
            return
        profile = self.query_one("#release-profile", Select).value
        if not isinstance(profile, str):
            return
        self.dismiss(ReleaseAsked(profile, recipients))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
