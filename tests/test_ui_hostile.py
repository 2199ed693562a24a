"""The app under hostile input: outside text is shown as text, bad files never crash it.

Names from DNS, replies from servers, file names and the user's own config
files are chosen by someone else. Each test drives the real app with Pilot
against real servers on loopback (aiosmtpd, a small DNS responder) and checks
that the app keeps running, says what happened in words, and shows outside
text as text: never as Textual markup, never as raw escape sequences.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, TabbedContent

from tests.smtpservers import ServerThread, Sink
from tests.test_probe import TinyDNS
from tests.ui_support import (
    fill_draft,
    save_profile,
    screen_text,
    static_text,
    wait_for,
    wait_for_run,
    wait_for_sandbox,
)
from tuimail.probe import Status
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.mailboxes import MailboxesScreen
from tuimail.ui.screens.monitor import MonitorScreen
from tuimail.ui.screens.transcript import TranscriptScreen

#: Retitle the window, clear the screen.
EVIL = "\x1b]0;pwned\x07\x1b[2J"


def config_dir(isolated_dirs: Path) -> Path:
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True, exist_ok=True)
    return config


async def open_monitor(pilot: Pilot[Any]) -> MonitorScreen:
    await pilot.press("f6")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MonitorScreen), "the monitor")
    screen = pilot.app.screen
    assert isinstance(screen, MonitorScreen)
    return screen


async def open_mailboxes(pilot: Pilot[Any], tab: str = "tab-outbox") -> MailboxesScreen:
    await pilot.press("f7")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MailboxesScreen), "F7")
    screen = pilot.app.screen
    assert isinstance(screen, MailboxesScreen)
    screen.query_one("#boxes", TabbedContent).active = tab
    await pilot.pause()
    return screen


def rendered(app: TuimailApp) -> str:
    """What the terminal would receive for the current screen, segment by segment."""
    return "".join(
        segment.text for strip in app.screen._compositor.render_strips() for segment in strip
    )


# -- outside text is text ---------------------------------------------------


async def test_an_mx_name_that_looks_like_markup_is_shown_as_text(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    zone = {"evil.test": ["10 [/oops].evil.test.", "20 [b]bold[/b].evil.test."]}
    transport, _ = asyncio.run_coroutine_threadsafe(
        servers.loop.create_datagram_endpoint(lambda: TinyDNS(zone), local_addr=("127.0.0.1", 0)),
        servers.loop,
    ).result(5)
    dns_port = transport.get_extra_info("sockname")[1]
    config = config_dir(isolated_dirs)
    (config / "config.toml").write_text(
        f'[monitor]\ninterval = 0\ndns_server = "127.0.0.1:{dns_port}"\n'
    )
    (config / "targets.toml").write_text(
        '[targets.domain]\nmx = "evil.test"\nsecurity = "none"\ntimeout = 2\n'
    )
    try:
        app = TuimailApp(start_sandbox=False)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_monitor(pilot)
            await pilot.press("r")
            keys = ["[/oops].evil.test:25/none", "[b]bold[/b].evil.test:25/none"]
            await wait_for(pilot, lambda: all(k in screen.latest for k in keys), "both MX hosts")
            assert [screen.latest[k].status for k in keys] == [Status.CRITICAL] * 2
            table = screen.query_one("#targets", DataTable)
            labels = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
            assert labels == [
                "domain",
                "domain MX 10 [/oops].evil.test",
                "domain MX 20 [b]bold[/b].evil.test",
            ]
            await pilot.pause()
            assert "domain MX 10 [/oops].evil.test" in screen_text(app)
            assert app.is_running
    finally:
        servers.loop.call_soon_threadsafe(transport.close)


@pytest.mark.parametrize(
    "sink",
    [
        pytest.param(Sink(data_reply=f"554 5.7.1 [/oops] [b]no[/b]{EVIL}"), id="554-at-data"),
        pytest.param(
            Sink(rcpt_replies={"bob@example.test": f"451 4.3.0 [/oops] later{EVIL}"}),
            id="451-queued",
        ),
    ],
)
async def test_a_reply_with_markup_and_escapes_is_shown_as_text(
    servers: ServerThread, sink: Sink
) -> None:
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Hello", body="Hi Bob")
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        assert run.report is not None and run.report.failure is not None
        status = static_text(app, "#send-status")
        assert "[/oops]" in status and "\\x1b]0;pwned\\x07\\x1b[2J" in status
        assert "\x1b" not in rendered(app)

        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, TranscriptScreen), "F3")
        await pilot.pause()
        assert "[/oops]" in static_text(app, "#failure")
        assert "\x1b" not in rendered(app)

        if run.outbox_state == "queued":
            screen = await open_mailboxes(pilot)
            table = screen.query_one("#outbox-table", DataTable)
            assert table.row_count == 1
            table.move_cursor(row=0)
            await pilot.pause()
            assert "[/oops] later" in static_text(app, "#outbox-detail")
            assert "[/oops] later" in screen_text(app)
            assert "\x1b" not in rendered(app)
        assert app.is_running


async def test_a_message_a_client_sent_the_sandbox_is_shown_as_text() -> None:
    import smtplib

    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_sandbox(pilot)
        assert app.sandbox is not None
        port = app.sandbox.port
        body = f"Subject: [/oops] hello\r\n\r\nline one{EVIL}\r\nline two\r\n"

        def deliver() -> None:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.sendmail('"[/b]x"@example.test', ["bob@example.test"], body)

        await asyncio.wait_for(asyncio.to_thread(deliver), 15)
        await pilot.press("f5")
        table = app.screen.query_one("#captured", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, "the captured message")
        table.move_cursor(row=0)
        await wait_for(
            pilot, lambda: "line two" in static_text(app, "#message-view"), "the message"
        )
        shown_text = static_text(app, "#message-view")
        assert "Subject: [/oops] hello" in shown_text
        assert "line one\\x1b]0;pwned\\x07\\x1b[2J\nline two" in shown_text
        assert '"[/b]x"@example.test' in screen_text(app)
        assert "\x1b" not in rendered(app)
