"""From what the user wrote (a :class:`Draft`) to what goes on the wire.

All input validation happens here, before any connection is opened, and every
problem names its field so the CLI can say ``--to: ...`` and the compose pane
can show the error beside the right input. Nothing invalid is ever sent:

* no CR, LF or NUL in any header value (header injection);
* only unambiguous addresses (see :mod:`tuimail.addresses`);
* Bcc goes in the envelope only;
* bodies are 7-bit clean (quoted-printable or base64 when needed), so no line
  exceeds 998 octets and no 8-bit data reaches a server that did not offer
  8BITMIME. Only a non-ASCII *address* needs SMTPUTF8, and the session checks
  the server offers it before MAIL FROM.
"""

from __future__ import annotations

import mimetypes
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import headerregistry
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, localtime, make_msgid, parsedate_to_datetime
from pathlib import Path

from tuimail.addresses import (
    AddressError,
    ParsedAddress,
    is_control_char,
    parse_address,
    parse_address_list,
)

#: Largest message tuimail builds in memory; bigger attachments belong elsewhere.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# Building with cte_type="7bit" makes the email package pick quoted-printable
# or base64 for anything that is not short 7-bit lines.
BUILD_POLICY = email_policy.SMTP.clone(cte_type="7bit")
WIRE_POLICY = email_policy.SMTP
WIRE_POLICY_UTF8 = email_policy.SMTPUTF8

_HEADER_NAME_RE = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext; used with fullmatch
#: A header name cannot be folded; this keeps ``Name: `` inside a 78-column line.
MAX_HEADER_NAME = 76
_HEADER_TYPES = headerregistry.HeaderRegistry()
_ATEXT_DOT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+"
_MSG_ID_RE = re.compile(rf"<{_ATEXT_DOT}@(?:{_ATEXT_DOT}|\[[!-Z^-~]*\])>")
_MANAGED_HEADERS = {
    "from": "--from",
    "to": "--to",
    "cc": "--cc",
    "bcc": "--bcc",
    "reply-to": "--reply-to",
    "subject": "--subject",
    "mime-version": None,
    "content-type": None,
    "content-transfer-encoding": None,
    "content-disposition": None,
}
_OVERRIDABLE_HEADERS = {"date", "message-id"}


