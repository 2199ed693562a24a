"""Messages as .eml files: a prepared message sent as given, and drafts to and from .eml.

A prepared message (``tuimail send --eml``, as ``sendmail`` takes one) goes
out with its headers in the order and folding it has, after the checks a
composed message gets (tuimail/message.py: every header value, also once
its encoded words are decoded; the read-back gate; the outbox's own check
of stored bytes). tuimail only removes the Bcc header (its addresses are
recipients with ``read_recipients``, as ``sendmail -t``) and adds Date and
Message-ID when they are missing.

Line ends: a file with no carriage return at all is taken as a text file of
this system (LF line ends) and given CRLF ones. In a file with CRLF line
ends, a lone LF or CR is refused: a reader and a server can disagree about
where such a line ends (SMTP smuggling), so it is never passed on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email import policy as email_policy
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from email.utils import format_datetime, localtime, make_msgid
from pathlib import Path

from tuimail.addresses import AddressError, ParsedAddress, parse_address, parse_address_list
from tuimail.atomic import atomic_write_bytes
from tuimail.message import (
    EMPTY_GROUP_RE,
    MAX_MESSAGE_BYTES,
    Draft,
    DraftInvalid,
    FieldError,
    OutgoingMessage,
    StoredMessageInvalid,
    build_message,
    check_prepared_headers,
    check_stored_message,
    draft_headers_of,
    validate_address_field,
    wire_problem,
)
from tuimail.part_headers import MAX_OPENED_FIELD, MAX_OPENED_HEAD, oversized_part_headers

#: The field that names a problem with the prepared message as a whole.
FIELD = "eml"
_HEADER_START_RE = re.compile(rb"([!-9;-~]+)[ \t]*:")
_UNFOLD_RE = re.compile(r"\r\n(?=[ \t])")


def crlf_lines(raw: bytes) -> bytes:
    """``raw`` with CRLF line ends; raises :class:`DraftInvalid` for mixed ones.

    A file without any CR has LF line ends (a file of this system) and each
    LF becomes CRLF. Otherwise every line must end with CRLF: a bare LF or a
    bare CR is refused, naming its line.
    """
    if b"\r" not in raw:
        return raw.replace(b"\n", b"\r\n")
    for match in re.finditer(rb"\r(?!\n)|(?<!\r)\n", raw):
        line = raw.count(b"\n", 0, match.start()) + 1
        what = "a bare LF" if match[0] == b"\n" else "a bare CR"
        raise DraftInvalid(
            [
                FieldError(
                    FIELD,
                    f"line {line} ends with {what} in a message with CRLF line ends; "
                    "a server and a reader could split it differently, so it is not sent",
                )
            ]
        )
    return raw


def split_headers(wire: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """The header block as (name, raw lines with their CRLF) pairs, in order, and the body.

    Raises :class:`DraftInvalid` for a line in the header block that is
    neither a header nor the continuation of one (an mbox ``From `` line, a
    missing blank line before the body), and for a message with no headers.
    """
    end = wire.find(b"\r\n\r\n")
    head, body = (wire[: end + 2], wire[end + 4 :]) if end >= 0 else (wire, b"")
    if not head.endswith(b"\r\n"):
        head += b"\r\n"  # a message of headers alone, without a last line end
    if not head.strip():
        raise DraftInvalid([FieldError(FIELD, "has no headers")])
    headers: list[tuple[str, bytes]] = []
    for number, line in enumerate(head.splitlines(keepends=True), start=1):
        if line[:1] in (b" ", b"\t") and headers:
            name, raw = headers[-1]
            headers[-1] = (name, raw + line)
            continue
        match = _HEADER_START_RE.match(line)
        if match is None:
            words = (
                "line 1 is not a header but an mbox 'From ' separator: remove it"
                if number == 1 and line.startswith(b"From ")
                else "line 1 is not a header: it starts with a byte order mark (BOM); "
                "save the file without one"
                if number == 1 and line.startswith(b"\xef\xbb\xbf")
                else f"line {number} is not a header ('Name: value'), and no blank line "
                "separates the headers from the body before it"
            )
            raise DraftInvalid([FieldError(FIELD, words)])
        if match.end() - 1 > len(match[1]):
            # Obsolete syntax (RFC 5322 section 4.5.3): the email package, and readers
            # like it, take such a line as the first of the body, so every header
            # after it would be lost.
            raise DraftInvalid(
                [
                    FieldError(
                        FIELD,
                        f"line {number} has space between the header name "
                        f"{match[1].decode('ascii')!r} and its colon; readers take it as "
                        "the start of the body: remove the space",
                    )
                ]
            )
        headers.append((match[1].decode("ascii"), line))
    return headers, body


def _value(raw: bytes) -> str:
    """A header's value: unfolded, its name and colon removed, UTF-8 decoded."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DraftInvalid([FieldError(FIELD, "a header is not valid UTF-8")]) from None
    text = _UNFOLD_RE.sub("", text)
    if text.endswith("\r\n"):
        text = text[:-2]
    return text.partition(":")[2].strip(" \t")


