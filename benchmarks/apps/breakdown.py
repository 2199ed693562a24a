"""One app's start, in-process and headless: import time, time to its first screen, a census.

Run in a fresh interpreter by the launch benchmark, from the repository root::

    python -m benchmarks.apps.breakdown tuimail|minimal|floor

It prints ``BREAKDOWN <imports> <mounted> <ready>`` (seconds: the imports,
then ``run_test`` until the first screen is mounted, and until it is complete;
for tuimail that is when the embedded sandbox is up) and ``CENSUS <json>``:
the first screen's widgets by class, its footer keys, the app's CSS rules
and the focused widget, which tell whether the widget floor shows what
tuimail shows.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
from collections import Counter
from typing import Any

COLUMNS, ROWS = 120, 40
#: What each app's imports are: its module, and for tuimail what its command imports.
MODULES = {
    "tuimail": "tuimail.ui.app",
    "minimal": "benchmarks.apps.minimal",
    "floor": "benchmarks.apps.floor",
}


def _make(which: str) -> Any:
    """Import ``which`` (timed by the caller) and build its app as its command does."""
    module = importlib.import_module(MODULES[which])
    if which != "tuimail":
        return module.make_app()
    import tuimail.cli

    tuimail.cli.settle_imports()  # what the tuimail command does before its app
    return module.TuimailApp()


async def _start(which: str, started: float) -> None:
    app = _make(which)
    imported = time.perf_counter() - started
    began = time.perf_counter()
    async with app.run_test(size=(COLUMNS, ROWS)) as pilot:
        mounted = time.perf_counter() - began
        if which == "tuimail":
            from benchmarks.app_seam import sandbox_settled

            while not sandbox_settled(app):
                await asyncio.sleep(0.002)
        ready = time.perf_counter() - began
        await pilot.pause()
        await pilot.pause()
        census = {
            "widgets": Counter(type(w).__name__ for w in app.screen.walk_children()),
            "footer_keys": [
                f"{k.key_display} {k.description}" for k in app.screen.query("FooterKey")
            ],
            "css_rules": len(app.stylesheet.rules),
            "focused": app.focused.id if app.focused is not None else None,
        }
    print(f"BREAKDOWN {imported:.6f} {mounted:.6f} {ready:.6f}")
    print("CENSUS " + json.dumps(census))


def main(argv: list[str]) -> int:
    started = time.perf_counter()
    if len(argv) != 1 or argv[0] not in MODULES:
        print(f"usage: python -m benchmarks.apps.breakdown {'|'.join(MODULES)}", file=sys.stderr)
        return 2
    asyncio.run(_start(argv[0], started))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
