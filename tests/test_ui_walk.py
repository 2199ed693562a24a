"""What a new user meets walking the whole app once: every key, word and row true.

Each test drives the app as a user would (keys, clicks, pastes) and reads
what is on screen, against real servers on 127.0.0.1 where mail is sent.
"""

from __future__ import annotations

import socket
from pathlib import Path

from rich.cells import cell_len
from textual.widgets import Button, DataTable, Static

from tests.smtpservers import ServerThread
from tests.ui_support import open_monitor, paste, save_profile, screen_text, wait_for
from tuimail.probe import ProbeTarget
from tuimail.sandbox import SandboxConfig
from tuimail.targets import TargetStore
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


# -- F6 --------------------------------------------------------------------------------


async def test_a_mail_domain_whose_lookup_fails_is_critical_in_its_row(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    dns_port = servers.dns({})  # every name: NXDOMAIN
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(
        f'[monitor]\ninterval = 0\ndns_server = "127.0.0.1:{dns_port}"\n'
    )
    TargetStore().save(ProbeTarget(host="nomx.invalid", port=25, mx=True, name="t1"))
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        table = screen.query_one("#targets", DataTable)
        row = next(i for i in range(table.row_count) if str(table.get_row_at(i)[1]) == "t1")
        await pilot.press("r")
        await wait_for(pilot, lambda: str(table.get_row_at(row)[0]) != "MX", "the lookup")
        cells = [str(value) for value in table.get_row_at(row)]
        assert cells[0] == "CRITICAL"
        assert "nomx.invalid does not exist (NXDOMAIN)" in cells[4]
        table.move_cursor(row=row)
        await pilot.pause()
        detail = str(screen.query_one("#monitor-detail", Static).content)
        assert "t1: CRITICAL" in detail and "NXDOMAIN" in detail
        # Told once, not again at every round.
        [(key, (_problem, first))] = screen.mx_problems.items()
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.mx_problems[key][1] != first, "the next round")
        told = [n for n in app._notifications if "NXDOMAIN" in n.message]
        assert len(told) == 1