def build_prepared(
    raw: bytes,
    *,
    to: Sequence[str] = (),
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    read_recipients: bool = False,
) -> OutgoingMessage:
    """A prepared message (RFC 5322 bytes) made ready to send; raises :class:`DraftInvalid`.

    The recipients are ``to``, ``cc`` and ``bcc``, and with
    ``read_recipients`` also the message's To, Cc and Bcc. The envelope
    sender is the From address. The Bcc header is removed from the bytes in
    every case; Date and Message-ID are added after the other headers when
    missing. The result passes every check a composed message passes, and
    the outbox's check of stored bytes (the To and Cc addresses must be
    among the recipients), so it is refused now rather than at an attempt.
    """
    if len(raw) > MAX_MESSAGE_BYTES:
        limit = MAX_MESSAGE_BYTES // (1024 * 1024)
        raise DraftInvalid([FieldError(FIELD, f"is larger than the limit of {limit} MiB")])
    if b"\0" in raw:
        raise DraftInvalid([FieldError(FIELD, "contains a NUL byte, which mail cannot carry")])
    headers, body = split_headers(crlf_lines(raw))
    values = [(name, _value(line)) for name, line in headers]
    errors = check_prepared_headers(values)
    if errors:
        raise DraftInvalid(errors)
    lower = [name.lower() for name, _ in values]
    if lower.count("from") != 1:
        raise DraftInvalid([FieldError(FIELD, "needs exactly one From header")])
    sender = parse_address(values[lower.index("from")][1])

    recipients: list[ParsedAddress] = []
    for field_name, given in (("to", to), ("cc", cc), ("bcc", bcc)):
        recipients.extend(validate_address_field(field_name, given))
    if read_recipients:
        for name, value in values:
            # An empty Bcc (``Bcc:``) names nobody, as sendmail reads it.
            if not value.strip():
                continue
            if name.lower() in ("to", "cc", "bcc") and not EMPTY_GROUP_RE.fullmatch(value):
                recipients.extend(_addresses(name, value))
    recipients = _unique(recipients)
    if not recipients:
        where = "its To, Cc or Bcc headers" if read_recipients else "--to, --cc or --bcc"
        raise DraftInvalid([FieldError("to", f"no recipient: give one in {where}")])

    # Resent-Bcc too: neither may show the hidden recipients (sendmail removes both).
    kept = [line for name, line in headers if name.lower() not in ("bcc", "resent-bcc")]
    if "date" not in lower:
        kept.append(f"Date: {format_datetime(localtime())}\r\n".encode("ascii"))
    if "message-id" not in lower:
        kept.append(f"Message-ID: {make_msgid(domain=sender.domain)}\r\n".encode("ascii"))
    wire = b"".join(kept) + b"\r\n" + body
    # 8-bit text in a body needs only 8BITMIME (RFC 6152; the session asks for
    # it); in a header, or in an address, it needs SMTPUTF8 (RFC 6531).
    needs_utf8 = any(a.needs_smtputf8 for a in (sender, *recipients))
    problem = wire_problem(wire, utf8=needs_utf8, eight_bit=True)
    if problem and not needs_utf8 and not wire.isascii():
        needs_utf8 = True  # a header (of the message or of a part) is 8-bit
        problem = wire_problem(wire, utf8=True)
    if problem:
        raise DraftInvalid([FieldError(FIELD, f"cannot be sent as it is: {problem}")])
    try:
        check_stored_message(wire, [r.addr_spec for r in recipients])
    except StoredMessageInvalid as exc:
        words = str(exc).replace("the stored message", "the message")
        if "envelope recipients" in words:
            words += " (name it as a recipient too, or send with -t to read them from the headers)"
        raise DraftInvalid([FieldError(FIELD, words)]) from None
    message = BytesParser(policy=email_policy.SMTP).parsebytes(wire)
    assert isinstance(message, EmailMessage)
    return OutgoingMessage(message, sender, tuple(recipients), needs_utf8, wire)


