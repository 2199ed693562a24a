"""Wall time of one whole ``tuimail send`` process against one ``swaks`` process.

Both send the same small message to the same local sink (a separate process,
see :mod:`benchmarks.sink`), N times each, alternating which goes first, after
one untimed warm-up run of each. What a person waits for when they type the
command is measured: interpreter start, imports, argument parsing, the SMTP
session and exit.

tuimail runs with a working bytecode cache (a private ``PYTHONPYCACHEPREFIX``
and ``PYTHONDONTWRITEBYTECODE`` removed), as it does for anyone who installed
it with pip; a few runs without one are reported on the side. Its
configuration directories point at an empty temporary directory, so the
user's own profiles play no part.

The script also runs ``python -X importtime -m tuimail send ...`` once and
reports what that imported, above all whether Textual was loaded (it must not
be: only ``tuimail.ui`` imports Textual).

This script prints numbers; it never fails because of them. It exits non-zero
when swaks is missing or a send fails.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file path: make ``benchmarks`` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.sink import HOST, REPO_ROOT, running_sink

TARGET = "<= 2.5x"
TARGET_RATIO = 2.5
DEFAULT_RUNS = 20
NO_CACHE_RUNS = 5
#: One send to a local sink takes well under a second; this only stops a hang.
PROCESS_TIMEOUT = 60.0
SENDER = "a@example.test"
RECIPIENT = "b@example.test"


class BenchmarkError(Exception):
    """The benchmark could not run (a tool is missing or a send failed)."""


@dataclass
class ImportReport:
    """What ``tuimail send`` imported, from ``-X importtime``."""

    modules: list[str]
    total_us: int
    #: Modules imported by interpreter start-up (``site`` and its .pth files), not by tuimail.
    startup: set[str]
    #: (cumulative microseconds, module) of the slowest imports, outermost first.
    slowest: list[tuple[int, str]]
    #: (self microseconds, module) of tuimail's own modules.
    tuimail_self: list[tuple[int, str]]

    @property
    def textual_imported(self) -> bool:
        return any(m == "textual" or m.startswith("textual.") for m in self.modules)

    @property
    def top_level(self) -> list[str]:
        return sorted({m.split(".")[0] for m in self.modules})

    @property
    def third_party(self) -> list[str]:
        """Installed distributions among the imports (``-X importtime`` also lists failed tries)."""
        from importlib.metadata import packages_distributions

        owners = packages_distributions()
        after_startup = sorted({m.split(".")[0] for m in self.modules if m not in self.startup})
        return [
            f"{name} ({', '.join(owners[name])})" if owners[name] != [name] else name
            for name in after_startup
            if name != "tuimail" and name in owners
        ]


@dataclass
class CliResult:
    runs: int
    tuimail_times: list[float] = field(default_factory=list)
    swaks_times: list[float] = field(default_factory=list)
    no_cache_times: list[float] = field(default_factory=list)
    imports: ImportReport | None = None
    swaks_path: str = ""
    tuimail_path: str = ""

    @property
    def tuimail_median(self) -> float:
        return statistics.median(self.tuimail_times)

    @property
    def swaks_median(self) -> float:
        return statistics.median(self.swaks_times)

    @property
    def ratio(self) -> float:
        return self.tuimail_median / self.swaks_median

    @property
    def meets_target(self) -> bool:
        return self.ratio <= TARGET_RATIO


def find_swaks() -> str:
    found = shutil.which("swaks") or ("/usr/bin/swaks" if Path("/usr/bin/swaks").exists() else "")
    if not found:
        raise BenchmarkError(
            "swaks is not installed (looked on PATH and at /usr/bin/swaks); "
            "install it (e.g. `apt-get install swaks`) to run this benchmark"
        )
    return found


def find_tuimail() -> str:
    for candidate in (
        Path(sys.executable).parent / "tuimail",
        REPO_ROOT / ".venv" / "bin" / "tuimail",
    ):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("tuimail")
    if not found:
        raise BenchmarkError("the tuimail console script was not found; run `make test` first")
    return found


def tuimail_args(port: int) -> list[str]:
    return [
        "send",
        "--server",
        f"{HOST}:{port}",
        "--security",
        "none",
        "--from",
        SENDER,
        "--to",
        RECIPIENT,
        "--subject",
        "bench",
        "--body",
        "hello",
    ]


def swaks_command(swaks: str, port: int) -> list[str]:
    return [
        swaks,
        "--server",
        HOST,
        "--port",
        str(port),
        "--from",
        SENDER,
        "--to",
        RECIPIENT,
        "--header",
        "Subject: bench",
        "--body",
        "hello",
    ]


@contextlib.contextmanager
def isolated_env() -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """Environments for tuimail: (with a bytecode cache, without one), in a temp directory."""
    with tempfile.TemporaryDirectory(prefix="tuimail-bench-") as tmp:
        base = dict(os.environ)
        for name in ("CONFIG", "DATA", "STATE", "CACHE"):
            path = Path(tmp) / name.lower()
            path.mkdir()
            base[f"XDG_{name}_HOME"] = str(path)
        cached = dict(base)
        cached.pop("PYTHONDONTWRITEBYTECODE", None)
        cached["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        no_cache = dict(base)
        no_cache.pop("PYTHONPYCACHEPREFIX", None)
        no_cache["PYTHONDONTWRITEBYTECODE"] = "1"
        yield cached, no_cache


def timed_run(command: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds of one process; raises :class:`BenchmarkError` if it fails."""
    started = time.perf_counter()
    try:
        completed = subprocess.run(
            list(command),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            timeout=PROCESS_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"{command[0]} did not finish within {PROCESS_TIMEOUT:g} s") from None
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).decode("utf-8", "replace")[-2000:]
        raise BenchmarkError(f"{' '.join(command)} exited with {completed.returncode}:\n{tail}")
    return elapsed


