"""The app's launch: one whole ``tuimail`` process until its first full screen, in a real terminal.

Two references are launched in the same runs, each one process: a minimal
Textual app (:mod:`benchmarks.apps.minimal`) and the widget floor
(:mod:`benchmarks.apps.floor`, tuimail's compose-screen widgets in a plain
Textual app). floor/minimal is what Textual charges for the widgets tuimail
must show, tuimail/floor what tuimail's own start-up adds; the gap
tuimail - minimal splits into the two (medians).

Each app starts in a new window of a private tmux server (its own socket,
``-f /dev/null``, 120x40, ``TERM=tmux-256color``, ``COLORTERM=truecolor``),
and the clock runs from asking tmux for the window until ``tmux
capture-pane`` (polled every 5 ms) first shows every marker of a complete
first screen: for tuimail the footer's ``^s Send``, the ``To`` label and the
built-in sandbox profile with a real port (the embedded sandbox is up); for
the floor the same keys and label and its own From entry; for the minimal
app its text, title and footer key. Each run launches all three in an order
rotated from run to run, after one untimed warm-up of each. Reported too:
tuimail's compose screen drawn (the sandbox maybe still starting), each
app's first non-blank screen, and a breakdown (:mod:`benchmarks.apps.breakdown`,
in a fresh interpreter each) of imports and headless start-up, with a census
of the first screen that tells whether the floor shows what tuimail shows.
Each window is killed after its run (SIGKILL if SIGHUP did not end it), the
tmux server at the end, whatever happened; the XDG directories are empty
temporary ones and bytecode is cached.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.apps import floor, minimal
from benchmarks.common import (
    REPO_ROOT,
    STOP_TIMEOUT,
    BenchmarkError,
    find_tuimail,
    isolated_env,
    median,
    met,
    paired_ratio,
    rotated,
    run_checked,
)

TARGET = "<= 1.5x"
TARGET_RATIO = 1.5
DEFAULT_RUNS = 10
QUICK_RUNS = 4
BREAKDOWN_RUNS = 3
COLUMNS, ROWS = 120, 40
#: A launch that shows nothing for this long is a failure, not a measurement.
LAUNCH_TIMEOUT = 30.0
TMUX_TIMEOUT = 10.0
POLL_INTERVAL = 0.005
#: The apps, in the order of their first run.
APPS = ("tuimail", "minimal", "floor")
#: tuimail's compose screen drawn: footer key hints and the To label.
TUIMAIL_UI_MARKERS = (r"\^s Send", r"(?m)^\s*To\s")
#: Every pattern must be on screen for the first screen to count as complete;
#: for tuimail the built-in sandbox profile with its real port: the sandbox is up.
MARKERS = {
    "tuimail": (*TUIMAIL_UI_MARKERS, r"sandbox · \S+ · 127\.0\.0\.1:[1-9]"),
    "minimal": minimal.MARKERS,
    "floor": floor.MARKERS,
}


class TmuxMissing(BenchmarkError):
    """tmux is not installed: the launch benchmark needs a real terminal."""


@dataclass
class LaunchResult:
    """Seconds per run of each app in :data:`APPS`."""

    runs: int
    complete: dict[str, list[float]] = field(default_factory=lambda: {a: [] for a in APPS})
    paint: dict[str, list[float]] = field(default_factory=lambda: {a: [] for a in APPS})
    #: In-process, headless: import seconds, and seconds to the first complete screen.
    imports: dict[str, list[float]] = field(default_factory=lambda: {a: [] for a in APPS})
    started: dict[str, list[float]] = field(default_factory=lambda: {a: [] for a in APPS})
    #: tuimail's compose screen drawn in tmux, the sandbox possibly still starting.
    tuimail_ui: list[float] = field(default_factory=list)
    #: Headless: tuimail's compose screen mounted, before the sandbox was up.
    tuimail_mounted: list[float] = field(default_factory=list)
    #: The first screen's census (widgets by class, footer keys, CSS rules, focus).
    census: dict[str, dict[str, Any]] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    tmux_version: str = ""

    def median(self, app: str) -> float:
        return median(self.complete[app])

    def ratio(self, app: str, reference: str) -> float:
        return self.median(app) / self.median(reference)

    def paired(self, app: str, reference: str) -> float:
        """Median of run-by-run ratios: steadier when the machine's load drifts."""
        return paired_ratio(self.complete[app], self.complete[reference])

    @property
    def meets_target(self) -> bool:
        return self.ratio("tuimail", "minimal") <= TARGET_RATIO

    @property
    def floor_share(self) -> float:
        """The floor's part of tuimail's gap to the minimal app (medians; 1.0 = all of it)."""
        gap = self.median("tuimail") - self.median("minimal")
        return (self.median("floor") - self.median("minimal")) / gap if gap > 0 else float("nan")

    def floor_differences(self) -> list[str]:
        """Where the floor's first screen differs from tuimail's (empty: it matches)."""
        mine, theirs = self.census.get("floor"), self.census.get("tuimail")
        if not mine or not theirs:
            return ["no census"]
        widgets, wanted = mine.get("widgets", {}), theirs.get("widgets", {})
        differences = [
            f"{name} x{widgets.get(name, 0)} (tuimail x{wanted.get(name, 0)})"
            for name in sorted(set(widgets) | set(wanted))
            if widgets.get(name, 0) != wanted.get(name, 0)
        ]
        for key, what in (("footer_keys", "footer keys"), ("css_rules", "CSS rules")):
            if mine.get(key) != theirs.get(key):
                differences.append(f"{what} {mine.get(key)} (tuimail {theirs.get(key)})")
        if mine.get("focused") != theirs.get("focused"):
            differences.append(f"focus {mine.get('focused')} (tuimail {theirs.get('focused')})")
        return differences


