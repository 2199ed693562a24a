"""The app's start: what it does before its first screen, and what it leaves for later.

The launch benchmark (benchmarks/app_launch.py) times it; these tests pin the
work that start-up avoids, so that it does not come back unnoticed: modules
only a send needs, the whole screen restyled again, widgets nobody sees yet.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.css import parse as css_parse
from textual.dom import DOMNode

import tuimail.ui
from tests.ui_support import wait_for
from tuimail import routing
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens import compose
from tuimail.ui.screens.compose import ComposeScreen

#: Modules a send brings (the SMTP client, the outbox, direct delivery): never the first screen's.
SEND_ONLY = ("aiosmtplib", "tuimail.session", "tuimail.routing", "tuimail.outbox")

FIRST_SCREEN = textwrap.dedent(
    """
    import asyncio, json, sys
    import tuimail.cli
    from tuimail.ui.app import TuimailApp

    async def main():
        app = TuimailApp(start_sandbox=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            print(json.dumps(sorted(sys.modules)))

    asyncio.run(main())
    """
)


def test_the_first_screen_imports_nothing_only_a_send_needs() -> None:
    # A fresh interpreter: this one has imported everything the other tests use.
    done = subprocess.run(
        [sys.executable, "-c", FIRST_SCREEN],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr
    imported = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "tuimail.ui.screens.compose" in imported
    assert sorted(imported.intersection(SEND_ONLY)) == []


def test_the_direct_entry_has_routing_s_name() -> None:
    # Compose spells it itself so as not to import tuimail/routing.py.
    assert compose.DIRECT == routing.DIRECT


async def test_the_first_screen_styles_its_widgets_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app_css = str(Path(tuimail.ui.__file__).with_name("app.tcss"))
    parsed: list[str] = []
    restyled: list[int] = []
    parse = css_parse.parse
    update_styles = App.update_styles

    def counting_parse(scope: str, css: str, read_from: tuple[str, str], **kwargs: Any) -> Any:
        parsed.append(read_from[0])
        return parse(scope, css, read_from, **kwargs)

    def counting_update(self: App[Any], node: DOMNode, animate: bool = True) -> None:
        if isinstance(node, ComposeScreen):
            restyled.append(sum(1 for _ in node.walk_children()))
        update_styles(self, node, animate=animate)

    # Where the stylesheet looks it up.
    monkeypatch.setattr("textual.css.stylesheet.parse", counting_parse)
    monkeypatch.setattr(App, "update_styles", counting_update)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        # Once mounted, the screen was restyled whole at its first Resize (the size
        # classes) and again as it was first shown: each widget is styled as it mounts.
        assert [count for count in restyled if count > 1] == []
        assert screen.has_class("-roomy", "-wide") and not screen.has_class("-short")
        assert not screen.has_class("-tall")
        # The address fields' lists of suggestions wait for their first suggestions.
        assert len(screen.query("AddressField OptionList")) == 0

        # Another theme still parses and restyles everything, in its own colours.
        body = screen.query_one("#body")
        dark = body.styles.background
        parsed_before = parsed.count(app_css)
        app.theme = "textual-light"
        await wait_for(pilot, lambda: body.styles.background != dark, "the light theme's body")
        assert parsed.count(app_css) > parsed_before
