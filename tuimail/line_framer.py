"""Bytes as they arrive, cut into lines, with a bound on a line that never ends.

Both taps, :mod:`tuimail.wire` (what a server sends to tuimail) and
:mod:`tuimail.sandbox.tap` (what a client sends to the sandbox), see the wire
in packets that split and join lines anywhere. A peer that never sends a line
end must not make a tap's buffer grow with it: past :data:`MAX_LINE` bytes
the line's start is given out as a line, and the rest is counted, not kept,
up to its end.
"""

from __future__ import annotations

from collections.abc import Callable

#: A line longer than this without a line end is cut: its start is kept.
MAX_LINE = 64 * 1024


def cut_note(dropped: int) -> str:
    """The words a transcript records where a cut line's rest was left out."""
    return f"that line went on for {dropped:,} more bytes, not recorded"


class LineFramer:
    """Collects bytes and gives them back one line at a time, without the line end.

    ``buffer`` holds what is not framed yet; a tap that reads something else
    than lines for a while (message data) takes it from there directly.
    ``on_cut`` is told how many bytes of an over-long line were dropped, once
    its end has come. Both taps keep the default ``limit``; it is a parameter
    so tests/test_line_framer.py can cut lines without sending 64 KiB each.
    """

    def __init__(self, on_cut: Callable[[int], object], limit: int = MAX_LINE) -> None:
        self.buffer = bytearray()
        self.limit = limit
        self._on_cut = on_cut
        #: Bytes dropped so far of the over-long line being skipped, or None.
        self._skipped: int | None = None

    def feed(self, data: bytes) -> None:
        self.buffer.extend(data)

    def next_line(self) -> bytes | None:
        """The next line (its CR LF removed) or the start of an over-long one; None: wait."""
        while True:
            end = self.buffer.find(b"\n")
            if self._skipped is not None:
                if end == -1:
                    self._skipped += len(self.buffer)
                    self.buffer.clear()
                    return None
                dropped = self._skipped + end + 1
                del self.buffer[: end + 1]
                self._skipped = None
                self._on_cut(dropped)
                continue
            if end == -1:
                if len(self.buffer) <= self.limit:
                    return None
                start = bytes(self.buffer[: self.limit])
                self._skipped = len(self.buffer) - self.limit
                self.buffer.clear()
                return start
            line = bytes(self.buffer[:end]).rstrip(b"\r")
            del self.buffer[: end + 1]
            return line

    def flush(self) -> bytes | None:
        """The stream ends here: its last line though no line end came, or None.

        For a tap whose stream is replaced under it (the plaintext before a
        TLS handshake): call it once :meth:`next_line` gives None, and the
        framer starts afresh. An over-long line being skipped ends here, and
        ``on_cut`` is told.
        """
        if self._skipped is not None:
            dropped = self._skipped + len(self.buffer)
            self._skipped = None
            self.buffer.clear()
            self._on_cut(dropped)
            return None
        line = bytes(self.buffer).rstrip(b"\r")
        self.buffer.clear()
        return line or None
