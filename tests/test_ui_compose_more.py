"""Compose beyond To, Subject and body: From, Reply-To and extra headers, and the layout.

From is shown and editable, the profile's address until the user types
another; Reply-To and extra headers wait behind "More" (ctrl+r or the button
beside From). Everything goes through the core that ``tuimail send`` uses, so
what reaches the server (an aiosmtpd Sink on 127.0.0.1) is checked, and what
the core refuses is shown beside its field in words. A draft and a queued
message made a draft again keep all three.
"""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, Label, Select, TextArea

from tests.smtpservers import ServerThread, Sink
from tests.ui_support import (
    fill_draft,
    open_mailboxes,
    paste,
    save_profile,
    screen_text,
    static_text,
    wait_for,
    wait_for_run,
    wait_for_saves,
)
from tuimail.drafts import DraftStore
from tuimail.outbox import Outbox
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.widgets.address_field import AddressField

WIDE = (120, 40)
NARROW = (80, 24)
TINY = (40, 12)


def from_value(app: TuimailApp) -> str:
    return app.screen.query_one("#input-from", Input).value


def field_error(app: TuimailApp, field: str) -> str:
    return app.screen.query_one(f"#field-{field}", AddressField).error


def headers_error(app: TuimailApp) -> str:
    label = app.screen.query_one("#headers-error", Label)
    return str(label.content) if label.has_class("-shown") else ""


async def set_from(pilot: Pilot[None], text: str) -> None:
    """Click into From, select what is there and paste ``text`` over it."""
    await pilot.click("#input-from")
    field = pilot.app.screen.query_one("#input-from", Input)
    field.value = ""  # as select-all and delete would
    await paste(pilot, text)


async def fill_more(pilot: Pilot[None], *, reply_to: str = "", headers: str = "") -> None:
    """Open the more fields with their key, then paste Reply-To and the extra headers."""
    app = pilot.app
    if not app.screen.has_class("-more"):
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.has_class("-more"), "the more fields")
    if reply_to:
        await pilot.click("#input-reply-to")
        await paste(pilot, reply_to)
    if headers:
        await pilot.click("#headers")
        await paste(pilot, headers)
    await pilot.pause()


# -- From ----------------------------------------------------------------------------


async def test_from_is_the_profiles_address_until_it_is_edited() -> None:
    save_profile(name="alpha", host="127.0.0.1", port=2599, security="none")
    save_profile(
        name="beta",
        host="127.0.0.1",
        port=2599,
        security="none",
        from_address="beta@example.test",
        display_name="Beta Desk",
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        select = app.screen.query_one("#profile", Select)
        select.value = "alpha"
        await wait_for(pilot, lambda: from_value(app) == "me@example.test", "alpha's From")
        assert "me@example.test" in screen_text(app)
        # Another profile, another From, while the user has not touched it.
        select.value = "beta"
        await wait_for(
            pilot, lambda: from_value(app) == '"Beta Desk" <beta@example.test>', "beta's From"
        )
        # Edited, it is the user's: a change of profile leaves it alone.
        await set_from(pilot, "Support <support@example.test>")
        select.value = "alpha"
        await pilot.pause()
        await pilot.pause()
        assert from_value(app) == "Support <support@example.test>"
        # Emptied and left, it is the profile's again (as its placeholder says).
        await set_from(pilot, "")
        await pilot.press("tab")
        await wait_for(pilot, lambda: from_value(app) == "me@example.test", "the refilled From")
        await set_from(pilot, "Support <support@example.test>")
        # A new message starts from the profile's address again.
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: from_value(app) == "me@example.test", "the profile's From")


async def test_from_reply_to_and_headers_reach_the_server(servers: ServerThread) -> None:
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        # The first screen is small: Reply-To and headers are behind "More".
        assert not app.screen.query_one("#more-fields").display
        assert "More" in str(app.screen.query_one("#more-toggle", Button).label)
        await set_from(pilot, "Help Desk <help@example.test>")
        await fill_draft(pilot, to="bob@example.test", subject="Ticket", body="Hello")
        await fill_more(
            pilot, reply_to="Replies <replies@example.test>", headers="X-Ticket: 42\nX-Team: ops"
        )
        # Hidden again, they are still sent, and the toggle says they are in use.
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app.screen.has_class("-more"), "the fields hidden")
        assert "in use" in str(app.screen.query_one("#more-toggle", Button).label)
        assert app.focused is not None and app.focused.id == "input-from"
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        assert run.report is not None and run.report.ok, static_text(app, "#send-status")
        [received] = sink.messages
        assert received.mail_from == "help@example.test"
        message = message_from_bytes(received.content, policy=policy.default)
        assert str(message["From"]) == "Help Desk <help@example.test>"
        assert str(message["Reply-To"]) == "Replies <replies@example.test>"
        assert (message["X-Ticket"], message["X-Team"]) == ("42", "ops")
        # The form is cleared for the next message: From is the profile's again.
        await wait_for(pilot, lambda: from_value(app) == "me@example.test", "the reset From")
        assert app.screen.query_one("#headers", TextArea).text == ""