@dataclass
class Launch:
    """What one launch saw: seconds to each milestone (None: never reached)."""

    complete: float
    drawn: float | None
    first_paint: float | None


class TmuxServer:
    """A private tmux server (its own socket) holding one idle session of COLUMNS x ROWS."""

    def __init__(self, tmux: str, env: dict[str, str], socket_dir: Path) -> None:
        self.tmux, self.env = tmux, env
        # A socket of our own: no other tmux server (the user's, a test's) is touched.
        self.socket = str(socket_dir / f"tmux-{secrets.token_hex(4)}.sock")

    def run(self, *args: str) -> str:
        command = [self.tmux, "-S", self.socket, "-f", "/dev/null", *args]
        return run_checked(command, f"tmux {args[0]}", TMUX_TIMEOUT, env=self.env).stdout

    def open_window(self, command: str) -> tuple[str, int]:
        out = self.run(
            "new-window", "-d", "-P", "-F", "#{window_id} #{pane_pid}", "-t", "b:", command
        )
        window, pid = out.split()
        return window, int(pid)

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


@contextlib.contextmanager
def tmux_server(env: dict[str, str]) -> Iterator[TmuxServer]:
    """A started private tmux server, killed on the way out whatever happened."""
    tmux = shutil.which("tmux")
    if tmux is None:
        raise TmuxMissing("tmux is not installed (e.g. `apt-get install tmux`)")
    with tempfile.TemporaryDirectory(prefix="tuimail-bench-tmux-") as socket_dir:
        server = TmuxServer(tmux, env, Path(socket_dir))
        # The first window keeps the session alive; the server copies ``env``
        # (the isolated XDG directories) into every window.
        server.run("new-session", "-d", "-s", "b", "-x", str(COLUMNS), "-y", str(ROWS), "cat")
        try:
            server.run("set-option", "-g", "remain-on-exit", "off")
            # What a modern terminal announces (tmux's default "screen" gets 16 colours).
            server.run("set-option", "-g", "default-terminal", "tmux-256color")
            yield server
        finally:
            with contextlib.suppress(BenchmarkError):
                server.run("kill-server")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie is gone for our purposes (tmux reaps it)
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _all(patterns: tuple[str, ...], screen: str) -> bool:
    return all(re.search(pattern, screen) for pattern in patterns)


