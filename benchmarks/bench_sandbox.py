"""Throughput of tuimail's sandbox capture server against bare aiosmtpd, same client load.

Each server kind of :mod:`benchmarks.sink` runs alone in its own process and
fresh directory and gets the same load: N concurrent raw aiosmtplib clients,
each sending M pre-built ~2 KB messages over one connection. Rounds rotate
the order of the kinds; median rates are compared: sandbox/sink is the target
(>= 0.9x); sandbox/maildir compares storage with storage (aiosmtpd's stock
``Mailbox`` parses and re-serialises each message, more than the sandbox
does); sandbox/maildir-raw (``Maildir.add`` of the bytes, which fsyncs each
message) is what the sandbox adds on top of storing: transcripts, the
Message-ID scan, its hooks. Only the message loops are timed: every client
connects, says EHLO and sends a few warm-up messages, then all start together
until the last 250. Reported beside the rates: each server's CPU time per
message (``/proc``; the figure least disturbed by other processes), how busy
server and client were, and what creating one file costs where the Maildirs
live (``--tmpdir /dev/shm`` takes the disk out). After each round of a storing
kind the stored messages are counted, a check and never a timing.

This script prints numbers; it never fails because of them. It exits non-zero
only when the load could not be delivered (a refusal, a timeout, a server that
would not start).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file path: make ``benchmarks`` and ``tuimail`` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiosmtplib

from benchmarks.bench_session import build_messages
from benchmarks.common import (
    BenchmarkError,
    at_least,
    attempt,
    median,
    met,
    paired_ratio,
    pick,
    profile_text,
    rotated,
)
from benchmarks.sandbox_load import RoundTiming, load
from benchmarks.sink import (
    KINDS,
    STORING_KINDS,
    maildir_of,
    running_server,
    sessions_dir_of,
)
from tuimail.maildir import deliver, ensure_maildir

TARGET = ">= 0.9x"
TARGET_RATIO = 0.9
DEFAULT_ROUNDS = 5
DEFAULT_CLIENTS = 10
DEFAULT_MESSAGES = 100
DEFAULT_WARMUP = 5
QUICK_ROUNDS = 2
QUICK_MESSAGES = 30
#: Above this share of a core, the client process may be what limits a rate.
CLIENT_BUSY_NOTE = 0.9
#: Files written after each round to measure what the disk charges per message.
FILE_COST_SAMPLES = 300


@dataclass
class KindStats:
    """Per-round measurements of one kind of server."""

    #: Messages per second over the timed window, one per round.
    rates: list[float] = field(default_factory=list)
    #: Server CPU seconds per message in the timed window (None where /proc is missing).
    server_cpu: list[float | None] = field(default_factory=list)
    #: Share of the window the server process spent on a CPU (1.0: one core busy).
    server_busy: list[float | None] = field(default_factory=list)
    #: Share of the window the client process spent on a CPU.
    client_busy: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return median(self.rates)

    @property
    def server_cpu_median(self) -> float | None:
        return known_median(self.server_cpu)

    @property
    def server_busy_median(self) -> float | None:
        return known_median(self.server_busy)


def known_median(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return median(known) if known else None


@dataclass
class SandboxResult:
    rounds: int
    clients: int
    messages: int
    warmup: int
    payload_bytes: int
    kinds: tuple[str, ...]
    #: The directory the storing kinds' fresh temporary directories were made in.
    storage: str = ""
    stats: dict[str, KindStats] = field(default_factory=dict)
    #: Verification problems (stored counts that differ from what was sent).
    warnings: list[str] = field(default_factory=list)
    #: CPU seconds to store one message as a file where the Maildirs live, one
    #: per round: what the disk charges the sandbox and not the sink.
    file_cost: list[float] = field(default_factory=list)

    @property
    def total_messages(self) -> int:
        """Timed messages per kind per round."""
        return self.clients * self.messages

    def median(self, kind: str) -> float:
        return self.stats[kind].median

    def ratio(self, kind: str, reference: str) -> float:
        return self.median(kind) / self.median(reference)

    def paired_ratio(self, kind: str, reference: str) -> float:
        """Median of per-round ratios: less sensitive to load that drifts between rounds."""
        return paired_ratio(self.stats[kind].rates, self.stats[reference].rates)

    def has(self, *kinds: str) -> bool:
        return all(kind in self.stats and self.stats[kind].rates for kind in kinds)

    @property
    def meets_target(self) -> bool:
        return self.ratio("sandbox", "sink") >= TARGET_RATIO


def build_payloads(clients: int, count: int) -> list[list[bytes]]:
    """``count`` distinct ~2 KB messages for each of ``clients`` clients, as bytes."""
    messages = build_messages(clients * count)
    payloads = [m.to_bytes() for m in messages]
    return [payloads[i * count : (i + 1) * count] for i in range(clients)]


def count_files(directory: Path) -> int:
    return sum(1 for entry in directory.iterdir() if entry.is_file()) if directory.is_dir() else 0


def verify(kind: str, directory: Path, clients: int, sent: int) -> list[str]:
    """Problems with what a storing server kept (empty when all is well); never timed."""
    problems: list[str] = []
    maildir = maildir_of(directory)
    stored = count_files(maildir / "new") + count_files(maildir / "cur")
    if stored != sent:
        problems.append(f"{kind}: {stored} messages stored in its Maildir, {sent} sent")
    if kind == "sandbox":
        sessions = count_files(sessions_dir_of(directory))
        if sessions != clients:
            problems.append(f"sandbox: {sessions} session files written, {clients} sessions run")
    return problems


@contextlib.contextmanager
def work_directory(tmpdir: Path | None) -> Iterator[Path]:
    """Where a run's servers store, removed only when the whole run is over.

    Deleting a round's thousands of stored files right away made creating
    files in the next rounds 10-25x dearer on this project's machine (its ext4
    has no journal and is mounted with ``discard``): 30-50 us a file on a quiet
    disk, 600-850 us for tens of seconds after a deletion. The benchmark
    would have measured its own clean-up; a capture server's users do not
    delete thousands of messages a second.
    """
    with tempfile.TemporaryDirectory(prefix="tuimail-bench-", dir=tmpdir) as tmp:
        yield Path(tmp)


def file_creation_cpu(workdir: Path, size: int, count: int = FILE_COST_SAMPLES) -> float:
    """CPU seconds per message for the sandbox's own Maildir write, where the Maildirs live.

    Kernel time included: creating a file is what varies most on a shared disk.
    """
    maildir = ensure_maildir(Path(tempfile.mkdtemp(prefix="files-", dir=workdir)) / "maildir")
    data = b"x" * size
    start = time.process_time()
    for _ in range(count):
        deliver(maildir, data, durable=False)
    return (time.process_time() - start) / count


def one_round(
    kind: str,
    warmup: int,
    payloads: list[list[bytes]],
    workdir: Path,
    cprofile_out: Path | None = None,
) -> tuple[RoundTiming, list[str]]:
    """Start a fresh server of ``kind``, run the load, stop it, check what it stored.

    What it stored stays in ``workdir`` (see :func:`work_directory`).
    """
    directory = None
    if kind in STORING_KINDS:
        directory = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=workdir))
    try:
        with running_server(kind, directory, cprofile_out=cprofile_out) as server:
            timing = asyncio.run(load(server, warmup, payloads))
    except (aiosmtplib.SMTPException, OSError, TimeoutError, RuntimeError) as exc:
        raise BenchmarkError(
            f"{kind}: the load could not be delivered: {type(exc).__name__}: {exc}"
        ) from exc
    problems: list[str] = []
    if directory is not None:
        sent = sum(len(mine) + min(warmup, len(mine)) for mine in payloads)
        problems = verify(kind, directory, len(payloads), sent)
    return timing, problems


def run(
    rounds: int = DEFAULT_ROUNDS,
    clients: int = DEFAULT_CLIENTS,
    messages: int = DEFAULT_MESSAGES,
    warmup: int = DEFAULT_WARMUP,
    kinds: Sequence[str] = KINDS,
    tmpdir: Path | None = None,
) -> SandboxResult:
    """Measure every kind in ``kinds`` under the same load, rotating their order each round."""
    payloads = build_payloads(clients, messages)
    warmup = min(warmup, messages)
    result = SandboxResult(
        rounds=rounds,
        clients=clients,
        messages=messages,
        warmup=warmup,
        payload_bytes=round(statistics.mean(len(p) for mine in payloads for p in mine)),
        kinds=tuple(kinds),
        stats={kind: KindStats() for kind in kinds},
        storage=str(tmpdir or tempfile.gettempdir()),
    )
    with work_directory(tmpdir) as workdir:
        for index in range(rounds):
            _one_rotation(result, index, payloads, workdir)
    return result


def _one_rotation(
    result: SandboxResult, index: int, payloads: list[list[bytes]], workdir: Path
) -> None:
    """Round ``index``: every kind once, in an order rotated by the round's number."""
    kinds = result.kinds
    order = rotated(kinds, index)
    for kind in order:
        timing, problems = one_round(kind, result.warmup, payloads, workdir)
        stats = result.stats[kind]
        stats.rates.append(result.total_messages / timing.wall)
        stats.client_busy.append(timing.client_cpu / timing.wall)
        if timing.server_cpu is None:
            stats.server_cpu.append(None)
            stats.server_busy.append(None)
        else:
            stats.server_cpu.append(timing.server_cpu / result.total_messages)
            stats.server_busy.append(timing.server_cpu / timing.wall)
        for problem in problems:
            warning = f"round {index + 1}: {problem}"
            result.warnings.append(warning)
            print(f"  WARNING: {warning}", file=sys.stderr, flush=True)
    if any(kind in STORING_KINDS for kind in kinds):
        result.file_cost.append(file_creation_cpu(workdir, result.payload_bytes))
    file_cost = f"   storing a file: {_fmt_us(result.file_cost[-1])}" if result.file_cost else ""
    print(
        f"  round {index + 1}/{result.rounds}: "
        + "   ".join(f"{kind} {result.stats[kind].rates[-1]:7.0f} msg/s" for kind in kinds)
        + f"   (order: {', '.join(order)}){file_cost}",
        file=sys.stderr,
        flush=True,
    )