async def test_a_bad_from_or_header_is_shown_beside_it_and_nothing_is_sent(
    servers: ServerThread,
) -> None:
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await set_from(pilot, "Help Desk <help@example.test")
        await pilot.press("tab")  # leaving From checks it
        await wait_for(pilot, lambda: field_error(app, "from") != "", "From's error")
        assert "help@example.test" in field_error(app, "from")
        await set_from(pilot, "help@example.test")
        await pilot.press("tab")
        await wait_for(pilot, lambda: field_error(app, "from") == "", "From accepted")

        await fill_draft(pilot, to="bob@example.test", subject="Hi", body="Hello")
        # An encoded word that decodes to a line break would inject a header: refused.
        injected = "X-Note: =?utf-8?q?a=0D=0ABcc:_evil@example.test?="
        await fill_more(pilot, headers=injected)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: headers_error(app) != "", "the header's error")
        assert "X-Note" in headers_error(app)
        assert "could inject extra headers" in headers_error(app)
        # A header that has a field of its own says which.
        headers = app.screen.query_one("#headers", TextArea)
        headers.text = "Bcc: evil@example.test"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "use the Bcc field" in headers_error(app), "the hint")
        headers.text = "no colon here"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "'Name: value'" in headers_error(app), "the form hint")
        # A Reply-To that is not an address.
        headers.text = ""
        app.screen.query_one("#input-reply-to", Input).value = "not an address (("
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: field_error(app, "reply-to") != "", "Reply-To's error")
        assert "fix the fields marked in red" in static_text(app, "#send-status")
        assert app.model.history.runs == [] or all(
            run.report is None for run in app.model.history.runs
        )
        assert sink.messages == []


# -- drafts and the outbox -----------------------------------------------------------


async def test_from_reply_to_and_headers_survive_a_saved_draft() -> None:
    save_profile(name="local", host="127.0.0.1", port=2599, security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await set_from(pilot, "Desk <desk@example.test>")
        await fill_draft(pilot, to="carol@example.test", subject="Later", body="Unfinished")
        await fill_more(pilot, reply_to="answers@example.test", headers="X-Ticket: 7")
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        screen.save_draft_now()
        await wait_for_saves(pilot)
    [saved] = DraftStore().list()
    assert saved.draft.from_address == "Desk <desk@example.test>"
    assert saved.draft.reply_to == ["answers@example.test"]
    assert saved.draft.headers == [("X-Ticket", "7")]

    # Opened again (a new start restores it): every field is back, the more fields shown.
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.pause()
        app.model.open_draft(saved)
        await wait_for(pilot, lambda: from_value(app) == "Desk <desk@example.test>", "From")
        screen = app.screen
        assert screen.has_class("-more")
        assert screen.query_one("#input-reply-to", Input).value == "answers@example.test"
        assert screen.query_one("#headers", TextArea).text == "X-Ticket: 7"
        # The user's From stays when the profile list is read again.
        assert isinstance(screen, ComposeScreen)
        screen.reload_profiles("local")
        await pilot.pause()
        assert from_value(app) == "Desk <desk@example.test>"


async def test_a_queued_message_made_a_draft_keeps_from_reply_to_and_headers(
    servers: ServerThread,
) -> None:
    sink = Sink(rcpt_replies={"bob@example.test": "451 4.3.0 Try again later"})
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await set_from(pilot, "Desk <desk@example.test>")
        await fill_draft(pilot, to="bob@example.test", subject="Queued", body="Body")
        await fill_more(pilot, reply_to="answers@example.test", headers="X-Ticket: 9")
        await pilot.press("ctrl+s")
        assert (await wait_for_run(pilot)).outbox_state == "queued"
        assert len(Outbox().entries()) == 1
        await open_mailboxes(pilot, "tab-outbox")
        await pilot.pause()
        await pilot.press("e")
        await wait_for(pilot, lambda: app.current_mode == "compose", "compose")
        await wait_for(pilot, lambda: from_value(app) == "Desk <desk@example.test>", "From")
        screen = app.screen
        assert screen.query_one("#input-reply-to", Input).value == "answers@example.test"
        assert screen.query_one("#headers", TextArea).text == "X-Ticket: 9"


# -- layout --------------------------------------------------------------------------


async def test_the_body_has_the_width_until_there_is_a_transcript(servers: ServerThread) -> None:
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(Sink()), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        body = app.screen.query_one("#body", TextArea)
        live = app.screen.query_one("#live")
        assert not live.display
        assert body.size.width > 100
        await fill_draft(pilot, to="bob@example.test", subject="Hi", body="Hello")
        await pilot.press("ctrl+s")
        await wait_for_run(pilot)
        await wait_for(pilot, lambda: live.display and live.size.width > 0, "the live pane")
        assert body.size.width < 70
        # The profile selector is read whole beside the transcript.
        assert "local · plain · 127.0.0.1:" in screen_text(app)
        assert "…" not in screen_text(app).splitlines()[1]


@pytest.mark.parametrize("size", [NARROW, TINY], ids=["80x24", "40x12"])
async def test_a_long_address_error_is_read_whole_on_narrow_terminals(
    size: tuple[int, int],
) -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=size) as pilot:
        await pilot.click("#input-to")
        await paste(pilot, "Bob <bob@example.test>, not an address at all ((")
        await pilot.press("tab")
        await wait_for(pilot, lambda: field_error(app, "to") != "", "the error")
        error = field_error(app, "to")
        assert len(error) > size[0]  # longer than a line: it has to wrap
        shown = " ".join(line.strip() for line in screen_text(app).splitlines())
        assert error in shown, screen_text(app)
