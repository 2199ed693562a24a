"""Identities: a profile's ``aliases`` offered in Compose's From, and the chosen one sent
(to aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

from tests.smtpservers import ServerThread, Sink
from tests.ui_support import fill_draft, save_profile, wait_for, wait_for_run
from tuimail.ui.app import TuimailApp
from tuimail.ui.widgets.address_field import AddressField


async def test_the_profiles_aliases_are_offered_in_from(servers: ServerThread) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    save_profile(
        name="local",
        host="127.0.0.1",
        port=port,
        security="none",
        aliases='Help Desk <help@example.test>, "Ops, night" <ops@example.test>',
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        sender = app.screen.query_one("#field-from", AddressField)
        await pilot.click("#input-from")
        await wait_for(pilot, lambda: sender.suggesting, "the identities under From")
        assert [s.address for s in sender.suggestions] == [
            "me@example.test",
            "help@example.test",
            "ops@example.test",
        ]
        await pilot.press("down", "down", "enter")
        assert sender.value == '"Ops, night" <ops@example.test>'
        await fill_draft(pilot, to="bob@example.test", subject="From ops", body="Hi")
        await pilot.press("ctrl+s")
        await wait_for_run(pilot, 1)
        assert sink.messages[0].mail_from == "ops@example.test"
