"""The live transcript seen from outside: views that wait while hidden, and modes entered late.

Real parts only: the app runs headless with Pilot, and a session's
transcript is fed through the model's own seam (``begin`` and ``live_feed``),
as the app's send worker feeds it.
"""

from __future__ import annotations

import pytest

from tests.ui_support import wait_for
from tuimail.transcript import Direction, EventKind, Transcript
from tuimail.ui.app import TuimailApp
from tuimail.ui.history import RunKind, RunStatus, SessionRun
from tuimail.ui.screens.accounts import AccountsScreen
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.widgets.transcript_view import TranscriptView

WIDE = (120, 40)


def live_session(app: TuimailApp) -> SessionRun:
    """A send session the app knows about, fed live through the model."""
    run = SessionRun(RunKind.SEND, "sandbox", "bob@example.test", Transcript(title="send"))
    app.model.begin(run)
    run.transcript.subscribe(app.model.live_feed(run))
    run.transcript.event(EventKind.CONNECTED, "connected to 127.0.0.1:2525")
    return run


async def test_a_hidden_view_catches_up_when_its_screen_shows_again() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        live = app.screen.query_one("#live-view", TranscriptView)
        run = live_session(app)
        assert run.status is RunStatus.RUNNING
        await wait_for(pilot, lambda: live.shown_entries == 1, "the first line on Compose")

        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "Accounts")
        for number in range(120):
            run.transcript.add(Direction.SERVER, f"250-hidden line {number}")
        await wait_for(pilot, lambda: app.model.live_backlog == 0, "the lines to be announced")
        await wait_for(pilot, lambda: app.is_idle or live.backlog == 120, "Accounts to settle")
        assert live.backlog == 120, "a view whose screen is hidden draws nothing"

        await pilot.press("f2")
        assert isinstance(app.screen, ComposeScreen)
        await wait_for(pilot, lambda: live.backlog == 0, "Compose to catch up")
        assert live.shown_entries == len(run.transcript) == 121


@pytest.mark.parametrize("mode", ["accounts", "transcript", "sandbox", "monitor", "mailboxes"])
async def test_a_mode_switched_to_as_the_app_stops_is_no_error(mode: str) -> None:
    """Its screen mounts while the app stops: its views never run and follow nothing."""
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE):
        app.switch_mode(mode)  # not awaited: the app stops while the screen mounts
    assert app.return_code in (0, None)


async def test_a_mode_switched_to_at_start_up_follows_live_sessions() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await app.switch_mode("accounts")
        view = app.screen.query_one("#test-view", TranscriptView)
        assert view in app.model.live_views
        await pilot.press("f2")
        assert isinstance(app.screen, ComposeScreen)
