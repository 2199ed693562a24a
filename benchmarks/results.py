"""The Markdown a whole run produces: a table of the main figures, then every report; and where it goes.

:func:`write_section` puts it into ``docs/performance.md`` between
:data:`START` and :data:`END`, with the date and the machine, and leaves the
prose around it alone.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from benchmarks import (
    app_flood,
    app_launch,
    bench_cli_vs_swaks,
    bench_inbox,
    bench_probe,
    bench_sandbox,
)
from benchmarks import bench_session as session_bench
from benchmarks.common import REPO_ROOT, median, plural

PERFORMANCE_DOC = REPO_ROOT / "docs" / "performance.md"
START = "<!-- bench:start (written by `make bench`; edits here are replaced) -->"
END = "<!-- bench:end -->"


@dataclass
class Run:
    """Every benchmark's result in one run; None where it did not run."""

    session: session_bench.SessionResult | None = None
    cli: bench_cli_vs_swaks.CliResult | None = None
    sandbox: bench_sandbox.SandboxResult | None = None
    probe: bench_probe.ProbeResult | None = None
    inbox: bench_inbox.InboxResult | None = None
    launch: app_launch.LaunchResult | None = None
    flood: app_flood.FloodResult | None = None
    launch_problem: str = ""


def row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms"


def table(run: Run) -> str:
    rows = [row("benchmark", "tuimail", "reference", "ratio", "target"), "|---|---|---|---|---|"]
    s, cli, probe = run.session, run.cli, run.probe
    if s is not None:
        rows.append(
            row(
                f"session throughput: {s.messages} messages of ~{s.payload_bytes / 1024:.0f} KB "
                f"over one connection, transcript on (median of {s.rounds} rounds)",
                f"{s.tuimail_median:.0f} msg/s",
                f"{s.raw_median:.0f} msg/s (aiosmtplib `sendmail`)",
                f"{s.ratio:.2f}x",
                session_bench.TARGET,
            )
        )
    if cli is not None:
        install = "editable dev install" if cli.editable_only else "installed from a wheel"
        swaks = f"{_ms(cli.swaks_median)} (swaks)"
        rows += [
            row(
                "one `tuimail send --no-queue` process (one attempt, like swaks) vs one `swaks` "
                f"process, wall time, {install} (median of {cli.runs} rounds; ratio = median of "
                "per-round ratios)",
                _ms(cli.tuimail_median),
                swaks,
                f"{cli.paired_ratio:.2f}x",
                bench_cli_vs_swaks.TARGET,
            ),
            row(
                "one `tuimail send` process, the default: the message is stored durably "
                "(fsync) in the outbox before the attempt, same load",
                _ms(cli.default_median),
                swaks,
                f"{cli.default_paired_ratio:.2f}x",
                bench_cli_vs_swaks.TARGET,
            ),
        ]
    else:
        rows.append(
            row(
                "one `tuimail send` process vs one `swaks` process",
                "not run",
                "swaks missing",
                "-",
                bench_cli_vs_swaks.TARGET,
            )
        )
    rows += sandbox_rows(run.sandbox)
    if probe is not None:
        rows.append(
            row(
                f"probe round: {probe.endpoints} local endpoints ({probe.rtt * 1000:.0f} ms "
                f"simulated RTT per reply), concurrency {probe.concurrency}",
                f"{probe.concurrent:.2f} s",
                f"{probe.sequential:.2f} s (one at a time)",
                f"{probe.ratio:.1f}x faster",
                f">= {bench_probe.TARGET_RATIO:g}x faster",
            )
        )
    if run.inbox is not None:
        inbox = run.inbox
        rows.append(
            row(
                f"inbox opened (catch-up look + first page of {bench_inbox.PAGE}) with "
                f"{inbox.large:,} stored messages vs {inbox.small:,} (median of "
                f"{inbox.rounds} rounds)",
                f"{median(inbox.open_times[inbox.large]) * 1e3:.2f} ms",
                f"{median(inbox.open_times[inbox.small]) * 1e3:.2f} ms ({inbox.small:,} messages)",
                f"{inbox.ratio(inbox.open_times):.2f}x",
                bench_inbox.TARGET,
            )
        )
    return "\n".join([*rows, *app_rows(run)])


