"""The sandbox's Maildir: each message written before the 250, read back by key.

A message is written to the Maildir (``tmp`` then rename into ``new``, mode
0600) before the 250 reply, so a message the sandbox acknowledged survives the
sandbox being stopped or killed. It is not fsynced (a power cut may lose the
last ones): the sandbox is a capture tool, not an MTA. The ``tmp`` files are
made ahead by a helper thread (:class:`~tuimail.maildir.SpareFiles`), because
creating a file can cost more than a whole SMTP exchange on a busy disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import mailbox
from pathlib import Path

from tuimail.errors import NotFound
from tuimail.maildir import SpareFiles, deliver, deliver_with, ensure_maildir

#: Messages up to this size are written on the event loop, into files made
#: ahead (see :class:`~tuimail.maildir.SpareFiles`); larger ones in a thread.
#: Handing a small write to a thread cost more than the write itself: the two
#: threads' GIL hand-offs stalled the loop's socket calls, and the sandbox took
#: 1,614 us of CPU a 2 KB message in a thread against 1,070 us inline
#: (benchmarks/bench_sandbox.py, tmpfs). A large write could hold the loop,
#: which in the app is also the UI's, so it still goes to a thread.
INLINE_WRITE_LIMIT = 256 * 1024


class MessageStore:
    """The Maildir at ``path``; :meth:`open` once it exists, :meth:`close` at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._maildir: mailbox.Maildir | None = None
        self._spares: SpareFiles | None = None

    def open(self) -> None:
        self._maildir = mailbox.Maildir(self.path, create=False)
        # Files made ahead by a sandbox that was killed stay in tmp/; maildir(5)
        # lets a reader remove tmp files untouched for 36 hours, as this does.
        with contextlib.suppress(OSError):
            self._maildir.clean()
        self._spares = SpareFiles(self.path)

    def close(self) -> None:
        if self._spares is not None:
            self._spares.close()

    async def keep(self, content: bytes) -> str:
        """Write one message; its key. An ``OSError`` says the disk did not take it.

        A Maildir removed while the sandbox runs (a test suite resetting it
        between runs with ``rm -rf``) is made again, and the message stored.
        """
        try:
            if len(content) <= INLINE_WRITE_LIMIT and self._spares is not None:
                return deliver_with(self._spares, content)
            return await asyncio.to_thread(deliver, self.path, content, durable=False)
        except FileNotFoundError:
            await asyncio.to_thread(ensure_maildir, self.path)
            return await asyncio.to_thread(deliver, self.path, content, durable=False)

    def read(self, key: str) -> bytes:
        """The message stored under ``key``; :class:`NotFound` when there is none."""
        assert self._maildir is not None
        try:
            return self._maildir.get_bytes(key)
        except KeyError:
            raise NotFound("message", key) from None
