"""The app through a transcript flood: key press to screen, and memory, while lines pour in.

``TuimailApp`` under ``App.run_test()`` (headless, 120x40, embedded sandbox
off). The transcript screen is visited once (F3, F2), so both the compose
screen's live view and the transcript screen's view listen. A send session
starts as the app's worker starts one, and in a flood round a task adds
100,000 lines to its core ``Transcript`` (whose subscriber is the app's own
live feed), 1,000 per event-loop turn (``--burst``): about 45 KB of wire
text, less than one socket read from a server that floods. The core keeps
``MAX_ENTRIES`` entries and a limit marker; the rest never reach the screens.

Meanwhile keys go in as the terminal driver's input thread sends them: a
letter into To, and after every third letter F3 and F2, 0.25 s apart. A
probe's latency runs from the key to the first screen update that shows it
(every update is watched, see :func:`benchmarks.app_seam.watching_app`), and
how much of it passed before the app had acted on the key at all is noted.
The same probes run in a fresh app without a flood; rounds alternate which
goes first, each in data directories of its own (the app reopens the last
unsent draft at start). Reported: the median of all probes and, per round,
the fastest, median and slowest (the spread); per flood: how fast the app
worked through it, message backlogs, screen updates and the longest gap,
each view's lines and entries against its cap, the "older lines trimmed"
marker (its count against the entries really out of view: a ``MISMATCH`` is
flagged), the core
transcript's length and the RSS before, during, after and at its peak. A
short flood under the cap then checks that no view loses lines unannounced.

How to read it: the latency depends on ``--burst``, because a key travels
through several message queues and every hop waits a turn of the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import app_seam
from benchmarks.app_probes import FrameLog, Probe, probe_schedule, shows_screen, shows_text
from benchmarks.common import (
    BenchmarkError,
    isolated_dirs,
    median,
    median_ms,
    plural,
    profile_text,
    status_kb,
)

if TYPE_CHECKING:
    from tuimail.ui.widgets.transcript_view import TranscriptLines, TranscriptView

#: Key to screen during the flood, against the same app without one (median of all probes).
TARGET_RATIO = 3.0
TARGET_MS = 50.0
TARGET = f"<= {TARGET_RATIO:g}x and <= {TARGET_MS:g} ms"
MEMORY_TARGET = "view <= cap"
DEFAULT_ROUNDS, QUICK_ROUNDS = 3, 1
DEFAULT_LINES, QUICK_LINES = 100_000, 20_000
DEFAULT_PROBES, QUICK_PROBES = 12, 6
DEFAULT_BURST = 1_000
COLUMNS, ROWS = 120, 40
#: The short check flood, as a share of a view's cap: fewer entries than the
#: cap, but more wrapped lines than it in the narrow compose pane.
MARKER_CHECK_SHARE = 0.6
PROBE_TIMEOUT = 60.0
#: Pause between one probe's screen update and the next key press.
PROBE_GAP = 0.25
DRAIN_TIMEOUT = 900.0
#: The letters typed into To, one per probe, after a unique seed.
TYPED = "abcdefghijklmnopqrstuvwxyz"
SEED = "QXJ"
KINDS = ("type", "f3", "f2")
FLOOD_LINE = re.compile(r"flood line (\d{6})")


@dataclass
class RoundResult:
    flood: bool
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    #: Key press until the app had acted on it, of the same probes.
    handling: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    lost_probes: int = 0
    lines: int = 0
    produce_seconds: float = 0.0
    #: From the first line until every message about it was handled.
    drain_seconds: float = 0.0
    frames: int = 0
    longest_frame_gap: float = 0.0
    #: The most messages waiting in each message pump (the app, each screen).
    queue_peak: dict[str, int] = field(default_factory=dict)
    core_entries: int = 0
    core_limit: int = 0
    core_limit_marker: bool = False
    view_lines: dict[str, int] = field(default_factory=dict)
    #: Entries drawn in each view (the cap counts entries, not wrapped lines).
    view_entries: dict[str, int] = field(default_factory=dict)
    #: Entries no longer in each view (from its first line), and what its marker says.
    out_of_view: dict[str, int] = field(default_factory=dict)
    marker_count: dict[str, int] = field(default_factory=dict)
    view_cap: int = 0
    trimmed_text: str = ""
    trimmed_on_screen: bool = False
    typed_ok: bool = True
    rss_before: int = 0
    rss_after: int = 0
    rss_peak: int | None = None
    #: (lines offered so far, RSS in kB) while the flood runs.
    rss_trace: list[tuple[int, int]] = field(default_factory=list)

    @property
    def miscounted(self) -> dict[str, tuple[int, int]]:
        """Views whose marker does not match what left them: (out of view, marker says)."""
        return {
            name: (out, self.marker_count.get(name, 0))
            for name, out in self.out_of_view.items()
            if abs(out - self.marker_count.get(name, 0)) > 1
        }


@dataclass
class FloodResult:
    rounds: int
    lines: int
    burst: int
    results: list[RoundResult] = field(default_factory=list)
    profile: str = ""
    #: A short flood of fewer entries than the cap: does any view lose lines unannounced?
    marker_check: RoundResult | None = None

    def latencies(self, flood: bool, kind: str = "type", what: str = "latencies") -> list[float]:
        return [
            value
            for r in self.results
            if r.flood == flood
            for value in (r.handling if what == "handling" else r.latencies)[kind]
        ]

    def median(self, flood: bool, kind: str = "type") -> float:
        return median(self.latencies(flood, kind))

    def ratio(self, kind: str = "type") -> float:
        return self.median(True, kind) / self.median(False, kind)

    @property
    def floods(self) -> list[RoundResult]:
        return [r for r in self.results if r.flood]

    def spread(self, flood: bool, kind: str = "type") -> list[tuple[float, float, float]]:
        """Per round (in the order run): the fastest, median and slowest probe of ``kind``."""
        return [
            (min(values), median(values), max(values))
            for r in self.results
            if r.flood == flood and (values := r.latencies[kind])
        ]

    def spread_text(self, flood: bool, kind: str = "type") -> str:
        """The spread as "min/median/max ms" per round, e.g. "5/12/40, 6/9/31"."""
        return ", ".join(
            "/".join(f"{value * 1e3:.0f}" for value in round_)
            for round_ in self.spread(flood, kind)
        )

    @property
    def on_target(self) -> bool:
        """Typing during the flood within the target: a ratio to idle and a ceiling in ms."""
        busy = self.median(True)
        return busy <= TARGET_MS / 1e3 and self.ratio() <= TARGET_RATIO

    @property
    def bounded(self) -> bool:
        # A view keeps at most its last ``cap`` entries.
        return all(
            entries <= r.view_cap for r in self.floods for entries in r.view_entries.values()
        ) and all(r.trimmed_on_screen for r in self.floods if r.core_entries > r.view_cap)


def rss_kb() -> int:
    """This process's resident set size (VmRSS), in kB; 0 where /proc is missing."""
    return status_kb("VmRSS") or 0