def parse_importtime(stderr: str) -> ImportReport:
    """Parse ``-X importtime`` lines: ``import time: self | cumulative | name``."""
    modules: list[str] = []
    outer: list[tuple[int, str]] = []
    own: list[tuple[int, str]] = []
    startup: set[str] = set()
    total = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        self_us, cumulative_us = int(parts[0]), int(parts[1])
        raw_name = parts[2]
        name = raw_name.strip()
        depth = (len(raw_name) - len(raw_name.lstrip(" ")) - 1) // 2
        modules.append(name)
        if depth == 0:
            total += cumulative_us
            if name == "site":
                # Lines come in post-order: everything so far was start-up.
                startup.update(modules)
        if depth <= 1:
            outer.append((cumulative_us, name))
        if name == "tuimail" or name.startswith("tuimail."):
            own.append((self_us, name))
    outer.sort(reverse=True)
    own.sort(reverse=True)
    return ImportReport(
        modules=modules, total_us=total, startup=startup, slowest=outer[:10], tuimail_self=own
    )


def check_imports(port: int, env: dict[str, str]) -> ImportReport:
    """Run ``python -X importtime -m tuimail send ...`` once and parse what it imported."""
    command = [sys.executable, "-X", "importtime", "-m", "tuimail", *tuimail_args(port)]
    try:
        completed = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            timeout=PROCESS_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(
            f"python -X importtime -m tuimail send did not finish within {PROCESS_TIMEOUT:g} s"
        ) from None
    if completed.returncode != 0:
        raise BenchmarkError(
            f"python -X importtime -m tuimail send exited with {completed.returncode}:\n"
            + "\n".join(
                line
                for line in completed.stderr.splitlines()
                if not line.startswith("import time:")
            )[-2000:]
        )
    return parse_importtime(completed.stderr)


def run(runs: int = DEFAULT_RUNS, no_cache_runs: int = NO_CACHE_RUNS) -> CliResult:
    """Start a sink, time both commands alternately, check imports, stop the sink."""
    swaks = find_swaks()
    tuimail = find_tuimail()
    result = CliResult(runs=runs, swaks_path=swaks, tuimail_path=tuimail)
    with isolated_env() as (cached_env, no_cache_env), running_sink() as port:
        tuimail_command = [tuimail, *tuimail_args(port)]
        swaks_cmd = swaks_command(swaks, port)
        # Warm-up: fills the bytecode cache and the OS page cache for both.
        timed_run(tuimail_command, cached_env)
        timed_run(swaks_cmd)
        for index in range(runs):
            pair = [("tuimail", tuimail_command), ("swaks", swaks_cmd)]
            if index % 2:
                pair.reverse()
            for which, command in pair:
                if which == "tuimail":
                    result.tuimail_times.append(timed_run(command, cached_env))
                else:
                    result.swaks_times.append(timed_run(command))
        for _ in range(no_cache_runs):
            result.no_cache_times.append(timed_run(tuimail_command, no_cache_env))
        result.imports = check_imports(port, cached_env)
    return result


def report(result: CliResult) -> str:
    lines = [
        f"one whole send process, wall time, median of {result.runs} alternating runs",
        f"  tuimail send: {result.tuimail_median * 1e3:7.1f} ms   "
        f"(min {min(result.tuimail_times) * 1e3:.1f}, max {max(result.tuimail_times) * 1e3:.1f})"
        f"   {result.tuimail_path}",
        f"  swaks:        {result.swaks_median * 1e3:7.1f} ms   "
        f"(min {min(result.swaks_times) * 1e3:.1f}, max {max(result.swaks_times) * 1e3:.1f})"
        f"   {result.swaks_path}",
        f"  ratio tuimail/swaks: {result.ratio:.2f}x   target {TARGET}   "
        f"({'met' if result.meets_target else 'NOT met'})",
    ]
    if result.no_cache_times:
        lines.append(
            f"  tuimail send with PYTHONDONTWRITEBYTECODE=1 (no cache written): "
            f"{statistics.median(result.no_cache_times) * 1e3:.1f} ms median of "
            f"{len(result.no_cache_times)} (ratio "
            f"{statistics.median(result.no_cache_times) / result.swaks_median:.2f}x)"
        )
    imports = result.imports
    if imports is not None:
        lines += [
            f"imports of `python -X importtime -m tuimail send` ({len(imports.modules)} modules, "
            f"{imports.total_us / 1e3:.1f} ms cumulative as measured by -X importtime):",
            f"  textual imported: {'YES (the core must not import textual!)' if imports.textual_imported else 'no'}",
            f"  third-party packages: {', '.join(imports.third_party) or 'none'}",
            "  slowest imports (cumulative ms):",
            *(f"    {us / 1e3:7.1f}  {name}" for us, name in imports.slowest),
            "  tuimail modules (self ms):",
            *(f"    {us / 1e3:7.1f}  {name}" for us, name in imports.tuimail_self),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="timed runs of each command")
    parser.add_argument(
        "--no-cache-runs",
        type=int,
        default=NO_CACHE_RUNS,
        help="extra tuimail runs without a bytecode cache, reported on the side (0: skip)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.no_cache_runs < 0:
        parser.error("--runs must be at least 1 and --no-cache-runs at least 0")
    try:
        result = run(args.runs, args.no_cache_runs)
    except BenchmarkError as exc:
        print(f"bench_cli_vs_swaks: {exc}", file=sys.stderr)
        return 2
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
