"""Text from outside, made safe to print on a terminal or show in the app.

A banner, a reply, a file name or a DNS answer is chosen by someone else. Sent
raw to a terminal, ``ESC ] 0 ; ... BEL`` retitles the window, ``ESC [ 2 J``
clears it, and a bidi override reorders what the user reads. Everything that
came from a server, a file or DNS goes through :func:`escape_controls` before
it is printed; the app's widgets additionally treat it as text, never markup.
"""

from __future__ import annotations


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    r"""``text`` with every non-printable character shown as ``\xNN`` (or ``\uNNNN``).

    Tabs stay. Newlines stay only with ``keep_newlines`` (a multi-line reply
    shown as such); a one-line field never gets a line break from outside.
    """
    if text.isprintable():
        return text
    kept = "\t\n" if keep_newlines else "\t"
    return "".join(ch if ch.isprintable() or ch in kept else _escape(ch) for ch in text)


def decode_for_terminal(raw: bytes) -> str:
    """Bytes from the network as text: UTF-8 where valid, then escaped."""
    return escape_controls(raw.decode("utf-8", "replace"))


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
