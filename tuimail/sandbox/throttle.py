"""Bandwidth throttling: one direction of one connection held to a byte rate.

The sandbox plays a server on a slow link (``tuimail serve --throttle``):
the client's bytes are handed to aiosmtpd no faster than the rate (the rest
wait, with the socket's reading paused, so the kernel's buffers fill and the
client's own writes slow down as over a real slow link), and each reply goes
out in slices at the rate. What is counted is SMTP's bytes, inside TLS when
there is TLS; the TLS handshake itself is not held back.

Nothing here extends a session: the idle timeout counts from the last
command whether or not the throttle holds bytes back (see
tuimail/sandbox/protocol.py), so a throttled connection ends when any other
would, and gives back its place under the connection cap as any other does.
"""

from __future__ import annotations

import asyncio

#: Steps per second: bytes move in slices of a twentieth of the rate, so a
#: transfer looks steady to the client rather than bursty.
STEPS_PER_SECOND = 20


class Pace:
    """One direction's rate: how many bytes may go now, and when the next may."""

    def __init__(self, rate: int) -> None:
        if rate <= 0:
            raise ValueError("a throttle needs a rate above 0 bytes per second")
        self.rate = rate
        #: The loop's time when the bytes sent so far have had their time.
        self._free_at = 0.0

    @property
    def slice(self) -> int:
        """Bytes moved in one step: a twentieth of a second's worth, at least one."""
        return max(1, self.rate // STEPS_PER_SECOND)

    async def take(self, count: int) -> None:
        """Wait until ``count`` more bytes may go: the ones before them have had their time."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._free_at > now:
            await asyncio.sleep(self._free_at - now)
            now = loop.time()
        self._free_at = max(now, self._free_at) + count / self.rate


def describe(up: int, down: int) -> str:
    """The throttle in words, for a session's transcript and the start of ``serve``."""
    parts = []
    if up:
        parts.append(f"client to server {up:,} bytes/s")
    if down:
        parts.append(f"server to client {down:,} bytes/s")
    return "throttled: " + ", ".join(parts) if parts else ""
