"""The inbox's search language, turned into SQL with every user word a bound value.

``from:ADDR``, ``to:ADDR``, ``subject:TEXT``, ``mailbox:NAME``, ``tag:TAG``,
``has:attachment``, ``is:read`` / ``is:unread``, and free text. Terms are
ANDed. A value may be quoted (``subject:"two words"``); an unclosed quote
runs to the end. A key with no value yet (``from:``, as typed so far) is
left out, so the list does not empty while the value is typed. Free text goes to SQLite's FTS5, each word written as an
FTS5 string (``"word"*``, inner quotes doubled): whatever the user types
(``"``, ``NEAR(``, ``*``, ``-``, ``AND``) is a word to look for, never
query syntax, so a search cannot fail or mean something else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Keys a term may start with; anything else (``http://x``) is free text.
KEYS = ("from", "to", "subject", "mailbox", "tag", "has", "is")


@dataclass
class Query:
    """A parsed search: SQL conditions on ``messages`` with their values, and an FTS5 string."""

    where: list[str] = field(default_factory=list)
    values: list[object] = field(default_factory=list)
    fts: str = ""

    def copy(self) -> Query:
        return Query(list(self.where), list(self.values), self.fts)

    def sql(self) -> tuple[str, list[object]]:
        """The WHERE clause (``1`` when empty) and its values, FTS included."""
        where = list(self.where)
        values = list(self.values)
        if self.fts:
            where.append("m.id IN (SELECT rowid FROM texts WHERE texts MATCH ?)")
            values.append(self.fts)
        return (" AND ".join(where) or "1"), values


def tokens(text: str) -> list[str]:
    """Words split on white space; ``"..."`` groups (the quotes are removed)."""
    found: list[str] = []
    current: list[str] = []
    quoted = False
    started = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
            started = True
        elif ch.isspace() and not quoted:
            if started:
                found.append("".join(current))
            current, started = [], False
        else:
            current.append(ch)
            started = True
    if started:
        found.append("".join(current))
    return found


def like(value: str) -> str:
    """``value`` as a LIKE pattern matching it anywhere (``%``, ``_``, ``\\`` escaped)."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def fts_word(word: str) -> str:
    """One word as an FTS5 prefix string; empty when it holds nothing FTS5 indexes."""
    if not any(ch.isalnum() for ch in word):
        return ""
    return '"' + word.replace('"', '""') + '"*'


def parse_query(text: str) -> Query:
    query = Query()
    words: list[str] = []
    for token in tokens(text[:2000]):
        key, colon, value = token.partition(":")
        key = key.lower()
        if colon and key in KEYS and not value:
            continue  # a key whose value is still to be typed narrows nothing yet
        if not colon or key not in KEYS:
            words.append(token)
            continue
        if key == "from":
            query.where.append(
                "(m.mail_from LIKE ? ESCAPE '\\' OR m.envelope_from LIKE ? ESCAPE '\\')"
            )
            query.values += [like(value)] * 2
        elif key == "to":
            query.where.append(
                "(m.to_addrs LIKE ? ESCAPE '\\' OR m.cc_addrs LIKE ? ESCAPE '\\'"
                " OR m.envelope_to LIKE ? ESCAPE '\\')"
            )
            query.values += [like(value)] * 3
        elif key == "subject":
            query.where.append("m.subject LIKE ? ESCAPE '\\'")
            query.values.append(like(value))
        elif key == "mailbox":
            query.where.append("m.mailbox = ?")
            query.values.append(value)
        elif key == "tag":
            query.where.append("m.tags LIKE ? ESCAPE '\\'")
            query.values.append(like(f" {value.lower()} "))
        elif key == "has" and value.lower() in ("attachment", "attachments"):
            query.where.append("m.has_attachment = 1")
        elif key == "is" and value.lower() in ("read", "unread"):
            query.where.append("m.seen = ?")
            query.values.append(1 if value.lower() == "read" else 0)
        else:
            words.append(token)
    query.fts = " ".join(filter(None, (fts_word(word) for word in words)))
    return query


def filters(*, to: str = "", mail_from: str = "", subject: str = "") -> Query:
    """A query of the given fields (each matched anywhere, case-insensitively), as given:
    no word of them is read as search syntax (``tuimail inbox wait``)."""
    query = Query()
    for key, value in (("to", to), ("from", mail_from), ("subject", subject)):
        if value:
            query.where.extend(parse_query(f"{key}:x").where)
            count = 3 if key == "to" else 2 if key == "from" else 1
            query.values += [like(value)] * count
    return query
