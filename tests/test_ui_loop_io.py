"""The UI loop touches no file of tuimail's: drafts, mailboxes, settings and profiles are read
and written in threads, so a slow or hung disk never freezes the keys.

Python's audit hooks (:func:`sys.addaudithook`) report every ``open``,
directory listing and rename or removal, with the thread it happened on. The
app runs under Pilot on this test's event loop; the test records the calls made
on that loop's thread under the test's own XDG directories (Python's imports
and Textual's CSS files live elsewhere) while it drives Compose, F7, a theme
change, Accounts, Monitor and quitting, and expects none. Its own checks of the files
run in threads too.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, TabbedContent

from tests.conftest import SecretService
from tests.oauth_support import BrowserUser, OAuthProviderServer
from tests.smtpservers import ServerThread, Sink
from tests.ui_support import (
    fill_draft,
    save_profile,
    type_text,
    wait_for,
    wait_for_mailboxes,
    wait_for_saves,
)
from tuimail.drafts import DraftStore, SavedDraft
from tuimail.message import Draft, build_message
from tuimail.outbox import Outbox
from tuimail.probe_history import ProbeHistory
from tuimail.ui import screens, settings
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.accounts import AccountsScreen
from tuimail.ui.screens.mailboxes import MailboxesScreen
from tuimail.ui.screens.monitor import MonitorScreen

#: Audit events that touch the file system (``os.stat`` raises none).
FILE_EVENTS = frozenset(
    {"open", "os.listdir", "os.scandir", "os.remove", "os.rename", "os.mkdir", "os.rmdir"}
    | {"os.chmod", "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile"}
)


@dataclass
class LoopFileCalls:
    """File calls made on one thread (the event loop's) under one directory."""

    under: str
    thread: int = 0
    calls: list[tuple[str, str]] = field(default_factory=list)

    def hear(self, event: str, args: tuple[object, ...]) -> None:
        if event not in FILE_EVENTS or threading.get_ident() != self.thread or not args:
            return
        target = args[0]
        if isinstance(target, (str, bytes, os.PathLike)):
            path = os.fsdecode(target)
            if os.path.abspath(path).startswith(self.under):
                self.calls.append((event, path))


_listening: list[LoopFileCalls] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    for log in _listening:
        log.hear(event, args)


@contextmanager
def file_calls_on_this_thread(under: Path) -> Iterator[LoopFileCalls]:
    """Record file calls on the calling thread under ``under``.

    A hook cannot be removed once added: one hook is added for the whole
    run, and it records only while a test listens.
    """
    if not getattr(_audit, "added", False):
        sys.addaudithook(_audit)
        _audit.added = True  # type: ignore[attr-defined]
    log = LoopFileCalls(str(under.resolve()) + os.sep, threading.get_ident())
    _listening.append(log)
    try:
        yield log
    finally:
        _listening.remove(log)


@pytest.fixture(autouse=True)
def quick_drafts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screens.compose, "DRAFT_SAVE_DELAY", 0.1)


async def stores_with_something_in_each(servers: ServerThread) -> None:
    """A profile, a sent message, a queued one and a saved draft: F7 has files to read."""
    sink = Sink(rcpt_replies={"later@example.test": "451 4.3.0 Try again later"})
    profile = save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    outbox = Outbox()
    for to in ("bob@example.test", "later@example.test"):
        draft = Draft(from_address="me@example.test", to=[to], subject=f"For {to}", body="Hi")
        outbox.enqueue(profile, build_message(draft))
    await outbox.flush()
    assert [q.state.value for q in outbox.entries()] == ["queued"]
    assert len(outbox.sent()) == 1
    DraftStore().save(SavedDraft(DraftStore.new_id(), "local", Draft(subject="Earlier")))


async def drafts_on_disk() -> list[str]:
    return [d.draft.subject for d in await asyncio.to_thread(DraftStore().list)]


