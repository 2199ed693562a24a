"""The app: time to the first full screen, and staying usable through a transcript flood.

Two measurements, each against references taken in the same run:

**Launch.** One whole ``tuimail`` process against two references, each one
process: a minimal Textual app (a ``Header``, a ``Static`` and a ``Footer``),
and the "widget floor" (``FLOOR_APP``): tuimail's compose screen rebuilt in
plain Textual, without a tuimail import, with the same widget tree and the
same CSS (``tuimail/ui/app.tcss``, read from the repository at run time, and
the same ``DEFAULT_CSS`` for the composite widgets) and nothing else: no
profiles, sandbox, keyring, themes, keymap or modes. The issue requires every
one of those widgets, so floor/minimal is what Textual itself charges for
them, and tuimail/floor is what tuimail's own start-up work adds on top; the
gap tuimail - minimal splits exactly into the two (medians).

Each app starts as a user sees it: in a real pseudo-terminal (a tmux window
of 120x40 on a private tmux server), and the clock runs from asking tmux for
the window until ``tmux capture-pane`` first shows a screen that is only
drawn once the first screen is complete. For tuimail that is the footer's key
hints, the compose screen's ``To`` label and the built-in sandbox profile
with a real port (so the embedded sandbox is up and the profile selector
shows it); for the widget floor, the same hints and label and its own entry
in the From selector; for the minimal app, its own text, title and footer
hint. The time until tuimail's compose screen is drawn with the sandbox still
starting is reported on the side, as is each app's first non-blank screen.
Every run launches all three, in an order rotated from run to run, after one
untimed warm-up run of each; medians and the medians of per-run ratios are
compared. Every wait has a timeout; each window is killed after its run (and
its process with SIGKILL if SIGHUP did not end it), and the tmux server is
killed at the end, even when something fails. tuimail's configuration, data,
state and cache directories are empty temporary ones (``XDG_*_HOME``), so
the user's own profiles play no part.

A breakdown then starts each app in a fresh interpreter, in-process and
headless (``run_test``): how long its imports take and how long it then needs
until its first screen (for tuimail also: until the compose screen is
mounted, before the sandbox is up). After that, untimed, it takes a census
of the first screen (widgets by class, footer keys, the app's CSS rules, the
focused widget) and reports whether the widget floor's matches tuimail's.

**Transcript flood.** ``TuimailApp`` in ``App.run_test()`` (headless, 120x40,
embedded sandbox off), with the transcript screen visited once so that both
the compose screen's live view and the transcript screen listen, as after a
user has looked at both. A send session is started as the app's SMTP worker
starts one (a ``SessionRun`` in ``app.history``, ``SessionStarted`` posted to
the app), and a task adds 100,000 lines to its core ``Transcript``, whose
subscriber posts one ``TranscriptEntry`` per entry to the app: exactly what
``run_session``'s ``deliver_live`` does. Lines are added in bursts (1,000 by
default, about 45 KB of wire text, less than one socket read of a server
that floods) with one event-loop turn between bursts; nothing slows the
producer down but the app itself, as with a real connection.

While the flood is being shown, key presses are injected the way the
terminal driver injects them (``driver.send_message(events.Key(...))``, the
call its input thread makes), one after the other: a letter typed into the
To field, F3 (to the transcript screen) and F2 (back). The latency of each is
the time from the key to the first screen update that shows its effect: the
app's ``_display`` is wrapped to see every update the compositor produces
(and to turn it into terminal output as the real driver would, which the
headless driver skips), and the update must contain the To field's new text
or come from the screen switched to. The same probes run on a fresh app
with an ordinary session and no flood; rounds alternate which goes first.

Reported: median latencies with and without the flood and their ratio, how
fast the app worked through the flood, how often the screen was redrawn
during it, the RichLog line counts at the end (each must be <= the view's
cap), whether the "older lines trimmed" marker is on screen, the core
transcript's length, and the process's RSS before, during and after.
``--cprofile N`` profiles one extra flood round and prints where the time
goes.

This script prints numbers; it never fails because of them. It exits
non-zero when a measurement could not run (tmux missing, a screen never
appeared, the flood never drained).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import cProfile
import io
import itertools
import json
import os
import pstats
import re
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    # Run as a file path: make ``benchmarks`` and ``tuimail`` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_cli_vs_swaks import find_tuimail, isolated_env

if TYPE_CHECKING:
    from textual.screen import Screen

    from tuimail.ui.app import TuimailApp

LAUNCH_TARGET = "<= 1.5x"
LAUNCH_TARGET_RATIO = 1.5
FLOOD_TARGET = "-"
MEMORY_TARGET = "view <= 1.5x cap"
DEFAULT_RUNS = 10
DEFAULT_ROUNDS = 3
DEFAULT_LINES = 100_000
DEFAULT_BURST = 1_000
DEFAULT_PROBES = 12
BREAKDOWN_RUNS = 3
#: The short check flood, as a share of a view's cap: fewer entries than the
#: cap, but more wrapped lines than it in the narrow compose pane.
MARKER_CHECK_SHARE = 0.6
QUICK_RUNS = 4
QUICK_ROUNDS = 1
QUICK_LINES = 20_000
QUICK_PROBES = 6
COLUMNS, ROWS = 120, 40
#: A launch that shows nothing for this long is a failure, not a measurement.
LAUNCH_TIMEOUT = 30.0
#: How long to wait for a killed window's process to go.
STOP_TIMEOUT = 5.0
TMUX_TIMEOUT = 10.0
POLL_INTERVAL = 0.005
#: One probe (key press until the screen shows it) gives up after this long.
PROBE_TIMEOUT = 60.0
#: Pause between one probe's screen update and the next key press.
PROBE_GAP = 0.25
#: The flood must be worked through within this long.
DRAIN_TIMEOUT = 900.0
#: The letters typed into the To field, one per probe, after a unique seed.
TYPED = "abcdefghijklmnopqrstuvwxyz"
SEED = "QXJ"
#: What a probe presses: a letter into To, F3 to the transcript screen, F2 back.
KINDS = ("type", "f3", "f2")

MINIMAL_APP = """\
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Static


