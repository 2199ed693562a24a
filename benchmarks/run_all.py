"""Run every benchmark and print a Markdown table for docs/performance.md.

    .venv/bin/python benchmarks/run_all.py          # what `make bench` runs
    .venv/bin/python benchmarks/run_all.py --quick  # fewer rounds, for a smoke run
    .venv/bin/python benchmarks/run_all.py --sandbox-tmpdir /dev/shm  # sandbox storage off the disk
    .venv/bin/python benchmarks/run_all.py --app-rounds 1 --app-lines 20000  # a shorter flood

The table is also written to ``benchmarks/results/latest.md`` (gitignored).
Nothing here asserts on time: the exit code is non-zero only when a benchmark
could not run at all (for example, swaks or tmux is missing).
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

from benchmarks import bench_app, bench_cli_vs_swaks, bench_probe, bench_sandbox, bench_session

RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"


def table(
    session: bench_session.SessionResult | None,
    cli: bench_cli_vs_swaks.CliResult | None,
    sandbox: bench_sandbox.SandboxResult | None = None,
    probe: bench_probe.ProbeResult | None = None,
    launch: bench_app.LaunchResult | None = None,
    flood: bench_app.FloodResult | None = None,
    launch_problem: str = "",
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
        install = "editable dev install" if cli.editable_only else "installed from a wheel"
        rows.append(
            f"| one `tuimail send --no-queue` process (one attempt, like swaks) vs one `swaks` "
            f"process, wall time, {install} (median of {cli.runs} rounds; ratio = median of "
            f"per-round ratios) "
            f"| {cli.tuimail_median * 1e3:.0f} ms "
            f"| {cli.swaks_median * 1e3:.0f} ms (swaks) "
            f"| {cli.paired_ratio:.2f}x | {bench_cli_vs_swaks.TARGET} |"
        )
        rows.append(
            "| one `tuimail send` process, the default: the message is stored durably "
            "(fsync) in the outbox before the attempt, same load "
            f"| {cli.default_median * 1e3:.0f} ms "
            f"| {cli.swaks_median * 1e3:.0f} ms (swaks) "
            f"| {cli.default_paired_ratio:.2f}x | {bench_cli_vs_swaks.TARGET} |"
        )
    else:
        rows.append(
            "| one `tuimail send` process vs one `swaks` process | not run | swaks missing "
            f"| - | {bench_cli_vs_swaks.TARGET} |"
        )
    rows += sandbox_rows(sandbox)
    if probe is not None:
        rows.append(
            f"| probe round: {probe.endpoints} local endpoints ({probe.rtt * 1000:.0f} ms simulated "
            f"RTT per reply), concurrency {probe.concurrency} "
            f"| {probe.concurrent:.2f} s | {probe.sequential:.2f} s (one at a time) "
            f"| {probe.ratio:.1f}x faster | >= {bench_probe.TARGET_RATIO:g}x faster |"
        )
    rows += app_rows(launch, flood, launch_problem)
    return "\n".join(rows)


def app_rows(
    launch: bench_app.LaunchResult | None,
    flood: bench_app.FloodResult | None,
    launch_problem: str = "",
) -> list[str]:
    rows = []
    if launch is not None:
        rows.append(
            f"| `tuimail` launch to its first full screen (compose, footer, sandbox up) in a "
            f"{bench_app.COLUMNS}x{bench_app.ROWS} tmux terminal (median of {launch.runs} "
            f"runs, order rotated) "
            f"| {launch.tuimail_median * 1e3:.0f} ms "
            f"| {launch.minimal_median * 1e3:.0f} ms (minimal Textual app: Header, Static, Footer) "
            f"| {launch.ratio:.2f}x | {bench_app.LAUNCH_TARGET} |"
        )
        if launch.floor:
            rows.append(
                '| the "widget floor": tuimail\'s compose-screen widgets and CSS in plain Textual, '
                "no tuimail code (Textual's own cost for the widgets the issue requires), same runs "
                f"| {launch.floor_median * 1e3:.0f} ms (floor) "
                f"| {launch.minimal_median * 1e3:.0f} ms (minimal Textual app) "
                f"| {launch.floor_ratio:.2f}x | - |"
            )
            rows.append(
                "| `tuimail` vs its widget floor: what tuimail's own start-up (sandbox, profiles, "
                "themes, modes) adds on top of its widgets, same runs "
                f"| {launch.tuimail_median * 1e3:.0f} ms "
                f"| {launch.floor_median * 1e3:.0f} ms (widget floor) "
                f"| {launch.over_floor_ratio:.2f}x | - |"
            )
    else:
        rows.append(
            f"| `tuimail` launch to its first full screen | not run | {launch_problem or 'skipped'} "
            f"| - | {bench_app.LAUNCH_TARGET} |"
        )
    if flood is not None:
        rows.append(
            f"| key press to screen (a letter typed into To) during a flood of "
            f"{flood.lines:,} transcript lines, bursts of {flood.burst:,} "
            f"(median of all probes, {bench_app.plural(flood.rounds, 'round')}) "
            f"| {flood.median(True) * 1e3:.0f} ms "
            f"| {flood.median(False) * 1e3:.0f} ms (same app, no flood) "
            f"| {flood.ratio():.1f}x | {bench_app.FLOOD_TARGET} |"
        )
        last = flood.floods[-1] if flood.floods else None
        if last is not None:
            # The cap counts entries; a view redraws its last ``cap`` when it
            # shows 1.5 x cap. Screen lines are more (long entries wrap).
            entries = max(last.view_entries.values(), default=0)
            lines = max(last.view_lines.values(), default=0)
            rows.append(
                f"| memory through that flood: entries kept by the fullest transcript view "
                f"({lines:,} screen lines once wrapped); core transcript "
                f"{last.core_entries:,} entries; RSS "
                f"{last.rss_before / 1024:.0f} -> {last.rss_after / 1024:.0f} MB "
                f"| {entries:,} entries, trimmed marker "
                f"{'on screen' if last.trimmed_on_screen else 'NOT on screen'} "
                f"| cap {last.view_cap:,} entries (1.5x before each redraw) "
                f"| {entries / last.view_cap:.2f}x of cap | {bench_app.MEMORY_TARGET} |"
            )
    return rows


def sandbox_rows(result: bench_sandbox.SandboxResult | None) -> list[str]:
    if result is None:
        return [
            "| sandbox capture server vs a bare aiosmtpd sink | not run | the load failed "
            f"| - | {bench_sandbox.TARGET} |"
        ]
    if not result.has("sandbox"):
        return []
    load = (
        f"{result.clients} clients x {result.messages} messages of "
        f"~{result.payload_bytes / 1024:.0f} KB, one connection each"
    )
    references = [
        (
            "sink",
            f"sandbox capture server, transcripts on, vs a bare aiosmtpd sink: {load} "
            f"(median of {result.rounds} rounds)",
            "bare aiosmtpd, keeps nothing",
            bench_sandbox.TARGET,
        ),
        (
            "maildir",
            "sandbox vs aiosmtpd's stock `Mailbox` handler (both store each message), same load",
            "aiosmtpd `Mailbox`",
            "-",
        ),
        (
            "maildir-raw",
            "sandbox vs aiosmtpd + the standard library's `Maildir.add` of the bytes as "
            "received (which fsyncs each message; the sandbox does not), same load",
            "`Maildir.add(bytes)`",
            "-",
        ),
    ]
    return [
        f"| {what} | {result.median('sandbox'):.0f} msg/s "
        f"| {result.median(kind):.0f} msg/s ({label}) "
        f"| {result.ratio('sandbox', kind):.2f}x | {target} |"
        for kind, what, label, target in references
        if result.has(kind)
    ]


def notes(
    session: bench_session.SessionResult | None,
    cli: bench_cli_vs_swaks.CliResult | None,
    sandbox: bench_sandbox.SandboxResult | None = None,
    launch: bench_app.LaunchResult | None = None,
    flood: bench_app.FloodResult | None = None,
) -> str:
    lines = []
    if session is not None:
        lines.append(
            f"- session: {'meets' if session.meets_target else 'misses'} its target; "
            f"median of per-round ratios {session.paired_ratio:.2f}x"
        )
    if cli is not None:
        lines.append(
            f"- send process: `--no-queue` {'meets' if cli.meets_target else 'misses'} its target "
            f"(median per-round ratio {cli.paired_ratio:.2f}x, ratio of medians {cli.ratio:.2f}x); "
            f"default `tuimail send` {'meets' if cli.default_meets_target else 'misses'} it "
            f"({cli.default_paired_ratio:.2f}x; the outbox adds {cli.outbox_cost * 1e3:.0f} ms)"
        )
        if cli.imports is not None:
            lines.append(
                f"- `tuimail send` imported textual: "
                f"{'YES' if cli.imports.textual_imported else 'no'} "
                f"({len(cli.imports.modules)} modules imported)"
            )
    if sandbox is not None and sandbox.has("sandbox"):
        if sandbox.has("sandbox", "sink"):
            lines.append(
                f"- sandbox: {'meets' if sandbox.meets_target else 'misses'} its target; "
                f"median of per-round ratios to the sink "
                f"{sandbox.paired_ratio('sandbox', 'sink'):.2f}x"
            )
        cpu = [
            f"{kind} {value * 1e6:.0f} us"
            for kind in sandbox.kinds
            if (value := sandbox.stats[kind].server_cpu_median) is not None
        ]
        if cpu:
            lines.append(f"- sandbox benchmark, server CPU per message: {', '.join(cpu)}")
        lines.append(
            f"- sandbox benchmark Maildirs under {sandbox.storage}; stored counts "
            + (
                f"WRONG {len(sandbox.warnings)} time(s): {'; '.join(sandbox.warnings)}"
                if sandbox.warnings
                else "checked: all as sent"
            )
        )
    if launch is not None:
        lines.append(
            f"- app launch: {'meets' if launch.meets_target else 'misses'} its target; "
            f"median of per-run ratios {launch.paired_ratio:.2f}x; first non-blank screen "
            f"{bench_app.median_ms(launch.tuimail_paint)} (minimal "
            f"{bench_app.median_ms(launch.minimal_paint)}); in-process imports "
            f"{bench_app.median_ms([i for i, _ in launch.tuimail_breakdown])} (minimal "
            f"{bench_app.median_ms([i for i, _ in launch.minimal_breakdown])}), app start to "
            f"first screen {bench_app.median_ms([r for _, r in launch.tuimail_breakdown])} "
            f"(minimal {bench_app.median_ms([r for _, r in launch.minimal_breakdown])})"
        )
        if launch.floor:
            differences = launch.floor_differences()
            lines.append(
                f"- app launch vs the widget floor: floor/minimal {launch.floor_ratio:.2f}x "
                f"(median of per-run ratios {launch.floor_paired_ratio:.2f}x), tuimail/floor "
                f"{launch.over_floor_ratio:.2f}x ({launch.over_floor_paired_ratio:.2f}x); of "
                f"tuimail's {(launch.tuimail_median - launch.minimal_median) * 1e3:+.0f} ms over "
                f"the minimal app the widgets account for "
                f"{(launch.floor_median - launch.minimal_median) * 1e3:+.0f} ms "
                f"({launch.floor_share:.0%}); in-process imports "
                f"{bench_app.median_ms([i for i, _ in launch.floor_breakdown])}, app start to "
                f"first screen {bench_app.median_ms([r for _, r in launch.floor_breakdown])} "
                f"(tuimail's compose screen mounted: {bench_app.median_ms(launch.tuimail_mounted)}); "
                "floor's first screen vs tuimail's: "
                + ("DIFFERS: " + "; ".join(differences) if differences else "same widgets, CSS")
            )
    if flood is not None:
        for r in flood.floods:
            lines.append(
                f"- app flood: {r.core_entries:,} entries shown in {r.drain_seconds:.1f} s "
                f"({r.core_entries / r.drain_seconds if r.drain_seconds else 0:,.0f}/s); "
                f"{r.frames} screen updates, longest gap {r.longest_frame_gap:.2f} s; "
                f"F3 {bench_app.median_ms(r.latencies.get('f3', []))}; "
                f"peak RSS {bench_app.megabytes(r.rss_peak)}"
            )
        lines.append(
            f"- app flood memory bounded (views <= 1.5x cap in entries, marker on screen): "
            f"{'yes' if flood.bounded else 'NO'}"
        )
        checked = [*flood.floods, *([flood.marker_check] if flood.marker_check else [])]
        wrong = [
            f"{r.core_entries:,} entries, {name}: {out:,} out of view, marker says {said:,}"
            for r in checked
            for name, (out, said) in r.miscounted.items()
        ]
        lines.append(
            "- app transcript views' trimmed markers: "
            + (f"WRONG: {'; '.join(wrong)}" if wrong else "match what left each view")
        )
    lines.append(
        f"- {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run all tuimail benchmarks.")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 rounds x 100 messages, 5 runs; sandbox 2 rounds x 30 messages",
    )
    parser.add_argument("--rounds", type=int, help="session benchmark rounds")
    parser.add_argument("--messages", type=int, help="session benchmark messages per round")
    parser.add_argument("--runs", type=int, help="send-process benchmark runs of each command")
    parser.add_argument(
        "--editable",
        action="store_true",
        help="send-process benchmark: time the dev install instead of building a wheel (offline)",
    )
    parser.add_argument("--sandbox-rounds", type=int, help="sandbox benchmark rounds")
    parser.add_argument(
        "--sandbox-messages", type=int, help="sandbox benchmark messages per client per round"
    )
    parser.add_argument(
        "--sandbox-tmpdir",
        type=Path,
        help="where the sandbox benchmark's servers store messages (default: system temp dir)",
    )
    parser.add_argument("--app-runs", type=int, help="app launches of each app (tmux)")
    parser.add_argument("--app-rounds", type=int, help="app flood rounds")
    parser.add_argument("--app-lines", type=int, help="lines in each app flood")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else bench_session.DEFAULT_ROUNDS)
    messages = args.messages or (100 if args.quick else bench_session.DEFAULT_MESSAGES)
    runs = args.runs or (5 if args.quick else bench_cli_vs_swaks.DEFAULT_RUNS)
    no_cache_runs = 2 if args.quick else bench_cli_vs_swaks.NO_CACHE_RUNS
    sandbox_rounds = args.sandbox_rounds or (
        bench_sandbox.QUICK_ROUNDS if args.quick else bench_sandbox.DEFAULT_ROUNDS
    )
    sandbox_messages = args.sandbox_messages or (
        bench_sandbox.QUICK_MESSAGES if args.quick else bench_sandbox.DEFAULT_MESSAGES
    )
    app_runs = args.app_runs or (bench_app.QUICK_RUNS if args.quick else bench_app.DEFAULT_RUNS)
    app_rounds = args.app_rounds or (
        bench_app.QUICK_ROUNDS if args.quick else bench_app.DEFAULT_ROUNDS
    )
    app_lines = args.app_lines or (bench_app.QUICK_LINES if args.quick else bench_app.DEFAULT_LINES)
    app_probes = bench_app.QUICK_PROBES if args.quick else bench_app.DEFAULT_PROBES
    if min(rounds, messages, runs, sandbox_rounds, sandbox_messages) < 1:
        parser.error("--rounds, --messages, --runs and --sandbox-* must be at least 1")
    if min(app_runs, app_rounds, app_lines) < 1:
        parser.error("--app-* must be at least 1")
    if args.sandbox_tmpdir is not None and not args.sandbox_tmpdir.is_dir():
        parser.error(f"--sandbox-tmpdir {args.sandbox_tmpdir} is not a directory")

    exit_code = 0
    print("## session throughput", flush=True)
    session = bench_session.run(rounds, messages)
    print(bench_session.report(session), flush=True)

    print("\n## send process vs swaks", flush=True)
    cli: bench_cli_vs_swaks.CliResult | None = None
    try:
        cli = bench_cli_vs_swaks.run(runs, no_cache_runs, editable=args.editable)
    except bench_cli_vs_swaks.BenchmarkError as exc:
        print(f"bench_cli_vs_swaks: {exc}", file=sys.stderr)
        exit_code = 2
    else:
        print(bench_cli_vs_swaks.report(cli), flush=True)

    print("\n## sandbox capture server throughput", flush=True)
    sandbox: bench_sandbox.SandboxResult | None = None
    try:
        sandbox = bench_sandbox.run(
            sandbox_rounds, messages=sandbox_messages, tmpdir=args.sandbox_tmpdir
        )
    except bench_sandbox.BenchmarkError as exc:
        print(f"bench_sandbox: {exc}", file=sys.stderr)
        exit_code = 2
    else:
        print(bench_sandbox.report(sandbox), flush=True)

    print("\n## probe round: concurrent vs one at a time", flush=True)
    probe = bench_probe.run(endpoints=50 if args.quick else 200)
    print(bench_probe.report(probe), flush=True)

    print("\n## app launch to the first full screen", flush=True)
    launch: bench_app.LaunchResult | None = None
    launch_problem = ""
    try:
        launch = bench_app.run_launch(app_runs)
    except bench_app.TmuxMissing as exc:
        print(f"bench_app: skipped the launch benchmark: {exc}", file=sys.stderr)
        launch_problem = "tmux missing"
        exit_code = 2
    except bench_app.BenchmarkError as exc:
        print(f"bench_app launch: {exc}", file=sys.stderr)
        launch_problem = "failed (see above)"
        exit_code = 2
    else:
        print(bench_app.launch_report(launch), flush=True)

    print("\n## app through a transcript flood", flush=True)
    flood: bench_app.FloodResult | None = None
    try:
        flood = bench_app.run_flood(app_rounds, app_lines, probes=app_probes)
    except bench_app.BenchmarkError as exc:
        print(f"bench_app flood: {exc}", file=sys.stderr)
        exit_code = 2
    else:
        print(bench_app.flood_report(flood), flush=True)

    markdown = (
        f"{table(session, cli, sandbox, probe, launch, flood, launch_problem)}\n\n"
        f"{notes(session, cli, sandbox, launch, flood)}\n"
    )
    print("\n## results\n")
    print(markdown, end="")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(markdown, encoding="utf-8")
    print(f"\n(written to {RESULTS})")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
