"""The inbox's first page with 100,000 stored messages against 100: the same work.

Opening the inbox (a new index object, its catch-up look at the Maildir,
the first page of 100) and a search page are timed over an index of 100
messages and one of 100,000, in the same run. The indexes are filled
directly (rows as the indexer writes them, Maildir directories in place and
unchanged since), because what is measured is the page, not the indexing:
keyset pagination over ``(received, id)`` reads only the page's rows, so
the ratio should stay near 1 (target: at most 2x).

    python benchmarks/bench_inbox.py [--rounds 15] [--large 100000]

Measures and prints; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import median, met

DEFAULT_ROUNDS = 15
QUICK_ROUNDS = 5
SMALL = 100
LARGE = 100_000
PAGE = 100
#: The page read from the middle: the small archive has 50 messages below its middle.
DEEP_PAGE = 40
TARGET_RATIO = 2.0
TARGET = f"<= {TARGET_RATIO:g}x"


@dataclass
class InboxResult:
    """Seconds per round for each size: opening (catch-up + first page), a deep page, a search."""

    rounds: int
    small: int
    large: int
    open_times: dict[int, list[float]] = field(default_factory=dict)
    deep_times: dict[int, list[float]] = field(default_factory=dict)
    search_times: dict[int, list[float]] = field(default_factory=dict)

    def ratio(self, times: dict[int, list[float]]) -> float:
        return median(times[self.large]) / median(times[self.small])

    @property
    def meets_target(self) -> bool:
        return self.ratio(self.open_times) <= TARGET_RATIO


def fill(base: Path, count: int) -> None:
    """An index of ``count`` messages over an (empty, unchanged) Maildir, as the indexer leaves it."""
    from tuimail.inbox import InboxIndex
    from tuimail.inbox.mailboxes import fingerprint

    maildir = base / "maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (base / "sessions").mkdir()
    index = InboxIndex(maildir, base / "sessions", base / "inbox.sqlite3")
    db = index._connect()
    words = ["invoice", "welcome", "reset", "password", "order", "shipped", "report", "alert"]
    chooser = random.Random(7)
    start = 1_700_000_000.0
    rows = []
    texts = []
    for number in range(count):
        key = f"{int(start) + number}.M{number % 1_000_000}P1Q{number}.bench"
        subject = f"{chooser.choice(words)} {number}"
        rows.append(
            (number + 1, key, "new", key, start + number, "app <app@example.test>",
             f"user{number % 500}@example.test", "", subject, 2048, "", "", "", "",
             "inbox", " ", 0, int(number % 10 == 0))
        )  # fmt: skip
        texts.append((number + 1, subject, "app@example.test", f"{subject} body text"))
    db.execute("BEGIN")
    db.executemany(f"INSERT INTO messages VALUES ({', '.join('?' * 18)})", rows)
    db.executemany("INSERT INTO texts (rowid, subject, people, body) VALUES (?, ?, ?, ?)", texts)
    rules = fingerprint(())
    db.execute("INSERT OR REPLACE INTO meta VALUES ('rules', ?)", (rules,))
    db.execute("INSERT OR REPLACE INTO meta VALUES ('stamp', ?)", (f"{index.stamp()} {rules}",))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("ANALYZE")
    index.close()


def _measure(base: Path, count: int) -> tuple[float, float, float]:
    from tuimail.inbox import Cursor, InboxIndex

    started = time.perf_counter()
    index = InboxIndex(base / "maildir", base / "sessions", base / "inbox.sqlite3")
    index.refresh()
    first = index.page(limit=PAGE)
    opened = time.perf_counter() - started
    assert len(first.entries) == min(PAGE, count)
    # A page from the middle of the archive (rows as fill() numbers them), as
    # paging down from the previous page's cursor reaches it; small enough
    # that both archives fill it.
    cursor = Cursor(first.entries[0].received_at - count // 2, first.entries[0].row - count // 2)
    started = time.perf_counter()
    deep_page = index.page(after=cursor, limit=DEEP_PAGE)
    deep = time.perf_counter() - started
    assert len(deep_page.entries) == DEEP_PAGE
    started = time.perf_counter()
    index.page("invoice has:attachment", limit=PAGE)
    search = time.perf_counter() - started
    index.close()
    return opened, deep, search


def run(rounds: int = DEFAULT_ROUNDS, large: int = LARGE) -> InboxResult:
    result = InboxResult(rounds, SMALL, large)
    with tempfile.TemporaryDirectory(prefix="tuimail-bench-inbox-") as tmp:
        bases = {}
        for count in (SMALL, large):
            bases[count] = Path(tmp) / str(count)
            fill(bases[count], count)
        for times in (result.open_times, result.deep_times, result.search_times):
            times.update({SMALL: [], large: []})
        for number in range(rounds):
            for count in (SMALL, large) if number % 2 == 0 else (large, SMALL):
                opened, deep, search = _measure(bases[count], count)
                result.open_times[count].append(opened)
                result.deep_times[count].append(deep)
                result.search_times[count].append(search)
    return result


def report(result: InboxResult) -> str:
    def line(what: str, times: dict[int, list[float]]) -> str:
        small, large = median(times[result.small]) * 1e3, median(times[result.large]) * 1e3
        return (
            f"  {what:<38} {result.small:>7,}: {small:6.2f} ms   {result.large:>7,}: "
            f"{large:6.2f} ms   ratio {large / small:.2f}x"
        )

    return "\n".join(
        [
            f"inbox page of {PAGE}, {result.small:,} vs {result.large:,} stored messages "
            f"(median of {result.rounds} rounds)",
            line("open (catch-up look + first page)", result.open_times),
            line(f"a page of {DEEP_PAGE} in the middle (keyset)", result.deep_times),
            line("search page (FTS5 + has:attachment)", result.search_times),
            f"  open ratio target {TARGET} ({met(result.meets_target)})",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--large", type=int, default=LARGE)
    args = parser.parse_args(argv)
    print(report(run(args.rounds, args.large)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
