"""A partly accepted send, in the app: which recipients wait, which are refused for good.

A 4xx refusal keeps the message queued for those recipients only; a 5xx one
is final. The compose status line says which was which, and the outbox keeps
the message for the deferred recipient alone, against a real server.
"""

from __future__ import annotations

from tests.smtpservers import ServerThread, Sink
from tests.ui_support import fill_draft, save_profile, static_text, wait_for_run
from tuimail.outbox import Outbox
from tuimail.profiles import Security
from tuimail.ui.app import TuimailApp


async def test_a_partly_accepted_send_says_who_waits_and_who_is_refused(
    servers: ServerThread,
) -> None:
    sink = Sink(
        rcpt_replies={
            "carol@example.test": "452 4.2.2 Mailbox full",
            "dave@example.test": "550 5.1.1 No such user",
        }
    )
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security=Security.NONE)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(
            pilot,
            to="bob@example.test, carol@example.test, dave@example.test",
            subject="Partly",
            body="Hello",
        )
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        status = static_text(app, "#send-status")
        assert run.outbox_state == "queued", status
        assert "queued for them only (F7): carol@example.test (452)" in status, status
        assert "refused for good: dave@example.test (550" in status, status
        assert [m.rcpt_tos for m in sink.messages] == [["bob@example.test"]]
        [waiting] = Outbox().entries()
        assert waiting.recipients == ["carol@example.test"]
