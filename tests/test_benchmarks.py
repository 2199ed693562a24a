"""The benchmarks still run: every module imports, the launched apps start, the seam holds.

Benchmarks are run by hand (``make bench``) and would otherwise break
unnoticed; these checks are quick and assert nothing about time.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.widgets import Input

import benchmarks
from benchmarks import app_seam
from benchmarks.apps import breakdown, floor, minimal
from benchmarks.common import BenchmarkError
from benchmarks.results import END, START, write_section
from tests.ui_support import wait_for
from tuimail.transcript import Direction, Transcript
from tuimail.ui.screens.transcript import TranscriptScreen
from tuimail.ui.widgets.transcript_view import TranscriptView

SIZE = (breakdown.COLUMNS, breakdown.ROWS)


def test_every_benchmark_module_imports() -> None:
    names = [m.name for m in pkgutil.walk_packages(benchmarks.__path__, "benchmarks.")]
    assert "benchmarks.apps.floor" in names
    for name in names:
        importlib.import_module(name)


@pytest.mark.parametrize("app_module", [minimal, floor], ids=["minimal", "floor"])
async def test_launched_apps_start_headless(app_module: Any) -> None:
    app: App[None] = app_module.make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.screen.query("Footer")


async def test_the_floor_shows_the_compose_screens_fields_and_focus() -> None:
    app = floor.make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.focused, Input)
        assert app.focused.id == "input-to"
        assert app.screen.query_one("#live-view", TranscriptView)


async def test_the_app_seam_reads_a_running_app() -> None:
    frames: list[str] = []
    app = app_seam.watching_app(lambda _screen, text: frames.append(text))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await pilot.press("f2")
        await pilot.pause()
        transcript = Transcript(title="seam")
        app_seam.start_live_session(app, transcript)
        for number in range(5):
            transcript.add(Direction.SERVER, f"250-seam line {number}")
        screens = app_seam.listening_screens(app)
        assert any(isinstance(screen, TranscriptScreen) for screen in screens)
        view = app.screen.query_one("#live-view", TranscriptView)
        await wait_for(pilot, lambda: app_seam.entries_shown(view) >= 5, "the live view")
        assert app_seam.lines_drawn(view) >= 5
        assert "seam line 4" in app_seam.screen_text(app.screen)
        assert app_seam.queued_messages(app) >= 0
        assert app_seam.driver(app) is not None
        assert frames


def test_a_missing_attribute_fails_loudly() -> None:
    with pytest.raises(BenchmarkError, match="shown_entries"):
        app_seam.entries_shown(object())  # type: ignore[arg-type]


def test_the_figures_replace_only_their_section(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nprose before\n", encoding="utf-8")
    write_section("| first |", doc)
    text = doc.read_text(encoding="utf-8")
    doc.write_text(text + "\nprose after\n", encoding="utf-8")
    write_section("| second |", doc)
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Performance\n\nprose before\n")
    assert text.endswith("prose after\n")
    assert "| second |" in text
    assert "| first |" not in text
    assert text.count(START) == text.count(END) == 1
