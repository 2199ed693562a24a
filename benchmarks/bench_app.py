"""The app: time to the first full screen, and staying usable through a transcript flood.

Two measurements, each against references taken in the same run: the launch
(:mod:`benchmarks.app_launch`, in tmux) and the transcript flood
(:mod:`benchmarks.app_flood`, headless). Every observation of the running app
goes through :mod:`benchmarks.app_seam`.

    python benchmarks/bench_app.py --quick        # 4 launches of each app, one 20,000-line flood
    python benchmarks/bench_app.py --skip-flood --runs 20
    python benchmarks/bench_app.py --skip-launch --lines 30000 --burst 100 --cprofile 30

This script prints numbers; it never fails because of them. It exits
non-zero when a measurement could not run (tmux missing, a screen never
appeared, the flood never drained).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file path: make ``benchmarks`` and ``tuimail`` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import app_flood, app_launch
from benchmarks.common import at_least, attempt, pick


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer runs, rounds and lines")
    parser.add_argument(
        "--runs", type=int, help=f"launches of each app (default {app_launch.DEFAULT_RUNS})"
    )
    parser.add_argument(
        "--rounds", type=int, help=f"flood rounds (default {app_flood.DEFAULT_ROUNDS})"
    )
    parser.add_argument(
        "--lines", type=int, help=f"flood lines (default {app_flood.DEFAULT_LINES:,})"
    )
    parser.add_argument(
        "--burst", type=int, default=app_flood.DEFAULT_BURST, help="lines per loop turn"
    )
    parser.add_argument(
        "--probes", type=int, help="letters typed per round; F3 and F2 after every third"
    )
    parser.add_argument(
        "--cprofile", type=int, default=0, metavar="N", help="profile one more flood"
    )
    parser.add_argument("--skip-launch", action="store_true")
    parser.add_argument("--skip-flood", action="store_true")
    args = parser.parse_args(argv)
    runs = pick(args.runs, args.quick, app_launch.QUICK_RUNS, app_launch.DEFAULT_RUNS)
    rounds = pick(args.rounds, args.quick, app_flood.QUICK_ROUNDS, app_flood.DEFAULT_ROUNDS)
    lines = pick(args.lines, args.quick, app_flood.QUICK_LINES, app_flood.DEFAULT_LINES)
    probes = pick(args.probes, args.quick, app_flood.QUICK_PROBES, app_flood.DEFAULT_PROBES)
    at_least(parser, 1, runs=runs, rounds=rounds, lines=lines, burst=args.burst, probes=probes)
    if probes > len(app_flood.TYPED):
        parser.error(f"--probes must be at most {len(app_flood.TYPED)}")
    failed = False
    if not args.skip_launch:
        launched = attempt(
            "bench_app launch", lambda: app_launch.run_launch(runs), app_launch.launch_report
        )
        failed = launched is None
    if not args.skip_flood:
        flood = attempt(
            "bench_app flood",
            lambda: app_flood.run_flood(rounds, lines, args.burst, probes, args.cprofile),
            app_flood.flood_report,
        )
        failed = failed or flood is None
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
