"""From what the user wrote (a :class:`Draft`) to what goes on the wire.

All input validation happens here, before any connection is opened, and every
problem names its field so the CLI can say ``--to: ...`` and the compose pane
can show the error beside the right input. Nothing invalid is ever sent:

* no CR, LF or NUL in any header value, also once its RFC 2047 encoded words
  are decoded (header injection);
* only unambiguous addresses (see :mod:`tuimail.addresses`);
* Bcc goes in the envelope only;
* bodies are 7-bit clean (quoted-printable or base64 when needed), so no line
  exceeds 998 octets and no 8-bit data reaches a server that did not offer
  8BITMIME. Only a non-ASCII *address* needs SMTPUTF8, and the session checks
  the server offers it before MAIL FROM.

The address headers and every header value that is not plain ASCII are written
here, not by the email package's folder: Python 3.11 folds an address list so
that a reader can lose recipients, and writes a decoded line break raw. The
bytes are then parsed back and compared with what was meant, so a message
that would not reach its reader as typed is refused, whatever the Python
version does.
"""

from __future__ import annotations

import errno
import io
import mimetypes
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email import errors as email_errors
from email import headerregistry
from email import policy as email_policy
from email.generator import BytesGenerator
from email.header import Header, decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import Parser
from email.utils import format_datetime, localtime, make_msgid, parsedate_to_datetime
from pathlib import Path

from tuimail.addresses import (
    ENCODED_WORD,
    ENCODED_WORD_RE,
    AddressError,
    ParsedAddress,
    has_surrogates,
    header_text_problem,
    is_control_char,
    parse_address,
    parse_address_list,
    quoted_name,
)
from tuimail.errors import TuimailError
from tuimail.small_files import NotReadable, read_small_file

#: Largest message tuimail builds in memory; bigger attachments belong elsewhere.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# Building with cte_type="7bit" makes the email package pick quoted-printable
# or base64 for anything that is not short 7-bit lines.
BUILD_POLICY = email_policy.SMTP.clone(cte_type="7bit")
# refold_source="none": the headers written here (set_raw) go out as written.
WIRE_POLICY = email_policy.SMTP.clone(refold_source="none")
WIRE_POLICY_UTF8 = email_policy.SMTPUTF8.clone(refold_source="none")
#: RFC 5322's limit for a line, CRLF excluded.
MAX_LINE_OCTETS = 998
_FOLD_AT = 78
_ENCODED_WORD_MAX = 75
_ENCODED_RUN_RE = re.compile(rf"{ENCODED_WORD}(?:[ \t]+{ENCODED_WORD})*")
# A display name written as it is: atoms separated by single spaces.
_ATOM_PHRASE_RE = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+)*"
)
# Text the email package writes unchanged: printable ASCII, no encoded word.
_PLAIN_TEXT_RE = re.compile(r"[!-~](?:[ -~]*[!-~])?")

_HEADER_NAME_RE = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext; used with fullmatch
#: A header name cannot be folded; this keeps ``Name: `` inside a 78-column line.
MAX_HEADER_NAME = 76
#: The longest header value taken (in characters). Far above any real one (20
#: References are about 1,500), and a bound on the email package's folding,
#: which grows with the square of a value's length: a 3 MB Subject in an
#: opened .eml or an edited message took a quarter of an hour to build.
MAX_HEADER_VALUE = 16 * 1024
#: The most text the Subject and the extra headers carry together, for the same reason.
MAX_HEADERS_TOTAL = 64 * 1024
_HEADER_TYPES = headerregistry.HeaderRegistry()
_ATEXT_DOT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+"
_MSG_ID_RE = re.compile(rf"<{_ATEXT_DOT}@(?:{_ATEXT_DOT}|\[[!-Z^-~]*\])>")
#: Headers the draft's own fields set (the field has the header's name).
_DRAFT_HEADERS = {"from", "to", "cc", "bcc", "reply-to", "subject"}
#: Headers built from the content.
_CONTENT_HEADERS = {
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
}
_OVERRIDABLE_HEADERS = {"date", "message-id"}
#: An address group with no member, ``undisclosed-recipients:;``: the one
#: group a prepared message may have (as To when every recipient is Bcc).
EMPTY_GROUP_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\- ]+:[ \t]*;")


