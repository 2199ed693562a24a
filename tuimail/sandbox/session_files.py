"""The sandbox's session files: one JSON file per session (written while it lasts, each time
it stores a message, and when it ends), pruned by count and age.

A session's file is written a moment after it stores a message, so each
message's envelope is also appended, before the 250, to the session's
journal (``SESSION.N.journal``, N the number of its first message, held
under an exclusive ``flock`` while it is open); the journal is removed once
the session's files hold what it says. A sandbox killed meanwhile leaves it:
the next start (:func:`recover`) writes the envelopes its files lack into a
``SESSION.N.json`` part, so every message the sandbox answered 250 for keeps
its envelope (Bcc recipients, the AUTH user that picks its mailbox).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuimail.atomic import atomic_write_bytes
from tuimail.paths import ensure_private_dir

#: Session files kept on disk; the oldest are removed at start-up and while running.
MAX_SESSION_FILES = 1000
#: Session files older than this are removed too.
MAX_SESSION_AGE = 7 * 24 * 3600.0
#: While running, the files are pruned after this many sessions end...
PRUNE_EVERY_SESSIONS = 50
#: ...or when a session ends this long after the last pruning.
PRUNE_EVERY_SECONDS = 60.0


@dataclass
class Versions:
    """The versions of one session's file: asked for on the loop, written in threads.

    A session's file is written while it lasts and again when it ends, each
    time by whichever thread is free: a write that runs late must not
    replace a newer one, so each carries its version and an older one is
    dropped.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    asked: int = 0
    written: int = 0

    def next(self) -> int:
        self.asked += 1
        return self.asked


#: A journal is replaced by a new one (at the session file's next writing) past this many
#: lines, so a session that never ends does not grow one file without bound; it is kept
#: open until then because making a file costs more than the write of a line
#: (benchmarks/bench_sandbox.py).
JOURNAL_MAX_LINES = 1000


@dataclass
class Journal:
    """An open session journal: its file, the descriptor that holds its lock, its lines."""

    path: Path
    fd: int
    lines: int = 0
    #: A session file it backs could not be written: it stays for the next start.
    keep: bool = False


#: One file to write: path, document, and the versions it is one of (None: always written).
Write = tuple[Path, dict[str, Any], Versions | None, int]


def write_session(
    path: Path, document: dict[str, Any], versions: Versions | None = None, version: int = 0
) -> bool:
    """Encode and write one session file (in a thread; see :meth:`~tuimail.sandbox.server.Sandbox.end_session`).

    With ``versions``, only when ``version`` is newer than the one written.
    Not fsynced, like the messages: the sandbox is a capture tool. False when
    the disk did not take it.
    """
    if versions is None:
        return _write(path, document)
    with versions.lock:
        if version > versions.written:
            if not _write(path, document):
                return False
            versions.written = version
    return True


def save(writes: list[Write], journal: Journal | None, end: bool) -> None:
    """Write a session's files (in a thread), then, with ``end``, end its journal: removed
    when every file it backs was written, else left for the next start's :func:`recover`."""
    written = all([write_session(*write) for write in writes])
    if journal is not None:
        journal.keep = journal.keep or not written
        if end:
            end_journal(journal, remove=not journal.keep)


def _write(path: Path, document: dict[str, Any]) -> bool:
    """Write the file; its directory is made again if it was removed meanwhile."""
    try:
        data = json.dumps(document, ensure_ascii=False).encode("utf-8", "replace")
        try:
            atomic_write_bytes(path, data, durable=False)
        except FileNotFoundError:
            ensure_private_dir(path.parent, tighten=False)
            atomic_write_bytes(path, data, durable=False)
    except OSError:
        return False
    return True


def open_journal(path: Path) -> Journal:
    """Create a session's journal, 0600, locked (in a thread: it makes a file)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        ensure_private_dir(path.parent, tighten=False)
        fd = os.open(path, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return Journal(path, fd)


def journal_line(number: int, authenticated_as: str, message: dict[str, Any]) -> bytes:
    """One stored message's line in the journal (written whole by one ``os.write``)."""
    entry = {"number": number, "authenticated_as": authenticated_as, "message": message}
    return json.dumps(entry, ensure_ascii=False).encode("utf-8", "replace") + b"\n"


