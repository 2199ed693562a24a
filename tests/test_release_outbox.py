"""A captured message released to changed recipients goes through the outbox.

``tuimail inbox release ID --to ADDR`` sends the bytes as captured to the
given recipients alone, whoever the message's To and Cc name: the outbox
keeps it as a release (its envelope given explicitly), so a temporary
failure queues it, a flush delivers it once, and nothing else is sent.
The receiving server is a second, independent aiosmtpd (tests/smtpservers.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run_tuimail
from tests.smtpservers import ServerThread, Sink
from tests.test_cli_inbox import mail, serving, smtplib_send
from tests.test_sandbox_port import write_config
from tuimail import paths
from tuimail.message import DraftInvalid, StoredMessageInvalid, check_stored_message
from tuimail.profiles import Profile, Security

CAPTURED = (
    b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nCc: carol@example.test\r\n"
    b"Subject: release me\r\nDate: Fri, 04 Dec 2026 12:00:00 +0000\r\n"
    b"Message-ID: <release.me@example.test>\r\n\r\nthe text\r\n"
)


def test_a_release_to_changed_recipients_is_queued_retried_and_delivered_once(
    isolated_dirs: Path, servers: ServerThread
) -> None:
    write_config("[outbox]\nfirst_delay = 0\njitter = 0\n")
    sink = Sink(data_reply="451 4.3.0 Try again later")
    other = servers.smtp(sink)
    message = mail("release me")
    message["Cc"] = "carol@example.test"
    with serving() as port:
        smtplib_send(port, message)
        found = run_tuimail("inbox", "wait", "--subject", "release me", "--timeout", "10")
        key = found.stdout.split()[0]
    captured = next((paths.data_dir() / "sandbox" / "maildir" / "new").iterdir()).read_bytes()
    # To names bob, Cc carol; released to dave alone. The server says 451 after the dot.
    released = run_tuimail(
        "inbox", "release", key, "--server", f"127.0.0.1:{other}", "--security", "none",
        "--to", "dave@example.test",
    )  # fmt: skip
    assert released.returncode == 75, released.stdout + released.stderr
    assert "queued for retry" in released.stderr
    assert "not queued" not in released.stderr
    assert not sink.messages
    queued = json.loads(run_tuimail("outbox", "list", "--json").stdout)
    assert len(queued) == 1 and queued[0]["recipients"] == ["dave@example.test"]
    # The server takes it now: the flush delivers it, once, to dave alone.
    sink.data_reply = None
    flushed = run_tuimail("outbox", "flush", "--all")
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert len(sink.messages) == 1
    got = sink.messages[0]
    assert got.rcpt_tos == ["dave@example.test"]
    assert got.mail_from == "alice@example.test"
    assert got.content == captured.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    # Nothing left to send: another flush sends nothing more.
    again = run_tuimail("outbox", "flush", "--all")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(sink.messages) == 1
    assert json.loads(run_tuimail("outbox", "list", "--json").stdout) == []


def test_only_a_release_record_leaves_out_the_to_and_cc_check(isolated_dirs: Path) -> None:
    """The outbox's check of stored To/Cc against the envelope still holds for composed mail."""
    from tuimail.outbox import Outbox, Queued, _outgoing_from, release_outgoing

    outgoing = release_outgoing(CAPTURED, ["dave@example.test"])
    assert outgoing.envelope_recipients == ["dave@example.test"]
    assert outgoing.to_bytes() == CAPTURED
    with pytest.raises(StoredMessageInvalid, match=r"bob@example\.test"):
        check_stored_message(CAPTURED, ["dave@example.test"])
    entry = Queued(
        key="k", message_id="<release.me@example.test>", sender="alice@example.test",
        recipients=["dave@example.test"], profile={}, created=0.0,
    )  # fmt: skip
    with pytest.raises(StoredMessageInvalid):
        _outgoing_from(entry, CAPTURED)  # composed mail: refused
    entry.explicit_envelope = True
    assert _outgoing_from(entry, CAPTURED).envelope_recipients == ["dave@example.test"]
    # What is kept on disk says so, and an older record without the key is not a release.
    assert Queued.from_json(entry.to_json()).explicit_envelope is True
    older = entry.to_json()
    del older["explicit_envelope"]
    assert Queued.from_json(older).explicit_envelope is False
    # Every other check holds for a release: a Bcc header is refused as stored.
    with pytest.raises(StoredMessageInvalid, match="Bcc"):
        _outgoing_from(entry, b"Bcc: eve@example.test\r\n" + CAPTURED)
    with pytest.raises(DraftInvalid):
        release_outgoing(CAPTURED, ["not an address"])
    queued = Outbox().enqueue(_profile(), outgoing, explicit_envelope=True)
    assert queued.explicit_envelope and queued.recipients == ["dave@example.test"]


def _profile() -> Profile:
    return Profile(name="real", host="127.0.0.1", port=2525, security=Security.NONE)