def _reset_peak_rss() -> bool:
    """Reset VmHWM so the next reading is this round's peak (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _first_flood_line(log: TranscriptLines) -> int | None:
    """The number of the first flood line still in a view (None: there is none)."""
    for strip in log.lines[:3]:  # the first line may be the end of a wrapped one
        found = FLOOD_LINE.search(strip.text)
        if found:
            return int(found.group(1))
    return None


def _marker_text(view: TranscriptView) -> str:
    from textual.widgets import Static

    return str(view.query_one("#trimmed", Static).content) if view.has_class("-trimmed") else ""


def _marker_count(view: TranscriptView) -> int:
    """How many lines a view's "older lines trimmed" marker says it trimmed."""
    found = re.search(r"([\d,]+) older lines", _marker_text(view))
    return int(found.group(1).replace(",", "")) if found else 0


async def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.perf_counter() + PROBE_TIMEOUT
    while not condition():
        if time.perf_counter() > deadline:
            raise BenchmarkError("the app did not get back to the compose screen")
        await asyncio.sleep(0.01)


async def flood_round(
    flood: bool,
    lines: int = DEFAULT_LINES,
    burst: int = DEFAULT_BURST,
    probes: int = DEFAULT_PROBES,
    profiler: cProfile.Profile | None = None,
) -> RoundResult:
    """One fresh app: a session, with or without a flood, and key presses timed while it runs."""
    from textual import events
    from textual.widgets import Input

    from tuimail.transcript import MAX_ENTRIES, Direction, EventKind, Transcript
    from tuimail.ui.screens.compose import ComposeScreen
    from tuimail.ui.screens.transcript import TranscriptScreen
    from tuimail.ui.widgets.transcript_view import TranscriptView

    result = RoundResult(flood=flood, core_limit=MAX_ENTRIES)
    frames = FrameLog()
    app = app_seam.watching_app(frames.saw)
    async with app.run_test(size=(COLUMNS, ROWS)) as pilot:
        await pilot.press("f3")  # visit the transcript screen once: both screens listen
        await pilot.pause()
        await pilot.press("f2")
        await pilot.pause()
        compose = app.screen
        if not isinstance(compose, ComposeScreen):
            raise BenchmarkError(f"F2 did not lead to the compose screen but to {compose!r}")
        to_field = compose.query_one("#input-to", Input)
        to_field.focus()
        await pilot.press(*SEED)
        await pilot.pause()
        if to_field.value != SEED:
            raise BenchmarkError(f"typing into To gave {to_field.value!r}, not {SEED!r}")
        # Told at once (not through a message queue) when a key has taken effect.
        app.watch(to_field, "value", lambda: frames.acted("type"), init=False)
        app.screen_change_signal.subscribe(
            app,
            lambda s: frames.acted("f3" if isinstance(s, TranscriptScreen) else "f2"),
            immediate=True,
        )
        transcript = Transcript(title="flood")
        app_seam.start_live_session(app, transcript)
        # An ordinary session's beginning, so the views are not empty in either case.
        transcript.event(EventKind.CONNECTED, "connected to 127.0.0.1:2525")
        for number in range(10):
            transcript.add(Direction.SERVER, f"250-bench.example.test line {number}")
        await pilot.pause()
        await pilot.pause()

        screens = app_seam.listening_screens(app)
        views = {"compose live view": compose.query_one("#live-view", TranscriptView)}
        views.update(
            ("transcript screen view", s.query_one("#transcript-view", TranscriptView))
            for s in screens
            if isinstance(s, TranscriptScreen)
        )
        if len(views) != 2:
            raise BenchmarkError("the transcript screen is not listening after F3")
        pumps: dict[str, Any] = {"app": app, **{type(s).__name__: s for s in screens}}
        result.view_cap = min(view.cap for view in views.values())
        prelude = len(transcript)  # entries before the flood's first line
        result.rss_before = rss_kb()
        peak_known = _reset_peak_rss()
        result.queue_peak = dict.fromkeys(pumps, 0)

        def idle() -> bool:
            return not any(app_seam.queued_messages(pump) for pump in pumps.values())

        async def produce() -> None:
            step = max(lines // 10, 1)
            began = time.perf_counter()
            for number in range(lines):
                transcript.add(
                    Direction.SERVER, f"250-flood line {number:06d} lorem ipsum dolor sit amet"
                )
                if (number + 1) % burst == 0:
                    for name, pump in pumps.items():
                        waiting = app_seam.queued_messages(pump)
                        result.queue_peak[name] = max(result.queue_peak[name], waiting)
                    if (number + 1) % step < burst:
                        result.rss_trace.append((number + 1, rss_kb()))
                    await asyncio.sleep(0)
            result.lines = lines
            result.produce_seconds = time.perf_counter() - began

        frames_before = len(frames.times)
        started = time.perf_counter()
        producer: asyncio.Task[None] | None = None
        if flood:
            if profiler is not None:
                profiler.enable()
            producer = asyncio.create_task(produce())
        typed = SEED
        try:
            for kind in probe_schedule(probes):
                if producer is not None and producer.done() and idle():
                    break
                await asyncio.sleep(PROBE_GAP)
                if kind == "type":
                    letter = TYPED[(len(typed) - len(SEED)) % len(TYPED)]
                    typed += letter
                    probe = Probe(kind, shows_text(compose, typed[-5:]))
                    key = events.Key(letter, letter)
                else:
                    target = TranscriptScreen if kind == "f3" else ComposeScreen
                    probe = Probe(kind, shows_screen(target))
                    key = events.Key(kind, None)
                frames.probes = [probe]
                probe.sent = time.perf_counter()
                app_seam.driver(app).send_message(key)  # what the driver's input thread does
                try:
                    await asyncio.wait_for(probe.event.wait(), timeout=PROBE_TIMEOUT)
                except TimeoutError:
                    result.lost_probes += 1
                    if kind != "type":  # the next probe starts from the compose screen
                        await _wait_for(lambda: isinstance(app.screen, ComposeScreen))
                if probe.shown is not None:
                    result.latencies[kind].append(probe.shown - probe.sent)
                if probe.handled is not None:
                    result.handling[kind].append(probe.handled - probe.sent)
            frames.probes = []
            if producer is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(producer), timeout=DRAIN_TIMEOUT)
                except TimeoutError:
                    raise BenchmarkError(
                        f"adding the flood took over {DRAIN_TIMEOUT:g} s"
                    ) from None
                deadline = time.perf_counter() + DRAIN_TIMEOUT
                while not idle():
                    if time.perf_counter() > deadline:
                        raise BenchmarkError(
                            f"the app had not worked through the flood after {DRAIN_TIMEOUT:g} s"
                        )
                    await asyncio.sleep(0.02)
                result.drain_seconds = time.perf_counter() - started
        finally:
            if profiler is not None:
                profiler.disable()
            if producer is not None and not producer.done():
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await producer
        frame_times = [started, *frames.times[frames_before:]]
        if flood:
            frame_times.append(started + result.drain_seconds)
        result.frames = len(frames.times) - frames_before
        result.longest_frame_gap = max(b - a for a, b in itertools.pairwise(frame_times))

        await pilot.pause()
        await pilot.pause()
        result.rss_after = rss_kb()
        result.rss_peak = status_kb("VmHWM") if peak_known else None
        result.core_entries = len(transcript)
        result.core_limit_marker = any(e.kind is EventKind.TRIMMED for e in transcript)
        for name, view in views.items():
            result.view_lines[name] = app_seam.lines_drawn(view)
            result.view_entries[name] = app_seam.entries_shown(view)
            first = _first_flood_line(view.log_widget)
            if first is not None:
                result.out_of_view[name] = prelude + first
            result.marker_count[name] = _marker_count(view)
        result.trimmed_text = _marker_text(views["compose live view"])
        if not isinstance(app.screen, ComposeScreen):
            await pilot.press("f2")
            await pilot.pause()
        result.trimmed_on_screen = "older lines trimmed" in app_seam.screen_text(app.screen)
        result.typed_ok = to_field.value == typed
    return result


