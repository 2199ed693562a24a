"""A message sent over a connection the application keeps open (a connection pool,
as Django's and nodemailer's are) is in the inbox with its envelope at once.

The envelope (Bcc recipients, the AUTH user that routes it to a mailbox) is
known only to the server; it once reached the index only when the session
ended, so ``inbox wait --to`` a Bcc recipient timed out while the client
kept its connection, and the message sat in the default mailbox.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.test_cli_inbox import serving
from tests.test_sandbox_port import write_config


def test_an_open_sessions_envelope_and_auth_user_reach_the_inbox(isolated_dirs: Path) -> None:
    write_config('[[sandbox.mailboxes]]\nname = "alice"\nauth_user = "alice"\n')
    with serving("--auth", "any") as port:
        client = smtplib.SMTP("127.0.0.1", port, timeout=30)
        try:
            client.login("alice", "any-password")
            client.sendmail(
                "app@example.test",
                ["hidden@bcc.test"],
                b"From: app@example.test\r\nTo: shown@example.test\r\n"
                b"Subject: pooled\r\n\r\nhello\r\n",
            )
            # The connection stays open while the test suite looks.
            waited = run_tuimail("inbox", "wait", "--to", "hidden@bcc.test", "--timeout", "10")
            assert waited.returncode == 0, waited.stderr
            assert "pooled" in waited.stdout
            listed = run_tuimail("inbox", "list", "--mailbox", "alice")
            assert listed.returncode == 0, listed.stderr
            assert "pooled" in listed.stdout
        finally:
            client.quit()
        # The session's end still writes its whole file: the transcript ends with it.
        shown = run_tuimail("inbox", "list", "--mailbox", "alice")
        assert "pooled" in shown.stdout


def test_a_maildir_removed_while_serving_is_made_again(isolated_dirs: Path) -> None:
    """A test suite that resets the sandbox with ``rm -rf`` between runs keeps
    getting its mail stored (it was answered 451 until the sandbox restarted)."""
    import shutil

    from tuimail import paths

    base = paths.data_dir() / "sandbox"
    with serving() as port:
        shutil.rmtree(base / "maildir")
        shutil.rmtree(base / "sessions")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            refused = client.sendmail(
                "app@example.test",
                ["hidden@bcc.test"],
                b"From: app@example.test\r\nTo: shown@example.test\r\n"
                b"Subject: after the reset\r\n\r\nhello\r\n",
            )
        assert refused == {}
        waited = run_tuimail("inbox", "wait", "--to", "hidden@bcc.test", "--timeout", "10")
        assert waited.returncode == 0, waited.stderr
        assert "after the reset" in waited.stdout


def test_every_message_of_a_long_session_keeps_its_envelope(isolated_dirs: Path) -> None:
    """A session record lists its first 200 messages (a memory bound); the ones after
    them once reached the inbox with no envelope: no Bcc for ``wait --to``, no AUTH
    user to route them by."""
    write_config('[[sandbox.mailboxes]]\nname = "alice"\nauth_user = "alice"\n')
    count = 230
    with serving("--auth", "any") as port:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.login("alice", "any-password")
            for number in range(count):
                client.sendmail(
                    "app@example.test",
                    [f"user{number}@bcc.test"],
                    f"From: app@example.test\r\nTo: list@example.test\r\n"
                    f"Subject: bulk {number}\r\n\r\nhello\r\n".encode(),
                )
            last = run_tuimail(
                "inbox", "wait", "--to", f"user{count - 1}@bcc.test", "--timeout", "10"
            )
            assert last.returncode == 0, last.stderr
        listed = run_tuimail("inbox", "list", "--mailbox", "alice", "--limit", "1000")
        assert len(listed.stdout.splitlines()) == count, listed.stderr
