"""Reply, reply-all and forward: a :class:`~tuimail.message.Draft` from a message's bytes.

The message is a captured one (the sandbox's Maildir) or a sent one
(``sent/``): either way outside text, possibly hostile. So its headers are
read raw and decoded here (RFC 2047), and every value that reaches the draft
is one the core's checks accept: addresses through
:func:`tuimail.addresses.parse_address` (one that does not pass is left out
and listed in :attr:`Original.skipped`, never guessed at), text with its
control characters (a CR or LF decoded from an encoded word among them)
turned into spaces, every value cut to a bound, message ids matched whole.
A message of any size or shape gives a draft or a :class:`ReplyError`,
never a header the user did not see.

All of it is pure computation on bytes the caller read (off the UI loop);
:func:`write_forward_attachment` alone writes a file.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email import errors as email_errors
from email import policy as email_policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tuimail.addresses import (
    AddressError,
    ParsedAddress,
    decoded_forms,
    header_text_problem,
    is_control_char,
    mailbox_text,
    parse_address,
    parse_address_list,
    split_address_list,
)
from tuimail.errors import TuimailError
from tuimail.message import MAX_MESSAGE_BYTES, Draft

if TYPE_CHECKING:
    from tuimail.profiles import Profile

#: Characters of a decoded header value kept (a subject, a name); the rest is cut.
MAX_TEXT = 400
#: Addresses read from one header at most.
MAX_ADDRESSES = 100
#: Message ids kept in References (the first and the newest, as RFC 5322 suggests).
MAX_REFERENCES = 20
#: Characters of the original's text quoted or forwarded inline at most.
MAX_QUOTED = 512 * 1024
#: Characters of one raw header value read at most.
MAX_RAW_HEADER = 16 * 1024
_MSG_ID_RE = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")
_REPLY_PREFIX_RE = re.compile(r"^\s*(?:re|aw|sv|antw)(?:\[\d+\])?\s*:", re.IGNORECASE)
_FORWARD_PREFIX_RE = re.compile(r"^\s*(?:fwd?|wg|tr)\s*:", re.IGNORECASE)
_FILE_NAME_UNSAFE = re.compile(r"[^\w .,+-]+")


class ReplyError(TuimailError, ValueError):
    """The bytes are not a message a reply or forward can be made from; the message says why."""


@dataclass(frozen=True)
class Original:
    """What a reply or a forward needs of a message: decoded, checked, bounded."""

    sender: tuple[ParsedAddress, ...]
    reply_to: tuple[ParsedAddress, ...]
    to: tuple[ParsedAddress, ...]
    cc: tuple[ParsedAddress, ...]
    subject: str
    date: str
    message_id: str
    references: tuple[str, ...]
    text: str
    #: The parts of the message other than its text (attachments), by name or type.
    other_parts: tuple[str, ...] = ()
    #: Addresses the message holds that tuimail's checks refuse, escaped (left out).
    skipped: tuple[str, ...] = field(default_factory=tuple)
    raw: bytes = field(default=b"", repr=False, compare=False)


def read_original(data: bytes) -> Original:
    """Read a message's bytes for a reply or forward; raises :class:`ReplyError`."""
    if len(data) > 2 * MAX_MESSAGE_BYTES:
        raise ReplyError("the message is too large to reply to")
    heads = BytesHeaderParser(policy=email_policy.compat32).parsebytes(data)
    if not heads.keys():
        raise ReplyError("the file holds no mail headers")
    skipped: list[str] = []

    def addresses(name: str) -> tuple[ParsedAddress, ...]:
        found: list[ParsedAddress] = []
        for value in _raw_all(heads, name):
            found += mailboxes_of(value, skipped)
        return tuple(_unique(found))[:MAX_ADDRESSES]

    message_id = _first_id(_raw(heads, "message-id"))
    references = _ids(_raw(heads, "references")) or _ids(_raw(heads, "in-reply-to"))[:1]
    text, others = _text_of(data)
    return Original(
        sender=addresses("from"),
        reply_to=addresses("reply-to"),
        to=addresses("to"),
        cc=addresses("cc"),
        subject=_subject_text(_raw(heads, "subject")),
        date=clean_text(_raw(heads, "date")),
        message_id=message_id,
        references=tuple(references),
        text=text,
        other_parts=others,
        skipped=tuple(skipped),
        raw=data,
    )


