"""The sandbox reads message data in blocks and answers exactly as aiosmtpd does.

Each stream below goes, byte for byte, to a stock aiosmtpd server and to the
sandbox, sent in pieces of varying size; both must give the same reply codes
and keep the same bytes. The block reader is also checked alone, on random
streams cut at random places.
"""

from __future__ import annotations

import asyncio
import mailbox
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.smtpservers import ServerThread, Sink
from tuimail.sandbox import Sandbox, SandboxConfig
from tuimail.smtp_data import DataState, MessageData, read_message_data

SIZE_LIMIT = 5000
LINE_LIMIT = 1001  # aiosmtpd's line_length_limit, CRLF included
RANDOM_SIZE_LIMIT = 1500
ENVELOPE = b"EHLO client.test\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"


def line(length: int, fill: bytes = b"x") -> bytes:
    """A line of ``length`` bytes, its CRLF included."""
    return fill * (length - 2) + b"\r\n"


def padding(total: int) -> bytes:
    """Short lines adding up to exactly ``total`` (at least 100) bytes."""
    count, rest = divmod(total, 100)
    return line(100) * (count - 1) + line(100 + rest)


STREAMS: dict[str, bytes] = {
    "plain": b"Subject: hi\r\n\r\nbody\r\n.\r\n",
    "empty message": b".\r\n",
    "only an empty line": b"\r\n.\r\n",
    "dot-stuffed lines": b"..\r\n...x\r\n.a\r\nmid.dle\r\n..\r\n.\r\n",
    "stuffed first line": b"..first\r\nsecond\r\n.\r\n",
    "a dot line that is not the end": b"a\r\n.x\r\n. \r\n.\r\r\n.\r\n",
    "bare CR and LF": b"a\rb\nc\r\r\n\n.\n\r\n.\r\n",
    "NUL and 8-bit": b"nul\x00byte \xc3\xa9\xff\r\n.\r\n",
    "CR LF split oddly": b"x\r\r\n\r\n\r\r\n.\r\n",
    **{
        f"line of {n} bytes": line(n) + b"next\r\n.\r\n"
        for n in (998, 999, 1000, 1001, 1002, 1003, 1004, 1005, 2500)
    },
    "long line at the end": b"a\r\n" + line(1003) + b".\r\n",
    "long line first": line(1500) + b".\r\n",
    "just under the size limit": padding(SIZE_LIMIT) + b".\r\n",
    "one byte over the size limit": padding(SIZE_LIMIT + 1) + b".\r\n",
    "over the size limit, then a long line": padding(SIZE_LIMIT + 50) + line(1500) + b".\r\n",
    "a long line, then over the size limit": line(1500) + padding(SIZE_LIMIT) + b".\r\n",
    # The same line crosses the size limit and is too long: which answer wins
    # depends on whether it is over the limit before its CRLF.
    **{
        f"line of {n} crossing the size limit": padding(SIZE_LIMIT - 500) + line(n) + b".\r\n"
        for n in (1002, 1003, 1004, 1500)
    },
    "many short lines": b"".join(line(3) for _ in range(1500)) + b".\r\n",
    "a larger message": padding(4000) + b".\r\n",
}
AFTER_DATA = b"NOOP\r\nMAIL FROM:<x@example.test>\r\nRSET\r\nQUIT\r\n"


def converse(port: int, stream: bytes, rng: random.Random) -> list[bytes]:
    """Send the envelope, ``stream`` and pipelined commands in random pieces; the reply codes."""
    payload = ENVELOPE + stream + AFTER_DATA
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        position = 0
        while position < len(payload):
            size = rng.choice([1, 2, 3, 5, 64, 700, 1001, 1003, 4096])
            sock.sendall(payload[position : position + size])
            position += size
            if rng.random() < 0.2:
                time.sleep(0.001)
        received = b""
        while data := sock.recv(65536):
            received += data
    return [reply[:3] for reply in received.split(b"\r\n") if reply[3:4] != b"-" and reply]


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Sink, int, Path]]:
    """A stock aiosmtpd server and the sandbox, with the same size limit."""
    maildir = tmp_path_factory.mktemp("data") / "maildir"
    sink = Sink()
    with ServerThread() as servers:
        aiosmtpd_port = servers.smtp(sink, data_size_limit=SIZE_LIMIT)
        sandbox = Sandbox(
            SandboxConfig(port=0, maildir=maildir, sessions_dir=maildir.parent / "sessions",
                          size_limit=SIZE_LIMIT)
        )  # fmt: skip
        asyncio.run_coroutine_threadsafe(sandbox.start(), servers.loop).result(10)
        yield aiosmtpd_port, sink, sandbox.port, maildir
        asyncio.run_coroutine_threadsafe(sandbox.stop(grace=1), servers.loop).result(10)


