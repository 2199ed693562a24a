"""A fast reading of the common SMTP path, ``<local@domain>``, for the sandbox.

aiosmtpd reads every MAIL FROM and RCPT TO argument with the standard
library's RFC 5322 header parser (``email._header_value_parser``) and builds a
``typing.Protocol`` class on each call. That is right for the rare quoted,
commented or source-routed path, and costly for the usual one: it was a fifth
of a bare aiosmtpd server's CPU per message (``benchmarks/bench_sandbox.py
--cprofile``).

:func:`plain_path` answers only for a path made of RFC 5322 ``dot-atom``
text on both sides of the ``@`` (ASCII, no quotes, comments, routes or
literals), for which that parser's answer is known: the text between the
angle brackets, and what follows with its leading folding white space
removed. For anything else it returns None and the caller asks the full
parser, so a path is never read differently from aiosmtpd.
"""

from __future__ import annotations

import re

#: RFC 5322 ``atext``, ASCII only: anything else goes to the full parser.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_PLAIN_PATH = re.compile(rf"<({_DOT_ATOM})@({_DOT_ATOM})>")
#: What the full parser takes as the start of folding white space or a comment.
_CFWS_LEADERS = (" ", "\t", "(")


def plain_path(arg: str) -> tuple[str, str, str] | None:
    """``(local part, domain, rest)`` of a plain ``<local@domain> rest``, else None.

    ``rest`` is what follows the closing bracket, as the full parser leaves
    it: white space after the bracket removed. A comment there, like any
    other unusual form, makes this return None.
    """
    match = _PLAIN_PATH.match(arg)
    if match is None:
        return None
    rest = arg[match.end() :]
    if rest.startswith(_CFWS_LEADERS):
        if rest[0] == "(":
            return None
        rest = rest.lstrip()
        if rest.startswith("("):
            return None
    return match.group(1), match.group(2), rest