class Minimal(App[None]):
    TITLE = "minimal-bench"
    BINDINGS = [Binding("ctrl+s", "bell", "Save")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("minimal app ready")
        yield Footer()


Minimal().run()
"""

#: The "widget floor": tuimail's first screen (the compose screen) rebuilt in
#: plain Textual, without a single tuimail import. It composes the same widget
#: tree (the same classes and counts, ids, options, focus and footer keys)
#: under the same CSS: tuimail/ui/app.tcss itself, read at run time from the
#: file named by ``sys.argv[1]`` (tuimail loads it through ``CSS_PATH`` too),
#: and the same ``DEFAULT_CSS`` for the three composite widgets, which keep
#: their names because the CSS selects by them. And nothing else: no profiles,
#: sandbox, keyring, themes, keymap, modes, drafts or event handlers.
#:
#: Why it exists: the issue requires every one of these widgets (a From
#: selector, To/Cc/Bcc inputs, Subject, a TextArea body, an attachments list
#: with buttons, a Send button, a live transcript pane, a footer), so the
#: floor's launch is what Textual itself charges for them. floor/minimal is
#: Textual's cost of the required widgets; tuimail/floor is what tuimail's own
#: start-up work (sandbox, profiles, themes, modes, handlers) adds on top.
#: The breakdown checks, headless, that the two trees and their CSS match.
FLOOR_APP = """\
import gc
import sys

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import (
    Button,
    Footer,
    Input,
    Label,
    ListView,
    RichLog,
    Select,
    Static,
    TextArea,
)

#: The mode bar's line, with markup as tuimail's (six modes, the first current).
MODE_LINE = "".join(
    f"[{'reverse bold ' if index == 0 else ''}@click=app.bell] {key} {title} [/]"
    for index, (key, title) in enumerate(
        [
            ("F2", "Compose"),
            ("F3", "Transcript"),
            ("F4", "Accounts"),
            ("F5", "Sandbox"),
            ("F6", "Monitor"),
            ("F7", "Outbox"),
        ]
    )
)


class ModeBar(Static):
    DEFAULT_CSS = '''
    ModeBar { height: 1; background: $panel; color: $text-muted; }
    '''


class AddressField(Vertical):
    DEFAULT_CSS = '''
    AddressField { height: auto; }
    AddressField > Horizontal { height: 1; }
    AddressField Label.field-label { width: 9; color: $text-muted; }
    AddressField Input, AddressField Input:focus {
        border: none; height: 1; padding: 0 1; width: 1fr; background: $surface;
    }
    AddressField Input:focus { background: $boost; }
    AddressField .error { display: none; color: $error; padding-left: 9; height: auto; }
    AddressField.-invalid .error { display: block; }
    AddressField.-invalid Input { background: $error 15%; }
    '''

    def __init__(self, label: str, field: str, placeholder: str = "") -> None:
        super().__init__(id=f"field-{field}")
        self.label, self.field, self.placeholder = label, field, placeholder

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.label, classes="field-label")
            yield Input(placeholder=self.placeholder, id=f"input-{self.field}")
        yield Label("", classes="error", markup=False)


class TranscriptView(Vertical):
    DEFAULT_CSS = '''
    TranscriptView { height: 1fr; }
    TranscriptView > #trimmed { display: none; color: $warning; height: 1; }
    TranscriptView.-trimmed > #trimmed { display: block; }
    TranscriptView > RichLog { height: 1fr; background: $surface; }
    '''

    def compose(self) -> ComposeResult:
        yield Static("", id="trimmed")
        yield RichLog(wrap=True, markup=False, highlight=False, auto_scroll=True, min_width=1)


class ComposeScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+s", "app.bell", "Send", id="compose.send", priority=True),
        Binding("ctrl+n", "app.bell", "New", id="compose.new", show=False),
        Binding("ctrl+o", "app.bell", "Attach", id="compose.attach", show=False),
    ]

    def compose(self) -> ComposeResult:
        self.set_class(self.app.size.width >= 120, "-wide")
        yield ModeBar(MODE_LINE, id="mode-bar")
        with Horizontal(id="compose-main"):
            with Vertical(id="compose-form"):
                with Horizontal(id="from-row"):
                    yield Label("From", classes="field-label")
                    yield Select[str](
                        [(Text("widget-floor · plain · 127.0.0.1:2525 (built-in, local)"), "f")],
                        allow_blank=False,
                        id="profile",
                    )
                    yield Static(" plain ", id="security-badge", classes="-none", markup=False)
                yield Static("", id="profile-warning", markup=False)
                yield AddressField("To", "to", placeholder="name@example.com, Name <x@y.org>")
                yield AddressField("Cc", "cc")
                yield AddressField("Bcc", "bcc", placeholder="envelope only, never shown")
                with Horizontal(id="subject-row"):
                    yield Label("Subject", classes="field-label")
                    yield Input(id="subject")
                yield TextArea(id="body", soft_wrap=True, show_line_numbers=False)
                with Horizontal(id="attachments-row"):
                    yield Label("Attach", classes="field-label")
                    yield ListView(id="attachments")
                    yield Button("Add…", id="add-attachment", compact=True)
                    yield Button("Remove", id="remove-attachment", compact=True)
                with Horizontal(id="actions"):
                    yield Button("Send", variant="primary", id="send", compact=True)
                    yield Static("", id="send-status", markup=False)
            with Vertical(id="live"):
                yield Label("Live transcript", classes="pane-title")
                yield TranscriptView(id="live-view")
        yield Footer()

    def on_mount(self) -> None:
        # Focus as tuimail's compose screen sets it, before the first frame: the
        # footer then has its keys in that frame (AUTO_FOCUS would add a refresh).
        self.app.set_focus(self.query_one("#input-to", Input))


