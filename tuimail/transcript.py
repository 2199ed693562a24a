"""The SMTP conversation as tuimail records it: timed, directed, redacted.

A :class:`Transcript` is a list of :class:`Entry` objects, each with its time
since the session began, its direction (client, server, or an event such as
"TLS established"), whether it travelled inside TLS, and its text. Entries go
to subscribers as they are added, so the app and the CLI show the session
live, and the whole transcript exports as text or JSON Lines.

Redaction happens *before* an entry exists, in :class:`ConversationRedactor`,
so no consumer (screen, export, log) can ever see a credential. It is driven by
the protocol itself (an ``AUTH`` command, a ``334`` continuation, a ``354``
before message data) rather than by who is sending, so the client session and
the sandbox server share it.
"""

from __future__ import annotations

import base64
import enum
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TextIO

REDACTED = "********"
#: Longest line kept in a transcript; longer ones are cut with a note.
MAX_LINE_CHARS = 2000
#: Entries kept per transcript; a server that floods is cut off with a marker.
MAX_ENTRIES = 50_000


class Direction(enum.StrEnum):
    CLIENT = "client"
    SERVER = "server"
    EVENT = "event"


class EventKind(enum.StrEnum):
    INFO = "info"
    CONNECTED = "connected"
    TLS = "tls"
    WARNING = "warning"
    ERROR = "error"
    CLOSED = "closed"
    TRIMMED = "trimmed"


class Entry(NamedTuple):
    """One line of the conversation, or one event.

    A named tuple: immutable like a frozen dataclass, but a session records
    several per message, and a tuple is made in a third of the time and is
    left out of the garbage collector's passes once it holds only plain values.
    """

    elapsed: float
    direction: Direction
    text: str
    secure: bool = False
    kind: EventKind | None = None
    redacted: bool = False
    data: dict[str, Any] | None = None

    @property
    def reply_code(self) -> int | None:
        """The SMTP reply code of a server line, for colouring by class."""
        if self.direction is Direction.SERVER and self.text[:3].isdigit():
            return int(self.text[:3])
        return None

    def marker(self) -> str:
        """swaks-style arrow: ``->``/``<-`` in plain text, ``~>``/``<~`` inside TLS."""
        if self.direction is Direction.CLIENT:
            return " ~>" if self.secure else " ->"
        if self.direction is Direction.SERVER:
            return "<~ " if self.secure else "<- "
        return "***" if self.kind in (EventKind.ERROR, EventKind.WARNING) else "==="

    def to_text(self) -> str:
        return f"{self.elapsed:8.3f} {self.marker()} {self.text}"

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "t": round(self.elapsed, 6),
            "dir": self.direction.value,
            "tls": self.secure,
            "text": self.text,
        }
        if self.kind is not None:
            record["kind"] = self.kind.value
        if self.redacted:
            record["redacted"] = True
        if self.data:
            record["data"] = self.data
        return record


Subscriber = Callable[[Entry], None]


