"""Strict parsing of the addresses a person types into To, Cc, Bcc, From.

The standard library's header parser is built to *read* whatever arrives in a
mailbox, so it repairs and guesses: ``alice@bank.com <mallory@evil.test>``
silently becomes ``alice@bank.com``, ``<a@b.com`` loses its bracket, and some
inputs raise ``IndexError``. A sender must not guess, so this module accepts
only unambiguous forms and names the problem otherwise:

* ``local@domain``
* ``Display Name <local@domain>`` or ``"Quoted, Name" <local@domain>``

Comments in parentheses, groups, unbalanced brackets, and an address inside a
display name are refused, as are control characters and names the email
package could not write out intact. Domains in Unicode are converted to IDNA so
that only a non-ASCII *local part* needs the server's SMTPUTF8 extension; a
domain the two IDNA standards spell differently (``faß.de``) is refused.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from email import errors as email_errors
from email.header import decode_header, make_header
from email.headerregistry import Address, HeaderRegistry

from tuimail.errors import TuimailError

# RFC 5322 atext, plus any non-ASCII character (RFC 6532) for SMTPUTF8.
# Written as "ASCII atext or any non-ASCII character": a class spanning
# U+0080..U+10FFFF costs milliseconds to compile at every start-up.
_ATEXT = r"(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]|[^\x00-\x7f])"
_DOT_ATOM_RE = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_ADDRESS_LITERAL_RE = re.compile(r"\[(?:\d{1,3}(?:\.\d{1,3}){3}|IPv6:[0-9A-Fa-f:.]+)\]")
_UNQUOTED_NAME_FORBIDDEN = set('<>[]:;@\\,"()')
_LOOKS_LIKE_ADDRESS_RE = re.compile(r"\S@\S")
_QUOTED_STRING_RE = re.compile(r'"(?:\\.|[^"\\])*"')
_DOMAIN_LITERAL_RE = re.compile(r"\[[^\[\]]*\]")
# Python's email folder (3.11, 3.12) drops the quotes of a quoted display name
# it has to split across lines, turning "Doe, John" into two mailboxes. A name
# that needs quotes must therefore fit on one folded line (78 columns).
_NEEDS_QUOTES = set('()<>@,:;"[]\\')
MAX_QUOTED_NAME = 76
#: A longer name could not be kept under the 998-octet line limit of RFC 5322.
MAX_NAME_OCTETS = 256
#: An RFC 2047 encoded word, as the email package's readers recognise one: no
#: white space inside, and the charset may be empty (it is still decoded).
#: The one definition: :mod:`tuimail.message` builds on it too.
ENCODED_WORD = r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?="
ENCODED_WORD_RE = re.compile(ENCODED_WORD)
_UNSTRUCTURED = HeaderRegistry()
# IDNA 2003 (Python's codec) maps these away where IDNA 2008 keeps them:
# faß.de would silently become fass.de, a different domain.
_IDNA_DEVIATIONS = set("\u00df\u03c2\u200c\u200d")


class AddressError(TuimailError, ValueError):
    """An address that cannot be sent to without guessing; the message says why."""


@dataclass(frozen=True)
class ParsedAddress:
    """One mailbox: what goes in the header and what goes in the envelope."""

    display_name: str
    local_part: str
    domain: str  # ASCII (IDNA) form

    @property
    def addr_spec(self) -> str:
        return f"{self.local_part}@{self.domain}"

    @property
    def needs_smtputf8(self) -> bool:
        return not self.local_part.isascii()

    def to_header_address(self) -> Address:
        return Address(display_name=self.display_name, username=self.local_part, domain=self.domain)

    def __str__(self) -> str:
        return str(self.to_header_address())


def _unquoted(text: str) -> Iterator[tuple[int, str, bool]]:
    """Each character with its index and whether it is *syntax*: outside a quoted
    string, and neither a quote mark nor an escaped character. One scanner for
    every question about quotes, so they cannot disagree."""
    in_quotes = escaped = False
    for index, ch in enumerate(text):
        if escaped:
            escaped = False
            yield index, ch, False
        elif ch == "\\" and in_quotes:
            escaped = True
            yield index, ch, False
        elif ch == '"':
            in_quotes = not in_quotes
            yield index, ch, False
        else:
            yield index, ch, not in_quotes


def quoted_name(name: str) -> str:
    """``name`` as one RFC 5322 quoted string: backslashes and double quotes escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mailbox_text(display_name: str, address: str) -> str:
    """A From value for a profile: ``"Name" <address>``, or the bare address without a name.

    The name is always quoted, so a comma or a dot in it never reads as syntax.
    """
    return f"{quoted_name(display_name)} <{address}>" if display_name else address


