"""A message body written in Markdown, rendered as the HTML part of the mail.

The text part of such a message is always what the user typed
(tuimail/message.py puts it first); this module only renders the HTML
alternative. Mail readers drop ``<style>`` blocks and class names, so every
element that needs a look carries it inline. Nothing the user types becomes
markup of its own: raw HTML in the Markdown is shown as text (``html=False``),
and a link or image whose scheme is not http, https or mailto is left as
text, so ``[x](javascript:...)`` cannot run anything in a reader.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

#: The only URL schemes a link or image may have.
ALLOWED_SCHEMES = ("http:", "https:", "mailto:")

_BODY_STYLE = "font-family: sans-serif; font-size: 14px; line-height: 1.5; color: #202020;"
_PRE_STYLE = (
    "background: #f4f4f4; border: 1px solid #dddddd; border-radius: 3px; padding: 8px 12px; "
    "font-family: monospace; font-size: 13px; white-space: pre-wrap; overflow-x: auto;"
)
_PRE_CODE_STYLE = "font-family: monospace; background: transparent;"
#: Inline styles by the opening tag they go on.
_STYLES = {
    "h1": "font-size: 1.6em; font-weight: bold; margin: 0.8em 0 0.4em;",
    "h2": "font-size: 1.35em; font-weight: bold; margin: 0.8em 0 0.4em;",
    "h3": "font-size: 1.15em; font-weight: bold; margin: 0.8em 0 0.4em;",
    "h4": "font-size: 1em; font-weight: bold; margin: 0.8em 0 0.4em;",
    "h5": "font-size: 0.9em; font-weight: bold; margin: 0.8em 0 0.4em;",
    "h6": "font-size: 0.85em; font-weight: bold; margin: 0.8em 0 0.4em; color: #555555;",
    "p": "margin: 0 0 0.8em;",
    "ul": "margin: 0 0 0.8em; padding-left: 1.6em; list-style-type: disc;",
    "ol": "margin: 0 0 0.8em; padding-left: 1.6em; list-style-type: decimal;",
    "li": "margin: 0.2em 0;",
    "blockquote": (
        "margin: 0 0 0.8em; padding: 0 0 0 1em; border-left: 3px solid #cccccc; color: #555555;"
    ),
    "a": "color: #1a5fb4; text-decoration: underline;",
    "code": (
        "background: #f4f4f4; border-radius: 3px; padding: 0 3px; "
        "font-family: monospace; font-size: 0.95em;"
    ),
    "hr": "border: none; border-top: 1px solid #cccccc; margin: 1em 0;",
    "table": "border-collapse: collapse; margin: 0 0 0.8em;",
    "th": "border: 1px solid #cccccc; padding: 4px 8px; text-align: left; font-weight: bold;",
    "td": "border: 1px solid #cccccc; padding: 4px 8px;",
    "img": "max-width: 100%;",
}


def _link_allowed(url: str) -> bool:
    """Only web and mail links: no ``javascript:``, ``data:``, ``file:`` or relative ones."""
    return url.strip().lower().startswith(ALLOWED_SCHEMES)


def _add_styles(state: StateCore) -> None:
    """Give every styled element its inline style (a core rule: runs once per render)."""
    _style_tokens(state.tokens)


def _style_tokens(tokens: Sequence[Token]) -> None:
    for token in tokens:
        if token.nesting >= 0 and token.tag in _STYLES and token.type != "code_block":
            # markdown-it's own style (a table column's ``text-align``) comes last, so wins.
            own = token.attrGet("style")
            style = _STYLES[token.tag]
            token.attrSet("style", f"{style} {own};" if own else style)
        if token.children:
            _style_tokens(token.children)


def _code_block(tokens: Sequence[Token], idx: int) -> str:
    """A fenced or indented code block: a styled ``<pre>``, its text escaped."""
    text = html.escape(tokens[idx].content)
    return f'<pre style="{_PRE_STYLE}"><code style="{_PRE_CODE_STYLE}">{text}</code></pre>\n'


def parser() -> MarkdownIt:
    """The Markdown dialect of the HTML part: CommonMark with tables and strikethrough,
    raw HTML as text, links and images only to :data:`ALLOWED_SCHEMES`.

    The app's preview (tuimail/ui/screens/markdown_preview.py) parses with it
    too: Textual's own default dialect hides raw HTML and makes bare URLs
    links, so it would show a message other than the one the recipient reads.
    """
    md = MarkdownIt("commonmark", {"html": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.validateLink = _link_allowed  # type: ignore[method-assign]
    return md


def _renderer() -> MarkdownIt:
    md = parser()
    md.core.ruler.push("tuimail_inline_styles", _add_styles)

    def code(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        return _code_block(tokens, idx)

    md.add_render_rule("fence", code)
    md.add_render_rule("code_block", code)
    return md


_MARKDOWN = _renderer()


#: The line a signature starts below (RFC 3676 section 4.3; tuimail/signatures.py).
SIGNATURE_SEPARATOR = "-- "
_SIGNATURE_STYLE = "margin: 1em 0 0; color: #555555;"


def split_signature(text: str) -> tuple[str, str | None]:
    """``text`` before its last ``-- `` line, and the lines after it (None without one).

    A signature is a name, an address, a number, one per line, written
    before Markdown was chosen: read as Markdown its lines would join into
    one paragraph ("-- Alice ACME +1 555"), and ``*`` or ``<`` in it become
    markup. So it is kept apart and shown line by line, as the text part has it.
    """
    lines = text.split("\n")
    for index in range(len(lines) - 1, -1, -1):
        if lines[index] == SIGNATURE_SEPARATOR:
            return "\n".join(lines[:index]), "\n".join(lines[index + 1 :]).rstrip("\n")
    return text, None


def _signature_html(signature: str) -> str:
    """The separator and each line of the signature, escaped, one per line."""
    lines = [SIGNATURE_SEPARATOR, *signature.split("\n")]
    text = "<br>\n".join(html.escape(line) for line in lines)
    return f'<div style="{_SIGNATURE_STYLE}">{text}</div>\n'


def render_html(text: str) -> str:
    """``text`` as Markdown, rendered to a whole HTML document with inline styles; its
    signature (see :func:`split_signature`) as text, line by line."""
    markdown, signature = split_signature(text)
    body = _MARKDOWN.render(markdown)
    if signature is not None:
        body += _signature_html(signature)
    return (
        "<!DOCTYPE html>\n"
        '<html><head><meta charset="utf-8"></head>\n'
        f'<body><div style="{_BODY_STYLE}">\n{body}</div></body></html>\n'
    )