@dataclass(frozen=True)
class FieldError:
    """One invalid input: which field, and a sentence about it.

    ``instead`` names the draft field (``from``, ``reply-to``...) that sets
    what was given as an extra header, so each face can name its own input.
    """

    field: str
    message: str
    instead: str = ""

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class DraftInvalid(TuimailError, ValueError):
    """The draft cannot be sent as it is; ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = list(errors)


@dataclass
class Draft:
    """What the user wants to send, as typed; address fields may hold comma lists."""

    from_address: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    subject: str = ""
    body: str = ""
    attachments: list[Path] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: Send the body as ``multipart/alternative``: the text as typed, and the
    #: HTML that tuimail/markdown_body.py renders from it as Markdown.
    markdown: bool = False


@dataclass(frozen=True)
class OutgoingMessage:
    """A validated message with its envelope, ready for a session.

    The bytes are rendered once, when the message is built: a session that
    sends it (or retries it) sends exactly what was validated, and rendering
    (header folding, encoding) is not paid again per attempt. ``message`` is
    there to read; changing it does not change what is sent.
    """

    message: EmailMessage
    sender: ParsedAddress
    recipients: tuple[ParsedAddress, ...]
    needs_smtputf8: bool
    wire_bytes: bytes = field(default=b"", repr=False, compare=False)

    @property
    def envelope_sender(self) -> str:
        return self.sender.addr_spec

    @property
    def envelope_recipients(self) -> list[str]:
        return [r.addr_spec for r in self.recipients]

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def to_bytes(self) -> bytes:
        """The message as it goes after DATA (before dot-stuffing), CRLF line ends."""
        return self.wire_bytes or render(self.message, self.needs_smtputf8)


def render(message: EmailMessage, needs_smtputf8: bool) -> bytes:
    """Serialise for the wire: CRLF, folded headers, UTF-8 headers only with SMTPUTF8."""
    buffer = io.BytesIO()
    policy = WIRE_POLICY_UTF8 if needs_smtputf8 else WIRE_POLICY
    # As EmailMessage.as_bytes does, with the generator that keeps attached messages' bytes.
    _WireGenerator(buffer, mangle_from_=False, policy=policy).flatten(message)
    return buffer.getvalue()


class _WireGenerator(BytesGenerator):
    """The email package's generator, writing an attached message's bytes as they are.

    A message/rfc822 part that :func:`_attach_message` made holds the
    message's bytes (surrogate-escaped) as its payload; the stock generator
    would refuse 8-bit ones. Any other message/rfc822 part goes the stock way.
    """

    def _handle_message_rfc822(self, msg: Message) -> None:
        payload = msg._payload  # type: ignore[attr-defined]
        if isinstance(payload, str):
            self._fp.write(payload.encode("ascii", "surrogateescape"))  # type: ignore[attr-defined]
        else:
            self._handle_message(msg)  # type: ignore[attr-defined]


def validate_address_field(field_name: str, values: Sequence[str]) -> list[ParsedAddress]:
    """Parse every entry of one address field; raises :class:`DraftInvalid`."""
    parsed: list[ParsedAddress] = []
    for value in values:
        try:
            parsed.extend(parse_address_list(value))
        except AddressError as exc:
            raise DraftInvalid([FieldError(field_name, str(exc))]) from None
    return parsed


def validate_sender(value: str) -> ParsedAddress:
    """The one From address of a message; raises :class:`DraftInvalid` (field ``from``)."""
    if not value.strip():
        raise DraftInvalid([FieldError("from", "a sender address is needed")])
    try:
        return parse_address(value)
    except AddressError as exc:
        raise DraftInvalid([FieldError("from", str(exc))]) from None


def split_header(text: str) -> tuple[str, str] | None:
    """``'Name: value'`` as a (name, value) pair, or None without a colon.

    Only the split: what the name and value may hold is checked with the
    rest of the message (:func:`validate_extra_headers`, :func:`build_message`).
    """
    name, sep, value = text.partition(":")
    return (name.strip(), value.strip()) if sep else None


def validate_extra_headers(headers: Sequence[tuple[str, str]]) -> None:
    """Check extra headers as :func:`build_message` does; raises :class:`DraftInvalid`.

    For a face that checks them before the whole message is built (Compose,
    as a field is left): the same checks, so a header refused here is
    refused there and one accepted here cannot inject anything there.
    """
    errors: list[FieldError] = []
    _checked_extra_headers(headers, errors)
    if errors:
        raise DraftInvalid(errors)


def extra_headers_of(message: Message) -> list[tuple[str, str]]:
    """The headers of a built message that a draft keeps as extra headers.

    Everything but what the draft's own fields set, what the content sets,
    and Date and Message-ID (a message made again from a draft is a new one):
    so a queued message made a draft again keeps its custom headers.
    """
    skipped = _DRAFT_HEADERS | _CONTENT_HEADERS | _OVERRIDABLE_HEADERS
    return [(name, str(value)) for name, value in message.items() if name.lower() not in skipped]


def check_prepared_headers(headers: Sequence[tuple[str, str]]) -> list[FieldError]:
    """Every problem with the headers of a prepared message, checked as a composed one's.

    For a message given whole (tuimail/eml.py): ``headers`` are its
    (name, unfolded value) pairs in order. Each value gets the checks a
    typed field gets (no CR, LF, NUL or control character, also once its
    encoded words are decoded); a header that holds addresses must parse
    strictly, From as one mailbox; a Date or Message-ID must be one that
    goes on the wire unchanged.
    """
    errors: list[FieldError] = []
    for name, value in headers:
        field_name = f"header {name!r}"
        if has_surrogates(name) or not _HEADER_NAME_RE.fullmatch(name):
            errors.append(FieldError(field_name, "a header name is printable ASCII without ':'"))
            continue
        if len(name) > MAX_HEADER_NAME:
            errors.append(
                FieldError(field_name, f"a header name is at most {MAX_HEADER_NAME} characters")
            )
            continue
        if not _check_header_value(field_name, value, errors):
            continue
        lower = name.lower()
        kind = _HEADER_TYPES[lower]
        if lower == "from":
            try:
                parse_address(value)
            except AddressError as exc:
                errors.append(FieldError(field_name, str(exc)))
        elif issubclass(kind, headerregistry.AddressHeader):
            if EMPTY_GROUP_RE.fullmatch(value):
                continue
            try:
                parse_address_list(value)
            except AddressError as exc:
                errors.append(FieldError(field_name, str(exc)))
        else:
            problem = _structured_header_problem(name, kind, value.strip())
            if problem:
                errors.append(FieldError(field_name, problem))
    return errors


def wire_problem(wire: bytes, *, utf8: bool, eight_bit: bool = False) -> str | None:
    """Why ``wire`` would not reach a reader as it is, or None.

    The read-back gate every built message passes, for bytes built
    elsewhere: lines over 998 octets, a CR or LF that is not a CRLF line end,
    8-bit data without ``utf8`` (with ``eight_bit``, only 8-bit headers: a
    body may be 8-bit, sent with 8BITMIME), and a header in any MIME part
    that decodes to a control character.
    """
    try:
        _read_back(wire, utf8=utf8, eight_bit=eight_bit)
    except _Unsafe as exc:
        return str(exc)
    return None


def draft_headers_of(message: Message) -> Draft:
    """The fields of ``message`` as a draft's (decoded), without its body or attachments."""

    def texts(name: str) -> list[str]:
        return [str(value) for value in message.get_all(name, [])]

    return Draft(
        from_address=str(message.get("From", "")),
        to=texts("To"),
        cc=texts("Cc"),
        bcc=texts("Bcc"),
        reply_to=texts("Reply-To"),
        subject=str(message.get("Subject", "")),
        headers=extra_headers_of(message),
    )


