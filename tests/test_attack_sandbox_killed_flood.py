"""``tuimail serve`` killed (SIGKILL) in the middle of a flood on one connection:
after a restart every message it answered 250 for is listed once, with its envelope.

A session's file is written 0.1 s after it stores a message (and its messages
past the 200 the record lists go to ``SESSION.N.json`` files), so a sandbox
killed at once took the envelopes of the last messages with it: they sat in
the default mailbox with no Bcc recipient, though the client was told they
were stored. Real processes: ``tuimail serve`` and Python's smtplib.
"""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
from pathlib import Path

import pytest

from tests.cli_helpers import TUIMAIL, run_tuimail
from tests.test_cli_inbox import serving
from tests.test_sandbox_port import write_config


def _serve() -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [TUIMAIL, "serve", "--quiet", "--port", "0", "--auth", "any"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    line = process.stderr.readline()
    assert "listening on 127.0.0.1:" in line, line
    return process, int(line.split("127.0.0.1:")[1].split()[0].rstrip(","))


@pytest.mark.parametrize("count", [40, 230])
def test_every_answered_message_keeps_its_envelope_after_a_kill(
    isolated_dirs: Path, count: int
) -> None:
    write_config('[[sandbox.mailboxes]]\nname = "alice"\nauth_user = "alice"\n')
    process, port = _serve()
    try:
        client = smtplib.SMTP("127.0.0.1", port, timeout=30)
        client.login("alice", "any-password")
        for number in range(count):
            client.sendmail(
                "app@example.test",
                [f"user{number}@bcc.test"],
                f"From: app@example.test\r\nTo: list@example.test\r\n"
                f"Subject: flood {number}\r\n\r\nhello\r\n".encode(),
            )
        # Right after the last 250, before the session's file is due.
        os.kill(process.pid, signal.SIGKILL)
        client.close()
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=20)
    with serving("--auth", "any"):
        listed = run_tuimail("inbox", "list", "--mailbox", "alice", "--limit", "1000")
        assert listed.returncode == 0, listed.stderr
        subjects = [line for line in listed.stdout.splitlines() if "flood" in line]
        assert len(subjects) == count, listed.stdout[-2000:]
        everywhere = run_tuimail("inbox", "list", "--limit", "1000")
        assert len([x for x in everywhere.stdout.splitlines() if "flood" in x]) == count
        last = run_tuimail("inbox", "wait", "--to", f"user{count - 1}@bcc.test", "--timeout", "5")
        assert last.returncode == 0, last.stderr


def test_a_session_that_ends_leaves_no_journal(isolated_dirs: Path) -> None:
    from tuimail import paths

    with serving("--auth", "any") as port, smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        for number in range(3):
            client.sendmail("a@example.test", ["b@example.test"], f"n {number}\r\n".encode())
    sessions = paths.data_dir() / "sandbox" / "sessions"
    assert sorted(p.suffix for p in sessions.iterdir()) == [".json"]


def test_a_running_sandboxs_journal_is_left_alone(tmp_path: Path) -> None:
    """Two sandboxes may share a data dir: one starting must not take the journal of a
    session the other has open (it holds the journal's lock)."""
    from tuimail.sandbox import session_files

    journal = session_files.open_journal(tmp_path / "S-1.1.journal")
    try:
        message = {"key": "k1", "rcpt_tos": ["x@bcc.test"]}
        os.write(journal.fd, session_files.journal_line(1, "alice", message))
        assert session_files.recover(tmp_path) == 0
        assert journal.path.exists() and not (tmp_path / "S-1.1.json").exists()
    finally:
        session_files.end_journal(journal, remove=False)
    assert session_files.recover(tmp_path) == 1  # the lock went with its process
    assert not journal.path.exists()
    assert '"x@bcc.test"' in (tmp_path / "S-1.1.json").read_text()


def test_a_journal_cut_by_the_kill_gives_its_whole_lines(tmp_path: Path) -> None:
    """The line being written when the sandbox died is left out; the others are
    recovered once, and a message its session's file lists is not listed again."""
    import json
    import stat

    from tuimail.sandbox import session_files

    sessions = tmp_path / "sessions"
    sessions.mkdir()
    journal = session_files.open_journal(sessions / "S-2.1.journal")
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    for number in (1, 2, 3):
        message = {"key": f"k{number}", "rcpt_tos": [f"u{number}@bcc.test"]}
        os.write(journal.fd, session_files.journal_line(number, "bob", message))
    os.write(journal.fd, b'{"number": 4, "authenticated_as": "bob", "mess')
    session_files.end_journal(journal, remove=False)
    (sessions / "S-2.json").write_text(json.dumps({"id": "S-2", "messages": [{"key": "k1"}]}))
    assert session_files.recover(sessions) == 2
    part = json.loads((sessions / "S-2.2.json").read_text())
    assert [m["key"] for m in part["messages"]] == ["k2", "k3"]
    assert part["authenticated_as"] == "bob" and part["part_of"] == "S-2"
    assert session_files.recover(sessions) == 0
    assert sorted(p.name for p in sessions.iterdir()) == ["S-2.2.json", "S-2.json"]