class Floor(App[None]):
    CSS_PATH = sys.argv[1]
    TITLE = "widget-floor"
    BINDINGS = [
        Binding("f1", "bell", "Help", id="app.help", priority=True),
        *(
            Binding(key, "bell", title, id=f"app.{key}", show=False, priority=True)
            for key, title in [
                ("f2", "Compose"),
                ("f3", "Transcript"),
                ("f4", "Accounts"),
                ("f5", "Sandbox"),
                ("f6", "Monitor"),
                ("f7", "Outbox, drafts, sent"),
            ]
        ),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    # The compose screen as tuimail installs it, as a mode: Textual's default
    # screen path draws a first frame before the footer has its keys.
    MODES = {"compose": ComposeScreen}
    DEFAULT_MODE = "compose"


# As the tuimail command does after its imports (cli.settle_imports): the
# floor is the best these widgets can do, with the same means.
gc.freeze()


Floor().run()
"""

#: Run in a fresh interpreter: how long the imports take, how long the app
#: then takes (headless, ``run_test``) until its first screen is mounted, and
#: until it is complete (for tuimail: the sandbox up). Then, untimed, a census
#: of that screen: its widgets by class, its footer keys, the app's CSS rules
#: and the focused widget, to check that the widget floor shows what tuimail does.
BREAKDOWN = """\
import asyncio, json, sys, time
from collections import Counter
started = time.perf_counter()
{imports}
imported = time.perf_counter() - started


async def main() -> None:
    app = {construct}
    began = time.perf_counter()
    async with app.run_test(size=({columns}, {rows})) as pilot:
        mounted = time.perf_counter() - began
        {wait}
        ready = time.perf_counter() - began
        await pilot.pause()
        await pilot.pause()
        census = {{
            "widgets": Counter(type(w).__name__ for w in app.screen.walk_children()),
            "footer_keys": [f"{{k.key_display}} {{k.description}}" for k in app.screen.query("FooterKey")],
            "css_rules": len(app.stylesheet.rules),
            "focused": getattr(app.focused, "id", None),
        }}
    print(f"BREAKDOWN {{imported:.6f}} {{mounted:.6f}} {{ready:.6f}}")
    print("CENSUS " + json.dumps(census))


asyncio.run(main())
"""
BREAKDOWN_TUIMAIL = {
    # Then what the tuimail command does between its imports and the app (cmd_app).
    "imports": "import tuimail.cli\nfrom tuimail.ui.app import TuimailApp\n"
    "tuimail.cli.settle_imports()",
    "construct": "TuimailApp()",
    # on_mount brings the sandbox up; wait for it (or for its failure note).
    "wait": "while app.sandbox is None and not app.sandbox_note:\n"
    "            await asyncio.sleep(0.002)",
}
BREAKDOWN_MINIMAL = {
    "imports": MINIMAL_APP.replace("\n\nMinimal().run()\n", ""),
    "construct": "Minimal()",
    "wait": "pass",
}
BREAKDOWN_FLOOR = {
    "imports": FLOOR_APP.replace("\n\nFloor().run()\n", ""),
    "construct": "Floor()",
    "wait": "pass",
}
#: tuimail's stylesheet, read by the widget floor at run time (its ``sys.argv[1]``).
APP_TCSS = Path(__file__).resolve().parent.parent / "tuimail" / "ui" / "app.tcss"

#: Every pattern must be on screen for the first screen to count as complete.
MINIMAL_MARKERS = (r"minimal app ready", r"minimal-bench", r"\^s Save")
#: Compose drawn: footer key hints and the To label.
TUIMAIL_UI_MARKERS = (r"\^s Send", r"(?m)^\s*To\s")
#: ... and the built-in sandbox profile with its real port: the sandbox is up.
TUIMAIL_MARKERS = (*TUIMAIL_UI_MARKERS, r"sandbox · \S+ · 127\.0\.0\.1:[1-9]")
#: The widget floor: the same UI markers, and its own entry in the From selector.
FLOOR_MARKERS = (*TUIMAIL_UI_MARKERS, r"widget-floor · plain")


class BenchmarkError(Exception):
    """A measurement could not run (tmux missing, a screen never appeared)."""


class TmuxMissing(BenchmarkError):
    """tmux is not installed: the launch benchmark needs a real terminal."""


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def median_ms(values: list[float]) -> str:
    """``values``' median in milliseconds, or "-" when there are none."""
    return f"{median(values) * 1e3:.0f} ms" if values else "-"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# -- launch ------------------------------------------------------------------


@dataclass
class Breakdown:
    """One in-process, headless start: seconds to each milestone, and what the screen held."""

    imported: float
    #: ``run_test`` handed over: the first screen is mounted.
    mounted: float
    #: ... and complete (for tuimail, the sandbox is up; for the others, the same moment).
    ready: float
    census: dict[str, Any] = field(default_factory=dict)


@dataclass
class LaunchResult:
    runs: int
    tuimail: list[float] = field(default_factory=list)
    minimal: list[float] = field(default_factory=list)
    #: The widget floor: tuimail's compose-screen widgets and CSS in plain Textual.
    floor: list[float] = field(default_factory=list)
    #: tuimail's compose screen drawn, the sandbox possibly still starting.
    tuimail_ui: list[float] = field(default_factory=list)
    tuimail_paint: list[float] = field(default_factory=list)
    minimal_paint: list[float] = field(default_factory=list)
    floor_paint: list[float] = field(default_factory=list)
    tuimail_command: str = ""
    minimal_command: str = ""
    floor_command: str = ""
    tmux_version: str = ""
    #: In-process, headless: (import seconds, seconds to the first screen) per run.
    tuimail_breakdown: list[tuple[float, float]] = field(default_factory=list)
    minimal_breakdown: list[tuple[float, float]] = field(default_factory=list)
    floor_breakdown: list[tuple[float, float]] = field(default_factory=list)
    #: In-process, headless: tuimail's seconds until its compose screen was
    #: mounted, before the sandbox was up (the breakdown's second figure waits for it).
    tuimail_mounted: list[float] = field(default_factory=list)
    #: The first screen's census (widgets by class, footer keys, CSS rules, focus).
    tuimail_census: dict[str, Any] = field(default_factory=dict)
    floor_census: dict[str, Any] = field(default_factory=dict)
    #: Composite widgets whose DEFAULT_CSS in the floor differs from tuimail's source.
    floor_css_drift: list[str] = field(default_factory=list)

    @property
    def tuimail_median(self) -> float:
        return median(self.tuimail)

    @property
    def minimal_median(self) -> float:
        return median(self.minimal)

    @property
    def floor_median(self) -> float:
        return median(self.floor)

    @property
    def ratio(self) -> float:
        return self.tuimail_median / self.minimal_median

    @property
    def paired_ratio(self) -> float:
        """Median of run-by-run ratios: steadier when the machine's load drifts."""
        return _paired(self.tuimail, self.minimal)

    @property
    def meets_target(self) -> bool:
        return self.ratio <= LAUNCH_TARGET_RATIO

    @property
    def floor_ratio(self) -> float:
        """Widget floor / minimal app: Textual's own cost of the widgets the issue requires."""
        return self.floor_median / self.minimal_median

    @property
    def floor_paired_ratio(self) -> float:
        return _paired(self.floor, self.minimal)

    @property
    def over_floor_ratio(self) -> float:
        """tuimail / widget floor: what tuimail adds on top of its widgets."""
        return self.tuimail_median / self.floor_median

    @property
    def over_floor_paired_ratio(self) -> float:
        return _paired(self.tuimail, self.floor)

    @property
    def floor_share(self) -> float:
        """The widget floor's part of tuimail's gap to the minimal app (medians; 1.0 = all of it)."""
        gap = self.tuimail_median - self.minimal_median
        return (self.floor_median - self.minimal_median) / gap if gap > 0 else float("nan")

    def floor_differences(self) -> list[str]:
        """Where the widget floor's first screen differs from tuimail's (empty: it matches)."""
        mine, theirs = self.floor_census, self.tuimail_census
        if not mine or not theirs:
            return ["no census"]
        differences = []
        widgets, wanted = mine.get("widgets", {}), theirs.get("widgets", {})
        for name in sorted(set(widgets) | set(wanted)):
            if widgets.get(name, 0) != wanted.get(name, 0):
                differences.append(
                    f"{name} x{widgets.get(name, 0)} (tuimail x{wanted.get(name, 0)})"
                )
        for key, what in (
            ("footer_keys", "footer keys"),
            ("css_rules", "CSS rules"),
            ("focused", "focus"),
        ):
            if mine.get(key) != theirs.get(key):
                differences.append(f"{what} {mine.get(key)} (tuimail {theirs.get(key)})")
        return [*differences, *self.floor_css_drift]


def _paired(values: list[float], references: list[float]) -> float:
    """Median of run-by-run ratios ``values[i] / references[i]``."""
    return median([v / r for v, r in zip(values, references, strict=False)])


@dataclass
class Launch:
    """What one launch saw: seconds to each milestone (None: never reached)."""

    complete: float
    drawn: float | None
    first_paint: float | None


class TmuxServer:
    """A private tmux server (its own socket) holding one idle session of COLUMNS x ROWS."""

    def __init__(self, env: dict[str, str]) -> None:
        tmux = shutil.which("tmux")
        if tmux is None:
            raise TmuxMissing(
                "tmux is not installed; install it (e.g. `apt-get install tmux`) "
                "to measure the launch in a real terminal"
            )
        self.tmux = tmux
        self.env = env
        # A socket of our own in a private directory: no other tmux server
        # (the user's, a test's) is touched, and nothing is left behind.
        self._socket_dir = tempfile.TemporaryDirectory(prefix="tuimail-bench-tmux-")
        self.socket = str(Path(self._socket_dir.name) / f"tmux-{secrets.token_hex(4)}.sock")
        self.started = False

    def run(self, *args: str) -> str:
        command = [self.tmux, "-S", self.socket, "-f", "/dev/null", *args]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=self.env,
                timeout=TMUX_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BenchmarkError(
                f"tmux {args[0]} did not answer within {TMUX_TIMEOUT:g} s"
            ) from None
        if done.returncode != 0:
            raise BenchmarkError(f"tmux {' '.join(args[:2])} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self) -> None:
        # The server copies this environment (the isolated XDG directories) into
        # every window. The first window only keeps the session alive.
        self.run("new-session", "-d", "-s", "bench", "-x", str(COLUMNS), "-y", str(ROWS), "cat")
        self.started = True
        self.run("set-option", "-g", "remain-on-exit", "off")
        # What a modern terminal emulator announces (tmux's default is "screen",
        # for which Rich would drop to 16 colours).
        self.run("set-option", "-g", "default-terminal", "tmux-256color")

    def version(self) -> str:
        return subprocess.run(
            [self.tmux, "-V"], capture_output=True, text=True, timeout=TMUX_TIMEOUT, check=False
        ).stdout.strip()

    def open_window(self, command: str) -> tuple[str, int]:
        out = self.run(
            "new-window", "-d", "-P", "-F", "#{window_id} #{pane_pid}", "-t", "bench:", command
        )
        window, pid = out.split()
        return window, int(pid)

    def capture(self, window: str) -> str:
        return self.run("capture-pane", "-p", "-t", window)

    def close_window(self, window: str, pid: int) -> None:
        """Kill the window (SIGHUP to its process); SIGKILL the process if it stays."""
        with contextlib.suppress(BenchmarkError):
            self.run("kill-window", "-t", window)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.01)

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(BenchmarkError):
                self.run("kill-server")
            self.started = False
        self._socket_dir.cleanup()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is gone for our purposes (tmux reaps it).
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _all(patterns: tuple[str, ...], screen: str) -> bool:
    return all(re.search(pattern, screen) for pattern in patterns)


def launch_once(
    tmux: TmuxServer,
    command: str,
    complete: tuple[str, ...],
    drawn: tuple[str, ...] | None = None,
) -> Launch:
    """Open a window running ``command``; time it until ``complete`` is all on screen."""
    started = time.perf_counter()
    window, pid = tmux.open_window(command)
    first_paint: float | None = None
    drawn_at: float | None = None
    screen = ""
    try:
        while True:
            screen = tmux.capture(window)
            now = time.perf_counter() - started
            if first_paint is None and screen.strip():
                first_paint = now
            if drawn is not None and drawn_at is None and _all(drawn, screen):
                drawn_at = now
            if _all(complete, screen):
                return Launch(now, drawn_at if drawn is not None else now, first_paint)
            if now > LAUNCH_TIMEOUT:
                raise BenchmarkError(
                    f"{command!r} did not show its first full screen within "
                    f"{LAUNCH_TIMEOUT:g} s; waiting for all of {complete}; the screen was:\n"
                    + "\n".join(line.rstrip() for line in screen.splitlines() if line.strip())
                )
            time.sleep(POLL_INTERVAL)
    finally:
        tmux.close_window(window, pid)


#: The composite widgets whose ``DEFAULT_CSS`` the widget floor repeats, and where tuimail has them.
FLOOR_COPIES = {
    "AddressField": "tuimail/ui/widgets/address_field.py",
    "TranscriptView": "tuimail/ui/widgets/transcript_view.py",
    "ModeBar": "tuimail/ui/widgets/mode_bar.py",
}


def _default_css(source: str) -> dict[str, str]:
    """Each class's ``DEFAULT_CSS`` in Python ``source``, whitespace normalised (read, not imported)."""
    found = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                if (
                    isinstance(statement, ast.Assign)
                    and any(
                        isinstance(t, ast.Name) and t.id == "DEFAULT_CSS" for t in statement.targets
                    )
                    and isinstance(statement.value, ast.Constant)
                ):
                    found[node.name] = " ".join(str(statement.value.value).split())
    return found


def floor_css_drift() -> list[str]:
    """The composite widgets whose ``DEFAULT_CSS`` in the widget floor is no longer tuimail's."""
    floor = _default_css(FLOOR_APP)
    drift = []
    for name, path in FLOOR_COPIES.items():
        try:
            theirs = _default_css((APP_TCSS.parents[2] / path).read_text(encoding="utf-8"))
        except (OSError, SyntaxError) as exc:
            drift.append(f"{name}: {path} not read ({exc})")
            continue
        if floor.get(name) != theirs.get(name):
            drift.append(f"{name}'s DEFAULT_CSS differs from {path}'s")
    return drift


def breakdown_once(
    values: dict[str, str], env: dict[str, str], args: tuple[str, ...] = ()
) -> Breakdown:
    """Import time and headless time to the first screen, in a fresh interpreter."""
    script = BREAKDOWN.format(columns=COLUMNS, rows=ROWS, **values)
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            timeout=LAUNCH_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"the launch breakdown took over {LAUNCH_TIMEOUT:g} s") from None
    measured: Breakdown | None = None
    census: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        if line.startswith("BREAKDOWN "):
            imported, mounted, ready = (float(value) for value in line.split()[1:])
            measured = Breakdown(imported, mounted, ready)
        elif line.startswith("CENSUS "):
            census = json.loads(line.removeprefix("CENSUS "))
    if measured is None:
        raise BenchmarkError(f"the launch breakdown failed:\n{done.stderr[-2000:]}")
    measured.census = census
    return measured


