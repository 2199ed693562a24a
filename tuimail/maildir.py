"""Writing into a Maildir (the reading side is the standard library's ``mailbox``).

``mailbox.Maildir.add`` always fsyncs and creates files with the process
umask; tuimail needs to choose: the outbox must fsync (a message is durable
before its first byte goes out), the sandbox need not (it is a capture tool,
and a message written but not synced survives the process). Files are 0600.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from collections import deque
from pathlib import Path

from tuimail.atomic import fsync_dir
from tuimail.paths import ensure_private_dir

_counter = itertools.count()
_HOST = socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL


def ensure_maildir(path: Path) -> Path:
    """Create the Maildir's ``tmp``, ``new`` and ``cur`` (and any missing parent), private."""
    for sub in ("tmp", "new", "cur"):
        ensure_private_dir(path / sub, tighten=False)
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
    fd = os.open(temporary, _NEW_FILE, 0o600)
    try:
        _write_all(fd, data)
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(temporary)
        raise
    os.close(fd)
    try:
        os.rename(temporary, maildir / "new" / key)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)  # not delivered: leave no copy behind in tmp/
        raise
    if durable:
        fsync_dir(maildir / "new")
    return key


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class SpareFiles:
    """Empty files made ahead in a Maildir's ``tmp/`` by a helper thread.

    Creating a file is most of what storing a small message costs on a busy
    disk: 20 to 1,200 us of kernel CPU per file on this project's ext4 test
    machine, varying by the hour, against ~7 us on tmpfs. The sandbox stores
    on its event loop (the app's UI loop too), so it takes a file made here,
    writes it and renames it into ``new/`` under a name chosen at delivery;
    the creation ran beforehand on another core, with the GIL released.

    When none is ready the caller creates its own, so a slow or failing
    helper never delays or loses a message: it only stops saving time.
    """

    def __init__(self, maildir: Path, depth: int = 32) -> None:
        self.maildir = maildir
        self._depth = depth
        self._ready: deque[tuple[int, Path]] = deque()
        self._wanted = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def take(self) -> tuple[int, Path] | None:
        """An open, empty file in ``tmp/`` and its path, or None when none is ready."""
        if self._closed:
            return None
        try:
            spare = self._ready.popleft()
        except IndexError:
            spare = None
        if len(self._ready) <= self._depth // 2 and not self._wanted.is_set():
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._fill, name="tuimail-maildir-spares", daemon=True
                )
                self._thread.start()
            self._wanted.set()
        return spare

    def close(self, wait: float = 1.0) -> None:
        """Stop the helper; it removes the files it made that were not used."""
        self._closed = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(wait)
        else:
            self._discard()

    def _fill(self) -> None:
        temporary = self.maildir / "tmp"
        while True:
            self._wanted.wait()
            self._wanted.clear()
            while not self._closed and len(self._ready) < self._depth:
                path = temporary / unique_name()
                try:
                    fd = os.open(path, _NEW_FILE, 0o600)
                except OSError:
                    break  # the caller makes its own file and meets the error itself
                self._ready.append((fd, path))
            if self._closed:
                self._discard()
                return

    def _discard(self) -> None:
        while self._ready:
            fd, path = self._ready.popleft()
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)


def deliver_with(spares: SpareFiles, data: bytes) -> str:
    """:func:`deliver` (not durable) into a file from ``spares`` when one is ready."""
    spare = spares.take()
    if spare is None:
        return deliver(spares.maildir, data, durable=False)
    fd, temporary = spare
    try:
        _write_all(fd, data)
    except BaseException:
        os.close(fd)
        os.unlink(temporary)
        raise
    os.close(fd)
    key = unique_name()
    try:
        os.rename(temporary, spares.maildir / "new" / key)
    except FileNotFoundError:
        # Someone cleaned tmp/ under us: nothing was stored, so store afresh.
        return deliver(spares.maildir, data, durable=False)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)  # not stored: leave no copy behind in tmp/
        raise
    return key