def _addresses(name: str, value: str) -> list[ParsedAddress]:
    try:
        return parse_address_list(value)
    except AddressError as exc:
        raise DraftInvalid([FieldError(f"header {name!r}", str(exc))]) from None


def _unique(addresses: Sequence[ParsedAddress]) -> list[ParsedAddress]:
    seen: set[str] = set()
    unique = []
    for address in addresses:
        if address.addr_spec.lower() not in seen:
            seen.add(address.addr_spec.lower())
            unique.append(address)
    return unique


def draft_from_eml(raw: bytes, attachments_dir: Path) -> Draft:
    """An .eml file as a draft: its headers in the fields, its text as the body.

    The first text/plain body part is the body; every other part that is not
    an alternative rendering of it (the HTML of a Markdown message) is saved
    in ``attachments_dir`` (created 0700) under its own file name made safe,
    and attached from there. A message whose only text is HTML keeps the
    HTML as an attachment and starts with an empty body. Raises
    :class:`DraftInvalid` for mixed line ends (see :func:`crlf_lines`); the
    fields are checked when the draft is sent. File I/O: the app calls this
    from a worker.
    """
    wire = crlf_lines(raw)
    problem = _oversized_header(wire)
    if problem:
        raise DraftInvalid([FieldError(FIELD, problem)])
    try:
        message = BytesParser(policy=email_policy.default).parsebytes(wire)
        assert isinstance(message, EmailMessage)
        return _draft_of(message, attachments_dir)
    except RecursionError:
        # The email package walks nested parts by recursion: thousands of
        # message/rfc822 or multipart levels end it this way.
        raise DraftInvalid([FieldError(FIELD, "has parts nested too deeply to open")]) from None


def _draft_of(message: EmailMessage, attachments_dir: Path) -> Draft:
    """:func:`draft_from_eml` once parsed: the parts checked, then read and saved."""
    parts = list(message.walk())
    if len(parts) > MAX_OPENED_PARTS:
        raise DraftInvalid(
            [FieldError(FIELD, f"has {len(parts):,} parts; at most {MAX_OPENED_PARTS} are opened")]
        )
    problem = oversized_part_headers(parts)
    if problem:
        raise DraftInvalid([FieldError(FIELD, problem)])
    # What a new message does not take from this one is dropped unread: a Date or
    # Message-ID (made anew) that the email package cannot parse refuses nothing.
    for name in {n for n in message if _is_transport_field(n)} | {"date", "message-id"}:
        del message[name]
    problem = _unreadable_header(parts)
    if problem:
        raise DraftInvalid([FieldError(FIELD, problem)])
    draft = draft_headers_of(message)
    body_part = message.get_body(preferencelist=("plain",))
    if body_part is not None:
        try:
            content = body_part.get_content()
        except (LookupError, ValueError):
            # A charset Python cannot decode text with (an unknown name, or a codec
            # such as rot13 or base64): the part is kept, as an attachment, unread.
            body_part = None
        else:
            draft.body = content.replace("\r\n", "\n") if isinstance(content, str) else ""
    html_part = message.get_body(preferencelist=("html",))
    draft.markdown = (
        body_part is not None
        and html_part is not None
        and html_part is not body_part
        and _is_markdown_of(html_part, draft.body)
    )
    attachments: list[Path] = []
    skipped = {id(body_part), id(html_part)} if draft.markdown else {id(body_part)}
    for part in parts:
        if part.is_multipart() or id(part) in skipped:
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        attachments.append(_save_part(attachments_dir, part, data, len(attachments) + 1))
    draft.attachments = attachments
    return draft


