"""Outbox, drafts and sent in the app: nothing typed or queued is lost."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static, TabbedContent

from tests.conftest import require_tool
from tests.smtpservers import ServerThread, Sink
from tests.test_ui_tmux import Tmux, tuimail_command
from tests.ui_support import (
    draft_values,
    fill_draft,
    open_mailboxes,
    save_profile,
    static_text,
    wait_for,
    wait_for_mailboxes,
    wait_for_run,
)
from tuimail.drafts import DraftStore
from tuimail.outbox import Outbox
from tuimail.ui import screens
from tuimail.ui.app import TuimailApp
from tuimail.ui.widgets.transcript_view import TranscriptView


@pytest.fixture(autouse=True)
def quick_drafts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screens.compose, "DRAFT_SAVE_DELAY", 0.1)


async def test_queued_send_is_retried_from_the_outbox_and_lands_in_sent(
    servers: ServerThread, tmp_path: Path
) -> None:
    sink = Sink(rcpt_replies={"bob@example.test": "451 4.3.0 Try again later"})
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Queued", body="Hello")
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        assert run.outbox_state == "queued"
        assert "Queued in the outbox" in static_text(app, "#send-status")
        assert draft_values(app) == ("", "", "")  # safe in the outbox, not twice on screen

        screen = await open_mailboxes(pilot, "tab-outbox")
        table = screen.query_one("#outbox-table", DataTable)
        assert table.row_count == 1 and str(table.get_row_at(0)[0]) == "queued"
        sink.rcpt_replies.clear()
        await pilot.press("r")
        retry = await wait_for_run(pilot, 2)
        assert retry.kind == "retry" and retry.outbox_state == "sent"
        assert len(sink.messages) == 1
        await wait_for(pilot, lambda: table.row_count == 0, "the outbox to empty")

        screen.query_one("#boxes", TabbedContent).active = "tab-sent"
        await wait_for_mailboxes(pilot)
        sent = screen.query_one("#sent-table", DataTable)
        assert sent.row_count == 1 and str(sent.get_row_at(0)[3]) == "Queued"
        sent.move_cursor(row=0)
        await wait_for_mailboxes(pilot)
        assert "Subject: Queued" in str(screen.query_one("#sent-view", Static).content)
        view = screen.query_one("#sent-transcript", TranscriptView)
        assert view.transcript is not None
        assert any(e.text.startswith("250 Message accepted") for e in view.transcript.entries)

        export = tmp_path / "mail.eml"
        await pilot.press("x")
        await wait_for(pilot, lambda: pilot.app.screen.query("#path"), "the export dialog")
        pilot.app.screen.query_one("#path", Input).value = str(export)
        await pilot.click("#export")
        await wait_for(
            pilot, lambda: export.exists() and export.with_suffix(".txt").exists(), "the files"
        )
        assert export.read_bytes() == sink.messages[0].content
        assert "<-  250 Message accepted" in export.with_suffix(".txt").read_text()


async def test_failed_message_is_edited_as_a_draft_or_deleted(servers: ServerThread) -> None:
    later = "451 4.3.0 Try again later"
    sink = Sink(rcpt_replies={"bob@example.test": later, "hidden@example.test": later})
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Typo", body="Body text")
        await pilot.click("#input-bcc")
        await pilot.press(*"hidden@example.test")
        await pilot.press("ctrl+s")
        assert (await wait_for_run(pilot)).outbox_state == "queued"
        # The retry from the outbox fails for good: the message stays there, as failed.
        refused = "550 5.1.1 No such user"
        sink.rcpt_replies.update({"bob@example.test": refused, "hidden@example.test": refused})
        screen = await open_mailboxes(pilot, "tab-outbox")
        await pilot.press("r")
        assert (await wait_for_run(pilot, 2)).outbox_state == "failed"
        table = screen.query_one("#outbox-table", DataTable)
        await wait_for(pilot, lambda: str(table.get_row_at(0)[0]) == "failed", "the failed row")
        await pilot.press("e")
        await wait_for(pilot, lambda: app.current_mode == "compose", "compose")
        await pilot.pause()
        to, subject, body = draft_values(app)
        assert ("bob@example.test" in to, subject, body.strip()) == (True, "Typo", "Body text")
        assert app.screen.query_one("#input-bcc", Input).value == "hidden@example.test"
        assert Outbox().entries() == []  # the draft replaces the failed message


async def test_drafts_are_saved_as_you_type_and_reopened() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="carol@example.test", subject="Plans", body="Unfinished")
        await wait_for(
            pilot,
            lambda: [d.draft.body for d in DraftStore().list()] == ["Unfinished"],
            "the whole draft to be saved",
        )
        [saved] = DraftStore().list()
        assert (saved.draft.to, saved.draft.subject) == (["carol@example.test"], "Plans")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert draft_values(app) == ("", "", "")
        screen = await open_mailboxes(pilot, "tab-drafts")
        drafts = screen.query_one("#drafts-table", DataTable)
        assert drafts.row_count == 1
        drafts.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "compose", "compose")
        await pilot.pause()
        assert draft_values(app) == ("carol@example.test", "Plans", "Unfinished")


async def test_unwritable_data_dir_keeps_the_draft(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    data = isolated_dirs / "data"
    data.mkdir(parents=True, exist_ok=True)
    immutable = os.geteuid() == 0 and shutil.which("chattr") is not None
    subprocess.run(["chattr", "+i", str(data)], check=True) if immutable else data.chmod(0o500)
    try:
        app = TuimailApp(start_sandbox=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await fill_draft(pilot, to="bob@example.test", subject="Kept", body="Still here")
            await pilot.press("ctrl+s")
            try:
                await wait_for(
                    pilot, lambda: "draft is kept" in static_text(app, "#send-status"), "the error"
                )
            except AssertionError:
                raise AssertionError(static_text(app, "#send-status")) from None
            assert "nothing was sent" in static_text(app, "#send-status")
            assert draft_values(app) == ("bob@example.test", "Kept", "Still here")
    finally:
        subprocess.run(["chattr", "-i", str(data)], check=True) if immutable else data.chmod(0o700)
    assert sink.messages == []


def test_a_killed_app_keeps_its_draft(isolated_dirs: Path) -> None:
    tmux = Tmux(require_tool("tmux", "tmux"))
    command = tuimail_command()
    drafts = DraftStore()
    try:
        tmux.start(command, width=120, height=40)
        tmux.wait_until(lambda s: "F2 Compose" in s and "127.0.0.1:" in s, "compose")
        tmux.keys("dora@example.test", literal=True)
        tmux.wait_for_text("dora@example.test")
        deadline = time.monotonic() + 30
        while not drafts.list() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert drafts.list(), "the draft was never saved"
        pid = int(tmux.run("display-message", "-p", "-t", tmux.target, "#{pane_pid}").stdout)
        os.kill(pid, signal.SIGKILL)  # no goodbye: a crash
        deadline = time.monotonic() + 10
        while tmux.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        # A new session under a new name: the old server may still be winding down.
        tmux.target = "tuimail-again"
        deadline = time.monotonic() + 10
        while True:
            try:
                tmux.start(command, width=120, height=40)
                break
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        tmux.wait_until(lambda s: "F2 Compose" in s, "compose again")
        tmux.keys("F7")
        tmux.wait_for_text("F7 Outbox")
        tmux.keys("Right")  # Outbox -> Drafts tab
        tmux.wait_for_text("dora@example.test")
    finally:
        tmux.kill()


def _fixed_outbox(data_dir: Path) -> None:
    """One failed message, written in the outbox's own format with fixed values."""
    import json

    from tuimail.maildir import deliver, ensure_maildir

    root = data_dir / "tuimail"
    ensure_maildir(root / "outbox")
    (root / "outbox-meta").mkdir(parents=True, exist_ok=True)
    key = "1740821400.M1P1Q1.snapshot"
    message = (
        b"From: me@example.test\r\nTo: bob@example.test\r\nSubject: Quarterly numbers\r\n"
        b"Message-ID: <fixed@example.test>\r\n\r\nSee attached.\r\n"
    )
    deliver(root / "outbox", message, durable=False, key=key)
    created = time.mktime((2025, 3, 1, 9, 30, 0, 0, 0, -1))
    meta = {
        "key": key, "message_id": "<fixed@example.test>", "sender": "me@example.test",
        "recipients": ["bob@example.test"], "created": created, "state": "failed",
        "profile": {"name": "relay", "host": "relay.example.test", "port": 25, "security": "none"},
        "attempts": [{"at": created, "ok": False}], "next_attempt": 0,
        "last_error": "rcpt: the server refused every recipient (bob@example.test: 550 5.1.1 No such user)",
    }  # fmt: skip
    (root / "outbox-meta" / f"{key}.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_mailboxes_snapshot(snap_compare: Any, isolated_dirs: Path, size: tuple[int, int]) -> None:
    _fixed_outbox(isolated_dirs / "data")

    async def show(pilot: Pilot[Any]) -> None:
        screen = await open_mailboxes(pilot, "tab-outbox")
        screen.query_one("#outbox-table", DataTable).move_cursor(row=0)
        await pilot.pause()

    assert snap_compare(TuimailApp(start_sandbox=False), terminal_size=size, run_before=show)


async def test_the_app_flushes_due_messages_and_says_when_one_fails(servers: ServerThread) -> None:
    from tuimail.message import Draft, build_message
    from tuimail.profiles import Profile

    sink = Sink(rcpt_replies={"bob@example.test": "550 5.1.1 No such user"})
    profile = save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    outbox = Outbox()
    for subject in ("one", "two"):
        outbox.enqueue(
            profile,
            build_message(
                Draft(from_address="me@example.test", to=["bob@example.test"], subject=subject)
            ),
        )
    assert isinstance(profile, Profile)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        app.flush_due()
        await wait_for(
            pilot,
            lambda: sum("A queued message failed" in n.message for n in app._notifications) == 2,
            "the two failures to be told",
        )
    assert {q.state.value for q in Outbox().entries()} == {"failed"}