@pytest.mark.parametrize("name", list(STREAMS))
def test_the_sandbox_answers_and_stores_as_aiosmtpd(
    two_servers: tuple[int, Sink, int, Path], name: str
) -> None:
    aiosmtpd_port, sink, sandbox_port, maildir = two_servers
    box = mailbox.Maildir(maildir, create=False)
    for seed in range(3):
        sink.messages.clear()
        box_keys = set(box.iterkeys())
        expected = converse(aiosmtpd_port, STREAMS[name], random.Random(seed))
        got = converse(sandbox_port, STREAMS[name], random.Random(seed + 100))
        assert got == expected, name
        new_keys = set(box.iterkeys()) - box_keys
        assert [box.get_bytes(key) for key in new_keys] == [m.content for m in sink.messages]


def test_the_codes_are_the_ones_aiosmtpd_gives(two_servers: tuple[int, Sink, int, Path]) -> None:
    """Guards the comparison itself: each kind of stream meets the answer it should."""
    aiosmtpd_port = two_servers[0]
    rng = random.Random(1)
    answers = {
        "plain": b"250",
        "line of 1001 bytes": b"250",
        "line of 1002 bytes": b"500",
        "one byte over the size limit": b"552",
        "line of 1002 crossing the size limit": b"552",
        "line of 1004 crossing the size limit": b"500",
    }
    for name, code in answers.items():
        replies = converse(aiosmtpd_port, STREAMS[name], rng)
        assert replies[5] == code, name  # greeting, EHLO, MAIL, RCPT, 354, then this


# -- the block reader alone ----------------------------------------------------


def random_stream(rng: random.Random) -> bytes:
    """Lines of awkward bytes, then the final dot, and no final dot before it."""
    pieces = [b"a", b"b" * 7, b".", b"..", b"\r", b"\n", b"\x00", b"x" * 400, b"y" * 999]
    while True:
        lines = [
            b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
            for _ in range(rng.randint(0, 20))
        ]
        body = b"".join(content + b"\r\n" for content in lines)
        stream = body + b".\r\n"
        if (b"\r\n" + stream).find(b"\r\n.\r\n") == len(body):  # the only final dot
            return stream


async def read_in_pieces(stream: bytes, rng: random.Random) -> tuple[DataState, bytes, bytes]:
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    data = MessageData(LINE_LIMIT, RANDOM_SIZE_LIMIT)
    payload = stream + b"NEXT\r\n"

    async def feed() -> None:
        position = 0
        while position < len(payload):
            size = rng.choice([1, 2, 3, 4, 5, rng.randint(1, 1500)])
            reader.feed_data(payload[position : position + size])
            position += size
            await asyncio.sleep(0)
        reader.feed_eof()

    feeding = asyncio.create_task(feed())
    await asyncio.wait_for(read_message_data(reader, data), 5)
    await feeding
    rest = await reader.read()
    return data.state, data.content(), rest


def reference(stream: bytes, size_limit: int) -> tuple[DataState, bytes]:
    """aiosmtpd's line loop, condensed: the answer for a whole stream at once."""
    state, counted, kept = DataState.NOMINAL, 0, []
    for raw in stream.split(b"\r\n")[:-2]:  # the lines before the final dot
        content = len(raw)
        if state is DataState.NOMINAL and content > LINE_LIMIT:
            state = DataState.TOO_LONG
        counted += content + 2
        if state is DataState.NOMINAL and counted > size_limit:
            state = DataState.TOO_MUCH
        if state is DataState.NOMINAL and content + 2 > LINE_LIMIT:
            state = DataState.TOO_LONG
        kept.append(raw[1:] if raw.startswith(b".") else raw)
    if state is not DataState.NOMINAL:
        return state, b""
    return state, b"".join(part + b"\r\n" for part in kept)


def test_random_streams_cut_anywhere_read_as_one() -> None:
    rng = random.Random(20261129)
    for _ in range(1000):
        stream = random_stream(rng)
        expected = reference(stream, RANDOM_SIZE_LIMIT)
        state, content, rest = asyncio.run(read_in_pieces(stream, rng))
        assert (state, content) == expected, stream
        assert rest == b"NEXT\r\n"  # the bytes after the final dot stay for the next command


def test_only_the_data_before_a_problem_is_held() -> None:
    data = MessageData(LINE_LIMIT, 10_000)
    data.add(line(500) * 10)
    data.add(line(1500))
    assert data.state is DataState.TOO_LONG and data.content() == b""
    data.add(line(500) * 100)  # drained, not kept
    assert data.content() == b""


def test_a_line_that_never_ends_is_not_held() -> None:
    """Without a CRLF, bytes pile up only to the line limit: memory stays bounded."""
    data = MessageData(LINE_LIMIT, None)
    data.add(b"x" * 600)
    after_600 = data.state
    data.add(b"x" * 600)
    assert after_600 is DataState.NOMINAL
    assert data.state is DataState.TOO_LONG and data.content() == b""
