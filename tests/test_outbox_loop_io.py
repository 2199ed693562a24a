"""The outbox does its file work off the caller's event loop: a send never waits on the disk there.

The app sends through :meth:`Outbox.attempt` and flushes with
:meth:`Outbox.flush` on its UI loop; each attempt takes the message's lock,
reads its sidecar, its bytes and the profiles file, writes ``sending`` after the
354 and settles at the 250. Python's audit hooks (the recorder of
tests/test_ui_loop_io.py) see every ``open``, rename and removal with its
thread: real sends to a real server on 127.0.0.1, on this test's loop, must
make none of them on the loop's thread under the test's XDG directories.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.smtpservers import ServerThread, Sink
from tests.test_ui_loop_io import file_calls_on_this_thread
from tests.ui_support import save_profile
from tuimail.message import Draft, build_message
from tuimail.outbox import Outbox, Result, State


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
