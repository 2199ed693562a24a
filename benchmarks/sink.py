"""SMTP servers to measure against, each in its own process.

Three kinds of server, chosen with ``--kind``:

``sink`` (the default)
    Plain aiosmtpd with a handler that answers ``250 OK`` to every message and
    keeps nothing, so what is measured is the client.
``maildir``
    Plain aiosmtpd with aiosmtpd's own stock ``aiosmtpd.handlers.Mailbox``
    handler, which stores every message in a Maildir under ``--dir``: the
    storage-for-storage reference for the sandbox. It parses each message into
    an ``email.message.Message``, adds three ``X-`` headers and writes it back
    out, which is more work than the sandbox's storage.
``maildir-raw``
    Plain aiosmtpd whose handler stores the bytes as received with
    ``mailbox.Maildir.add(envelope.original_content)``: the very call the
    sandbox stores with, and nothing else, so the sandbox's difference from it
    is what the sandbox adds (transcripts, Message-ID parsing, its hooks).
``sandbox``
    tuimail's :class:`~tuimail.sandbox.Sandbox` with its server-side transcripts
    on, its Maildir and session files under ``--dir``.

The server runs in a separate process so the client under test does not share
an event loop (or a GIL) with it; on a 2-core machine client and server then
get a core each.

Run directly, it prints ``PORT <n>`` on one line and serves until its standard
input closes or it receives SIGTERM/SIGINT::

    python -m benchmarks.sink
    python -m benchmarks.sink --kind sandbox --dir /tmp/somewhere
    python -m benchmarks.sink --kind sandbox --dir /tmp/x --cprofile-out /tmp/x.prof

From Python, use :func:`running_sink` (yields the port) or
:func:`running_server` (yields the port and the process id), which start the
process, wait (with a timeout) for the port and always terminate the process
on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib
import mailbox
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import HOST, STOP_TIMEOUT, child

#: How long to wait for the sink to print its port.
START_TIMEOUT = 15.0
#: The kinds of server this module runs; ``sink`` keeps nothing.
KINDS = ("sink", "maildir", "maildir-raw", "sandbox")
#: Kinds that store messages, and so need a directory.
STORING_KINDS = ("maildir", "maildir-raw", "sandbox")


class SinkHandler:
    """Accepts every message and throws it away."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


class RawMaildirHandler:
    """Stores each message's bytes as received in a Maildir, as the sandbox does."""

    def __init__(self, path: Path) -> None:
        self.maildir = mailbox.Maildir(path, create=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.maildir.add(envelope.original_content or b"")
        return "250 OK"


def maildir_of(directory: Path) -> Path:
    """Where a storing kind keeps its Maildir under ``directory``."""
    return directory / "maildir"


def sessions_dir_of(directory: Path) -> Path:
    """Where the sandbox kind keeps its session (transcript) files under ``directory``."""
    return directory / "sessions"


Closer = Callable[[], Awaitable[None]]


async def _start_aiosmtpd(handler: Any, host: str, port: int) -> tuple[int, Closer]:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        # A fixed host name: aiosmtpd's default calls socket.getfqdn(), which
        # can stall on a broken resolver.
        lambda: SMTP(handler, hostname="sink.benchmark.test", ident="bench-sink", loop=loop),
        host=host,
        port=port,
    )

    async def close() -> None:
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout=STOP_TIMEOUT)

    return int(server.sockets[0].getsockname()[1]), close


async def _start_sandbox(host: str, port: int, directory: Path) -> tuple[int, Closer]:
    from tuimail.sandbox import Sandbox, SandboxConfig

    sandbox = Sandbox(
        SandboxConfig(
            host=host,
            port=port,
            maildir=maildir_of(directory),
            sessions_dir=sessions_dir_of(directory),
        )
    )
    await sandbox.start()

    async def close() -> None:
        await sandbox.stop(grace=STOP_TIMEOUT / 2)

    return sandbox.port, close


