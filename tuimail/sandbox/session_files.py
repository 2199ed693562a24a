"""The sandbox's session files: one JSON file per session (written while it lasts, each time
it stores a message, and when it ends), pruned by count and age."""

from __future__ import annotations

import contextlib
import json
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


def write_session(
    path: Path, document: dict[str, Any], versions: Versions | None = None, version: int = 0
) -> None:
    """Encode and write one session file (in a thread; see :meth:`~tuimail.sandbox.server.Sandbox.end_session`).

    With ``versions``, only when ``version`` is newer than the one written.
    Not fsynced, like the messages: the sandbox is a capture tool.
    """
    if versions is None:
        _write(path, document)
        return
    with versions.lock:
        if version > versions.written:
            _write(path, document)
            versions.written = version


def _write(path: Path, document: dict[str, Any]) -> None:
    """Write the file; its directory is made again if it was removed meanwhile."""
    with contextlib.suppress(OSError):
        data = json.dumps(document, ensure_ascii=False).encode("utf-8", "replace")
        try:
            atomic_write_bytes(path, data, durable=False)
        except FileNotFoundError:
            ensure_private_dir(path.parent, tighten=False)
            atomic_write_bytes(path, data, durable=False)


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
