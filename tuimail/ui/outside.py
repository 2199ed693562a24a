"""Text from outside the app, made ready for a widget: shown as text, never obeyed.

A server's reply, a DNS name, a file name or a stored message is chosen by
someone else. Textual parses a ``str`` given to a DataTable cell, a Label or
a notification as markup (``[/oops]`` raises, ``[@click=...]`` acts), and
passes escape sequences through to the terminal untouched. So every such
text goes through :func:`shown` (for widgets built with ``markup=False``) or
:func:`cell` (a :class:`~rich.text.Text`, which is never parsed).
"""

from __future__ import annotations

import functools
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import TYPE_CHECKING

from rich.text import Text

from tuimail.terminal_text import escape_controls

if TYPE_CHECKING:
    from tuimail.inbox.mime import SignedHeaders


def shown(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` with its control characters escaped (``\\x1b``), for a markup-free widget.

    With ``keep_newlines`` (a message body), CRLF line ends are plain line ends.
    """
    value = str(text)
    if keep_newlines:
        value = value.replace("\r\n", "\n")
    return escape_controls(value, keep_newlines=keep_newlines)


def header_text(message: EmailMessage, name: str) -> str:
    """A header of a received message as text, "" when absent.

    The email package parses a header when it is read, and some malformed
    ones make it raise (``Message-ID: <`` an IndexError, ``To: a@[`` an
    AttributeError on Python 3.11). Then the raw value is shown instead:
    a client's broken header is something to read, never a crash.
    """
    try:
        value = message[name]
    except Exception:  # the parser raises several types
        value = next((v for k, v in message.raw_items() if k.lower() == name.lower()), None)
    return "" if value is None else str(value)


def body_text(message: EmailMessage) -> str:
    """The message's text part as text; its raw bytes when the parts cannot be decoded.

    A client may declare a charset Python does not know (``LookupError``) or
    a structure the parser trips on; the user still gets to read it.
    """
    try:
        body = message.get_body(preferencelist=("plain", "html"))
        return str(body.get_content()) if body is not None else "(no text part)"
    except Exception:  # LookupError, and the parser's several others
        payload = message.get_payload(decode=True)
        if not isinstance(payload, bytes):
            return "(the body could not be decoded; the full message is in the Maildir)"
        return payload.decode("utf-8", "replace")


#: The headers a message preview shows first, in this order (absent ones are left out).
PREVIEW_HEADERS = ("From", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID")
#: Headers every message carries for its structure or its transport: not shown, since
#: they say nothing a sender chose. Any other header (X-Ticket, List-Id, ...) is shown.
ROUTINE_HEADERS = frozenset(
    name.lower()
    for name in (
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
        "Content-ID",
        "Received",
        "Return-Path",
        "Bcc",
    )
)
#: The other headers a preview shows at most, and the characters of each value.
MAX_OTHER_HEADERS = 20
MAX_HEADER_CHARS = 300
#: Body characters a preview shows: a widget holding megabytes of text is slow to draw.
MAX_BODY_CHARS = 20_000


def message_preview(
    raw: bytes, *, full_copy: str, envelope: str = "", protection: SignedHeaders | None = None
) -> str:
    """A stored message as a preview pane shows it, escaped: headers, body, attachment names.

    ``envelope`` (the sandbox's "sender → recipients") follows the headers.
    With ``protection`` (the message's protection report), a signed-only
    message's protected headers are shown by their signed value
    (:func:`tuimail.inbox.mime.header_block`).
    A body longer than :data:`MAX_BODY_CHARS` is cut, with a note that ends
    in ``full_copy`` (where the whole message can be read). A client's
    broken headers or MIME structure are shown as they are, never a crash.
    """
    from tuimail.inbox.mime import header_block  # the inbox's index is not needed at start-up

    message = message_from_bytes(raw, policy=policy.default)
    outer = functools.partial(header_text, message)
    lines = [
        shown(f"{name}: {_bounded(value)}")
        for name, value in header_block(PREVIEW_HEADERS, outer, protection)
    ]
    lines += _other_headers(message)
    if envelope:
        lines.append(shown(f"Envelope: {envelope}"))
    text = body_text(message)
    if len(text) > MAX_BODY_CHARS:
        text = f"{text[:MAX_BODY_CHARS]}\n… (cut; {full_copy})"
    lines += ["", shown(text, keep_newlines=True)]
    try:
        attachments = [str(part.get_filename()) for part in message.iter_attachments()]
    except Exception:  # a client's broken MIME structure: say so, do not stop
        attachments = ["(could not be listed)"]
    if attachments:
        lines += ["", shown("Attachments: " + ", ".join(attachments))]
    return "\n".join(lines)


def _bounded(value: str) -> str:
    """A header value cut at :data:`MAX_HEADER_CHARS` (a client may send megabytes)."""
    if len(value) <= MAX_HEADER_CHARS:
        return value
    return f"{value[:MAX_HEADER_CHARS]}… ({len(value):,} characters)"


def _other_headers(message: EmailMessage) -> list[str]:
    """The headers a sender added (Reply-To aside): X-Ticket, List-Id, ..., escaped.

    What was sent is seen whole, not only the usual few; at most
    :data:`MAX_OTHER_HEADERS` lines, then how many more there are.
    """
    usual = {name.lower() for name in PREVIEW_HEADERS} | ROUTINE_HEADERS
    others = [(name, value) for name, value in message.raw_items() if name.lower() not in usual]
    lines = [
        shown(f"{name}: {_bounded(_unfolded(name, value))}")
        for name, value in others[:MAX_OTHER_HEADERS]
    ]
    if len(others) > MAX_OTHER_HEADERS:
        lines.append(f"… {len(others) - MAX_OTHER_HEADERS:,} more headers")
    return lines


def _unfolded(name: str, raw: str) -> str:
    """One raw header's value unfolded, as text (the raw value when it does not parse)."""
    try:
        value = str(policy.default.header_fetch_parse(name, raw))
    except Exception:  # the parser raises several types
        value = str(raw)
    return " ".join(value.split())


def cell(text: object, *, justify: str | None = None, style: str = "") -> Text:
    """``text`` as a Text (never markup) with its control characters escaped."""
    return Text(shown(text), style=style, justify=justify)  # type: ignore[arg-type]
