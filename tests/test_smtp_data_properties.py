"""Properties of the DATA reader and of the sandbox's tap, for any stream cut anywhere.

The block reader (:mod:`tuimail.smtp_data`) must answer and keep exactly what
aiosmtpd's line loop would, and the tap (:class:`tuimail.sandbox.ClientTap`)
must see the message end where the server does, however TCP splits the bytes.

They run as every property test does (tests/properties.py).
"""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from tests.properties import reproducible
from tests.test_smtp_data import LINE_LIMIT, RANDOM_SIZE_LIMIT, reference
from tuimail.sandbox import ClientTap, SessionRecord
from tuimail.smtp_data import MessageData, find_data_end, read_message_data
from tuimail.transcript import ConversationRedactor, Direction

#: Awkward pieces of lines: dots that need unstuffing, bare CR and LF, NUL, long runs.
PIECES = [b"a", b".", b"..", b"\r", b"\n", b"\r\n.", b"\x00", b"x" * 400, b"y" * 999]


@st.composite
def message_streams(draw: st.DrawFn) -> bytes:
    """Message data with exactly one final dot, at its end."""
    line = st.lists(st.sampled_from(PIECES), max_size=4).map(b"".join)
    lines = draw(st.lists(line, max_size=12))
    body = b"".join(content + b"\r\n" for content in lines)
    stream = body + b".\r\n"
    if (b"\r\n" + stream).find(b"\r\n.\r\n") != len(body):
        # An earlier line is a lone dot: the message ends there.
        end = (b"\r\n" + stream).find(b"\r\n.\r\n")
        stream = stream[: end + 3]
    return stream


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` in pieces of the given sizes (repeated), the last one taking the rest."""
    pieces, position, index = [], 0, 0
    while position < len(data):
        size = sizes[index % len(sizes)]
        pieces.append(data[position : position + size])
        position += size
        index += 1
    return pieces


SIZES = st.lists(st.sampled_from([1, 2, 3, 4, 5, 7, 64, 1000, 1500]), min_size=1, max_size=8)


async def read(pieces: list[bytes]) -> tuple[MessageData, bytes]:
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    data = MessageData(LINE_LIMIT, RANDOM_SIZE_LIMIT)

    async def feed() -> None:
        for piece in pieces:
            reader.feed_data(piece)
            await asyncio.sleep(0)
        reader.feed_eof()

    feeding = asyncio.create_task(feed())
    await asyncio.wait_for(read_message_data(reader, data), 5)
    await feeding
    return data, await reader.read()


@reproducible()
@given(stream=message_streams(), sizes=SIZES)
def test_the_block_reader_answers_as_aiosmtpds_line_loop(stream: bytes, sizes: list[int]) -> None:
    data, rest = asyncio.run(read(split(stream + b"NEXT\r\n", sizes)))
    assert (data.state, data.content()) == reference(stream, RANDOM_SIZE_LIMIT)
    assert rest == b"NEXT\r\n"  # what follows the final dot is the next command's


@reproducible()
@given(stream=message_streams(), sizes=SIZES)
def test_the_tap_ends_the_message_where_the_server_does(stream: bytes, sizes: list[int]) -> None:
    record = SessionRecord(id="t", peer="p")
    redactor = ConversationRedactor()
    tap = ClientTap(record, redactor)

    def server(line: str) -> None:
        redactor.server_line(line)
        tap.server_reply(line)

    server("220 ready")
    tap.feed(b"DATA\r\n")
    server("354 go ahead")
    for piece in split(stream + b"NEXT\r\n", sizes):
        tap.feed(piece)
    client = [e.text for e in record.transcript if e.direction is Direction.CLIENT]
    body = stream[: -len(b".\r\n")]
    lines = body.count(b"\n")
    summary = f"[message content: {len(body):,} bytes, {lines:,} lines] ."
    assert client == ["DATA", summary, "NEXT"]


@reproducible()
@given(stream=message_streams(), sizes=SIZES)
def test_find_data_end_agrees_with_the_block_reader(stream: bytes, sizes: list[int]) -> None:
    """Fed piece by piece, the scan the tap uses ends the data where the reader does."""
    pending = bytearray()
    counted, taken, at_start, end = 0, 0, True, None
    for piece in split(stream + b"NEXT\r\n", sizes):
        pending.extend(piece)
        data, end = find_data_end(pending, at_start=at_start)
        at_start = at_start and not data and end is None
        counted += data
        if end is not None:
            taken += end
            break
        taken += data
        del pending[:data]
    assert end is not None and counted == len(stream) - len(b".\r\n")
    assert taken == len(stream)  # the next command is left to the server
