"""Probe many servers at once: 200 local endpoints, concurrency 50 vs one at a time.

The endpoints are real aiosmtpd servers in a separate process. Each reply is
held back by a simulated network round trip (``--rtt``, default 20 ms), because
on loopback a probe is pure CPU and concurrency would measure nothing but the
scheduler; real servers are tens of milliseconds away. The issue's target:
concurrency 50 finishes at least 20x faster than one at a time.

    python benchmarks/bench_probe.py [--endpoints 200] [--concurrency 50] [--rtt 0.02]

Measures and prints; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

TARGET_RATIO = 20.0
START_TIMEOUT = 30.0


# -- the endpoints process ---------------------------------------------------------


async def serve_endpoints(count: int, rtt: float) -> None:
    """``count`` aiosmtpd servers whose every reply waits ``rtt`` seconds first."""
    from aiosmtpd.smtp import SMTP

    class FarAwaySMTP(SMTP):
        async def push(self, status: Any) -> None:
            await asyncio.sleep(rtt)
            await super().push(status)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    loop = asyncio.get_running_loop()
    handler = Handler()
    servers = []
    for _ in range(count):
        server = await loop.create_server(
            lambda: FarAwaySMTP(handler, hostname="endpoint.bench.test", loop=loop),
            "127.0.0.1",
            0,
        )
        servers.append(server)
    ports = [str(s.sockets[0].getsockname()[1]) for s in servers]
    print("PORTS " + " ".join(ports), flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(0, 1) else None)
    await stop.wait()
    for server in servers:
        server.close()


@contextlib.contextmanager
def running_endpoints(count: int, rtt: float) -> Iterator[list[int]]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(count), "--rtt", str(rtt)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        line = ""
        while not line.startswith("PORTS ") and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise RuntimeError("the endpoints process exited before listening")
        if not line.startswith("PORTS "):
            raise TimeoutError("the endpoints did not start in time")
        yield [int(p) for p in line.split()[1:]]
    finally:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# -- the measurement -----------------------------------------------------------------


@dataclass
class ProbeResult:
    endpoints: int
    concurrency: int
    rtt: float
    sequential: float
    concurrent: float
    ok_sequential: int
    ok_concurrent: int

    @property
    def ratio(self) -> float:
        return self.sequential / self.concurrent if self.concurrent else 0.0

    @property
    def meets_target(self) -> bool:
        return self.ratio >= TARGET_RATIO


async def _round(ports: list[int], concurrency: int) -> tuple[float, int]:
    from tuimail.probe import ProbeTarget, Status, probe_many
    from tuimail.profiles import Security

    targets = [
        ProbeTarget(host="127.0.0.1", port=port, security=Security.NONE, timeout=10)
        for port in ports
    ]
    started = time.perf_counter()
    reports = await probe_many(targets, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    return elapsed, sum(1 for r in reports if r.status is Status.OK)


def run(endpoints: int = 200, concurrency: int = 50, rtt: float = 0.02) -> ProbeResult:
    with running_endpoints(endpoints, rtt) as ports:
        asyncio.run(_round(ports[:5], 5))  # warm-up: imports, first connections
        concurrent, ok_concurrent = asyncio.run(_round(ports, concurrency))
        sequential, ok_sequential = asyncio.run(_round(ports, 1))
    return ProbeResult(
        endpoints, concurrency, rtt, sequential, concurrent, ok_sequential, ok_concurrent
    )


def report(result: ProbeResult) -> str:
    lines = [
        f"probe round: {result.endpoints} endpoints, simulated RTT {result.rtt * 1000:.0f} ms per reply",
        f"  one at a time:      {result.sequential:7.2f} s   ({result.ok_sequential} OK)",
        f"  concurrency {result.concurrency:<3}:    {result.concurrent:7.2f} s   ({result.ok_concurrent} OK)",
        f"  speed-up: {result.ratio:.1f}x   target >= {TARGET_RATIO:g}x   "
        f"({'met' if result.meets_target else 'NOT met'})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rtt", type=float, default=0.02, help="seconds before each reply")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve_endpoints(args.serve, args.rtt))
        return 0
    print(report(run(args.endpoints, args.concurrency, args.rtt)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
