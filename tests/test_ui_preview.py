"""One preview of a stored message for the sandbox inbox (F5) and the sent mailbox (F7).

Messages are built by the core as a send builds them, attachments read from
real files; the sent preview is read through a real outbox.
"""

from __future__ import annotations

from pathlib import Path

from tuimail.message import Draft, build_message
from tuimail.outbox import Outbox
from tuimail.ui.outside import MAX_BODY_CHARS, message_preview
from tuimail.ui.screens.mailboxes import sent_preview


def long_message_with_an_attachment(tmp_path: Path) -> bytes:
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 not really")
    draft = Draft(
        from_address="alice@example.test",
        to=["bob@example.test"],
        subject="Numbers",
        body="x" * (MAX_BODY_CHARS + 500),
        attachments=[report],
    )
    # A hostile client's header: tuimail never builds one, a sandbox receives it.
    return build_message(draft).to_bytes().replace(b"Subject: Numbers", b"Subject: \x1b[31m")


def test_a_preview_shows_headers_a_cut_body_and_the_attachments(tmp_path: Path) -> None:
    raw = long_message_with_an_attachment(tmp_path)
    text = message_preview(raw, full_copy="see the Maildir", envelope="a@x.test → b@y.test")
    lines = text.split("\n")
    assert lines[:2] == ["From: alice@example.test", "To: bob@example.test"]
    assert "Subject: \\x1b[31m" in lines  # a header's controls are escaped
    assert "Envelope: a@x.test → b@y.test" in lines
    assert "x" * MAX_BODY_CHARS + "x" not in text
    assert "… (cut; see the Maildir)" in lines
    assert lines[-1] == "Attachments: report.pdf"


def test_the_sent_mailbox_previews_a_message_as_the_sandbox_does(tmp_path: Path) -> None:
    raw = long_message_with_an_attachment(tmp_path)
    text, transcript = sent_preview(Outbox(), raw, "no-such-key")
    assert transcript is None  # no transcript stored under that key: the message still shows
    assert "… (cut; export it (x) to read it all)" in text
    assert text.endswith("Attachments: report.pdf")
    assert text.split("\n")[:2] == ["From: alice@example.test", "To: bob@example.test"]
