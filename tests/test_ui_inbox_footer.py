"""F5's footer: the keys that matter in an inbox are drawn on screen, not cut off.

A footer wider than the terminal is clipped at its right end; F5 once listed
Delete all, Reply all and Forward before the authentication check (a) and
decrypt (x), which were never seen at 120 columns.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets._footer import FooterKey

from tests.ui_support import wait_for
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.sandbox import SandboxScreen

#: The keys F5's footer must show at each size: the views first, then the check
#: and decrypt; at 120 columns the common actions as well.
SHOWN = {
    (80, 24): ["t", "h", "u", "m", "a", "x"],
    (120, 40): ["t", "h", "u", "m", "a", "x", "s", "o", "l", "d", "r"],
}


def keys_on_screen(app: TuimailApp) -> list[str]:
    """The footer keys drawn wholly inside the terminal, left to right."""
    width = app.size.width
    keys = [
        key
        for key in app.screen.query(FooterKey)
        if key.display and key.region.width and key.region.right <= width
    ]
    return [key.key for key in sorted(keys, key=lambda key: key.region.x)]


@pytest.mark.parametrize("size", list(SHOWN), ids=["80x24", "120x40"])
async def test_f5s_footer_shows_the_check_and_decrypt(isolated_dirs: Any, size: Any) -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, SandboxScreen), "F5")
        await pilot.pause()
        drawn = keys_on_screen(app)
        for key in SHOWN[size]:
            assert key in drawn, (key, drawn)
        # Still bound, and in F1's help, though not in the footer.
        described = {key: words for key, words in app.key_table()}
        for key in ("D", "R", "f"):
            assert key in described, key
