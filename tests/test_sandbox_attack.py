"""The sandbox under abuse: hostile clients, two sandboxes at once, a starved process."""

from __future__ import annotations

import os
import resource
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import TUIMAIL, files_under, find_leaks, run_tuimail
from tests.sandbox_support import (
    UP_TO_DATA,
    Client,
    b64,
    greeted_client,
    sample_message,
    serve_with_client,
    start_serve,
    transcript_text,
)
from tuimail.transcript import REDACTED, Direction, EventKind

USER = "carol"
PASSWORD = "attack-Secret-97"


# -- SASL responses in the transcript -----------------------------------------


@pytest.mark.parametrize(
    ("name", "packet", "replies"),
    [
        (
            "LOGIN pipelined",
            b"AUTH LOGIN\r\n" + b64(USER) + b"\r\n" + b64(PASSWORD) + b"\r\n",
            [b"334", b"334", b"235"],
        ),
        (
            "PLAIN without initial response, pipelined",
            b"AUTH PLAIN\r\n" + b64(f"\0{USER}\0{PASSWORD}") + b"\r\n",
            [b"334", b"235"],
        ),
    ],
)
@pytest.mark.parametrize("known_users", [False, True])
def test_pipelined_sasl_responses_are_redacted(
    make_sandbox: Any, name: str, packet: bytes, replies: list[bytes], known_users: bool
) -> None:
    """The responses arrive with the AUTH, before any 334: masked by the client's own state.

    Without known users (``--auth any``) only the protocol can tell; with them
    (``--auth-file``) every form of the password is also forbidden outright.
    """
    sandbox = make_sandbox(auth_users={USER: PASSWORD} if known_users else {})
    with greeted_client(sandbox.port) as client:
        client.send(b"EHLO attacker.test\r\n")
        assert client.reply().startswith(b"250")
        client.send(packet)  # one packet: the tap sees it all before the server answers
        for code in replies:
            assert client.reply().startswith(code)
        client.send(b"MAIL FROM:<a@example.test>\r\n")
        assert client.reply().startswith(b"250")
        client.send(b"QUIT\r\n")
        assert client.reply().startswith(b"221")
    [session] = sandbox.wait_for_sessions(1)
    assert session.authenticated_as == USER
    lines = [e.text for e in session.transcript if e.direction is Direction.CLIENT]
    assert lines.count(REDACTED) == len(replies) - 1
    assert "MAIL FROM:<a@example.test>" in lines  # the command after AUTH is not masked
    written = files_under(sandbox.sandbox.sessions_dir)
    assert written
    assert find_leaks(PASSWORD, {**written, "transcript": transcript_text(session).encode()}) == []


def test_known_passwords_are_forbidden_anywhere_in_the_sandbox_output(make_sandbox: Any) -> None:
    """A password where no protocol rule expects one (EHLO, a junk command, MAIL FROM)."""
    sandbox = make_sandbox(auth_users={USER: PASSWORD})
    blob = b64(f"\0{USER}\0{PASSWORD}").decode()
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
        client.ehlo(PASSWORD)
        client.docmd("XSECRET", f"{PASSWORD} {blob} {b64(PASSWORD).decode()}")
        client.user, client.password = USER, PASSWORD
        client.auth("LOGIN", client.auth_login, initial_response_ok=False)
        client.sendmail(f"{PASSWORD}@example.test", ["b@example.test"], sample_message())
    [session] = sandbox.wait_for_sessions(1)
    written = files_under(sandbox.sandbox.sessions_dir)
    summary = session.summary().encode()
    leaks = find_leaks(PASSWORD, {**written, "t": transcript_text(session).encode(), "s": summary})
    assert leaks == []
    assert not any(blob.encode() in data for data in written.values())
    assert session.helo == REDACTED


