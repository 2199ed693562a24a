"""A profile's signature in Compose: below ``-- `` when a new message starts, editable,
sent as written (to aiosmtpd on 127.0.0.1), and never added to a reopened draft."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from textual.pilot import Pilot
from textual.widgets import TextArea

from tests.smtpservers import ServerThread, Sink
from tests.ui_support import fill_draft, save_profile, type_text, wait_for, wait_for_run
from tuimail.drafts import DraftStore, SavedDraft
from tuimail.message import Draft
from tuimail.ui.app import TuimailApp

SIGNED = "\n\n-- \nAlice\nExample Corp\n"


def body(app: TuimailApp) -> str:
    return app.screen.query_one("#body", TextArea).text


async def signatures_read(pilot: Pilot[None]) -> None:
    app = pilot.app
    await wait_for(
        pilot,
        lambda: not any(w.group == "signature" and w.is_running for w in app.workers),
        "the signature to be read",
    )
    await pilot.pause()


async def test_a_new_message_starts_with_the_signature_and_sends_it_as_edited(
    servers: ServerThread,
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    save_profile(
        name="local", host="127.0.0.1", port=port, security="none", signature="Alice\nExample Corp"
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: body(app) == SIGNED, "the signature in the body")
        await pilot.click("#input-to")
        await type_text(pilot, "bob@example.test")
        await fill_draft(pilot, subject="Hello")
        area = app.screen.query_one("#body", TextArea)
        area.focus()
        area.move_cursor((0, 0))
        await type_text(pilot, "Hi Bob")
        assert body(app) == "Hi Bob" + SIGNED
        await pilot.press("ctrl+s")
        await wait_for_run(pilot, 1)
        message = message_from_bytes(sink.messages[0].content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        assert message.get_content().replace("\r\n", "\n") == "Hi Bob" + SIGNED
        # The next message starts signed again, once.
        await wait_for(pilot, lambda: body(app) == SIGNED, "the signature for the next message")
        await pilot.press("ctrl+n")
        await signatures_read(pilot)
        assert body(app) == SIGNED


async def test_a_reopened_draft_gets_no_second_signature() -> None:
    save_profile(name="local", host="127.0.0.1", port=2, security="none", signature="Alice")
    draft = Draft(to=["bob@example.test"], subject="Unfinished", body="Half a thought")
    DraftStore().save(SavedDraft(DraftStore.new_id(), "local", draft))
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: body(app) == "Half a thought", "the draft reopened")
        await signatures_read(pilot)
        assert body(app) == "Half a thought"