def build_message(draft: Draft) -> OutgoingMessage:
    """Validate ``draft`` and build the message; raises :class:`DraftInvalid` listing all errors."""
    errors: list[FieldError] = []

    def addresses(field_name: str, values: Sequence[str]) -> list[ParsedAddress]:
        try:
            return validate_address_field(field_name, values)
        except DraftInvalid as exc:
            errors.extend(exc.errors)
            return []

    sender: ParsedAddress | None = None
    try:
        sender = validate_sender(draft.from_address)
    except DraftInvalid as exc:
        errors.extend(exc.errors)
    to = addresses("to", draft.to)
    cc = addresses("cc", draft.cc)
    bcc = addresses("bcc", draft.bcc)
    reply_to = addresses("reply-to", draft.reply_to)
    if not (to or cc or bcc) and not any(e.field in ("to", "cc", "bcc") for e in errors):
        errors.append(FieldError("to", "at least one recipient (To, Cc or Bcc) is needed"))

    _check_header_value("subject", draft.subject, errors)
    extra_headers, extra_addresses = _checked_extra_headers(draft.headers, errors)
    total = len(draft.subject) + sum(len(name) + len(value) for name, value in draft.headers)
    if total > MAX_HEADERS_TOTAL:
        errors.append(
            FieldError(
                "message",
                f"the Subject and the other headers hold {total:,} characters; "
                f"at most {MAX_HEADERS_TOTAL:,} are taken",
            )
        )
    attachments = _read_attachments(draft.attachments, errors)
    if "\0" in draft.body:
        errors.append(FieldError("body", "contains a NUL character, which mail cannot carry"))
    if has_surrogates(draft.body):
        errors.append(FieldError("body", "is not valid UTF-8 text"))

    if errors or sender is None:
        raise DraftInvalid(errors)

    message = EmailMessage(policy=BUILD_POLICY)
    meant: list[_Meant] = []
    _put(message, meant, "From", [sender], "from")
    if to:
        _put(message, meant, "To", to, "to")
    if cc:
        _put(message, meant, "Cc", cc, "cc")
    if reply_to:
        _put(message, meant, "Reply-To", reply_to, "reply-to")
    _put(message, meant, "Subject", draft.subject, "subject")
    message["Date"] = format_datetime(localtime())
    # A domain literal keeps its brackets: "<id@[127.0.0.1]>" is a valid msg-id.
    message["Message-ID"] = make_msgid(domain=sender.domain)
    for name, value in extra_headers:
        if isinstance(value, list) or not _is_structured(name):
            _put(message, meant, name, value, f"header {name!r}")
            continue
        if name.lower() in _OVERRIDABLE_HEADERS:
            del message[name]
        message[name] = value
    message.set_content(draft.body)
    if draft.markdown:
        from tuimail.markdown_body import render_html

        # The text part stays the user's own words; the HTML is its rendering.
        message.add_alternative(render_html(draft.body), subtype="html")
    eight_bit = False
    for path, data in attachments:
        maintype, subtype, params = _attachment_type(path, data)
        carried = _carried_message(data) if (maintype, subtype) == ("message", "rfc822") else None
        if carried is not None:
            _attach_message(message, path.name, carried)
            eight_bit = eight_bit or not carried.isascii()
            continue
        message.add_attachment(
            data, maintype=maintype, subtype=subtype, filename=path.name, params=params
        )

    recipients = _unique(to + cc + bcc)
    needs_utf8 = any(a.needs_smtputf8 for a in (sender, *recipients, *reply_to, *extra_addresses))
    try:
        wire = render(message, needs_utf8)
    except (UnicodeError, ValueError) as exc:
        raise DraftInvalid([FieldError("message", f"cannot be written as mail ({exc})")]) from None
    # An attached message with 8-bit text goes as it is (8bit): the session
    # then asks for 8BITMIME (tuimail/session.py), and refuses without it.
    _verify_wire(
        message, wire, needs_utf8, meant, [path for path, _ in attachments], eight_bit=eight_bit
    )
    outgoing = OutgoingMessage(message, sender, tuple(recipients), needs_utf8, wire)
    size = len(wire)
    if size > MAX_MESSAGE_BYTES:
        limit = MAX_MESSAGE_BYTES // (1024 * 1024)
        raise DraftInvalid(
            [FieldError("attachments", f"the message is {size:,} bytes; the limit is {limit} MiB")]
        )
    return outgoing


