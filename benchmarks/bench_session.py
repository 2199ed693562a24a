"""Throughput of tuimail's session against raw aiosmtplib, over one connection.

Both clients send the same pre-built ~2 KB messages to the same local sink
(a separate process, see :mod:`benchmarks.sink`), one connection per client
per round. Rounds alternate which client goes first, and the median rate of
each client is compared. Only the message loop is timed: connect, EHLO and
QUIT happen once per connection and are not what this benchmark is about.

* tuimail: ``SMTPSession(profile)`` with its transcript on (every command and
  reply is captured, redacted and stored) and ``await session.deliver(m)``;
* reference: ``aiosmtplib.SMTP(...).sendmail(sender, [rcpt], payload)``.

Run ``python benchmarks/bench_session.py --help`` for the knobs. This script
prints numbers; it never fails because of them.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file path: make ``benchmarks`` and ``tuimail`` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiosmtplib

from benchmarks.common import HOST, at_least, paired_ratio, profile_text
from benchmarks.sink import running_sink
from tuimail.message import Draft, OutgoingMessage, build_message
from tuimail.profiles import Profile, Security
from tuimail.session import SMTPSession

TARGET = ">= 0.95x"
TARGET_RATIO = 0.95
DEFAULT_ROUNDS = 5
DEFAULT_MESSAGES = 500
MESSAGE_SIZE = 2048
SENDER = "bench-sender@example.test"
RECIPIENT = "bench-rcpt@example.test"
#: Per SMTP command, and for a whole connection's worth of messages.
COMMAND_TIMEOUT = 30.0
ROUND_TIMEOUT = 300.0


@dataclass
class SessionResult:
    """Rates in messages per second, one per round, for each client."""

    messages: int
    rounds: int
    payload_bytes: int
    tuimail_rates: list[float] = field(default_factory=list)
    raw_rates: list[float] = field(default_factory=list)
    #: Client CPU seconds per message (this process only), one per round.
    tuimail_cpu: list[float] = field(default_factory=list)
    raw_cpu: list[float] = field(default_factory=list)
    transcript_entries: int = 0

    @property
    def tuimail_median(self) -> float:
        return statistics.median(self.tuimail_rates)

    @property
    def raw_median(self) -> float:
        return statistics.median(self.raw_rates)

    @property
    def ratio(self) -> float:
        return self.tuimail_median / self.raw_median

    @property
    def paired_ratio(self) -> float:
        """Median of per-round ratios: less sensitive to load that drifts between rounds."""
        return paired_ratio(self.tuimail_rates, self.raw_rates)

    @property
    def meets_target(self) -> bool:
        return self.ratio >= TARGET_RATIO


def build_messages(count: int) -> list[OutgoingMessage]:
    """``count`` distinct messages of about :data:`MESSAGE_SIZE` bytes each."""
    probe = build_message(
        Draft(from_address=SENDER, to=[RECIPIENT], subject="bench message 0", body="x\n")
    )
    header_bytes = len(probe.to_bytes())
    line = "The quick brown fox jumps over the lazy dog; pack my box with jugs.\n"
    wanted = max(MESSAGE_SIZE - header_bytes, len(line))
    body = (line * (wanted // len(line) + 1))[:wanted].rstrip("\n") + "\n"
    return [
        build_message(
            Draft(
                from_address=SENDER,
                to=[RECIPIENT],
                subject=f"bench message {i}",
                body=body,
            )
        )
        for i in range(count)
    ]


def bench_profile(port: int) -> Profile:
    return Profile(
        name="bench", host=HOST, port=port, security=Security.NONE, timeout=COMMAND_TIMEOUT
    )


@dataclass
class Timing:
    """Wall and CPU seconds of one client's message loop."""

    wall: float
    cpu: float


async def time_tuimail(port: int, messages: list[OutgoingMessage]) -> tuple[Timing, int]:
    """Time to deliver ``messages`` through one tuimail session; and transcript size."""
    async with asyncio.timeout(ROUND_TIMEOUT):
        async with SMTPSession(bench_profile(port)) as session:
            started, cpu_started = time.perf_counter(), time.process_time()
            for outgoing in messages:
                delivery = await session.deliver(outgoing)
                if not delivery.accepted:
                    raise RuntimeError(f"tuimail: message refused: {delivery}")
            timing = Timing(time.perf_counter() - started, time.process_time() - cpu_started)
        return timing, len(session.transcript)


def raw_client(port: int) -> aiosmtplib.SMTP:
    """The reference client: plain aiosmtplib on the local sink, no STARTTLS."""
    return aiosmtplib.SMTP(
        hostname=HOST,
        port=port,
        start_tls=False,
        local_hostname="localhost",
        timeout=COMMAND_TIMEOUT,
    )