async def test_the_ui_loop_reads_and_writes_no_file_of_tuimail(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    await stores_with_something_in_each(servers)
    app = TuimailApp(start_sandbox=False)  # reads profiles, config and themes: before the loop
    with file_calls_on_this_thread(isolated_dirs) as log:
        async with app.run_test(size=(120, 40)) as pilot:
            # The draft left in Compose is read (in a thread) and reopened; a new message
            # puts it aside (a write, in the same thread).
            subject = app.screen.query_one("#subject", Input)
            await wait_for(pilot, lambda: subject.value == "Earlier", "the draft reopened")
            await pilot.press("ctrl+n")
            await fill_draft(pilot, to="carol@example.test", subject="Typed", body="Words")
            await wait_for_saves(pilot)
            assert "Typed" in await drafts_on_disk()

            await pilot.press("f7")
            await wait_for(pilot, lambda: isinstance(app.screen, MailboxesScreen), "F7")
            screen = await wait_for_mailboxes(pilot)
            assert screen.query_one("#outbox-table", DataTable).row_count == 1
            for tab in ("tab-outbox", "tab-drafts", "tab-sent"):
                screen.query_one("#boxes", TabbedContent).active = tab
                await wait_for_mailboxes(pilot)
            sent = screen.query_one("#sent-table", DataTable)
            assert sent.row_count == 1
            sent.move_cursor(row=0)
            await wait_for_mailboxes(pilot)

            app.theme = "tuimail-paper"
            await pilot.press("f4")
            await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "Accounts")
            await wait_for(
                pilot, lambda: "local" in app.screen.query_one("#profiles", DataTable).rows, "rows"
            )

            await pilot.press("f6")  # reads targets.toml and the history; probes; saves it
            await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), "Monitor")
            monitor = app.screen
            assert isinstance(monitor, MonitorScreen)
            await wait_for(pilot, lambda: not monitor.reading and monitor.latest, "a probe")

            await pilot.press("f2")
            await pilot.click("#subject")
            await pilot.press("end")
            await type_text(pilot, " again")
            await pilot.press("ctrl+n")  # saves the draft, starts a new one
            await pilot.press("ctrl+q")  # the last save lands before the app stops
    assert log.calls == []
    assert sorted(await drafts_on_disk()) == ["Earlier", "Typed again"]
    assert settings.load_state()["theme"] == "tuimail-paper"
    assert ProbeHistory.load().targets  # written in the writing thread, before the app stopped


async def test_saves_in_flight_land_in_order_and_the_last_one_before_the_app_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many draft saves queued at once: the file ends with the last content, written on quit."""
    from textual.widgets import TextArea

    from tuimail.ui.screens.compose import ComposeScreen

    monkeypatch.setattr(screens.compose, "DRAFT_SAVE_DELAY", 600)  # only quitting saves
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="dan@example.test", subject="Versions")
        compose = app.screen
        assert isinstance(compose, ComposeScreen)
        body = compose.query_one("#body", TextArea)
        for version in range(40):  # each save queued before the last one was written
            body.text = f"version {version}"
            compose._draft_dirty = True
            compose.save_draft_now()
        body.text = "the last words"
        await pilot.pause()  # the edit is seen; no timer will save it
        await pilot.press("ctrl+q")
    [saved] = DraftStore().list()
    assert saved.draft.body == "the last words"


async def test_signing_in_and_a_screenshot_touch_no_file_on_the_ui_loop(
    secret_service: SecretService,
    oauth_provider: OAuthProviderServer,
    isolated_dirs: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The account dialog's OAuth save and Sign in (keyring, network, the loopback
    listener) and the palette's Screenshot (a file in exports/) run off the loop."""
    from textual.command import CommandPalette
    from textual.widgets import Label

    from tests.test_ui_oauth_sign_in import NAME, edit_account, oauth_settings, press_button
    from tests.ui_support import screen_text
    from tuimail import paths
    from tuimail.oauth_account import OAuthSecrets
    from tuimail.ui.screens.dialogs import SignInDialog

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(name, raising=False)
    OAuthSecrets().forget(NAME)  # the Secret Service runs for the whole session
    save_profile(
        name=NAME, host="127.0.0.1", port=2599, security="none", allow_plaintext_auth=True,
        username=oauth_provider.login, **oauth_settings(oauth_provider),
    )  # fmt: skip
    app = TuimailApp(start_sandbox=False)
    with file_calls_on_this_thread(isolated_dirs) as log:
        async with app.run_test(size=(120, 40)) as pilot:
            dialog = await edit_account(pilot)
            await press_button(pilot, "#sign-in")
            await wait_for(pilot, lambda: isinstance(app.screen, SignInDialog), "the sign-in")
            signing_in = app.screen
            assert isinstance(signing_in, SignInDialog)
            await wait_for(pilot, lambda: signing_in.address, "the address")
            user = BrowserUser(oauth_provider)
            redirect = await asyncio.to_thread(user.sign_in, signing_in.address)
            await asyncio.to_thread(user.visit, redirect)
            status = dialog.query_one("#oauth-status", Label)
            await wait_for(
                pilot,
                lambda: app.screen is dialog and "Signed in" in str(status.content),
                "Signed in",
            )
            await press_button(pilot, "#save")
            await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "the save")

            await pilot.press("ctrl+p")
            await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
            await type_text(pilot, "screenshot")
            await wait_for(pilot, lambda: "Screenshot" in screen_text(app), "the command")
            await pilot.press("enter")
            await wait_for(
                pilot,
                lambda: any(n.title == "Screenshot" for n in app._notifications),
                "the screenshot",
            )
            await pilot.press("ctrl+q")
    assert log.calls == []
    assert len(list(paths.exports_dir().glob("*.svg"))) == 1
    OAuthSecrets().forget(NAME)