@dataclass(frozen=True)
class _Meant:
    """One header as the reader must see it: its text, or its mailboxes."""

    name: str
    value: str | list[ParsedAddress]
    field: str


def _is_structured(name: str) -> bool:
    kind = _HEADER_TYPES[name.lower()]
    return issubclass(kind, headerregistry.DateHeader | headerregistry.MessageIDHeader)


def _put(
    message: EmailMessage,
    meant: list[_Meant],
    name: str,
    value: str | list[ParsedAddress],
    field_name: str,
) -> None:
    """Add a header written here when the email package cannot be trusted to.

    Plain printable ASCII text is left to the email package, which writes it
    unchanged; addresses and any other text are written (and folded) here and
    stored raw, so nothing is decoded or refolded on the way out.
    """
    if isinstance(value, list):
        message.set_raw(name, _fold(name, _address_list_words(value)))
    elif not value or (_PLAIN_TEXT_RE.fullmatch(value) and "=?" not in value):
        message[name] = value
    else:
        # A continuation line is " " and one encoded word of at most 75 characters.
        encoded = Header(value, "utf-8", maxlinelen=_ENCODED_WORD_MAX + 1, header_name=name)
        message.set_raw(name, encoded.encode(linesep="\r\n"))
    meant.append(_Meant(name, value, field_name))


def _address_list_words(addresses: Sequence[ParsedAddress]) -> list[str]:
    """The words of an address list; a comma ends each address but the last.

    The comma stays attached to the word before it, so a fold never falls
    inside an address's syntax and never turns the comma into an encoded word.
    """
    words: list[str] = []
    for index, address in enumerate(addresses):
        these = _address_words(address)
        if index < len(addresses) - 1:
            these[-1] += ","
        words.extend(these)
    return words


def _address_words(address: ParsedAddress) -> list[str]:
    name = address.display_name
    if not name:
        return [address.addr_spec]
    return [*_name_words(name), f"<{address.addr_spec}>"]


def _name_words(name: str) -> list[str]:
    """A display name as words: atoms, one quoted string, or encoded words.

    A name holding ``=?`` is encoded even when it is ASCII, so a reader shows
    what was typed instead of decoding it.
    """
    if "=?" not in name and _ATOM_PHRASE_RE.fullmatch(name):
        return name.split(" ")
    if "=?" not in name and name.isascii():
        return [quoted_name(name)]
    # Each encoded word is whole and at most 75 characters (RFC 2047); Header
    # splits between characters, and a fold may fall between two such words.
    encoded = Header(name, "utf-8", maxlinelen=_ENCODED_WORD_MAX).encode(linesep="\n")
    return [word.strip() for word in encoded.split("\n")]


def _address_text(address: ParsedAddress) -> str:
    """The address as an RFC 2047 reader shows it: encoded words decoded."""
    if not address.display_name:
        return address.addr_spec
    words = _name_words(address.display_name)
    shown = address.display_name if words[0].startswith("=?") else " ".join(words)
    return f"{shown} <{address.addr_spec}>"


def _fold(name: str, words: Sequence[str]) -> str:
    """Join words with spaces, breaking lines before a word that would pass 78 columns."""
    lines: list[str] = []
    line = ""
    width = len(name) + 2
    for word in words:
        if line and width + 1 + len(word) > _FOLD_AT:
            lines.append(line)
            line, width = word, 1 + len(word)
        else:
            width += (1 if line else 0) + len(word)
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\r\n ".join(lines)


class _Unsafe(Exception):
    """The bytes would not reach a reader as meant; the message says how."""


