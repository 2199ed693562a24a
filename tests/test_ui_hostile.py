"""The app under hostile input: outside text is shown as text, bad files never crash it.

Names from DNS, replies from servers, file names and the user's own config
files are chosen by someone else. Each test drives the real app with Pilot
against real servers on loopback (aiosmtpd, a small DNS responder) and checks
that the app keeps running, says what happened in words, and shows outside
text as text: never as Textual markup, never as raw escape sequences.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from tests.smtpservers import ServerThread, Sink, TinyDNS
from tests.ui_support import (
    GatedSink,
    draft_values,
    fill_draft,
    open_mailboxes,
    open_monitor,
    paste,
    save_profile,
    screen_text,
    static_text,
    wait_for,
    wait_for_mailboxes,
    wait_for_run,
    wait_for_sandbox,
    wait_for_saves,
)
from tuimail.drafts import DraftStore
from tuimail.message import Draft, build_message
from tuimail.outbox import Outbox
from tuimail.probe import Status
from tuimail.ui import screens, settings
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.screens.dialogs import ConfirmDialog, FilePickerDialog
from tuimail.ui.screens.transcript import TranscriptScreen

#: Retitle the window, clear the screen.
EVIL = "\x1b]0;pwned\x07\x1b[2J"


def config_dir(isolated_dirs: Path) -> Path:
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True, exist_ok=True)
    return config


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
            keys = [
                "target:domain@[/oops].evil.test:25/none",
                "target:domain@[b]bold[/b].evil.test:25/none",
            ]
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


async def show_captured(pilot: Pilot[Any], sender: str, message: str | bytes, marker: str) -> str:
    """Send ``message`` to the app's embedded sandbox with smtplib, open it on F5.

    Returns the message view's text once ``marker`` is in it.
    """
    import smtplib

    app = pilot.app
    assert isinstance(app, TuimailApp)
    await wait_for_sandbox(pilot)
    assert app.model.sandbox is not None
    port = app.model.sandbox.port

    def deliver() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail(sender, ["bob@example.test"], message)

    await asyncio.wait_for(asyncio.to_thread(deliver), 15)
    await pilot.press("f5")
    table = app.screen.query_one("#captured", DataTable)
    await wait_for(pilot, lambda: table.row_count == 1, "the captured message")
    table.move_cursor(row=0)
    await wait_for(pilot, lambda: marker in static_text(app, "#message-view"), "the message")
    return static_text(app, "#message-view")


async def test_a_message_a_client_sent_the_sandbox_is_shown_as_text() -> None:
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        body = f"Subject: [/oops] hello\r\n\r\nline one{EVIL}\r\nline two\r\n"
        shown_text = await show_captured(pilot, '"[/b]x"@example.test', body, "line two")
        assert "Subject: [/oops] hello" in shown_text
        assert "line one\\x1b]0;pwned\\x07\\x1b[2J\nline two" in shown_text
        assert '"[/b]x"@example.test' in screen_text(app)
        assert "\x1b" not in rendered(app)


# -- one home for every message ---------------------------------------------


async def test_a_message_refused_for_good_goes_back_to_compose_only(
    servers: ServerThread,
) -> None:
    sink = Sink(data_reply="554 5.7.1 rejected")
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Hello", body="Hi Bob")
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        assert run.outbox_state == "returned"
        assert "the draft is here to fix and send again" in static_text(app, "#send-status")
        assert draft_values(app) == ("bob@example.test", "Hello", "Hi Bob")
        await wait_for_saves(pilot)
        assert Outbox().entries() == []  # not also in the outbox, to be retried there
        assert [d.draft.subject for d in DraftStore().list()] == ["Hello"]

        sink.data_reply = None  # the problem is fixed; Send again sends it once
        await pilot.press("ctrl+s")
        again = await wait_for_run(pilot, 2)
        assert again.outbox_state == "sent"
        await wait_for_saves(pilot)
        assert len(sink.messages) == 1
        assert Outbox().entries() == [] and DraftStore().list() == []
        assert draft_values(app) == ("", "", "")


async def test_a_possibly_delivered_message_lives_in_the_outbox_only(
    servers: ServerThread,
) -> None:
    sink = Sink(disconnect_after_data=True)
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Hello", body="Hi Bob")
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        assert run.outbox_state == "possibly-delivered"
        assert "kept in the outbox (F7)" in static_text(app, "#send-status")
        assert draft_values(app) == ("", "", "")  # Send cannot deliver it a second time
        await wait_for_saves(pilot)
        assert [q.state.value for q in Outbox().entries()] == ["possibly-delivered"]
        assert DraftStore().list() == []
        assert len(sink.messages) == 1


async def test_the_form_is_locked_while_its_message_is_sent(servers: ServerThread) -> None:
    sink = GatedSink()
    save_profile(name="slow", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await fill_draft(pilot, to="bob@example.test", subject="One", body="first")
            await pilot.press("ctrl+s")
            await wait_for(pilot, sink.waiting.is_set, "the server to hold the DATA reply")
            compose = app.screen
            assert isinstance(compose, ComposeScreen) and compose.form_locked
            await pilot.press("ctrl+n")  # a new message would be cleared with the sent one
            await pilot.click("#body")
            await pilot.press("x")
            assert draft_values(app) == ("bob@example.test", "One", "first")
            sink.gate.set()
            run = await wait_for_run(pilot)
            assert run.outbox_state == "sent"
            assert sink.messages[0].content.rstrip().endswith(b"first")
            assert not compose.form_locked
            await pilot.click("#subject")
            await paste(pilot, "Two")
            assert draft_values(app) == ("", "Two", "")
    finally:
        sink.gate.set()


# -- deleting asks first ------------------------------------------------------


async def test_deleting_a_queued_message_asks_first_and_clears_the_detail(
    servers: ServerThread,
) -> None:
    profile = save_profile(
        name="local", host="127.0.0.1", port=servers.smtp(Sink()), security="none"
    )
    draft = Draft(from_address="me@example.test", to=["bob@example.test"], subject="Keep me")
    Outbox().enqueue(profile, build_message(draft))
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_mailboxes(pilot)
        table = screen.query_one("#outbox-table", DataTable)
        table.move_cursor(row=0)
        await pilot.pause()
        assert "bob@example.test" in static_text(app, "#outbox-detail")

        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        assert "Delete the queued message to bob@example.test" in static_text(app, ".question")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "the question to close")
        assert len(Outbox().entries()) == 1 and table.row_count == 1

        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.click("#confirm")
        await wait_for(pilot, lambda: table.row_count == 0, "the row to go")
        assert Outbox().entries() == []
        assert static_text(app, "#outbox-detail") == ""


# -- attachments that cannot be used ------------------------------------------


async def test_a_file_name_that_is_not_utf8_is_refused_and_the_draft_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(screens.compose, "DRAFT_SAVE_DELAY", 0.1)
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt")
    Path(os.fsdecode(raw)).write_bytes(b"data")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Menu", body="See the file")
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, FilePickerDialog), "the picker")
        app.screen.query_one("#path", Input).value = os.fsdecode(raw)
        await pilot.click("#attach")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "compose")
        assert "not valid UTF-8" in static_text(app, "#send-status")
        assert isinstance(app.screen, ComposeScreen) and app.screen.attachments == []
        await pilot.click("#subject")
        await pilot.press("end")
        await paste(pilot, " again")
        await wait_for(
            pilot,
            lambda: [d.draft.subject for d in DraftStore().list()] == ["Menu again"],
            "the draft to be saved",
        )
        assert app.is_running


@pytest.mark.parametrize("gone", ["deleted", "fifo"])
async def test_an_attachment_gone_at_send_time_is_explained_and_the_draft_kept(
    servers: ServerThread, tmp_path: Path, gone: str
) -> None:
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    attachment = tmp_path / "report [final].pdf"
    attachment.write_bytes(b"%PDF")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Report", body="Attached.")
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, FilePickerDialog), "the picker")
        app.screen.query_one("#path", Input).value = str(attachment)
        await pilot.click("#attach")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "compose")
        assert isinstance(app.screen, ComposeScreen)
        assert app.screen.attachments == [attachment]
        attachment.unlink()
        if gone == "fifo":
            os.mkfifo(attachment)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not app.model.busy, "the send to stop")
        await pilot.pause()
        status = static_text(app, "#send-status")
        expected = "does not exist" if gone == "deleted" else "is not a regular file"
        assert str(attachment) in status and expected in status, status
        assert "Your draft is kept" in status
        assert draft_values(app) == ("bob@example.test", "Report", "Attached.")
        assert isinstance(app.screen, ComposeScreen) and not app.screen.form_locked
        assert Outbox().entries() == [] and sink.messages == []
        assert app.is_running


# -- bad config files ---------------------------------------------------------

BAD_VARIABLES_THEME = """\
name = "bad-variables"
primary = "#ff00ff"

