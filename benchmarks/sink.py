"""A bare SMTP sink to measure against, in its own process.

The server is plain aiosmtpd with a handler that answers ``250 OK`` to every
message and keeps nothing, so what is measured is the client. It runs in a
separate process so the client under test does not share an event loop (or a
GIL) with it; on a 2-core machine client and server then get a core each.

Run directly, it prints ``PORT <n>`` on one line and serves until its standard
input closes or it receives SIGTERM/SIGINT::

    python -m benchmarks.sink

From Python, use :func:`running_sink`, which starts the process, waits (with a
timeout) for the port and always terminates the process on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
#: How long to wait for the sink to print its port, and for it to exit.
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


class SinkHandler:
    """Accepts every message and throws it away."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


async def serve(host: str = HOST, port: int = 0) -> None:
    """Serve until stdin reaches EOF (the parent went away) or a signal arrives."""
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    handler = SinkHandler()
    server = await loop.create_server(
        # A fixed host name: aiosmtpd's default calls socket.getfqdn(), which
        # can stall on a broken resolver.
        lambda: SMTP(handler, hostname="sink.benchmark.test", ident="bench-sink", loop=loop),
        host=host,
        port=port,
    )
    bound_port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    stdin_fd = sys.stdin.fileno() if sys.stdin is not None else -1
    watching_stdin = False
    if stdin_fd >= 0 and not os.isatty(stdin_fd):

        def on_stdin() -> None:
            try:
                chunk = os.read(stdin_fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                stop.set()

        with contextlib.suppress(OSError, ValueError, NotImplementedError):
            loop.add_reader(stdin_fd, on_stdin)
            watching_stdin = True

    print(f"PORT {bound_port}", flush=True)
    try:
        await stop.wait()
    finally:
        if watching_stdin:
            loop.remove_reader(stdin_fd)
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout=STOP_TIMEOUT)


def _read_port(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """The port from the sink's first line of output, within ``timeout`` seconds."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the SMTP sink did not report its port within {timeout:g} s")
            if not selector.select(timeout=remaining):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(
                    f"the SMTP sink exited before reporting its port (exit code {proc.poll()})"
                )
            buffer += chunk
    line = buffer.split(b"\n", 1)[0].decode("ascii", "replace").strip()
    word, _, number = line.partition(" ")
    if word != "PORT" or not number.isdigit():
        raise RuntimeError(f"unexpected first line from the SMTP sink: {line!r}")
    return int(number)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Close stdin, then SIGTERM, then SIGKILL: each step with a timeout."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
        return
    except subprocess.TimeoutExpired:
        pass
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def running_sink(timeout: float = START_TIMEOUT) -> Iterator[int]:
    """Run the sink in a child process; yields its port; the process ends on exit, always."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.sink"],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,
    )
    try:
        yield _read_port(proc, timeout)
    finally:
        _stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def main() -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
