"""The largest message each profile's server accepts (its SMTP SIZE), as last seen.

A server announces that limit in its EHLO reply (``SIZE 10240000``, RFC 1870).
Whenever a session reads it from a profile's server (a send, a connection
test, a probe of the profile), it is kept here, with when it was seen, so
that before the next send Compose can show it beside the attachments' total
and warn, and ``tuimail send`` can warn on standard error. The live limit
still decides: the session refuses a larger message before MAIL
(tuimail/session.py).

One small JSON file per profile, ``server-limits/NAME.json`` in the state
dir, replaced atomically (two writers: the last one wins, a reader never sees
half a file), read with a size bound; a file that cannot be read or makes no
sense counts as nothing seen. The record names the server it was seen on, and
a profile that now points elsewhere has seen nothing. The directory keeps at
most :data:`MAX_FILES` files (profiles renamed or deleted leave theirs).

The estimates here are for the faces to compare before sending: an
attachment goes on the wire in base64 (tuimail/message.py builds with the
email package, which encodes every attachment so), four characters for three
bytes in lines of 76 and a CRLF; but a saved message (.eml, also a message
forwarded as an attachment) goes as message/rfc822, byte for byte, when its
bytes allow (``message.carried_message``): it counts as its own size. A
Markdown message also carries its HTML rendering (tuimail/markdown_body.py),
often larger than the text: :func:`body_wire_size` measures the body's parts
as the message is built (it renders: in a worker, never on the app's loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tuimail import paths
from tuimail.atomic import atomic_write_bytes
from tuimail.profiles import PROFILE_NAME_RE
from tuimail.small_files import parse_json, read_small_text

LIMITS_DIR = "server-limits"
#: A record is about 100 bytes; anything much larger is not one of ours.
MAX_FILE_BYTES = 4096
#: Files kept in the directory; the oldest beyond this are removed when one is written.
MAX_FILES = 256
#: The longest server name kept (a host name is at most 253 characters, with a port).
MAX_SERVER_CHARS = 300
#: Beyond any plausible time stamp (year 5138): larger ones overflow ``localtime``.
LATEST_TIME = 1e11
#: Beyond any limit a server means (8 PB); a larger number is not taken as one.
MAX_LIMIT = 2**53
#: How long writing the record may hold up the end of a session (a hung disk).
REMEMBER_TIMEOUT = 5.0

#: Base64 as the email package writes it: 76 characters a line, then CRLF.
BASE64_LINE = 76
#: An allowance for an attachment's own MIME headers (type, disposition with its
#: name, transfer encoding) and its boundary line.
PART_OVERHEAD = 300
#: An allowance for the message's headers and its multipart structure.
HEADERS_OVERHEAD = 2000


@dataclass(frozen=True)
class SeenLimit:
    """What a profile's server said about size, when, and which server it was.

    ``limit`` is in bytes; None when the server announced no limit (no SIZE,
    or SIZE without a number or with 0, which RFC 1870 says means none).
    """

    limit: int | None
    seen_at: float
    server: str

    def to_json(self) -> dict[str, object]:
        return {"version": 1, "limit": self.limit, "seen_at": self.seen_at, "server": self.server}


def limits_dir() -> Path:
    return paths.state_dir() / LIMITS_DIR


def server_key(host: str, port: int) -> str:
    """``host:port`` as a profile's address reads (an IPv6 address in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"{shown.lower()}:{port}"


def announced_limit(capabilities: Mapping[str, str]) -> int | None:
    """The SIZE limit in an EHLO reply's capabilities (keys in lower case), or None."""
    text = capabilities.get("size")
    if text is None:
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 16:
        return None
    value = int(text)
    return value if 0 < value <= MAX_LIMIT else None


def _file(name: str, directory: Path | None) -> Path | None:
    """The profile's file; None for a name that is no profile's (never a path)."""
    if not PROFILE_NAME_RE.fullmatch(name):
        return None
    return (directory or limits_dir()) / f"{name}.json"


def remember(
    name: str,
    server: str,
    capabilities: Mapping[str, str],
    *,
    now: float | None = None,
    directory: Path | None = None,
) -> SeenLimit | None:
    """Keep what the server of profile ``name`` announced (blocking: call it in a thread).

    Returns the record written, or None when there is nothing to keep (a
    name that is not a profile's). Raises OSError when it cannot be written.
    """
    path = _file(name, directory)
    if path is None or len(server) > MAX_SERVER_CHARS:
        return None
    seen = SeenLimit(announced_limit(capabilities), time.time() if now is None else now, server)
    paths.ensure_private_dir(path.parent)
    data = json.dumps(seen.to_json()).encode("utf-8")
    # Not fsynced: this is state that the next session rebuilds.
    atomic_write_bytes(path, data, durable=False)
    _prune(path.parent)
    return seen


def _prune(directory: Path) -> None:
    """Keep at most :data:`MAX_FILES` records: the least recently written go."""
    entries: list[tuple[float, Path]] = []
    with contextlib.suppress(OSError):
        for entry in directory.iterdir():
            if entry.suffix == ".json":
                with contextlib.suppress(OSError):
                    entries.append((entry.stat().st_mtime, entry))
    if len(entries) <= MAX_FILES:
        return
    entries.sort()
    for _mtime, entry in entries[: len(entries) - MAX_FILES]:
        with contextlib.suppress(OSError):  # another writer removed it first
            entry.unlink()


def last_seen(name: str, server: str, *, directory: Path | None = None) -> SeenLimit | None:
    """What profile ``name``'s server ``server`` last announced, or None (blocking).

    None too for a record of another server (the profile was edited since),
    and for a file that is missing, too large, not JSON or not a record.
    """
    path = _file(name, directory)
    if path is None:
        return None
    try:
        data = parse_json(read_small_text(path, MAX_FILE_BYTES))
    except (OSError, ValueError):
        return None
    seen = _record(data)
    return seen if seen is not None and seen.server == server else None


