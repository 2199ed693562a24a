"""The "widget floor": tuimail's first screen built from its widgets in a plain Textual app.

What it measures: what Textual charges for the widgets tuimail's compose
screen must show (the From selector, To/Cc/Bcc, Subject, the body, the
attachment list and its buttons, Send, the live transcript pane, the footer),
styled by tuimail's own stylesheet, without tuimail's start-up: no profiles,
sandbox, keyring, themes, keymap, drafts or event handlers. The tree is the
compose screen's own (:func:`tuimail.ui.screens.compose_form.compose_form`,
which imports only Textual and tuimail's widgets), so it cannot drift from
the product's; what the screen fills in once it has a profile (the From
entry, the security badge), the focus and the footer's keys are set here as
tuimail sets them. The launch benchmark's headless census checks that the two
first screens match, widget for widget.

So floor/minimal is Textual's cost of the required widgets (and the import
of their modules), and tuimail/floor what tuimail's own start-up adds.
Run as ``python benchmarks/apps/floor.py``.
"""

from __future__ import annotations

import gc
from pathlib import Path

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input

import tuimail.ui
from tuimail.ui.screens.compose_form import compose_form

#: The screen is complete with the footer's keys, the To label and the From entry.
MARKERS = (r"\^s Send", r"(?m)^\s*To\s", r"widget-floor · plain")
PROFILE = "widget-floor · plain · 127.0.0.1:2525 · built-in"


class FloorScreen(Screen[None]):
    """``ComposeScreen``'s widget tree, and nothing it does."""

    BINDINGS = [Binding("ctrl+s", "app.bell", "Send", id="compose.send", priority=True)]

    def compose(self) -> ComposeResult:
        self.set_class(self.app.size.width >= 120, "-wide")
        yield from compose_form([(Text(PROFILE), "f")], badge=" plain ", badge_class="-none")

    def on_mount(self) -> None:
        # Focus before the first frame, as tuimail sets it: the footer has its keys then.
        self.app.set_focus(self.query_one("#input-to", Input))


class Floor(App[None]):
    CSS_PATH = Path(tuimail.ui.__file__).with_name("app.tcss")
    TITLE = "widget-floor"
    BINDINGS = [
        Binding("f1", "bell", "Help", id="app.help", priority=True),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]
    # A mode, as tuimail installs its compose screen: Textual's default screen
    # path draws a first frame before the footer has its keys.
    MODES = {"compose": FloorScreen}
    DEFAULT_MODE = "compose"


def make_app() -> Floor:
    # As the tuimail command does after its imports (tuimail.cli.settle_imports).
    gc.freeze()
    return Floor()


if __name__ == "__main__":
    make_app().run()
