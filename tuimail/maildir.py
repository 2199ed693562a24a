"""Writing into a Maildir (the reading side is the standard library's ``mailbox``).

``mailbox.Maildir.add`` always fsyncs and creates files with the process
umask; tuimail needs to choose: the outbox must fsync (a message is durable
before its first byte goes out), the sandbox need not (it is a capture tool,
and a message written but not synced survives the process). Files are 0600.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from pathlib import Path

from tuimail.atomic import fsync_dir

_counter = itertools.count()
_HOST = socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"


def ensure_maildir(path: Path) -> Path:
    for sub in ("tmp", "new", "cur"):
        (path / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def unique_name() -> str:
    """A Maildir file name: time, microseconds, pid and a counter, host (maildir(5))."""
    now = time.time()
    return f"{int(now)}.M{int(now % 1 * 1_000_000)}P{os.getpid()}Q{next(_counter)}.{_HOST}"


def deliver(maildir: Path, data: bytes, *, durable: bool, key: str | None = None) -> str:
    """Write ``data`` to ``tmp/``, then rename it into ``new/``; returns the key.

    With ``durable``, the file and the directory are fsynced before returning,
    so the message survives a power cut, not only a killed process.
    """
    key = key or unique_name()
    temporary = maildir / "tmp" / key
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(temporary)
        raise
    os.close(fd)
    os.rename(temporary, maildir / "new" / key)
    if durable:
        fsync_dir(maildir / "new")
    return key
