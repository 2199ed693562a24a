"""``mailto:`` links (RFC 6068) as a :class:`~tuimail.message.Draft`.

A link comes from a web page or another program, so it is outside text: it
is read strictly and turned into a draft the user sees and sends
themselves, never into something sent on its own.

* The path holds addresses separated by commas; ``to=``, ``cc=`` and
  ``bcc=`` add more (each may appear several times). Every address passes
  :mod:`tuimail.addresses`'s checks; one that does not makes the whole link
  an error, never a recipient quietly left out.
* ``subject``, ``body`` and ``in-reply-to`` fill the draft. Any other field
  (``from``, ``reply-to``, ``attach``, ``sender``, a made-up ``x-header``...)
  is ignored and listed in :attr:`MailtoLink.ignored`, so a face can say so:
  a link never chooses the sender, never names a file to attach, never adds
  a header the user did not see.
* Percent-encoding is decoded as UTF-8 (RFC 6068 section 2); ``+`` is a
  plus, not a space. A line break (``%0D%0A``, or a lone CR or LF) is a
  line break only in the body; anywhere else it is refused, as is any other
  control character, so nothing can be injected into a header.
* A subject written as RFC 2047 encoded words (RFC 6068 section 6.3 shows
  ``=?utf-8?Q?caf=C3=A9?=``) is decoded to its text, then checked like any
  other subject.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from email import errors as email_errors
from email.header import decode_header, make_header
from urllib.parse import unquote

from tuimail.addresses import (
    ENCODED_WORD_RE,
    AddressError,
    header_text_problem,
    is_control_char,
    parse_address_list,
)
from tuimail.errors import TuimailError
from tuimail.message import Draft, DraftInvalid, validate_extra_headers

#: A link longer than this is refused: no mail client writes one, and it is read whole.
MAX_LINK = 2 * 1024 * 1024
#: The fields a link may fill; any other is ignored (and listed).
USED_FIELDS = ("to", "cc", "bcc", "subject", "body", "in-reply-to")
_SCHEME = "mailto:"
_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_MSG_IDS_RE = re.compile(r"\s*(?:<[^<>\s]+@[^<>\s]+>\s*)+")


class MailtoError(TuimailError, ValueError):
    """A link that cannot become a draft; ``field`` names the part (``"to"``, ``"link"``...)."""

    def __init__(self, field_name: str, words: str) -> None:
        super().__init__(f"{field_name}: {words}")
        self.field = field_name
        self.words = words


@dataclass(frozen=True)
class MailtoLink:
    """The draft a link asks for, and the fields of the link that were ignored (lowercase)."""

    draft: Draft
    ignored: tuple[str, ...] = field(default_factory=tuple)


def is_mailto(text: str) -> bool:
    """Whether ``text`` is a ``mailto:`` link (the scheme is not case-sensitive)."""
    return text[: len(_SCHEME)].lower() == _SCHEME


def parse_mailto(link: str) -> MailtoLink:
    """The draft ``link`` asks for; raises :class:`MailtoError` naming what is wrong.

    The draft has no sender: the face fills in its profile's, as for any new message.
    """
    if len(link) > MAX_LINK:
        raise MailtoError("link", f"is longer than {MAX_LINK:,} characters")
    if not is_mailto(link):
        raise MailtoError("link", "does not start with 'mailto:'")
    rest = link[len(_SCHEME) :]
    rest = rest.split("#", 1)[0]  # a fragment means nothing to mail
    path, _, query = rest.partition("?")
    to = _addresses("to", _decode("to", path)) if path else []
    cc: list[str] = []
    bcc: list[str] = []
    subject: str | None = None
    body: str | None = None
    in_reply_to: str | None = None
    ignored: list[str] = []
    for pair in query.split("&") if query else []:
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition("=")
        name = _decode("field name", raw_name).strip().lower()
        if name not in USED_FIELDS:
            if any(is_control_char(ch) for ch in name):
                name = name.encode("unicode_escape").decode("ascii")
            ignored.append(name)
            continue
        value = _decode(name, raw_value)
        if name == "to":
            to += _addresses(name, value)
        elif name == "cc":
            cc += _addresses(name, value)
        elif name == "bcc":
            bcc += _addresses(name, value)
        elif name == "body":
            if body is not None:
                ignored.append(name)
                continue
            body = _body(value)
        elif name == "subject":
            if subject is not None:
                ignored.append(name)
                continue
            subject = _subject(value)
        else:
            if in_reply_to is not None:
                ignored.append(name)
                continue
            in_reply_to = _in_reply_to(value)
    draft = Draft(
        to=to,
        cc=cc,
        bcc=bcc,
        subject=subject or "",
        body=body or "",
        headers=[("In-Reply-To", in_reply_to)] if in_reply_to else [],
    )
    return MailtoLink(draft, tuple(ignored))


def check_draft(draft: Draft) -> Draft:
    """``draft``'s recipients, subject and body as :func:`parse_mailto` checks them.

    For a draft made from command-line arguments (``tuimail compose``): each
    address field's entries are split into one address each, so the same
    checks hold whichever way the draft came. Raises :class:`MailtoError`.
    """
    return Draft(
        from_address=draft.from_address,
        to=[a for value in draft.to for a in _addresses("to", value)],
        cc=[a for value in draft.cc for a in _addresses("cc", value)],
        bcc=[a for value in draft.bcc for a in _addresses("bcc", value)],
        reply_to=[a for value in draft.reply_to for a in _addresses("reply-to", value)],
        subject=_subject(draft.subject) if draft.subject else "",
        body=_body(draft.body),
        attachments=list(draft.attachments),
        headers=list(draft.headers),
    )


def _decode(field_name: str, text: str) -> str:
    """Percent-decoded as UTF-8; a stray ``%`` or bytes that are not UTF-8 are errors."""
    if _PERCENT_RE.search(text):
        raise MailtoError(field_name, "has a '%' that is not followed by two hex digits")
    try:
        return unquote(text, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise MailtoError(field_name, "holds percent-encoded bytes that are not UTF-8") from None


def _single_line(field_name: str, value: str) -> str:
    bad = next((ch for ch in value if ch == "\0" or is_control_char(ch)), None)
    if bad is not None:
        what = {"\r": "a carriage return", "\n": "a line break", "\0": "a NUL character"}
        named = what.get(bad, f"the control character U+{ord(bad):04X}")
        raise MailtoError(field_name, f"contains {named}, which a header cannot hold")
    return value


def _addresses(field_name: str, value: str) -> list[str]:
    """Each address as its own entry, in the form :mod:`tuimail.addresses` accepts."""
    _single_line(field_name, value)
    try:
        parsed = parse_address_list(value)
    except AddressError as exc:
        raise MailtoError(field_name, str(exc)) from None
    return [str(address) for address in parsed]


def _subject(value: str) -> str:
    _single_line("subject", value)
    if ENCODED_WORD_RE.search(value):
        failures = (email_errors.HeaderParseError, LookupError, UnicodeError, ValueError)
        with contextlib.suppress(*failures):
            value = str(make_header(decode_header(value)))
        _single_line("subject", value)
    problem = header_text_problem(value)
    if problem:
        raise MailtoError("subject", problem)
    return value


def _body(value: str) -> str:
    """Line breaks as newlines; other control characters but tab refused (NUL too)."""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    for line in text.split("\n"):
        if any(ch != "\t" and (ch == "\0" or is_control_char(ch)) for ch in line):
            bad = next(ch for ch in line if ch != "\t" and (ch == "\0" or is_control_char(ch)))
            raise MailtoError("body", f"contains the control character U+{ord(bad):04X}")
    return text


def _in_reply_to(value: str) -> str:
    _single_line("in-reply-to", value)
    value = value.strip()
    if not _MSG_IDS_RE.fullmatch(value):
        raise MailtoError("in-reply-to", f"{value!r} is not a message id like <id@example.org>")
    try:
        validate_extra_headers([("In-Reply-To", value)])
    except DraftInvalid as exc:
        raise MailtoError("in-reply-to", str(exc)) from None
    return value