def _read_back(wire: bytes, *, utf8: bool, eight_bit: bool = False) -> EmailMessage:
    """Parse ``wire`` as a reader would, after checking what a parser forgives.

    Raises :class:`_Unsafe` for a line over 998 octets, a CR or LF outside a
    line end, 8-bit data without ``utf8`` (with ``eight_bit``, 8-bit data is
    allowed outside the headers: an attached message's), or a header in any part whose decoded text holds a control
    character (a header injected through an encoded word). Only the headers
    are parsed (see :func:`_skeleton`): an attachment's data is not needed to
    judge them, and parsing it would double the cost of building.
    """
    if not utf8 and not eight_bit and not wire.isascii():
        raise _Unsafe("8-bit text in a message for a server without SMTPUTF8")
    if _LONG_LINE_RE.match(wire) or _LONG_NEXT_LINE_RE.search(wire):
        raise _Unsafe(f"a line is longer than {MAX_LINE_OCTETS} octets")
    line_ends = wire.count(b"\r\n")
    if wire.count(b"\r") != line_ends or wire.count(b"\n") != line_ends:
        raise _Unsafe("a line break is not a CRLF line end")
    # Bytes that are not UTF-8 are kept as surrogates: only the headers
    # checked below must be UTF-8, not an attached message's 8-bit lines.
    text = _skeleton(wire).decode("utf-8", "surrogateescape")
    parsed = Parser(policy=email_policy.default).parsestr(text)
    assert isinstance(parsed, EmailMessage)
    for part in _parts_written(parsed):
        for name, raw in part.raw_items():
            if has_surrogates(str(raw)):
                raise _Unsafe("a header is not valid UTF-8")
            if not utf8 and not str(raw).isascii():
                raise _Unsafe(f"the {name} header has 8-bit text, for a server without SMTPUTF8")
            _check_read_back_header(part, name, str(raw))
    return parsed


def _parts_written(message: Message) -> Iterator[Message]:
    """Every part of ``message`` whose headers are the sender's, depth first.

    The message inside a message/rfc822 part is not: it is a message carried
    as it is (a forward), its headers the original's, read by a reader as
    that message's and never as this one's; its lines are still checked with
    the whole (998 octets, CRLF).
    """
    yield message
    if message.get_content_type() == "message/rfc822" or not message.is_multipart():
        return
    payload = message.get_payload()
    for part in payload if isinstance(payload, list) else ():
        if isinstance(part, Message):
            yield from _parts_written(part)


_LONG_LINE_RE = re.compile(rb"[^\r\n]{%d}" % (MAX_LINE_OCTETS + 1))
# Starting at a line feed lets the regex engine skip from one line to the next.
_LONG_NEXT_LINE_RE = re.compile(rb"\n[^\r\n]{%d}" % (MAX_LINE_OCTETS + 1))


def _skeleton(wire: bytes) -> bytes:
    """The message with every part's headers and boundaries, without its data.

    Kept: the top header block, and each line that starts with ``--`` (every
    MIME boundary does) with the lines after it up to the next empty line (a
    part's headers). Dropped: all other body lines; none is a boundary, so the
    parse of the skeleton has the same parts with the same headers (a kept
    line that is not a boundary stays body text there too).
    """
    head_end = wire.find(b"\r\n\r\n")
    if head_end < 0:
        return wire
    pieces = [wire[: head_end + 4]]
    position = head_end + 2  # a boundary may follow the empty line at once
    while (dash := wire.find(b"\r\n--", position)) >= 0:
        block_end = wire.find(b"\r\n\r\n", dash + 2)
        end = len(wire) if block_end < 0 else block_end + 4
        pieces.append(wire[dash + 2 : end])
        position = end - 2
    return b"".join(pieces)


def _check_read_back_header(part: Message, name: str, raw: str) -> None:
    unfolded = re.sub(r"\r?\n(?=[ \t])", "", raw)
    if "\r" in unfolded or "\n" in unfolded:
        raise _Unsafe(f"the {name} header holds a line break")
    problem = header_text_problem(unfolded)
    if problem:
        raise _Unsafe(f"the {name} header {problem}")
    try:
        shown = str(part.policy.header_fetch_parse(name, raw))
    except Exception as exc:  # any failure to read it back is unsafe
        raise _Unsafe(f"the {name} header cannot be read back ({exc})") from None
    if any(ch == "\0" or is_control_char(ch) for ch in shown):
        raise _Unsafe(f"the {name} header reads back with a control character")


def _verify_wire(
    model: EmailMessage,
    wire: bytes,
    utf8: bool,
    meant: Sequence[_Meant],
    attachments: Sequence[Path],
    *,
    eight_bit: bool = False,
) -> None:
    """Parse the bytes back and compare with what was meant; raises :class:`DraftInvalid`.

    This is the gate that does not depend on the Python version: whatever the
    email package did while folding and encoding, the reader must see the same
    headers (no more, no fewer), the same text and the same mailboxes.
    """
    field_name = "message"
    try:
        parsed = _read_back(wire, utf8=utf8, eight_bit=eight_bit)
        if [k.lower() for k in parsed] != [k.lower() for k in model]:
            raise _Unsafe("the headers read back are not the headers written")
        raw_values: dict[str, list[str]] = {}
        for name, raw in parsed.raw_items():
            raw_values.setdefault(name.lower(), []).append(str(raw))
        for item in meant:
            field_name = item.field
            raw = raw_values[item.name.lower()].pop(0)
            _compare(item.name, raw, item.value)
        parts = list(parsed.iter_attachments())
        if len(parts) != len(attachments):
            raise _Unsafe("the attachments read back are not the files given")
        for part, path in zip(parts, attachments, strict=True):
            field_name = f"attachment {str(path)!r}"
            if part.get_filename() != path.name:
                raise _Unsafe(
                    f"the file name reads back as {part.get_filename()!r}; rename the file"
                )
    except _Unsafe as exc:
        raise DraftInvalid(
            [FieldError(field_name, f"cannot be written so that it reads back intact: {exc}")]
        ) from None