def _record(data: object) -> SeenLimit | None:
    if not isinstance(data, dict):
        return None
    limit, seen_at, server = data.get("limit"), data.get("seen_at"), data.get("server")
    if limit is not None and not (
        isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit <= MAX_LIMIT
    ):
        return None
    if not (
        isinstance(seen_at, int | float)
        and not isinstance(seen_at, bool)
        and math.isfinite(seen_at)
        and 0 <= seen_at < LATEST_TIME
    ):
        return None
    if not isinstance(server, str) or len(server) > MAX_SERVER_CHARS:
        return None
    return SeenLimit(limit, float(seen_at), server)


async def remember_off_loop(name: str, server: str, capabilities: Mapping[str, str]) -> None:
    """:func:`remember` in a thread, for a session's loop; a failure to write is no
    session's failure (the record is a convenience), so it is dropped."""
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(REMEMBER_TIMEOUT):
            await asyncio.to_thread(remember, name, server, dict(capabilities))


# -- estimates and words, shared by the faces ---------------------------------------------


def encoded_size(size: int) -> int:
    """Bytes on the wire for ``size`` bytes in base64: 4 for 3, lines of 76 and CRLF."""
    characters = 4 * math.ceil(size / 3)
    return characters + 2 * math.ceil(characters / BASE64_LINE)


@dataclass(frozen=True)
class AttachmentSize:
    """An attachment's bytes in its file, and as they go on the wire (without its part's
    headers); ``as_message``: carried as a message (message/rfc822), not in base64."""

    size: int
    wire: int
    as_message: bool


def measure_attachment(path: Path) -> AttachmentSize:
    """How large ``path`` is, and as sent (blocking: call it in a thread; raises OSError).

    A file named as a saved message (.eml) is read (at most a message's
    limit) to learn whether it goes as one, as tuimail/message.py decides;
    any other file is only looked at (a stat).
    """
    from tuimail.message import (
        MAX_MESSAGE_BYTES,
        carried_message,
        named_as_message,
        read_regular_file,
    )

    size = path.stat().st_size
    if named_as_message(path) and size <= MAX_MESSAGE_BYTES:
        try:
            data = read_regular_file(path)
        except OSError:
            data = None  # sending will say why; until then, counted as base64
        carried = None if data is None else carried_message(path, data)
        if data is not None and carried is not None:
            return AttachmentSize(len(data), len(carried), as_message=True)
    return AttachmentSize(size, encoded_size(size), as_message=False)


def estimated_message_size(body: str, attachment_sizes: Iterable[int]) -> int:
    """About how many bytes a message with this body and attachments is on the wire,
    each attachment in base64 (see :func:`estimated_wire_size`)."""
    return estimated_wire_size(body, [encoded_size(size) for size in attachment_sizes])


def estimated_wire_size(
    body: str, attachment_wire_sizes: Iterable[int], *, body_wire: int | None = None
) -> int:
    """About how many bytes a message with this body is on the wire, given each
    attachment's bytes as sent (:attr:`AttachmentSize.wire`).

    ``body_wire`` is the body's parts as :func:`body_wire_size` measured them
    (with a Markdown message's HTML part). Without it, a guess from the text
    alone: as it is, each line end a CRLF, when it is ASCII, else in an
    encoding that grows it by up to a third. Each attachment with its part's
    headers.
    """
    if body_wire is None:
        body_bytes = len(body.encode("utf-8", "replace")) + body.count("\n") - body.count("\r\n")
        body_wire = body_bytes if body.isascii() else encoded_size(body_bytes)
    attached = sum(wire + PART_OVERHEAD for wire in attachment_wire_sizes)
    return HEADERS_OVERHEAD + body_wire + attached


def body_wire_size(body: str, *, markdown: bool) -> int:
    """The bytes of the body's parts as tuimail/message.py builds them: the text,
    encoded as the email package chooses, and for a Markdown message the HTML
    alternative it adds (tuimail/markdown_body.py) with its part's headers.

    Renders the Markdown and encodes the text (time grows with the body):
    blocking, so the app calls it in a worker, never on its loop.
    """
    from email.message import EmailMessage

    from tuimail.message import BUILD_POLICY

    text = EmailMessage(policy=BUILD_POLICY)
    text.set_content(body)
    encoded = text.as_bytes()
    # Its headers are the message's own unless Markdown makes it a part: in
    # HEADERS_OVERHEAD, or in the alternative's PART_OVERHEAD below.
    size = len(encoded) - encoded.find(b"\r\n\r\n") - 4
    if markdown:
        from tuimail.markdown_body import render_html

        html = EmailMessage(policy=BUILD_POLICY)
        html.set_content(render_html(body), subtype="html")
        # With multipart/alternative's boundaries and the text part's own headers.
        size += len(html.as_bytes()) + PART_OVERHEAD
    return size


def size_words(size: int) -> str:
    """``size`` bytes for a person: ``512 bytes``, ``1.2 MB``, ``10 MB`` (powers of 1000)."""
    if size < 1000:
        return "1 byte" if size == 1 else f"{size} bytes"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        text = f"{value:.1f}" if value < 99.95 else f"{value:.0f}"
        if float(text) < 1000 or unit == "TB":
            return f"{text.removesuffix('.0')} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def age_words(seconds: float) -> str:
    """How long ago, in words: ``just now``, ``5 minutes ago``, ``2 days ago``."""
    if seconds < 60:
        return "just now"  # a clock set back counts as now
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = int(seconds // length)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    raise AssertionError("unreachable")  # pragma: no cover