#: Fields that record how a message travelled or what a receiver found (trace fields,
#: RFC 5322 section 3.6.7; Delivered-To; RFC 8601's verdicts; RFC 8617's ARC set;
#: RFC 7208's Received-SPF; a DKIM signature of those bytes, RFC 6376). A message
#: opened in Compose is a new one: they are not its own, and Resent-Bcc would show
#: a hidden recipient to all.
_TRANSPORT_FIELDS = {
    "return-path",
    "received",
    "delivered-to",
    "x-original-to",
    "authentication-results",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
    "received-spf",
    "dkim-signature",
    "domainkey-signature",
}


def _is_transport_field(name: str) -> bool:
    lower = name.lower()
    return lower in _TRANSPORT_FIELDS or lower.startswith("resent-")


def _unreadable_header(parts: Sequence[EmailMessage]) -> str:
    """Why a header of ``parts`` cannot be opened, or "".

    The email package raises IndexError, AttributeError and others (not only
    ValueError) on some hostile values (``To: b<``); each header is read once
    here, so such a file is refused in words naming the header.
    """
    for number, part in enumerate(parts):
        for name, raw in part.raw_items():
            try:
                str(part.policy.header_fetch_parse(name, raw))
            except Exception:  # the email package raises many kinds on hostile input
                where = "its" if number == 0 else "one of its parts'"
                return f"{where} {name} header cannot be read"
    return ""


def _is_markdown_of(html_part: MIMEPart, text: str) -> bool:
    """Whether ``html_part`` is tuimail's own rendering of ``text`` (a Markdown message).

    Another client's HTML beside the text is its own content: it is kept as
    an attachment, and the text is not turned into Markdown (where ``#1`` at
    a line's start is a heading and two lines one paragraph).
    """
    from tuimail.markdown_body import render_html

    try:
        html = html_part.get_content()
    except (LookupError, ValueError):
        return False
    return isinstance(html, str) and html.replace("\r\n", "\n") == render_html(text)