def profile_server(
    kind: str,
    clients: int,
    messages: int,
    warmup: int,
    top: int,
    restrict: str = "",
    tmpdir: Path | None = None,
) -> str:
    """cProfile of one server process of ``kind`` over one round, sorted by own time."""
    payloads = build_payloads(clients, messages)
    with work_directory(tmpdir) as workdir:
        out_file = workdir / f"{kind}.prof"
        timing, problems = one_round(
            kind, min(warmup, messages), payloads, workdir, cprofile_out=out_file
        )
        if not out_file.exists():
            raise BenchmarkError(f"the {kind} server wrote no profile (did it stop cleanly?)")
        return (
            f"cProfile of one {kind} server process: {clients} clients x {messages} messages "
            f"(+{min(warmup, messages)} warm-up each), whole process lifetime after start-up; "
            f"{clients * messages / timing.wall:.0f} msg/s while profiled\n"
            + "".join(f"WARNING: {problem}\n" for problem in problems)
            + profile_text(out_file, top, restrict)
        )


def _fmt_us(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1e6:.0f} us"


def _fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


LABELS = {
    "sandbox": "tuimail Sandbox (transcripts on)",
    "sink": "bare aiosmtpd, keeps nothing",
    "maildir": "bare aiosmtpd + stock Mailbox",
    "maildir-raw": "bare aiosmtpd + Maildir.add(bytes)",
}