def _compare(name: str, raw: str, value: str | list[ParsedAddress]) -> None:
    """One header read back two ways: by the email package, and by RFC 2047."""
    header = email_policy.default.header_fetch_parse(name, raw)
    if isinstance(value, str):
        # Space at either end is folding white space to a reader, not text.
        if str(header).strip() != value.strip():
            raise _Unsafe(f"the text reads back as {str(header)!r}")
        return
    # Python 3.11's address parser keeps the space between two encoded words
    # of one name, which RFC 2047 says a reader drops; so names are compared
    # without spaces here, and exactly by the RFC 2047 decoder below.
    read = [(_squash(a.display_name), a.addr_spec) for a in getattr(header, "addresses", ())]
    if read != [(_squash(a.display_name), a.addr_spec) for a in value]:
        raise _Unsafe("the addresses read back are not the addresses given")
    unfolded = re.sub(r"\r?\n(?=[ \t])", "", raw).strip()
    if _rfc2047_decoded(unfolded) != ", ".join(_address_text(a) for a in value):
        raise _Unsafe("the names read back are not the names given")


def _rfc2047_decoded(text: str) -> str:
    """``text`` with each run of encoded words decoded as RFC 2047 says (the
    space between two encoded words dropped); other text, UTF-8 included, kept."""
    try:
        return _ENCODED_RUN_RE.sub(lambda m: str(make_header(decode_header(m[0]))), text)
    except (email_errors.HeaderParseError, LookupError, UnicodeError, ValueError) as exc:
        raise _Unsafe(f"an encoded word cannot be decoded ({exc})") from None


def _squash(text: str) -> str:
    return "".join(text.split())


class StoredMessageInvalid(TuimailError, ValueError):
    """Stored message bytes that must not be sent; the message says why."""


#: Headers a message may hold once at most (RFC 5322 section 3.6).
_SINGLE_HEADERS = ("from", "sender", "reply-to", "to", "cc", "subject", "date", "message-id")


def check_stored_message(raw: bytes, envelope_recipients: Sequence[str] | None = None) -> None:
    """Refuse stored bytes (an outbox entry) that a reader would not see as built.

    The bytes were checked when they were built, but a file on disk can be
    changed, or written by an older version. Raises :class:`StoredMessageInvalid`
    when a header in any part decodes to a line break or control character, a
    line is too long, a header that may appear once appears twice, From, Date or
    Message-ID is missing, a Bcc header is present, or (given the envelope) a
    To or Cc address is not among the envelope's recipients.
    """
    try:
        parsed = _read_back(raw, utf8=True)
    except _Unsafe as exc:
        raise StoredMessageInvalid(f"the stored message is unsafe to send: {exc}") from None
    names = [k.lower() for k in parsed]
    for name in _SINGLE_HEADERS:
        if names.count(name) > 1:
            raise StoredMessageInvalid(f"the stored message has {names.count(name)} {name} headers")
    for name in ("from", "date", "message-id"):
        if name not in names:
            raise StoredMessageInvalid(f"the stored message has no {name} header")
    if "bcc" in names:
        raise StoredMessageInvalid("the stored message has a Bcc header")
    if envelope_recipients is not None:
        allowed = {r.lower() for r in envelope_recipients}
        for name in ("To", "Cc"):
            for address in getattr(parsed[name], "addresses", ()) if name in parsed else ():
                if address.addr_spec.lower() not in allowed:
                    raise StoredMessageInvalid(
                        f"the stored message's {name} names {address.addr_spec!r}, "
                        "which is not among its envelope recipients"
                    )


def _check_header_value(field_name: str, value: str, errors: list[FieldError]) -> bool:
    if len(value) > MAX_HEADER_VALUE:
        errors.append(
            FieldError(
                field_name,
                f"is {len(value):,} characters long; a header holds at most {MAX_HEADER_VALUE:,}",
            )
        )
        return False
    for ch, name in (
        ("\r", "a carriage return"),
        ("\n", "a line break"),
        ("\0", "a NUL character"),
    ):
        if ch in value:
            errors.append(
                FieldError(field_name, f"contains {name}, which could inject extra headers")
            )
            return False
    # The email package refuses \v, \f, U+2028 and friends with a bare ValueError
    # (str.splitlines() breaks lines there); other controls are not valid header text.
    for ch in value:
        if is_control_char(ch):
            errors.append(FieldError(field_name, f"contains the control character U+{ord(ch):04X}"))
            return False
    problem = header_text_problem(value)
    if problem:
        errors.append(FieldError(field_name, problem))
        return False
    return True