def test_serve_with_auth_file_never_prints_a_password(tmp_path: Path) -> None:
    """The live output of ``tuimail serve`` and its session files, for a pipelining client."""
    auth_file = tmp_path / "users"
    auth_file.write_text(f"{USER}:{PASSWORD}\n")
    sessions = tmp_path / "home" / "data" / "tuimail" / "sandbox" / "sessions"
    with serve_with_client("--auth-file", str(auth_file), stop=signal.SIGTERM) as (client, out):
        client.send(b"EHLO x\r\nAUTH LOGIN\r\n" + b64(USER) + b"\r\n" + b64(PASSWORD) + b"\r\n")
        for code in (b"250", b"334", b"334", b"235"):
            assert client.reply().startswith(code)
        client.send(b"NOOP " + PASSWORD.encode() + b"\r\nQUIT\r\n")
        assert client.reply().startswith(b"250")
        assert client.reply().startswith(b"221")
    stdout, stderr = out.stdout, out.stderr
    assert "session ended: completed" in stdout
    written = files_under(sessions)
    assert written
    assert (
        find_leaks(PASSWORD, {**written, "stdout": stdout.encode(), "stderr": stderr.encode()})
        == []
    )


# -- what the tap shows -------------------------------------------------------


def test_a_segment_ending_inside_a_line_that_looks_like_a_dot_keeps_data_going(
    make_sandbox: Any,
) -> None:
    """``...a.\\r\\nS`` is not the final dot: the rest of the body is not shown as commands."""
    sandbox = make_sandbox()
    with greeted_client(sandbox.port) as client:
        client.exchange(*UP_TO_DATA)
        # The tap keeps the last four bytes of a segment: here ".\r\nS".
        client.send(b"Subject: t\r\n\r\nwait a.\r\nS")
        time.sleep(0.2)  # pacing only: lets the segment arrive on its own
        client.send(b"ecret body line\r\nMAIL FROM:<not-a-command@x>\r\n.\r\n")
        assert client.reply().startswith(b"250")
        client.send(b"QUIT\r\n")
        assert client.reply().startswith(b"221")
    [session] = sandbox.wait_for_sessions(1)
    lines = [e.text for e in session.transcript if e.direction is Direction.CLIENT]
    assert not any("ecret body" in line or "not-a-command" in line for line in lines), lines
    assert sum(line.startswith("[message content:") for line in lines) == 1
    assert lines[-1] == "QUIT"


def test_commands_pipelined_after_data_wait_for_the_354(make_sandbox: Any) -> None:
    """A client that sends its body with DATA: the body is shown as content, not commands."""
    sandbox = make_sandbox()
    with greeted_client(sandbox.port) as client:
        client.send(
            b"EHLO a\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n"
            b"Subject: t\r\n\r\nRSET\r\n.\r\nQUIT\r\n"
        )
        for code in (b"250", b"250", b"250", b"354", b"250", b"221"):
            assert client.reply().startswith(code)
    [session] = sandbox.wait_for_sessions(1)
    lines = [e.text for e in session.transcript if e.direction is Direction.CLIENT]
    assert "RSET" not in lines and lines[-1] == "QUIT"
    assert len(sandbox.stored()) == 1


@pytest.mark.parametrize("line_end", [b"", b"\r\n"])
def test_plaintext_after_the_starttls_220_is_shown_as_plaintext_and_discarded(
    make_sandbox: Any, line_end: bytes
) -> None:
    from tuimail.profiles import Security

    sandbox = make_sandbox(security=Security.STARTTLS)
    context = ssl.create_default_context(cafile=str(sandbox.sandbox.ca_file))
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
        client.ehlo()
        assert client.sock is not None
        client.sock.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>" + line_end)
        code, _ = client.getreply()
        assert code == 220
        client.sock = context.wrap_socket(client.sock, server_hostname="localhost")
        client.file = None
        client.ehlo_resp = None
        client.esmtp_features = {}
        client.does_esmtp = False
        client.ehlo()
        client.sendmail("a@example.test", ["b@example.test"], sample_message())
    [session] = sandbox.wait_for_sessions(1)
    injected = [e for e in session.transcript if "injected@evil.test" in e.text]
    assert injected and not any(e.secure for e in injected), injected
    assert any(e.kind is EventKind.WARNING and "discarded" in e.text for e in session.transcript)
    secure_mail = [e for e in session.transcript if e.text.upper().startswith("MAIL FROM:<A@")]
    assert secure_mail and all(e.secure for e in secure_mail)
    assert len(sandbox.stored()) == 1