def launch_once(
    tmux: TmuxServer, command: str, complete: tuple[str, ...], drawn: tuple[str, ...] = ()
) -> Launch:
    """Open a window running ``command``; time it until ``complete`` is all on screen."""
    started = time.perf_counter()
    window, pid = tmux.open_window(command)
    first_paint: float | None = None
    drawn_at: float | None = None
    try:
        while True:
            screen = tmux.run("capture-pane", "-p", "-t", window)
            now = time.perf_counter() - started
            if first_paint is None and screen.strip():
                first_paint = now
            if drawn and drawn_at is None and _all(drawn, screen):
                drawn_at = now
            if _all(complete, screen):
                return Launch(now, drawn_at if drawn else now, first_paint)
            if now > LAUNCH_TIMEOUT:
                shown = "\n".join(ln.rstrip() for ln in screen.splitlines() if ln.strip())
                raise BenchmarkError(
                    f"{command!r} did not show its first full screen within {LAUNCH_TIMEOUT:g} s; "
                    f"waiting for all of {complete}; the screen was:\n{shown}"
                )
            time.sleep(POLL_INTERVAL)
    finally:
        tmux.close_window(window, pid)


def breakdown_once(which: str, env: dict[str, str]) -> tuple[list[float], dict[str, Any]]:
    """(imports, mounted, ready) seconds and the census of one headless start, in a fresh interpreter."""
    done = run_checked(
        [sys.executable, "-m", "benchmarks.apps.breakdown", which],
        f"the {which} launch breakdown",
        LAUNCH_TIMEOUT,
        env=env,
        cwd=REPO_ROOT,
    )
    figures: list[float] = []
    census: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        if line.startswith("BREAKDOWN "):
            figures = [float(value) for value in line.split()[1:]]
        elif line.startswith("CENSUS "):
            census = json.loads(line.removeprefix("CENSUS "))
    if len(figures) != 3:
        raise BenchmarkError(f"the {which} launch breakdown printed no figures:\n{done.stdout}")
    return figures, census


def run_launch(runs: int = DEFAULT_RUNS) -> LaunchResult:
    """Launch the three apps in tmux windows, ``runs`` times each in rotated order; then break down."""
    python = shlex.quote(sys.executable)
    apps = Path(minimal.__file__).parent
    result = LaunchResult(runs=runs)
    result.commands = {
        "tuimail": find_tuimail(),
        "minimal": f"{sys.executable} {apps / 'minimal.py'}",
        "floor": f"{sys.executable} {apps / 'floor.py'}",
    }
    commands = {
        "tuimail": f"exec {shlex.quote(result.commands['tuimail'])}",
        "minimal": f"exec {python} {shlex.quote(str(apps / 'minimal.py'))}",
        "floor": f"exec {python} {shlex.quote(str(apps / 'floor.py'))}",
    }
    with isolated_env() as (env, _no_cache):
        env["COLORTERM"] = "truecolor"
        with tmux_server(env) as tmux:
            result.tmux_version = run_checked([tmux.tmux, "-V"], "tmux -V", TMUX_TIMEOUT).stdout
            for which in APPS:  # warm-up: the bytecode and page caches
                launch_once(tmux, commands[which], MARKERS[which])
            for index in range(runs):
                for which in rotated(APPS, index):
                    drawn = TUIMAIL_UI_MARKERS if which == "tuimail" else ()
                    seen = launch_once(tmux, commands[which], MARKERS[which], drawn)
                    result.complete[which].append(seen.complete)
                    if which == "tuimail":
                        result.tuimail_ui.append(seen.drawn or seen.complete)
                    if seen.first_paint is not None:
                        result.paint[which].append(seen.first_paint)
        for index in range(BREAKDOWN_RUNS):
            for which in rotated(APPS, index):
                (imported, mounted, ready), census = breakdown_once(which, env)
                result.imports[which].append(imported)
                result.started[which].append(ready)
                result.census[which] = census
                if which == "tuimail":
                    result.tuimail_mounted.append(mounted)
    return result


