"""How much header text of a message tuimail did not write is read: checked on raw values.

The email package reads a header value (``email.policy.default``'s header
objects) in time that grows with the square of the value's length: one
400 kB Content-Disposition took half a minute, a 600 kB one 18 s in
``tuimail inbox show``, and a long Content-Type in a part is read while the
message is parsed. So every place that reads the headers of such a message
checks the raw values first, with this one check: opening an .eml
(tuimail/eml.py), quoting a received message in a reply (tuimail/replies.py),
and showing a captured one (tuimail/inbox/mime.py: ``tuimail inbox show``
and the sandbox's message view), which parse with ``compat32`` (no header
objects, linear) to look before reading.
"""

from __future__ import annotations

from collections.abc import Iterable
from email.message import Message

from tuimail.message import MAX_HEADER_VALUE, MAX_HEADERS_TOTAL

#: The longest header field (its lines together) read: room for a value of
#: :data:`~tuimail.message.MAX_HEADER_VALUE` characters as encoded words.
MAX_OPENED_FIELD = 4 * MAX_HEADER_VALUE
#: The most header text read of one message, all fields of all parts together.
MAX_OPENED_HEAD = 4 * MAX_HEADERS_TOTAL


def _sizes(part: Message) -> tuple[int, int]:
    """The longest raw header value of ``part`` and all of them together, in characters."""
    longest = total = 0
    for _name, value in part.raw_items():
        longest = max(longest, len(value))
        total += len(value)
    return longest, total


def part_header_problem(part: Message, read: int = 0) -> tuple[str, int]:
    """Why the headers of ``part`` are too large to read, or ""; and their size.

    ``read`` is the header text of the message's parts read before this one:
    together they may be at most :data:`MAX_OPENED_HEAD`. Only raw values
    are looked at, never parsed.
    """
    longest, size = _sizes(part)
    if longest > MAX_OPENED_FIELD:
        return f"a header is longer than {MAX_OPENED_FIELD:,} bytes", size
    if read + size > MAX_OPENED_HEAD:
        return f"its headers are over {MAX_OPENED_HEAD:,} bytes; at most that is read", size
    return "", size


def oversized_part_headers(parts: Iterable[Message]) -> str:
    """Why the headers of ``parts`` (a parsed message's walk) are too large to read, or "".

    Opening an .eml and quoting a message in a reply refuse such a message
    whole; ``inbox show`` describes only the parts (:func:`part_header_problem`).
    """
    head = 0
    for part in parts:
        longest, size = _sizes(part)
        if longest > MAX_OPENED_FIELD:
            return f"a header is longer than {MAX_OPENED_FIELD:,} bytes"
        head += size
    if head > MAX_OPENED_HEAD:
        return f"its headers are {head:,} bytes; at most {MAX_OPENED_HEAD:,} are opened"
    return ""
