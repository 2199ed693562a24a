"""Text from outside the app, made ready for a widget: shown as text, never obeyed.

A server's reply, a DNS name, a file name or a stored message is chosen by
someone else. Textual parses a ``str`` given to a DataTable cell, a Label or
a notification as markup (``[/oops]`` raises, ``[@click=...]`` acts), and
passes escape sequences through to the terminal untouched. So every such
text goes through :func:`shown` (for widgets built with ``markup=False``) or
:func:`cell` (a :class:`~rich.text.Text`, which is never parsed).
"""

from __future__ import annotations

from email.message import EmailMessage

from rich.text import Text

from tuimail.terminal_text import escape_controls


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


def cell(text: object, *, justify: str | None = None, style: str = "") -> Text:
    """``text`` as a Text (never markup) with its control characters escaped."""
    return Text(shown(text), style=style, justify=justify)  # type: ignore[arg-type]