def end_journal(journal: Journal, *, remove: bool = True) -> None:
    """Close a journal (its lock with it), removed first unless the files it backs failed."""
    if remove:
        with contextlib.suppress(OSError):
            os.unlink(journal.path)
    with contextlib.suppress(OSError):
        os.close(journal.fd)


def recover(directory: Path) -> int:
    """Give the envelopes in journals left by a killed sandbox to the session files; how
    many messages had none.

    A journal still locked is a running sandbox's (two may share a data dir)
    and is left alone. The messages a journal names that no file of its
    session lists are written as a ``SESSION.N.json`` part (the form
    :meth:`~tuimail.sandbox.server.Sandbox._write` gives the messages past
    a record's list); then the journal is removed. Never raises for a file
    it cannot read or write: that journal stays for the next start.
    """
    by_session: dict[str, list[Path]] = {}
    with contextlib.suppress(OSError):
        for path in directory.glob("*.journal"):
            by_session.setdefault(path.name.split(".", 1)[0], []).append(path)
    found = 0
    for session_id, journals in by_session.items():
        held: list[tuple[Path, int]] = []
        try:
            entries: list[dict[str, Any]] = []
            for path in sorted(journals):
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
                except OSError:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue  # open in a running sandbox
                held.append((path, fd))
                entries += _journal_entries(fd)
            listed = _listed_keys(directory, session_id)
            missing: dict[str, dict[str, Any]] = {}
            for entry in sorted(entries, key=lambda e: e["number"]):
                key = entry["message"]["key"]
                if key not in listed and key not in missing:
                    missing[key] = entry
            if missing:
                first = next(iter(missing.values()))
                number = first["number"]
                while (directory / f"{session_id}.{number}.json").exists():
                    number += 1
                document = {
                    "id": session_id,
                    "part_of": session_id,
                    "authenticated_as": first["authenticated_as"],
                    "messages": [e["message"] for e in missing.values()],
                }
                if not _write(directory / f"{session_id}.{number}.json", document):
                    continue  # the journal stays for the next start
                found += len(missing)
            for path, _fd in held:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        finally:
            for _path, fd in held:
                os.close(fd)
    return found


def _journal_entries(fd: int) -> list[dict[str, Any]]:
    """The well-formed lines of a journal (a line cut by the kill is left out)."""
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    entries = []
    for line in b"".join(chunks).splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("number"), int)
            and isinstance(entry.get("authenticated_as"), str)
            and isinstance(entry.get("message"), dict)
            and isinstance(entry["message"].get("key"), str)
        ):
            entries.append(entry)
    return entries


def _listed_keys(directory: Path, session_id: str) -> set[str]:
    """The message keys a session's file and its parts list."""
    keys: set[str] = set()
    paths = [directory / f"{session_id}.json"]
    paths += directory.glob(f"{glob.escape(session_id)}.*.json")
    for path in paths:
        try:
            document = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        messages = document.get("messages") if isinstance(document, dict) else None
        for message in messages if isinstance(messages, list) else []:
            if isinstance(message, dict) and isinstance(message.get("key"), str):
                keys.add(message["key"])
    return keys


def prune(directory: Path, keep: int, max_age: float) -> None:
    """Remove session files beyond the newest ``keep`` and those older than ``max_age`` s."""
    dated: list[tuple[float, Path]] = []
    for path in directory.glob("*.json"):
        with contextlib.suppress(OSError):
            dated.append((path.stat().st_mtime, path))
    dated.sort()
    oldest_kept = time.time() - max_age
    excess = max(0, len(dated) - keep)
    for index, (mtime, old) in enumerate(dated):
        if index < excess or mtime < oldest_kept:
            with contextlib.suppress(OSError):
                old.unlink()
