"""Text from outside the app, made ready for a widget: shown as text, never obeyed.

A server's reply, a DNS name, a file name or a stored message is chosen by
someone else. Textual parses a ``str`` given to a DataTable cell, a Label or
a notification as markup (``[/oops]`` raises, ``[@click=...]`` acts), and
passes escape sequences through to the terminal untouched. So every such
text goes through :func:`shown` (for widgets built with ``markup=False``) or
:func:`cell` (a :class:`~rich.text.Text`, which is never parsed).
"""

from __future__ import annotations

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


def cell(text: object, *, justify: str | None = None, style: str = "") -> Text:
    """``text`` as a Text (never markup) with its control characters escaped."""
    return Text(shown(text), style=style, justify=justify)  # type: ignore[arg-type]