[variables]
"block-cursor-background" = "not a colour"
"""


async def test_a_theme_with_a_bad_variable_is_reported_and_skipped(isolated_dirs: Path) -> None:
    themes_dir = config_dir(isolated_dirs) / "themes"
    themes_dir.mkdir()
    (themes_dir / "bad.toml").write_text(BAD_VARIABLES_THEME)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert "bad-variables" not in app.available_themes
        (problem,) = app.theme_problems
        assert "bad.toml" in problem and "'block-cursor-background'" in problem
        assert "'not a colour' is not a colour" in problem
        notices = [n for n in app._notifications if n.title == "Theme not loaded"]
        assert [n.message for n in notices] == [problem]
        await open_monitor(pilot)  # a DataTable: styled with the block cursor
        assert app.is_running


async def test_a_remembered_theme_that_no_longer_loads_falls_back_to_the_default(
    isolated_dirs: Path,
) -> None:
    themes_dir = config_dir(isolated_dirs) / "themes"
    themes_dir.mkdir()
    (themes_dir / "bad.toml").write_text(BAD_VARIABLES_THEME)
    settings.save_state({"theme": "bad-variables"})
    app = TuimailApp(start_sandbox=False)
    default = app.theme
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await open_monitor(pilot)
        assert app.is_running and app.theme == default
        notices = [n.message for n in app._notifications if n.title == "Theme"]
        assert notices == [
            "The theme 'bad-variables' chosen last time is not available; using the default."
        ]


@pytest.mark.parametrize(
    ("monitor", "problem"),
    [
        ('interval = "abc"', "interval = 'abc'"),
        ("interval = -5", "interval = -5"),
        ("concurrency = 0", "concurrency = 0"),
        ('concurrency = "ten"', "concurrency = 'ten'"),
        ('dns_server = "127.0.0.1:dns"', "dns_server = '127.0.0.1:dns'"),
    ],
)
async def test_a_bad_monitor_setting_is_reported_once_and_the_default_used(
    isolated_dirs: Path, monitor: str, problem: str
) -> None:
    (config_dir(isolated_dirs) / "config.toml").write_text(f"[monitor]\n{monitor}\n")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        await pilot.pause()
        notices = [n.message for n in app._notifications if n.title == "config.toml [monitor]"]
        assert len(notices) == 1 and notices[0].startswith(problem), notices
        assert (screen.interval, screen.concurrency) in {(300.0, 10), (0.0, 10), (300.0, 1)}
        await pilot.press("f2")
        await open_monitor(pilot)  # opened again: not said again
        assert len([n for n in app._notifications if n.title == "config.toml [monitor]"]) == 1
        assert app.is_running


async def test_a_send_that_breaks_leaves_the_message_in_compose_only(
    servers: ServerThread, tmp_path: Path
) -> None:
    """A CA file that is no certificate breaks the attempt itself (not a refusal)."""
    bad_ca = tmp_path / "ca.pem"
    bad_ca.write_text("not a certificate\n")
    port = servers.smtp(Sink())
    save_profile(name="local", host="127.0.0.1", port=port, security="tls", ca_file=str(bad_ca))
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Hello", body="Hi Bob")
        await pilot.press("ctrl+s")
        await wait_for(
            pilot, lambda: app.model.history.runs and not app.model.busy, "the send to end"
        )
        await pilot.pause()
        assert draft_values(app) == ("bob@example.test", "Hello", "Hi Bob")
        assert isinstance(app.screen, ComposeScreen) and not app.screen.form_locked
        assert static_text(app, "#send-status").startswith("✗")
        assert Outbox().entries() == []  # not queued too, to be sent beside the draft


async def test_a_connection_test_refused_with_escapes_is_shown_as_text(
    servers: ServerThread,
) -> None:
    from tests.test_terminal_escapes import RefusingGreetingSMTP

    port = servers.smtp(Sink(), server_class=RefusingGreetingSMTP)
    save_profile(name="local", host="127.0.0.1", port=port, security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        table = app.screen.query_one("#profiles", DataTable)
        table.move_cursor(row=[str(key.value) for key in table.rows].index("local"))
        await pilot.press("t")
        run = await wait_for_run(pilot)
        assert run.report is not None and run.report.failure is not None
        await pilot.pause()
        assert "go away\\x1b]0;pwned" in static_text(app, "#account-problem")
        assert "\x1b" not in rendered(app)


async def test_a_broken_probe_history_does_not_stop_the_monitor(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    (config_dir(isolated_dirs) / "config.toml").write_text("[monitor]\ninterval = 0\n")
    port = servers.smtp(Sink())
    save_profile(name="local", host="127.0.0.1", port=port, security="none")
    key = f"127.0.0.1:{port}/none"
    good = {"started": 1_700_000_000.0, "status": "OK", "total": 0.25, "days_left": None}
    broken = [
        {"started": "yesterday", "status": "OK", "total": 0.1},
        {"started": 1e300, "status": "OK", "total": 0.1},
        {"started": 1_700_000_001.0, "status": "OK", "total": "fast"},
        {"started": 1_700_000_002.0, "status": "OK", "capabilities": ["SIZE"]},
    ]
    state = isolated_dirs / "state" / "tuimail"
    state.mkdir(parents=True, exist_ok=True)
    (state / "probe-history.json").write_text(
        json.dumps({"version": 1, "targets": {key: [good, *broken], "empty": []}})
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        table = screen.query_one("#targets", DataTable)
        table.move_cursor(row=0)
        await pilot.pause()
        assert str(table.get_row_at(0)[2]) == "0.250s"  # the good record, the rest left out
        [target] = screen.targets  # the profile, shown with its server's (older) history
        assert screen.history.latencies(target) == [0.25]
        await pilot.press("r")
        await wait_for(pilot, lambda: target.key in screen.latest, "a probe")
        assert app.is_running


async def test_a_queued_message_with_an_attachment_is_not_edited_into_a_lossy_draft(
    servers: ServerThread, tmp_path: Path
) -> None:
    attachment = tmp_path / "invoice.pdf"
    attachment.write_bytes(b"%PDF-1.4")
    profile = save_profile(
        name="local", host="127.0.0.1", port=servers.smtp(Sink()), security="none"
    )
    draft = Draft(
        from_address="me@example.test",
        to=["bob@example.test"],
        subject="Invoice",
        body="Attached.",
        attachments=[attachment],
    )
    Outbox().enqueue(profile, build_message(draft))
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_mailboxes(pilot)
        screen.query_one("#outbox-table", DataTable).move_cursor(row=0)
        await pilot.pause()
        await pilot.press("e")
        await wait_for_mailboxes(pilot)
        assert any("invoice.pdf" in n.message for n in app._notifications)
        assert len(Outbox().entries()) == 1  # still there, attachment and all
        assert app.current_mode == "mailboxes"


def test_an_app_that_stops_on_an_error_exits_non_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    from tuimail.ui import app as app_module

    class Crashing(TuimailApp):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(start_sandbox=False, **kwargs)

        async def on_mount(self) -> None:
            raise RuntimeError("a bug")

        def run(self, *args: Any, **kwargs: Any) -> Any:
            return super().run(*args, **{**kwargs, "headless": True})

    monkeypatch.setattr(app_module, "TuimailApp", Crashing)
    assert app_module.run_app() == 1


async def test_a_message_with_headers_the_email_package_trips_on_is_shown() -> None:
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        raw = (
            b"Message-ID: <\r\nTo: a@[\r\nSubject: broken\r\n"
            b"Content-Type: text/plain; charset=x-unknown\r\n\r\nstill readable\r\n"
        )
        shown_text = await show_captured(pilot, "x@example.test", raw, "broken")
        assert "Message-ID: <" in shown_text and "To: a@[" in shown_text
        assert "still readable" in shown_text
        assert app.is_running
