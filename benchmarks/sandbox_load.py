"""The client load of the sandbox benchmark: N connections that start together, timed as one.

Every client connects, says EHLO and sends its warm-up messages, then waits;
all start at once, and the clock stops when the last has its last 250. QUIT
waits until the window is closed, so the end of the sessions (and the
sandbox's session files) stays out of the server CPU measured for it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiosmtplib

from benchmarks.bench_session import RECIPIENT, SENDER, raw_client
from benchmarks.common import BenchmarkError
from benchmarks.sink import RunningServer

#: For one kind's whole round (each command's timeout is bench_session's client's).
ROUND_TIMEOUT = 300.0


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds process ``pid`` has used so far, from /proc (Linux); else None.

    Nanoseconds on a CPU from each thread's ``schedstat`` where the kernel has
    it, else user + system clock ticks (10 ms steps) from ``stat``.
    """
    try:
        total_ns = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            total_ns += int((task / "schedstat").read_text().split()[0])
        return total_ns / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class RoundTiming:
    wall: float
    client_cpu: float
    server_cpu: float | None


@dataclass
class _Signals:
    """What the clients and the conductor of one round tell each other."""

    ready: asyncio.Queue[None] = field(default_factory=asyncio.Queue)
    go: asyncio.Event = field(default_factory=asyncio.Event)
    sent: asyncio.Queue[None] = field(default_factory=asyncio.Queue)
    may_quit: asyncio.Event = field(default_factory=asyncio.Event)


async def _client(
    port: int, warmup: Sequence[bytes], payloads: Sequence[bytes], signals: _Signals
) -> float:
    """One connection: EHLO and warm-up, wait for ``go``, send ``payloads``; returns the end time.

    QUIT waits for ``may_quit``, so that the end of the sessions (and the
    sandbox's session file) stays out of the server CPU measured for the window.
    """
    smtp = raw_client(port)
    await smtp.connect()
    try:
        await smtp.ehlo()
        for payload in warmup:
            await _send(smtp, payload)
        signals.ready.put_nowait(None)
        await signals.go.wait()
        for payload in payloads:
            await _send(smtp, payload)
        finished = time.perf_counter()
        signals.sent.put_nowait(None)
        await signals.may_quit.wait()
        await smtp.quit()
    finally:
        smtp.close()
    return finished


async def _send(smtp: aiosmtplib.SMTP, payload: bytes) -> None:
    errors, _reply = await smtp.sendmail(SENDER, [RECIPIENT], payload)
    if errors:
        raise BenchmarkError(f"recipient refused: {errors}")


async def _all_signal(queue: asyncio.Queue[None], tasks: list[asyncio.Task[float]]) -> None:
    """Wait for one item in ``queue`` per task; raise at once if a task fails first."""
    for _ in tasks:
        getter = asyncio.ensure_future(queue.get())
        done, _pending = await asyncio.wait([getter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if getter not in done:
            getter.cancel()
            for task in done:
                task.result()  # raises the client's error
            raise BenchmarkError("a client ended before it was told to")


async def load(server: RunningServer, warmup: int, payloads: list[list[bytes]]) -> RoundTiming:
    """Run the client load against ``server``; time from the common start to the last reply."""
    signals = _Signals()
    async with asyncio.timeout(ROUND_TIMEOUT):
        tasks = [
            asyncio.create_task(_client(server.port, mine[:warmup], mine, signals))
            for mine in payloads
        ]
        try:
            await _all_signal(signals.ready, tasks)
            server_cpu0 = process_cpu_seconds(server.pid)
            client_cpu0 = time.process_time()
            started = time.perf_counter()
            signals.go.set()
            await _all_signal(signals.sent, tasks)
            client_cpu = time.process_time() - client_cpu0
            server_cpu1 = process_cpu_seconds(server.pid)
            signals.may_quit.set()
            ends = await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    server_cpu = (
        server_cpu1 - server_cpu0 if server_cpu0 is not None and server_cpu1 is not None else None
    )
    return RoundTiming(max(ends) - started, client_cpu, server_cpu)
