"""The outbox does its file work off the caller's event loop: a send never waits on the disk there.

The app sends through :meth:`Outbox.attempt` and flushes with
:meth:`Outbox.flush` on its UI loop; each attempt takes the message's lock,
reads its sidecar, its bytes and the profiles file, writes ``sending`` after the
354 and settles at the 250. Python's audit hooks (the recorder of
tests/test_ui_loop_io.py) see every ``open``, rename and removal with its
thread: real sends to a real server on 127.0.0.1, on this test's loop and
from the app under Pilot, must make none of them on the loop's thread under
the test's XDG directories. The file steps keep their order in their own
thread, and a cancelled attempt still lets go of its lock after its writes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.smtpservers import Reply, ScriptedServer, ServerThread, Sink
from tests.test_ui_loop_io import file_calls_on_this_thread
from tests.ui_support import fill_draft, save_profile, wait_for_run
from tuimail.message import Draft, build_message
from tuimail.outbox import Outbox, Result, State, Stuck
from tuimail.profiles import Profile, Security
from tuimail.ui.app import TuimailApp
from tuimail.ui.history import SentState


def draft(to: str) -> Draft:
    return Draft(from_address="me@example.test", to=[to], subject=f"For {to}", body="Hi")


async def test_sends_and_flushes_touch_no_file_on_the_loop(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    sink = Sink(rcpt_replies={"later@example.test": "451 4.3.0 Try again later"})
    port = servers.smtp(sink)
    profile = save_profile(name="local", host="127.0.0.1", port=port, security="none")
    outbox = Outbox()
    composed = build_message(draft("bob@x.test"))
    first = await asyncio.to_thread(outbox.enqueue, profile, composed)
    for to in ("carol@x.test", "later@example.test"):
        await asyncio.to_thread(outbox.enqueue, profile, build_message(draft(to)))

    with file_calls_on_this_thread(isolated_dirs) as log:
        # One send as Compose makes it: the message just queued, the bytes in hand.
        sent = await outbox.attempt(first.key, outgoing=composed)
        # The timed flush: one delivered, one refused for now (settled as queued).
        flushed = await outbox.flush()
    assert log.calls == []

    assert sent.result is Result.SENT, sent.detail
    assert sorted(o.result for o in flushed) == [Result.QUEUED, Result.SENT]
    [left] = await asyncio.to_thread(outbox.entries)
    assert left.state is State.QUEUED and left.recipients == ["later@example.test"]
    assert len(await asyncio.to_thread(outbox.sent)) == 2
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == ["bob@x.test", "carol@x.test"]


async def test_a_send_from_compose_and_the_timed_flush_touch_no_file_on_the_loop(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    """The app's own paths: Ctrl+S through the outbox, then the minute's flush."""
    sink = Sink(rcpt_replies={"later@example.test": "451 4.3.0 Try again later"})
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)  # reads profiles, config and themes: before the loop
    with file_calls_on_this_thread(isolated_dirs) as log:
        async with app.run_test(size=(120, 40)) as pilot:
            await fill_draft(pilot, to="later@example.test", subject="Later", body="Hi")
            await pilot.press("ctrl+s")
            run = await wait_for_run(pilot)
            assert run.outbox_state is SentState.QUEUED
            sink.rcpt_replies.clear()
            await asyncio.to_thread(Outbox().requeue, run.outbox_key)  # due now
            await app.flush_due().wait()
            await pilot.press("ctrl+q")
    assert log.calls == []
    assert [m.rcpt_tos for m in sink.messages] == [["later@example.test"]]
    assert await asyncio.to_thread(Outbox().entries) == []


async def test_a_cancelled_attempt_lets_go_of_its_lock_after_its_writes(
    servers: ServerThread,
) -> None:
    """Cancelled while the final dot waits: ``sending`` is on disk, and the lock is free."""
    script = ScriptedServer({".": Reply(None, hold=True)})
    profile = Profile(
        name="held", host="127.0.0.1", port=servers.scripted(script), security=Security.NONE
    )
    outbox = Outbox()
    queued = await asyncio.to_thread(outbox.enqueue, profile, build_message(draft("bob@x.test")))
    attempt = asyncio.create_task(outbox.attempt(queued.key))
    assert await asyncio.to_thread(script.final_dot.wait, 10), "the data never went out"
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    # The next attempt takes the lock at once and finds the send cut short.
    again = await outbox.attempt(queued.key)
    assert again.result is Result.POSSIBLY_DELIVERED, again.detail
    assert again.stuck is Stuck.CRASHED_WHILE_SENDING
