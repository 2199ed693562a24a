"""Attacks on the sandbox's throttle and connection cap (tuimail/sandbox/protocol.py,
tuimail/sandbox/throttle.py): a client that pipelines commands and never reads a reply.

Its replies fill the kernel's buffers, aiosmtpd waits to write the next one,
and at the idle timeout closing the transport waits for buffered bytes that
will never be read: the session must still end and give back its place.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.sandbox_support import RunningSandbox
from tests.test_sandbox_chaos import FirstReply

MakeSandbox = Callable[..., RunningSandbox]


def flood_without_reading(port: int, seconds: float = 3.0) -> socket.socket:
    """Connect with a tiny receive buffer, pipeline EHLOs until the server stops reading."""
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(("127.0.0.1", port))
    client.settimeout(0.5)
    chunk = b"EHLO a\r\n" * 8192
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            client.send(chunk)
        except TimeoutError:
            break  # the server no longer reads: its replies are stuck
    return client


@pytest.mark.parametrize(
    "throttle",
    [{}, {"throttle_up": 2_000_000}, {"throttle_down": 5_000_000}],
    ids=["none", "up", "down"],
)
def test_a_client_that_never_reads_gives_back_its_place(
    make_sandbox: MakeSandbox, throttle: dict[str, int]
) -> None:
    sandbox = make_sandbox(max_connections=1, idle_timeout=1.0, **throttle)
    client = flood_without_reading(sandbox.port)
    try:
        # The server first works through the backlog the flood left in the
        # kernel's buffers (5 s on a quiet machine, 18 s with the cores busy); the loop
        # ends as soon as the place is free, so the bound only stops a hang.
        deadline = time.monotonic() + 60
        while sandbox.sandbox.connections and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sandbox.sandbox.connections == 0, "the place under the cap was never given back"
        with FirstReply(sandbox.port) as second:
            assert second.startswith(b"220"), second
    finally:
        client.close()


def test_a_fifo_in_place_of_the_runtime_file_does_not_hang_serve_on_exit(
    tmp_path: Path,
) -> None:
    from tests.test_sandbox_chaos import Serve
    from tuimail.sandbox_profile import runtime_file

    serve = Serve("--maildir", str(tmp_path / "mail"))
    try:
        record = runtime_file()
        deadline = time.monotonic() + 10
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        record.unlink()
        os.mkfifo(record, 0o600)
        serve.process.terminate()
        assert serve.process.wait(timeout=15) is not None
    finally:
        if serve.process.poll() is None:
            serve.process.kill()
            serve.process.wait()


def test_one_byte_a_second_with_starttls_still_ends_at_the_idle_timeout(
    make_sandbox: MakeSandbox,
) -> None:
    """Held: at 1 B/s each way the greeting alone would take most of a minute; the
    session still ends at the idle timeout and gives back its place."""
    from tuimail.profiles import Security
    from tuimail.sandbox import SessionOutcome

    sandbox = make_sandbox(
        security=Security.STARTTLS,
        throttle_up=1,
        throttle_down=1,
        max_connections=1,
        idle_timeout=2.0,
    )
    client = socket.create_connection(("127.0.0.1", sandbox.port), timeout=10)
    try:
        client.sendall(b"EHLO a\r\nSTARTTLS\r\n")
        started = time.monotonic()
        [record] = sandbox.wait_for_sessions(1, timeout=15)
        assert record.outcome is SessionOutcome.TIMED_OUT, record.outcome
        assert time.monotonic() - started < 30  # 1 B/s would take most of a minute
        assert sandbox.sandbox.connections == 0
    finally:
        client.close()