#: The apps of the launch benchmark, in the order of their first run.
LAUNCHED = ("tuimail", "minimal", "floor")


def run_launch(runs: int = DEFAULT_RUNS) -> LaunchResult:
    """Launch tuimail, the minimal app and the widget floor in turn in tmux windows.

    Each run launches all three, in an order rotated from run to run, and times
    each one's first full screen; then each starts once more per breakdown run,
    in-process and headless, to split its time into imports and start-up.
    """
    if not APP_TCSS.is_file():
        raise BenchmarkError(
            f"tuimail's stylesheet is not at {APP_TCSS}; the widget floor needs it"
        )
    tuimail = find_tuimail()
    python = shlex.quote(sys.executable)
    commands = {
        "tuimail": f"exec {shlex.quote(tuimail)}",
        "minimal": f"exec {python} -c {shlex.quote(MINIMAL_APP)}",
        "floor": f"exec {python} -c {shlex.quote(FLOOR_APP)} {shlex.quote(str(APP_TCSS))}",
    }
    markers = {"tuimail": TUIMAIL_MARKERS, "minimal": MINIMAL_MARKERS, "floor": FLOOR_MARKERS}
    result = LaunchResult(
        runs=runs,
        tuimail_command=tuimail,
        minimal_command=f"{sys.executable} -c <minimal app: Header, Static, Footer>",
        floor_command=f"{sys.executable} -c <widget floor: tuimail's compose-screen widgets, "
        f"plain Textual> {APP_TCSS.relative_to(APP_TCSS.parents[2])}",
        floor_css_drift=floor_css_drift(),
    )
    with isolated_env() as (env, _no_cache):
        env["COLORTERM"] = "truecolor"
        tmux = TmuxServer(env)
        try:
            result.tmux_version = tmux.version()
            tmux.start()
            # Warm-up: the bytecode cache and the OS page cache, for each.
            for which in LAUNCHED:
                launch_once(tmux, commands[which], markers[which])
            for index in range(runs):
                shift = index % len(LAUNCHED)
                for which in LAUNCHED[shift:] + LAUNCHED[:shift]:
                    if which == "tuimail":
                        seen = launch_once(
                            tmux, commands[which], markers[which], TUIMAIL_UI_MARKERS
                        )
                        result.tuimail_ui.append(seen.drawn or seen.complete)
                    else:
                        seen = launch_once(tmux, commands[which], markers[which])
                    getattr(result, which).append(seen.complete)
                    if seen.first_paint is not None:
                        getattr(result, f"{which}_paint").append(seen.first_paint)
        finally:
            tmux.stop()
        breakdowns = {
            "tuimail": (BREAKDOWN_TUIMAIL, ()),
            "minimal": (BREAKDOWN_MINIMAL, ()),
            "floor": (BREAKDOWN_FLOOR, (str(APP_TCSS),)),
        }
        for index in range(BREAKDOWN_RUNS):
            shift = index % len(LAUNCHED)
            for which in LAUNCHED[shift:] + LAUNCHED[:shift]:
                values, args = breakdowns[which]
                measured = breakdown_once(values, env, args)
                getattr(result, f"{which}_breakdown").append((measured.imported, measured.ready))
                if which == "tuimail":
                    result.tuimail_mounted.append(measured.mounted)
                    result.tuimail_census = measured.census
                elif which == "floor":
                    result.floor_census = measured.census
    return result


