"""The one line framer both taps use (tuimail/line_framer.py), for any stream cut anywhere.

The wire capture (what a server sends) and the sandbox's tap (what a client
sends) frame lines through it, so its properties hold for both: every line
comes out whole however TCP splits it, and a line that never ends costs at
most :data:`~tuimail.line_framer.MAX_LINE` bytes of memory.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.properties import reproducible
from tests.test_smtp_data_properties import SIZES, split
from tuimail.line_framer import MAX_LINE, LineFramer, cut_note

LINES = st.lists(
    st.lists(st.sampled_from([b"a", b"\r", b"250-", b"\x00", b"x" * 300]), max_size=5).map(
        b"".join
    ),
    max_size=12,
)


def frame(pieces: list[bytes], limit: int = MAX_LINE) -> tuple[list[bytes], list[int]]:
    cuts: list[int] = []
    framer = LineFramer(cuts.append, limit)
    lines = []
    for piece in pieces:
        framer.feed(piece)
        while (line := framer.next_line()) is not None:
            lines.append(line)
    return lines, cuts


@reproducible()
@given(lines=LINES, sizes=SIZES)
def test_every_line_comes_out_whole_however_it_was_split(
    lines: list[bytes], sizes: list[int]
) -> None:
    stream = b"".join(line + b"\r\n" for line in lines)
    framed, cuts = frame(split(stream, sizes))
    assert framed == [line.rstrip(b"\r") for line in lines] and cuts == []


@reproducible()
@given(sizes=SIZES, over=st.integers(min_value=1, max_value=3000))
def test_an_over_long_line_keeps_its_start_and_counts_the_rest(sizes: list[int], over: int) -> None:
    """Cut when more than the limit is waiting without a line end; whole if its end came along."""
    limit = 1000
    line = b"s" * limit + b"r" * over
    framed, cuts = frame(split(line + b"\r\nnext\r\n", sizes), limit)
    assert framed[1:] == [b"next"]
    if framed[0] == line:
        assert cuts == []
    else:
        assert framed[0] == b"s" * limit and cuts == [over + len(b"\r\n")]


def test_a_line_without_an_end_past_the_limit_is_cut() -> None:
    framed, cuts = frame([b"s" * 1000, b"r" * 5, b"r\r\nnext\r\n"], 1000)
    assert framed == [b"s" * 1000, b"next"] and cuts == [8]


def test_an_unended_line_holds_no_more_than_the_limit() -> None:
    cuts: list[int] = []
    framer = LineFramer(cuts.append, 100)
    for _ in range(1000):
        framer.feed(b"z" * 1000)
        while framer.next_line() is not None:
            pass
        assert len(framer.buffer) <= 1000
    assert cuts == []  # its end has not come: nothing to report yet


def test_flush_gives_the_last_line_without_its_end_and_starts_afresh() -> None:
    cuts: list[int] = []
    framer = LineFramer(cuts.append)
    framer.feed(b"one\r\ntwo\r")
    assert framer.next_line() == b"one" and framer.next_line() is None
    assert framer.flush() == b"two" and framer.flush() is None
    framer.feed(b"s" * (MAX_LINE + 7))
    assert framer.next_line() == b"s" * MAX_LINE and framer.next_line() is None
    assert framer.flush() is None and cuts == [7]  # the skipped line ends at the flush
    framer.feed(b"fresh\r\n")
    assert framer.next_line() == b"fresh" and cuts == [7]


def test_the_cut_note_says_how_much_was_left_out() -> None:
    assert cut_note(12345) == "that line went on for 12,345 more bytes, not recorded"


def test_both_taps_cut_an_over_long_line_the_same_way() -> None:
    """The wire capture (a server's line) and the sandbox's tap (a client's) share the framer."""
    from tuimail.sandbox import ClientTap, SessionRecord
    from tuimail.transcript import ConversationRedactor, Transcript
    from tuimail.wire import WireCapture

    over = b"5" * (MAX_LINE + 10)
    capture = WireCapture(Transcript())
    record = SessionRecord(id="t", peer="p")
    tap = ClientTap(record, ConversationRedactor())
    for feed in (capture.received, tap.feed):
        feed(over[:MAX_LINE])
        feed(over[MAX_LINE:])
        feed(b"\r\n")
    for transcript in (capture.transcript, record.transcript):
        notes = [e.text for e in transcript if e.text == cut_note(12)]
        assert len(notes) == 1, [e.text[:40] for e in transcript]
