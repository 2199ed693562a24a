"""Wall time of one whole ``tuimail send`` process against one ``swaks`` process.

Both send the same small message to the same local sink (a separate process,
see :mod:`benchmarks.sink`). What a person waits for when they type the
command is measured: interpreter start, imports, argument parsing, the SMTP
session and exit.

**tuimail as a user gets it.** A user runs tuimail installed from a wheel, not
the developer's editable install. The editable install puts a setuptools
``__editable___tuimail_*_finder`` into every interpreter start (about 20 ms:
it imports pathlib, re and urllib.parse at site time) that no user pays. So
the script builds a wheel of the checkout (a copy of it, so no ``build/`` or
``*.egg-info`` is written into the checkout and no stale ``build/lib`` ends up
in the wheel), installs it into a fresh venv, and points that venv at the
current interpreter's site-packages with one ``.pth`` line, so the
dependencies are found without being installed again. A ``.pth`` line only
extends ``sys.path``: the ``.pth`` files in that directory (the editable
finder among them) are not processed. The script checks that: ``import
tuimail`` in the new venv must not load the editable finder and must come
from the new venv. ``--editable`` skips all that (no network, no build) and
times the developer's install instead, labelled as such.

**What is timed.** In every round, each of these runs once, in an order that
rotates from round to round, after one untimed warm-up run of each:

(a) ``tuimail send ...``, the default command: it stores the message in
    tuimail's durable outbox (written and fsynced) before the first byte goes
    to the server, and moves it to "sent" afterwards. swaks keeps nothing, so
    this is more work than swaks does; it is reported, and judged, on its own.
(b) ``tuimail send --no-queue ...``: one attempt, nothing kept, exactly what
    swaks does. The like-for-like comparison, and the one the target is
    judged on.
(c) ``swaks ...``.
(d) on the side, (b) with the developer's editable install, to show what the
    editable finder costs (absent with ``--editable``).

tuimail runs with a working bytecode cache (a private ``PYTHONPYCACHEPREFIX``
filled by the warm-up, ``PYTHONDONTWRITEBYTECODE`` removed), as it has for
anyone who installed it with pip (pip compiles on install; the wheel here is
installed with ``--no-compile`` so the side runs below really have no cache
for tuimail's own modules). A few runs of (b) without that cache
(``PYTHONDONTWRITEBYTECODE=1``) are reported on the side. Its configuration
directories point at an empty temporary directory, so the user's own profiles
play no part. Every command runs in a temporary working directory, so the
checkout is never on ``sys.path`` by accident.

**Per-round ratio.** Besides medians and the ratio of medians, the script
reports the median of per-round ratios: each round's tuimail time divided by
the same round's swaks time. On this shared 2-core machine a slow period moves
the medians by 30%, and it slows both commands of a round alike, so the
per-round ratio cancels it. The target (<= 2.5x) is judged on the median
per-round ratio of (b); whether the default command (a) meets it too is
printed as plainly.

The script also runs ``python -X importtime .../tuimail send ...`` once with
the installed tuimail's interpreter and reports what that imported, above all
whether Textual was loaded (it must not be: only ``tuimail.ui`` imports
Textual) and whether the editable finder was.

This script prints numbers; it never fails because of them. It exits non-zero
when swaks is missing, the wheel cannot be built or installed, or a send fails.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file path: make ``benchmarks`` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    HOST,
    REPO_ROOT,
    BenchmarkError,
    at_least,
    attempt,
    find_tuimail,
    isolated_env,
    paired_difference,
    paired_ratio,
    rotated,
    run_checked,
)
from benchmarks.sink import running_sink

TARGET = "<= 2.5x"
TARGET_RATIO = 2.5
DEFAULT_RUNS = 20
NO_CACHE_RUNS = 5
#: One send to a local sink takes well under a second; this only stops a hang.
PROCESS_TIMEOUT = 60.0
#: Building the wheel (with build isolation) takes about 6 s here; this only stops a hang.
BUILD_TIMEOUT = 600.0
SENDER = "a@example.test"
RECIPIENT = "b@example.test"
#: What setuptools names the editable install's finder module and .pth file.
EDITABLE_MARK = "__editable__"
#: Never copied into the tree the wheel is built from: bulky, or left over from
#: earlier builds (``build/lib`` is packed into the wheel as it stands).
COPY_IGNORE = (
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
)
#: How each command is described in the report.
DEFAULT_LABEL = "tuimail send (default: durable outbox, fsync before sending)"
NO_QUEUE_LABEL = "tuimail send --no-queue (one attempt, like swaks)"
SWAKS_LABEL = "swaks (one attempt, keeps nothing)"
EDITABLE_LABEL = "side figure: the dev venv's editable install, tuimail send --no-queue"


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
    #: Cumulative microseconds of ``site`` (interpreter start-up, .pth files included).
    site_us: int = 0

    @property
    def textual_imported(self) -> bool:
        return any(m == "textual" or m.startswith("textual.") for m in self.modules)

    @property
    def editable_finder(self) -> bool:
        """Whether start-up loaded setuptools' editable finder (no pip user has it)."""
        return any(EDITABLE_MARK in m for m in self.modules)

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
    """Times in seconds, one entry per round in each list, in the same round order.

    ``tuimail_times``, ``tuimail_median``, ``ratio``, ``paired_ratio`` and
    ``meets_target`` are about (b), ``tuimail send --no-queue``, the
    like-for-like comparison with swaks; the ``default_*`` names are about (a),
    the default ``tuimail send`` through the outbox.
    """

    runs: int
    #: (b) ``tuimail send --no-queue``: one attempt, nothing kept, as swaks does.
    tuimail_times: list[float] = field(default_factory=list)
    #: (a) ``tuimail send``: the message is stored (fsynced) in the outbox first.
    default_times: list[float] = field(default_factory=list)
    #: (c) ``swaks``.
    swaks_times: list[float] = field(default_factory=list)
    #: (d) (b) run by the developer's editable install; empty with ``--editable``.
    editable_times: list[float] = field(default_factory=list)
    #: (b) without the private bytecode cache (``PYTHONDONTWRITEBYTECODE=1``).
    no_cache_times: list[float] = field(default_factory=list)
    imports: ImportReport | None = None
    swaks_path: str = ""
    #: The console script timed for (a) and (b).
    tuimail_path: str = ""
    #: The developer's console script, timed for (d).
    editable_path: str = ""
    #: True when (a) and (b) are the developer's editable install (``--editable``), not a wheel.
    editable_only: bool = False
    #: Seconds spent building and installing the wheel (0 with ``--editable``).
    install_seconds: float = 0.0

    @property
    def tuimail_median(self) -> float:
        return statistics.median(self.tuimail_times)

    @property
    def swaks_median(self) -> float:
        return statistics.median(self.swaks_times)

    @property
    def ratio(self) -> float:
        """(b) against swaks, ratio of medians."""
        return self.tuimail_median / self.swaks_median

    @property
    def paired_ratio(self) -> float:
        """(b) against swaks, median of per-round ratios: what the target is judged on."""
        return paired_ratio(self.tuimail_times, self.swaks_times)

    @property
    def meets_target(self) -> bool:
        return self.paired_ratio <= TARGET_RATIO

    @property
    def default_median(self) -> float:
        return statistics.median(self.default_times)

    @property
    def default_ratio(self) -> float:
        """(a) against swaks, ratio of medians."""
        return self.default_median / self.swaks_median

    @property
    def default_paired_ratio(self) -> float:
        """(a) against swaks, median of per-round ratios."""
        return paired_ratio(self.default_times, self.swaks_times)

    @property
    def default_meets_target(self) -> bool:
        return self.default_paired_ratio <= TARGET_RATIO

    @property
    def outbox_cost(self) -> float:
        """What the outbox adds to a send: median of per-round (a) - (b), seconds."""
        return paired_difference(self.default_times, self.tuimail_times)

    @property
    def editable_cost(self) -> float | None:
        """What the editable install adds: median of per-round (d) - (b), seconds."""
        if not self.editable_times:
            return None
        return paired_difference(self.editable_times, self.tuimail_times)