def split_address_list(text: str) -> list[str]:
    """Split on commas that are outside quotes and angle brackets."""
    items: list[str] = []
    start = depth = 0
    for index, ch, syntax in _unquoted(text):
        if not syntax:
            continue
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:index])
            start = index + 1
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]


def parse_address_list(text: str) -> list[ParsedAddress]:
    """Parse a comma-separated list; raises :class:`AddressError` for the first bad one."""
    if _has_unclosed_quote(text):
        raise AddressError(f"{text.strip()!r}: a quotation mark is not closed")
    return [parse_address(item) for item in split_address_list(text)]


def parse_address(text: str) -> ParsedAddress:
    """Parse one address in one of the accepted forms."""
    original = text.strip()
    if not original:
        raise AddressError("the address is empty")
    if any(ch in original for ch in "\r\n\0"):
        raise AddressError(f"{original!r}: line breaks and NUL characters are not allowed")
    if any(is_control_char(ch) for ch in original):
        raise AddressError(f"{original!r}: control characters are not allowed")
    problem = header_text_problem(original)
    if problem:
        raise AddressError(f"{original!r}: {problem}")
    display, spec = _split_display_and_spec(original)
    local, domain = _parse_addr_spec(spec, original)
    return ParsedAddress(display_name=display, local_part=local, domain=domain)


def _split_display_and_spec(text: str) -> tuple[str, str]:
    unquoted = _strip_quoted(text)
    if "(" in unquoted or ")" in unquoted:
        raise AddressError(f"{text!r}: comments in parentheses are not allowed in an address")
    opens, closes = unquoted.count("<"), unquoted.count(">")
    if opens != closes or opens > 1:
        raise AddressError(f"{text!r}: the angle brackets < > do not match")
    if opens == 0:
        if '"' in text:
            raise AddressError(f"{text!r}: a quoted name needs an address in <...> after it")
        outside_literal = _DOMAIN_LITERAL_RE.sub("", text)  # [IPv6:...] has colons
        if ":" in outside_literal or ";" in outside_literal:
            raise AddressError(f"{text!r}: address groups are not supported")
        return "", text
    start = _index_outside_quotes(text, "<")
    end = _index_outside_quotes(text, ">")
    if end < start:
        raise AddressError(f"{text!r}: the angle brackets < > are in the wrong order")
    if text[end + 1 :].strip():
        raise AddressError(f"{text!r}: unexpected text after the closing '>'")
    display = _parse_display_name(text[:start].strip(), text)
    return display, text[start + 1 : end].strip()


def _parse_display_name(raw: str, whole: str) -> str:
    if not raw:
        return ""
    if raw.startswith('"'):
        if not _QUOTED_STRING_RE.fullmatch(raw):
            raise AddressError(f"{whole!r}: the quoted name must be the whole name")
        name = re.sub(r"\\(.)", r"\1", raw[1:-1])
    else:
        bad = sorted(set(raw) & _UNQUOTED_NAME_FORBIDDEN)
        if "@" in bad:
            raise AddressError(
                f"{whole!r}: the name before <...> contains an address; put only the "
                "address inside <...> so the recipient sees who really sent it"
            )
        if bad:
            shown = " ".join(bad)
            raise AddressError(f"{whole!r}: put a name with {shown} in double quotes")
        name = raw
    if _LOOKS_LIKE_ADDRESS_RE.search(name):
        raise AddressError(
            f"{whole!r}: the display name contains an address; this is a common "
            "spoofing trick, so write the name without '@'"
        )
    name = " ".join(name.split())
    if len(name.encode("utf-8")) > MAX_NAME_OCTETS:
        raise AddressError(f"{whole!r}: the name is longer than {MAX_NAME_OCTETS} octets")
    if set(name) & _NEEDS_QUOTES:
        quoted_length = len(name) + 2 + name.count('"') + name.count("\\")
        if quoted_length > MAX_QUOTED_NAME:
            raise AddressError(
                f"{whole!r}: a name with punctuation such as ',' must be at most "
                f"{MAX_QUOTED_NAME} characters with its quotes, or it cannot be sent intact"
            )
    return name