@dataclass
class Transcript:
    """All entries of one session, delivered live to subscribers."""

    title: str = ""
    entries: list[Entry] = field(default_factory=list)
    started_wall: float = field(default_factory=time.time)
    _started: float = field(default_factory=time.monotonic, repr=False)
    _subscribers: list[Subscriber] = field(default_factory=list, repr=False)
    #: Entries kept; ``None``: :data:`MAX_ENTRIES`. A server-side session
    #: (the sandbox) keeps fewer, as it keeps many sessions at once.
    max_entries: int | None = None
    #: Characters of entry text kept in all; ``None``: no limit beyond entries.
    max_chars: int | None = None
    _forbidden: list[str] = field(default_factory=list, repr=False)
    _trimmed: bool = field(default=False, repr=False)
    _chars: int = field(default=0, repr=False)
    #: Entries left out once a limit was reached.
    omitted: int = field(default=0, repr=False)

    def subscribe(self, callback: Subscriber) -> None:
        self._subscribers.append(callback)

    def forbid(self, secret: str) -> None:
        """Never let ``secret`` (nor its base64 forms) appear in any entry.

        The protocol-level redaction already masks AUTH data; this is the
        second lock, for a secret that turns up where nobody expected it.
        """
        if secret:
            self.forbid_forms(secret_forms(secret))

    def forbid_forms(self, forms: list[str]) -> None:
        """Never let any of ``forms`` appear, exactly as given (longest matched first)."""
        self._forbidden.extend(form for form in forms if form)
        self._forbidden.sort(key=len, reverse=True)

    def scrub(self, text: str) -> tuple[str, bool]:
        """``text`` with every forbidden form masked, and whether one was found."""
        redacted = False
        for secret in self._forbidden:
            if secret in text:
                text = text.replace(secret, REDACTED)
                redacted = True
        return text, redacted

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def add(
        self,
        direction: Direction,
        text: str,
        *,
        secure: bool = False,
        kind: EventKind | None = None,
        redacted: bool = False,
        data: dict[str, Any] | None = None,
    ) -> Entry | None:
        # Past a limit only the end of a session is still kept.
        if kind is not EventKind.CLOSED and (self._trimmed or self._over_limit(len(text))):
            self._trim()
            return None
        # Masked before the cut: a secret lying across it would leave half behind.
        if self._forbidden:
            text, found = self.scrub(text)
            redacted = redacted or found
        if len(text) > MAX_LINE_CHARS:
            text = f"{text[:MAX_LINE_CHARS]}... [{len(text) - MAX_LINE_CHARS:,} more characters]"
        entry = Entry(self.elapsed, direction, text, secure, kind, redacted, data)
        self._chars += len(text)
        self._append(entry)
        return entry

    def _over_limit(self, length: int) -> bool:
        limit = self.max_entries or MAX_ENTRIES
        if len(self.entries) >= limit:
            return True
        chars = self.max_chars
        return chars is not None and self._chars + min(length, MAX_LINE_CHARS) > chars

    def _trim(self) -> None:
        """Leave out one entry; the first time, say so in a marker entry."""
        self.omitted += 1
        if self._trimmed:
            return
        self._trimmed = True
        limit = self.max_entries or MAX_ENTRIES
        chars = f" or {self.max_chars:,} characters" if self.max_chars is not None else ""
        self._append(
            Entry(
                self.elapsed,
                Direction.EVENT,
                f"transcript limit of {limit:,} lines{chars} reached; later lines omitted",
                kind=EventKind.TRIMMED,
            )
        )

    def event(
        self, kind: EventKind, text: str, *, secure: bool = False, **data: Any
    ) -> Entry | None:
        return self.add(Direction.EVENT, text, secure=secure, kind=kind, data=data or None)

    def _append(self, entry: Entry) -> None:
        self.entries.append(entry)
        for callback in self._subscribers:
            callback(entry)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def to_text(self) -> str:
        return "".join(entry.to_text() + "\n" for entry in self.entries)

    def write_text(self, stream: TextIO) -> None:
        for entry in self.entries:
            stream.write(entry.to_text() + "\n")

    def to_jsonl(self) -> str:
        return "".join(json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in self.entries)

    @classmethod
    def from_jsonl(cls, text: str, title: str = "") -> Transcript:
        """Read back what :meth:`to_jsonl` wrote (the sent folder keeps transcripts so)."""
        transcript = cls(title=title)
        for line in text.splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            kind = record.get("kind")
            transcript.entries.append(
                Entry(
                    elapsed=float(record["t"]),
                    direction=Direction(record["dir"]),
                    text=str(record["text"]),
                    secure=bool(record.get("tls", False)),
                    kind=EventKind(kind) if kind else None,
                    redacted=bool(record.get("redacted", False)),
                    data=record.get("data"),
                )
            )
        return transcript


def secret_forms(secret: str) -> list[str]:
    """``secret`` and the base64 text that contains it at any alignment.

    A password inside AUTH PLAIN's ``\\0user\\0password`` blob is base64-encoded
    at an offset, so the stable core of each of the three alignments is what
    can be searched for (the first and last characters depend on neighbours).
    """
    raw = secret.encode("utf-8")
    forms = {secret}
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw).decode("ascii")
        # Drop characters influenced by the padding bytes or by what follows.
        start = (pad * 4 + 2) // 3
        end = (4 * (pad + len(raw))) // 3
        core = encoded[start:end]
        if len(core) >= 4:
            forms.add(core)
    return sorted(forms, key=len, reverse=True)


def sasl_blob_forms(user: str, secret: str) -> list[str]:
    """The whole base64 SASL responses that carry ``secret`` for ``user``, and their parts.

    AUTH PLAIN's ``authzid\\0user\\0password`` (with and without an authzid),
    AUTH LOGIN's base64 password, and every form of :func:`secret_forms`:
    a server-side recorder that knows its users' passwords forbids all of them.
    """
    if not secret:
        return []
    blobs = {
        f"\0{user}\0{secret}".encode(),
        f"{user}\0{user}\0{secret}".encode(),
        secret.encode(),
    }
    forms = set(secret_forms(secret))
    forms.update(base64.b64encode(blob).decode("ascii") for blob in blobs)
    return sorted(forms, key=len, reverse=True)