@dataclass(frozen=True)
class FieldError:
    """One invalid input: which field, and a sentence about it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class DraftInvalid(ValueError):
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
    return message.as_bytes(policy=WIRE_POLICY_UTF8 if needs_smtputf8 else WIRE_POLICY)


def parse_header_option(text: str) -> tuple[str, str]:
    """Split ``'Name: value'`` as given to ``--header``."""
    name, sep, value = text.partition(":")
    if not sep:
        raise DraftInvalid([FieldError("--header", f"{text!r} is not in the form 'Name: value'")])
    return name.strip(), value.strip()


def validate_address_field(field_name: str, values: Sequence[str]) -> list[ParsedAddress]:
    """Parse every entry of one address field; raises :class:`DraftInvalid`."""
    parsed: list[ParsedAddress] = []
    for value in values:
        try:
            parsed.extend(parse_address_list(value))
        except AddressError as exc:
            raise DraftInvalid([FieldError(field_name, str(exc))]) from None
    return parsed


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
    if not draft.from_address.strip():
        errors.append(FieldError("from", "a sender address is needed"))
    else:
        try:
            sender = parse_address(draft.from_address)
        except AddressError as exc:
            errors.append(FieldError("from", str(exc)))
    to = addresses("to", draft.to)
    cc = addresses("cc", draft.cc)
    bcc = addresses("bcc", draft.bcc)
    reply_to = addresses("reply-to", draft.reply_to)
    if not (to or cc or bcc) and not any(e.field in ("to", "cc", "bcc") for e in errors):
        errors.append(FieldError("to", "at least one recipient (To, Cc or Bcc) is needed"))

    _check_header_value("subject", draft.subject, errors)
    extra_headers, extra_addresses = _checked_extra_headers(draft.headers, errors)
    attachments = _read_attachments(draft.attachments, errors)
    if "\0" in draft.body:
        errors.append(FieldError("body", "contains a NUL character, which mail cannot carry"))

    if errors or sender is None:
        raise DraftInvalid(errors)

    message = EmailMessage(policy=BUILD_POLICY)
    message["From"] = sender.to_header_address()
    if to:
        message["To"] = [a.to_header_address() for a in to]
    if cc:
        message["Cc"] = [a.to_header_address() for a in cc]
    if reply_to:
        message["Reply-To"] = [a.to_header_address() for a in reply_to]
    message["Subject"] = draft.subject
    message["Date"] = format_datetime(localtime())
    # A domain literal keeps its brackets: "<id@[127.0.0.1]>" is a valid msg-id.
    message["Message-ID"] = make_msgid(domain=sender.domain)
    for name, value in extra_headers:
        if name.lower() in _OVERRIDABLE_HEADERS:
            del message[name]
        message[name] = value
    message.set_content(draft.body)
    for path, data in attachments:
        maintype, subtype = _mime_type(path)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=path.name)

    recipients = _unique(to + cc + bcc)
    needs_utf8 = any(a.needs_smtputf8 for a in (sender, *recipients, *reply_to, *extra_addresses))
    wire = render(message, needs_utf8)
    outgoing = OutgoingMessage(message, sender, tuple(recipients), needs_utf8, wire)
    size = len(wire)
    if size > MAX_MESSAGE_BYTES:
        limit = MAX_MESSAGE_BYTES // (1024 * 1024)
        raise DraftInvalid(
            [FieldError("attachments", f"the message is {size:,} bytes; the limit is {limit} MiB")]
        )
    return outgoing


def _check_header_value(field_name: str, value: str, errors: list[FieldError]) -> bool:
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
    return True


def _checked_extra_headers(
    headers: Sequence[tuple[str, str]], errors: list[FieldError]
) -> tuple[list[tuple[str, str | list[Address]]], list[ParsedAddress]]:
    """The valid extra headers, and the addresses in those that hold addresses.

    The email package repairs what it cannot parse (a bad Date becomes an empty
    header, ``Sender: a@b.com <c@d.com>`` is guessed at) and raises a bare
    ValueError for a second Sender, so structured headers are checked here.
    """
    checked: list[tuple[str, str | list[Address]]] = []
    addresses: list[ParsedAddress] = []
    counts: dict[str, int] = {}
    for name, value in headers:
        field_name = f"header {name!r}"
        if not _HEADER_NAME_RE.fullmatch(name):
            errors.append(FieldError(field_name, "a header name is printable ASCII without ':'"))
            continue
        if len(name) > MAX_HEADER_NAME:
            errors.append(
                FieldError(field_name, f"a header name is at most {MAX_HEADER_NAME} characters")
            )
            continue
        lower = name.lower()
        if lower in _MANAGED_HEADERS:
            option = _MANAGED_HEADERS[lower]
            hint = f"use {option} instead" if option else "tuimail sets it from the content"
            errors.append(FieldError(field_name, f"cannot be set as an extra header; {hint}"))
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
            checked.append((name, [a.to_header_address() for a in parsed]))
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
    loaded = []
    for path in paths:
        field_name = f"attachment {str(path)!r}"
        if any(is_control_char(ch) for ch in path.name):
            errors.append(FieldError(field_name, "the file name contains a control character"))
            continue
        try:
            info = path.stat()
            if stat.S_ISDIR(info.st_mode):
                errors.append(FieldError(field_name, "is a directory, not a file"))
                continue
            if not stat.S_ISREG(info.st_mode):
                # A FIFO or a device would block or never end.
                errors.append(FieldError(field_name, "is not a regular file"))
                continue
            size = info.st_size
            if size > MAX_MESSAGE_BYTES:
                errors.append(FieldError(field_name, f"is {size:,} bytes, larger than the limit"))
                continue
            loaded.append((path, path.read_bytes()))
        except FileNotFoundError:
            errors.append(FieldError(field_name, "does not exist"))
        except PermissionError:
            errors.append(FieldError(field_name, "cannot be read (permission denied)"))
        except OSError as exc:
            errors.append(FieldError(field_name, f"cannot be read ({exc.strerror})"))
    return loaded


def _mime_type(path: Path) -> tuple[str, str]:
    guessed, encoding = mimetypes.guess_type(path.name)
    if guessed is None or encoding is not None or guessed.startswith(("message/", "multipart/")):
        # A compressed file (x.tar.gz) is sent as what it is: opaque bytes. So is a
        # saved mail (x.eml, message/rfc822): message/* may not be base64 encoded,
        # and a reader would parse the base64 text as a message.
        guessed = "application/octet-stream"
    maintype, _, subtype = guessed.partition("/")
    return maintype, subtype


def _unique(addresses: Sequence[ParsedAddress]) -> list[ParsedAddress]:
    seen: set[str] = set()
    unique = []
    for address in addresses:
        key = address.addr_spec.lower()
        if key not in seen:
            seen.add(key)
            unique.append(address)
    return unique
