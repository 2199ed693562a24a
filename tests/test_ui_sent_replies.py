"""Reply, reply to all and forward from F7's Sent tab: a message really sent (to aiosmtpd
on 127.0.0.1) answered in Compose, threaded, the user's own address left out."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from tests.smtpservers import ServerThread, Sink
from tests.ui_support import (
    fill_draft,
    open_mailboxes,
    save_profile,
    wait_for,
    wait_for_run,
)
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.screens.forward_dialog import ForwardDialog
from tuimail.ui.widgets.address_field import AddressField


def value(app: TuimailApp, field: str) -> str:
    return app.screen.query_one(f"#field-{field}", AddressField).value


async def answer(pilot: Pilot[None], key: str) -> ComposeScreen:
    await open_mailboxes(pilot, "tab-sent")
    await pilot.press(key)
    app = pilot.app
    if key == "f":  # inline or attached: Inline has the focus
        await wait_for(pilot, lambda: isinstance(app.screen, ForwardDialog), "the choice")
        await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "Compose")
    screen = app.screen
    assert isinstance(screen, ComposeScreen)
    await wait_for(
        pilot,
        lambda: screen.query_one("#subject", Input).value.startswith(("Re:", "Fwd:")),
        "the answer in Compose",
    )
    return screen


async def test_reply_reply_all_and_forward_from_sent(servers: ServerThread) -> None:
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="Bob <bob@example.test>", subject="Plans", body="Lunch at noon?")
        app.screen.query_one("#field-cc", AddressField).value = "carol@example.test"
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot, 1)
        assert run.report is not None and run.report.delivery is not None
        message_id = run.report.delivery.message_id

        screen = await answer(pilot, "a")
        assert screen.query_one("#subject", Input).value == "Re: Plans"
        assert "bob@example.test" in value(app, "to")
        assert "me@example.test" not in value(app, "to")
        headers = screen.query_one("#headers", TextArea).text
        assert f"In-Reply-To: {message_id}" in headers
        assert "> Lunch at noon?" in screen.query_one("#body", TextArea).text

        screen = await answer(pilot, "g")
        assert "bob@example.test" in value(app, "to") + value(app, "cc")
        assert "carol@example.test" in value(app, "cc")
        assert "me@example.test" not in value(app, "to") + value(app, "cc")

        screen = await answer(pilot, "f")
        assert screen.query_one("#subject", Input).value == "Fwd: Plans"
        assert value(app, "to") == ""
        assert "Lunch at noon?" in screen.query_one("#body", TextArea).text