async def _run_flood(
    rounds: int, lines: int, burst: int, probes: int, cprofile: int
) -> FloodResult:
    from tuimail.ui.widgets.transcript_view import DEFAULT_CAP

    result = FloodResult(rounds=rounds, lines=lines, burst=burst)
    # Each round in data directories of its own: the app reopens the last
    # unsent draft at start, so a round would otherwise begin with the letters
    # the previous one typed into To.
    for index in range(rounds):
        for flood in (False, True) if index % 2 == 0 else (True, False):
            with isolated_dirs():
                result.results.append(await flood_round(flood, lines, burst, probes))
    # Fewer entries than the cap: no view should lose any (or else say so).
    check_lines = int(DEFAULT_CAP * MARKER_CHECK_SHARE)
    with isolated_dirs():
        result.marker_check = await flood_round(True, check_lines, burst, 0)
    if cprofile:
        profiler = cProfile.Profile()
        with isolated_dirs():
            await flood_round(True, lines, burst, probes, profiler=profiler)
        result.profile = f"cProfile of one flood round, top {cprofile}:\n" + profile_text(
            profiler,
            cprofile,
            r"transcript_view|compose|transcript\.py|_rich_log|message_pump|_compositor|app\.py|segment|text\.py",
        )
    return result


def run_flood(
    rounds: int = DEFAULT_ROUNDS,
    lines: int = DEFAULT_LINES,
    burst: int = DEFAULT_BURST,
    probes: int = DEFAULT_PROBES,
    cprofile: int = 0,
) -> FloodResult:
    """Alternate rounds with and without a flood, each in a fresh headless app."""
    return asyncio.run(_run_flood(rounds, lines, burst, probes, cprofile))


