"""Forward inline or attached: the one question F5's and F7's forward key asks first."""

from __future__ import annotations

import enum

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ForwardHow(enum.Enum):
    """How a message is forwarded (tuimail/replies.py's :func:`~tuimail.replies.forward`)."""

    #: Its text below a block of its headers, in the body; its other parts named, not carried.
    INLINE = "inline"
    #: The whole message, byte for byte, as an attached message/rfc822 part.
    ATTACHED = "attached"


class ForwardDialog(ModalScreen[ForwardHow | None]):
    """Ask how to forward; Enter takes the focused button (Inline at first), Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(
                "Forward the message inline (its text in yours), or attached "
                "as it is (the whole message, its parts and headers)?",
                classes="question",
                markup=False,
            )
            with Horizontal(classes="buttons"):
                yield Button("Inline", variant="primary", id="forward-inline")
                yield Button("Attached", id="forward-attached")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#forward-inline", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        choice = {"forward-inline": ForwardHow.INLINE, "forward-attached": ForwardHow.ATTACHED}
        self.dismiss(choice.get(event.button.id or ""))

    def action_cancel(self) -> None:
        self.dismiss(None)
