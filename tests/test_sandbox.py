"""The sandbox against clients nobody here wrote (swaks, smtplib), tuimail's own, and hostile ones."""

from __future__ import annotations

import asyncio
import email
import hashlib
import mailbox
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import TUIMAIL, files_under, find_leaks, run_tuimail
from tests.conftest import require_tool
from tests.sandbox_support import UP_TO_DATA, greeted_client, sample_message, start_serve
from tuimail.credentials import Secret
from tuimail.errors import NotFound, TuimailError
from tuimail.message import Draft, build_message
from tuimail.profiles import Security, with_changes
from tuimail.sandbox import (
    PortUnavailable,
    SandboxError,
    SessionOutcome,
    SettingRefused,
    sandbox_config_from,
)
from tuimail.sandbox_profile import find_running, runtime_file
from tuimail.selfsigned import CertificateError
from tuimail.session import SMTPSession, Stage, send
from tuimail.small_files import parse_json
from tuimail.transcript import Direction

PASSWORD = "sandbox-Secret-42"


# -- real clients --------------------------------------------------------------


def swaks(port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    binary = require_tool("swaks", "swaks")
    return subprocess.run(
        [binary, "--server", "127.0.0.1", "--port", str(port), "--from", "a@example.test",
         "--to", "b@example.test", "--header", "Subject: from swaks", "--body", "swaks body",
         "--timeout", "10", *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_swaks_plain(make_sandbox: Any) -> None:
    sandbox = make_sandbox()
    result = swaks(sandbox.port)
    assert result.returncode == 0, result.stdout + result.stderr
    [stored] = sandbox.stored()
    assert b"swaks body" in stored and b"Subject: from swaks" in stored
    [session] = sandbox.wait_for_sessions(1)
    assert session.outcome is SessionOutcome.COMPLETED and session.helo
    assert session.messages[0].mail_from == "a@example.test"
    lines = [e.text for e in session.transcript if e.direction is Direction.CLIENT]
    assert lines[0].startswith("EHLO") and any(
        line.startswith("[message content:") for line in lines
    )


def test_swaks_starttls_verifies_the_sandbox_certificate(make_sandbox: Any) -> None:
    require_tool("swaks", "swaks")
    sandbox = make_sandbox(security=Security.STARTTLS)
    ca_file = str(sandbox.sandbox.ca_file)
    result = swaks(sandbox.port, "--tls", "--tls-verify", "--tls-ca-path", ca_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TLS started" in result.stdout or "STARTTLS" in result.stdout
    [session] = sandbox.wait_for_sessions(1)
    assert session.secure
    assert any(e.secure and e.direction is Direction.CLIENT for e in session.transcript)
    assert len(sandbox.stored()) == 1


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_swaks_auth_is_redacted_server_side(
    make_sandbox: Any, tmp_path: Path, mechanism: str
) -> None:
    auth_file = tmp_path / "users"
    auth_file.write_text(f"carol:{PASSWORD}\n")
    from tuimail.sandbox import load_auth_file

    sandbox = make_sandbox(auth_users=load_auth_file(auth_file), auth_required=True)
    result = swaks(
        sandbox.port, "--auth", mechanism, "--auth-user", "carol", "--auth-password", PASSWORD
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [session] = sandbox.wait_for_sessions(1)
    assert session.authenticated_as == "carol"
    text = "\n".join(e.text for e in session.transcript)
    assert f"AUTH {mechanism}" in text and "********" in text
    written = files_under(sandbox.sandbox.sessions_dir)
    assert written
    assert find_leaks(PASSWORD, {**written, "transcript": text.encode()}) == []

    refused = swaks(
        sandbox.port, "--auth", mechanism, "--auth-user", "carol", "--auth-password", "x"
    )
    assert refused.returncode != 0
    unauthenticated = swaks(sandbox.port)
    assert unauthenticated.returncode != 0 and "530" in unauthenticated.stdout
    assert len(sandbox.stored()) == 1


def test_smtplib_plain_starttls_and_implicit(make_sandbox: Any) -> None:
    plain = make_sandbox()
    with smtplib.SMTP("127.0.0.1", plain.port, timeout=10) as client:
        client.sendmail("a@example.test", ["b@example.test"], sample_message())
    starttls = make_sandbox(security=Security.STARTTLS, auth_users={})
    context = ssl.create_default_context(cafile=str(starttls.sandbox.ca_file))
    with smtplib.SMTP("localhost", starttls.port, timeout=10) as client:
        client.starttls(context=context)
        client.login("anyone", "anything")
        client.sendmail("a@example.test", ["b@example.test"], sample_message())
    implicit = make_sandbox(security=Security.TLS)
    context = ssl.create_default_context(cafile=str(implicit.sandbox.ca_file))
    with smtplib.SMTP_SSL("127.0.0.1", implicit.port, timeout=10, context=context) as client:
        ehlo = client.ehlo()
        assert b"PIPELINING" in ehlo[1] and b"SMTPUTF8" in ehlo[1] and b"8BITMIME" in ehlo[1]
        client.sendmail("a@example.test", ["b@example.test"], sample_message())
    assert [len(s.stored()) for s in (plain, starttls, implicit)] == [1, 1, 1]


def test_help_lists_every_command_the_sandbox_answers(make_sandbox: Any) -> None:
    sandbox = make_sandbox()
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
        client.ehlo()
        listed = client.help().decode().split()
        data_syntax = client.help("DATA").decode()
    for command in ("EHLO", "HELO", "MAIL", "RCPT", "DATA", "QUIT", "NOOP", "RSET"):
        assert command in listed
    assert data_syntax == "Syntax: DATA"


def test_stored_bytes_are_exactly_what_was_sent(make_sandbox: Any) -> None:
    sandbox = make_sandbox(size_limit=0)
    utf8 = (
        "From: a@example.test\r\nTo: b@example.test\r\nSubject: =?utf-8?q?h=C3=A9?=\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Grüße, ça va? 日本語\r\n.starts with a dot\r\n..two dots\r\n\r\n"
    ).encode()
    attachment = os.urandom(10 * 1024 * 1024)
    attachment_file = sandbox.sandbox.maildir_path.parent / "ten-megabytes.bin"
    attachment_file.write_bytes(attachment)
    outgoing = build_message(
        Draft(
            from_address="a@example.test",
            to=["b@example.test"],
            body="see attached",
            attachments=[attachment_file],
        )
    )
    big = outgoing.to_bytes()
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=30) as client:
        client.sendmail("a@example.test", ["b@example.test"], utf8, mail_options=["BODY=8BITMIME"])
        client.sendmail("a@example.test", ["b@example.test"], big)
    stored = sandbox.stored()
    digests = sorted(hashlib.sha256(s).hexdigest() for s in stored)
    assert digests == sorted(hashlib.sha256(s).hexdigest() for s in (utf8, big))
    parsed = email.message_from_bytes(next(s for s in stored if len(s) > 1_000_000))
    parts = [p for p in parsed.walk() if p.get_content_type() == "application/octet-stream"]
    assert [p.get_payload(decode=True) for p in parts] == [attachment]
    [session] = sandbox.wait_for_sessions(1)
    summaries = [e.text for e in session.transcript if e.text.startswith("[message content:")]
    assert len(summaries) == 2  # content summarised, never dumped into the transcript
    assert not any("Grüße" in e.text for e in session.transcript)


def test_a_stored_message_is_read_back_by_key_and_a_missing_one_is_not_found(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox()
    content = sample_message()
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
        client.sendmail("a@example.test", ["b@example.test"], content)
    [session] = sandbox.wait_for_sessions(1)
    [stored] = session.messages
    assert sandbox.sandbox.read_message(stored.key) == content
    with pytest.raises(NotFound) as missing:
        sandbox.sandbox.read_message("no-such-key")
    assert (missing.value.kind, missing.value.name) == ("message", "no-such-key")
    assert not isinstance(missing.value, KeyError)  # a domain error, not a dict miss


async def test_tuimail_session_sees_both_sides(make_sandbox: Any) -> None:
    sandbox = make_sandbox(security=Security.STARTTLS, auth_users={"dave": PASSWORD})
    profile = with_changes(sandbox.sandbox.client_profile(), username="dave")
    outgoing = build_message(Draft(from_address="a@example.test", to=["b@example.test"]))
    report = await send(profile, outgoing, Secret(PASSWORD))
    assert report.ok, report.failure
    assert report.tls is not None and report.tls.verified
    [session] = await asyncio.to_thread(sandbox.wait_for_sessions, 1)
    client_side = [e.text for e in report.transcript if e.direction is Direction.CLIENT]
    server_side = [e.text for e in session.transcript if e.direction is Direction.CLIENT]
    assert client_side == server_side  # same model, same redaction, both ends
    assert session.messages[0].message_id == outgoing.message_id


# -- faults, seen from a real client ----------------------------------------------


def smtplib_send(
    port: int, *, mail_from: str = "a@example.test", to: str = "b@example.test"
) -> Any:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        return client.sendmail(mail_from, [to], sample_message())


@pytest.mark.parametrize(
    ("fault", "expected_code", "stage_error"),
    [
        ("greeting:421 4.3.2 Too busy", 421, smtplib.SMTPConnectError),
        ("ehlo:554 5.7.1 Go away", 554, smtplib.SMTPHeloError),
        ("mail:451 4.3.0 Try later", 451, smtplib.SMTPSenderRefused),
        ("rcpt:550 5.1.1 No such user", 550, smtplib.SMTPRecipientsRefused),
        ("data:554 5.3.4 Not today", 554, smtplib.SMTPDataError),
        ("dot:452 4.3.1 Out of space", 452, smtplib.SMTPDataError),
    ],
)
def test_reply_faults(make_sandbox: Any, fault: str, expected_code: int, stage_error: type) -> None:
    sandbox = make_sandbox(faults=[fault])
    with pytest.raises(stage_error) as raised:
        smtplib_send(sandbox.port)
    assert str(expected_code) in str(raised.value)
    assert sandbox.stored() == []
    [session] = sandbox.wait_for_sessions(1)
    assert any("fault injected" in e.text for e in session.transcript)


def test_auth_fault(make_sandbox: Any) -> None:
    sandbox = make_sandbox(
        faults=["auth:454 4.7.0 Temporary authentication failure"], auth_users={}
    )
    with (
        smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client,
        pytest.raises(smtplib.SMTPAuthenticationError) as raised,
    ):
        client.login("u", "p")
    assert raised.value.smtp_code == 454


@pytest.mark.parametrize("stage", ["greeting", "ehlo", "mail", "rcpt", "data", "dot"])
def test_disconnect_faults(make_sandbox: Any, stage: str) -> None:
    sandbox = make_sandbox(faults=[f"{stage}:disconnect"])
    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
        smtplib_send(sandbox.port)
    assert sandbox.stored() == []
    [session] = sandbox.wait_for_sessions(1)
    assert session.outcome is SessionOutcome.DISCONNECTED_BY_FAULT
    assert session.outcome_words.startswith(f"disconnected by fault {stage}:disconnect")


@pytest.mark.parametrize(
    ("stage", "command", "normal_reply"),
    [
        ("greeting", "", "220"),
        ("ehlo", "EHLO", "250"),
        ("mail", "MAIL", "250"),
        ("rcpt", "RCPT", "250"),
        ("data", "DATA", "354"),
        ("dot", "[message content", "250"),
    ],
)
def test_delay_fault_then_normal_answer(
    make_sandbox: Any, stage: str, command: str, normal_reply: str
) -> None:
    """The reply comes at least DELAY later, and is the normal one (a lower bound only)."""
    sandbox = make_sandbox(faults=[f"{stage}:delay 0.3"])
    smtplib_send(sandbox.port)
    [session] = sandbox.wait_for_sessions(1)
    entries = session.transcript.entries
    if command:
        start = next(e for e in entries if e.text.upper().startswith(command.upper()))
    else:
        start = next(e for e in entries if e.kind is not None and "connected" in e.text)
    after = entries[entries.index(start) + 1 :]
    reply = next(e for e in after if e.direction is Direction.SERVER)
    assert reply.text.startswith(normal_reply) and reply.elapsed - start.elapsed >= 0.3
    assert len(sandbox.stored()) == 1


def test_auth_disconnect_fault(make_sandbox: Any) -> None:
    sandbox = make_sandbox(faults=["auth:disconnect"], auth_users={})
    with (
        smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client,
        pytest.raises(smtplib.SMTPServerDisconnected),
    ):
        client.login("u", "p")
    [session] = sandbox.wait_for_sessions(1)
    assert "disconnected by fault auth:disconnect" in session.outcome_words


def test_fault_for_one_address_only(make_sandbox: Any) -> None:
    sandbox = make_sandbox(faults=["rcpt=full@example.test:452 4.2.2 Mailbox full"])
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
        refused = client.sendmail(
            "a@example.test", ["b@example.test", "full@example.test"], sample_message()
        )
    assert refused == {"full@example.test": (452, b"4.2.2 Mailbox full")}
    assert len(sandbox.stored()) == 1


def test_probability_with_a_seed(make_sandbox: Any) -> None:
    sandbox = make_sandbox(faults=["rcpt:451 4.7.1 Flaky p=0.5"], seed=7)
    outcomes = []
    for _ in range(20):
        try:
            smtplib_send(sandbox.port)
            outcomes.append("ok")
        except smtplib.SMTPRecipientsRefused:
            outcomes.append("refused")
    assert 0 < outcomes.count("refused") < 20
    assert len(sandbox.stored()) == outcomes.count("ok")


def test_greylist_then_accept(make_sandbox: Any) -> None:
    sandbox = make_sandbox(faults=["greylist:0.2"])
    with pytest.raises(smtplib.SMTPRecipientsRefused) as first:
        smtplib_send(sandbox.port)
    assert first.value.recipients["b@example.test"][0] == 451
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        smtplib_send(sandbox.port)  # too soon
    time.sleep(0.3)
    smtplib_send(sandbox.port)
    assert len(sandbox.stored()) == 1


async def test_greylisted_send_is_temporary_for_tuimail(make_sandbox: Any) -> None:
    sandbox = make_sandbox(faults=["greylist"])
    outgoing = build_message(Draft(from_address="a@example.test", to=["b@example.test"]))
    first = await send(sandbox.sandbox.client_profile(), outgoing)
    assert first.failure is not None and first.failure.stage is Stage.RCPT
    assert first.failure.temporary
    second = await send(sandbox.sandbox.client_profile(), outgoing)
    assert second.ok, second.failure


def test_faults_change_while_running(make_sandbox: Any) -> None:
    sandbox = make_sandbox()
    smtplib_send(sandbox.port)
    from tuimail.faults import parse_fault

    sandbox.sandbox.faults.add(parse_fault("rcpt:550 5.7.1 Now refused"))
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        smtplib_send(sandbox.port)
    sandbox.sandbox.faults.clear()
    smtplib_send(sandbox.port)
    assert len(sandbox.stored()) == 2


# -- load ------------------------------------------------------------------------


async def test_fifty_concurrent_clients_twenty_messages_each(make_sandbox: Any) -> None:
    sandbox = make_sandbox()
    profile = sandbox.sandbox.client_profile()

    async def client(n: int) -> list[str]:
        ids = []
        async with SMTPSession(profile) as session:
            for i in range(20):
                outgoing = build_message(
                    Draft(
                        from_address="a@example.test", to=[f"c{n}@example.test"], subject=f"{n}/{i}"
                    )
                )
                await session.deliver(outgoing)
                ids.append(outgoing.message_id)
        return ids

    results = await asyncio.gather(*(client(n) for n in range(50)))
    sent_ids = [mid for ids in results for mid in ids]
    stored = await asyncio.to_thread(sandbox.stored)
    stored_ids = [email.message_from_bytes(s)["Message-ID"] for s in stored]
    assert len(stored) == 1000
    assert sorted(stored_ids) == sorted(sent_ids)  # every message stored exactly once
    await asyncio.to_thread(sandbox.call, sandbox.sandbox.stop(grace=1))
    assert list((sandbox.sandbox.maildir_path / "tmp").iterdir()) == []  # no file made ahead left


def test_files_left_in_tmp_by_a_killed_sandbox_are_cleaned_after_36_hours(
    make_sandbox: Any, tmp_path: Path
) -> None:
    maildir = tmp_path / "kept"
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True)
    stale, recent = maildir / "tmp" / "stale", maildir / "tmp" / "recent"
    stale.write_bytes(b"")
    recent.write_bytes(b"")
    two_days_ago = time.time() - 48 * 3600
    os.utime(stale, (two_days_ago, two_days_ago))

    make_sandbox(maildir=maildir)

    assert not stale.exists()
    assert recent.exists()  # it may be another sandbox's, at work


# -- hostile clients -----------------------------------------------------------


def raw_session(port: int, chunks: list[bytes], read_timeout: float = 5) -> bytes:
    """Send raw bytes, return everything the server said before closing or going quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        received = sock.recv(4096)
        for chunk in chunks:
            sock.sendall(chunk)
            time.sleep(0.05)
        sock.settimeout(0.5)
        try:
            while data := sock.recv(65536):
                received += data
        except TimeoutError:
            pass
    return received


@pytest.mark.parametrize(
    ("name", "chunks", "expect"),
    [
        ("overlong line", [b"EHLO " + b"x" * 100_000 + b"\r\n", b"QUIT\r\n"], b"500"),
        ("bare LF", [b"EHLO a\n", b"MAIL FROM:<a@b.test>\n", b"QUIT\n"], b"250"),
        ("bare CR", [b"EHLO a\rMAIL FROM:<a@b.test>\r\n", b"QUIT\r\n"], b"221"),
        ("NUL bytes", [b"EH\x00LO a\r\n", b"MAIL FROM:<a\x00@b.test>\r\n", b"QUIT\r\n"], b"221"),
        ("unknown commands", [b"FROBNICATE\r\n", b"XYZZY now\r\n", b"QUIT\r\n"], b"500"),
        (
            "out of order",
            [b"RCPT TO:<a@b.test>\r\n", b"DATA\r\n", b"EHLO a\r\n", b"DATA\r\n", b"QUIT\r\n"],
            b"503",
        ),
        (
            "data line too long",
            [
                b"EHLO a\r\n",
                b"MAIL FROM:<a@b.test>\r\n",
                b"RCPT TO:<c@d.test>\r\n",
                b"DATA\r\n",
                b"x" * 50_000 + b"\r\n.\r\n",
                b"QUIT\r\n",
            ],
            b"500",
        ),
    ],
)
def test_hostile_clients_never_crash_or_store_partial(
    make_sandbox: Any, name: str, chunks: list[bytes], expect: bytes
) -> None:
    sandbox = make_sandbox()
    said = raw_session(sandbox.port, chunks)
    assert expect in said, said[-500:]
    assert sandbox.stored() == []
    smtplib_send(sandbox.port)  # still serving
    assert len(sandbox.stored()) == 1


def test_client_vanishing_mid_data_stores_nothing(make_sandbox: Any) -> None:
    sandbox = make_sandbox()
    with greeted_client(sandbox.port, timeout=5) as client:
        client.exchange(*UP_TO_DATA)
        client.send(b"Subject: half\r\n\r\nthis message never ends")
    [session] = sandbox.wait_for_sessions(1)
    assert session.outcome is SessionOutcome.VANISHED_DURING_DATA
    assert "vanished during DATA" in session.outcome_words
    assert sandbox.stored() == []


def test_silent_client_is_timed_out(make_sandbox: Any) -> None:
    sandbox = make_sandbox(idle_timeout=0.5)
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as sock:
        greeting = sock.recv(1024)
        sock.settimeout(5)
        rest = sock.recv(1024)
        assert sock.recv(1024) == b""  # closed by the server
    assert greeting.startswith(b"220") and rest.startswith(b"421")
    [session] = sandbox.wait_for_sessions(1)
    assert session.outcome is SessionOutcome.TIMED_OUT
    words = "timed out after 0.5s without a command"  # as serve prints it and the file keeps it
    assert words in session.summary()
    assert any(e.text == f"session ended: {words}" for e in session.transcript)
    saved = parse_json((sandbox.sandbox.sessions_dir / f"{session.id}.json").read_text())
    assert saved["outcome"] == words


# -- the command ---------------------------------------------------------------


def test_serve_prints_sessions_and_stops_cleanly(isolated_dirs: Path) -> None:
    process, port = start_serve()
    try:
        sent = run_tuimail(
            "send", "--profile", "sandbox", "--to", "someone@example.test",
            "--subject", "hi", "--body", "hello",
        )  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert f"127.0.0.1:{port}" in sent.stdout  # it used the running sandbox
        assert "the sandbox's side" not in sent.stdout
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "tuimail sandbox stopped" in stderr
    assert "] " in stdout and "-> MAIL FROM:<you@sandbox.test>" in stdout
    assert "session ended: completed" in stdout
    maildir = mailbox.Maildir(isolated_dirs / "data" / "tuimail" / "sandbox" / "maildir")
    assert len(maildir) == 1
    assert not (isolated_dirs / "state" / "tuimail" / "sandbox.json").exists()


def test_serve_quiet_prints_one_line_per_session() -> None:
    process, port = start_serve("--quiet", "--fault", "rcpt=x@example.test:550 5.1.1 nope")
    try:
        smtplib_send(port)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtplib_send(port, to="x@example.test")
        time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=20)
    lines = stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("session ") for line in lines)
    assert "1 message(s)" in lines[0] and "0 message(s)" in lines[1]


def test_serve_port_taken_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_tuimail("serve", "--port", str(port))
    assert result.returncode == 1
    assert (
        f"port {port} on 127.0.0.1 is already in use (another 'tuimail serve' or mail server?); "
        "choose another with --port, or --port 0 for any free port"
    ) in result.stderr


@pytest.mark.parametrize(
    ("option", "security", "word"),
    [("--tls", Security.STARTTLS, "starttls"), ("--implicit-tls", Security.TLS, "implicit")],
)
def test_serve_announces_its_security_in_the_runtime_files_words(
    option: str, security: Security, word: str
) -> None:
    """The runtime file keeps its words ("implicit" predates Security) for other versions."""
    process, port = start_serve(option)
    try:
        assert parse_json(runtime_file().read_text())["tls"] == word
        found = find_running()
        assert found is not None and (found.security, found.port) == (security, port)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)


@pytest.mark.parametrize(
    ("options", "words"),
    [((), "(no TLS)"), (("--tls",), "(STARTTLS)"), (("--implicit-tls",), "(implicit TLS)")],
)
def test_serve_names_its_security_in_the_listening_line_as_it_always_has(
    options: tuple[str, ...], words: str
) -> None:
    """Scripts wait for this line; its words for each security do not change."""
    process = subprocess.Popen(
        [TUIMAIL, "serve", "--port", "0", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "listening on 127.0.0.1:" in line and words in line, line
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)


def test_serve_rejects_bad_fault_spec() -> None:
    result = run_tuimail("serve", "--fault", "rcpt:maybe")
    assert result.returncode == 2
    assert "the action must be a reply" in result.stderr


def test_send_to_the_embedded_sandbox_on_a_fresh_install(isolated_dirs: Path) -> None:
    result = run_tuimail(
        "send", "--profile", "sandbox", "--to", "someone@example.test", "--subject", "hi",
        "--body", "hello",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    client, _, server = result.stdout.partition("--- the sandbox's side")
    assert " -> MAIL FROM:<you@sandbox.test>" in client and "<-  250 2.0.0 Ok: queued" in client
    assert "session ended: completed" in server and " -> RCPT TO:<someone@example.test>" in server
    maildir = mailbox.Maildir(isolated_dirs / "data" / "tuimail" / "sandbox" / "maildir")
    assert len(maildir) == 1


def test_auth_is_offered_only_when_configured(make_sandbox: Any) -> None:
    without = make_sandbox()
    with smtplib.SMTP("127.0.0.1", without.port, timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        assert client.docmd("AUTH", "PLAIN AGEAYg==")[0] == 502
    with_auth = make_sandbox(auth_users={})
    with smtplib.SMTP("127.0.0.1", with_auth.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("auth")


# -- the seams: aiosmtpd's handler hooks, and errors that carry data -------------
# MAIL and RCPT faults run in aiosmtpd's documented hooks (tuimail/sandbox/handler.py),
# after aiosmtpd's own checks; the core words its errors without command-line
# options, and ``tuimail serve`` adds them.


def test_a_rcpt_fault_fires_after_aiosmtpds_own_sequence_check(make_sandbox: Any) -> None:
    """A RCPT without MAIL is answered 503 by aiosmtpd; the fault waits for a real RCPT."""
    sandbox = make_sandbox(faults=["rcpt:451 4.7.1 Try later"])
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
        client.ehlo()
        assert client.rcpt("b@example.test")[0] == 503
        assert client.mail("a@example.test")[0] == 250
        assert client.rcpt("b@example.test") == (451, b"4.7.1 Try later")


def test_a_mail_fault_fires_after_aiosmtpds_syntax_check(make_sandbox: Any) -> None:
    sandbox = make_sandbox(faults=["mail:421 4.3.2 Going away"])
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
        client.ehlo()
        assert client.docmd("MAIL", "FROM:")[0] == 501  # aiosmtpd's syntax error first
        assert client.mail("a@example.test") == (421, b"4.3.2 Going away")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()  # a 421 closes the connection once it is sent
    [session] = sandbox.wait_for_sessions(1)
    assert session.outcome is SessionOutcome.CLOSED_AFTER_FAULT
    assert "closed after fault" in session.outcome_words


def test_auth_not_offered_quotes_the_hint_its_face_gave(make_sandbox: Any) -> None:
    for hint, expected in (("", b"5.5.1 AUTH is not enabled on this sandbox"),
                           ("see --auth", b"5.5.1 AUTH is not enabled on this sandbox (see --auth)")):  # fmt: skip
        sandbox = make_sandbox(auth_hint=hint)
        with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
            client.ehlo()
            assert client.docmd("AUTH", "PLAIN") == (502, expected)


def test_a_refused_setting_carries_its_name_and_value() -> None:
    with pytest.raises(SettingRefused) as raised:
        sandbox_config_from(
            host="127.0.0.1", port=2525, maildir=None, security=Security.NONE, auth_users=None,
            auth_required=False, size_limit=-1, idle_timeout=60.0,
        )  # fmt: skip
    assert (raised.value.setting, raised.value.value) == ("size_limit", -1)
    assert "--" not in str(raised.value)  # the core does not speak in options


def test_sandbox_errors_are_tuimail_errors() -> None:
    assert issubclass(SandboxError, TuimailError) and issubclass(CertificateError, TuimailError)
    taken = PortUnavailable("127.0.0.1", 2525, in_use=True)
    assert isinstance(taken, SandboxError) and "--" not in str(taken)
    assert "tuimail serve" not in str(taken)  # the face that started it says what may hold it
    assert (taken.host, taken.port, taken.in_use) == ("127.0.0.1", 2525, True)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--size", "-1"], "--size must be 0 (no limit) or more"),
        (["--idle-timeout", "0"], "--idle-timeout must be more than 0 and at most 3600 seconds"),
        (["--auth-required"], "--auth-required needs --auth any or --auth-file"),
        (["--max-connections", "0"], "--max-connections must be 1 or more"),
        (["--port", "70000"], "--port 70000 is not a port number (0-65535)"),
    ],
)
def test_serve_words_a_refused_setting_with_its_option(options: list[str], words: str) -> None:
    result = run_tuimail("serve", *options)
    assert result.returncode == 1 and words in result.stderr, result.stderr