def own_addresses(mailboxes: Iterable[str]) -> set[str]:
    """The addr-specs (lowercase) of the user's own addresses, from each profile's From.

    Texts that are not addresses (a profile without one) are left out.
    """
    own = set()
    for text in mailboxes:
        with contextlib.suppress(AddressError):
            own.add(parse_address(text).addr_spec.lower())
    return own


def own_addresses_of(profiles: Iterable[Profile]) -> set[str]:
    """The user's own addr-specs (lowercase): every profile's From address and its aliases.

    An alias is an address the user sends from and receives at (a profile's
    ``aliases``), so a reply-all leaves it out as it leaves out From.
    """
    profiles = list(profiles)
    own = own_addresses(p.from_address for p in profiles if p.from_address)
    for profile in profiles:
        with contextlib.suppress(AddressError):
            own.update(a.addr_spec.lower() for a in parse_address_list(profile.aliases))
    return own


def reply(original: Original, own: Iterable[str] = ()) -> Draft:
    """A reply to the sender: To from Reply-To (or From), ``Re:`` once, quoted text.

    A message the user sent (its From is one of ``own``, as in ``sent/``) is
    answered to its recipients instead: replying to oneself is never meant.
    """
    mine = {address.lower() for address in own}
    to = _reply_targets(original, mine)
    return _reply_draft(original, to, [], mine)


def reply_all(original: Original, own: Iterable[str] = ()) -> Draft:
    """A reply to everyone: the sender in To, the other To and Cc in Cc.

    The user's own addresses (``own``: every profile's, lowercase addr-specs)
    are removed, and nobody is named twice.
    """
    mine = {address.lower() for address in own}
    to = _reply_targets(original, mine)
    taken = {a.addr_spec.lower() for a in to} | mine
    cc = []
    for address in (*original.to, *original.cc):
        key = address.addr_spec.lower()
        if key not in taken:
            taken.add(key)
            cc.append(address)
    return _reply_draft(original, to, cc, mine)


def forward(original: Original, *, attachment: Path | None = None) -> Draft:
    """A forward: ``Fwd:`` once, and the original inline below its headers, or attached.

    With ``attachment`` (the original's bytes written by
    :func:`write_forward_attachment`), the body is left for the user's words
    and the message goes as a file; otherwise its text is inline, after a
    block of its From, Date, Subject, To and Cc. Inline, the original's other
    parts are named at the end, not carried.
    """
    subject = original.subject
    if not _FORWARD_PREFIX_RE.match(subject):
        subject = f"Fwd: {subject}" if subject else "Fwd:"
    if attachment is not None:
        return Draft(subject=subject, attachments=[attachment])
    lines = ["", "", "---------- Forwarded message ----------"]
    block = [
        ("From", _shown_list(original.sender)),
        ("Date", original.date),
        ("Subject", original.subject),
        ("To", _shown_list(original.to)),
        ("Cc", _shown_list(original.cc)),
    ]
    lines += [f"{name}: {value}" for name, value in block if value]
    lines += ["", original.text.rstrip("\n")]
    if original.other_parts:
        lines += ["", "[not forwarded: " + ", ".join(original.other_parts) + "]"]
    return Draft(subject=subject, body="\n".join(lines) + "\n")


def forwards_dir() -> Path:
    """Where the messages forwarded as attachments are written (the data dir's ``forwarded/``).

    Kept in the data dir, as a draft's files must be: the draft can be sent
    after a restart, and the outbox reads the file only when it is queued.
    """
    from tuimail import paths

    return paths.data_dir() / "forwarded"


