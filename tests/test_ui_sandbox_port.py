"""The app says why its sandbox did not start in its own words: which port, why, what to do."""

from __future__ import annotations

import socket
from pathlib import Path

from textual.widgets import Static

from tests.ui_support import wait_for
from tuimail.sandbox import PortUnavailable, SandboxConfig
from tuimail.ui.app import TuimailApp, sandbox_start_problem


async def test_a_port_in_use_is_named_with_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = SandboxConfig(port=port, maildir=tmp_path / "maildir")
        app = TuimailApp(sandbox_config=config)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.model.sandbox_note, "the sandbox to give up")
            note = app.model.sandbox_note
            assert f"port {port} on 127.0.0.1 is already in use" in note
            assert "Stop that program" in note and "saved profile (F4)" in note
            assert "--port" not in note  # the command line's option is not the app's
            assert any(n.message == note for n in app._notifications)
            await pilot.press("f5")
            status = app.screen.query_one("#sandbox-status", Static)
            await wait_for(pilot, lambda: note in str(status.content), "the sandbox screen")


def test_a_privileged_port_says_privileges_are_needed() -> None:
    words = sandbox_start_problem(PortUnavailable("127.0.0.1", 25, in_use=False))
    assert "port 25 on 127.0.0.1" in words and "below 1024 need privileges" in words