def _parse_addr_spec(spec: str, whole: str) -> tuple[str, str]:
    if spec.count("@") != 1:
        raise AddressError(f"{whole!r}: an address needs exactly one '@', as in name@example.com")
    local, domain = spec.split("@")
    if not local:
        raise AddressError(f"{whole!r}: the part before '@' is empty")
    if not domain:
        raise AddressError(f"{whole!r}: the domain after '@' is empty")
    if not _DOT_ATOM_RE.fullmatch(local):
        raise AddressError(f"{whole!r}: {local!r} is not a valid name before '@'")
    if ENCODED_WORD_RE.search(local):
        # Mail readers decode it even there, so the address shown would not be
        # the address mail goes to, and a decoded line break would add a header.
        raise AddressError(
            f"{whole!r}: the part before '@' looks like an encoded word (=?...?=), "
            "which mail readers would decode"
        )
    if len(local.encode("utf-8")) > 64:
        raise AddressError(f"{whole!r}: the part before '@' is longer than 64 octets")
    try:
        domain_in_ascii = _ascii_domain(domain)
    except AddressError as exc:
        raise AddressError(f"{whole!r}: {exc}") from None
    if len(local.encode("utf-8")) + 1 + len(domain_in_ascii) > 254:
        raise AddressError(f"{whole!r}: the address is longer than 254 octets")
    return local, domain_in_ascii


def ascii_domain(domain: str) -> str:
    """A domain name (no address literal) in its ASCII form, as DNS asks for it.

    ``bücher.example`` becomes ``xn--bcher-kva.example``, as in an address, so
    a command given a mail domain takes it the way its users write it.
    """
    if domain.startswith("["):
        raise AddressError(f"{domain!r} is an address literal, not a domain name")
    return _ascii_domain(domain)


def _ascii_domain(domain: str) -> str:
    if _ADDRESS_LITERAL_RE.fullmatch(domain):
        import ipaddress

        literal = domain[1:-1]
        try:
            if literal.startswith("IPv6:"):
                ipaddress.IPv6Address(literal.removeprefix("IPv6:"))
            else:
                ipaddress.IPv4Address(literal)
        except ValueError:
            raise AddressError(f"{domain!r} is not a valid address literal") from None
        return domain
    if domain.endswith("."):
        domain = domain[:-1]
    if not domain.isascii():
        if set(domain) & _IDNA_DEVIATIONS:
            raise AddressError(
                f"{domain!r} is spelled differently by the two IDNA standards "
                "(as with 'ß'); give the domain in its xn-- form"
            )
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise AddressError(f"{domain!r} is not a valid domain name") from None
    labels = domain.split(".")
    if len(domain) > 253 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise AddressError(f"{domain!r} is not a valid domain name")
    return domain.lower()


def is_control_char(ch: str) -> bool:
    """A character that must not reach a header: C0/C1 controls (but tab), DEL, U+2028/9."""
    return ch != "\t" and unicodedata.category(ch) in ("Cc", "Zl", "Zp")


def has_surrogates(text: str) -> bool:
    """Text that came from bytes which are not UTF-8 (argv, file names) holds surrogates."""
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def decoded_forms(value: str) -> list[str]:
    """``value`` as mail readers could show it: its RFC 2047 encoded words decoded.

    Both of the email package's decoders are asked (the older one and the one
    the default policy uses), because they do not accept the same inputs. A
    value that neither can decode is returned as it is.
    """
    forms = [value]
    if "=?" not in value:
        return forms
    failures = (email_errors.HeaderParseError, LookupError, UnicodeError, ValueError)
    with contextlib.suppress(*failures):
        forms.append(str(make_header(decode_header(value))))
    with contextlib.suppress(*failures):
        forms.append(str(_UNSTRUCTURED("X-Check", value)))
    return forms


def header_text_problem(value: str) -> str | None:
    """Why ``value`` cannot go into a header, judged after decoding, or None.

    Python releases without the fix for CVE-2024-6923 (3.11.7 among them)
    decode an encoded word holding CR/LF and write the line break raw when they
    fold, so a value is judged by what it decodes to, not only by what it is.
    """
    if has_surrogates(value):
        return "is not valid UTF-8 text"
    for form in decoded_forms(value)[1:]:
        bad = next((ch for ch in form if ch == "\0" or is_control_char(ch)), None)
        if bad is not None:
            what = {"\r": "a carriage return", "\n": "a line break", "\0": "a NUL character"}
            named = what.get(bad, f"the control character U+{ord(bad):04X}")
            return (
                f"contains an encoded word (=?...?=) that decodes to {named}, "
                "which could inject extra headers"
            )
    return None


def _has_unclosed_quote(text: str) -> bool:
    """Complete quoted strings (escapes included) become ``""``; an odd quote is left."""
    return _strip_quoted(text).count('"') % 2 == 1


def _strip_quoted(text: str) -> str:
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def _index_outside_quotes(text: str, target: str) -> int:
    return next((index for index, ch, syntax in _unquoted(text) if syntax and ch == target), -1)
