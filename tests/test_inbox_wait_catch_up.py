"""Review: ``inbox wait`` over a big archive reads only what changed.

Each change to the Maildir (and every look within a second of one, while the
directory's time cannot be trusted yet) compared every file name with every row
of the index again: with 20,000 messages and one arriving every 0.2 s, a 6 s
``inbox wait`` used 3 s of CPU. A catch-up now starts from what the same
object saw and left last time, and reads the names that changed. Real Maildir
files written as another process writes them; real session files; a real
``tuimail inbox wait`` process.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from tests.cli_helpers import TUIMAIL
from tests.test_inbox import message
from tuimail.inbox import InboxIndex
from tuimail.inbox.query import filters
from tuimail.maildir import deliver

ARCHIVE = 2000
FULL_READ = "SELECT key, sub, name FROM messages"


def archive(index: InboxIndex, count: int = ARCHIVE) -> None:
    for sub in ("new", "cur", "tmp"):
        (index.maildir / sub).mkdir(parents=True, exist_ok=True)
    index.sessions_dir.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        name = f"{1_700_000_000 + number}.M{number}P1Q{number}.archive"
        (index.maildir / "new" / name).write_bytes(message(f"archived {number}"))
    index.refresh()


def rows(index: InboxIndex) -> list[tuple[object, ...]]:
    db = index._connect()
    return sorted(
        db.execute(
            "SELECT key, sub, name, subject, session_id, envelope_from, seen FROM messages"
        ).fetchall()
    )


def test_arrivals_are_found_without_reading_every_row_again(isolated_dirs: Path) -> None:
    index = InboxIndex.for_sandbox()
    archive(index)
    statements: list[str] = []
    index._connect().set_trace_callback(statements.append)
    last = index.newest_row()
    for number in range(20):
        deliver(index.maildir, message(f"arrival {number}"), durable=False)
        found = index.wait_for(filters(subject=f"arrival {number}"), timeout=10, after_row=last)
        assert found is not None and found.subject == f"arrival {number}"
        last = index.newest_row()
        time.sleep(0.06)  # a look or two while the directory's time is too recent to trust
        index.refresh()
    full_reads = [s for s in statements if s.startswith(FULL_READ)]
    assert len(full_reads) <= 1, f"{len(full_reads)} reads of every row for 20 arrivals"
    index.close()


def test_a_catch_up_from_the_last_look_equals_a_whole_new_index(
    isolated_dirs: Path, tmp_path: Path
) -> None:
    """Arrivals, a message marked read and one deleted by another process, a session file
    after its message, a file that cannot be read yet, a hidden file: as a fresh index
    of the same Maildir sees them."""
    index = InboxIndex.for_sandbox()
    archive(index, 50)
    maildir = index.maildir
    first = deliver(maildir, message("first"), durable=False)
    second = deliver(maildir, message("second"), durable=False)
    index.refresh()
    # Another process: marks the first read (new/ to cur/ with a flag), removes an
    # archived one, adds a hidden file and a name that is not a file yet.
    os.rename(maildir / "new" / first, maildir / "cur" / f"{first}:2,S")
    (maildir / "new" / "1700000003.M3P1Q3.archive").unlink()
    (maildir / ".hidden").write_bytes(b"not a message")
    (maildir / "new" / ".also-hidden").write_bytes(b"From: x@example.test\r\n\r\nno\r\n")
    (maildir / "new" / "1800000000.M1P9Q1.later").mkdir()
    index.refresh()
    # The session file of the second message comes after it.
    document = {
        "id": "S-second",
        "messages": [{"key": second, "mail_from": "app@example.test", "rcpt_tos": ["b@x.test"]}],
    }
    (index.sessions_dir / "S-second.json").write_text(json.dumps(document))
    # The name that was a directory becomes a message.
    (maildir / "new" / "1800000000.M1P9Q1.later").rmdir()
    (maildir / "new" / "1800000000.M1P9Q1.later").write_bytes(message("late file"))
    index.refresh()
    time.sleep(1.1)  # past the time a directory's stamp may be too recent to trust
    index.refresh()

    fresh = InboxIndex(maildir, index.sessions_dir, tmp_path / "fresh.sqlite3")
    fresh.refresh()
    caught_up = rows(index)
    assert caught_up == rows(fresh)
    by_key = {row[0]: row for row in caught_up}
    assert by_key[first][1:3] == ("cur", f"{first}:2,S") and by_key[first][6] == 1
    assert by_key[second][4:6] == ("S-second", "app@example.test")
    assert "1700000003" not in " ".join(str(k) for k in by_key)
    assert by_key["1800000000.M1P9Q1.later"][3] == "late file"
    assert len(caught_up) == 50 - 1 + 2 + 1
    index.close()
    fresh.close()


def test_inbox_wait_sees_each_arrival_over_an_archive(isolated_dirs: Path) -> None:
    """The command a test suite runs: started before the message, over 2,000 stored."""
    index = InboxIndex.for_sandbox()
    archive(index)
    index.close()
    waiting = subprocess.Popen(
        [TUIMAIL, "inbox", "wait", "--subject", "the one", "--new", "--timeout", "20", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        for number in range(5):
            deliver(index.maildir, message(f"noise {number}"), durable=False)
            time.sleep(0.1)
        deliver(index.maildir, message("the one"), durable=False)
        out, err = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 0, err
    assert json.loads(out)["subject"] == "the one"


def test_another_writer_of_the_index_sends_the_catch_up_back_to_a_whole_look(
    isolated_dirs: Path, tmp_path: Path
) -> None:
    """The app and ``inbox wait`` share one index: what one deletes or marks read, the
    other's next catch-up must not take for still there."""
    waiter = InboxIndex.for_sandbox()
    archive(waiter, 20)
    app = InboxIndex.for_sandbox()
    app.refresh()
    kept = deliver(waiter.maildir, message("kept"), durable=False)
    doomed = deliver(waiter.maildir, message("doomed"), durable=False)
    waiter.refresh()
    app.refresh()
    app.delete([app.find(doomed)])
    app.mark_read(app.find(kept))
    deliver(waiter.maildir, message("after"), durable=False)
    waiter.refresh()
    time.sleep(1.1)
    waiter.refresh()
    fresh = InboxIndex(waiter.maildir, waiter.sessions_dir, tmp_path / "fresh.sqlite3")
    fresh.refresh()
    assert rows(waiter) == rows(fresh)
    subjects = {row[3] for row in rows(waiter)}
    assert "doomed" not in subjects and {"kept", "after"} <= subjects
    for index in (waiter, app, fresh):
        index.close()
