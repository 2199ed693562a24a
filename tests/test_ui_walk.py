"""What a new user meets walking the whole app once: every key, word and row true.

Each test drives the app as a user would (keys, clicks, pastes) and reads
what is on screen, against real servers on 127.0.0.1 where mail is sent.
"""

from __future__ import annotations

import socket
from pathlib import Path

from rich.cells import cell_len
from textual.widgets import Button, Static

from tests.ui_support import paste, save_profile, screen_text, wait_for
from tuimail.sandbox import SandboxConfig
from tuimail.ui.app import TuimailApp

NARROW = (80, 24)
TINY = (40, 12)


# -- Compose -------------------------------------------------------------------------


async def test_the_more_toggle_is_wide_enough_to_say_hidden_fields_are_in_use() -> None:
    save_profile(name="local", host="127.0.0.1", port=2599, security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        toggle = app.screen.query_one("#more-toggle", Button)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.has_class("-more"), "the more fields")
        await paste(pilot, "Replies <replies@example.test>")
        # The footer names what the key does both ways, whichever way it goes next.
        assert "More/less" in screen_text(app)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app.screen.has_class("-more"), "the fields hidden")
        await pilot.pause()
        label = str(toggle.label)
        assert label.endswith("(in use)")
        assert toggle.size.width >= cell_len(label)
        assert "(in use)" in screen_text(app)


# -- F5 --------------------------------------------------------------------------------


async def test_the_sandbox_status_shows_its_lines_as_lines(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = SandboxConfig(port=taken.getsockname()[1], maildir=tmp_path / "maildir")
        app = TuimailApp(sandbox_config=config)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.model.sandbox_note, "the sandbox to give up")
            await pilot.press("f5")
            status = app.screen.query_one("#sandbox-status", Static)
            await wait_for(pilot, lambda: "Mail kept in" in str(status.content), "F5's status")
            text = str(status.content)
            assert "\\x0a" not in text
            assert "\nMail kept in" in text
