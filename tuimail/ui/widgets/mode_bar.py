"""The line at the top of every screen: where you are, and the keys to go elsewhere.

It replaces a header that would only repeat the app's name, and it is clickable.
"""

from __future__ import annotations

from textual.events import Resize
from textual.widgets import Static

MODES = [
    ("compose", "F2", "Compose"),
    ("transcript", "F3", "Transcript"),
    ("accounts", "F4", "Accounts"),
    ("sandbox", "F5", "Sandbox"),
    ("monitor", "F6", "Monitor"),
    ("mailboxes", "F7", "Outbox"),
]


def mode_parts(current: str, width: int) -> list[tuple[str, str, bool]]:
    """Each mode's (mode, text, is current), in the widest form that fits ``width``.

    Every key with its title (80 columns); narrower, the keys alone but the
    current screen's title; narrower still, the keys alone, the current one
    marked. The current screen is always there, and every key.
    """
    forms = [
        [(mode, f" {key} {title} ", mode == current) for mode, key, title in MODES],
        [
            (mode, f" {key} {title} " if mode == current else f" {key} ", mode == current)
            for mode, key, title in MODES
        ],
        [
            (mode, f"{key}" if mode != current else f"[{key}]", mode == current)
            for mode, key, _t in MODES
        ],
    ]
    for form in forms:
        if sum(len(text) for _mode, text, _current in form) <= width:
            return form
    return forms[-1]


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

    def on_resize(self, event: Resize) -> None:
        self.update(self._render_modes(event.size.width))

    def _render_modes(self, width: int | None = None) -> str:
        # The app's name is in the terminal title; the keys take the line.
        width = width or self.size.width or self.app.size.width
        parts = []
        for mode, text, current in mode_parts(self.current, width):
            style = "reverse bold " if current else ""
            parts.append(f"[{style}@click=app.switch_mode('{mode}')]{text}[/]")
        return "".join(parts)
