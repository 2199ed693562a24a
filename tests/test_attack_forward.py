"""Attacks on reply and forward of a received message (tuimail/replies.py) and on the
message/rfc822 part a forward carries (tuimail/message.py)."""

from __future__ import annotations

import time
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

import pytest

from tuimail.message import Draft, DraftInvalid, build_message
from tuimail.replies import forward, read_original

BASE = b"From: a@example.test\r\nTo: b@example.test\r\n"


def test_a_huge_part_header_does_not_stall_a_reply() -> None:
    """A 400 kB Content-Disposition took 11 s to read (30 s in an .eml): quoting skips it."""
    raw = BASE + (
        b"Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; "
        b'filename="' + b"a b " * 100_000 + b'"\r\n\r\nxx\r\n--B--\r\n'
    )
    started = time.monotonic()
    original = read_original(raw)
    assert time.monotonic() - started < 2
    assert "a header is longer than" in original.text


@pytest.mark.parametrize(
    "carried",
    [
        b"Subject: in\r\nMIME-Version: 1.0\r\n"
        + b"Content-Type: message/rfc822\r\n\r\n" * 3000
        + b"Subject: x\r\n\r\nhi\r\n",
        b'Subject: in\r\nContent-Type: multipart/mixed; boundary="==============="\r\n\r\n'
        b"--===============\r\nContent-Type: text/plain\r\n\r\nx\r\n--===============--\r\n",
        b"Subject: in\r\n\r\nbody\r\n--\r\n\r\nBcc: x@example.test\r\n.\r\nQUIT\r\n",
    ],
    ids=["nested-3000", "outer-boundary", "bcc-and-dot"],
)
def test_a_forwarded_message_stays_inside_its_part(tmp_path: Path, carried: bytes) -> None:
    """Held: the carried bytes go as the part's body; the outer message keeps two parts,
    no Bcc and one recipient, and reading it back takes no recursion into the bomb."""
    path = tmp_path / "fwd.eml"
    path.write_bytes(carried)
    original = read_original(BASE + b"Subject: orig\r\n\r\nhi\r\n")
    draft = forward(original, attachment=path)
    draft.from_address = "me@example.test"
    draft.to = ["c@example.test"]
    built = build_message(draft)
    wire = built.to_bytes()
    head, _, body = wire.partition(b"\r\n\r\n")
    assert b"\r\nBcc:" not in head and built.envelope_recipients == ["c@example.test"]
    boundary = message_from_bytes(head + b"\r\n\r\n", policy=email_policy.compat32).get_boundary()
    assert boundary is not None and boundary.encode() not in carried
    # Two parts: the text and the message, whatever lines the message holds.
    assert body.count(b"--" + boundary.encode() + b"\r\n") == 2
    assert body.count(b"--" + boundary.encode() + b"--") == 1
    assert b"Content-Type: message/rfc822" in body


@pytest.mark.parametrize(
    "carried",
    [
        b"Subject: in\r\n\r\nnul\0\r\n",
        b"Subject: in\r\n\r\nbare\rcr\r\n",
        b"Subject: " + b"x" * 1000 + b"\r\n\r\nhi\r\n",
    ],
    ids=["nul", "bare-cr", "line-over-998"],
)
def test_what_cannot_go_as_a_message_goes_as_base64(tmp_path: Path, carried: bytes) -> None:
    path = tmp_path / "fwd.eml"
    path.write_bytes(carried)
    built = build_message(
        Draft(from_address="me@example.test", to=["c@example.test"], attachments=[path])
    )
    wire = built.to_bytes()
    assert b"message/rfc822" not in wire and b"Content-Transfer-Encoding: base64" in wire
    assert all(len(line) <= 998 for line in wire.split(b"\r\n"))


def test_a_huge_subject_forwarded_is_cut_not_built_for_minutes() -> None:
    original = read_original(BASE + b"Subject: " + b"ab " * 300_000 + b"\r\n\r\nhi\r\n")
    draft = forward(original)
    assert len(draft.subject) < 1000
    with pytest.raises(DraftInvalid):  # no sender or recipient yet: refused, quickly
        build_message(draft)
