"""The line at the top of every screen: where you are, and the keys to go elsewhere.

It replaces a header that would only repeat the app's name, and it is clickable.
"""

from __future__ import annotations

from textual.widgets import Static

MODES = [
    ("compose", "F2", "Compose"),
    ("transcript", "F3", "Transcript"),
    ("accounts", "F4", "Accounts"),
    ("sandbox", "F5", "Sandbox"),
    ("monitor", "F6", "Monitor"),
    ("mailboxes", "F7", "Outbox"),
]


class ModeBar(Static):
    DEFAULT_CSS = """
    ModeBar { height: 1; background: $panel; color: $text-muted; }
    """

    def __init__(self, current: str) -> None:
        super().__init__(id="mode-bar")
        self.current = current

    def on_mount(self) -> None:
        self.update(self._render_modes())
        self.app.theme_changed_signal.subscribe(self, lambda _t: self.update(self._render_modes()))

    def _render_modes(self) -> str:
        # Every mode must fit in 80 columns; the app's name is in the terminal title.
        parts = []
        for mode, key, title in MODES:
            style = "reverse bold " if mode == self.current else ""
            parts.append(f"[{style}@click=app.switch_mode('{mode}')] {key} {title} [/]")
        return "".join(parts)
