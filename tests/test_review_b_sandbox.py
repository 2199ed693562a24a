"""The sandbox under abuse: what its transcript shows of a hostile client's lines."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import files_under, find_leaks
from tests.outbox_helpers import message, profile
from tests.sandbox_support import (
    b64,
    greeted_client,
    sample_message,
    serve_with_client,
    transcript_text,
)
from tests.smtpservers import Reply, ScriptedServer, ServerThread
from tuimail.credentials import Secret
from tuimail.line_framer import MAX_LINE, cut_note
from tuimail.outbox import Outbox, OutboxError
from tuimail.profiles import Security
from tuimail.sandbox import (
    MAX_MESSAGE_ID_CHARS,
    ClientTap,
    Sandbox,
    SandboxConfig,
    SessionRecord,
)
from tuimail.session import send
from tuimail.transcript import (
    MAX_LINE_CHARS,
    REDACTED,
    ConversationRedactor,
    Direction,
    EventKind,
)

USER = "dora"
PASSWORD = "review-Secret-31"
BLOB = b64(f"\0{USER}\0{PASSWORD}")


@pytest.mark.parametrize(
    ("separator", "reply"),
    [
        (b"\r", b"235"),  # aiosmtpd authenticates with it
        (b"\x1f", b"235"),  # str.split() splits here too
        (b"\x0c", b"235"),
        (b"\t", b"235"),
    ],
    ids=["cr", "unit-separator", "form-feed", "tab"],
)
def test_an_auth_initial_response_after_any_whitespace_is_masked(
    make_sandbox: Any, separator: bytes, reply: bytes
) -> None:
    """aiosmtpd splits AUTH's argument at any whitespace; the transcript must too."""
    sandbox = make_sandbox(auth_users={})  # --auth any: only the protocol tells
    with greeted_client(sandbox.port) as client:
        client.send(b"EHLO attacker.test\r\n")
        assert client.reply().startswith(b"250")
        client.send(b"AUTH PLAIN" + separator + BLOB + b"\r\n")
        assert client.reply().startswith(reply)
        client.send(b"QUIT\r\n")
        assert client.reply().startswith(b"221")
    [session] = sandbox.wait_for_sessions(1)
    assert session.authenticated_as == USER
    text = transcript_text(session)
    written = files_under(sandbox.sandbox.sessions_dir)
    assert find_leaks(PASSWORD, {**written, "transcript": text.encode()}) == []
    assert not any(BLOB in data for data in written.values()) and BLOB.decode() not in text
    lines = [e.text for e in session.transcript if e.direction == Direction.CLIENT]
    assert f"AUTH PLAIN {REDACTED}" in lines
    assert "QUIT" in lines