def report(result: SandboxResult) -> str:
    lines = [
        f"sandbox throughput: {result.clients} concurrent aiosmtplib clients x "
        f"{result.messages} messages of ~{result.payload_bytes} bytes, one connection each "
        f"(+{result.warmup} warm-up messages each, not timed), median of {result.rounds} rounds",
    ]
    if any(kind in STORING_KINDS for kind in result.kinds):
        lines.append(
            f"  Maildirs (and session files) in fresh directories under {result.storage}, "
            "all removed only after the last round"
        )
    width = max(len(LABELS.get(kind, kind)) for kind in result.kinds)
    for kind in result.kinds:
        stats = result.stats[kind]
        lines.append(
            f"  {LABELS.get(kind, kind) + ':':<{width + 1}} {stats.median:8.1f} msg/s"
            f"   rounds: {', '.join(f'{r:.0f}' for r in stats.rates)}"
        )
    for kind, label, note in (
        ("sink", "sandbox/sink:    ", f"target {TARGET}   ({met(result.meets_target)})"),
        ("maildir", "sandbox/maildir: ", "(both store each message before 250)"),
        (
            "maildir-raw",
            "sandbox/maildir-raw: ",
            "(Maildir.add fsyncs each message, the sandbox does not)",
        ),
    ):
        if result.has("sandbox", kind):
            lines.append(
                f"  ratio {label}{result.ratio('sandbox', kind):.3f}x   {note}; "
                f"median of per-round ratios {result.paired_ratio('sandbox', kind):.3f}x"
            )
    if result.file_cost:
        costs = sorted(result.file_cost)
        lines.append(
            f"  storing one message as a file there took {_fmt_us(median(costs))} "
            f"of CPU (median; rounds {_fmt_us(costs[0]).strip()} to {_fmt_us(costs[-1]).strip()}); "
            "a sink that keeps nothing pays none of it"
        )
    lines.append("  server CPU per message, server busy, client busy (medians; 100% = one core):")
    for kind in result.kinds:
        stats = result.stats[kind]
        lines.append(
            f"    {kind:<11} {_fmt_us(stats.server_cpu_median):>8}   "
            f"server {_fmt_pct(stats.server_busy_median):>4}   "
            f"client {_fmt_pct(median(stats.client_busy)):>4}"
        )
    busy_clients = [
        kind for kind in result.kinds if median(result.stats[kind].client_busy) >= CLIENT_BUSY_NOTE
    ]
    if busy_clients:
        lines.append(
            f"  note: the client process was >= {CLIENT_BUSY_NOTE:.0%} busy against "
            f"{', '.join(busy_clients)}: that rate may be the client's limit, not the server's, "
            "which makes ratios to it look better than they are"
        )
    if result.warnings:
        lines.append(f"  WARNINGS ({len(result.warnings)}):")
        lines += [f"    {warning}" for warning in result.warnings]
    else:
        stored = [kind for kind in result.kinds if kind in STORING_KINDS]
        if stored:
            lines.append(
                f"  stored message counts checked after every {'/'.join(stored)} round: all as sent"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add = parser.add_argument
    add("--quick", action="store_true", help=f"{QUICK_ROUNDS} rounds x {QUICK_MESSAGES} messages")
    add("--rounds", type=int, help=f"rounds (default {DEFAULT_ROUNDS})")
    add("--clients", type=int, default=DEFAULT_CLIENTS, help="concurrent client connections")
    add("--messages", type=int, help=f"timed messages per client (default {DEFAULT_MESSAGES})")
    add("--warmup", type=int, default=DEFAULT_WARMUP, help="untimed messages per client first")
    add("--kinds", default=",".join(KINDS), help="comma-separated server kinds to measure")
    add("--tmpdir", type=Path, help="where the servers store (e.g. /dev/shm: no disk)")
    add("--cprofile", type=int, default=0, metavar="N", help="profile one server's round instead")
    add("--cprofile-kind", choices=KINDS, default="sandbox", help="server kind to profile")
    add("--cprofile-restrict", default="", metavar="REGEX", help="filter the cumulative list")
    args = parser.parse_args(argv)
    rounds = pick(args.rounds, args.quick, QUICK_ROUNDS, DEFAULT_ROUNDS)
    messages = pick(args.messages, args.quick, QUICK_MESSAGES, DEFAULT_MESSAGES)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    at_least(parser, 1, rounds=rounds, clients=args.clients, messages=messages)
    at_least(parser, 0, warmup=args.warmup)
    if args.tmpdir is not None and not args.tmpdir.is_dir():
        parser.error(f"--tmpdir {args.tmpdir} is not a directory")
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds or len(set(kinds)) != len(kinds):
        parser.error(f"--kinds: a comma-separated list of distinct kinds from {', '.join(KINDS)}")
    if args.cprofile:
        profile = lambda: profile_server(  # noqa: E731
            args.cprofile_kind,
            args.clients,
            messages,
            args.warmup,
            args.cprofile,
            args.cprofile_restrict,
            args.tmpdir,
        )
        return 0 if attempt("bench_sandbox", profile, str) is not None else 2
    measure = lambda: run(rounds, args.clients, messages, args.warmup, kinds, args.tmpdir)  # noqa: E731
    return 0 if attempt("bench_sandbox", measure, report) else 2


if __name__ == "__main__":
    sys.exit(main())