def _checked_extra_headers(
    headers: Sequence[tuple[str, str]], errors: list[FieldError]
) -> tuple[list[tuple[str, str | list[ParsedAddress]]], list[ParsedAddress]]:
    """The valid extra headers, and the addresses in those that hold addresses.

    The email package repairs what it cannot parse (a bad Date becomes an empty
    header, ``Sender: a@b.com <c@d.com>`` is guessed at) and raises a bare
    ValueError for a second Sender, so structured headers are checked here.
    """
    checked: list[tuple[str, str | list[ParsedAddress]]] = []
    addresses: list[ParsedAddress] = []
    counts: dict[str, int] = {}
    for name, value in headers:
        field_name = f"header {name!r}"
        if has_surrogates(name) or not _HEADER_NAME_RE.fullmatch(name):
            errors.append(FieldError(field_name, "a header name is printable ASCII without ':'"))
            continue
        if len(name) > MAX_HEADER_NAME:
            errors.append(
                FieldError(field_name, f"a header name is at most {MAX_HEADER_NAME} characters")
            )
            continue
        lower = name.lower()
        if lower in _DRAFT_HEADERS:
            hint = f"cannot be set as an extra header; use the {lower.title()} field instead"
            errors.append(FieldError(field_name, hint, instead=lower))
            continue
        if lower in _CONTENT_HEADERS:
            hint = "cannot be set as an extra header; tuimail sets it from the content"
            errors.append(FieldError(field_name, hint))
            continue
        if not _check_header_value(field_name, value, errors):
            continue
        counts[lower] = counts.get(lower, 0) + 1
        kind = _HEADER_TYPES[lower]
        if kind.max_count is not None and counts[lower] > kind.max_count:
            errors.append(FieldError(field_name, "may appear only once in a message"))
            continue
        if issubclass(kind, headerregistry.AddressHeader):
            try:
                parsed = parse_address_list(value)
            except AddressError as exc:
                errors.append(FieldError(field_name, str(exc)))
                continue
            if not parsed:
                errors.append(FieldError(field_name, "needs an address"))
                continue
            addresses.extend(parsed)
            checked.append((name, parsed))
            continue
        problem = _structured_header_problem(name, kind, value)
        if problem:
            errors.append(FieldError(field_name, problem))
            continue
        checked.append((name, value))
    return checked, addresses


def _structured_header_problem(
    name: str, kind: type[headerregistry.BaseHeader], value: str
) -> str | None:
    """Why a Date or Message-ID value would be mangled on the wire, or None."""
    if issubclass(kind, headerregistry.DateHeader):
        try:
            parsedate_to_datetime(value)
        except (ValueError, TypeError):
            return f"{value!r} is not a date like 'Mon, 01 Jan 2024 10:00:00 +0000'"
    elif issubclass(kind, headerregistry.MessageIDHeader):
        if not _MSG_ID_RE.fullmatch(value):
            return f"{value!r} is not a message id like '<unique@example.com>'"
        if len(name) + 2 + len(value) > 998:
            return "is longer than a line of mail may be (998 octets)"
    return None


def _read_attachments(paths: Sequence[Path], errors: list[FieldError]) -> list[tuple[Path, bytes]]:
    """Each file's bytes, or its problem in ``errors``.

    Reading stops once the files together pass :data:`MAX_MESSAGE_BYTES`
    (no message that large is built): the same 60 MB file named fifty times
    (``Attach:`` lines, ``--attach``) was read into memory fifty times first.
    """
    loaded = []
    total = 0
    for path in paths:
        if total > MAX_MESSAGE_BYTES:
            limit = MAX_MESSAGE_BYTES // (1024 * 1024)
            errors.append(
                FieldError("attachments", f"the files together are larger than {limit} MiB")
            )
            break
        field_name = f"attachment {str(path)!r}"
        if has_surrogates(path.name):
            # The name goes into the message as UTF-8 text; bytes that are not
            # UTF-8 have no faithful form there.
            errors.append(
                FieldError(field_name, "the file name is not valid UTF-8; rename the file")
            )
            continue
        if any(is_control_char(ch) for ch in path.name):
            errors.append(FieldError(field_name, "the file name contains a control character"))
            continue
        if ENCODED_WORD_RE.search(path.name):
            # Readers decode it in a file name too: another name would be shown,
            # and a decoded line break would end the header.
            errors.append(
                FieldError(
                    field_name,
                    "the file name contains an encoded word (=?...?=), which mail readers "
                    "would decode; rename the file",
                )
            )
            continue
        try:
            data = read_regular_file(path)
        except NotReadable as exc:
            errors.append(FieldError(field_name, exc.words))
            continue
        loaded.append((path, data))
        total += len(data)
    return loaded