def app_rows(run: Run) -> list[str]:
    launch, flood = run.launch, run.flood
    rows = []
    if launch is not None:
        tuimail, floor, minimal = (_ms(launch.median(a)) for a in ("tuimail", "floor", "minimal"))
        rows += [
            row(
                "`tuimail` launch to its first full screen (compose, footer, sandbox up) in a "
                f"{app_launch.COLUMNS}x{app_launch.ROWS} tmux terminal (median of {launch.runs} "
                "runs, order rotated)",
                tuimail,
                f"{minimal} (minimal Textual app: Header, Static, Footer)",
                f"{launch.ratio('tuimail', 'minimal'):.2f}x",
                app_launch.TARGET,
            ),
            row(
                'the "widget floor": tuimail\'s compose-screen widgets and CSS in a plain '
                "Textual app, none of tuimail's start-up (Textual's own cost for the widgets "
                "the issue requires), same runs",
                f"{floor} (floor)",
                f"{minimal} (minimal Textual app)",
                f"{launch.ratio('floor', 'minimal'):.2f}x",
                "-",
            ),
            row(
                "`tuimail` vs its widget floor: what tuimail's own start-up (sandbox, profiles, "
                "themes, modes) adds on top of its widgets, same runs",
                tuimail,
                f"{floor} (widget floor)",
                f"{launch.ratio('tuimail', 'floor'):.2f}x",
                "-",
            ),
        ]
    else:
        problem = run.launch_problem or "skipped"
        rows.append(
            row(
                "`tuimail` launch to its first full screen",
                "not run",
                problem,
                "-",
                app_launch.TARGET,
            )
        )
    if flood is not None:
        rows += [
            row(
                f"key press to screen (a letter typed into To) during a flood of {flood.lines:,} "
                f"transcript lines, bursts of {flood.burst:,} (median of all probes, "
                f"{plural(flood.rounds, 'round')})",
                _ms(flood.median(True)),
                f"{_ms(flood.median(False))} (same app, no flood)",
                f"{flood.ratio():.1f}x",
                app_flood.TARGET,
            ),
            row(
                "the spread of that figure: each round's fastest/median/slowest probe, in ms "
                "(rounds in the order run)",
                flood.spread_text(True) or "-",
                f"{flood.spread_text(False) or '-'} (no flood)",
                "-",
                "-",
            ),
        ]
        if flood.floods:
            last = flood.floods[-1]
            # The cap counts entries (a view keeps its last ``cap``), not wrapped lines.
            entries = max(last.view_entries.values(), default=0)
            lines = max(last.view_lines.values(), default=0)
            rows.append(
                row(
                    "memory through that flood: entries kept by the fullest transcript view "
                    f"({lines:,} screen lines once wrapped); core transcript "
                    f"{last.core_entries:,} entries; RSS {last.rss_before / 1024:.0f} -> "
                    f"{last.rss_after / 1024:.0f} MB",
                    f"{entries:,} entries, trimmed marker "
                    + ("on screen" if last.trimmed_on_screen else "NOT on screen"),
                    f"cap {last.view_cap:,} entries",
                    f"{entries / last.view_cap:.2f}x of cap",
                    app_flood.MEMORY_TARGET,
                )
            )
    return rows


SANDBOX_REFERENCES = (
    ("sink", "bare aiosmtpd, keeps nothing", bench_sandbox.TARGET),
    ("maildir", "aiosmtpd `Mailbox`", "-"),
    ("maildir-raw", "`Maildir.add(bytes)`", "-"),
)


def sandbox_rows(result: bench_sandbox.SandboxResult | None) -> list[str]:
    if result is None:
        return [
            row(
                "sandbox capture server vs a bare aiosmtpd sink",
                "not run",
                "the load failed",
                "-",
                bench_sandbox.TARGET,
            )
        ]
    if not result.has("sandbox"):
        return []
    load = (
        f"{result.clients} clients x {result.messages} messages of "
        f"~{result.payload_bytes / 1024:.0f} KB, one connection each"
    )
    what = {
        "sink": f"sandbox capture server, transcripts on, vs a bare aiosmtpd sink: {load} "
        f"(median of {result.rounds} rounds)",
        "maildir": "sandbox vs aiosmtpd's stock `Mailbox` handler (both store each message), "
        "same load",
        "maildir-raw": "sandbox vs aiosmtpd + the standard library's `Maildir.add` of the bytes "
        "as received (which fsyncs each message; the sandbox does not), same load",
    }
    return [
        row(
            what[kind],
            f"{result.median('sandbox'):.0f} msg/s",
            f"{result.median(kind):.0f} msg/s ({label})",
            f"{result.ratio('sandbox', kind):.2f}x",
            target,
        )
        for kind, label, target in SANDBOX_REFERENCES
        if result.has(kind)
    ]


def machine() -> str:
    """When and where: the date, the CPU count, Python and Textual."""
    now = dt.datetime.now().astimezone()
    return (
        f"Measured {now:%Y-%m-%d %H:%M %Z} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Textual {version('textual')}, aiosmtplib {version('aiosmtplib')}, "
        f"aiosmtpd {version('aiosmtpd')}."
    )


def markdown(run: Run, command: str, reports: str) -> str:
    """The whole generated section: where and how it was measured, the table, every report."""
    return (
        f"{machine()} Command: `{command}`.\n\n{table(run)}\n\n"
        f"<details><summary>Every figure of the run</summary>\n\n```text\n{reports.strip()}\n```\n\n"
        "</details>\n"
    )


def write_section(text: str, path: Path = PERFORMANCE_DOC) -> None:
    """Replace what lies between the markers in ``path`` (or add them at its end) with ``text``."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{START}\n\n{text.strip()}\n\n{END}"
    pattern = re.compile(re.escape(START.split(" (")[0]) + r".*?" + re.escape(END), re.DOTALL)
    if pattern.search(old):
        new = pattern.sub(lambda _m: block, old, count=1)
    else:
        new = f"{old.rstrip()}\n\n{block}\n" if old else f"{block}\n"
    path.write_text(new, encoding="utf-8")
