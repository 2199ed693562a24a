"""``tuimail inbox delete --all`` over a Maildir holding things that are not messages
(a directory someone made in ``new/``) deletes every message, in words, with
no traceback; the index never listed the directory either.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.test_inbox import message
from tuimail.inbox import InboxIndex
from tuimail.maildir import deliver


def test_delete_all_skips_a_directory_and_deletes_the_messages(isolated_dirs: Path) -> None:
    index = InboxIndex.for_sandbox()
    for sub in ("new", "cur", "tmp"):
        (index.maildir / sub).mkdir(parents=True, exist_ok=True)
    (index.maildir / "new" / "1796430002.M1P1Q1.dir").mkdir()
    deliver(index.maildir, message("one"), durable=False)
    deliver(index.maildir, message("two"), durable=False)
    done = run_tuimail("inbox", "delete", "--all", "--yes")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "Deleted 2 messages." in done.stdout
    assert os.listdir(index.maildir / "new") == ["1796430002.M1P1Q1.dir"]
    assert run_tuimail("inbox", "list").stdout.strip() == "The inbox is empty."


def test_a_maildir_that_refuses_a_delete_is_said_in_words(isolated_dirs: Path) -> None:
    index = InboxIndex.for_sandbox()
    for sub in ("new", "cur", "tmp"):
        (index.maildir / sub).mkdir(parents=True, exist_ok=True)
    key = deliver(index.maildir, message("kept"), durable=False)
    # A file in new/ whose name the Maildir keeps as a directory: unlink fails
    # with EISDIR, as a read-only mount or another owner fails with EACCES.
    os.rename(index.maildir / "new" / key, index.maildir / "cur" / f"{key}:2,S")
    (index.maildir / "new" / key).mkdir()
    done = run_tuimail("inbox", "delete", key)
    assert "Traceback" not in done.stderr
    assert done.returncode in (0, 4), done.stderr
