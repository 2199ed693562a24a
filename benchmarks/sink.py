"""SMTP servers to measure against, each in its own process (so no event loop or GIL is shared).

``--kind`` chooses: ``sink`` (the default), plain aiosmtpd whose handler
answers 250 and keeps nothing, so what is measured is the client;
``maildir``, aiosmtpd's stock ``Mailbox`` handler storing under ``--dir``
(it parses and re-serialises each message, more than the sandbox does);
``maildir-raw``, a handler that only calls ``mailbox.Maildir.add`` on the
bytes as received, the call the sandbox stores with; ``sandbox``, tuimail's
``Sandbox`` with its transcripts on, storing under ``--dir``.

Run directly (``python -m benchmarks.sink [--kind KIND --dir PATH]
[--cprofile-out FILE]``) it prints ``PORT <n>`` and serves until its stdin
closes or a signal comes. From Python, :func:`running_server` and
:func:`running_sink` start one and always stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib
import mailbox
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import HOST, STOP_TIMEOUT, child, until_parent_leaves

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
    bound_port, close = await start_server(kind, host, port, directory)
    print(f"PORT {bound_port}", flush=True)
    try:
        await until_parent_leaves()
    finally:
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
    add = parser.add_argument
    add("--kind", choices=KINDS, default="sink", help="what kind of server (see the docstring)")
    add("--dir", type=Path, help="where the storing kinds keep what they receive (required)")
    add("--port", type=int, default=0, help="port on 127.0.0.1 (default: any)")
    add("--cprofile-out", type=Path, metavar="PATH", help="write the server's cProfile stats here")
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
