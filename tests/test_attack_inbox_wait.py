"""``tuimail inbox wait --timeout`` returns at its timeout even while another process
holds the index's write lock (it once waited SQLite's 10 s busy timeout and
exited 4, whatever ``--timeout`` said); what the index holds still counts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.test_inbox import message
from tuimail.inbox import InboxIndex
from tuimail.maildir import deliver

HOLD = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_wait_keeps_its_timeout_while_the_index_is_locked(isolated_dirs: Path) -> None:
    index = InboxIndex.for_sandbox()
    for sub in ("new", "cur", "tmp"):
        (index.maildir / sub).mkdir(parents=True, exist_ok=True)
    deliver(index.maildir, message("already here"), durable=False)
    index.refresh()
    index.close()
    deliver(index.maildir, message("arrived later"), durable=False)  # not indexed yet
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(index.index_path), "60"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        missing = run_tuimail("inbox", "wait", "--subject", "never sent", "--timeout", "1")
        took = time.monotonic() - started
        assert missing.returncode == 1, missing.stderr
        assert took < 9, took  # (SQLite's busy timeout alone is 10 s)
        started = time.monotonic()
        found = run_tuimail("inbox", "wait", "--subject", "already here", "--timeout", "1")
        assert found.returncode == 0, found.stderr
        assert "already here" in found.stdout
        assert time.monotonic() - started < 9
        # --new: the message stored before the call (not indexed yet) is not new.
        started = time.monotonic()
        new = run_tuimail("inbox", "wait", "--new", "--subject", "arrived", "--timeout", "1")
        assert new.returncode == 1, new.stdout + new.stderr
        assert time.monotonic() - started < 9
    finally:
        holder.kill()
        holder.wait(timeout=10)
    # Once the lock is gone, the message that came meanwhile is indexed and found.
    later = run_tuimail("inbox", "wait", "--subject", "arrived later", "--timeout", "5")
    assert later.returncode == 0, later.stderr