# -- SMTPUTF8 -----------------------------------------------------------------


def test_a_unicode_address_without_smtputf8_is_refused_as_postfix_does(make_sandbox: Any) -> None:
    sandbox = make_sandbox()
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
        # smtplib writes UTF-8 only with SMTPUTF8; a client that forgets it may not care.
        client.command_encoding = "utf-8"
        client.ehlo()
        assert client.mail("a@example.test") == (250, b"OK")
        code, text = client.rcpt("jürgen@example.test")
        assert (code, text[:5]) == (553, b"5.6.7")
        client.rset()
        client.command_encoding = "utf-8"  # rset() set it back to ASCII
        code, text = client.mail("jürgen@example.test")
        assert (code, text[:5]) == (553, b"5.6.7")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("a@example.test", ["jürgen@example.test"], sample_message())
        # Declared, the same addresses are fine.
        client.sendmail(
            "jürgen@example.test", ["jürgen@example.test"], sample_message(),
            mail_options=["SMTPUTF8"],
        )  # fmt: skip
    assert len(sandbox.stored()) == 1


# -- directory modes ----------------------------------------------------------


def test_serve_maildir_leaves_the_parent_directory_mode_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    process, _port = start_serve("--maildir", str(shared / "box"))
    process.terminate()  # it listens: the directories are made
    process.communicate(timeout=20)
    assert shared.stat().st_mode & 0o777 == 0o755
    for created in (shared / "box", shared / "box" / "new"):
        assert created.stat().st_mode & 0o777 == 0o700, created


# -- two sandboxes sharing a data dir -----------------------------------------


def test_two_sandboxes_sharing_a_data_dir_keep_every_session(isolated_dirs: Path) -> None:
    """Sessions started in the same second by two processes get two files."""
    first, first_port = start_serve()
    second, second_port = start_serve("--port", "0")
    try:
        clients = [Client(first_port), Client(second_port)]
        for client in clients:
            assert client.reply().startswith(b"220")
        for client in clients:
            client.send(b"QUIT\r\n")
            assert client.reply().startswith(b"221")
            client.close()
    finally:
        for process in (first, second):
            process.terminate()
            process.communicate(timeout=20)
    sessions = isolated_dirs / "data" / "tuimail" / "sandbox" / "sessions"
    assert len(list(sessions.glob("*.json"))) == 2


# -- the sandbox certificate --------------------------------------------------


def starttls_send(port: int, ca_file: Path) -> None:
    context = ssl.create_default_context(cafile=str(ca_file))
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.starttls(context=context)
        client.sendmail("a@example.test", ["b@example.test"], sample_message())


