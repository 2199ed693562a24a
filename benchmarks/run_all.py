"""Run every benchmark; write the figures into docs/performance.md.

    .venv/bin/python benchmarks/run_all.py          # what `make bench` runs
    .venv/bin/python benchmarks/run_all.py --quick  # fewer rounds, for a smoke run (no doc)
    .venv/bin/python benchmarks/run_all.py --sandbox-tmpdir /dev/shm  # sandbox storage off the disk
    .venv/bin/python benchmarks/run_all.py --app-rounds 1 --app-lines 20000  # a shorter flood

A full run rewrites the section of ``docs/performance.md`` between its
``bench:start`` and ``bench:end`` markers (the prose around it stays) and
``benchmarks/results/latest.md`` (gitignored); ``--quick`` writes only the
latter, unless ``--doc`` is given. Nothing here asserts on time: the exit
code is non-zero only when a benchmark could not run at all (for example,
swaks or tmux is missing).
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file path: make ``benchmarks`` and ``tuimail`` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import (
    app_flood,
    app_launch,
    bench_cli_vs_swaks,
    bench_inbox,
    bench_probe,
    bench_sandbox,
)
from benchmarks import bench_session as session_bench
from benchmarks.common import at_least, attempt, pick
from benchmarks.results import Run, markdown, table, write_section

RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run all tuimail benchmarks.")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, messages and runs")
    parser.add_argument(
        "--doc", action="store_true", help="write docs/performance.md even if --quick"
    )
    parser.add_argument("--no-doc", action="store_true", help="leave docs/performance.md alone")
    for name, what in (
        ("rounds", "session benchmark rounds"),
        ("messages", "session benchmark messages per round"),
        ("runs", "send-process benchmark runs of each command"),
        ("sandbox-rounds", "sandbox benchmark rounds"),
        ("sandbox-messages", "sandbox benchmark messages per client per round"),
        ("app-runs", "app launches of each app (tmux)"),
        ("app-rounds", "app flood rounds"),
        ("app-lines", "lines in each app flood"),
    ):
        parser.add_argument(f"--{name}", type=int, help=what)
    parser.add_argument(
        "--editable",
        action="store_true",
        help="send-process benchmark: time the dev install instead of building a wheel (offline)",
    )
    parser.add_argument(
        "--sandbox-tmpdir", type=Path, help="where the sandbox benchmark's servers store messages"
    )
    args = parser.parse_args(argv)
    q = args.quick
    args.rounds = pick(args.rounds, q, 2, session_bench.DEFAULT_ROUNDS)
    args.messages = pick(args.messages, q, 100, session_bench.DEFAULT_MESSAGES)
    args.runs = pick(args.runs, q, 5, bench_cli_vs_swaks.DEFAULT_RUNS)
    args.no_cache_runs = 2 if q else bench_cli_vs_swaks.NO_CACHE_RUNS
    args.sandbox_rounds = pick(
        args.sandbox_rounds, q, bench_sandbox.QUICK_ROUNDS, bench_sandbox.DEFAULT_ROUNDS
    )
    args.sandbox_messages = pick(
        args.sandbox_messages, q, bench_sandbox.QUICK_MESSAGES, bench_sandbox.DEFAULT_MESSAGES
    )
    args.app_runs = pick(args.app_runs, q, app_launch.QUICK_RUNS, app_launch.DEFAULT_RUNS)
    args.app_rounds = pick(args.app_rounds, q, app_flood.QUICK_ROUNDS, app_flood.DEFAULT_ROUNDS)
    args.app_lines = pick(args.app_lines, q, app_flood.QUICK_LINES, app_flood.DEFAULT_LINES)
    args.app_probes = app_flood.QUICK_PROBES if q else app_flood.DEFAULT_PROBES
    at_least(
        parser,
        1,
        **{k: getattr(args, k) for k in ("rounds", "messages", "runs", "sandbox_rounds")},
        **{
            k: getattr(args, k) for k in ("sandbox_messages", "app_runs", "app_rounds", "app_lines")
        },
    )
    if args.sandbox_tmpdir is not None and not args.sandbox_tmpdir.is_dir():
        parser.error(f"--sandbox-tmpdir {args.sandbox_tmpdir} is not a directory")
    return args


def portable(text: str) -> str:
    """The report with this checkout's and this run's paths made relative.

    docs/performance.md is read on other machines: ``/home/me/tuimail/.venv``
    means nothing there, ``.venv`` does; a temporary directory is gone.
    """
    root = str(Path(__file__).resolve().parent.parent)
    text = text.replace(root + "/", "").replace(root, ".")
    temporary = re.escape(tempfile.gettempdir().rstrip("/"))
    return re.sub(temporary + r"/tuimail-bench-[^/\s]+/", "$TMPDIR/tuimail-bench-*/", text)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    run = Run()
    endpoints = 50 if args.quick else 200
    steps: list[tuple[str, str, Callable[[], Any], Callable[[Any], str]]] = [
        (
            "session",
            "session throughput",
            lambda: session_bench.run(args.rounds, args.messages),
            session_bench.report,
        ),
        (
            "cli",
            "send process vs swaks",
            lambda: bench_cli_vs_swaks.run(args.runs, args.no_cache_runs, editable=args.editable),
            bench_cli_vs_swaks.report,
        ),
        (
            "sandbox",
            "sandbox capture server throughput",
            lambda: bench_sandbox.run(
                args.sandbox_rounds, messages=args.sandbox_messages, tmpdir=args.sandbox_tmpdir
            ),
            bench_sandbox.report,
        ),
        (
            "probe",
            "probe round: concurrent vs one at a time",
            lambda: bench_probe.run(endpoints),
            bench_probe.report,
        ),
        (
            "inbox",
            "inbox page: 100,000 stored messages vs 100",
            lambda: bench_inbox.run(
                bench_inbox.QUICK_ROUNDS if args.quick else bench_inbox.DEFAULT_ROUNDS
            ),
            bench_inbox.report,
        ),
        (
            "launch",
            "app launch to the first full screen",
            lambda: app_launch.run_launch(args.app_runs),
            app_launch.launch_report,
        ),
        (
            "flood",
            "app through a transcript flood",
            lambda: app_flood.run_flood(args.app_rounds, args.app_lines, probes=args.app_probes),
            app_flood.flood_report,
        ),
    ]
    reports = []
    for name, title, measure, report in steps:
        print(f"\n## {title}", flush=True)
        result = attempt(name, measure, report)
        setattr(run, name, result)
        reports.append(f"## {title}\n{report(result) if result is not None else 'not run'}")
    if run.launch is None:
        run.launch_problem = "failed, or tmux missing (see the run's output)"

    command = "python benchmarks/run_all.py " + shlex.join(argv or sys.argv[1:])
    text = portable(markdown(run, command.strip(), "\n\n".join(reports)))
    print(f"\n## results\n\n{table(run)}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    print(f"\n(written to {RESULTS})")
    if (args.doc or not args.quick) and not args.no_doc:
        write_section(text)
        print("(and to docs/performance.md, between its bench markers)")
    return 0 if all(r is not None for r in vars(run).values()) else 2


if __name__ == "__main__":
    sys.exit(main())
