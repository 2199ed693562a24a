"""Message templates: files in the config dir's ``templates/``, filled in when a message starts.

A template is a small text file: header lines (``Subject: Weekly report for
$date``), a blank line, then the body. A file whose first line is not a
header is all body. Its ``$name`` fields come from a fixed set
(:data:`FIELDS`) and are filled with :meth:`string.Template.safe_substitute`:
a field outside the set (``$other``, ``${__class__}``) is left as written,
and nothing in a template can reach an attribute of anything, as
``str.format`` could (``{0.__class__}``). Header values are filled one by
one after the file is split, so a field's value can never start a header
of its own; the message's usual checks (tuimail/message.py) then judge the
result as any typed message.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tuimail import paths
from tuimail.addresses import AddressError, parse_address_list
from tuimail.errors import NotFound, TuimailError
from tuimail.message import Draft, decode_text, split_header
from tuimail.small_files import NotReadable, read_small_file

#: The fields a template may use, and what each holds.
FIELDS = {
    "date": "today's date, as 2026-12-04",
    "profile": "the profile's name",
    "from": "the sender's address",
    "from_name": "the sender's name (its address when it has none)",
    "to": "the To addresses, separated by commas",
    "to_names": "the To recipients' names (each one's address when it has none)",
}
#: A template's name: a file name in ``templates/``, never a path.
TEMPLATE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TEMPLATE_LIMIT = 1024 * 1024
_HEADER_LINE_RE = re.compile(r"[!-9;-~]+:")
#: Headers of a template that set a draft's own fields.
_ADDRESS_FIELDS = {"to": "to", "cc": "cc", "bcc": "bcc", "reply-to": "reply_to"}


class TemplateError(TuimailError):
    """A template that cannot be used: its name, and why."""

    def __init__(self, name: str, words: str) -> None:
        self.name = name
        self.words = words
        super().__init__(f"template {name!r}: {words}")


class TemplateNameInvalid(TemplateError):
    """A template asked for by a path (``../x``), not by a name in the templates folder."""


@dataclass(frozen=True)
class Template:
    """A template split into its header lines and body, not yet filled in."""

    name: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""


@dataclass(frozen=True)
class TemplateFields:
    """The values of :data:`FIELDS` for one message."""

    date: str = ""
    profile: str = ""
    from_address: str = ""
    from_name: str = ""
    to: Sequence[str] = field(default_factory=tuple)
    to_names: Sequence[str] = field(default_factory=tuple)

    def mapping(self) -> dict[str, str]:
        return {
            "date": self.date,
            "profile": self.profile,
            "from": self.from_address,
            "from_name": self.from_name,
            "to": ", ".join(self.to),
            "to_names": ", ".join(self.to_names),
        }


def templates_dir() -> Path:
    return paths.config_dir() / "templates"


def check_name(name: str) -> None:
    """Raise :class:`TemplateNameInvalid` for a name that is not a plain file name (``../x``)."""
    if not TEMPLATE_NAME_RE.fullmatch(name) or ".." in name:
        raise TemplateNameInvalid(
            name,
            "a template is named by its file name in the templates folder: letters, "
            "digits, '.', '_' or '-', not a path",
        )


def list_templates() -> list[str]:
    """The names of the templates there are, sorted; [] without a templates folder."""
    try:
        entries = list(templates_dir().iterdir())
    except OSError:
        return []
    return sorted(
        entry.name
        for entry in entries
        if TEMPLATE_NAME_RE.fullmatch(entry.name) and ".." not in entry.name and entry.is_file()
    )


def load_template(name: str) -> Template:
    """Read and split the template ``name``.

    Raises :class:`TemplateError` for a bad name or an unreadable file, and
    :class:`~tuimail.errors.NotFound` (listing the templates there are) for
    one that does not exist.
    """
    check_name(name)
    path = templates_dir() / name
    try:
        text = decode_text(read_small_file(path, TEMPLATE_LIMIT))
    except FileNotFoundError:
        raise NotFound("template", name, tuple(list_templates())) from None
    except NotReadable as exc:
        raise TemplateError(name, exc.words) from None
    except OSError as exc:
        raise TemplateError(name, f"cannot be read ({exc.strerror})") from None
    return parse_template(name, text)


def parse_template(name: str, text: str) -> Template:
    """Split ``text`` into header lines (with their continuation lines) and body."""
    lines = text.split("\n")
    if not lines or not _HEADER_LINE_RE.match(lines[0]):
        return Template(name, (), text)
    headers: list[tuple[str, str]] = []
    index = 0
    while index < len(lines) and lines[index] != "":
        line = lines[index]
        if line[:1] in (" ", "\t") and headers:
            last_name, last_value = headers[-1]
            headers[-1] = (last_name, f"{last_value} {line.strip()}")
        else:
            pair = split_header(line)
            if pair is None:
                raise TemplateError(name, f"line {index + 1} is neither a header nor blank")
            headers.append(pair)
        index += 1
    return Template(name, tuple(headers), "\n".join(lines[index + 1 :]))


def fill(text: str, fields: Mapping[str, str]) -> str:
    """``text`` with the known ``$name`` fields filled; anything else left as written."""
    return string.Template(text).safe_substitute(fields)


def fields_for(draft: Draft, profile: str, date: str) -> TemplateFields:
    """The field values for a message going out as ``draft`` so far (its From and To)."""
    to: list[str] = []
    names: list[str] = []
    for value in draft.to:
        try:
            parsed = parse_address_list(value)
        except AddressError:
            continue  # the message's checks name it later
        for address in parsed:
            to.append(address.addr_spec)
            names.append(address.display_name or address.addr_spec)
    from_address = from_name = ""
    try:
        senders = parse_address_list(draft.from_address)
    except AddressError:
        senders = []
    if senders:
        from_address = senders[0].addr_spec
        from_name = senders[0].display_name or from_address
    return TemplateFields(date, profile, from_address, from_name, tuple(to), tuple(names))


def apply_template(draft: Draft, template: Template, fields: TemplateFields) -> Draft:
    """``draft`` started from ``template``: what the draft already holds wins.

    The template's Subject is used when the draft has none; its To, Cc, Bcc
    and Reply-To are added to the draft's; its From only when the draft has
    no sender; any other header becomes an extra header. The body is the
    template's, followed by the draft's own text if it has any.
    """
    values = fields.mapping()
    changes: dict[str, object] = {}
    extra = list(draft.headers)
    for name, raw in template.headers:
        value = fill(raw, values)
        lower = name.lower()
        if lower == "subject":
            if not draft.subject:
                changes["subject"] = value
        elif lower == "from":
            if not draft.from_address:
                changes["from_address"] = value
        elif lower in _ADDRESS_FIELDS:
            attribute = _ADDRESS_FIELDS[lower]
            current = list(changes.get(attribute, getattr(draft, attribute)))  # type: ignore[call-overload]
            if value:
                current.append(value)
            changes[attribute] = current
        else:
            extra.append((name, value))
    body = fill(template.body, values)
    if draft.body:
        body = f"{body.rstrip(chr(10))}\n\n{draft.body}" if body.strip() else draft.body
    return replace(draft, headers=extra, body=body, **changes)  # type: ignore[arg-type]