def _ms(values: list[float]) -> str:
    if not values:
        return "    -   "
    return (
        f"{median(values) * 1e3:7.0f} ms (min {min(values) * 1e3:.0f}, max {max(values) * 1e3:.0f})"
    )


def census_summary(result: LaunchResult) -> str:
    """Whether the widget floor's first screen is tuimail's, widget for widget."""
    differences = result.floor_differences()
    if differences:
        return "DIFFERS: " + "; ".join(differences)
    census = result.census["floor"]
    widgets = census.get("widgets", {})
    return (
        f"the same {sum(widgets.values())} widgets of {len(widgets)} classes, "
        f"the same footer keys ({', '.join(census.get('footer_keys', []))}), "
        f"{census.get('css_rules')} CSS rules each (tuimail's own composite widgets), "
        f"focus on #{census.get('focused')}"
    )


def launch_report(r: LaunchResult) -> str:
    t, m, f = (r.median(a) for a in APPS)
    within = "within" if r.ratio("floor", "minimal") <= TARGET_RATIO else "over"
    imports, started = r.imports, r.started
    return "\n".join(
        [
            f"launch to the first full screen in a {COLUMNS}x{ROWS} tmux window "
            f"({r.tmux_version.strip()}), median of {r.runs} runs of each app, "
            "the order rotated every run",
            f"  tuimail, compose + sandbox up:    {_ms(r.complete['tuimail'])}   {r.commands['tuimail']}",
            f"  widget floor (same widgets, CSS): {_ms(r.complete['floor'])}   {r.commands['floor']}",
            f"  minimal Textual app:              {_ms(r.complete['minimal'])}   {r.commands['minimal']}",
            f"  ratio tuimail/minimal: {r.ratio('tuimail', 'minimal'):.2f}x   target {TARGET}   "
            f"({met(r.meets_target)}); median of per-run ratios {r.paired('tuimail', 'minimal'):.2f}x",
            f"  widget floor/minimal:  {r.ratio('floor', 'minimal'):.2f}x   median of per-run ratios "
            f"{r.paired('floor', 'minimal'):.2f}x: Textual's own cost for the widgets the issue "
            f"requires, {within} the {TARGET} target by itself",
            f"  tuimail/widget floor:  {r.ratio('tuimail', 'floor'):.2f}x   median of per-run ratios "
            f"{r.paired('tuimail', 'floor'):.2f}x: what tuimail adds on top of its widgets",
            f"  of tuimail's {(t - m) * 1e3:+.0f} ms over the minimal app (medians), the widget "
            f"floor accounts for {(f - m) * 1e3:+.0f} ms ({r.floor_share:.0%}), tuimail's own "
            f"start-up for {(t - f) * 1e3:+.0f} ms",
            f"  on the side: tuimail's compose screen drawn (sandbox maybe still starting) "
            f"{_ms(r.tuimail_ui)}, ratio to minimal {median(r.tuimail_ui) / m:.2f}x, "
            f"to the widget floor {median(r.tuimail_ui) / f:.2f}x",
            f"  first non-blank screen: tuimail {_ms(r.paint['tuimail'])}, "
            f"widget floor {_ms(r.paint['floor'])}, minimal {_ms(r.paint['minimal'])}",
            f"  where it goes (in-process, headless run_test, median of {BREAKDOWN_RUNS}):",
            f"    imports:                   tuimail {_ms(imports['tuimail'])}"
            f"   floor {_ms(imports['floor'])}   minimal {_ms(imports['minimal'])}",
            f"    app start to first screen: tuimail {_ms(started['tuimail'])}"
            f"   floor {_ms(started['floor'])}   minimal {_ms(started['minimal'])}",
            f"      of which tuimail's compose screen mounted (sandbox still starting): "
            f"{_ms(r.tuimail_mounted)}",
            f"  widget floor vs tuimail's first screen (headless census): {census_summary(r)}",
        ]
    )
