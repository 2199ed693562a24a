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


@pytest.mark.xfail(
    strict=True,
    reason="tuimail/inbox/ reads every part header of a captured message: a 600 kB one "
    "took 18 s in 'inbox show' (minutes for a few MB); tuimail/eml.py "
    "oversized_part_headers is the check opening an .eml and replies use",
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
        assert time.monotonic() - started < 5
    finally:
        serve.stop()
