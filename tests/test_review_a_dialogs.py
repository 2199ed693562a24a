"""Paths typed into the app's dialogs that pathlib cannot take: said in words, never a crash.

``Path("~nobody/x").expanduser()`` raises RuntimeError, a name longer than
the system allows makes ``is_file()`` raise OSError, and ``with_suffix`` on
an emptied field raises ValueError: each stopped the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Label, Select

from tests.ui_support import open_mailboxes, wait_for, wait_for_mailboxes
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.dialogs import ExportDialog, ExportRequest, FilePickerDialog

TYPED = [
    pytest.param("~no-such-user-here/x.txt", "home directory", id="unknown-user"),
    pytest.param("/" + "a" * 5000, "too long", id="name-too-long"),
    pytest.param("a\0b", "NUL", id="nul"),
]


async def _open(pilot: Any, screen: Any, answers: list[Any]) -> None:
    pilot.app.push_screen(screen, answers.append)
    await wait_for(pilot, lambda: bool(pilot.app.screen.query("#path")), "the dialog")


@pytest.mark.parametrize(("typed", "said"), TYPED)
async def test_the_file_picker_explains_a_path_it_cannot_use(
    tmp_path: Path, typed: str, said: str
) -> None:
    answers: list[Path | None] = []
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(pilot, FilePickerDialog(tmp_path), answers)
        app.screen.query_one("#path", Input).value = typed
        await pilot.click("#attach")
        await pilot.pause()
        assert app.is_running and answers == []
        assert said.lower() in str(app.screen.query_one("#error", Label).render()).lower()


@pytest.mark.parametrize(("typed", "said"), [TYPED[0], TYPED[2]])
async def test_the_export_dialog_explains_a_path_it_cannot_use(
    tmp_path: Path, typed: str, said: str
) -> None:
    answers: list[ExportRequest | None] = []
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(pilot, ExportDialog(tmp_path / "t.txt"), answers)
        path = app.screen.query_one("#path", Input)
        path.value = ""  # emptied, then the format changed: no name to give a suffix
        app.screen.query_one("#format", Select).value = "jsonl"
        await pilot.pause()
        assert app.is_running
        path.value = typed
        await pilot.click("#export")
        await pilot.pause()
        assert app.is_running and answers == []
        assert said.lower() in str(app.screen.query_one("#error", Label).render()).lower()


@pytest.mark.parametrize(
    "stored",
    ['{"t": 0.1, "dir": "server", "text": "250 ok"}\n[1, 2]\n', "5\n", '{"dir": "server"}\n',
     "[" * 50_000 + "]" * 50_000 + "\n"],
    ids=["a-list", "a-number", "no-time", "nested-too-deeply"],
)  # fmt: skip
async def test_a_sent_transcript_that_is_not_records_is_shown_as_missing(stored: str) -> None:
    from textual.widgets import DataTable

    from tuimail.message import Draft, build_message
    from tuimail.outbox import Outbox
    from tuimail.ui.widgets.transcript_view import TranscriptView

    outbox = Outbox()
    key = "1700000000.M1P1Q1.test"
    message = build_message(Draft("a@example.com", ["b@example.com"], subject="Sent", body="x"))
    (outbox.sent_dir / "new").mkdir(parents=True)
    (outbox.sent_dir / "new" / key).write_bytes(message.to_bytes())
    outbox.transcripts_dir.mkdir(parents=True, exist_ok=True)
    (outbox.transcripts_dir / f"{key}.jsonl").write_text(stored)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_mailboxes(pilot, "tab-sent")
        table = app.screen.query_one("#sent-table", DataTable)
        assert table.row_count == 1
        table.move_cursor(row=0)
        await wait_for_mailboxes(pilot)
        assert app.is_running
        assert app.screen.query_one("#sent-transcript", TranscriptView).transcript is None
