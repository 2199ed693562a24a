"""The live transcript through a flood, and long lines that wrap under their text.

Real parts only: the app runs headless with Pilot, and a session's transcript
is fed through the model's own seam (``begin`` and ``live_feed``), as the
app's send worker feeds it. Nothing here times anything: a flood is judged by
how many times the views took in new lines (coalesced: a few steps for
thousands of lines, not one per line or per small batch), and by what they
show at its end (the last line, the "older lines trimmed" marker and its
count).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui_support import screen_text, view_lines, wait_for
from tuimail.transcript import Direction, EventKind, Transcript
from tuimail.ui.app import TuimailApp
from tuimail.ui.history import RunKind, SessionRun
from tuimail.ui.widgets.transcript_view import TranscriptView

WIDE = (120, 40)
FLOOD = 20_000
BURST = 1_000
LONG = "250-" + " ".join(f"word{number:02d}" for number in range(40))


def live_session(app: TuimailApp) -> SessionRun:
    """A send session the app knows about, fed live through the model."""
    run = SessionRun(RunKind.SEND, "sandbox", "bob@example.test", Transcript(title="send"))
    app.model.begin(run)
    run.transcript.subscribe(app.model.live_feed(run))
    run.transcript.event(EventKind.CONNECTED, "connected to 127.0.0.1:2525")
    return run


async def test_a_flood_reaches_the_live_view_in_a_few_coalesced_steps() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        live = app.screen.query_one("#live-view", TranscriptView)
        run = live_session(app)
        await wait_for(pilot, lambda: live.shown_entries == 1, "the first line on Compose")
        # Every repaint the view's lines ask for, counted (whatever the widget).
        lines_widget = live.log_widget
        repaints = 0
        repaint = lines_widget.refresh

        def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal repaints
            repaints += 1
            return repaint(*args, **kwargs)

        lines_widget.refresh = counted  # type: ignore[method-assign]

        for number in range(FLOOD):
            run.transcript.add(Direction.SERVER, f"250-flood line {number:06d}")
            if (number + 1) % BURST == 0:
                await pilot.pause(0)  # one turn of the loop per burst, like a server's reads
        await wait_for(pilot, lambda: app.is_idle, "the view to take in the flood")

        # A few repaints per announcement at most (at most one announcement a
        # burst here): never one per line, nor one per small batch of lines.
        assert 1 <= repaints <= 3 * FLOOD // BURST, repaints
        assert live.shown_entries == live.cap
        out_of_view = len(run.transcript) - live.cap
        await wait_for(
            pilot, lambda: "250-flood line 019999" in screen_text(app), "the last line on screen"
        )
        assert f"▲ {out_of_view:,} older lines trimmed from view" in screen_text(app)
        lines = view_lines(live)
        assert "flood line 019999" in lines[-1]
        first_kept = FLOOD - live.cap
        assert f"flood line {first_kept:06d}" in lines[0], "the marker counts what left the view"


async def test_a_view_draws_only_the_lines_in_sight() -> None:
    """Lines scrolled out of sight are never drawn, however many the view keeps."""
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("f3")
        view = app.screen.query_one("#transcript-view", TranscriptView)
        run = live_session(app)
        for number in range(1_500):
            run.transcript.add(Direction.SERVER, f"250-kept line {number:06d}")
        await wait_for(pilot, lambda: app.is_idle and view.shown_entries == 1_501, "the view")
        await wait_for(
            pilot, lambda: "250-kept line 001499" in screen_text(app), "the last line on screen"
        )
        lines = view.log_widget
        assert 0 < lines.entries_drawn <= lines.size.height, lines.entries_drawn


@pytest.mark.parametrize(
    ("columns", "key", "selector"),
    [
        (120, "f2", "#live-view"),
        (120, "f3", "#transcript-view"),
        # At 80 columns Compose has no room for its live pane: the transcript screen only.
        (80, "f3", "#transcript-view"),
    ],
)
async def test_a_wrapped_line_continues_under_its_text(
    columns: int, key: str, selector: str
) -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(columns, 40)) as pilot:
        run = live_session(app)
        run.transcript.add(Direction.SERVER, LONG)
        run.transcript.add(Direction.CLIENT, "QUIT")
        await pilot.press(key)
        view = app.screen.query_one(selector, TranscriptView)
        await wait_for(pilot, lambda: view.shown_entries == 3, "the view to fill")
        await wait_for(pilot, lambda: "QUIT" in screen_text(app), "the last line on screen")
        rows = screen_text(app).splitlines()
        first = next(index for index, row in enumerate(rows) if "250-word00" in row)
        column = rows[first].index("250-word00")
        last = next(index for index, row in enumerate(rows) if "QUIT" in row)
        continued = rows[first + 1 : last]
        assert continued, f"the long line should wrap at {columns} columns"
        for row in continued:
            # Under the text: blank below the time and marker, a word right under "250-".
            assert row[column - 10 : column].strip() == "", f"{row!r} starts under the time"
            assert row[column : column + 4] == "word", f"{row!r} is not under the text"
        assert "word39" in rows[last - 1], "every word is shown"


async def test_a_reader_who_scrolled_up_is_not_pulled_down_by_new_lines() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("f3")
        view = app.screen.query_one("#transcript-view", TranscriptView)
        run = live_session(app)
        for number in range(300):
            run.transcript.add(Direction.SERVER, f"250-early line {number:04d}")
        await wait_for(pilot, lambda: view.shown_entries == 301, "the first lines")
        lines = view.log_widget
        lines.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        for number in range(300):
            run.transcript.add(Direction.SERVER, f"250-later line {number:04d}")
        await wait_for(pilot, lambda: view.shown_entries == 601, "the later lines")
        await wait_for(pilot, lambda: "connected to" in screen_text(app), "the top in view")
        assert lines.scroll_y == 0
        # Back at the end, it follows again.
        lines.scroll_end(animate=False, immediate=True)
        run.transcript.add(Direction.CLIENT, "QUIT")
        await wait_for(pilot, lambda: "-> QUIT" in screen_text(app), "the newest line in view")
