"""A checkbox whose state reads as text, for forms and Compose alike."""

from __future__ import annotations

from textual.binding import Binding
from textual.content import Content
from textual.widgets import Checkbox


class FormCheckbox(Checkbox):
    """A checkbox for a form: its state in text (``[x]``/``[ ]``), not in colour only,
    and toggled by space or a click; Enter moves on, as in the form's text fields.

    Enter toggling it is how a setting got switched on by a user who was only
    moving through the form.
    """

    BINDINGS = [
        Binding("space", "toggle_button", "Toggle", show=False),
        Binding("enter", "app.focus_next", "Next field", show=False),
    ]

    def render(self) -> Content:
        """``[x] label`` or ``[ ] label``, the mark in the text's own colour (Textual's
        button is a coloured block whose sides take the background's colour)."""
        mark = Content("[x]" if self.value else "[ ]")
        label = self.label.pad(1, 1).stylize_before(self.get_visual_style("toggle--label"))
        return Content.assemble(mark, label)
