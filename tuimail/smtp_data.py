"""Reading SMTP message data in blocks, with aiosmtpd's limits and answers.

aiosmtpd reads message data one line at a time: a ``readuntil`` call, a log
call and a list append for each of a message's lines. That loop was the
largest part of a bare aiosmtpd server's CPU per message
(``benchmarks/bench_sandbox.py --cprofile``), and the sandbox pays it too.
Here the stream is read up to the final dot in a few large blocks, and each
block is checked with bytes methods that run in C.

What a client sees is the same as from aiosmtpd: the same bytes stored
(dot-unstuffed per line, RFC 5321 4.5.2), a line longer than
``line_limit`` bytes with its CRLF answered with 500, more than
``size_limit`` bytes of data answered with 552, whichever came first in the
stream, and everything after the first problem read and dropped, so memory
stays bounded.
"""

from __future__ import annotations

import asyncio
import enum

CRLF = b"\r\n"
#: What ends message data (RFC 5321 4.1.1.4): a line with a lone dot.
FINAL_DOT = b"\r\n.\r\n"


class DataState(enum.Enum):
    """Where the data stands; the first problem decides the reply."""

    NOMINAL = "nominal"
    TOO_LONG = "a line is too long"
    TOO_MUCH = "the message is too large"


class MessageData:
    """Collects message data block by block; blocks may end inside a line.

    The checks follow aiosmtpd's line loop exactly, including which problem
    wins when one line causes both: a line with more than ``line_limit``
    bytes before its CRLF is too long before it is counted; a shorter one is
    counted (and may make the message too large) before its length is
    checked with the CRLF.
    """

    def __init__(self, line_limit: int, size_limit: int | None) -> None:
        self.line_limit = line_limit
        self.size_limit = size_limit or None
        self.state = DataState.NOMINAL
        self._parts: list[bytes] = []
        #: Bytes of complete lines so far, CRLFs and stuffing dots included.
        self._counted = 0
        #: Bytes of the line not yet ended.
        self._open_line = 0
        #: An unended line longer than this is too long whatever follows; one
        #: byte shorter, its last byte may be the CR of its CRLF.
        self._open_line_limit = line_limit + 1

    def add(self, block: bytes) -> None:
        if self.state is not DataState.NOMINAL:
            return  # read and dropped, as aiosmtpd does after the first problem
        pieces = block.split(CRLF)
        last = len(pieces) - 1
        longest = max(map(len, pieces[:last]), default=0)
        first = self._open_line + len(pieces[0]) if last else 0
        open_line = len(pieces[last]) + (self._open_line if not last else 0)
        complete = self._open_line + len(block) - open_line
        if (
            max(longest + len(CRLF), first + len(CRLF) if last else 0) <= self.line_limit
            and open_line <= self._open_line_limit
            and (self.size_limit is None or self._counted + complete <= self.size_limit)
        ):
            self._parts.append(block)
            self._counted += complete
            self._open_line = open_line
            return
        self._check_lines(pieces)

    def _check_lines(self, pieces: list[bytes]) -> None:
        """The slow path, for a block with a problem: which comes first, line by line."""
        for index, piece in enumerate(pieces[:-1]):
            content = len(piece) + (self._open_line if index == 0 else 0)
            if content > self.line_limit:
                self._fail(DataState.TOO_LONG)
                return
            self._counted += content + len(CRLF)
            if self.size_limit is not None and self._counted > self.size_limit:
                self._fail(DataState.TOO_MUCH)
                return
            if content + len(CRLF) > self.line_limit:
                self._fail(DataState.TOO_LONG)
                return
        if len(pieces) > 1:
            self._open_line = 0
        self._open_line += len(pieces[-1])
        if self._open_line > self._open_line_limit:
            self._fail(DataState.TOO_LONG)

    def _fail(self, state: DataState) -> None:
        self.state = state
        self._parts.clear()

    def content(self) -> bytes:
        """The message as stored: the data with each line's stuffing dot removed."""
        data = b"".join(self._parts)
        if data.startswith(b"."):
            data = data[1:]
        return data.replace(b"\r\n.", CRLF)


async def read_message_data(reader: asyncio.StreamReader, data: MessageData) -> None:
    """Read from ``reader`` up to and including the final dot into ``data``.

    Most reads run to the next CRLF.CRLF or to the reader's limit. Bytes that
    could begin the final dot are held back until the next bytes settle it;
    so is the DATA command's own CRLF, the start of a final dot that opens
    the data. Bytes after the final dot (a pipelining client's next commands)
    stay in the reader. A connection lost meanwhile cancels the task reading
    it, as aiosmtpd arranges.
    """
    held = CRLF  # read, not given to ``data``, a proper prefix of FINAL_DOT
    held_is_data = False  # the first CRLF is the DATA command's
    while True:
        if held:
            rest = FINAL_DOT[len(held) :]
            following = await reader.readexactly(len(rest))
            if following == rest:
                if held_is_data:
                    data.add(CRLF)  # the last line's end
                return
            # Not the final dot; at most five bytes, so it cannot hold a whole one.
            combined = held + following
            keep = _final_dot_prefix(combined)
            data.add(combined[0 if held_is_data else len(held) : len(combined) - keep])
            held, held_is_data = combined[len(combined) - keep :], True
            continue
        try:
            block = await reader.readuntil(FINAL_DOT)
        except asyncio.LimitOverrunError as overrun:
            # No final dot within the reader's limit: take what cannot end one.
            block = await reader.read(overrun.consumed)
            keep = _final_dot_prefix(block)
            data.add(block[: len(block) - keep])
            held, held_is_data = block[len(block) - keep :], True
            continue
        data.add(block[: -len(FINAL_DOT) + len(CRLF)])
        return


def find_data_end(buffer: bytes | bytearray, *, at_start: bool = False) -> tuple[int, int | None]:
    """How much of ``buffer`` is message data, and where its final dot ends, if there.

    ``buffer`` holds message data not looked at yet; ``at_start`` says it
    begins the data, straight after the DATA command's CRLF, where a lone dot
    is already the final dot. Returns ``(data, end)``: with the final dot in
    ``buffer``, ``data`` counts the bytes before it (the last line's CRLF
    included) and ``end`` those up to and including it; without, ``data``
    counts the bytes that cannot be part of a final dot, and ``end`` is None.
    """
    lone_dot = FINAL_DOT[len(CRLF) :]
    if at_start:
        if buffer.startswith(lone_dot):
            return 0, len(lone_dot)
        if lone_dot.startswith(buffer):
            return 0, None  # too few bytes to tell
    found = buffer.find(FINAL_DOT)
    if found != -1:
        return found + len(CRLF), found + len(FINAL_DOT)
    return len(buffer) - _final_dot_prefix(buffer), None


def _final_dot_prefix(block: bytes | bytearray) -> int:
    """Length of the longest end of ``block`` that could begin a final dot."""
    for length in range(len(FINAL_DOT) - 1, 0, -1):
        if block.endswith(FINAL_DOT[:length]):
            return length
    return 0