#: SASL responses a client sends after ``AUTH MECHANISM`` with no initial
#: response (RFC 4954), by mechanism; with an initial response, one fewer.
#: A mechanism not listed is taken to need one: masking a line too many is the
#: safe side.
_SASL_RESPONSES = {"LOGIN": 2, "PLAIN": 1, "CRAM-MD5": 1, "XOAUTH2": 1, "OAUTHBEARER": 1}


@dataclass
class ConversationRedactor:
    """Knows, from the protocol alone, which lines carry secrets or message data.

    Feed it every line in order; it returns the text to record. Client lines of
    an ``AUTH`` command and the SASL responses after it are masked. Which lines
    are SASL responses is known from the client's own ``AUTH`` line (the
    mechanism says how many follow), not only from the server's ``334``
    challenges: a server-side recorder such as the sandbox sees a pipelining
    client's responses before it has answered the ``AUTH`` at all. A ``334``
    the client did not foresee (an XOAUTH2 error challenge, a mechanism not
    known here) makes one more line a response. After a ``354`` the client's
    lines are message content, which is summarised (bytes and lines) instead
    of recorded.
    """

    in_data: bool = False
    data_bytes: int = 0
    data_lines: int = 0
    #: Every server reply is seen after the client line it answers (a client
    #: recording its own session), so a final reply other than 334 ends an
    #: AUTH exchange for certain. A server-side recorder sees a pipelining
    #: client's lines first, and leaves this False.
    replies_in_order: bool = False
    #: Inside an AUTH exchange, as the client's lines show it.
    in_auth: bool = False
    #: Responses the mechanism itself calls for, then how many 334s came.
    sasl_expected: int = 0
    sasl_challenges: int = 0
    sasl_sent: int = 0

    @property
    def sasl_pending(self) -> bool:
        """True when the next client line is a SASL response, to be masked."""
        return self.in_auth and self.sasl_sent < max(self.sasl_expected, self.sasl_challenges)

    def client_line(self, line: str) -> tuple[str, bool] | None:
        """Text to record for a client line and whether it was redacted.

        ``None`` while inside message data: the summary comes with the final dot.
        """
        if self.in_data:
            if line == ".":
                self.in_data = False
                return self.data_summary(), False
            self.data_bytes += len(line.encode("utf-8", "surrogateescape")) + 2
            self.data_lines += 1
            return None
        if self.sasl_pending:
            self.sasl_sent += 1
            if line == "*":  # the client cancelled the exchange (RFC 4954 4)
                self.in_auth = False
                return line, False
            return REDACTED, True
        self.in_auth = False
        verb, _, rest = line.partition(" ")
        if verb.upper() == "AUTH" and rest:
            mechanism, _, initial = rest.strip().partition(" ")
            expected = _SASL_RESPONSES.get(mechanism.upper(), 1)
            self.in_auth = True
            self.sasl_challenges = self.sasl_sent = 0
            # "=" is an empty initial response (RFC 4954 4): the real one may follow.
            given = bool(initial) and initial != "="
            self.sasl_expected = max(0, expected - 1) if given else expected
            if initial:
                return f"{verb} {mechanism} {REDACTED}", True
        return line, False

    def client_data(self, payload_bytes: int, payload_lines: int) -> str:
        """Summary for a message payload seen in one piece (ends with ``.``)."""
        self.in_data = False
        self.data_bytes, self.data_lines = payload_bytes, payload_lines
        return self.data_summary()

    def data_summary(self) -> str:
        summary = f"[message content: {self.data_bytes:,} bytes, {self.data_lines:,} lines] ."
        self.data_bytes = self.data_lines = 0
        return summary

    def server_line(self, line: str) -> str:
        """Server lines are recorded as they are; they set what the client's next line is.

        A ``334`` inside an AUTH exchange asks for one more response; any
        other final reply ends the exchange, unless the client, by its own
        count, is still sending responses the server has not answered yet.
        """
        code = line[:3]
        final = line[3:4] != "-"
        if final:
            self.in_data = code == "354"
            if code == "334":
                if self.in_auth:
                    self.sasl_challenges += 1
            elif self.in_auth and (self.replies_in_order or self.sasl_sent >= self.sasl_expected):
                self.in_auth = False
        return line
