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

from tests.ui_support import wait_for
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
