"""The sandbox under test: on the server thread's loop, as ``tuimail serve``, and a raw client."""

from __future__ import annotations

import asyncio
import base64
import mailbox
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.cli_helpers import TUIMAIL
from tests.smtpservers import ServerThread
from tuimail.sandbox import Sandbox, SessionRecord


class RunningSandbox:
    """A Sandbox on the server thread's loop, reachable from this thread."""

    def __init__(self, servers: ServerThread, sandbox: Sandbox) -> None:
        self.servers = servers
        self.sandbox = sandbox

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.servers.loop).result(30)

    @property
    def port(self) -> int:
        return self.sandbox.port

    def stored(self) -> list[bytes]:
        box = mailbox.Maildir(self.sandbox.maildir_path, create=False)
        return [box.get_bytes(key) for key in box.iterkeys()]

    def sessions(self) -> list[SessionRecord]:
        return list(self.sandbox.sessions)

    def wait_for_sessions(self, count: int, timeout: float = 10) -> list[SessionRecord]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ended = [s for s in self.sandbox.sessions if s.ended is not None]
            if len(ended) >= count:
                self.call(self.sandbox.flush())  # their files are written in a thread
                return ended
            time.sleep(0.02)
        raise AssertionError(f"expected {count} ended sessions, have {self.sessions()}")


def sample_message(body: str = "Hello from the test\r\n") -> bytes:
    return (
        "From: a@example.test\r\nTo: b@example.test\r\nSubject: t\r\n"
        f"Message-ID: <{os.urandom(6).hex()}@example.test>\r\n\r\n{body}"
    ).encode()


def b64(text: str) -> bytes:
    return base64.b64encode(text.encode())


def transcript_text(session: SessionRecord) -> str:
    return "\n".join(entry.text for entry in session.transcript)


#: A transaction up to the 354 that invites the message, each command with its reply's code.
UP_TO_DATA = (
    (b"EHLO a\r\n", b"250"),
    (b"MAIL FROM:<a@b.test>\r\n", b"250"),
    (b"RCPT TO:<c@d.test>\r\n", b"250"),
    (b"DATA\r\n", b"354"),
)


class Client:
    """A raw SMTP client: sends bytes as given, reads whole replies."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.replies = self.sock.makefile("rb")

    def reply(self) -> bytes:
        """One whole reply (all its lines); its final line is returned."""
        while (line := self.replies.readline())[3:4] == b"-":
            pass
        if not line:
            raise ConnectionError("the server closed the connection")
        return line

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def exchange(self, *steps: tuple[bytes, bytes]) -> None:
        """Send each command and check that its reply has the code given with it."""
        for command, code in steps:
            self.send(command)
            reply = self.reply()
            assert reply.startswith(code), (command, reply)

    def close(self) -> None:
        self.replies.close()
        self.sock.close()


@contextmanager
def greeted_client(port: int, timeout: float = 10) -> Iterator[Client]:
    """A raw client the server on ``port`` has greeted with a 220; closed on leaving."""
    client = Client(port, timeout)
    try:
        assert client.reply().startswith(b"220")
        yield client
    finally:
        client.close()


def start_serve(*args: str) -> tuple[subprocess.Popen[str], int]:
    """``tuimail serve`` on a free port, as a process; returns it and its port once it listens."""
    process = subprocess.Popen(
        [TUIMAIL, "serve", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    line = process.stderr.readline()
    assert "listening on 127.0.0.1:" in line, line
    port = int(line.split("127.0.0.1:")[1].split()[0])
    return process, port


@dataclass
class ServeOutput:
    """What ``tuimail serve`` printed, read once it stopped."""

    stdout: str = ""
    stderr: str = ""


@contextmanager
def serve_with_client(
    *args: str, stop: signal.Signals = signal.SIGINT
) -> Iterator[tuple[Client, ServeOutput]]:
    """``tuimail serve`` and one raw client it has greeted; ``stop`` ends serve on leaving.

    The output is filled in after the block, when serve has stopped.
    """
    process, port = start_serve(*args)
    output = ServeOutput()
    try:
        with greeted_client(port) as client:
            yield client, output
    finally:
        process.send_signal(stop)
        output.stdout, output.stderr = process.communicate(timeout=20)
