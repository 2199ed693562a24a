"""A stored outbox message is checked again before it goes anywhere.

The bytes were checked when built, but the file on disk can be changed, or left
by an older version that trusted the interpreter's folding. A stored message
whose headers decode to a line break, gained a header, or names a recipient
outside its envelope fails alone, with the reason; the rest of the outbox is sent.
"""

from __future__ import annotations

import email
from pathlib import Path

import pytest

from tests.cli_helpers import run_tuimail
from tests.smtpservers import ServerThread, Sink
from tuimail.message import Draft, build_message
from tuimail.outbox import Outbox
from tuimail.profiles import Profile, Security

TAMPERINGS = {
    "encoded line break": (
        b"Subject: tampered\r\n",
        b"Subject: =?utf-8?q?Invoice=0D=0AX-Injected:_yes?=\r\n",
    ),
    "second Subject": (b"Subject: tampered\r\n", b"Subject: tampered\r\nSubject: again\r\n"),
    "Bcc header": (b"Subject: tampered\r\n", b"Subject: tampered\r\nBcc: hidden@example.test\r\n"),
    "recipient outside the envelope": (
        b"To: b@example.test\r\n",
        b"To: b@example.test, c@evil.test\r\n",
    ),
}


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_a_tampered_stored_message_fails_alone(
    tampering: str, servers: ServerThread, isolated_dirs: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    local = Profile(name="local", host="127.0.0.1", port=port, security=Security.NONE, timeout=5.0)
    outbox = Outbox()
    drafts = [Draft(from_address="a@example.test", to=["b@example.test"], subject=s, body="hi\n")
              for s in ("tampered", "fine")]  # fmt: skip
    bad, good = (outbox.enqueue(local, build_message(d)) for d in drafts)
    stored = outbox.queue_dir / "new" / bad.key
    before, after = TAMPERINGS[tampering]
    assert before in stored.read_bytes()
    stored.write_bytes(stored.read_bytes().replace(before, after, 1))

    flushed = run_tuimail("outbox", "flush")
    assert "Traceback" not in flushed.stderr, flushed.stderr
    assert [email.message_from_bytes(m.content)["Subject"] for m in sink.messages] == ["fine"]
    [left] = outbox.entries()
    assert left.key == bad.key and left.state.value == "failed"
    assert "stored message" in left.last_error, left.last_error
    assert good.key not in [e.key for e in outbox.entries()]


def test_a_fifo_in_the_outbox_or_sent_folder_never_hangs_a_command(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    """Files in tuimail's own folders are read as bounded regular files, never waited on."""
    import os

    sink = Sink()
    port = servers.smtp(sink)
    local = Profile(name="local", host="127.0.0.1", port=port, security=Security.NONE, timeout=5.0)
    outbox = Outbox()
    draft = Draft(from_address="a@example.test", to=["b@example.test"], subject="s", body="b")
    queued = outbox.enqueue(local, build_message(draft))
    sidecar = outbox.meta_dir / f"{queued.key}.json"
    sidecar.unlink()
    os.mkfifo(sidecar)  # nobody writes: reading it would never end
    listed = run_tuimail("outbox", "list", "--json", timeout=30)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    flushed = run_tuimail("outbox", "flush", timeout=30)
    assert "Traceback" not in flushed.stderr and sink.messages == [], flushed.stderr
    os.mkfifo(outbox.sent_dir / "new" / "stray")
    assert outbox.sent() == []