#: The most parts an opened .eml may have: each becomes a file (5,000 took a minute).
MAX_OPENED_PARTS = 200
#: The longest name (in characters) a saved part keeps; a longer one is shortened.
MAX_PART_NAME = 120
#: Characters no saved part's name keeps: C0 and C1 controls, DEL, path separators,
#: and the bidirectional controls that make "evil\u202etxt.exe" read as "evilexe.txt".
_UNSAFE_NAME_RE = re.compile(r"[\x00-\x1f\x7f-\x9f/\\\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _oversized_header(wire: bytes) -> str:
    """Why the header block of ``wire`` is too large to open, or "".

    The email package's reading of a header value grows with the square of
    its length: a 3 MB Subject took minutes to read before any check saw it.
    """
    end = wire.find(b"\r\n\r\n")
    head = wire if end < 0 else wire[: end + 2]
    if len(head) > MAX_OPENED_HEAD:
        return f"its headers are {len(head):,} bytes; at most {MAX_OPENED_HEAD:,} are opened"
    field = 0
    for line in head.split(b"\r\n"):
        field = field + len(line) if line[:1] in (b" ", b"\t") else len(line)
        if field > MAX_OPENED_FIELD:
            return f"a header is longer than {MAX_OPENED_FIELD:,} bytes"
    return ""


def opened_parts_dir(draft_id: str) -> Path:
    """Where the parts of an .eml opened as draft ``draft_id`` are kept, as its attachments.

    In the data dir, so the draft can still be sent after a restart; the
    palette's "Open an .eml file" and ``tuimail compose --eml`` both put them here.
    """
    from tuimail.paths import data_dir

    return data_dir() / "opened" / draft_id


#: How long (seconds) the parts of an opened .eml stay after no draft uses them:
#: ``compose --eml --print`` names files a script may still be reading.
OPENED_KEPT_FOR = 24 * 3600


def prune_opened(keep: Sequence[Path] = (), *, now: float | None = None) -> list[str]:
    """Remove what ``opened/`` and ``forwarded/`` hold that nothing uses and that is a day
    old; the names removed (folders of ``opened/``, files of ``forwarded/``).

    Each .eml opened (``compose --eml``, also with ``--print``, and the
    palette) saves its parts in a folder of its own (:func:`opened_parts_dir`),
    and a draft names the files as attachments; each message forwarded as an
    attachment (F5, F7) is written as a file into ``forwarded/``
    (:func:`tuimail.replies.forwards_dir`) and attached. Nothing else removes
    them. A folder of ``opened/`` is kept while its name is a draft's in the
    draft store (also one that cannot be read); either kind is kept while a
    draft's attachment or a path in ``keep`` (what a form holds that is not
    saved yet) is it or lies in it, and for :data:`OPENED_KEPT_FOR` after it
    last changed. While a draft cannot be read, all of ``forwarded/`` is kept
    (its files bear no draft's name, so any may be that draft's). Symbolic links are never followed: each folder must be a
    real folder, a link in it is left alone, and removal works through
    directory descriptors. When the drafts cannot be read, nothing is
    removed. File I/O: call it off the app's loop.
    """
    import os
    import time

    from tuimail.drafts import DraftStore
    from tuimail.replies import forwards_dir

    opened = opened_parts_dir("x").parent
    store = DraftStore()
    try:
        names = os.listdir(store.directory)
    except FileNotFoundError:
        names = []
    except OSError:
        return []  # which files drafts use is unknown: keep them all
    drafts: set[str] = set()
    attachments: list[Path] = list(keep)
    unreadable = False
    for name in names:
        if not name.endswith(".json"):
            continue
        drafts.add(name[: -len(".json")])
        try:
            attachments += store.load(name[: -len(".json")]).draft.attachments
        except (OSError, ValueError, KeyError, TypeError):
            unreadable = True  # it keeps its own folder of opened/ by its name
    now = time.time() if now is None else now
    removed = _prune_unused(opened, _used_in(opened, attachments) | drafts, now, folders=True)
    if unreadable:
        return removed  # a forwarded message is not named by a draft: any may be its
    forwarded = forwards_dir()
    return removed + _prune_unused(forwarded, _used_in(forwarded, attachments), now, folders=False)


def _used_in(root: Path, attachments: Sequence[Path]) -> set[str]:
    """The names of ``root``'s entries that hold (or are) one of ``attachments``."""
    import os

    roots = {Path(os.path.abspath(root)), Path(os.path.realpath(root))}
    used: set[str] = set()
    for path in attachments:
        # As written, and with links resolved: the data dir may be reached both ways.
        for form in {Path(os.path.abspath(path)), Path(os.path.realpath(path))}:
            used.update(form.parts[len(r.parts)] for r in roots if form.parent.is_relative_to(r))
    return used


def _prune_unused(root: Path, used: set[str], now: float, *, folders: bool) -> list[str]:
    """Remove ``root``'s folders (``folders``) or regular files that are not in ``used`` and
    unchanged for :data:`OPENED_KEPT_FOR`, through a descriptor, never following a link."""
    import os
    import shutil
    import stat

    try:
        descriptor = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return []  # none yet, or not a real folder (a link): nothing to remove
    wanted = stat.S_ISDIR if folders else stat.S_ISREG
    removed: list[str] = []
    try:
        with os.scandir(descriptor) as entries:
            candidates = []
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if (
                    wanted(info.st_mode)
                    and entry.name not in used
                    and now - info.st_mtime > OPENED_KEPT_FOR
                ):
                    candidates.append(entry.name)
        for name in candidates:
            try:
                if folders:
                    # With dir_fd, rmtree opens each level without following links, and
                    # refuses a folder replaced by a link since it was looked at.
                    shutil.rmtree(name, dir_fd=descriptor)
                else:  # unlink removes a link itself, never what it points to
                    os.unlink(name, dir_fd=descriptor)
            except OSError:
                continue
            removed.append(name)
    except OSError:
        pass  # the folder could not be listed: removing nothing is safe
    finally:
        os.close(descriptor)
    return removed


def _save_part(directory: Path, part: EmailMessage, data: bytes, number: int) -> Path:
    """Write one part's data to a new file in ``directory``; its name made a plain file name."""
    from tuimail.paths import ensure_private_dir

    ensure_private_dir(directory, tighten=False)
    given = part.get_filename() or f"part-{number}{_extension(part.get_content_type())}"
    name = _UNSAFE_NAME_RE.sub("_", Path(given).name).lstrip(".") or f"part-{number}"
    if len(name) > MAX_PART_NAME:
        suffix = Path(name).suffix[:16]
        name = name[: MAX_PART_NAME - len(suffix)] + suffix
    path = directory / name
    stem, suffix = path.stem, path.suffix
    counter = 2
    while path.exists():
        path = directory / f"{stem}-{counter}{suffix}"
        counter += 1
    atomic_write_bytes(path, data)
    return path


def _extension(content_type: str) -> str:
    import mimetypes

    return mimetypes.guess_extension(content_type) or ".bin"


def draft_as_eml(draft: Draft) -> bytes:
    """``draft`` as the bytes of an .eml file (CRLF), its Bcc kept as a header.

    Built as it would be sent (raises :class:`DraftInvalid` as sending would),
    then given its Bcc header back: a saved draft must keep every recipient,
    and tuimail removes Bcc again when the file is sent (``send --eml -t``).
    """
    outgoing = build_message(draft)
    wire = outgoing.to_bytes()
    bcc = validate_address_field("bcc", draft.bcc)
    if not bcc:
        return wire
    line = "Bcc: " + ", ".join(_mailbox(a) for a in bcc)
    end = wire.find(b"\r\n\r\n")
    encoding = "utf-8" if outgoing.needs_smtputf8 else "ascii"
    try:
        added = _fold(line).encode(encoding)
    except UnicodeEncodeError:
        added = _fold(line).encode("utf-8")
    return wire[: end + 2] + added + b"\r\n" + wire[end + 2 :]


def _mailbox(address: ParsedAddress) -> str:
    from email.header import Header

    from tuimail.addresses import mailbox_text

    name = address.display_name
    if name and (not name.isascii() or "=?" in name):
        # An encoded word is never quoted (RFC 2047 section 5). A long name is
        # several, folded between them with the file's own CRLF (never a bare LF).
        encoded = Header(name, "utf-8").encode(linesep="\r\n")
        return f"{encoded} <{address.addr_spec}>"
    return mailbox_text(name, address.addr_spec)


def _fold(line: str) -> str:
    """Break an address header between addresses so that no line passes 78 columns."""
    words = line.split(", ")
    lines = [words[0]]
    for word in words[1:]:
        if len(lines[-1]) + 2 + len(word) > 78:
            lines[-1] += ","
            lines.append(f" {word}")
        else:
            lines[-1] += f", {word}"
    return "\r\n".join(lines)