def read_regular_file(path: Path, limit: int = MAX_MESSAGE_BYTES) -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``limit`` bytes.

    Opened without blocking and checked on the open file (by
    :func:`tuimail.small_files.read_small_file`): a FIFO would hang, a device
    such as /dev/zero never ends, and a file can grow after a stat.
    Raises :class:`~tuimail.small_files.NotReadable`, its words meant for a
    person who picked the file.
    """
    try:
        return read_small_file(path, limit)
    except FileNotFoundError:
        raise NotReadable(errno.ENOENT, "does not exist") from None
    except PermissionError:
        raise NotReadable(errno.EACCES, "cannot be read (permission denied)") from None
    except OSError as exc:
        if exc.errno == errno.EISDIR:  # from opening it, or from the check
            raise NotReadable(errno.EISDIR, "is a directory, not a file") from None
        if isinstance(exc, NotReadable) and exc.errno == errno.EFBIG:
            mib = limit // (1024 * 1024)
            raise NotReadable(errno.EFBIG, f"is larger than the limit of {mib} MiB") from None
        if isinstance(exc, NotReadable):
            raise NotReadable(errno.EINVAL, "is not a regular file") from None
        raise NotReadable(exc.errno or errno.EIO, f"cannot be read ({exc.strerror})") from None


def read_text_file(path: Path, limit: int = MAX_MESSAGE_BYTES) -> str:
    """A message body from a file: a regular file, at most ``limit`` bytes, UTF-8."""
    return decode_text(read_regular_file(path, limit))


def decode_text(data: bytes) -> str:
    """UTF-8 bytes as text with newline line ends, as a file opened in text mode reads.

    Raises :class:`~tuimail.small_files.NotReadable` (``EILSEQ``) for bytes
    that are not UTF-8.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        words = f"is not UTF-8 text (byte {exc.start} is not)"
        raise NotReadable(errno.EILSEQ, words) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _attachment_type(path: Path, data: bytes) -> tuple[str, str, dict[str, str]]:
    """The MIME type of an attachment, with its charset when it is text.

    Text that is not ASCII is labelled with its charset, or a reader assumes
    US-ASCII and shows ``naïve`` as ``naÃ¯ve``. Only UTF-8 is recognised with
    certainty; other non-ASCII text goes as application/octet-stream rather
    than under a charset guessed wrong.
    """
    maintype, subtype = _mime_type(path)
    if (maintype, subtype) == ("message", "rfc822") and _carried_message(data) is None:
        return "application", "octet-stream", {}
    if maintype != "text":
        return maintype, subtype, {}
    if data.isascii():
        return maintype, subtype, {"charset": "us-ascii"}
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "application", "octet-stream", {}
    return maintype, subtype, {"charset": "utf-8"}


def named_as_message(path: Path) -> bool:
    """Whether ``path``'s name makes it a saved message (``.eml``: message/rfc822), which
    goes as one, not in base64, when its bytes allow (see :func:`carried_message`)."""
    return _mime_type(path) == ("message", "rfc822")


def carried_message(path: Path, data: bytes) -> bytes | None:
    """The bytes an attachment goes as when it is carried as a message (message/rfc822 in
    7bit or 8bit, RFC 2046 section 5.2.1), or None when it goes in base64.

    What :func:`build_message` does with the attachment, for the size
    estimates of tuimail/size_limits.py: an attached message is about a
    third smaller as sent than the same bytes in base64.
    """
    return _carried_message(data) if named_as_message(path) else None


def _mime_type(path: Path) -> tuple[str, str]:
    guessed, encoding = mimetypes.guess_type(path.name)
    if (
        guessed is None
        or encoding is not None
        or (guessed.startswith(("message/", "multipart/")) and guessed != "message/rfc822")
    ):
        # A compressed file (x.tar.gz) is sent as what it is: opaque bytes. So are
        # other message/* and multipart/* types: they may not be base64 encoded, and
        # a reader would parse the base64 text as their content. A saved mail
        # (x.eml, message/rfc822) goes as one when it can (see _carried_message).
        guessed = "application/octet-stream"
    maintype, _, subtype = guessed.partition("/")
    return maintype, subtype


#: The first line of a saved message: a header's name and its colon.
_MESSAGE_START_RE = re.compile(rb"[!-9;-~]+[ \t]*:")


def _carried_message(data: bytes) -> bytes | None:
    """A saved message (.eml) as a message/rfc822 part carries it, or None when it cannot.

    RFC 2046 section 5.2.1 allows message/rfc822 only in 7bit or 8bit (never
    base64 or quoted-printable), so the message goes byte for byte: with CRLF
    line ends (a file with LF alone, a file of this system, gets them), no
    line over 998 octets, no NUL and no bare CR or LF, and a header on its
    first line. Anything else (None) is sent as application/octet-stream in
    base64, a file the reader can still save, as before.
    """
    if b"\0" in data or not _MESSAGE_START_RE.match(data):
        return None
    if b"\r" not in data:
        data = data.replace(b"\n", b"\r\n")
    line_ends = data.count(b"\r\n")
    if data.count(b"\r") != line_ends or data.count(b"\n") != line_ends:
        return None
    if _LONG_LINE_RE.match(data) or _LONG_NEXT_LINE_RE.search(data):
        return None
    return data


def _attach_message(message: EmailMessage, name: str, data: bytes) -> None:
    """Attach ``data`` (checked by :func:`_carried_message`) as message/rfc822, byte for byte.

    The email package would parse a message given to ``add_attachment`` and
    write it again (refolded, re-encoded); the bytes are kept as the payload
    instead (surrogateescape: the generator writes them back unchanged), with
    the 7bit or 8bit encoding they need.
    """
    if message.get_content_maintype() != "multipart" or message.get_content_subtype() != "mixed":
        message.make_mixed()
    part = EmailMessage(policy=message.policy)
    part["Content-Type"] = "message/rfc822"
    part["Content-Transfer-Encoding"] = "7bit" if data.isascii() else "8bit"
    part["Content-Disposition"] = "attachment"
    part.set_param("filename", name, header="Content-Disposition")
    part.set_payload(data.decode("ascii", "surrogateescape"))
    message.attach(part)


def _unique(addresses: Sequence[ParsedAddress]) -> list[ParsedAddress]:
    seen: set[str] = set()
    unique = []
    for address in addresses:
        key = address.addr_spec.lower()
        if key not in seen:
            seen.add(key)
            unique.append(address)
    return unique
