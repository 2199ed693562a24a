"""What every benchmark shares: its error, medians and ratios, isolated directories, processes.

A benchmark prints numbers and never fails because of them; it raises
:class:`BenchmarkError` only when a measurement could not run at all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
#: How long a child process gets to stop at each step (stdin closed, SIGTERM, SIGKILL).
STOP_TIMEOUT = 5.0
XDG_NAMES = ("CONFIG", "DATA", "STATE", "CACHE")

T = TypeVar("T")


class BenchmarkError(Exception):
    """A measurement could not run (a tool missing, a process failed, a screen never came)."""


# -- figures -------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    """The median, or NaN when there are no values."""
    return statistics.median(values) if values else float("nan")


def median_ms(values: Sequence[float]) -> str:
    """``values``' median in milliseconds, or "-" when there are none."""
    return f"{median(values) * 1e3:.0f} ms" if values else "-"


def paired_ratio(times: Sequence[float], reference: Sequence[float]) -> float:
    """Median of ``times[i] / reference[i]``: a slow period slows both sides of a round alike."""
    return median([t / r for t, r in zip(times, reference, strict=False)])


def paired_difference(times: Sequence[float], reference: Sequence[float]) -> float:
    """Median of ``times[i] - reference[i]``."""
    return median([t - r for t, r in zip(times, reference, strict=False)])


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def rotated(items: Sequence[T], index: int) -> list[T]:
    """``items`` rotated by ``index``: each round starts with another contender."""
    shift = index % len(items)
    return [*items[shift:], *items[:shift]]


# -- the process's own figures -------------------------------------------------


def status_kb(field: str, pid: int | str = "self") -> int | None:
    """A ``/proc/PID/status`` figure in kB (VmRSS, VmHWM); None where it is missing."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return None


def profile_text(source: cProfile.Profile | Path, top: int, restrict: str = "") -> str:
    """A profile's top ``top`` functions by own time, then by cumulative time (matching ``restrict``)."""
    out = io.StringIO()
    stats = pstats.Stats(
        source if isinstance(source, cProfile.Profile) else str(source), stream=out
    )
    stats.strip_dirs()
    out.write("== sorted by own time ==\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write("== sorted by cumulative time ==\n")
    stats.sort_stats("cumulative").print_stats(*([restrict] if restrict else []), top)
    return out.getvalue()


# -- isolated directories ------------------------------------------------------


def _make_xdg(root: Path) -> dict[str, str]:
    """Empty configuration, data, state and cache directories under ``root``, as XDG variables."""
    dirs = {}
    for name in XDG_NAMES:
        path = root / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        dirs[f"XDG_{name}_HOME"] = str(path)
    return dirs


@contextlib.contextmanager
def isolated_env() -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """Environments for a child tuimail: (with a private bytecode cache, without one).

    Its XDG directories are empty temporary ones, so the user's own profiles
    play no part.
    """
    with tempfile.TemporaryDirectory(prefix="tuimail-bench-") as tmp:
        base = {**os.environ, **_make_xdg(Path(tmp))}
        cached = {**base, "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache")}
        cached.pop("PYTHONDONTWRITEBYTECODE", None)
        no_cache = {**base, "PYTHONDONTWRITEBYTECODE": "1"}
        no_cache.pop("PYTHONPYCACHEPREFIX", None)
        yield cached, no_cache


@contextlib.contextmanager
def isolated_dirs() -> Iterator[Path]:
    """Point this process's XDG directories at empty temporary ones, then restore them."""
    saved = {f"XDG_{name}_HOME": os.environ.get(f"XDG_{name}_HOME") for name in XDG_NAMES}
    with tempfile.TemporaryDirectory(prefix="tuimail-bench-") as tmp:
        os.environ.update(_make_xdg(Path(tmp)))
        try:
            yield Path(tmp)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


# -- child processes -----------------------------------------------------------


def run_checked(
    command: Sequence[str],
    what: str,
    timeout: float,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to its end; :class:`BenchmarkError` with its output's tail if it fails."""
    try:
        done = subprocess.run(
            list(command),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"{what} did not finish within {timeout:g} s") from None
    if done.returncode != 0:
        lines = [ln for ln in (done.stdout + done.stderr).splitlines() if "import time:" not in ln]
        tail = "\n".join(lines)[-3000:]
        raise BenchmarkError(f"{what} failed (exit {done.returncode}): {' '.join(command)}\n{tail}")
    return done


def first_line(proc: subprocess.Popen[bytes], word: str, timeout: float) -> list[str]:
    """The words after ``word`` on a child's first line of output, within ``timeout`` seconds."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchmarkError(f"the child did not report {word} within {timeout:g} s")
            if not selector.select(timeout=remaining):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise BenchmarkError(f"the child exited before reporting {word} ({proc.poll()})")
            buffer += chunk
    line = buffer.split(b"\n", 1)[0].decode("ascii", "replace").split()
    if not line or line[0] != word:
        raise BenchmarkError(f"unexpected first line from the child: {' '.join(line)!r}")
    return line[1:]


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Close stdin, then SIGTERM, then SIGKILL: each step with a timeout."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    steps: list[Callable[[], None]] = [lambda: None, proc.terminate, proc.kill]
    for step in steps:
        step()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
            break
        except subprocess.TimeoutExpired:
            continue
    if proc.stdout is not None:
        proc.stdout.close()


async def until_parent_leaves() -> None:
    """In a server child: return once stdin reaches EOF (the parent went away) or on SIGTERM/SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    fd = sys.stdin.fileno() if sys.stdin is not None else -1
    watching = fd >= 0 and not os.isatty(fd)
    if watching:
        loop.add_reader(fd, lambda: None if os.read(fd, 4096) else stop.set())
    try:
        await stop.wait()
    finally:
        if watching:
            loop.remove_reader(fd)


@contextlib.contextmanager
def child(command: Sequence[str], word: str, timeout: float) -> Iterator[tuple[int, list[str]]]:
    """Run a server child that prints ``word ...`` once ready; (pid, those words); always stopped."""
    proc = subprocess.Popen(
        list(command), cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None
    )
    try:
        yield proc.pid, first_line(proc, word, timeout)
    finally:
        stop_process(proc)


def find_tuimail() -> str:
    """The developer's ``tuimail`` console script, next to this interpreter."""
    for candidate in (Path(sys.executable).with_name("tuimail"), REPO_ROOT / ".venv/bin/tuimail"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("tuimail")
    if not found:
        raise BenchmarkError("the tuimail console script was not found; run `make test` first")
    return found


# -- command lines -------------------------------------------------------------


def pick(given: int | None, quick: bool, quick_value: int, default: int) -> int:
    """An option's value: as given, else the quick or the default one."""
    return given if given is not None else quick_value if quick else default


def at_least(parser: argparse.ArgumentParser, minimum: int, **values: int) -> None:
    """Stop with a usage error when an option is below ``minimum``."""
    low = [f"--{name.replace('_', '-')}" for name, value in values.items() if value < minimum]
    if low:
        parser.error(f"{', '.join(low)} must be at least {minimum}")


def attempt(name: str, measure: Callable[[], T], report: Callable[[T], str]) -> T | None:
    """Run one measurement and print its report; on :class:`BenchmarkError` say why, return None."""
    try:
        result = measure()
    except BenchmarkError as exc:
        print(f"{name}: {exc}", file=sys.stderr, flush=True)
        return None
    print(report(result), flush=True)
    return result
