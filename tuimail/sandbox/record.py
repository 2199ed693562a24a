"""What the sandbox keeps of a session: its record, and the messages it stored.

Every session is kept in memory (for the app) and written to disk, so each
part a client controls is bounded here: the transcript, the messages listed,
the recipients listed per message, and a Message-ID's length.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuimail.terminal_text import escape_controls
from tuimail.transcript import EventKind, Transcript

if TYPE_CHECKING:
    from aiosmtpd.smtp import Envelope

#: What one session keeps of its transcript. Every session is kept in memory
#: (up to :data:`MAX_SESSIONS_IN_MEMORY`) and on disk, so a client that
#: floods the sandbox with lines must not make either grow with it: past the
#: limits a marker says lines were left out, and the session's end is kept.
SESSION_MAX_ENTRIES = 1000
SESSION_MAX_CHARS = 128 * 1024
#: Stored messages listed per session record (all of them are in the Maildir
#: and counted); a client sending a million tiny messages in one session
#: must not grow the record with it.
SESSION_MAX_MESSAGES = 200
#: Recipients listed per stored message in a session record.
MESSAGE_MAX_LISTED_RECIPIENTS = 100
#: A Message-ID longer than this is kept cut (real ones are well under 100).
MAX_MESSAGE_ID_CHARS = 256

_MESSAGE_ID_RE = re.compile(rb"(?im)^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)")


class SessionOutcome(enum.Enum):
    """How a session ended, or that it has not yet.

    The value is the words ``tuimail serve`` prints and the session file
    keeps (:meth:`words`); ``{detail}`` is filled from
    :attr:`SessionRecord.outcome_detail`: the fault, or the idle timeout.
    """

    IN_PROGRESS = "in progress"
    COMPLETED = "completed"
    CLOSED_WITHOUT_QUIT = "client closed the connection without QUIT"
    VANISHED_DURING_DATA = "client vanished during DATA; nothing stored from it"
    TIMED_OUT = "timed out after {detail} without a command"
    DISCONNECTED_BY_FAULT = "disconnected by fault {detail}"
    CLOSED_AFTER_FAULT = "closed after fault {detail}"
    HANDSHAKE_INCOMPLETE = "the TLS handshake after STARTTLS did not complete"
    NOT_ACCEPTED = "turned away at random (accept probability {detail})"
    STOPPED = "stopped with the sandbox"

    def words(self, detail: str = "") -> str:
        return self.value.format(detail=detail)


@dataclass(frozen=True)
class StoredMessage:
    key: str
    message_id: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    size: int
    session_id: str
    received_at: float
    #: Recipients of the envelope; ``rcpt_tos`` lists the first
    #: :data:`MESSAGE_MAX_LISTED_RECIPIENTS` of them (the message has them all).
    rcpt_count: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "message_id": self.message_id,
            "mail_from": self.mail_from,
            "rcpt_tos": list(self.rcpt_tos),
            "rcpt_count": self.rcpt_count or len(self.rcpt_tos),
            "size": self.size,
            "session_id": self.session_id,
            "received_at": self.received_at,
        }


@dataclass(eq=False)
class SessionRecord:
    """One client connection as the server saw it."""

    id: str
    peer: str
    started: float = field(default_factory=time.time)
    ended: float | None = None
    helo: str = ""
    outcome: SessionOutcome = SessionOutcome.IN_PROGRESS
    #: What :attr:`outcome` names, when it names something: the fault, the timeout.
    outcome_detail: str = ""
    secure: bool = False
    authenticated_as: str = ""
    #: The SASL mechanism ``authenticated_as`` used (PLAIN, XOAUTH2...).
    auth_mechanism: str = ""
    messages: list[StoredMessage] = field(default_factory=list)
    #: Messages stored in this session, listed in ``messages`` or not.
    message_count: int = 0
    transcript: Transcript = field(
        default_factory=lambda: Transcript(
            max_entries=SESSION_MAX_ENTRIES, max_chars=SESSION_MAX_CHARS
        )
    )

    def note_stored(self, key: str, envelope: Envelope, content: bytes) -> StoredMessage:
        """Count a message stored under ``key``, list it (up to a bound) and say so."""

        def scrub(text: str) -> str:
            return self.transcript.scrub(text)[0]

        stored = StoredMessage(
            key=key,
            message_id=message_id(content, scrub),
            mail_from=scrub(str(envelope.mail_from or "")),
            rcpt_tos=tuple(
                scrub(rcpt) for rcpt in envelope.rcpt_tos[:MESSAGE_MAX_LISTED_RECIPIENTS]
            ),
            rcpt_count=len(envelope.rcpt_tos),
            size=len(content),
            session_id=self.id,
            received_at=time.time(),
        )
        self.message_count += 1
        if len(self.messages) < SESSION_MAX_MESSAGES:
            self.messages.append(stored)
        self.transcript.event(
            EventKind.INFO, f"stored message {key} ({len(content):,} bytes) {stored.message_id}"
        )
        return stored

    @property
    def outcome_words(self) -> str:
        """The outcome as ``tuimail serve`` prints it and the session file keeps it."""
        return self.outcome.words(self.outcome_detail)

    def summary(self) -> str:
        duration = f"{(self.ended or time.time()) - self.started:.3f}s"
        helo = f" helo {self.helo}" if self.helo else ""
        tls = " TLS" if self.secure else ""
        auth = ""
        if self.auth_mechanism:
            who = f" as {self.authenticated_as}" if self.authenticated_as else ""
            auth = f" auth {self.auth_mechanism}{who}"
        return (
            f"session {self.id} from {self.peer}{helo}{tls}{auth}: {self.outcome_words}, "
            f"{self.message_count} message(s), {duration}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "peer": self.peer,
            "started": self.started,
            "ended": self.ended,
            "helo": self.helo,
            "outcome": self.outcome_words,
            "secure": self.secure,
            "authenticated_as": self.authenticated_as,
            "auth_mechanism": self.auth_mechanism,
            "messages": [m.to_json() for m in self.messages],
            "message_count": self.message_count,
            "transcript": [e.to_json() for e in self.transcript],
        }


def message_id(content: bytes, scrub: Callable[[str], str] = str) -> str:
    """The Message-ID header, unfolded; a scan, not a parse (it runs for every message).

    The client wrote it: control characters are escaped (it is printed), and
    it is cut to :data:`MAX_MESSAGE_ID_CHARS` (every stored message keeps it),
    after ``scrub`` masked known passwords in all of it (a cut through one
    would show its start).
    """
    head = content[:65536].split(b"\r\n\r\n", 1)[0]
    match = _MESSAGE_ID_RE.search(head)
    if not match:
        return ""
    text = scrub(" ".join(match.group(1).decode("utf-8", "replace").split()))
    if len(text) > MAX_MESSAGE_ID_CHARS:
        text = text[:MAX_MESSAGE_ID_CHARS] + "..."
    return escape_controls(text)