def test_sandboxes_starting_with_tls_at_once_share_one_good_certificate(
    isolated_dirs: Path,
) -> None:
    """Four real processes make the certificate at the same moment; every one serves TLS."""
    processes = [
        subprocess.Popen(
            [TUIMAIL, "serve", "--port", "0", "--tls"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    ports = []
    try:
        for process in processes:
            assert process.stderr is not None
            line = process.stderr.readline()
            assert "listening on 127.0.0.1:" in line, line + process.stderr.read()
            ports.append(int(line.split("127.0.0.1:")[1].split()[0]))
        ca_file = isolated_dirs / "data" / "tuimail" / "sandbox" / "tls" / "ca.pem"
        for port in ports:
            starttls_send(port, ca_file)
    finally:
        for process in processes:
            process.terminate()
            process.communicate(timeout=20)
    again, port = start_serve("--tls")  # and every later start too
    try:
        starttls_send(port, ca_file)
    finally:
        again.terminate()
        again.communicate(timeout=20)


def test_a_key_that_does_not_match_its_certificate_is_replaced(
    make_sandbox: Any, tmp_path: Path
) -> None:
    from tuimail.profiles import Security
    from tuimail.selfsigned import ensure_certificate

    mine, other = tmp_path / "tls", tmp_path / "other"
    ensure_certificate(mine)
    ensure_certificate(other)
    (mine / "key.pem").write_bytes((other / "key.pem").read_bytes())
    sandbox = make_sandbox(security=Security.STARTTLS, certificate_dir=mine)
    starttls_send(sandbox.port, mine / "ca.pem")
    # A certificate from another CA than ca.pem is no better.
    (mine / "ca.pem").write_bytes((other / "ca.pem").read_bytes())
    again = make_sandbox(security=Security.STARTTLS, certificate_dir=mine)
    starttls_send(again.port, mine / "ca.pem")


# -- a connection cap ---------------------------------------------------------


def test_connections_beyond_the_open_file_limit_are_answered_421(isolated_dirs: Path) -> None:
    """``tuimail serve`` under a low RLIMIT_NOFILE: every client gets an answer.

    The limit is lowered in the child process only, so this test does not
    depend on the machine's limit nor change its own.
    """

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))

    process = subprocess.Popen(
        [TUIMAIL, "serve", "--port", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=low_limit,
    )  # fmt: skip
    sockets: list[socket.socket] = []
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        port = int(line.split("127.0.0.1:")[1].split()[0])
        greetings = []
        for _ in range(200):  # more than the limit allows descriptors
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sockets.append(sock)
            greetings.append(sock.recv(1024)[:3])
        assert set(greetings) == {b"220", b"421"}
        accepted = greetings.count(b"220")
        assert accepted < 160 // 2
        for sock in sockets:
            sock.close()
        sockets.clear()
        deadline = time.monotonic() + 10  # until the server has seen those closes
        while True:
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:  # served again
                    client.sendmail("a@example.test", ["b@example.test"], sample_message())
                break
            except smtplib.SMTPConnectError as exc:
                assert exc.smtp_code == 421 and time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        for sock in sockets:
            sock.close()
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert "refused" in stderr and "beyond the cap" in stderr


# -- memory and disk under a flood ---------------------------------------------


def flood(port: int, lines: list[bytes]) -> None:
    """Send ``lines`` as fast as the server takes them, reading its answers alongside."""
    client = Client(port, timeout=30)
    drained = threading.Thread(target=lambda: client.sock.makefile("rb").read(), daemon=True)
    drained.start()
    try:
        client.send(b"".join(lines) + b"QUIT\r\n")
        drained.join(30)
    finally:
        client.close()


@pytest.mark.parametrize(
    "lines",
    [[b"NOOP\r\n"] * 3000, [b"X" * 5000 + b"\r\n"] * 400, [b"Y" * 100_000 + b"\r\n"] * 100],
    ids=["many short lines", "long lines", "over-long lines"],
)
def test_a_flooding_session_keeps_a_bounded_transcript(
    make_sandbox: Any, lines: list[bytes]
) -> None:
    from tuimail.sandbox import SESSION_MAX_CHARS, SESSION_MAX_ENTRIES

    sandbox = make_sandbox()
    flood(sandbox.port, lines)
    [session] = sandbox.wait_for_sessions(1)
    entries = list(session.transcript)
    assert len(entries) <= SESSION_MAX_ENTRIES + 2  # the marker and the session's end
    assert sum(len(e.text) for e in entries) <= SESSION_MAX_CHARS + 1000
    assert any(e.kind is EventKind.TRIMMED for e in entries)
    assert entries[-1].kind is EventKind.CLOSED and "omitted" in entries[-1].text
    [written] = files_under(sandbox.sandbox.sessions_dir).values()
    assert len(written) < 2 * SESSION_MAX_CHARS + 200 * SESSION_MAX_ENTRIES


def test_session_files_are_pruned_while_running(
    make_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuimail.sandbox import session_files as sandbox_module

    monkeypatch.setattr(sandbox_module, "MAX_SESSION_FILES", 3)
    monkeypatch.setattr(sandbox_module, "PRUNE_EVERY_SESSIONS", 2)
    sandbox = make_sandbox()
    directory = sandbox.sandbox.sessions_dir
    old = directory / "20200101T000000-1-1-abcdef.json"
    old.write_text("{}")
    month_ago = time.time() - 30 * 24 * 3600
    os.utime(old, (month_ago, month_ago))
    for _ in range(8):
        with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
            client.noop()
    sandbox.wait_for_sessions(8)
    kept = list(directory.glob("*.json"))
    assert len(kept) == 3 and old not in kept


def test_another_client_is_answered_while_a_flood_runs(make_sandbox: Any) -> None:
    sandbox = make_sandbox()
    flooding = threading.Thread(
        target=flood, args=(sandbox.port, [b"Z" * 10_000 + b"\r\n"] * 3000), daemon=True
    )
    flooding.start()
    try:
        with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
            assert client.noop()[0] == 250
    finally:
        flooding.join(60)


def test_recipients_and_listed_messages_are_bounded_per_session(make_sandbox: Any) -> None:
    """Postfix's 452 4.5.3 past the recipient limit; a session lists a bounded number of messages."""
    from tuimail.sandbox import MAX_RECIPIENTS, SESSION_MAX_MESSAGES

    sandbox = make_sandbox()
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=30) as client:
        client.ehlo()
        client.mail("a@example.test")
        for number in range(MAX_RECIPIENTS):
            assert client.rcpt(f"r{number}@example.test")[0] == 250
        code, text = client.rcpt("one-too-many@example.test")
        assert (code, text[:5]) == (452, b"4.5.3")
        client.rset()
        for _ in range(SESSION_MAX_MESSAGES + 5):
            client.sendmail("a@example.test", ["b@example.test"], b"Subject: s\r\n\r\nx\r\n")
    [session] = sandbox.wait_for_sessions(1)
    assert session.message_count == SESSION_MAX_MESSAGES + 5
    assert len(session.messages) == SESSION_MAX_MESSAGES
    assert f"{SESSION_MAX_MESSAGES + 5} message(s)" in session.summary()
    assert len(sandbox.stored()) == SESSION_MAX_MESSAGES + 5


def test_a_maildir_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_tuimail("serve", "--port", "0", "--maildir", str(blocker / "mail"))
    assert result.returncode == 1, result.stderr
    assert "cannot create the Maildir at" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_certificate_directory_that_cannot_be_made_is_a_clear_error(
    make_sandbox: Any, tmp_path: Path
) -> None:
    from tuimail.profiles import Security
    from tuimail.sandbox import SandboxError

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(SandboxError, match="cannot make the sandbox certificate"):
        make_sandbox(security=Security.STARTTLS, certificate_dir=blocker / "tls")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("/dev/zero", "not a regular file"), ("fifo", "not a regular file"), ("latin1", "not UTF-8")],
)
def test_an_auth_file_that_is_not_a_small_text_file_is_a_clear_error(
    tmp_path: Path, name: str, expected: str
) -> None:
    path = Path(name)
    if name == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    elif name == "latin1":
        path = tmp_path / "users"
        path.write_bytes("jürgen:pässword\n".encode("latin-1"))
    result = run_tuimail("serve", "--port", "0", "--auth-file", str(path), timeout=20)
    assert result.returncode == 1, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_serve_quiet_never_prints_the_clients_control_characters() -> None:
    with serve_with_client("--quiet", stop=signal.SIGTERM) as (client, out):
        client.send(b"EHLO \x1b]0;pwned\x07\x1b[2J.example\r\nQUIT\r\n")
        assert client.reply().startswith(b"250")
        assert client.reply().startswith(b"221")
    stdout = out.stdout
    assert "helo" in stdout and "\x1b" not in stdout and "\x07" not in stdout


def test_a_hostile_message_id_is_escaped_and_cut(make_sandbox: Any) -> None:
    from tuimail.sandbox import MAX_MESSAGE_ID_CHARS

    sandbox = make_sandbox()
    folded = b"".join(b"\r\n " + b"x" * 900 for _ in range(50))  # long, in legal lines
    message = b"Message-ID: <\x1b]0;pwned\x07" + folded + b"@x>\r\n\r\nbody\r\n"
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
        client.sendmail("a@example.test", ["b@example.test"], message)
    [session] = sandbox.wait_for_sessions(1)
    [stored] = session.messages
    assert "\x1b" not in stored.message_id and len(stored.message_id) < MAX_MESSAGE_ID_CHARS + 50
    assert not any("\x1b" in e.text for e in session.transcript)
