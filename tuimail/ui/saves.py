"""The app's file writes the user expects kept (a draft, the chosen theme), off the UI loop.

One thread does them one at a time, in the order they were asked for: two
saves of a draft in flight can never land out of order (the later content is
written last), and a read-modify-write of the state file is never interleaved
with another. Textual cancels every worker when the app exits and does not
wait for a worker's thread; so these writes are not workers, and the app
waits for :meth:`SerialWrites.finish` before it lets go (a draft saved on
quit is on disk when the app has stopped).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class SerialWrites:
    """A queue of writes run in one thread, first asked, first done."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tuimail-saves")

    def submit(self, write: Callable[[], T]) -> Future[T]:
        """Queue ``write``; its future ends (in the writing thread) when it did, or raised."""
        return self._thread.submit(write)

    async def finish(self) -> None:
        """Wait (without blocking the loop) until every write asked for so far is done."""
        await asyncio.wrap_future(self._thread.submit(lambda: None))

    def close(self) -> None:
        """No more writes: the thread ends once the queue is empty."""
        self._thread.shutdown(wait=False)
