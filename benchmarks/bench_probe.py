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
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import app_seam
from benchmarks.common import HOST, child, isolated_dirs, median, met, until_parent_leaves

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
            HOST,
            0,
        )
        servers.append(server)
    print("PORTS " + " ".join(str(s.sockets[0].getsockname()[1]) for s in servers), flush=True)
    await until_parent_leaves()
    for server in servers:
        server.close()


@contextlib.contextmanager
def running_endpoints(count: int, rtt: float) -> Iterator[list[int]]:
    """``count`` slow endpoints in a child process; their ports. The child always stops."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_probe",
        "--serve",
        str(count),
        "--rtt",
        str(rtt),
    ]
    with child(command, "PORTS", START_TIMEOUT) as (_pid, ports):
        yield [int(port) for port in ports]


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
        ProbeTarget(host=HOST, port=port, security=Security.NONE, timeout=10) for port in ports
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


@dataclass
class AppResult:
    idle_ms: list[float]
    busy_ms: list[float]
    probed: int

    @property
    def ratio(self) -> float:
        return median(self.busy_ms) / median(self.idle_ms)


async def _key_latency(pilot: Any, table: Any) -> float:
    """Press down (or up) in the targets table: ms until the cursor has moved."""
    before = table.cursor_row
    key = "down" if before < table.row_count - 1 else "up"
    started = time.perf_counter()
    pilot.app.post_message(_key_event(key))
    deadline = started + 30
    while table.cursor_row == before:
        if time.perf_counter() > deadline:
            raise TimeoutError("the cursor never moved")
        await asyncio.sleep(0.001)
    return (time.perf_counter() - started) * 1000


def _key_event(key: str) -> Any:
    from textual import events

    return events.Key(key, None)


def run_app_round(endpoints: int = 200, concurrency: int = 50, rtt: float = 0.02) -> AppResult:
    """The monitor screen probing every endpoint while keys are pressed, against idle."""
    with isolated_dirs() as home, running_endpoints(endpoints, rtt) as ports:
        config = home / "config" / "tuimail"
        config.mkdir(parents=True)
        (config / "config.toml").write_text(
            f"[monitor]\ninterval = 0\nconcurrency = {concurrency}\n"
        )
        (config / "targets.toml").write_text(
            "".join(
                f'[targets.e{port}]\nhost = "{HOST}"\nport = {port}\nsecurity = "none"\n'
                for port in ports
            )
        )
        return asyncio.run(_app_round(concurrency))


async def _app_round(concurrency: int) -> AppResult:
    from textual.widgets import DataTable

    from tuimail.ui.app import TuimailApp
    from tuimail.ui.screens.monitor import MonitorScreen

    app = TuimailApp(start_sandbox=False)
    idle: list[float] = []
    busy: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f6")
        while not isinstance(app.screen, MonitorScreen):
            await asyncio.sleep(0.01)
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        while monitor.reading:  # the targets are read in a thread
            await asyncio.sleep(0.01)
        table = monitor.query_one("#targets", DataTable)
        table.focus()
        await pilot.pause()
        for _ in range(20):
            idle.append(await _key_latency(pilot, table))
        monitor.action_probe_now()
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline:
            probed, targets = app_seam.probes_done(monitor)
            if probed >= targets:
                break
            busy.append(await _key_latency(pilot, table))
        probed = app_seam.probes_done(monitor)[0]
    return AppResult(idle, busy, probed)


def report_app(result: AppResult) -> str:
    return (
        f"monitor screen during a probe round ({result.probed} targets probed): "
        f"key -> table cursor moved, median {median(result.busy_ms):.0f} ms "
        f"({len(result.busy_ms)} presses) vs idle {median(result.idle_ms):.0f} ms: "
        f"{result.ratio:.1f}x"
    )


def report(result: ProbeResult) -> str:
    lines = [
        f"probe round: {result.endpoints} endpoints, simulated RTT {result.rtt * 1000:.0f} ms per reply",
        f"  one at a time:      {result.sequential:7.2f} s   ({result.ok_sequential} OK)",
        f"  concurrency {result.concurrency:<3}:    {result.concurrent:7.2f} s   ({result.ok_concurrent} OK)",
        f"  speed-up: {result.ratio:.1f}x   target >= {TARGET_RATIO:g}x   "
        f"({met(result.meets_target)})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rtt", type=float, default=0.02, help="seconds before each reply")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--app", action="store_true", help="also: key latency in the monitor")
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve_endpoints(args.serve, args.rtt))
        return 0
    print(report(run(args.endpoints, args.concurrency, args.rtt)))
    if args.app:
        print(report_app(run_app_round(args.endpoints, args.concurrency, args.rtt)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
