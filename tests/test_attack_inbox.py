"""Attacks on the sandbox's inbox (tuimail/inbox/) with a captured message whose part
header is long: the email package reads a header value in time that grows with
the square of its length."""

from __future__ import annotations

import smtplib
import time

import pytest

from tests.cli_helpers import run_tuimail
from tests.test_sandbox_chaos import Serve

LONG_NAME = (
    b"From: a@example.test\r\nTo: b@example.test\r\nSubject: long\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
    b"--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; "
    b'filename="' + b"a b\r\n " * 100_000 + b'"\r\n\r\nxx\r\n--B--\r\n'
)


def test_inbox_show_of_a_long_part_header_is_quick() -> None:
    serve = Serve()
    try:
        with smtplib.SMTP("127.0.0.1", serve.port, timeout=30) as client:
            client.sendmail("a@example.test", ["b@example.test"], LONG_NAME)
        listed = run_tuimail("inbox", "list", timeout=60)
        [key] = [line.split()[0] for line in listed.stdout.splitlines() if "long" in line]
        started = time.monotonic()
        shown = run_tuimail("inbox", "show", key, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert time.monotonic() - started < 15  # it took 30 s before the fix
        # tuimail/part_headers.py: the part is described, its header never read whole.
        out = shown.stdout
        assert "hi" in out and len(out) < 20_000, out[-3000:]
        assert "its headers were not read: a header is longer than 65,536 bytes" in out, out
    finally:
        serve.stop()


LONG_TYPE = LONG_NAME.replace(
    b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=",
    b"Content-Type: application/octet-stream; name=",
)


@pytest.mark.parametrize("raw", [LONG_NAME, LONG_TYPE], ids=["disposition", "type"])
def test_the_view_of_a_long_part_header_is_quick(raw: bytes) -> None:
    """tuimail/inbox/mime.py view, which ``inbox show`` and the sandbox's message view
    (F5) both use: a long Content-Type is read by the email package while it parses
    (half a minute for this one), so the view measures before it parses."""
    from tuimail.inbox.mime import view

    assert b"name=" in raw
    started = time.monotonic()
    shown = view(raw)
    assert time.monotonic() - started < 10  # half a minute before the fix
    assert shown.text.strip() == "hi"
    assert shown.header("Subject") == "long"
    [unread] = [part for part in shown.parts if part.unread]
    assert unread.number == 3 and unread.is_attachment and unread.size == 2
    assert unread.unread == "a header is longer than 65,536 bytes"


def test_f5s_message_view_says_which_part_was_not_read() -> None:
    """The sandbox's message view (tuimail/ui/screens/sandbox.py message_text) words
    what tuimail/inbox/mime.py view found: the text, and the part left unread."""
    from tuimail.inbox.mime import view
    from tuimail.ui.screens.sandbox import MessageRead, message_text

    read = MessageRead("key", LONG_TYPE, view(LONG_TYPE), "")
    assert "hi" in message_text(read, "text")
    tree = message_text(read, "mime")
    assert (
        "3. application/octet-stream  2 bytes  (attachment)  (its headers were not read: " in tree
    )
    assert "a header is longer than 65,536 bytes" in tree