def marker_summary(r: RoundResult) -> str:
    """Per view: entries out of view against the marker's count, flagged when they differ."""
    return "; ".join(
        f"{name}: {out:,} entries out of view, marker says {r.marker_count.get(name, 0):,}"
        + (" <- MISMATCH" if name in r.miscounted else "")
        for name, out in r.out_of_view.items()
    )


def megabytes(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.0f} MB"


def _ms(values: list[float]) -> str:
    return f"{median(values) * 1e3:6.0f} ms" if values else "     -   "


def flood_report(result: FloodResult) -> str:
    lines = [
        f"transcript flood: {result.lines:,} lines added to a running send session's core "
        f"transcript, posted through the app's live feed, in bursts of {result.burst:,}; "
        f"headless app {COLUMNS}x{ROWS}; {plural(result.rounds, 'round')} alternating with no flood",
        "  key press -> screen shows it (median, all probes of all rounds):",
    ]
    for kind, what in (
        ("type", "a letter typed into To"),
        ("f3", "F3, compose -> transcript"),
        ("f2", "F2, transcript -> compose"),
    ):
        quiet, busy = result.latencies(False, kind), result.latencies(True, kind)
        ratio = f"{result.ratio(kind):.1f}x" if quiet and busy else "-"
        lines += [
            f"    {what:28} no flood {_ms(quiet)} [{len(quiet)}]   "
            f"flood {_ms(busy)} [{len(busy)}]   ratio {ratio}",
            f"    {'':28}   per round, min/median/max ms: no flood "
            f"{result.spread_text(False, kind) or '-'}; flood {result.spread_text(True, kind) or '-'}",
            f"    {'':28}   of which until the app had acted on the key: no flood "
            f"{median_ms(result.latencies(False, kind, 'handling'))}, "
            f"flood {median_ms(result.latencies(True, kind, 'handling'))}",
        ]
    if result.latencies(True) and result.latencies(False):
        lines.append(
            f"  typing during the flood against the target ({TARGET}): "
            + ("met" if result.on_target else "NOT met")
        )
    for number, r in enumerate(result.floods, 1):
        lost = (
            f", {r.lost_probes} probe(s) never shown within {PROBE_TIMEOUT:g} s"
            if r.lost_probes
            else ""
        )
        per_second = 1 / r.drain_seconds if r.drain_seconds else 0.0
        lines += [
            f"  flood round {number}: typing median {_ms(r.latencies['type'])}{lost}",
            f"    {r.lines:,} lines offered in {r.produce_seconds:.1f} s; the app had handled every "
            f"message after {r.drain_seconds:.1f} s ({r.core_entries * per_second:,.0f} entries/s "
            "shown); largest message backlogs: "
            + ", ".join(f"{name} {count:,}" for name, count in r.queue_peak.items()),
            f"    screen updates during the flood: {r.frames} ({r.frames * per_second:.1f}/s); "
            f"longest time without one {r.longest_frame_gap:.2f} s",
            f"    core transcript: {r.core_entries:,} entries (MAX_ENTRIES {r.core_limit:,}, "
            f"{'limit marker present' if r.core_limit_marker else 'no limit marker'}); "
            + "; ".join(f"{name}: {count:,} lines" for name, count in r.view_lines.items())
            + f" (cap {r.view_cap:,})",
            "    " + marker_summary(r),
            f"    trimmed marker: {r.trimmed_text or 'not shown'!r}, "
            f"on screen: {'yes' if r.trimmed_on_screen else 'NO'}; "
            f"typed text intact: {'yes' if r.typed_ok else 'NO'}",
            f"    RSS before {megabytes(r.rss_before)}, after {megabytes(r.rss_after)}, "
            f"peak {megabytes(r.rss_peak)}; while flooding: "
            + ", ".join(f"{count // 1000}k {megabytes(kb)}" for count, kb in r.rss_trace),
        ]
    lines.append(
        "  memory bounded (every view <= its cap, marker on screen): "
        + ("yes" if result.bounded else "NO")
    )
    check = result.marker_check
    if check is not None:
        lines.append(
            f"  marker check, {check.core_entries:,} entries (under the cap): "
            + "; ".join(f"{name}: {count:,} lines" for name, count in check.view_lines.items())
            + "; "
            + marker_summary(check)
        )
    if result.profile:
        lines.append(result.profile)
    return "\n".join(lines)
