"""The sandbox's session files: one JSON file per ended session, pruned by count and age."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from tuimail.atomic import atomic_write_bytes

#: Session files kept on disk; the oldest are removed at start-up and while running.
MAX_SESSION_FILES = 1000
#: Session files older than this are removed too.
MAX_SESSION_AGE = 7 * 24 * 3600.0
#: While running, the files are pruned after this many sessions end...
PRUNE_EVERY_SESSIONS = 50
#: ...or when a session ends this long after the last pruning.
PRUNE_EVERY_SECONDS = 60.0


def write_session(path: Path, document: dict[str, Any]) -> None:
    """Encode and write one session file (in a thread; see :meth:`~tuimail.sandbox.server.Sandbox.end_session`).

    Not fsynced, like the messages: the sandbox is a capture tool.
    """
    with contextlib.suppress(OSError):
        data = json.dumps(document, ensure_ascii=False).encode("utf-8", "replace")
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