def write_forward_attachment(original: Original, directory: Path) -> Path:
    """Write the original's bytes into ``directory`` as ``<subject>.eml``; returns the path.

    For :func:`forward` with an attachment. The name is made from the subject
    with only safe characters; a taken name gets ``-2``, ``-3``... File I/O:
    call it in a worker.
    """
    from tuimail import paths

    paths.ensure_private_dir(directory)
    stem = _FILE_NAME_UNSAFE.sub("_", original.subject)[:60].strip(" ._") or "message"
    for number in range(1, 1000):
        path = directory / (f"{stem}.eml" if number == 1 else f"{stem}-{number}.eml")
        try:
            with open(path, "xb") as file:
                file.write(original.raw)
        except FileExistsError:
            continue
        path.chmod(0o600)
        return path
    raise ReplyError(f"no free file name for the forwarded message in {directory}")


def clean_text(value: str) -> str:
    """One line of text: controls (CR, LF, ESC...) as spaces, runs of space squeezed, cut."""
    text = "".join(" " if is_control_char(ch) or ch == "\0" else ch for ch in value)
    text = " ".join(text.split())
    text = "".join(ch for ch in text if not "\ud800" <= ch <= "\udfff")
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _reply_targets(original: Original, mine: set[str]) -> list[ParsedAddress]:
    if original.sender and all(a.addr_spec.lower() in mine for a in original.sender):
        ours = [a for a in original.to if a.addr_spec.lower() not in mine]
        if ours:
            return _unique(ours)
    return _unique(list(original.reply_to or original.sender))


def _reply_draft(
    original: Original, to: Sequence[ParsedAddress], cc: Sequence[ParsedAddress], mine: set[str]
) -> Draft:
    subject = original.subject
    if not _REPLY_PREFIX_RE.match(subject):
        subject = f"Re: {subject}" if subject else "Re:"
    headers: list[tuple[str, str]] = []
    if original.message_id:
        headers.append(("In-Reply-To", original.message_id))
        references = [*original.references, original.message_id]
        if len(references) > MAX_REFERENCES:
            references = [references[0], *references[-(MAX_REFERENCES - 1) :]]
        headers.append(("References", " ".join(references)))
    # The identity that sent the message (one in Sent) or received it answers it,
    # when it is one of the user's: a thread begun from an alias goes on from it.
    received_as = next(
        (a for a in (*original.sender, *original.to, *original.cc) if a.addr_spec.lower() in mine),
        None,
    )
    return Draft(
        from_address=str(received_as) if received_as else "",
        to=[str(a) for a in to],
        cc=[str(a) for a in cc if a.addr_spec.lower() not in mine],
        subject=subject,
        body="\n\n" + _attribution(original) + "\n" + _quoted(original.text),
        headers=headers,
    )


def _attribution(original: Original) -> str:
    who = original.sender[0] if original.sender else None
    name = (who.display_name or who.addr_spec) if who else "someone"
    when = ""
    with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
        when = parsedate_to_datetime(original.date).strftime("%a, %d %b %Y %H:%M")
    return f"On {when}, {name} wrote:" if when else f"{name} wrote:"


def _quoted(text: str) -> str:
    lines = text.rstrip("\n").split("\n") if text.strip() else []
    return "".join((f"> {line}" if line else ">") + "\n" for line in lines)


def _shown_list(addresses: Sequence[ParsedAddress]) -> str:
    return ", ".join(str(a) for a in addresses)


def _raw_all(heads: Message, name: str) -> list[str]:
    """Every value of header ``name`` as written, 8-bit text read as UTF-8 (RFC 6532).

    Read raw: compat32 hands a value with 8-bit bytes over as a Header of an
    unknown charset, whose text has lost them (``Café`` would read ``Caf??``).
    """
    wanted = name.lower()
    found = [
        _utf8(value[:MAX_RAW_HEADER]) for key, value in heads.raw_items() if key.lower() == wanted
    ]
    return found[:MAX_ADDRESSES]


def _utf8(value: str) -> str:
    """A raw header value read with surrogate escapes, its bytes decoded as UTF-8."""
    if value.isascii():
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _raw(heads: Message, name: str) -> str:
    values = _raw_all(heads, name)
    return values[0] if values else ""


def _decoded(value: str) -> str:
    """RFC 2047 encoded words decoded, as a reader shows them; the raw text if that fails."""
    if "=?" not in value:
        return value
    failures = (email_errors.HeaderParseError, LookupError, UnicodeError, ValueError)
    with contextlib.suppress(*failures):
        return str(make_header(decode_header(value)))
    return value


