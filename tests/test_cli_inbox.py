"""``tuimail inbox`` as scripts use it, against a real ``tuimail serve`` process.

Clients nobody here wrote (Python's smtplib, swaks) send; ``tuimail inbox``
runs as a real process over the same data dir; release goes to a second,
independent aiosmtpd server.
"""

from __future__ import annotations

import json
import signal
import smtplib
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.cli_helpers import TUIMAIL, run_tuimail
from tests.conftest import require_tool
from tests.smtpservers import ServerThread, Sink
from tests.test_sandbox_port import write_config
from tuimail import paths
from tuimail.inbox import InboxIndex


@contextmanager
def serving(*args: str) -> Iterator[int]:
    """``tuimail serve --port 0`` (the built-in sandbox of this data dir): its port."""
    process = subprocess.Popen(
        [TUIMAIL, "serve", "--quiet", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "listening on 127.0.0.1:" in line, line + process.stderr.read()
        yield int(line.split("127.0.0.1:")[1].split()[0].rstrip(","))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)


def mail(subject: str, to: str = "bob@example.test", **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Alice <alice@example.test>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Fri, 04 Dec 2026 12:00:00 +0000"
    message["Message-ID"] = f"<{subject.replace(' ', '.')}@example.test>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(f"the text of {subject}")
    return message


def smtplib_send(port: int, message: EmailMessage, login: str = "") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        if login:
            client.login(login, "any-password")
        client.send_message(message)


def inbox_json(*args: str) -> Any:
    result = run_tuimail("inbox", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_smtplib_and_swaks_are_waited_for_and_listed_after_a_restart(isolated_dirs: Path) -> None:
    swaks = require_tool("swaks", "swaks")
    with serving() as port:
        smtplib_send(port, mail("from smtplib"))
        # Sent, then waited for: the message already there counts (no race).
        waited = run_tuimail("inbox", "wait", "--subject", "from smtplib", "--timeout", "10")
        assert waited.returncode == 0, waited.stderr
        assert "from smtplib" in waited.stdout
        first_id = waited.stdout.split()[0]
        sent = subprocess.run(
            [swaks, "--server", "127.0.0.1", "--port", str(port), "--from", "s@example.test",
             "--to", "carol@example.test", "--header", "Subject: from swaks", "--body", "hi",
             "--timeout", "10"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stdout
        record = run_tuimail("inbox", "wait", "--to", "carol@", "--json", "--timeout", "10")
        assert record.returncode == 0, record.stderr
        assert json.loads(record.stdout)["subject"] == "from swaks"
        # Nothing matches: exit 1 at the timeout, not before, not much after.
        started = time.monotonic()
        missing = run_tuimail("inbox", "wait", "--subject", "never sent", "--timeout", "0.5")
        assert missing.returncode == 1
        assert 0.5 <= time.monotonic() - started < 10
        assert "no matching message arrived within 0.5 s" in missing.stderr
        # --new: the stored one does not count; the one sent after the call does.
        waiter = subprocess.Popen(
            [TUIMAIL, "inbox", "wait", "--new", "--subject", "from smtplib", "--timeout", "20"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(1.0)
        assert waiter.poll() is None, waiter.communicate()
        smtplib_send(port, mail("from smtplib"))
        out, err = waiter.communicate(timeout=20)
        assert waiter.returncode == 0, err
        assert out.split()[0] != first_id
    # The sandbox restarted: everything is still listed, newest first.
    with serving():
        listed = inbox_json("list")
        assert [m["subject"] for m in listed] == ["from smtplib", "from swaks", "from smtplib"]
        assert listed[-1]["id"] == first_id
        assert listed[-1]["session_id"]  # the session file named it
        assert listed[1]["envelope_to"] == ["carol@example.test"]
        # The server's side of its session, for the app's message view.
        with InboxIndex.for_sandbox() as index:
            transcript = index.session_transcript(listed[1]["session_id"])
        assert transcript is not None
        assert any("RCPT TO:<carol@example.test>" in e.text for e in transcript.entries)


def test_release_sends_the_captured_bytes_to_another_server(
    isolated_dirs: Path, servers: ServerThread
) -> None:
    sink = Sink()
    other = servers.smtp(sink)
    with serving() as port:
        smtplib_send(port, mail("release me"))
        found = run_tuimail("inbox", "wait", "--subject", "release me", "--timeout", "10")
        key = found.stdout.split()[0]
    captured = next((paths.data_dir() / "sandbox" / "maildir" / "new").iterdir()).read_bytes()
    released = run_tuimail(
        "inbox", "release", key[:-4], "--server", f"127.0.0.1:{other}", "--security", "none"
    )
    assert released.returncode == 0, released.stdout + released.stderr
    assert " -> RCPT TO:<bob@example.test>" in released.stdout  # its own transcript
    assert sink.messages[0].content == captured.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert sink.messages[0].rcpt_tos == ["bob@example.test"]
    assert sink.messages[0].mail_from == "alice@example.test"
    # Recipients changed on release: the envelope changes, the bytes do not.
    again = run_tuimail(
        "inbox", "release", key, "--server", f"127.0.0.1:{other}", "--security", "none",
        "--to", "dave@example.test",
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert sink.messages[1].rcpt_tos == ["dave@example.test"]
    assert sink.messages[1].content == sink.messages[0].content
    # A server that refuses: send's exit code for the stage.
    sink.rcpt_replies["dave@example.test"] = "550 5.1.1 no such user"
    refused = run_tuimail(
        "inbox", "release", key, "--server", f"127.0.0.1:{other}", "--security", "none",
        "--to", "dave@example.test",
    )  # fmt: skip
    assert refused.returncode == 16, refused.stdout + refused.stderr


def test_mailboxes_tags_search_show_delete_and_save(isolated_dirs: Path, tmp_path: Path) -> None:
    write_config(
        '[[sandbox.mailboxes]]\nname = "alice-box"\nauth_user = "alice"\n'
        '[[sandbox.mailboxes]]\nname = "billing"\nrecipient = "*@BILLING.example"\n'
        '[[sandbox.mailboxes]]\nname = "marketing"\nheader = "X-Campaign: spring*"\n'
    )
    hostile = mail("attachments \x1b]0;pwned\x07")
    for name in ("../../etc/passwd", "/abs", "\x1b[31mred"):
        hostile.add_attachment(b"data of " + name.encode(), maintype="application",
                               subtype="octet-stream", filename=name)  # fmt: skip
    with serving("--auth", "any") as port:
        smtplib_send(port, mail("by alice"), login="alice")
        smtplib_send(port, mail("invoice", to="pay@billing.example"))
        smtplib_send(port, mail("sale", X_Campaign="Spring 2026"))
        smtplib_send(port, mail("signup", to="bob+signup@example.test"))
        smtplib_send(port, hostile)
        waited = run_tuimail("inbox", "wait", "--subject", "attachments", "--timeout", "10")
        assert waited.returncode == 0
    by_subject = {m["subject"]: m for m in inbox_json("list")}
    assert by_subject["by alice"]["mailbox"] == "alice-box"
    assert by_subject["invoice"]["mailbox"] == "billing"
    assert by_subject["sale"]["mailbox"] == "marketing"
    assert by_subject["signup"]["mailbox"] == "inbox"
    assert by_subject["signup"]["tags"] == ["signup"]
    billing = inbox_json("list", "--mailbox", "billing")
    assert [m["subject"] for m in billing] == ["invoice"]
    assert [m["subject"] for m in inbox_json("search", "tag:signup")] == ["signup"]
    assert len(inbox_json("search", "has:attachment")) == 1
    for query in ('"', "NEAR(", "*", "-", "a OR", 'subject:"'):
        result = run_tuimail("inbox", "search", query)
        assert result.returncode == 0, result.stderr
    # What the message says never reaches the terminal raw.
    listing = run_tuimail("inbox", "list")
    assert "\x1b" not in listing.stdout and "\\x1b]0;pwned\\x07" in listing.stdout
    key = by_subject[hostile["Subject"]]["id"]
    shown = run_tuimail("inbox", "show", key)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout
    assert "multipart/mixed" in shown.stdout and "3 attachment(s)" in shown.stdout
    target = tmp_path / "saved"
    target.mkdir()
    saved = run_tuimail("inbox", "save", key, "--all", "--dir", str(target))
    assert saved.returncode == 0, saved.stderr
    assert "\x1b" not in saved.stdout
    assert sorted(p.name for p in target.iterdir()) == ["[31mred", "abs", "passwd"]
    assert (target / "passwd").read_bytes() == b"data of ../../etc/passwd"
    run_tuimail("inbox", "save", key, "--all", "--dir", str(target))
    assert (target / "passwd-2").exists()  # nothing overwritten
    # Raw: the exact bytes into a pipe.
    raw = subprocess.run([TUIMAIL, "inbox", "show", key, "--raw"], capture_output=True, timeout=30)
    assert b"Content-Disposition: attachment" in raw.stdout
    # Ambiguous and missing ids.
    prefix = key[:3]
    ambiguous = run_tuimail("inbox", "show", prefix)
    assert ambiguous.returncode == 2 and "names several messages" in ambiguous.stderr
    assert run_tuimail("inbox", "show", "nothing-like-it").returncode == 1
    # Delete one, then all (asked: refused without a terminal unless --yes).
    assert run_tuimail("inbox", "delete", key).returncode == 0
    assert len(inbox_json("list")) == 4
    assert run_tuimail("inbox", "delete", "--all").returncode == 2
    assert run_tuimail("inbox", "delete", "--all", "--yes").returncode == 0
    assert inbox_json("list") == []
    assert not list((paths.data_dir() / "sandbox" / "maildir" / "new").iterdir())
