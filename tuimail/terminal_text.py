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


#: Bidi embeddings, overrides and isolates: they reorder what follows on the line.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def escape_terminal_controls(text: str, *, keep_newlines: bool = True) -> str:
    r"""``text`` with only what a terminal obeys or reorders escaped: C0 and C1
    controls, DEL and bidi overrides; tabs (and newlines) kept.

    For text the user writes (a draft, a paste), where :func:`escape_controls`
    would be too strict: a no-break space, a soft hyphen or a right-to-left
    mark is part of what was written and must reach the message unchanged.
    """
    kept = "\t\n" if keep_newlines else "\t"
    return "".join(
        _escape(ch)
        if ch not in kept and (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or ch in _BIDI_CONTROLS)
        else ch
        for ch in text
    )


def decode_for_terminal(raw: bytes) -> str:
    """Bytes from the network as text: UTF-8 where valid, then escaped."""
    return escape_controls(raw.decode("utf-8", "replace"))


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
