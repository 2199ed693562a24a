"""Helpers for the UI tests: waiting with deadlines, typing like a user, reading widgets.

Every wait polls a condition with a deadline and fails with what it was
waiting for; none of them asserts on how long anything took.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from textual import events
from textual.errors import NoWidget
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static, TabbedContent, TextArea

from tests.smtpservers import Sink
from tuimail.profiles import Profile, ProfileStore
from tuimail.ui.app import TuimailApp
from tuimail.ui.history import SentState, SessionRun
from tuimail.ui.screens.mailboxes import MailboxesScreen
from tuimail.ui.screens.monitor import MonitorScreen
from tuimail.ui.widgets.transcript_view import TranscriptView

#: How long a Pilot test waits for what the app will show. Passing tests wait
#: far less; a failing one takes this long, so it is generous: a CI machine
#: with every core busy (three workers and their servers on two cores) once
#: took over 15 s to redraw a footer.
DEADLINE = 30.0


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], object], what: str, timeout: float = DEADLINE
) -> None:
    """Let the app run until ``condition()`` is true; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await pilot.pause(0.02)


async def wait_for_sandbox(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, TuimailApp)
    await wait_for(pilot, lambda: app.model.sandbox is not None, "the embedded sandbox to start")
    await pilot.pause()


async def wait_for_run(pilot: Pilot[Any], count: int = 1) -> SessionRun:
    """The ``count``-th session of this app run, once it has finished."""
    app = pilot.app
    assert isinstance(app, TuimailApp)
    await wait_for(
        pilot,
        lambda: len(app.model.history.runs) >= count and app.model.history.runs[count - 1].finished,
        f"session {count} to finish",
    )
    await wait_for(pilot, lambda: not app.model.busy, "the send worker to end")
    await pilot.pause()
    return app.model.history.runs[count - 1]


async def open_monitor(pilot: Pilot[Any]) -> MonitorScreen:
    """Press F6 and wait for the monitor and its targets (it reads them in a thread)."""
    await pilot.press("f6")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MonitorScreen), "the monitor")
    screen = pilot.app.screen
    assert isinstance(screen, MonitorScreen)
    await wait_for(pilot, lambda: not screen.reading, "the monitor to read its targets")
    await pilot.pause()
    return screen


async def open_mailboxes(pilot: Pilot[Any], tab: str = "tab-outbox") -> MailboxesScreen:
    """Press F7, wait for the mailboxes and show ``tab``."""
    await pilot.press("f7")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MailboxesScreen), "F7")
    await show_tab(pilot, tab)
    return await wait_for_mailboxes(pilot)


async def show_tab(pilot: Pilot[Any], tab: str) -> None:
    """Make ``tab`` F7's current tab, with its table focused, and see that it stays.

    F7 focuses its first tab's table when it mounts, and a focus moves the tab
    strip to the focused table's tab when its event arrives; a tab chosen
    before that event is undone, sooner or later on a loaded machine (more
    so with the suite on parallel workers). So the tab is chosen once F7 is
    mounted, again if it was undone, until two looks a pause apart agree.
    """
    screen = pilot.app.screen
    assert isinstance(screen, MailboxesScreen), f"F7 is not shown: {screen!r}"
    await wait_for(pilot, lambda: screen.is_mounted, "F7 to mount")
    tabs = screen.query_one("#boxes", TabbedContent)
    table = screen.query_one(f"#{MailboxesScreen.TAB_TABLES[tab]}", DataTable)

    def shown() -> bool:
        return screen.current_tab == tab and pilot.app.focused is table

    looks = 0

    def settled() -> bool:
        nonlocal looks
        if not shown():
            looks = 0
            tabs.active = tab
            return False
        looks += 1
        return looks >= 2

    await wait_for(pilot, settled, f"F7's {tab} to be shown")


async def wait_for_mailboxes(pilot: Pilot[Any]) -> MailboxesScreen:
    """F7 once what it last asked of its stores is on screen (it reads them in threads)."""
    screen = pilot.app.screen
    assert isinstance(screen, MailboxesScreen), f"F7 is not shown: {screen!r}"
    await wait_for(pilot, lambda: screen.is_mounted, "F7 to mount")  # it starts reading then
    await wait_for(pilot, lambda: not screen.reading, "F7 to show its mailboxes")
    await pilot.pause()
    return screen


