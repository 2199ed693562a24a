"""The sandbox: a local capture SMTP server with server-side transcripts and faults.

What Mailpit and smtp4dev give a developer (every message kept, nothing
delivered), plus what none of them shows: the conversation as the server saw
it, recorded with the same :class:`~tuimail.transcript.Transcript` model and
the same redaction as the client side. Built on aiosmtpd; listens on loopback
unless told otherwise; keeps mail in a Maildir (standard library
:mod:`mailbox`) exactly as received after dot-unstuffing.

A message is written to the Maildir (``tmp`` then rename into ``new``, mode
0600) before the 250 reply, so a message the sandbox acknowledged survives the
sandbox being stopped or killed. It is not fsynced (a power cut may lose the
last ones): the sandbox is a capture tool, not an MTA. The ``tmp`` files are
made ahead by a helper thread (:class:`~tuimail.maildir.SpareFiles`), because
creating a file can cost more than a whole SMTP exchange on a busy disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import itertools
import json
import logging
import mailbox
import os
import re
import secrets
import ssl
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiosmtpd.smtp import (
    MISSING,
    SMTP,
    AuthResult,
    Envelope,
    LoginPassword,
    Session,
    TLSSetupException,
)

from tuimail import paths
from tuimail.atomic import atomic_write_bytes
from tuimail.envelope_path import plain_path
from tuimail.faults import GREYLIST_REPLY, FaultAction, FaultPlan, FaultRule, FaultStage
from tuimail.maildir import (
    SpareFiles,
    deliver,
    deliver_with,
    ensure_maildir,
    make_private_dirs,
)
from tuimail.profiles import Profile, Security
from tuimail.sandbox_profile import builtin_profile, runtime_file
from tuimail.selfsigned import CertificateError, load_server_context
from tuimail.smtp_data import DataState, MessageData, read_message_data
from tuimail.terminal_text import decode_for_terminal, escape_controls
from tuimail.transcript import (
    ConversationRedactor,
    Direction,
    Entry,
    EventKind,
    Transcript,
    sasl_blob_forms,
)

DEFAULT_PORT = 2525
DEFAULT_SIZE_LIMIT = 32 * 1024 * 1024
#: Sessions kept in memory for the app; all of them are also written to disk.
MAX_SESSIONS_IN_MEMORY = 200
#: Session files kept on disk; the oldest are removed at start-up and while running.
MAX_SESSION_FILES = 1000
#: Session files older than this are removed too.
MAX_SESSION_AGE = 7 * 24 * 3600.0
#: While running, the files are pruned after this many sessions end...
PRUNE_EVERY_SESSIONS = 50
#: ...or when a session ends this long after the last pruning.
PRUNE_EVERY_SECONDS = 60.0
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
#: Recipients per message, as Postfix's ``smtpd_recipient_limit``; more are
#: answered :data:`TOO_MANY_RECIPIENTS`, as Postfix does.
MAX_RECIPIENTS = 1000
TOO_MANY_RECIPIENTS = "452 4.5.3 Error: too many recipients"
#: A client line longer than this without a line end is recorded in pieces.
MAX_PENDING_LINE = 64 * 1024
#: Client bytes held while the tap waits for the server's answer to DATA or
#: STARTTLS; a client that sends more without waiting is recorded as it comes.
MAX_HELD = 4 * MAX_PENDING_LINE
#: Messages up to this size are written on the event loop, into files made
#: ahead (see :class:`~tuimail.maildir.SpareFiles`); larger ones in a thread.
#: Handing a small write to a thread cost more than the write itself: the two
#: threads' GIL hand-offs stalled the loop's socket calls, and the sandbox took
#: 1,614 us of CPU a 2 KB message in a thread against 1,070 us inline
#: (benchmarks/bench_sandbox.py, tmpfs). A large write could hold the loop,
#: which in the app is also the UI's, so it still goes to a thread.
INLINE_WRITE_LIMIT = 256 * 1024

#: Postfix's answer to a non-ASCII address in a transaction that did not
#: declare SMTPUTF8 (RFC 6531 3.4): an application that forgets it fails here
#: as it would against a production server.
NEEDS_SMTPUTF8 = "553 5.6.7 Must declare SMTPUTF8 to send unicode address"

#: The answer to a connection beyond the cap; it is closed straight after.
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections, try again later"
#: File descriptors kept free for what is not a connection: the listening
#: sockets, the Maildir files made ahead, session files, TLS files, stdio.
FD_RESERVE = 64
#: However high the open-file limit, no more connections than this at once.
MAX_CONNECTIONS_CEILING = 4096

#: A Message-ID longer than this is kept cut (real ones are well under 100).
MAX_MESSAGE_ID_CHARS = 256

_ADDRESS_RE = re.compile(r"<([^>]*)>")
_MESSAGE_ID_RE = re.compile(rb"(?im)^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)")


class TLSMode(enum.StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    IMPLICIT = "implicit"


class SandboxError(Exception):
    """The sandbox cannot start; the message says why in plain words."""


@dataclass
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    maildir: Path | None = None
    tls: TLSMode = TLSMode.NONE
    #: ``None``: no AUTH; empty dict: any credentials accepted; else user -> password.
    auth_users: dict[str, str] | None = None
    auth_required: bool = False
    size_limit: int = DEFAULT_SIZE_LIMIT
    idle_timeout: float = 60.0
    hostname: str = "localhost"
    sessions_dir: Path | None = None
    certificate_dir: Path | None = None
    #: Connections served at once; ``None``: derived from the open-file limit.
    max_connections: int | None = None

    def resolved_max_connections(self) -> int:
        return self.max_connections or default_max_connections()

    def resolved_maildir(self) -> Path:
        return self.maildir or paths.data_dir() / "sandbox" / "maildir"

    def resolved_sessions_dir(self) -> Path:
        return self.sessions_dir or paths.data_dir() / "sandbox" / "sessions"


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
    outcome: str = "in progress"
    secure: bool = False
    authenticated_as: str = ""
    messages: list[StoredMessage] = field(default_factory=list)
    #: Messages stored in this session, listed in ``messages`` or not.
    message_count: int = 0
    transcript: Transcript = field(
        default_factory=lambda: Transcript(
            max_entries=SESSION_MAX_ENTRIES, max_chars=SESSION_MAX_CHARS
        )
    )

    def summary(self) -> str:
        duration = f"{(self.ended or time.time()) - self.started:.3f}s"
        helo = f" helo {self.helo}" if self.helo else ""
        tls = " TLS" if self.secure else ""
        return (
            f"session {self.id} from {self.peer}{helo}{tls}: {self.outcome}, "
            f"{self.message_count} message(s), {duration}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "peer": self.peer,
            "started": self.started,
            "ended": self.ended,
            "helo": self.helo,
            "outcome": self.outcome,
            "secure": self.secure,
            "authenticated_as": self.authenticated_as,
            "messages": [m.to_json() for m in self.messages],
            "message_count": self.message_count,
            "transcript": [e.to_json() for e in self.transcript],
        }


class ClientTap:
    """Turns the client's raw bytes into transcript lines, summarising message data.

    Message content is counted without being split into Python lines, so a
    10 MB attachment costs the transcript almost nothing.

    The tap sees the client's bytes as they arrive, before the server has
    read them, so what a line *is* can depend on an answer not given yet:
    after ``DATA`` the next bytes are message content only if the server says
    ``354``, and after ``STARTTLS`` they are discarded unread if it says
    ``220`` (RFC 3207 4.2; aiosmtpd clears its buffer at the handshake). So
    after either command the tap holds the bytes that follow until the
    server's answer is known (:meth:`server_reply`), or, after a ``220`` to
    STARTTLS, until TLS is established (:meth:`tls_started`).
    """

    def __init__(self, record: SessionRecord, redactor: ConversationRedactor) -> None:
        self.record = record
        self.redactor = redactor
        self.secure = False
        self._pending = bytearray()
        #: The command whose answer decides what the held bytes are, or "".
        self._held_by = ""
        #: STARTTLS was answered 220: what comes before TLS is discarded plaintext.
        self._before_tls = False
        #: Message data has just begun: a final dot may open it, with no CRLF before.
        self._data_start = False
        self._greeted = False
        #: Bytes dropped so far of a line longer than :data:`MAX_PENDING_LINE`.
        self._skipped: int | None = None

    def feed(self, data: bytes) -> None:
        self._pending.extend(data)
        self._drain()

    def _drain(self) -> None:
        while self._pending:
            if self._held_by or self._before_tls:
                if len(self._pending) <= MAX_HELD:
                    return
                # A client that floods instead of waiting for the answer: its
                # bytes are recorded now, so the tap's memory stays bounded.
                if self._before_tls:
                    self._discard_plaintext()
                    return
                self._held_by = ""
            if self.redactor.in_data:
                if not self._consume_data():
                    return
                continue
            end = self._pending.find(b"\n")
            if self._skipped is not None:
                if not self._skip_rest_of_line(end):
                    return
                continue
            if end == -1:
                if len(self._pending) > MAX_PENDING_LINE:
                    # Its start is recorded; the rest is counted, not kept.
                    self._line(bytes(self._pending[:MAX_PENDING_LINE]))
                    self._skipped = len(self._pending) - MAX_PENDING_LINE
                    self._pending.clear()
                return
            raw = bytes(self._pending[:end]).rstrip(b"\r")
            del self._pending[: end + 1]
            self._line(raw)
            command = raw.strip().upper()
            if command == b"DATA" or (command == b"STARTTLS" and not self.secure):
                self._held_by = command.decode()

    def _skip_rest_of_line(self, end: int) -> bool:
        """Drop the rest of an over-long line; True once its end was found."""
        assert self._skipped is not None
        if end == -1:
            self._skipped += len(self._pending)
            self._pending.clear()
            return False
        skipped = self._skipped + end + 1
        del self._pending[: end + 1]
        self._skipped = None
        self.record.transcript.event(
            EventKind.INFO, f"that line went on for {skipped:,} more bytes, not recorded"
        )
        return True

    def server_reply(self, line: str) -> None:
        """The server said ``line`` (already seen by the redactor); release held bytes."""
        if line[3:4] == "-":
            return
        if not self._greeted:
            self._greeted = True
            return
        code = line[:3]
        if self._held_by == "DATA" and (code == "354" or code[:1] in ("4", "5")):
            self._held_by = ""
            self._data_start = code == "354"
        elif self._held_by == "STARTTLS" and code[:1] in ("2", "4", "5"):
            self._held_by = ""
            self._before_tls = code == "220"
        else:
            return
        self._drain()

    def tls_started(self) -> None:
        """TLS is up: whatever the client sent before it was plaintext, discarded unread."""
        if self._pending and (self._before_tls or self._held_by == "STARTTLS"):
            self._discard_plaintext()
        self._before_tls = False
        self._held_by = ""
        self.secure = True

    def _discard_plaintext(self) -> None:
        """Record the bytes sent between the 220 to STARTTLS and TLS, as the plaintext they were."""
        held = bytes(self._pending)
        self._pending.clear()
        for raw in held.split(b"\n"):
            if raw:
                self._line(raw.rstrip(b"\r")[:MAX_PENDING_LINE])
        self.record.transcript.event(
            EventKind.WARNING,
            f"{len(held):,} bytes of plaintext sent after the 220 to STARTTLS, before the "
            "TLS handshake, were discarded unread (RFC 3207 4.2)",
        )

    def _consume_data(self) -> bool:
        """Count message data up to the final dot; False when more bytes are needed."""
        pending = self._pending
        if self._data_start:
            # The DATA command's CRLF came before: a lone dot here is the final dot.
            if len(pending) < len(b".\r\n") and b".\r\n".startswith(pending):
                return False
            self._data_start = False
            if pending.startswith(b".\r\n"):
                del pending[:3]
                self._line(b".")
                return True
        end = pending.find(b"\r\n.\r\n")
        if end == -1:
            # Keep a tail that could be the start of the terminator.
            keep = 4
            if len(pending) <= keep:
                return False
            chunk = len(pending) - keep
            self.redactor.data_bytes += chunk
            self.redactor.data_lines += pending.count(b"\n", 0, chunk)
            del pending[:chunk]
            return False
        self.redactor.data_bytes += end + 2
        self.redactor.data_lines += pending.count(b"\n", 0, end + 2)
        del pending[: end + 5]
        self._line(b".")
        return True

    def _line(self, raw: bytes) -> None:
        text = decode_for_terminal(_as_aiosmtpd_splits(raw))
        # Known passwords are masked in the whole line, before the transcript
        # cuts a long one: a cut through a password would show its start.
        text = self.record.transcript.scrub(text)[0]
        result = self.redactor.client_line(text)
        if result is not None:
            shown, redacted = result
            self.record.transcript.add(
                Direction.CLIENT, shown, secure=self.secure, redacted=redacted
            )


def _as_aiosmtpd_splits(raw: bytes) -> bytes:
    """An AUTH line with its words joined by single spaces, as aiosmtpd splits them.

    aiosmtpd splits AUTH's argument with ``str.split()``, at any whitespace
    (CR, tab, form feed, the \\x1c-\\x1f separators): ``AUTH PLAIN<CR>blob``
    authenticates with ``blob``. The redactor splits at spaces, and the line
    it sees has its control characters escaped, so it would show the blob.
    Any line whose first word is AUTH is rewritten (masking a malformed one
    too is the safe side); other lines are left exactly as sent.
    """
    text = raw.decode("utf-8", "surrogateescape")
    words = text.split(None, 2)
    if not words or words[0].upper() != "AUTH" or text == " ".join(words):
        return raw
    return " ".join(words).encode("utf-8", "surrogateescape")


_Command = TypeVar("_Command", bound=Callable[..., Any])
_DATA_REFUSALS = {
    DataState.TOO_LONG: "500 Line too long (see RFC5321 4.5.3.1.6)",
    DataState.TOO_MUCH: "552 Error: Too much mail data",
}


def _help_of(replaced: Callable[..., Any]) -> Callable[[_Command], _Command]:
    """Give an override the HELP text of the aiosmtpd command it replaces.

    aiosmtpd lists a command in HELP only when its method carries what its
    ``@syntax`` decorator set; an override without it drops out of HELP.
    """

    def carry(override: _Command) -> _Command:
        override.__dict__.update(vars(replaced))
        return override

    return carry


class SandboxSMTP(SMTP):
    """aiosmtpd's SMTP with a server-side transcript and fault injection."""

    def __init__(self, sandbox: Sandbox, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sandbox = sandbox
        self.record: SessionRecord | None = None
        self.tap: ClientTap | None = None
        self._redactor = ConversationRedactor()
        self._greeted = False
        self._closing_reason = ""
        self._refused = False
        #: Counted in already, by :class:`_ImplicitTLSAdmission` before its handshake.
        self.admitted = False
        #: Its place given back and its session ended (see :meth:`_forget`).
        self._forgotten = False

    # -- connection ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.record is None and not self.admitted and not self.sandbox._admit():
            # Beyond the cap: answered and closed before aiosmtpd sees it, so
            # it costs no session, no task and no descriptor for long.
            self._refused = True
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(TOO_MANY_CONNECTIONS.encode() + b"\r\n")
            transport.close()
            return
        if self.record is None:
            peer = transport.get_extra_info("peername")
            shown = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
            self.record = self.sandbox._new_session(shown)
            self.tap = ClientTap(self.record, self._redactor)
            secure = transport.get_extra_info("sslcontext") is not None
            self.record.transcript.event(EventKind.CONNECTED, f"client connected from {shown}")
            if secure:
                self._mark_secure(transport)
        else:
            self._mark_secure(transport)
        super().connection_made(transport)

    def _mark_secure(self, transport: asyncio.BaseTransport) -> None:
        assert self.record is not None and self.tap is not None
        self.tap.tls_started()
        self.record.secure = True
        ssl_object = transport.get_extra_info("ssl_object")
        details = ""
        if ssl_object is not None:
            details = f": {ssl_object.version()}, {ssl_object.cipher()[0]}"
        self.record.transcript.event(EventKind.TLS, f"TLS established{details}", secure=True)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self.tap is not None:
            self.tap.feed(data)
        super().data_received(data)

    def eof_received(self) -> bool | None:
        if self._refused:
            return False
        return super().eof_received()

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        self._forget()
        super().connection_lost(error)

    def _forget(self) -> None:
        """Give back the connection's place and end its session, once."""
        if self._forgotten:
            return
        self._forgotten = True
        self.sandbox._release()
        record = self.record
        if record is not None and record.ended is None:
            if self._closing_reason:
                outcome = self._closing_reason
            elif self._redactor.in_data:
                outcome = "client vanished during DATA; nothing stored from it"
            elif record.outcome == "in progress":
                outcome = "client closed the connection without QUIT"
            else:
                outcome = record.outcome
            self.sandbox._end_session(record, outcome)

    def _timeout_cb(self) -> None:
        if self._forgotten:
            return  # closed and ended already (a handshake that did not complete)
        self._closing_reason = f"timed out after {self._timeout_duration:g}s without a command"
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(Exception):
                line = "421 4.4.2 Timeout, closing connection"
                self._record_reply(line)
                self._writer.write(line.encode() + b"\r\n")
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    # -- replies ------------------------------------------------------------

    def _record_reply(self, text: str) -> None:
        if self.record is not None and self.tap is not None:
            self.record.transcript.add(
                Direction.SERVER, self._redactor.server_line(text), secure=self.tap.secure
            )
            self.tap.server_reply(text)

    async def push(self, status: Any) -> None:
        if self.transport is None or self.transport.is_closing():
            return  # a fault closed the connection: nothing more reaches the client
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else str(status)
        if not self._greeted:
            self._greeted = True
            if await self._apply_fault(FaultStage.GREETING, ""):
                return
        self._record_reply(text)
        await super().push(status)

    async def _apply_fault(self, stage: FaultStage, address: str) -> bool:
        """Run the fault for ``stage``; True when it replaced the normal answer."""
        rule = self.sandbox.faults.decide(stage, address)
        if rule is None:
            return False
        assert self.record is not None
        self.record.transcript.event(EventKind.WARNING, f"fault injected: {rule.describe()}")
        return await self._act(rule)

    async def _act(self, rule: FaultRule) -> bool:
        if rule.action is FaultAction.DELAY:
            await asyncio.sleep(rule.delay)
            return False
        if rule.action is FaultAction.DISCONNECT:
            self._closing_reason = f"disconnected by fault {rule.describe()}"
            self._abort()
            return True
        self._record_reply(rule.reply)
        await SMTP.push(self, rule.reply)
        if rule.stage is FaultStage.GREETING or rule.reply.startswith("421"):
            self._closing_reason = f"closed after fault {rule.describe()}"
            self._abort()
        return True

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- commands -----------------------------------------------------------

    @_help_of(SMTP.smtp_HELO)
    async def smtp_HELO(self, hostname: str) -> None:
        if not await self._apply_fault(FaultStage.EHLO, ""):
            self._note_helo(hostname)
            await super().smtp_HELO(hostname)

    @_help_of(SMTP.smtp_EHLO)
    async def smtp_EHLO(self, hostname: str) -> None:
        if not await self._apply_fault(FaultStage.EHLO, ""):
            self._note_helo(hostname)
            await super().smtp_EHLO(hostname)

    def _note_helo(self, hostname: str) -> None:
        if self.record is not None and hostname:
            # Printed in the one-line summary: the client's text, escaped.
            self.record.helo = self.record.transcript.scrub(escape_controls(hostname[:255]))[0]

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's path parser, with a fast path for a plain ``<local@domain>``.

        The answer is aiosmtpd's own for every argument (see
        :mod:`tuimail.envelope_path`); only its cost differs.
        """
        parsed = plain_path(arg)
        if parsed is None:
            return super()._getaddr(arg)
        local_part, domain, rest = parsed
        if self.local_part_limit and len(local_part) > self.local_part_limit:
            return None, None
        return f"{local_part}@{domain}", rest

    @_help_of(SMTP.smtp_AUTH)
    async def smtp_AUTH(self, arg: str) -> None:
        if self.sandbox.config.auth_users is None:
            await self.push("502 5.5.1 AUTH is not enabled on this sandbox (see --auth)")
            return
        if not await self._apply_fault(FaultStage.AUTH, ""):
            await super().smtp_AUTH(arg)
            if self.record is not None and self.session is not None and self.session.authenticated:
                login = self.session.auth_data
                if isinstance(login, LoginPassword):
                    name = login.login.decode("utf-8", "replace")
                    shown = escape_controls(name[:255])
                    self.record.authenticated_as = self.record.transcript.scrub(shown)[0]

    @_help_of(SMTP.smtp_MAIL)
    async def smtp_MAIL(self, arg: str | None) -> None:
        if await self._apply_fault(FaultStage.MAIL, _address_in(arg)):
            return
        path, _, params = (arg or "").partition(">")
        declared = any(param.upper() == "SMTPUTF8" for param in params.split())
        if not path.isascii() and not declared and self._past_helo():
            await self.push(NEEDS_SMTPUTF8)
            return
        await super().smtp_MAIL(arg)

    def _past_helo(self) -> bool:
        """The client has said HELO or EHLO (else aiosmtpd's own 503 comes first)."""
        return self.session is not None and self.session.host_name is not None

    @_help_of(SMTP.smtp_RCPT)
    async def smtp_RCPT(self, arg: str | None) -> None:
        recipient = _address_in(arg)
        if await self._apply_fault(FaultStage.RCPT, recipient):
            return
        envelope = self.envelope
        if (
            envelope is not None
            and envelope.mail_from is not None
            and recipient
            and self.sandbox.faults.greylisted(envelope.mail_from, recipient)
        ):
            assert self.record is not None
            self.record.transcript.event(
                EventKind.WARNING, f"greylisted {escape_controls(recipient)}"
            )
            await self.push(GREYLIST_REPLY)
            return
        if envelope is not None and len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            await self.push(TOO_MANY_RECIPIENTS)
            return
        path = (arg or "").partition(">")[0]
        if (
            not path.isascii()
            and envelope is not None
            and envelope.mail_from is not None
            and not envelope.smtp_utf8
        ):
            await self.push(NEEDS_SMTPUTF8)
            return
        await super().smtp_RCPT(arg)

    @_help_of(SMTP.smtp_DATA)
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, with the message read in blocks (:mod:`tuimail.smtp_data`).

        The checks, replies and handler call are aiosmtpd's, in its order.
        """
        if await self._apply_fault(FaultStage.DATA, ""):
            return
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        envelope = self.envelope
        assert envelope is not None
        if not envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = MessageData(self.line_length_limit, self.data_size_limit)
        try:
            await read_message_data(self._reader, data)
        except asyncio.CancelledError:
            self._writer.close()  # the connection was lost during DATA
            raise
        if data.state is not DataState.NOMINAL:
            await self.push(_DATA_REFUSALS[data.state])
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        # The sandbox never asks aiosmtpd to decode: content stays bytes.
        envelope.original_content = envelope.content = data.content()
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    async def handle_exception(self, error: Exception) -> str:
        """A command that raised: noted in the session, answered as a local error.

        aiosmtpd's own logs a traceback (on stderr when nothing is configured:
        over the app's screen) and answers ``500`` with the exception's text,
        which may name this machine's paths. A failed STARTTLS handshake is
        the client's doing and is common; its reason is what the session needs.
        """
        if isinstance(error, TLSSetupException):
            cause = error.__cause__
            reason = getattr(cause, "reason", None) or str(cause or "") or type(cause).__name__
            text = f"the TLS handshake after STARTTLS failed: {reason}"
            status = "454 4.7.0 TLS handshake failed"  # the connection is closed after it
        else:
            text = f"internal error while handling a command: {type(error).__name__}: {error}"
            status = "451 4.3.0 Local error in processing"
        if self.record is not None:
            self.record.transcript.event(EventKind.ERROR, escape_controls(text))
        return status

    @_help_of(SMTP.smtp_STARTTLS)
    async def smtp_STARTTLS(self, arg: str) -> None:
        """aiosmtpd's STARTTLS, made sure to end: a handshake that does not
        complete must still give back the connection's place.

        aiosmtpd hands the socket to an SSLProtocol that tells the SMTP
        protocol nothing if the connection ends before the handshake does: a
        client that says STARTTLS and then nothing (the idle timeout aborts
        it, which even wakes the handshake's waiter as if it had succeeded),
        or a STARTTLS pipelined after QUIT, left a session that never ended
        and a place under the cap that was never given back; enough of them
        and every client was refused.
        """
        plain = self.transport
        if plain is None or plain.is_closing():
            return  # QUIT or a fault closed the connection: nothing more begins
        try:
            await super().smtp_STARTTLS(arg)
        except BaseException:
            self._handshake_abandoned(plain)
            raise
        if self._handshake_abandoned(plain):
            # aiosmtpd's command loop runs while there is a transport: it ends
            # here, quietly (an exception would be logged as never retrieved).
            self.transport = None

    def _handshake_abandoned(self, plain: asyncio.BaseTransport) -> bool:
        """After STARTTLS: if its handshake began (aiosmtpd replaced the plain
        transport) and did not complete, close the socket and forget the session."""
        if self.transport is plain or (self.record is not None and self.record.secure):
            return False
        if not self._closing_reason:
            self._closing_reason = "the TLS handshake after STARTTLS did not complete"
        if isinstance(plain, asyncio.Transport):
            plain.abort()
        else:
            plain.close()
        self._forget()
        return True

    @_help_of(SMTP.smtp_QUIT)
    async def smtp_QUIT(self, arg: str) -> None:
        if self.record is not None and not arg:
            self.record.outcome = "completed"
        await super().smtp_QUIT(arg)


def _address_in(arg: str | None) -> str:
    match = _ADDRESS_RE.search(arg or "")
    return match.group(1) if match else ""


class _Handler:
    """aiosmtpd hooks: advertise PIPELINING, store messages, the after-dot fault."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.sandbox.config.auth_users is None:
            responses = [r for r in responses if not r.startswith("250-AUTH")]
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(server, SandboxSMTP)
        rule = self.sandbox.faults.decide(FaultStage.DOT)
        if rule is not None:
            assert server.record is not None
            server.record.transcript.event(EventKind.WARNING, f"fault injected: {rule.describe()}")
            if rule.action is FaultAction.DELAY:
                await asyncio.sleep(rule.delay)
            elif rule.action is FaultAction.DISCONNECT:
                server._closing_reason = f"disconnected by fault {rule.describe()}; not stored"
                server._abort()
                return "421 4.3.0 closing"  # never reaches the client: the transport is closed
            else:
                return rule.reply
        content = envelope.original_content or b""
        assert server.record is not None
        try:
            stored = await self.sandbox._store(server.record, envelope, content)
        except OSError as exc:
            return self._not_stored(server.record, exc)
        return f"250 2.0.0 Ok: queued as {stored.key}"

    def _not_stored(self, record: SessionRecord, exc: OSError) -> str:
        """The Maildir could not take the message: a temporary refusal, as an MTA's.

        aiosmtpd would answer ``500`` with the exception text (a path of this
        machine): a client would give up for good on a message the sandbox
        could take once the disk has room again.
        """
        record.transcript.event(
            EventKind.ERROR,
            f"could not store the message in {self.sandbox.maildir_path}: "
            f"{exc.strerror or exc}; answered with a temporary failure",
        )
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "452 4.3.1 Insufficient system storage"
        return "451 4.3.0 Local error: the message could not be stored"


class _ImplicitTLSAdmission(asyncio.Protocol):
    """An implicit-TLS connection from its accept to the end of its TLS handshake.

    With ``create_server(ssl=...)`` the SMTP protocol sees a connection only
    once its handshake is done, so a client that connects and never says a
    word of TLS holds a descriptor that no cap counts: enough of them exhaust
    the open-file limit and nobody else is served. Here the connection is
    counted at its accept (closed at once beyond the cap: no 421 can be said
    before TLS), its handshake runs under the idle timeout, and only then is it
    handed to a :class:`SandboxSMTP`.
    """

    def __init__(self, sandbox: Sandbox, factory: Callable[[], SandboxSMTP]) -> None:
        self.sandbox = sandbox
        self.factory = factory
        self._early = bytearray()
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self.sandbox._admit():
            transport.abort()
            return
        # Nothing is read until start_tls() takes the socket over.
        transport.pause_reading()
        self._task = asyncio.get_running_loop().create_task(self._handshake(transport))
        self.sandbox._handshakes.add(self._task)
        self._task.add_done_callback(self.sandbox._handshakes.discard)

    async def _handshake(self, transport: asyncio.Transport) -> None:
        context = self.sandbox._tls_context
        assert context is not None
        loop = asyncio.get_running_loop()
        try:
            secured = await loop.start_tls(
                transport,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=self.sandbox.config.idle_timeout,
            )
        except (OSError, ssl.SSLError, TimeoutError, asyncio.CancelledError, RuntimeError):
            transport.abort()
            self.sandbox._release()
            return
        if secured is None:  # the client went away as the handshake ended
            transport.abort()
            self.sandbox._release()
            return
        smtp = self.factory()
        smtp.admitted = True
        secured.set_protocol(smtp)
        smtp.connection_made(secured)
        if self._early:
            smtp.data_received(bytes(self._early))
            self._early.clear()

    def data_received(self, data: bytes) -> None:
        # Bytes the client sent straight after the handshake, before the hand-over.
        self._early.extend(data[: MAX_HELD - len(self._early)])


class Sandbox:
    """A running capture server; use ``async with Sandbox(config) as sandbox:``."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        faults: FaultPlan | None = None,
        on_entry: Callable[[SessionRecord, Entry], None] | None = None,
        on_session_end: Callable[[SessionRecord], None] | None = None,
    ) -> None:
        self.config = config or SandboxConfig()
        self.faults = faults or FaultPlan()
        self.sessions: deque[SessionRecord] = deque(maxlen=MAX_SESSIONS_IN_MEMORY)
        self.active: set[SessionRecord] = set()
        self.maildir_path = self.config.resolved_maildir()
        self.sessions_dir = self.config.resolved_sessions_dir()
        self._on_entry = on_entry
        self._on_session_end = on_session_end
        self._server: asyncio.AbstractServer | None = None
        self._maildir: mailbox.Maildir | None = None
        self._spares: SpareFiles | None = None
        self._counter = itertools.count(1)
        self._idle = asyncio.Event()
        self.max_connections = self.config.resolved_max_connections()
        #: Session files being written in a thread.
        self._writes: set[asyncio.Future[None]] = set()
        self._ended_since_prune = 0
        self._last_prune = time.monotonic()
        self._pruning = False
        self.connections = 0
        #: Connections answered 421 because the cap was reached.
        self.refused_connections = 0
        #: Implicit-TLS handshakes in progress (see :class:`_ImplicitTLSAdmission`).
        self._handshakes: set[asyncio.Task[None]] = set()
        self._tls_context: ssl.SSLContext | None = None
        self.ca_file: Path | None = None
        self.port = 0
        #: Every form of every known password, kept out of all the sandbox writes.
        self._forbidden = sorted(
            {
                form
                for user, password in (self.config.auth_users or {}).items()
                for form in sasl_blob_forms(user, password)
            },
            key=len,
            reverse=True,
        )

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- life cycle ---------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        _quiet_aiosmtpd_log()
        # Only what the sandbox creates is made private: the parent of a
        # --maildir (say /tmp) keeps its mode.
        for directory, what in ((self.maildir_path, "the Maildir"), (self.sessions_dir, "")):
            try:
                if what:
                    ensure_maildir(directory)
                else:
                    make_private_dirs(directory)
            except OSError as exc:
                where = what or "the session files' directory"
                if isinstance(exc, FileExistsError | NotADirectoryError):
                    reason = f"{exc.filename} is a file, not a directory"
                else:
                    reason = f"{exc.strerror or exc} ({exc.filename})"
                raise SandboxError(f"cannot create {where} at {directory}: {reason}") from None
        self._maildir = mailbox.Maildir(self.maildir_path, create=False)
        # Files made ahead by a sandbox that was killed stay in tmp/; maildir(5)
        # lets a reader remove tmp files untouched for 36 hours, as this does.
        with contextlib.suppress(OSError):
            self._maildir.clean()
        self._spares = SpareFiles(self.maildir_path)
        _prune(self.sessions_dir, MAX_SESSION_FILES, MAX_SESSION_AGE)
        if config.tls is not TLSMode.NONE:
            try:
                # In a thread: it may wait for another sandbox making the files.
                context, files = await asyncio.to_thread(
                    load_server_context, config.certificate_dir
                )
            except CertificateError as exc:
                raise SandboxError(str(exc)) from None
            self._tls_context = context
            self.ca_file = files.ca_file
        loop = asyncio.get_running_loop()
        handler = _Handler(self)
        # The sandbox lets AUTH happen without TLS on purpose: it is a local test server.
        warnings.filterwarnings(
            "ignore", message="Requiring AUTH while not requiring TLS", category=UserWarning
        )
        authenticator = self._authenticator() if config.auth_users is not None else None

        def factory() -> SandboxSMTP:
            return SandboxSMTP(
                self,
                handler,
                hostname=config.hostname,
                ident="tuimail sandbox",
                data_size_limit=config.size_limit or None,
                enable_SMTPUTF8=True,
                tls_context=self._tls_context if config.tls is TLSMode.STARTTLS else None,
                timeout=config.idle_timeout,
                authenticator=authenticator,
                auth_required=config.auth_required,
                auth_require_tls=False,
                loop=loop,
            )

        implicit = config.tls is TLSMode.IMPLICIT

        def serve() -> asyncio.Protocol:
            # Implicit TLS: counted from the accept, not only after the handshake.
            return _ImplicitTLSAdmission(self, factory) if implicit else factory()

        try:
            self._server = await loop.create_server(
                serve, config.host, config.port, reuse_address=True
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise SandboxError(
                    f"port {config.port} on {config.host} is already in use (another "
                    "'tuimail serve' or mail server?); choose another with --port, or "
                    "--port 0 for any free port"
                ) from None
            if exc.errno == errno.EACCES:
                raise SandboxError(
                    f"not allowed to listen on port {config.port}; ports below 1024 need "
                    "privileges, so choose another with --port"
                ) from None
            raise SandboxError(
                f"cannot listen on {config.host}:{config.port}: {exc.strerror}"
            ) from None
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._idle.set()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let sessions in progress finish (up to ``grace`` s), then close."""
        if self._server is None:
            return
        self._server.close()
        for handshake in list(self._handshakes):
            handshake.cancel()  # not a session yet: nothing to finish
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._idle.wait()
        if hasattr(self._server, "close_clients"):
            self._server.close_clients()
        for record in list(self.active):
            self._end_session(record, "stopped with the sandbox")
        self._server = None
        if self._spares is not None:
            self._spares.close()
        await self.flush()

    async def flush(self, timeout: float = 30.0) -> None:
        """Wait (up to ``timeout`` s) for the session files being written, then prune them.

        After this, every ended session has its file and the files are within
        their limits.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._writes:
                    await asyncio.gather(*list(self._writes), return_exceptions=True)
                await asyncio.to_thread(
                    _prune, self.sessions_dir, MAX_SESSION_FILES, MAX_SESSION_AGE
                )

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- sessions and messages ---------------------------------------------

    def _new_session(self, peer: str) -> SessionRecord:
        record = SessionRecord(id=self._session_id(), peer=peer)
        record.transcript.forbid_forms(self._forbidden)
        if self._on_entry is not None:
            callback = self._on_entry
            record.transcript.subscribe(lambda entry: callback(record, entry))
        self.sessions.append(record)
        self.active.add(record)
        self._idle.clear()
        return record

    def _admit(self) -> bool:
        """Count a new connection in, or False when the cap is reached."""
        if self.connections >= self.max_connections:
            self.refused_connections += 1
            return False
        self.connections += 1
        return True

    def _release(self) -> None:
        self.connections = max(0, self.connections - 1)

    def _session_id(self) -> str:
        """A session id no other process makes: time, process id, counter, random part.

        Two sandboxes may share a data dir, and the id names the session's file.
        """
        stamp = time.strftime("%Y%m%dT%H%M%S")
        return f"{stamp}-{os.getpid()}-{next(self._counter)}-{secrets.token_hex(3)}"

    def _end_session(self, record: SessionRecord, outcome: str) -> None:
        if record.ended is not None:
            return
        record.ended = time.time()
        record.outcome = outcome
        omitted = record.transcript.omitted
        note = f" ({omitted:,} transcript lines omitted)" if omitted else ""
        record.transcript.event(
            EventKind.CLOSED, f"session ended: {outcome}{note}", secure=record.secure
        )
        self.active.discard(record)
        if not self.active:
            self._idle.set()
        self._save(record)
        if self._on_session_end is not None:
            self._on_session_end(record)

    def _save(self, record: SessionRecord) -> None:
        """Write the session's file in a thread, and now and then prune the old ones.

        The record is turned into plain values here, on the loop; encoding and
        writing them (the larger part) run in a thread, so a long session does
        not hold the loop, which in the app is the UI's too.
        """
        path = self.sessions_dir / f"{record.id}.json"
        document = record.to_json()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            _write_session(path, document)
            return
        future = loop.run_in_executor(None, _write_session, path, document)
        self._writes.add(future)
        future.add_done_callback(self._writes.discard)
        self._ended_since_prune += 1
        due = time.monotonic() - self._last_prune > PRUNE_EVERY_SECONDS
        if not self._pruning and (self._ended_since_prune >= PRUNE_EVERY_SESSIONS or due):
            self._pruning = True
            self._ended_since_prune = 0
            self._last_prune = time.monotonic()
            pruning = loop.run_in_executor(
                None, _prune, self.sessions_dir, MAX_SESSION_FILES, MAX_SESSION_AGE
            )
            pruning.add_done_callback(self._pruned)

    def _pruned(self, _future: asyncio.Future[None]) -> None:
        self._pruning = False

    async def _store(
        self, record: SessionRecord, envelope: Envelope, content: bytes
    ) -> StoredMessage:
        if len(content) <= INLINE_WRITE_LIMIT and self._spares is not None:
            key = deliver_with(self._spares, content)
        else:
            key = await asyncio.to_thread(deliver, self.maildir_path, content, durable=False)

        def scrub(text: str) -> str:
            return record.transcript.scrub(text)[0]

        stored = StoredMessage(
            key=key,
            message_id=_message_id(content, scrub),
            mail_from=scrub(str(envelope.mail_from or "")),
            rcpt_tos=tuple(
                scrub(rcpt) for rcpt in envelope.rcpt_tos[:MESSAGE_MAX_LISTED_RECIPIENTS]
            ),
            rcpt_count=len(envelope.rcpt_tos),
            size=len(content),
            session_id=record.id,
            received_at=time.time(),
        )
        record.message_count += 1
        if len(record.messages) < SESSION_MAX_MESSAGES:
            record.messages.append(stored)
        record.transcript.event(
            EventKind.INFO, f"stored message {key} ({len(content):,} bytes) {stored.message_id}"
        )
        return stored

    def _authenticator(self) -> Callable[..., AuthResult]:
        users = self.config.auth_users or {}

        def authenticate(
            server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
        ) -> AuthResult:
            if not isinstance(auth_data, LoginPassword):
                return AuthResult(success=False, handled=False)
            if not users:
                return AuthResult(success=True, auth_data=auth_data)
            login = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            expected = users.get(login)
            if expected is not None and _same(expected, password):
                return AuthResult(success=True, auth_data=auth_data)
            return AuthResult(success=False, handled=False)

        return authenticate

    # -- for clients --------------------------------------------------------

    def client_profile(self) -> Profile:
        """A profile that reaches this sandbox, verifying its certificate when TLS is on."""
        security = {
            TLSMode.NONE: Security.NONE,
            TLSMode.STARTTLS: Security.STARTTLS,
            TLSMode.IMPLICIT: Security.TLS,
        }[self.config.tls]
        host = self.config.host if self.config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return builtin_profile(host, self.port, security, str(self.ca_file or ""))

    def messages(self) -> list[StoredMessage]:
        """Messages stored in this run, newest last."""
        return [m for record in self.sessions for m in record.messages]

    def read_message(self, key: str) -> bytes:
        assert self._maildir is not None
        return self._maildir.get_bytes(key)


def _quiet_aiosmtpd_log() -> None:
    """Keep aiosmtpd's own log off stderr: the session transcripts say it all.

    With no logging configured, Python prints its warnings to stderr as they
    are: ``unrecognised: <the client's command>`` put a client's terminal
    escapes on ``tuimail serve``'s terminal (and over the app's screen), and a
    failed handshake a traceback. A handler the embedding program set stays.
    """
    log = logging.getLogger("mail.log")
    if not log.handlers:
        log.addHandler(logging.NullHandler())
        log.propagate = False


def sandbox_config_from(
    *,
    host: str,
    port: int,
    maildir: Path | None,
    tls: str,
    auth_users: dict[str, str] | None,
    auth_required: bool,
    size_limit: int,
    idle_timeout: float,
    max_connections: int | None = None,
) -> SandboxConfig:
    """Validate command-line values into a :class:`SandboxConfig`."""
    if not 0 <= port <= 65535:
        raise SandboxError(f"--port {port} is not a port number (0-65535)")
    if size_limit < 0:
        raise SandboxError("--size must be 0 (no limit) or more")
    if not 0 < idle_timeout <= 3600:
        raise SandboxError("--idle-timeout must be more than 0 and at most 3600 seconds")
    if auth_required and auth_users is None:
        raise SandboxError("--auth-required needs --auth any or --auth-file")
    if max_connections is not None and max_connections < 1:
        raise SandboxError("--max-connections must be 1 or more")
    return SandboxConfig(
        host=host,
        port=port,
        maildir=maildir,
        tls=TLSMode(tls),
        auth_users=auth_users,
        auth_required=auth_required,
        size_limit=size_limit,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
    )


def default_max_connections() -> int:
    """Connections to serve at once: half of what the open-file limit leaves free.

    Each connection holds one descriptor, and storing a message or writing a
    session file needs more for a moment; at half, the sandbox always has a
    descriptor to accept one more connection and answer it ``421``, instead
    of leaving it unanswered in the kernel's queue.
    """
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 2 * (MAX_CONNECTIONS_CEILING + FD_RESERVE)
    return max(1, min(MAX_CONNECTIONS_CEILING, (soft - FD_RESERVE) // 2))


def _same(expected: str, given: str) -> bool:
    import hmac

    return hmac.compare_digest(expected.encode(), given.encode())


def _message_id(content: bytes, scrub: Callable[[str], str] = str) -> str:
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


def _write_session(path: Path, document: dict[str, Any]) -> None:
    """Encode and write one session file (in a thread; see :meth:`Sandbox._save`).

    Not fsynced, like the messages: the sandbox is a capture tool.
    """
    with contextlib.suppress(OSError):
        data = json.dumps(document, ensure_ascii=False).encode("utf-8", "replace")
        atomic_write_bytes(path, data, durable=False)


def _prune(directory: Path, keep: int, max_age: float) -> None:
    """Remove session files beyond the newest ``keep`` and those older than ``max_age`` s."""
    dated: list[tuple[float, Path]] = []
    for path in directory.glob("*.json"):
        with contextlib.suppress(OSError):
            dated.append((path.stat().st_mtime, path))
    dated.sort()
    oldest_kept = time.time() - max_age
    excess = max(0, len(dated) - keep)
    for index, (mtime, old) in enumerate(dated):
        if index < excess or mtime < oldest_kept:
            with contextlib.suppress(OSError):
                old.unlink()


#: Largest ``--auth-file`` read; a password list is a few lines.
MAX_AUTH_FILE = 1024 * 1024


def _read_small_text(path: Path, what: str, limit: int) -> str:
    """A regular UTF-8 file of at most ``limit`` bytes, else a :class:`SandboxError`.

    Read through :func:`tuimail.small_files.read_small_file`, which checks the
    open descriptor itself: ``/dev/zero`` is never read without end, and a
    FIFO (even one swapped in after a look at the path) never blocks the start.
    """
    from tuimail.small_files import NotReadable, read_small_file

    try:
        data = read_small_file(path, limit)
    except NotReadable as exc:
        raise SandboxError(f"{what} {path} {exc.strerror}") from None
    except OSError as exc:
        raise SandboxError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SandboxError(f"{what} {path} is not UTF-8 text") from None


def load_auth_file(path: Path) -> dict[str, str]:
    """``user:password`` per line; ``#`` comments and blank lines are ignored."""
    users: dict[str, str] = {}
    text = _read_small_text(path, "the auth file", MAX_AUTH_FILE)
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        user, sep, password = stripped.partition(":")
        if not sep or not user:
            raise SandboxError(f"{path}:{number}: expected 'user:password'")
        users[user] = password
    if not users:
        raise SandboxError(f"{path}: no 'user:password' lines")
    return users


# -- discovery of a running `tuimail serve` -----------------------------------


def announce(sandbox: Sandbox) -> None:
    """Tell other tuimail processes where this sandbox listens."""
    record = {
        "pid": os.getpid(),
        "host": sandbox.client_profile().host,
        "port": sandbox.port,
        "tls": sandbox.config.tls.value,
        "ca_file": str(sandbox.ca_file or ""),
        "maildir": str(sandbox.maildir_path),
        "sessions_dir": str(sandbox.sessions_dir),
    }
    paths.ensure_private_dir(runtime_file().parent)
    atomic_write_bytes(runtime_file(), json.dumps(record).encode())


def withdraw() -> None:
    """Remove the runtime file if it is ours."""
    with contextlib.suppress(OSError, ValueError):
        record = json.loads(runtime_file().read_text())
        if record.get("pid") == os.getpid():
            runtime_file().unlink()
