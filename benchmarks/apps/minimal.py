"""The launch benchmark's reference: a minimal Textual app (a Header, a Static, a Footer).

Run as ``python benchmarks/apps/minimal.py``; its screen is complete when the
text, the title and the footer's key are all shown.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Static

#: Every pattern must be on screen for the first screen to count as complete.
MARKERS = (r"minimal app ready", r"minimal-bench", r"\^s Save")


class Minimal(App[None]):
    TITLE = "minimal-bench"
    BINDINGS = [Binding("ctrl+s", "bell", "Save")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("minimal app ready")
        yield Footer()


def make_app() -> Minimal:
    return Minimal()


if __name__ == "__main__":
    make_app().run()