@pytest.mark.parametrize("line", [b"AUTH\tPLAIN ", b" AUTH PLAIN ", b"auth\x0bplain\x0b"])
def test_a_malformed_auth_line_is_masked_too(make_sandbox: Any, line: bytes) -> None:
    """The server refuses it, but it still carries the client's secret."""
    sandbox = make_sandbox(auth_users={})
    with greeted_client(sandbox.port) as client:
        client.send(b"EHLO attacker.test\r\n")
        assert client.reply().startswith(b"250")
        client.send(line + BLOB + b"\r\n")
        client.reply()
        client.send(b"QUIT\r\n")
        while not client.reply().startswith(b"221"):
            pass
    [session] = sandbox.wait_for_sessions(1)
    text = transcript_text(session)
    written = files_under(sandbox.sandbox.sessions_dir)
    assert find_leaks(PASSWORD, {**written, "transcript": text.encode()}) == []


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    """``chattr +i`` a directory for the test (root on ext4/tmpfs), undone afterwards."""
    made: list[Path] = []

    def make(directory: Path) -> None:
        done = subprocess.run(["chattr", "+i", str(directory)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"chattr +i is not available here: {done.stderr!r}")
        made.append(directory)

    yield make
    for directory in made:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


def test_a_message_the_maildir_cannot_take_is_refused_for_now(
    make_sandbox: Any, immutable: Callable[[Path], None]
) -> None:
    """Not aiosmtpd's '500 Error: (PermissionError) /path...': a 4xx, so a client
    under test keeps the message, and the session says why."""
    sandbox = make_sandbox()
    maildir = sandbox.sandbox.maildir_path
    immutable(maildir / "new")
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
        client.ehlo("client.test")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("a@example.test", ["b@example.test"], sample_message())
        assert refused.value.smtp_code == 451, refused.value
        assert str(maildir).encode() not in refused.value.smtp_error
        assert client.noop()[0] == 250  # the session goes on
    [session] = sandbox.wait_for_sessions(1)
    errors = [e.text for e in session.transcript if e.kind is EventKind.ERROR]
    assert any("could not store the message" in text for text in errors), errors
    assert sandbox.sandbox.messages() == []


def test_a_message_that_cannot_be_queued_leaves_no_copy_in_tmp(
    immutable: Callable[[Path], None],
) -> None:
    """A failed rename into new/ removes the written copy (a message, maybe private)."""
    outbox = Outbox()
    outbox.enqueue(profile(1), message())  # makes the directories
    immutable(outbox.queue_dir / "new")
    with pytest.raises(OutboxError):
        outbox.enqueue(profile(1), message())
    assert list((outbox.queue_dir / "tmp").iterdir()) == []


# -- a password where a long line is cut ----------------------------------------


def straddling(prefix: str, secret: str) -> str:
    """``prefix`` padded so that ``secret`` straddles the transcript's line cut."""
    return prefix + "a" * (MAX_LINE_CHARS - len(prefix) - len(secret) // 2) + secret


def test_a_known_password_across_the_line_cut_is_masked_whole(make_sandbox: Any) -> None:
    """The transcript cuts a long line; masking after the cut showed the password's start."""
    sandbox = make_sandbox(auth_users={USER: PASSWORD})
    with greeted_client(sandbox.port) as client:
        client.send(straddling("XJUNK ", PASSWORD).encode() + b"\r\n")
        client.reply()
        client.send(b"EHLO client.test\r\n")
        assert client.reply().startswith(b"250")
        client.send(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
        for _ in range(3):
            client.reply()
        message_id = "<" + "b" * (MAX_MESSAGE_ID_CHARS - 1 - len(PASSWORD) // 2) + PASSWORD + ">"
        client.send(f"Message-ID: {message_id}\r\n\r\nhi\r\n.\r\n".encode())
        assert client.reply().startswith(b"250")
        client.send(b"QUIT\r\n")
        client.reply()
    [session] = sandbox.wait_for_sessions(1)
    text = transcript_text(session)
    written = files_under(sandbox.sandbox.sessions_dir)
    half = PASSWORD[: len(PASSWORD) // 2]
    assert half not in text and not any(half.encode() in data for data in written.values())
    assert REDACTED in text


async def test_a_server_echoing_the_password_across_the_line_cut_is_masked_whole(
    servers: ServerThread,
) -> None:
    """A hostile server quotes the password it was given where the client's transcript
    cuts the line: the sent-transcript file and the terminal would show its start."""
    script = ScriptedServer(
        {
            "EHLO": Reply("250-mx.test\r\n250 AUTH PLAIN"),
            "AUTH": Reply(straddling("535 5.7.8 ", PASSWORD)),
        }
    )
    port = servers.scripted(script)
    account = profile(port, username=USER, allow_plaintext_auth=True)
    report = await send(account, message(), Secret(PASSWORD))
    assert report.failure is not None and report.failure.code == 535
    text = "\n".join(e.text for e in report.transcript)
    assert "a" * 100 in text  # the reply is there, cut
    assert PASSWORD[: len(PASSWORD) // 2] not in text


# -- implicit TLS: the connection cap counts handshakes --------------------------


def _eventually(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_implicit_tls_connections_that_never_handshake_count_against_the_cap(
    make_sandbox: Any,
) -> None:
    """They held a descriptor each that no cap counted (they became sessions only
    after a handshake): enough of them exhausted the open-file limit."""
    sandbox = make_sandbox(security=Security.TLS, max_connections=4)
    idle = [socket.create_connection(("127.0.0.1", sandbox.port), timeout=10) for _ in range(10)]
    try:
        _eventually(
            lambda: sandbox.sandbox.refused_connections >= 6, "the cap never refused anyone"
        )
        assert sandbox.sandbox.connections == 4
    finally:
        for sock in idle:
            sock.close()
    _eventually(lambda: sandbox.sandbox.connections == 0, "closed handshakes were not released")
    context = ssl.create_default_context(cafile=str(sandbox.sandbox.ca_file))
    with smtplib.SMTP_SSL("127.0.0.1", sandbox.port, timeout=10, context=context) as client:
        client.sendmail("a@example.test", ["b@example.test"], sample_message())
    assert len(sandbox.stored()) == 1


def test_an_implicit_tls_client_that_speaks_before_the_greeting_is_heard(
    make_sandbox: Any,
) -> None:
    """Bytes sent right after the handshake, before the session takes the connection over."""
    sandbox = make_sandbox(security=Security.TLS)
    context = ssl.create_default_context(cafile=str(sandbox.sandbox.ca_file))
    context.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", sandbox.port), timeout=10)
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"EHLO early.test\r\nNOOP\r\nQUIT\r\n")
        replies = b""
        while b"221" not in replies:
            chunk = tls.recv(4096)
            assert chunk, replies
            replies += chunk
    assert replies.startswith(b"220") and b"250 HELP" in replies and b"250 OK" in replies
    [session] = sandbox.wait_for_sessions(1)
    assert session.secure and session.helo == "early.test"


def test_an_implicit_tls_handshake_that_fails_frees_its_place(make_sandbox: Any) -> None:
    sandbox = make_sandbox(security=Security.TLS, max_connections=2)
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", sandbox.port), timeout=10) as sock:
            sock.sendall(b"EHLO this is not TLS\r\n" * 20)
            with contextlib.suppress(OSError):
                sock.recv(1024)
    _eventually(lambda: sandbox.sandbox.connections == 0, "failed handshakes were not released")
    assert sandbox.sandbox.refused_connections == 0


async def test_a_handshake_stalled_as_the_sandbox_stops_is_aborted_released_and_cancelled(
    tmp_path: Path,
) -> None:
    """A real TLS client sends its ClientHello, reads the server's answer, then says no more.

    Stopping the sandbox cancels the handshake: the connection is closed, its
    place under the cap given back, and the handshake's task ends cancelled
    (one that swallowed its cancellation would tell the canceller it finished).
    """
    sandbox = Sandbox(
        SandboxConfig(
            port=0,
            security=Security.TLS,
            maildir=tmp_path / "maildir",
            sessions_dir=tmp_path / "sessions",
        )
    )
    await sandbox.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", sandbox.port)
    try:
        context = ssl.create_default_context(cafile=str(sandbox.ca_file))
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        client = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
        with pytest.raises(ssl.SSLWantReadError):
            client.do_handshake()
        writer.write(outgoing.read())  # the ClientHello, and nothing after it
        async with asyncio.timeout(10):
            assert await reader.read(65536)  # the server's half: it waits for the client's
        [handshake] = [
            task
            for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "__qualname__", "") == "ImplicitTLSAdmission._handshake"
        ]
        assert sandbox.connections == 1
        await sandbox.stop(grace=1)
        assert handshake.cancelled()
        assert sandbox.connections == 0
        async with asyncio.timeout(10):
            with contextlib.suppress(ConnectionResetError):
                await reader.read()  # the sandbox closed the connection
    finally:
        writer.close()
        await sandbox.stop(grace=1)


def test_plaintext_discarded_before_tls_is_framed_with_its_cut_noted() -> None:
    """Bytes after the 220 to STARTTLS go through the tap's line framer, as any line."""
    record = SessionRecord(id="t", peer="p")
    tap = ClientTap(record, ConversationRedactor())
    tap.server_reply("220 sandbox ready")
    tap.feed(b"STARTTLS\r\n")
    tap.server_reply("220 Ready to start TLS")
    tap.feed(b"NOOP\r\n" + b"L" * (MAX_LINE + 10))  # the last line never ends: TLS follows
    tap.tls_started()
    tap.feed(b"EHLO after.test\r\n")
    client = [e.text for e in record.transcript if e.direction == Direction.CLIENT]
    assert client[:2] == ["STARTTLS", "NOOP"] and client[-1] == "EHLO after.test"
    assert client[2].startswith("LLLL") and len(client) == 4
    notes = [e.text for e in record.transcript if e.kind == EventKind.INFO]
    assert notes == [cut_note(10)]
    [warning] = [e.text for e in record.transcript if e.kind == EventKind.WARNING]
    assert warning.startswith(f"{6 + MAX_LINE + 10:,} bytes of plaintext")


# -- STARTTLS handshakes that never complete -------------------------------------


def _abandon(port: int, packet: bytes) -> None:
    """Send ``packet``, then say nothing more until the server hangs up."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(packet)
        with contextlib.suppress(OSError):
            while sock.recv(4096):
                pass


@pytest.mark.parametrize(
    "packet",
    [b"EHLO client.test\r\nSTARTTLS\r\n", b"QUIT\r\nSTARTTLS\r\n", b"STARTTLS\r\n\x16\x03\x01"],
    ids=["silent-after-220", "after-quit", "half-a-hello"],
)
def test_a_starttls_handshake_that_never_completes_gives_its_place_back(
    make_sandbox: Any, packet: bytes
) -> None:
    """aiosmtpd's SSL layer told the session nothing: it never ended, its place
    under the cap was never given back, and enough of them refused everyone."""
    sandbox = make_sandbox(security=Security.STARTTLS, idle_timeout=0.5, max_connections=2)
    for _ in range(3):
        _abandon(sandbox.port, packet)
        _eventually(lambda: sandbox.sandbox.connections == 0, "its place was never given back")
    assert not sandbox.sandbox.active
    assert len(sandbox.wait_for_sessions(3)) == 3
    context = ssl.create_default_context(cafile=str(sandbox.sandbox.ca_file))
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
        client.starttls(context=context)
        client.sendmail("a@example.test", ["b@example.test"], sample_message())
    assert len(sandbox.stored()) == 1
    assert sandbox.sandbox.refused_connections == 0


# -- tuimail serve's own stderr ---------------------------------------------------


def test_serve_never_prints_aiosmtpd_log_lines_with_the_clients_bytes() -> None:
    """aiosmtpd warned 'unrecognised: <command>' through Python's last-resort
    handler: a client's terminal escapes went raw to serve's terminal."""
    with serve_with_client("--quiet") as (client, out):
        client.send(b"\x1b]0;pwned\x07X\x1b[2J\r\n")
        assert client.reply().startswith(b"500")
        client.send(b"QUIT\r\n")
        client.reply()
    assert "\x1b" not in out.stdout + out.stderr, out.stderr
    assert "unrecognised" not in out.stderr


def test_a_failed_starttls_handshake_is_in_the_session_not_a_traceback_on_stderr() -> None:
    with serve_with_client("--tls") as (client, out):
        client.send(b"EHLO client.test\r\nSTARTTLS\r\n")
        assert client.reply().startswith(b"250")
        assert client.reply().startswith(b"220")
        client.send(b"this is not a TLS handshake\r\n" * 4)
        with contextlib.suppress(OSError):
            while client.sock.recv(4096):
                pass
    assert "Traceback" not in out.stderr, out.stderr
    assert "the TLS handshake after STARTTLS failed" in out.stdout, out.stdout
    assert "session ended" in out.stdout