def _ms(values: list[float]) -> str:
    if not values:
        return "    -   "
    return (
        f"{median(values) * 1e3:7.0f} ms (min {min(values) * 1e3:.0f}, max {max(values) * 1e3:.0f})"
    )


def _signed_ms(seconds: float) -> str:
    return f"{seconds * 1e3:+.0f} ms"


def census_summary(result: LaunchResult) -> str:
    """Whether the widget floor's first screen is tuimail's, widget for widget."""
    differences = result.floor_differences()
    if differences:
        return "DIFFERS: " + "; ".join(differences)
    census = result.floor_census
    widgets = census.get("widgets", {})
    return (
        f"the same {sum(widgets.values())} widgets of {len(widgets)} classes, "
        f"the same footer keys ({', '.join(census.get('footer_keys', []))}), "
        f"{census.get('css_rules')} CSS rules each (the composites' DEFAULT_CSS as in "
        f"tuimail's source), focus on #{census.get('focused')}"
    )


def launch_report(result: LaunchResult) -> str:
    imports = {which: [i for i, _ in getattr(result, f"{which}_breakdown")] for which in LAUNCHED}
    started = {which: [r for _, r in getattr(result, f"{which}_breakdown")] for which in LAUNCHED}
    floor_gap = result.floor_median - result.minimal_median
    own_gap = result.tuimail_median - result.floor_median
    within = "within" if result.floor_ratio <= LAUNCH_TARGET_RATIO else "over"
    return "\n".join(
        [
            f"launch to the first full screen in a {COLUMNS}x{ROWS} tmux window "
            f"({result.tmux_version}), median of {result.runs} runs of each app, "
            "the order rotated every run",
            f"  tuimail, compose + sandbox up:    {_ms(result.tuimail)}   {result.tuimail_command}",
            f"  widget floor (same widgets, CSS): {_ms(result.floor)}   {result.floor_command}",
            f"  minimal Textual app:              {_ms(result.minimal)}   {result.minimal_command}",
            f"  ratio tuimail/minimal: {result.ratio:.2f}x   target {LAUNCH_TARGET}   "
            f"({'met' if result.meets_target else 'NOT met'}); "
            f"median of per-run ratios {result.paired_ratio:.2f}x",
            f"  widget floor/minimal:  {result.floor_ratio:.2f}x   median of per-run ratios "
            f"{result.floor_paired_ratio:.2f}x: Textual's own cost for the widgets the issue "
            f"requires, {within} the {LAUNCH_TARGET} target by itself",
            f"  tuimail/widget floor:  {result.over_floor_ratio:.2f}x   median of per-run ratios "
            f"{result.over_floor_paired_ratio:.2f}x: what tuimail adds on top of its widgets",
            f"  of tuimail's {_signed_ms(result.tuimail_median - result.minimal_median)} over the "
            f"minimal app (medians), the widget floor accounts for {_signed_ms(floor_gap)} "
            f"({result.floor_share:.0%}), tuimail's own start-up for {_signed_ms(own_gap)}",
            f"  on the side: tuimail's compose screen drawn (sandbox maybe still starting) "
            f"{_ms(result.tuimail_ui)}, ratio to minimal "
            f"{median(result.tuimail_ui) / result.minimal_median:.2f}x, to the widget floor "
            f"{median(result.tuimail_ui) / result.floor_median:.2f}x",
            f"  first non-blank screen: tuimail {_ms(result.tuimail_paint)}, "
            f"widget floor {_ms(result.floor_paint)}, minimal {_ms(result.minimal_paint)}",
            f"  where it goes (in-process, headless run_test, median of {BREAKDOWN_RUNS}):",
            f"    imports:                   tuimail {_ms(imports['tuimail'])}"
            f"   floor {_ms(imports['floor'])}   minimal {_ms(imports['minimal'])}",
            f"    app start to first screen: tuimail {_ms(started['tuimail'])}"
            f"   floor {_ms(started['floor'])}   minimal {_ms(started['minimal'])}",
            f"      of which tuimail's compose screen mounted (sandbox still starting): "
            f"{_ms(result.tuimail_mounted)}",
            f"  widget floor vs tuimail's first screen (headless census): {census_summary(result)}",
        ]
    )


