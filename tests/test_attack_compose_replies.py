"""Attack review of reply and reply-all: a profile's aliases (its other From addresses)
are the user's own addresses too. A reply-all never copies the user to an alias, a reply
to a message sent from an alias goes to its recipients (not back to the alias), and the
alias a message came to answers it. F5 (the sandbox) and F7 (Sent), through real servers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input

from tests.smtpservers import ServerThread, Sink
from tests.test_sandbox_port import free_port, write_config
from tests.test_ui_inbox import open_first, plain, send, started
from tests.test_ui_sent_replies import answer, value
from tests.ui_support import fill_draft, save_profile, wait_for, wait_for_run
from tuimail.message import build_message
from tuimail.profiles import Profile
from tuimail.replies import forward, own_addresses_of, read_original, reply, reply_all
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.widgets.address_field import AddressField

ALIASES = "Help Desk <help@example.test>, ops@example.test"


def test_own_addresses_are_every_profiles_from_and_aliases() -> None:
    profiles = [
        Profile(name="work", host="h", from_address="me@example.test", aliases=ALIASES),
        Profile(name="blank", host="h"),
    ]
    own = own_addresses_of(profiles)
    assert own == {"me@example.test", "help@example.test", "ops@example.test"}
    captured = (
        b"From: Ann <ann@example.test>\r\nTo: help@example.test, carol@example.test\r\n"
        b"Cc: OPS@example.test\r\nSubject: Printer\r\nMessage-ID: <p@example.test>\r\n\r\nhi\r\n"
    )
    draft = reply_all(read_original(captured), own)
    assert draft.to == ["Ann <ann@example.test>"]
    assert draft.cc == ["carol@example.test"]
    assert draft.from_address == "help@example.test"


async def compose_on(pilot: Pilot[None]) -> ComposeScreen:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "Compose")
    screen = app.screen
    assert isinstance(screen, ComposeScreen)
    await wait_for(
        pilot, lambda: screen.query_one("#subject", Input).value.startswith("Re:"), "the reply"
    )
    return screen


async def test_f5_reply_all_to_a_message_sent_to_an_alias(isolated_dirs: Path) -> None:
    write_config(f"[sandbox]\nport = {free_port()}\n")
    save_profile(name="local", host="127.0.0.1", port=2, security="none", aliases=ALIASES)
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        port = await started(pilot)
        message = plain(
            "Ann <ann@example.test>", "help@example.test, carol@example.test", "Printer"
        )
        message["Cc"] = "ops@example.test"
        await asyncio.to_thread(send, port, message)
        await open_first(pilot, 1)
        await pilot.press("R")
        screen = await compose_on(pilot)
        to_and_cc = value(app, "to") + " " + value(app, "cc")
        assert "ann@example.test" in value(app, "to")
        assert "carol@example.test" in value(app, "cc")
        assert "help@example.test" not in to_and_cc and "ops@example.test" not in to_and_cc
        assert "help@example.test" in screen.query_one("#field-from", AddressField).value


async def test_f7_reply_to_a_message_sent_from_an_alias_goes_to_its_recipients(
    servers: ServerThread,
) -> None:
    sink = Sink()
    save_profile(
        name="local", host="127.0.0.1", port=servers.smtp(sink), security="none", aliases=ALIASES
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="Bob <bob@example.test>", subject="Plans", body="Noon?")
        app.screen.query_one("#field-from", AddressField).value = "Help Desk <help@example.test>"
        app.screen.query_one("#field-cc", AddressField).value = "carol@example.test"
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot, 1)
        assert run.report is not None and run.report.delivery is not None
        assert sink.messages[0].mail_from == "help@example.test"

        await answer(pilot, "a")
        assert "bob@example.test" in value(app, "to")
        assert "help@example.test" not in value(app, "to")
        assert "help@example.test" in value(app, "from")  # the thread goes on from the alias

        await answer(pilot, "g")
        to_and_cc = value(app, "to") + " " + value(app, "cc")
        assert "bob@example.test" in to_and_cc and "carol@example.test" in to_and_cc
        assert "help@example.test" not in to_and_cc


def test_a_subject_with_an_open_encoded_word_gives_a_reply_that_can_be_sent() -> None:
    """``=?utf-8?q?=0A`` (never closed): the email package reads a line break in it."""
    captured = (
        b"From: Ann <ann@example.test>\r\nTo: me@example.test\r\n"
        b"Subject: Lunch =?utf-8?q?=0A\r\nMessage-ID: <l@example.test>\r\n\r\nhi\r\n"
    )
    original = read_original(captured)
    for draft in (reply(original, {"me@example.test"}), forward(original)):
        draft.from_address = "me@example.test"
        draft.to = draft.to or ["bob@example.test"]
        built = build_message(draft)  # raised DraftInvalid: the Subject decodes to a LF
        assert built.message["Subject"] in ("Re: Lunch", "Fwd: Lunch")