def _subject_text(raw: str) -> str:
    """The subject as a reader shows it, one line that the core's checks take.

    An encoded word left open (``=?utf-8?q?=0A``) is not decoded by
    :func:`_decoded`, but the email package's reader decodes it, to a line
    break the core then refuses in the reply's Subject: so such a value is
    taken as that reader shows it, its control characters made spaces.
    """
    text = clean_text(_decoded(raw))
    if header_text_problem(text):
        text = clean_text(decoded_forms(text)[-1])
    return text


def mailboxes_of(value: str, skipped: list[str]) -> list[ParsedAddress]:
    """The mailboxes of one raw header, each checked; refused ones noted in ``skipped``."""
    found = []
    unfolded = " ".join(value.replace("\r", " ").replace("\n", " ").split())
    for item in split_address_list(unfolded)[:MAX_ADDRESSES]:
        name, spec = _name_and_spec(item)
        try:
            address = parse_address(spec)
        except AddressError:
            skipped.append(clean_text(item).encode("unicode_escape").decode("ascii")[:200])
            continue
        name = _decoded(name)
        if any(is_control_char(ch) or ch == "\0" for ch in name):
            name = ""  # a name hiding a line break or an escape sequence is not shown at all
        name = clean_text(name)
        if name and name != address.addr_spec:
            with contextlib.suppress(AddressError):
                address = parse_address(mailbox_text(name, address.addr_spec))
        found.append(address)
    return found


def _name_and_spec(item: str) -> tuple[str, str]:
    """``Name <spec>`` split at its last ``<``; a bare spec has no name."""
    start = item.rfind("<")
    end = item.rfind(">")
    if start == -1 or end < start:
        return "", item.strip()
    name = item[:start].strip()
    if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    return name, item[start + 1 : end].strip()


def _ids(value: str) -> list[str]:
    return _MSG_ID_RE.findall(value)[: 10 * MAX_REFERENCES]


def _first_id(value: str) -> str:
    found = _ids(value)
    return found[0] if found else ""


def _unique(addresses: Iterable[ParsedAddress]) -> list[ParsedAddress]:
    seen: set[str] = set()
    unique = []
    for address in addresses:
        key = address.addr_spec.lower()
        if key not in seen:
            seen.add(key)
            unique.append(address)
    return unique


def _text_of(data: bytes) -> tuple[str, tuple[str, ...]]:
    """The message's plain text (or a note that it has none), and its other parts."""
    try:
        message = BytesParser(policy=email_policy.default).parsebytes(data)
    except Exception:  # the email package raises many kinds on hostile input
        return "[the message could not be read]", ()
    assert isinstance(message, EmailMessage)
    from tuimail.part_headers import oversized_part_headers

    try:
        problem = oversized_part_headers(list(message.walk()))
    except RecursionError:
        problem = "its parts are nested too deeply"
    if problem:
        # Reading such headers takes minutes (tuimail/part_headers.py says why).
        return f"[the message could not be read: {problem}]", ()
    text = ""
    body = None
    with contextlib.suppress(Exception):
        body = message.get_body(preferencelist=("plain",))
    if body is not None:
        text = _part_text(body)
    elif message.get_content_maintype() != "multipart":
        text = "[the message has no plain text]"
    else:
        text = "[the message has no plain text part]"
    others = []
    with contextlib.suppress(Exception):
        for part in message.walk():
            if part is body or part.is_multipart():
                continue
            name = clean_text(part.get_filename() or "") or part.get_content_type()
            others.append(name[:100])
            if len(others) >= MAX_ADDRESSES:
                break
    return text, tuple(others)


def _part_text(part: Message) -> str:
    text = ""
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
        text = content if isinstance(content, str) else ""
    except Exception:  # an unknown charset, a broken encoding
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            text = payload.decode("utf-8", errors="replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "")
    text = "".join(ch for ch in text if not "\ud800" <= ch <= "\udfff")
    if len(text) > MAX_QUOTED:
        text = text[:MAX_QUOTED] + "\n[the rest of the message is not quoted]"
    return text