async def wait_for_saves(pilot: Pilot[Any]) -> None:
    """Every draft and settings write asked for so far is on disk (they run in a thread)."""
    app = pilot.app
    assert isinstance(app, TuimailApp)
    await asyncio.wait_for(app.model.saves.finish(), DEADLINE)
    await pilot.pause()


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Type ``text`` key by key into the focused widget (newlines press Enter)."""
    keys = ["enter" if char == "\n" else char for char in text]
    await pilot.press(*keys)


async def paste(pilot: Pilot[Any], text: str) -> None:
    """Paste ``text`` into the focused widget, as a terminal delivers a paste.

    A screen just pushed gives its first field the focus a moment later
    (later still on a loaded machine): the paste waits for a focus, with a deadline.
    """
    await wait_for(pilot, lambda: pilot.app.focused is not None, "a focus to paste into")
    pilot.app.post_message(events.Paste(text))  # the app hands it to the focused widget
    await pilot.pause()


async def click_shown(pilot: Pilot[Any], selector: str) -> None:
    """Click ``selector`` once it is laid out where the click lands.

    A widget just shown has no place on screen until the next layout; a click
    sent before that lands on whatever is there (more often on a loaded
    machine), so this waits for the widget to be on top at its place first.
    """
    widget = pilot.app.screen.query_one(selector)

    def placed() -> bool:
        region = widget.region
        if not region.area:
            return False
        try:
            return pilot.app.get_widget_at(region.x, region.y)[0] is widget
        except NoWidget:
            return False

    await wait_for(pilot, placed, f"{selector} to be shown")
    assert await pilot.click(selector), f"the click missed {selector}"


async def fill_draft(
    pilot: Pilot[Any], *, to: str = "", subject: str = "", body: str = "", typed: bool = False
) -> None:
    """Click into To, Subject and Body and paste into each (or type To key by key)."""
    if to:
        await pilot.click("#input-to")
        await (type_text if typed else paste)(pilot, to)
    if subject:
        await pilot.click("#subject")
        await paste(pilot, subject)
    if body:
        await pilot.click("#body")
        await paste(pilot, body)
    await pilot.pause()


def draft_values(app: TuimailApp) -> tuple[str, str, str]:
    screen = app.screen
    return (
        screen.query_one("#input-to", Input).value,
        screen.query_one("#subject", Input).value,
        screen.query_one("#body", TextArea).text,
    )


async def send_refused_by_config(pilot: Pilot[Any], words: str) -> None:
    """Send a draft from Compose: the app stores nothing, says ``words`` and keeps the draft."""
    app = pilot.app
    assert isinstance(app, TuimailApp)
    await fill_draft(pilot, to="bob@example.test", subject="Hello", body="Hi")
    await pilot.press("ctrl+s")
    run = await wait_for_run(pilot)
    assert run.outbox_state is SentState.NOT_STORED
    await wait_for(
        pilot, lambda: words in static_text(app, "#send-status"), "the refusal to be shown"
    )
    assert "Your draft is kept." in static_text(app, "#send-status")


def static_text(app: TuimailApp, selector: str) -> str:
    """The plain text a Static shows."""
    return str(app.screen.query_one(selector, Static).content)


def view_lines(view: TranscriptView) -> list[str]:
    """The screen lines a transcript view holds, each entry wrapped to the view's width."""
    return [strip.text.rstrip() for strip in view.log_widget.lines]


def screen_text(app: TuimailApp) -> str:
    """The current screen as plain text, line by line (what a user reads)."""
    # The compositor is private, but it is what export_screenshot renders from.
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def save_profile(**values: Any) -> Profile:
    values.setdefault("from_address", "me@example.test")
    profile = Profile(**values)
    ProfileStore().save(profile)
    return profile


@dataclass
class GatedSink(Sink):
    """A Sink that holds its answer to DATA until the test opens the gate.

    The session under test is certainly still running while the gate is
    closed, whatever the speed of the machine.
    """

    gate: threading.Event = field(default_factory=threading.Event)
    waiting: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.waiting.set()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.gate.wait, 30)
        return await super().handle_DATA(server, session, envelope)