# -- transcript flood --------------------------------------------------------


@dataclass
class Probe:
    kind: str  # "type", "f3" or "f2"
    sent: float
    event: asyncio.Event
    accepts: Callable[[Screen[Any], str], bool]
    shown: float | None = None
    #: When the app had acted on the key (the To field's value changed, the
    #: screen was switched), before the screen showed it.
    handled: float | None = None

    @property
    def latency(self) -> float | None:
        return None if self.shown is None else self.shown - self.sent

    @property
    def handling(self) -> float | None:
        return None if self.handled is None else self.handled - self.sent


@dataclass
class RoundResult:
    flood: bool
    latencies: dict[str, list[float]] = field(default_factory=dict)
    #: Key press until the app had acted on it, of the same probes.
    handling: dict[str, list[float]] = field(default_factory=dict)
    lost_probes: int = 0
    #: Lines offered to the core transcript, and how long adding them took.
    lines: int = 0
    produce_seconds: float = 0.0
    #: From the first line until every message about it was handled.
    drain_seconds: float = 0.0
    frames: int = 0
    longest_frame_gap: float = 0.0
    #: The most messages waiting in each message pump (the app, each screen) during the flood.
    queue_peak: dict[str, int] = field(default_factory=dict)
    core_entries: int = 0
    core_limit: int = 0
    core_limit_marker: bool = False
    view_lines: dict[str, int] = field(default_factory=dict)
    #: Transcript entries drawn in each view (the cap counts entries, not wrapped lines).
    view_entries: dict[str, int] = field(default_factory=dict)
    #: Entries of the session no longer in each view (from its first line), and
    #: how many the view's own "older lines trimmed" marker says it trimmed.
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

    def latencies(self, flood: bool, kind: str = "type") -> list[float]:
        return [
            value
            for result in self.results
            if result.flood == flood
            for value in result.latencies.get(kind, [])
        ]

    def handling(self, flood: bool, kind: str = "type") -> list[float]:
        return [
            value
            for result in self.results
            if result.flood == flood
            for value in result.handling.get(kind, [])
        ]

    def median(self, flood: bool, kind: str = "type") -> float:
        return median(self.latencies(flood, kind))

    def ratio(self, kind: str = "type") -> float:
        return self.median(True, kind) / self.median(False, kind)

    @property
    def floods(self) -> list[RoundResult]:
        return [r for r in self.results if r.flood]

    @property
    def bounded(self) -> bool:
        # A view redraws its last ``cap`` entries once 1.5 x cap are drawn.
        return all(
            entries <= r.view_cap * 3 // 2
            for r in self.floods
            for entries in r.view_entries.values()
        ) and all(r.trimmed_on_screen for r in self.floods if r.core_entries > r.view_cap)


def rss_kb() -> int:
    """This process's resident set size (VmRSS), in kB; 0 where /proc is missing."""
    return _status_kb("VmRSS") or 0


