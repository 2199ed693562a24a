"""A captured message read for people: headers, text, HTML as text, MIME tree, attachments.

Everything here comes from a client under test and may be hostile: parsing
never raises (a part the parser trips on is shown as what it is), sizes are
bounded, and attachment file names are made safe before anything is written
(:func:`safe_filename`, :func:`save_part`). Printing escapes it all again
(``terminal_text``), since a safe file name may still hold text a terminal
would obey.
"""

from __future__ import annotations

import contextlib
import email.policy
import os
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import compat32
from html.parser import HTMLParser
from pathlib import Path
from typing import Protocol

from tuimail.part_headers import oversized_part_headers, part_header_problem

#: Text of one message kept for search (the text part, or the HTML as text).
MAX_SEARCH_TEXT = 64 * 1024
#: Text shown by ``inbox show`` at most, per part.
MAX_SHOWN_TEXT = 1024 * 1024
#: Depth of the MIME tree followed (a message can nest without end).
MAX_DEPTH = 20
#: Parts listed at most.
MAX_PARTS = 500


@dataclass(frozen=True)
class Part:
    """One node of the MIME tree: depth, content type, size of its payload, file name."""

    number: int
    depth: int
    content_type: str
    size: int
    filename: str = ""
    is_attachment: bool = False
    #: Why the part's headers were not read (tuimail/part_headers.py), or "".
    unread: str = ""


