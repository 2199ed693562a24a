"""Wall time of one whole ``tuimail send`` process against one ``swaks`` process.

Both send the same small message to the same local sink (:mod:`benchmarks.sink`):
interpreter start, imports, argument parsing, the SMTP session and exit.

tuimail is timed as a pip user runs it: a wheel of a copy of the checkout,
installed in a fresh venv whose one ``.pth`` line points at this interpreter's
site-packages for the dependencies (the developer's editable install adds
setuptools' finder to every start, which no user has; the script checks the
new venv does not load it). ``--editable`` times the developer's install
instead, offline. Each round runs, in rotated order after one warm-up each:
(a) ``tuimail send``, the default, which stores the message durably in the
outbox first; (b) ``tuimail send --no-queue``, one attempt and nothing kept,
what swaks does; (c) ``swaks``; (d) on the side, (b) by the editable install.
The target (<= 2.5x) is judged on the median of (b)'s per-round ratios to
swaks (a slow period slows both sides of a round alike); (a) is reported
beside it. tuimail runs with a private bytecode cache and empty XDG
directories; a few runs of (b) without a cache are reported on the side. One
``python -X importtime`` run tells what ``tuimail send`` imported, above all
whether Textual was (it must not be).

This script prints numbers; it never fails because of them. It exits non-zero
when swaks is missing, the wheel cannot be built or installed, or a send fails.
"""

from __future__ import annotations

import argparse
import shutil
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
    median,
    paired_difference,
    paired_ratio,
    rotated,
    run_checked,
)
from benchmarks.importtime import EDITABLE_MARK, ImportReport, parse_importtime
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
#: Never copied into the tree the wheel is built from: bulky, or left over from
#: earlier builds (``build/lib`` is packed into the wheel as it stands).
COPY_IGNORE = [
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
]
#: How each command is described in the report.
DEFAULT_LABEL = "tuimail send (default: durable outbox, fsync before sending)"
NO_QUEUE_LABEL = "tuimail send --no-queue (one attempt, like swaks)"
SWAKS_LABEL = "swaks (one attempt, keeps nothing)"
EDITABLE_LABEL = "side figure: the dev venv's editable install, tuimail send --no-queue"


@dataclass
class CliResult:
    """Seconds, one per round in each list; ``tuimail_*`` is (b), ``default_*`` is (a)."""

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
        return median(self.tuimail_times)

    @property
    def swaks_median(self) -> float:
        return median(self.swaks_times)

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
        return median(self.default_times)

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
        f"median {_ms(median(times)):>6} ms   min {_ms(min(times)):>6}   max {_ms(max(times)):>6}"
    )
    if result is not None:
        figures += (
            f"   vs swaks: ratio of medians {median(times) / result.swaks_median:.2f}x, "
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
        no_cache = median(result.no_cache_times)
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
    add = parser.add_argument
    add("--runs", type=int, default=DEFAULT_RUNS, help="timed rounds")
    add(
        "--no-cache-runs",
        type=int,
        default=NO_CACHE_RUNS,
        help="side runs without a bytecode cache",
    )
    add("--editable", action="store_true", help="time the dev install, not a wheel (offline)")
    args = parser.parse_args(argv)
    at_least(parser, 1, runs=args.runs)
    at_least(parser, 0, no_cache_runs=args.no_cache_runs)
    measure = lambda: run(args.runs, args.no_cache_runs, editable=args.editable)  # noqa: E731
    return 0 if attempt("bench_cli_vs_swaks", measure, report) else 2


if __name__ == "__main__":
    sys.exit(main())
