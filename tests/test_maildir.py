"""Maildir delivery with files made ahead: same bytes, same guarantees, nothing left behind."""

from __future__ import annotations

import mailbox
import os
import stat
import time
from pathlib import Path

from tuimail.maildir import SpareFiles, deliver_with, ensure_maildir


def wait_for_files(directory: Path, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(list(directory.iterdir())) != count:
        assert time.monotonic() < deadline, f"{directory} never had {count} files"
        time.sleep(0.01)


def test_a_message_goes_into_a_file_made_ahead(tmp_path: Path) -> None:
    maildir = ensure_maildir(tmp_path / "m")
    spares = SpareFiles(maildir, depth=4)
    assert spares.take() is None  # nothing made yet: the caller makes its own file
    wait_for_files(maildir / "tmp", 4)

    data = b"Subject: one\r\n\r\n\xc3\xa9t\xc3\xa9 8-bit body\r\n"
    key = deliver_with(spares, data)

    assert len(list((maildir / "tmp").iterdir())) == 3  # one of the four was used
    stored = maildir / "new" / key
    assert stored.read_bytes() == data
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert mailbox.Maildir(maildir, create=False).get_bytes(key) == data
    spares.close()
    assert list((maildir / "tmp").iterdir()) == []  # unused files are removed


def test_every_message_is_stored_once_under_its_own_name(tmp_path: Path) -> None:
    maildir = ensure_maildir(tmp_path / "m")
    spares = SpareFiles(maildir, depth=8)
    keys = [deliver_with(spares, f"Subject: {n}\r\n\r\nbody\r\n".encode()) for n in range(200)]
    spares.close()
    assert len(set(keys)) == 200
    box = mailbox.Maildir(maildir, create=False)
    assert sorted(box.get_bytes(k) for k in keys) == sorted(
        f"Subject: {n}\r\n\r\nbody\r\n".encode() for n in range(200)
    )
    assert list((maildir / "tmp").iterdir()) == []


def test_a_message_is_stored_when_tmp_was_cleaned_under_the_spares(tmp_path: Path) -> None:
    maildir = ensure_maildir(tmp_path / "m")
    spares = SpareFiles(maildir, depth=4)
    spares.take()
    wait_for_files(maildir / "tmp", 4)
    for leftover in (maildir / "tmp").iterdir():
        leftover.unlink()  # what a Maildir cleaner may do to tmp/

    key = deliver_with(spares, b"Subject: kept\r\n\r\nbody\r\n")

    assert (maildir / "new" / key).read_bytes() == b"Subject: kept\r\n\r\nbody\r\n"
    spares.close()


def test_after_close_messages_are_still_stored(tmp_path: Path) -> None:
    maildir = ensure_maildir(tmp_path / "m")
    spares = SpareFiles(maildir)
    spares.close()
    key = deliver_with(spares, b"Subject: late\r\n\r\n")
    assert (maildir / "new" / key).read_bytes() == b"Subject: late\r\n\r\n"
    assert list((maildir / "tmp").iterdir()) == []


def test_only_the_directories_made_are_made_private(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    old_umask = os.umask(0o022)
    try:
        ensure_maildir(existing / "a" / "b")
    finally:
        os.umask(old_umask)
    assert existing.stat().st_mode & 0o777 == 0o755
    for made in (existing / "a", existing / "a" / "b", existing / "a" / "b" / "tmp"):
        assert made.stat().st_mode & 0o777 == 0o700, made