@dataclass
class MessageView:
    """What a person is shown of one message."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    text: str = ""
    html_text: str = ""
    html: str = ""
    parts: list[Part] = field(default_factory=list)

    @property
    def attachments(self) -> list[Part]:
        return [p for p in self.parts if p.is_attachment]

    def header(self, name: str) -> str:
        return ", ".join(v for k, v in self.headers if k.lower() == name.lower())

    def all_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class SignedHeaders(Protocol):
    """What :func:`header_block` needs of a protection report
    (:class:`tuimail.inbox.protection_view.ProtectionReport`)."""

    def signed_value(self, name: str) -> str | None: ...


def header_block(
    names: Iterable[str], outer: Callable[[str], str], protection: SignedHeaders | None
) -> list[tuple[str, str]]:
    """The (name, value) pairs a view's header block shows, for F5, F7 and ``inbox show`` alike.

    A signed-only message with protected headers (RFC 9788) carries From, To,
    Cc and Subject inside its signed part; the copies outside are covered by
    nothing, so where the two differ the signed value is the one shown (the
    protection lines say that the outer one differs). ``outer`` gives the
    outer value ("" when absent); names with neither value are left out.
    Values are not escaped here: each face escapes what it prints.
    """
    pairs: list[tuple[str, str]] = []
    for name in names:
        signed = protection.signed_value(name) if protection is not None else None
        value = signed or outer(name)
        if value:
            pairs.append((name, value))
    return pairs


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def _header_value(raw: object) -> str:
    try:
        text = str(raw)
    except Exception:  # a header the parser cannot decode is shown as Python reads it
        text = repr(raw)
    return " ".join(text.split())[:4000]


def headers_of(message: Message) -> list[tuple[str, str]]:
    found = []
    try:
        items = message.items()
    except Exception:
        return []
    for name, raw in items[:500]:
        found.append((str(name), _header_value(raw)))
    return found


def _payload_text(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        return ""
    if not isinstance(data, bytes):
        return ""
    charset = "utf-8"
    with contextlib.suppress(Exception):
        charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", "replace")


def _filename(part: Message) -> str:
    try:
        return str(part.get_filename() or "")
    except Exception:
        return ""


def _is_attachment(part: Message) -> bool:
    try:
        disposition = (part.get_content_disposition() or "").lower()
    except Exception:
        disposition = ""
    return (
        disposition == "attachment"
        or (bool(_filename(part)) and not part.is_multipart() and disposition != "inline")
        or (
            disposition == "inline"
            and bool(_filename(part))
            and part.get_content_maintype() != "text"
        )
    )


def view(raw: bytes) -> MessageView:
    """The message's headers, first text and HTML parts, and its MIME tree.

    The message is first parsed with ``compat32`` (no header objects: quick
    whatever the headers hold) and its raw header values measured
    (tuimail/part_headers.py). When one is too long to read, in any part,
    the message is shown from that parse: its own headers as they came
    (encoded words not decoded), each cut to a few hundred characters, and
    each part whose headers are too long (or beyond the message's budget)
    listed with the reason, as an attachment whose data can still be saved,
    its headers never read.
    """
    try:
        bare = BytesParser(policy=compat32).parsebytes(raw)
        bounded = bool(oversized_part_headers(_parts(bare)))
        message = bare if bounded else parse(raw)
    except Exception:
        return MessageView(text=raw.decode("utf-8", "replace")[:MAX_SHOWN_TEXT])
    if bounded:
        headers = [(str(name), _cut(str(value))) for name, value in list(message.raw_items())[:500]]
    else:
        headers = headers_of(message)
    shown = MessageView(headers=headers)
    number = read = 0

    def walk(part: Message, depth: int) -> None:
        nonlocal number, read
        if number >= MAX_PARTS or depth > MAX_DEPTH:
            return
        number += 1
        problem, size = part_header_problem(part, read) if bounded else ("", 0)
        if problem:
            shown.parts.append(_unread(part, number, depth, problem))
        else:
            read += size
            _walk_read(shown, part, number, depth)
        if part.is_multipart():
            payload = part.get_payload()
            for child in payload if isinstance(payload, list) else []:
                if isinstance(child, Message):
                    walk(child, depth + 1)

    walk(message, 0)
    return shown


def _parts(message: Message) -> list[Message]:
    """The parts :func:`view` numbers, in its order (bounded as it is, without recursion)."""
    found: list[Message] = []
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack and len(found) < MAX_PARTS:
        part, depth = stack.pop()
        if depth > MAX_DEPTH:
            continue
        found.append(part)
        payload = part.get_payload() if part.is_multipart() else None
        children = (
            [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
        )
        stack += [(child, depth + 1) for child in reversed(children)]
    return found


#: The characters of a header value shown when the message's headers are too long to read.
_CUT_VALUE = 200


def _cut(value: str) -> str:
    shown = " ".join(value[:_CUT_VALUE].split())
    if len(value) <= _CUT_VALUE:
        return shown
    return f"{shown} … [cut: {len(value):,} characters]"


def _unread(part: Message, number: int, depth: int, problem: str) -> Part:
    """A part whose headers are too long to read: its payload's size and why, nothing parsed."""
    if part.is_multipart():
        return Part(number, depth, "multipart/mixed", 0, "", False, problem)
    data = b""
    with contextlib.suppress(Exception):
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
    return Part(number, depth, "application/octet-stream", len(data), "", True, problem)


def _walk_read(shown: MessageView, part: Message, number: int, depth: int) -> None:
    """One part whose headers may be read, added to ``shown`` as :func:`view` adds it."""
    try:
        content_type = part.get_content_type()
    except Exception:
        content_type = "application/octet-stream"
    attachment = not part.is_multipart() and _is_attachment(part)
    size = 0
    if not part.is_multipart():
        with contextlib.suppress(Exception):
            data = part.get_payload(decode=True)
            size = len(data) if isinstance(data, bytes) else 0
    shown.parts.append(Part(number, depth, content_type, size, _filename(part), attachment))
    if part.is_multipart() or attachment:
        return
    if content_type == "text/plain" and not shown.text:
        shown.text = _payload_text(part)[:MAX_SHOWN_TEXT]
    elif content_type == "text/html" and not shown.html:
        shown.html = _payload_text(part)[:MAX_SHOWN_TEXT]
        shown.html_text = html_to_text(shown.html)


def part_bytes(raw: bytes, number: int) -> bytes:
    """The decoded payload of part ``number`` (as :func:`view` numbers them); KeyError if none.

    Parsed with ``compat32``: the payload needs no header objects, and a
    part header too long to read (tuimail/part_headers.py) is never read.
    """
    message = BytesParser(policy=compat32).parsebytes(raw)
    count = 0
    found: bytes | None = None

    def walk(part: Message, depth: int) -> None:
        nonlocal count, found
        if found is not None or count >= MAX_PARTS or depth > MAX_DEPTH:
            return
        count += 1
        if count == number and not part.is_multipart():
            data = part.get_payload(decode=True)
            found = data if isinstance(data, bytes) else b""
            return
        if part.is_multipart():
            payload = part.get_payload()
            for child in payload if isinstance(payload, list) else []:
                if isinstance(child, Message):
                    walk(child, depth + 1)

    walk(message, 0)
    if found is None:
        raise KeyError(number)
    return found


class _TextOfHTML(HTMLParser):
    """HTML as plain text: blocks on their own lines, scripts and styles dropped, links shown."""

    _BLOCKS = frozenset(
        [
            "p",
            "div",
            "br",
            "tr",
            "li",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "table",
            "ul",
            "ol",
            "blockquote",
            "pre",
            "hr",
            "section",
            "article",
        ]
    )
    _DROPPED = frozenset(("script", "style", "head", "title", "template", "noscript"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._dropping = 0
        self._links: list[str] = []
        self._size = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._DROPPED:
            self._dropping += 1
        elif tag in self._BLOCKS:
            self._add("\n")
        if tag == "li":
            self._add("- ")
        if tag == "a":
            self._links.append(dict(attrs).get("href") or "")
        if tag == "img":
            alt = dict(attrs).get("alt") or ""
            self._add(f"[image{': ' + alt if alt else ''}]")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._DROPPED:
            self._dropping = max(0, self._dropping - 1)
        elif tag in self._BLOCKS:
            self._add("\n")
        if tag == "a" and self._links:
            href = self._links.pop()
            if href and not href.startswith(("#", "javascript:")):
                self._add(f" <{href}>")

    def handle_data(self, data: str) -> None:
        if not self._dropping:
            self._add(" ".join(data.split()) + (" " if data[-1:].isspace() else ""))

    def _add(self, text: str) -> None:
        if self._size < MAX_SHOWN_TEXT:
            self.out.append(text)
            self._size += len(text)


def html_to_text(html: str) -> str:
    """``html`` as text for a terminal (nothing is fetched, nothing run)."""
    parser = _TextOfHTML()
    with contextlib.suppress(Exception):  # html.parser is lenient; a crash here shows nothing
        parser.feed(html[: MAX_SHOWN_TEXT * 4])
        parser.close()
    text = "".join(parser.out)
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def search_text(raw: bytes) -> tuple[str, bool]:
    """The text indexed for search (bounded), and whether the message has attachments.

    Parsed with ``compat32``, which does not build header objects: twenty
    times faster than :func:`view` on a small message, and indexing a
    Maildir is mostly this.
    """
    try:
        message = BytesParser(policy=compat32).parsebytes(raw)
    except Exception:
        return raw.decode("utf-8", "replace")[:MAX_SEARCH_TEXT], False
    text = html = ""
    attached = False
    count = 0

    def walk(part: Message, depth: int) -> None:
        nonlocal text, html, attached, count
        count += 1
        if count > MAX_PARTS or depth > MAX_DEPTH:
            return
        if part.is_multipart():
            payload = part.get_payload()
            for child in payload if isinstance(payload, list) else []:
                if isinstance(child, Message):
                    walk(child, depth + 1)
            return
        if _is_attachment(part):
            attached = True
            return
        content_type = part.get_content_type()
        if content_type == "text/plain" and not text:
            text = _payload_text(part)[:MAX_SEARCH_TEXT]
        elif content_type == "text/html" and not html:
            html = _payload_text(part)[: MAX_SEARCH_TEXT * 4]

    with contextlib.suppress(Exception):  # what was read before a part trips the parser counts
        walk(message, 0)
    return (text or html_to_text(html))[:MAX_SEARCH_TEXT], attached


def safe_filename(name: str, fallback: str) -> str:
    """A file name from a message made safe to create in a chosen directory.

    Only the last path component is kept (``../../etc/passwd`` → ``passwd``,
    ``/abs`` → ``abs``, backslashes count as separators too), control and
    format characters (ESC, bidi overrides) are removed, leading dots are
    dropped so nothing is hidden or means "up", and the length is bounded.
    An empty result is ``fallback``.
    """
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" and ch not in "\x7f")
    name = re.split(r"[/\\]", name)[-1]
    name = name.strip().lstrip(".").strip()
    if len(name.encode()) > 200:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext) <= 16 else ""
        base = stem if dot else name
        while len((base + (("." + ext) if ext else "")).encode()) > 200:
            base = base[:-1]
        name = base + (("." + ext) if ext else "")
    return name or fallback


def save_part(directory: Path, name: str, data: bytes) -> Path:
    """Write ``data`` as ``name`` (already safe) in ``directory``, never replacing a file.

    A taken name gets ``-2``, ``-3``... before its extension; the file is
    created exclusively (``O_EXCL``, no symlink followed), mode 0600.
    """
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    for attempt in range(1, 1000):
        candidate = name if attempt == 1 else f"{stem}-{attempt}{'.' + ext if ext else ''}"
        path = directory / candidate
        try:
            fd = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
        except FileExistsError:
            continue
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        except BaseException:
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        return path
    raise FileExistsError(f"{directory / name} and 998 numbered names are taken")