def _check_kind(kind: str, directory: Path | None) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown server kind {kind!r}; expected one of {', '.join(KINDS)}")
    if kind in STORING_KINDS and directory is None:
        raise ValueError(f"the {kind} server needs a directory to store messages in")


async def start_server(
    kind: str = "sink", host: str = HOST, port: int = 0, directory: Path | None = None
) -> tuple[int, Closer]:
    """Start a server of ``kind`` in this event loop: its port and a coroutine that stops it."""
    _check_kind(kind, directory)
    if kind == "sink":
        return await _start_aiosmtpd(SinkHandler(), host, port)
    assert directory is not None
    if kind == "maildir":
        from aiosmtpd.handlers import Mailbox

        return await _start_aiosmtpd(Mailbox(maildir_of(directory)), host, port)
    if kind == "maildir-raw":
        return await _start_aiosmtpd(RawMaildirHandler(maildir_of(directory)), host, port)
    return await _start_sandbox(host, port, directory)


async def serve(
    host: str = HOST, port: int = 0, kind: str = "sink", directory: Path | None = None
) -> None:
    """Serve until stdin reaches EOF (the parent went away) or a signal arrives."""
    loop = asyncio.get_running_loop()
    bound_port, close = await start_server(kind, host, port, directory)
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
        await close()


@dataclass(frozen=True)
class RunningServer:
    """A server process started by :func:`running_server`."""

    kind: str
    port: int
    pid: int
    directory: Path | None


def server_command(
    kind: str = "sink", directory: Path | None = None, cprofile_out: Path | None = None
) -> list[str]:
    """The command line that runs one server process."""
    command = [sys.executable, "-m", "benchmarks.sink", "--kind", kind]
    if directory is not None:
        command += ["--dir", str(directory)]
    if cprofile_out is not None:
        command += ["--cprofile-out", str(cprofile_out)]
    return command


@contextlib.contextmanager
def running_server(
    kind: str = "sink",
    directory: Path | None = None,
    *,
    timeout: float = START_TIMEOUT,
    cprofile_out: Path | None = None,
) -> Iterator[RunningServer]:
    """Run a server of ``kind`` in a child process; the process ends on exit, always.

    With ``cprofile_out`` the server runs under cProfile and writes its stats
    there when it stops (after this context manager exits).
    """
    _check_kind(kind, directory)
    command = server_command(kind, directory, cprofile_out)
    with child(command, "PORT", timeout) as (pid, words):
        yield RunningServer(kind, int(words[0]), pid, directory)


@contextlib.contextmanager
def running_sink(
    timeout: float = START_TIMEOUT, *, kind: str = "sink", directory: Path | None = None
) -> Iterator[int]:
    """Run a server (by default the bare sink) in a child process; yields its port."""
    with running_server(kind, directory, timeout=timeout) as server:
        yield server.port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run an SMTP server to benchmark against.")
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="sink",
        help="sink: keeps nothing (default); maildir: aiosmtpd's stock Mailbox handler; "
        "maildir-raw: mailbox.Maildir.add of the bytes as received; "
        "sandbox: tuimail's Sandbox with its transcripts on",
    )
    parser.add_argument(
        "--dir", type=Path, help="where the storing kinds keep what they receive (required)"
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any)")
    parser.add_argument(
        "--cprofile-out",
        type=Path,
        metavar="PATH",
        help="run the server under cProfile and write its stats to PATH when it stops",
    )
    args = parser.parse_args(argv)
    if args.kind in STORING_KINDS and args.dir is None:
        parser.error(f"--kind {args.kind} needs --dir")
    # Import before serving (and before any profiling), so start-up is not profiled.
    for module in ("aiosmtpd.smtp", "aiosmtpd.handlers", "tuimail.sandbox"):
        if module.startswith("aiosmtpd") or args.kind == "sandbox":
            importlib.import_module(module)

    profiler = cProfile.Profile() if args.cprofile_out is not None else None
    if profiler is not None:
        profiler.enable()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(HOST, args.port, args.kind, args.dir))
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.cprofile_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
