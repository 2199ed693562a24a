"""Run every benchmark and print a Markdown table to paste into the README.

    .venv/bin/python benchmarks/run_all.py          # what `make bench` runs
    .venv/bin/python benchmarks/run_all.py --quick  # fewer rounds, for a smoke run

The table is also written to ``benchmarks/results/latest.md`` (gitignored).
Nothing here asserts on time: the exit code is non-zero only when a benchmark
could not run at all (for example, swaks is missing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file path: make ``benchmarks`` and ``tuimail`` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import bench_cli_vs_swaks, bench_session

RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"


def table(
    session: bench_session.SessionResult | None, cli: bench_cli_vs_swaks.CliResult | None
) -> str:
    rows = [
        "| benchmark | tuimail | reference | ratio | target |",
        "|---|---|---|---|---|",
    ]
    if session is not None:
        rows.append(
            f"| session throughput: {session.messages} messages of ~{session.payload_bytes / 1024:.0f} KB "
            f"over one connection, transcript on (median of {session.rounds} rounds) "
            f"| {session.tuimail_median:.0f} msg/s "
            f"| {session.raw_median:.0f} msg/s (aiosmtplib `sendmail`) "
            f"| {session.ratio:.2f}x | {bench_session.TARGET} |"
        )
    if cli is not None:
        rows.append(
            f"| one `tuimail send` process vs one `swaks` process, wall time "
            f"(median of {cli.runs} runs) "
            f"| {cli.tuimail_median * 1e3:.0f} ms "
            f"| {cli.swaks_median * 1e3:.0f} ms (swaks) "
            f"| {cli.ratio:.2f}x | {bench_cli_vs_swaks.TARGET} |"
        )
    else:
        rows.append(
            "| one `tuimail send` process vs one `swaks` process | not run | swaks missing "
            f"| - | {bench_cli_vs_swaks.TARGET} |"
        )
    return "\n".join(rows)


def notes(
    session: bench_session.SessionResult | None, cli: bench_cli_vs_swaks.CliResult | None
) -> str:
    lines = []
    if session is not None:
        lines.append(
            f"- session: {'meets' if session.meets_target else 'misses'} its target; "
            f"median of per-round ratios {session.paired_ratio:.2f}x"
        )
    if cli is not None:
        lines.append(f"- send process: {'meets' if cli.meets_target else 'misses'} its target")
        if cli.imports is not None:
            lines.append(
                f"- `tuimail send` imported textual: "
                f"{'YES' if cli.imports.textual_imported else 'no'} "
                f"({len(cli.imports.modules)} modules imported)"
            )
    lines.append(
        f"- {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run all tuimail benchmarks.")
    parser.add_argument("--quick", action="store_true", help="2 rounds x 100 messages, 5 runs")
    parser.add_argument("--rounds", type=int, help="session benchmark rounds")
    parser.add_argument("--messages", type=int, help="session benchmark messages per round")
    parser.add_argument("--runs", type=int, help="send-process benchmark runs of each command")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else bench_session.DEFAULT_ROUNDS)
    messages = args.messages or (100 if args.quick else bench_session.DEFAULT_MESSAGES)
    runs = args.runs or (5 if args.quick else bench_cli_vs_swaks.DEFAULT_RUNS)
    no_cache_runs = 2 if args.quick else bench_cli_vs_swaks.NO_CACHE_RUNS
    if min(rounds, messages, runs) < 1:
        parser.error("--rounds, --messages and --runs must be at least 1")

    exit_code = 0
    print("## session throughput", flush=True)
    session = bench_session.run(rounds, messages)
    print(bench_session.report(session), flush=True)

    print("\n## send process vs swaks", flush=True)
    cli: bench_cli_vs_swaks.CliResult | None = None
    try:
        cli = bench_cli_vs_swaks.run(runs, no_cache_runs)
    except bench_cli_vs_swaks.BenchmarkError as exc:
        print(f"bench_cli_vs_swaks: {exc}", file=sys.stderr)
        exit_code = 2
    else:
        print(bench_cli_vs_swaks.report(cli), flush=True)

    markdown = f"{table(session, cli)}\n\n{notes(session, cli)}\n"
    print("\n## results\n")
    print(markdown, end="")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(markdown, encoding="utf-8")
    print(f"\n(written to {RESULTS})")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