def find_swaks() -> str:
    found = shutil.which("swaks") or ("/usr/bin/swaks" if Path("/usr/bin/swaks").exists() else "")
    if not found:
        raise BenchmarkError(
            "swaks is not installed (looked on PATH and at /usr/bin/swaks); "
            "install it (e.g. `apt-get install swaks`) to run this benchmark"
        )
    return found


def tuimail_args(port: int) -> list[str]:
    return [
        *("send", "--server", f"{HOST}:{port}", "--security", "none"),
        *("--from", SENDER, "--to", RECIPIENT, "--subject", "bench", "--body", "hello"),
    ]


def swaks_command(swaks: str, port: int) -> list[str]:
    return [
        *(swaks, "--server", HOST, "--port", str(port)),
        *("--from", SENDER, "--to", RECIPIENT, "--header", "Subject: bench", "--body", "hello"),
    ]


def run_tool(command: Sequence[str], what: str, cwd: Path) -> str:
    """Run a set-up step (pip, venv); its standard output, or :class:`BenchmarkError`."""
    return run_checked(command, what, BUILD_TIMEOUT, cwd=cwd).stdout


def install_wheel(workdir: Path, env: dict[str, str]) -> Path:
    """Build a wheel of the checkout, install it in a fresh venv; return the venv's ``tuimail``.

    The new venv gets the current interpreter's site-packages as one ``.pth``
    line, for the dependencies. Raises :class:`BenchmarkError` if any step fails
    or the result would still load the editable finder.
    """
    source = workdir / "source"
    wheels = workdir / "wheels"
    venv = workdir / "venv"
    # A copy, so the build writes no build/ or *.egg-info into the checkout, and
    # a stale build/lib there (modules since removed) cannot end up in the wheel.
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(*COPY_IGNORE), symlinks=True)
    # With build isolation: --no-build-isolation fails with the dev venv's old setuptools.
    run_tool(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        "building the tuimail wheel",
        workdir,
    )
    built = sorted(wheels.glob("tuimail-*.whl"))
    if len(built) != 1:
        raise BenchmarkError(f"expected one tuimail wheel in {wheels}, found {built or 'none'}")
    run_tool([sys.executable, "-m", "venv", "--without-pip", str(venv)], "creating a venv", workdir)
    python = venv / "bin" / "python"
    run_tool(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-compile",
            "-q",
            str(built[0]),
        ],
        "installing the tuimail wheel",
        workdir,
    )
    purelib = run_tool(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        "asking the new venv for its site-packages",
        workdir,
    ).strip()
    # One directory line: appended to sys.path, its own .pth files left unread.
    (Path(purelib) / "tuimail-bench-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    check_install(python, venv, workdir, env)
    script = venv / "bin" / "tuimail"
    if not script.exists():
        raise BenchmarkError(f"the wheel installed no console script at {script}")
    return script


def check_install(python: Path, venv: Path, cwd: Path, env: dict[str, str]) -> None:
    """``import tuimail.cli`` in ``python`` must come from ``venv`` without the editable finder."""
    command = [str(python), "-X", "importtime", "-c", "import tuimail.cli; print(tuimail.__file__)"]
    done = run_checked(
        command, "importing the wheel-installed tuimail", PROCESS_TIMEOUT, env=env, cwd=cwd
    )
    if EDITABLE_MARK in done.stderr:
        raise BenchmarkError(f"{python} still loads setuptools' editable finder at start-up")
    where = Path(done.stdout.strip()).resolve()
    if not where.is_relative_to(venv.resolve()):
        raise BenchmarkError(f"{python} imports tuimail from {where}, not from {venv}")


def timed_run(
    command: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> float:
    """Wall seconds of one process; raises :class:`BenchmarkError` if it fails."""
    started = time.perf_counter()
    run_checked(command, command[0], PROCESS_TIMEOUT, env=env, cwd=cwd)
    return time.perf_counter() - started


def parse_importtime(stderr: str) -> ImportReport:
    """Parse ``-X importtime`` lines: ``import time: self | cumulative | name``."""
    modules: list[str] = []
    outer: list[tuple[int, str]] = []
    own: list[tuple[int, str]] = []
    startup: set[str] = set()
    total = 0
    site_us = 0
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
                site_us = cumulative_us
        if depth <= 1:
            outer.append((cumulative_us, name))
        if name == "tuimail" or name.startswith("tuimail."):
            own.append((self_us, name))
    outer.sort(reverse=True)
    own.sort(reverse=True)
    return ImportReport(
        modules=modules,
        total_us=total,
        startup=startup,
        slowest=outer[:10],
        tuimail_self=own,
        site_us=site_us,
    )


def check_imports(script: str, port: int, env: dict[str, str], cwd: Path) -> ImportReport:
    """Run ``python -X importtime SCRIPT send ...`` with the script's own interpreter, once."""
    command = [str(Path(script).parent / "python"), "-X", "importtime", script, *tuimail_args(port)]
    done = run_checked(
        command, "python -X importtime tuimail send", PROCESS_TIMEOUT, env=env, cwd=cwd
    )
    return parse_importtime(done.stderr)


def run(
    runs: int = DEFAULT_RUNS, no_cache_runs: int = NO_CACHE_RUNS, editable: bool = False
) -> CliResult:
    """Install tuimail from a wheel (unless ``editable``), start a sink, time the commands
    in rotating order, check imports, stop the sink."""
    swaks = find_swaks()
    dev_tuimail = find_tuimail()
    result = CliResult(runs=runs, swaks_path=swaks, editable_only=editable)
    with (
        isolated_env() as (cached_env, no_cache_env),
        tempfile.TemporaryDirectory(prefix="tuimail-bench-wheel-") as tmp,
    ):
        workdir = Path(tmp)
        if editable:
            tuimail = dev_tuimail
        else:
            started = time.perf_counter()
            tuimail = str(install_wheel(workdir, cached_env))
            result.install_seconds = time.perf_counter() - started
            result.editable_path = dev_tuimail
        result.tuimail_path = tuimail
        with running_sink() as port:
            args = tuimail_args(port)
            contenders: list[tuple[list[float], list[str], dict[str, str] | None]] = [
                (result.default_times, [tuimail, *args], cached_env),
                (result.tuimail_times, [tuimail, *args, "--no-queue"], cached_env),
                (result.swaks_times, swaks_command(swaks, port), None),
            ]
            if not editable:
                contenders.append(
                    (result.editable_times, [dev_tuimail, *args, "--no-queue"], cached_env)
                )
            # Warm-up: fills the bytecode cache and the OS page cache for each.
            for _times, command, env in contenders:
                timed_run(command, env, workdir)
            for index in range(runs):
                for times, command, env in rotated(contenders, index):
                    times.append(timed_run(command, env, workdir))
            no_queue = [tuimail, *args, "--no-queue"]
            for _ in range(no_cache_runs):
                result.no_cache_times.append(timed_run(no_queue, no_cache_env, workdir))
            result.imports = check_imports(tuimail, port, cached_env, workdir)
    return result


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def _row(tag: str, label: str, times: list[float], result: CliResult | None) -> list[str]:
    """Two report lines: what the command is, then its figures (and ratios to swaks)."""
    figures = (
        f"median {_ms(statistics.median(times)):>6} ms   "
        f"min {_ms(min(times)):>6}   max {_ms(max(times)):>6}"
    )
    if result is not None:
        figures += (
            f"   vs swaks: ratio of medians {statistics.median(times) / result.swaks_median:.2f}x, "
            f"median per-round ratio {paired_ratio(times, result.swaks_times):.2f}x"
        )
    return [f"  ({tag}) {label}", f"        {figures}"]


def report(result: CliResult) -> str:
    if result.editable_only:
        install = (
            "tuimail: the DEVELOPER'S EDITABLE INSTALL (--editable), not what a pip user "
            "runs; it pays for setuptools' editable finder at every start"
        )
    else:
        install = (
            f"tuimail: a wheel of the checkout installed in a fresh venv, as a pip user runs it "
            f"(built and installed in {result.install_seconds:.1f} s)"
        )
    lines = [
        install,
        f"  (a), (b): {result.tuimail_path}",
        f"  (c): {result.swaks_path}",
    ]
    if result.editable_times:
        lines.append(f"  (d): {result.editable_path}")
    lines += [
        f"one whole send process, wall time: {result.runs} rounds, each command once per round "
        f"in rotating order, after one warm-up run each",
        *_row("a", DEFAULT_LABEL, result.default_times, result),
        *_row("b", NO_QUEUE_LABEL, result.tuimail_times, result),
        *_row("c", SWAKS_LABEL, result.swaks_times, None),
    ]
    if result.editable_times:
        lines += _row("d", EDITABLE_LABEL, result.editable_times, result)
    like_for_like = "met" if result.meets_target else "NOT met"
    lines += [
        f"target {TARGET}, judged on (b)'s median per-round ratio (like for like): "
        f"{result.paired_ratio:.2f}x, {like_for_like}",
        f"default command (a), which also stores the message durably first: "
        f"{result.default_paired_ratio:.2f}x, "
        + (
            "it meets the target too"
            if result.default_meets_target
            else "it does NOT meet the target"
        ),
        f"  the outbox (store with fsync, then move to sent) adds {_ms(result.outbox_cost)} ms "
        f"a send (median of per-round (a) - (b))",
    ]
    editable_cost = result.editable_cost
    if editable_cost is not None:
        lines.append(
            f"  the dev editable install adds {_ms(editable_cost)} ms a start "
            f"(median of per-round (d) - (b)); no pip user pays it"
        )
    if result.no_cache_times:
        no_cache = statistics.median(result.no_cache_times)
        where = (
            "the checkout's own __pycache__, if any, is still read"
            if result.editable_only
            else "tuimail's modules compiled from source every run"
        )
        lines.append(
            f"(b) without the private bytecode cache (PYTHONDONTWRITEBYTECODE=1; {where}): "
            f"{_ms(no_cache)} ms median of {len(result.no_cache_times)} "
            f"(ratio to swaks' median {no_cache / result.swaks_median:.2f}x)"
        )
    imports = result.imports
    if imports is not None:
        lines += [
            f"imports of `python -X importtime {result.tuimail_path} send ...` "
            f"({len(imports.modules)} modules, {imports.total_us / 1e3:.1f} ms cumulative as "
            f"measured by -X importtime, of which start-up (site) {imports.site_us / 1e3:.1f} ms):",
            f"  textual imported: {'YES (the core must not import textual!)' if imports.textual_imported else 'no'}",
            f"  setuptools' editable finder loaded: {'yes' if imports.editable_finder else 'no'}",
            f"  third-party packages: {', '.join(imports.third_party) or 'none'}",
            "  slowest imports (cumulative ms):",
            *(f"    {us / 1e3:7.1f}  {name}" for us, name in imports.slowest),
            "  tuimail modules (self ms):",
            *(f"    {us / 1e3:7.1f}  {name}" for us, name in imports.tuimail_self),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="timed rounds")
    parser.add_argument(
        "--no-cache-runs",
        type=int,
        default=NO_CACHE_RUNS,
        help="extra tuimail runs without a bytecode cache, reported on the side (0: skip)",
    )
    parser.add_argument(
        "--editable",
        action="store_true",
        help="time the developer's editable install instead of building a wheel (offline)",
    )
    args = parser.parse_args(argv)
    at_least(parser, 1, runs=args.runs)
    at_least(parser, 0, no_cache_runs=args.no_cache_runs)
    measure = lambda: run(args.runs, args.no_cache_runs, editable=args.editable)  # noqa: E731
    return 0 if attempt("bench_cli_vs_swaks", measure, report) else 2


if __name__ == "__main__":
    sys.exit(main())