def _status_kb(name: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM so the next reading is this round's peak (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@contextlib.contextmanager
def isolated_dirs() -> Iterator[None]:
    """Point this process's XDG directories at an empty temporary one, then restore them."""
    names = [f"XDG_{n}_HOME" for n in ("CONFIG", "DATA", "STATE", "CACHE")]
    saved = {name: os.environ.get(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="tuimail-bench-app-") as tmp:
        for name in names:
            path = Path(tmp) / name.lower()
            path.mkdir()
            os.environ[name] = str(path)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@dataclass
class FrameLog:
    """Every screen update the app produced, and the probes waiting to see one."""

    times: list[float] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)

    def acted(self, kind: str) -> None:
        """The app acted on a key of ``kind`` (its effect is not necessarily on screen yet)."""
        now = time.perf_counter()
        for probe in self.probes:
            if probe.kind == kind and probe.handled is None:
                probe.handled = now

    def saw(self, screen: Screen[Any], text: str) -> None:
        now = time.perf_counter()
        self.times.append(now)
        for probe in self.probes:
            if probe.shown is None and probe.accepts(screen, text):
                probe.shown = now
                probe.event.set()


def measured_app(frames: FrameLog) -> TuimailApp:
    """A TuimailApp that reports every screen update to ``frames``, rendered as a terminal gets it."""
    from textual._compositor import CompositorUpdate

    from tuimail.ui.app import TuimailApp

    class MeasuredApp(TuimailApp):
        def _display(self, screen: Screen[Any], renderable: Any) -> None:
            super()._display(screen, renderable)
            if renderable is None or self._batch_count:
                return
            # The headless driver writes nothing, so the escape sequences a
            # terminal would get are never made; make them (that is part of
            # the cost of a frame) and look in them for what a probe expects.
            text = ""
            if isinstance(renderable, CompositorUpdate):
                text = renderable.render_segments(self.console)
            frames.saw(screen, text)

    return MeasuredApp(start_sandbox=False)


def shows_text(screen_wanted: Screen[Any], text_wanted: str) -> Callable[[Screen[Any], str], bool]:
    """A probe's test: an update of ``screen_wanted`` that contains ``text_wanted``."""

    def accepts(screen: Screen[Any], text: str) -> bool:
        return screen is screen_wanted and text_wanted in text

    return accepts


def shows_screen(screen_class: type[Screen[Any]]) -> Callable[[Screen[Any], str], bool]:
    """A probe's test: any update of a screen of ``screen_class``."""

    def accepts(screen: Screen[Any], _text: str) -> bool:
        return isinstance(screen, screen_class)

    return accepts


def _screen_text(screen: Screen[Any]) -> str:
    """The plain text of everything ``screen`` shows now."""
    return "\n".join(strip.text for strip in screen._compositor.render_strips())


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
    from tuimail.ui.history import SessionRun
    from tuimail.ui.messages import SessionStarted, TranscriptEntry
    from tuimail.ui.screens.compose import ComposeScreen
    from tuimail.ui.screens.transcript import TranscriptScreen
    from tuimail.ui.widgets.transcript_view import TranscriptView

    result = RoundResult(flood=flood)
    frames = FrameLog()
    app = measured_app(frames)
    async with app.run_test(size=(COLUMNS, ROWS)) as pilot:
        # Visit the transcript screen once, so both screens show the session.
        await pilot.press("f3")
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
        def value_changed() -> None:
            frames.acted("type")

        def screen_changed(screen: Screen[Any]) -> None:
            frames.acted("f3" if isinstance(screen, TranscriptScreen) else "f2")

        app.watch(to_field, "value", value_changed, init=False)
        app.screen_change_signal.subscribe(app, screen_changed, immediate=True)

        run = SessionRun("send", "sandbox", "flood@example.test", Transcript(title="flood"))
        app.history.add(run)
        app.post_message(SessionStarted(run))

        # As run_session's worker does: the app's own (coalescing) live feed.
        live_feed = getattr(app, "_live_feed", None)
        if live_feed is not None:
            run.transcript.subscribe(live_feed(run))
        else:  # an older app: one message per entry

            def deliver_live(entry: Any) -> None:
                app.post_message(TranscriptEntry(run, entry))

            run.transcript.subscribe(deliver_live)
        # An ordinary session's beginning, so the views are not empty in either case.
        run.transcript.event(EventKind.CONNECTED, "connected to 127.0.0.1:2525")
        for number in range(10):
            run.transcript.add(Direction.SERVER, f"250-bench.example.test line {number}")
        await pilot.pause()
        await pilot.pause()

        views = {
            "compose live view": compose.query_one("#live-view", TranscriptView),
            "transcript screen view": _transcript_view(app, TranscriptScreen, TranscriptView),
        }
        pumps: dict[str, Any] = {"app": app}
        pumps.update((type(screen).__name__, screen) for screen in app._listening_screens())
        result.view_cap = min(view.cap for view in views.values())
        prelude = len(run.transcript)  # entries before the flood's first line
        result.rss_before = rss_kb()
        peak_known = _reset_peak_rss()
        result.queue_peak = dict.fromkeys(pumps, 0)

        async def produce() -> None:
            step = max(lines // 10, 1)
            started = time.perf_counter()
            for number in range(lines):
                run.transcript.add(
                    Direction.SERVER, f"250-flood line {number:06d} lorem ipsum dolor sit amet"
                )
                if (number + 1) % burst == 0:
                    for name, pump in pumps.items():
                        waiting = pump._message_queue.qsize()
                        result.queue_peak[name] = max(result.queue_peak[name], waiting)
                    if (number + 1) % step < burst:
                        result.rss_trace.append((number + 1, rss_kb()))
                    await asyncio.sleep(0)
            result.lines = lines
            result.produce_seconds = time.perf_counter() - started

        frames_before = len(frames.times)
        started = time.perf_counter()
        producer: asyncio.Task[None] | None = None
        if flood:
            if profiler is not None:
                profiler.enable()
            producer = asyncio.create_task(produce())
        typed = SEED
        result.latencies = {kind: [] for kind in KINDS}
        result.handling = {kind: [] for kind in KINDS}
        try:
            for kind in probe_schedule(probes):
                if flood and producer is not None and producer.done() and _idle(pumps):
                    break
                await asyncio.sleep(PROBE_GAP)
                if kind == "type":
                    letter = TYPED[(len(typed) - len(SEED)) % len(TYPED)]
                    typed += letter
                    probe = Probe(
                        kind,
                        0.0,
                        asyncio.Event(),
                        shows_text(compose, typed[-5:]),
                    )
                    key = events.Key(letter, letter)
                else:
                    target: type[Screen[Any]] = TranscriptScreen if kind == "f3" else ComposeScreen
                    probe = Probe(
                        kind,
                        0.0,
                        asyncio.Event(),
                        shows_screen(target),
                    )
                    key = events.Key(kind, None)
                frames.probes = [probe]
                probe.sent = time.perf_counter()
                driver = app._driver
                assert driver is not None
                driver.send_message(key)  # what the driver's input thread does
                try:
                    await asyncio.wait_for(probe.event.wait(), timeout=PROBE_TIMEOUT)
                except TimeoutError:
                    result.lost_probes += 1
                    if kind != "type":
                        # Make sure the next probe starts from the compose screen.
                        await _wait_for(lambda: isinstance(app.screen, ComposeScreen))
                if probe.latency is not None:
                    result.latencies[kind].append(probe.latency)
                if probe.handling is not None:
                    result.handling[kind].append(probe.handling)
            frames.probes = []
            if producer is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(producer), timeout=DRAIN_TIMEOUT)
                except TimeoutError:
                    raise BenchmarkError(
                        f"adding the flood's lines took over {DRAIN_TIMEOUT:g} s"
                    ) from None
                deadline = time.perf_counter() + DRAIN_TIMEOUT
                while not _idle(pumps):
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
        result.rss_peak = _status_kb("VmHWM") if peak_known else None
        result.core_entries = len(run.transcript)
        result.core_limit_marker = any(e.kind is EventKind.TRIMMED for e in run.transcript)
        result.view_lines = {name: len(view.log_widget.lines) for name, view in views.items()}
        result.view_entries = {
            name: int(getattr(view, "_shown", len(view.log_widget.lines)))
            for name, view in views.items()
        }
        for name, view in views.items():
            first = _first_flood_line(view.log_widget)
            if first is not None:
                result.out_of_view[name] = prelude + first
            result.marker_count[name] = _marker_count(view)
        live = views["compose live view"]
        if live.has_class("-trimmed"):
            from textual.widgets import Static

            result.trimmed_text = str(live.query_one("#trimmed", Static).content)
        if not isinstance(app.screen, ComposeScreen):
            await pilot.press("f2")
            await pilot.pause()
        result.trimmed_on_screen = "older lines trimmed" in _screen_text(app.screen)
        result.typed_ok = to_field.value == typed
        result.core_limit = MAX_ENTRIES
    return result


FLOOD_LINE = re.compile(r"flood line (\d{6})")


def _first_flood_line(log: Any) -> int | None:
    """The number of the first flood line still in a RichLog (None: there is none)."""
    for strip in log.lines[:3]:  # the first line may be the end of a wrapped one
        found = FLOOD_LINE.search(strip.text)
        if found:
            return int(found.group(1))
    return None


def _marker_count(view: Any) -> int:
    """How many lines a TranscriptView's "older lines trimmed" marker says it trimmed."""
    if not view.has_class("-trimmed"):
        return 0
    from textual.widgets import Static

    text = str(view.query_one("#trimmed", Static).content)
    found = re.search(r"([\d,]+) older lines", text)
    return int(found.group(1).replace(",", "")) if found else 0


def _transcript_view(app: TuimailApp, screen_class: type[Any], view_class: type[Any]) -> Any:
    for screen in app._listening_screens():
        if isinstance(screen, screen_class):
            return screen.query_one("#transcript-view", view_class)
    raise BenchmarkError("the transcript screen is not listening after F3")


def _idle(pumps: dict[str, Any]) -> bool:
    return all(pump._message_queue.empty() for pump in pumps.values())


def probe_schedule(typing: int) -> list[str]:
    """``typing`` letters typed into To, with a screen switch there and back after every third."""
    schedule: list[str] = []
    for number in range(1, typing + 1):
        schedule.append("type")
        if number % 3 == 0:
            schedule += ["f3", "f2"]
    return schedule


async def _wait_for(condition: Callable[[], bool], timeout: float = PROBE_TIMEOUT) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise BenchmarkError("the app did not get back to the compose screen")
        await asyncio.sleep(0.01)


async def _run_flood(
    rounds: int, lines: int, burst: int, probes: int, cprofile: int
) -> FloodResult:
    result = FloodResult(rounds=rounds, lines=lines, burst=burst)
    for index in range(rounds):
        order = [False, True] if index % 2 == 0 else [True, False]
        for flood in order:
            result.results.append(await flood_round(flood, lines, burst, probes))
    # Fewer entries than the cap: no view should lose any (or else say so).
    from tuimail.ui.widgets.transcript_view import DEFAULT_CAP

    check_lines = int(DEFAULT_CAP * MARKER_CHECK_SHARE)
    result.marker_check = await flood_round(True, check_lines, burst, 0)
    if cprofile:
        profiler = cProfile.Profile()
        await flood_round(True, lines, burst, probes, profiler=profiler)
        result.profile = _profile_text(profiler, cprofile)
    return result


def run_flood(
    rounds: int = DEFAULT_ROUNDS,
    lines: int = DEFAULT_LINES,
    burst: int = DEFAULT_BURST,
    probes: int = DEFAULT_PROBES,
    cprofile: int = 0,
) -> FloodResult:
    """Alternate rounds with and without a flood, each in a fresh headless app."""
    with isolated_dirs():
        return asyncio.run(_run_flood(rounds, lines, burst, probes, cprofile))


def _profile_text(profiler: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs()
    out.write(f"cProfile of one flood round, top {top} by own time:\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write(f"top {top} by cumulative time (tuimail, RichLog, message pump, compositor):\n")
    stats.sort_stats("cumulative").print_stats(
        r"transcript_view|compose|transcript\.py|_rich_log|message_pump|_compositor|app\.py|segment|text\.py",
        top,
    )
    return out.getvalue()


def marker_summary(r: RoundResult) -> str:
    """Per view: entries out of view against the marker's count, flagged when they differ."""
    wrong = r.miscounted
    return "; ".join(
        f"{name}: {out:,} entries out of view, marker says {r.marker_count.get(name, 0):,}"
        + (" <- MISMATCH" if name in wrong else "")
        for name, out in r.out_of_view.items()
    )


def megabytes(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.0f} MB"


def flood_report(result: FloodResult) -> str:
    floods = result.floods
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
        lines.append(
            f"    {what:28} no flood {_ms(quiet)} [{len(quiet)}]   "
            f"flood {_ms(busy)} [{len(busy)}]   ratio "
            + (f"{result.ratio(kind):.1f}x" if quiet and busy else "-")
        )
        lines.append(
            f"    {'':28}   of which until the app had acted on the key: "
            f"no flood {median_ms(result.handling(False, kind))}, "
            f"flood {median_ms(result.handling(True, kind))}"
        )
    for number, r in enumerate(floods, 1):
        lost = (
            f", {r.lost_probes} probe(s) never shown within {PROBE_TIMEOUT:g} s"
            if r.lost_probes
            else ""
        )
        rate = r.core_entries / r.drain_seconds if r.drain_seconds else 0.0
        lines += [
            f"  flood round {number}: typing median {_ms(r.latencies['type'])}{lost}",
            f"    {r.lines:,} lines offered in {r.produce_seconds:.1f} s; the app had handled every "
            f"message after {r.drain_seconds:.1f} s ({rate:,.0f} entries/s shown); "
            "largest message backlogs: "
            + ", ".join(f"{name} {count:,}" for name, count in r.queue_peak.items()),
            f"    screen updates during the flood: {r.frames} "
            f"({r.frames / r.drain_seconds if r.drain_seconds else 0:.1f}/s); "
            f"longest time without one {r.longest_frame_gap:.2f} s",
            f"    core transcript: {r.core_entries:,} entries (MAX_ENTRIES {r.core_limit:,}, "
            f"{'limit marker present' if r.core_limit_marker else 'no limit marker'}); "
            + "; ".join(f"{name}: {count:,} lines" for name, count in r.view_lines.items())
            + f" (cap {r.view_cap:,})",
            "    " + marker_summary(r),
            f"    trimmed marker: {r.trimmed_text or 'not shown'!r}, "
            f"on screen: {'yes' if r.trimmed_on_screen else 'NO'}; "
            f"typed text intact: {'yes' if r.typed_ok else 'NO'}",
            f"    RSS before {megabytes(r.rss_before)}, after {megabytes(r.rss_after)}, peak {megabytes(r.rss_peak)}; "
            "while flooding: "
            + ", ".join(f"{count // 1000}k {megabytes(kb)}" for count, kb in r.rss_trace),
        ]
    lines.append(
        f"  memory bounded (every view <= its cap, marker on screen): "
        f"{'yes' if result.bounded else 'NO'}"
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


# -- command line ------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer runs, rounds and lines")
    parser.add_argument("--runs", type=int, help=f"launches of each app (default {DEFAULT_RUNS})")
    parser.add_argument("--rounds", type=int, help=f"flood rounds (default {DEFAULT_ROUNDS})")
    parser.add_argument("--lines", type=int, help=f"flood lines (default {DEFAULT_LINES:,})")
    parser.add_argument(
        "--burst", type=int, default=DEFAULT_BURST, help="lines added per event-loop turn"
    )
    parser.add_argument(
        "--probes",
        type=int,
        help=f"letters typed per round (default {DEFAULT_PROBES}); F3 and F2 after every third",
    )
    parser.add_argument(
        "--cprofile", type=int, default=0, metavar="N", help="profile one extra flood round"
    )
    parser.add_argument("--skip-launch", action="store_true")
    parser.add_argument("--skip-flood", action="store_true")
    args = parser.parse_args(argv)
    runs = args.runs or (QUICK_RUNS if args.quick else DEFAULT_RUNS)
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS)
    lines = args.lines or (QUICK_LINES if args.quick else DEFAULT_LINES)
    probes = args.probes or (QUICK_PROBES if args.quick else DEFAULT_PROBES)
    if min(runs, rounds, lines, args.burst, probes) < 1 or args.cprofile < 0:
        parser.error("--runs, --rounds, --lines, --burst and --probes must be at least 1")
    if probes > len(TYPED):
        parser.error(f"--probes must be at most {len(TYPED)}")

    exit_code = 0
    if not args.skip_launch:
        try:
            launch = run_launch(runs)
        except BenchmarkError as exc:
            print(f"bench_app launch: {exc}", file=sys.stderr)
            exit_code = 2
        else:
            print(launch_report(launch), flush=True)
    if not args.skip_flood:
        try:
            flood = run_flood(rounds, lines, args.burst, probes, args.cprofile)
        except BenchmarkError as exc:
            print(f"bench_app flood: {exc}", file=sys.stderr)
            exit_code = 2
        else:
            print(flood_report(flood), flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
