"""Blocking work (files, locks) run in order on one thread of its own, awaited from a loop.

The outbox's attempt takes a lock, reads, writes and renames while its SMTP
session runs on the caller's event loop; a slow or hung disk must not freeze
that loop (the app's keys), yet the steps must keep their order: a write
asked for later never lands before an earlier one, and the lock is let go
only after the last of them. One worker thread gives both.

The app uses one as well, for the file writes a user expects kept (drafts,
the chosen theme, the probe history): Textual cancels its workers on exit
without waiting for their threads, so those writes go here, and the app
waits for :meth:`SerialThread.finish` before it stops.

A step, once asked for, always runs to its end: a caller cancelled while it
waits (a deadline, the app quitting) stops waiting, but the step still runs,
and so do the steps queued after it (the lock's release among them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


class SerialThread:
    """One thread running the steps given to it, first asked, first done."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def submit(self, step: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Queue ``step``; it runs after every step queued before it."""
        return self._pool.submit(step, *args, **kwargs)

    async def run(self, step: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Queue ``step`` and wait for its result; cancelling the wait never cancels the step."""
        return await self.result(self.submit(step, *args, **kwargs))

    @staticmethod
    async def result(future: Future[T]) -> T:
        """Wait for a queued step (shielded: a cancelled waiter leaves it queued)."""
        return await asyncio.shield(asyncio.wrap_future(future))

    async def finish(self) -> None:
        """Wait until every step asked for so far is done (the app waits so on exit)."""
        await self.run(_nothing)

    def close(self) -> None:
        """No more steps: the thread ends once the queued ones are done."""
        self._pool.shutdown(wait=False)

    def __enter__(self) -> SerialThread:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def _nothing() -> None:
    """The step :meth:`SerialThread.finish` queues: done once everything before it is."""
