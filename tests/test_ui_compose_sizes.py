"""Compose shows each attachment's size, the total as sent, and the server's SIZE limit as
last seen; past it, Send asks first. Real sends to aiosmtpd on 127.0.0.1 that announce a
SIZE; the sizes and the limit are read off the UI loop."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Label, ListView, Select

from tests.smtpservers import ServerThread, Sink
from tests.test_ui_loop_io import file_calls_on_this_thread
from tests.ui_support import fill_draft, save_profile, static_text, wait_for, wait_for_run
from tuimail.size_limits import last_seen, remember, server_key
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.accounts import AccountsScreen
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.screens.dialogs import ConfirmDialog, FilePickerDialog

TWO_DAYS = 2 * 86400 + 600


def files(tmp_path: Path, **sizes: int) -> list[Path]:
    made = []
    for name, size in sizes.items():
        path = tmp_path / f"{name}.bin"
        path.write_bytes(os.urandom(size))
        made.append(path)
    return made


async def attach(pilot: Pilot[Any], path: Path) -> None:
    """Ctrl+O, the path typed, Attach: as a user adds a file."""
    app = pilot.app
    await pilot.press("ctrl+o")
    await wait_for(pilot, lambda: isinstance(app.screen, FilePickerDialog), "the picker")
    app.screen.query_one("#path", Input).value = str(path)
    await pilot.click("#attach")
    await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "compose")


def item_texts(app: TuimailApp) -> list[str]:
    view = app.screen.query_one("#attachments", ListView)
    return [str(label.content) for label in view.query(Label)]


async def test_sizes_the_total_and_the_limit_last_seen_then_a_warning_before_sending(
    servers: ServerThread, tmp_path: Path
) -> None:
    """The server took 20 kB when last seen (2 days ago) and still does: the total is
    over it, Send asks (Enter cancels), and sent anyway the session refuses before DATA."""
    sink = Sink()
    port = servers.smtp(sink, data_size_limit=20_000)
    save_profile(name="local", host="127.0.0.1", port=port, security="none")
    remember("local", server_key("127.0.0.1", port), {"size": "20000"}, now=time.time() - TWO_DAYS)
    report, notes = files(tmp_path, report=30_000, notes=1500)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Figures", body="Attached.")
        await attach(pilot, report)
        await attach(pilot, notes)
        await wait_for(pilot, lambda: "…" not in "".join(item_texts(app)), "the sizes")
        assert item_texts(app) == [
            "report.bin (30 kB, 41.1 kB as sent)",
            "notes.bin (1.5 kB, 2.1 kB as sent)",
        ]
        total = static_text(app, "#attachments-total")
        assert total.startswith("⚠ Total 31.5 kB; about 45.7 kB as sent (base64-encoded); ")
        assert total.endswith("server limit 20 kB (last seen 2 days ago)"), total

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the warning")
        question = app.screen.query_one(".question").render()
        assert "about 45.7 kB as sent" in str(question)
        assert "local's server accepted at most 20 kB (20,000 bytes)" in str(question)
        assert "2 days ago" in str(question)
        await pilot.press("enter")  # Cancel has the focus: Enter never sends it
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "compose")
        assert "you cancelled" in static_text(app, "#send-status")
        assert not app.model.busy and sink.messages == []

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the warning")
        await pilot.click("#confirm")
        run = await wait_for_run(pilot, 1)
        assert run.report is not None and run.report.failure is not None
        status = static_text(app, "#send-status")
        assert "the server accepts at most 20,000 bytes" in status, status
        assert sink.messages == []
        # The session read the limit again: it is the one shown now.
        await wait_for(
            pilot,
            lambda: static_text(app, "#attachments-total").endswith("(last seen just now)"),
            "the limit just seen",
        )


async def test_a_limit_seen_smaller_than_today_warns_and_sent_anyway_it_arrives(
    servers: ServerThread, tmp_path: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink, data_size_limit=1_000_000)
    save_profile(name="local", host="127.0.0.1", port=port, security="none")
    server = server_key("127.0.0.1", port)
    remember("local", server, {"size": "3000"}, now=time.time() - TWO_DAYS)
    [photo] = files(tmp_path, photo=5000)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Photo", body="Attached.")
        await attach(pilot, photo)
        await wait_for(pilot, lambda: "…" not in "".join(item_texts(app)), "the size")
        assert "server limit 3 kB (last seen 2 days ago)" in static_text(app, "#attachments-total")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the warning")
        assert str(app.screen.query_one("#confirm", Button).label) == "Send anyway"
        await pilot.click("#confirm")
        await wait_for_run(pilot, 1)
        assert len(sink.messages) == 1
        assert "SIZE=" in " ".join(sink.messages[0].mail_options)
    seen = last_seen("local", server)
    assert seen is not None and seen.limit == 1_000_000


async def test_a_connection_test_tells_compose_the_limit_and_nothing_is_read_on_the_loop(
    servers: ServerThread, tmp_path: Path, isolated_dirs: Path
) -> None:
    port = servers.smtp(Sink(), data_size_limit=52_428_800)
    save_profile(name="local", host="127.0.0.1", port=port, security="none")
    [small] = files(tmp_path, small=10)
    app = TuimailApp(start_sandbox=False)
    with file_calls_on_this_thread(isolated_dirs) as log:
        async with app.run_test(size=(120, 40)) as pilot:
            await attach(pilot, small)
            await wait_for(pilot, lambda: "…" not in "".join(item_texts(app)), "the size")
            assert item_texts(app) == ["small.bin (10 bytes, 18 bytes as sent)"]
            total = static_text(app, "#attachments-total")
            assert total.endswith(
                "server limit not known yet (a send or a connection test reads it)"
            )
            assert not total.startswith("⚠")

            await pilot.press("f4")
            await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "Accounts")
            table = app.screen.query_one("#profiles", DataTable)
            await wait_for(pilot, lambda: "local" in table.rows, "the row")
            table.move_cursor(row=table.get_row_index("local"))
            await pilot.press("t")
            await wait_for_run(pilot, 1)
            await pilot.press("f2")
            await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "compose")
            await wait_for(
                pilot,
                lambda: static_text(app, "#attachments-total").endswith(
                    "server limit 52.4 MB (last seen just now)"
                ),
                "the limit from the connection test",
            )
            await pilot.click("#attachments")
            await pilot.click("#remove-attachment")
            await wait_for(
                pilot,
                lambda: not app.screen.query_one("#attachments-total").display,
                "the total hidden with nothing attached",
            )
    assert log.calls == []


async def test_no_limit_announced_is_said_so(servers: ServerThread, tmp_path: Path) -> None:
    name = "local"
    port = servers.smtp(Sink())
    save_profile(name=name, host="127.0.0.1", port=port, security="none")
    remember(name, server_key("127.0.0.1", port), {"size": ""}, now=time.time() - 3 * 3600)
    [small] = files(tmp_path, small=2000)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await attach(pilot, small)
        await wait_for(pilot, lambda: "…" not in "".join(item_texts(app)), "the size")
        assert static_text(app, "#attachments-total").endswith(
            "the server announced no limit (last seen 3 hours ago)"
        )


async def test_direct_delivery_names_no_single_limit(servers: ServerThread, tmp_path: Path) -> None:
    """The built-in "direct" choice has no one server: even a limit once recorded under
    its name is not offered as the one to stay under."""
    remember("direct", server_key("127.0.0.1", 25), {"size": "1000"}, now=time.time() - 60)
    [small] = files(tmp_path, small=2000)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        app.screen.query_one("#profile", Select).value = "direct"
        await pilot.pause()
        await attach(pilot, small)
        await wait_for(pilot, lambda: "…" not in "".join(item_texts(app)), "the size")
        total = static_text(app, "#attachments-total")
        assert total.endswith("each recipient's mail server has its own limit"), total
        assert not total.startswith("⚠")


SnapCompare = Callable[..., bool]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_of_the_sizes_over_the_limit(
    snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]
) -> None:
    """Two files, their sizes as typed and as sent, the total over the limit last seen."""
    save_profile(name="work", host="smtp.example.test", port=587, security="starttls")
    remember("work", "smtp.example.test:587", {"size": "10240000"}, now=time.time() - TWO_DAYS)
    report = tmp_path / "quarterly report.pdf"
    report.write_bytes(b"%PDF" + b"x" * 1_234_563)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"x" * 8_900_000)

    async def attached(pilot: Pilot[Any]) -> None:
        await fill_draft(pilot, to="bob@example.test", subject="Figures", body="Attached.")
        await attach(pilot, report)
        await attach(pilot, photo)
        app = pilot.app
        assert isinstance(app, TuimailApp)
        await wait_for(pilot, lambda: "…" not in "".join(item_texts(app)), "the sizes")
        await wait_for(
            pilot, lambda: "2 days ago" in static_text(app, "#attachments-total"), "the limit"
        )
        app.set_focus(None)  # no blinking cursor in the picture
        await pilot.pause()

    app = TuimailApp(start_sandbox=False)
    assert snap_compare(app, terminal_size=size, run_before=attached)