async def time_raw(port: int, payloads: list[bytes]) -> Timing:
    """Time to send ``payloads`` with plain aiosmtplib over one connection."""
    async with asyncio.timeout(ROUND_TIMEOUT):
        smtp = raw_client(port)
        await smtp.connect()
        try:
            await smtp.ehlo()
            started, cpu_started = time.perf_counter(), time.process_time()
            for payload in payloads:
                errors, _reply = await smtp.sendmail(SENDER, [RECIPIENT], payload)
                if errors:
                    raise RuntimeError(f"aiosmtplib: recipient refused: {errors}")
            timing = Timing(time.perf_counter() - started, time.process_time() - cpu_started)
            await smtp.quit()
        finally:
            smtp.close()
        return timing


async def measure(port: int, rounds: int, count: int, warmup: int) -> SessionResult:
    messages = build_messages(count)
    payloads = [m.to_bytes() for m in messages]
    result = SessionResult(
        messages=count,
        rounds=rounds,
        payload_bytes=round(statistics.mean(len(p) for p in payloads)),
    )
    if warmup:
        await time_tuimail(port, messages[:warmup])
        await time_raw(port, payloads[:warmup])
    for index in range(rounds):
        tuimail_first = index % 2 == 0
        for which in ("tuimail", "raw") if tuimail_first else ("raw", "tuimail"):
            if which == "tuimail":
                timing, entries = await time_tuimail(port, messages)
                result.tuimail_rates.append(count / timing.wall)
                result.tuimail_cpu.append(timing.cpu / count)
                result.transcript_entries = entries
            else:
                timing = await time_raw(port, payloads)
                result.raw_rates.append(count / timing.wall)
                result.raw_cpu.append(timing.cpu / count)
        print(
            f"  round {index + 1}/{rounds}: tuimail {result.tuimail_rates[-1]:8.1f} msg/s   "
            f"aiosmtplib {result.raw_rates[-1]:8.1f} msg/s"
            f"   ({'tuimail' if tuimail_first else 'aiosmtplib'} first)",
            file=sys.stderr,
            flush=True,
        )
    return result


def run(
    rounds: int = DEFAULT_ROUNDS, messages: int = DEFAULT_MESSAGES, warmup: int = 20
) -> SessionResult:
    """Start a sink, measure both clients, stop the sink."""
    with running_sink() as port:
        return asyncio.run(measure(port, rounds, messages, min(warmup, messages)))


def profile_tuimail(messages: int, top: int) -> str:
    """cProfile of one tuimail round (the message loop only), sorted by own time."""
    outgoing = build_messages(messages)

    async def one_round(port: int) -> None:
        async with asyncio.timeout(ROUND_TIMEOUT):
            async with SMTPSession(bench_profile(port)) as session:
                profiler.enable()
                for message in outgoing:
                    await session.deliver(message)
                profiler.disable()

    profiler = cProfile.Profile()
    with running_sink() as port:
        asyncio.run(one_round(port))
    return profile_text(profiler, top)


def report(result: SessionResult) -> str:
    return "\n".join(
        [
            f"session throughput: {result.messages} messages of ~{result.payload_bytes} bytes "
            f"over one connection, median of {result.rounds} rounds",
            f"  tuimail SMTPSession (transcript on): {result.tuimail_median:8.1f} msg/s"
            f"   rounds: {', '.join(f'{r:.0f}' for r in result.tuimail_rates)}",
            f"  aiosmtplib sendmail (reference):     {result.raw_median:8.1f} msg/s"
            f"   rounds: {', '.join(f'{r:.0f}' for r in result.raw_rates)}",
            f"  ratio tuimail/aiosmtplib: {result.ratio:.3f}x   target {TARGET}   "
            f"({'met' if result.meets_target else 'NOT met'})",
            f"  median of per-round ratios: {result.paired_ratio:.3f}x",
            f"  client CPU per message (median): tuimail "
            f"{statistics.median(result.tuimail_cpu) * 1e6:.0f} us, aiosmtplib "
            f"{statistics.median(result.raw_cpu) * 1e6:.0f} us",
            f"  transcript entries in one tuimail session: {result.transcript_entries}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add = parser.add_argument
    add("--rounds", type=int, default=DEFAULT_ROUNDS, help="alternating rounds")
    add("--messages", type=int, default=DEFAULT_MESSAGES, help="messages per connection")
    add("--warmup", type=int, default=20, help="messages per client, not timed")
    add("--cprofile", type=int, default=0, metavar="N", help="profile one tuimail round instead")
    args = parser.parse_args(argv)
    at_least(parser, 1, rounds=args.rounds, messages=args.messages)
    if args.cprofile:
        print(profile_tuimail(args.messages, args.cprofile))
        return 0
    print(report(run(args.rounds, args.messages, args.warmup)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
