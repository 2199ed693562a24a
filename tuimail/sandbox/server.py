"""The running sandbox: it listens, admits connections, keeps sessions and stores messages.

:class:`Sandbox` ties the parts together: the listening socket and the cap
on connections, a :class:`~tuimail.sandbox.protocol.SandboxSMTP` for each
connection, the session records (in memory for the app, on disk through
:mod:`tuimail.sandbox.session_files`) and the Maildir
(:mod:`tuimail.sandbox.store`). Listens on loopback unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import os
import secrets
import ssl
import time
import warnings
from collections import deque
from collections.abc import Callable
from pathlib import Path

from aiosmtpd.smtp import Envelope

from tuimail.faults import FaultPlan
from tuimail.maildir import ensure_maildir
from tuimail.paths import ensure_private_dir
from tuimail.profiles import Profile, Security
from tuimail.sandbox import session_files
from tuimail.sandbox.admission import ImplicitTLSAdmission
from tuimail.sandbox.bearer_check import MECHANISMS as TOKEN_MECHANISMS
from tuimail.sandbox.config import PortUnavailable, SandboxConfig, SandboxError
from tuimail.sandbox.handler import SandboxHandler, authenticator
from tuimail.sandbox.protocol import SandboxSMTP
from tuimail.sandbox.record import SessionOutcome, SessionRecord, StoredMessage
from tuimail.sandbox.store import MessageStore
from tuimail.sandbox_profile import builtin_profile
from tuimail.selfsigned import CertificateError, load_server_context
from tuimail.transcript import Entry, EventKind, sasl_blob_forms, secret_forms

#: Sessions kept in memory for the app; all of them are also written to disk.
MAX_SESSIONS_IN_MEMORY = 200
#: A session that stored a message has its file written this long after (at most
#: once in this time), not only when it ends: the envelope (Bcc recipients, the
#: AUTH user that picks a mailbox) must reach the inbox while a client keeps its
#: connection open for the next message, as connection pools do.
PROGRESS_SAVE_DELAY = 0.1


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
        self.store = MessageStore(self.maildir_path)
        self._counter = itertools.count(1)
        self._idle = asyncio.Event()
        self.max_connections = self.config.resolved_max_connections()
        #: Session files being written in a thread.
        self._writes: set[asyncio.Future[None]] = set()
        #: Open sessions whose file was written (or is due) before they ended.
        self._progress: dict[str, session_files.Versions] = {}
        self._progress_due: set[str] = set()
        #: Messages a session stored beyond those its record lists, not written yet.
        self._unlisted: dict[str, list[StoredMessage]] = {}
        #: Open sessions' journals of the envelopes not in their files yet.
        self._journals: dict[str, session_files.Journal] = {}
        self._ended_since_prune = 0
        self._last_prune = time.monotonic()
        self._pruning = False
        self.connections = 0
        #: Connections answered 421 because the cap was reached.
        self.refused_connections = 0
        #: Implicit-TLS handshakes in progress (see :class:`ImplicitTLSAdmission`).
        self._handshakes: set[asyncio.Task[None]] = set()
        self.tls_context: ssl.SSLContext | None = None
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
        introspection = self.config.oauth_introspect
        if introspection is not None:
            # Never sent to a client, but a second lock costs nothing.
            secret = introspection.client_secret.reveal()
            self._forbidden = sorted(
                {*self._forbidden, *secret_forms(secret)}, key=len, reverse=True
            )

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- life cycle ---------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        quiet_aiosmtpd_log()
        # Only what the sandbox creates is made private: the parent of a
        # --maildir (say /tmp) keeps its mode.
        for directory, what in ((self.maildir_path, "the Maildir"), (self.sessions_dir, "")):
            try:
                if what:
                    ensure_maildir(directory)
                else:
                    ensure_private_dir(directory, tighten=False)
            except OSError as exc:
                where = what or "the session files' directory"
                if isinstance(exc, FileExistsError | NotADirectoryError):
                    reason = f"{exc.filename} is a file, not a directory"
                else:
                    reason = f"{exc.strerror or exc} ({exc.filename})"
                raise SandboxError(f"cannot create {where} at {directory}: {reason}") from None
        self.store.open()
        # A sandbox killed before writing its sessions' files left their journals.
        session_files.recover(self.sessions_dir)
        session_files.prune(
            self.sessions_dir, session_files.MAX_SESSION_FILES, session_files.MAX_SESSION_AGE
        )
        if config.security is not Security.NONE:
            try:
                # In a thread: it may wait for another sandbox making the files.
                context, files = await asyncio.to_thread(
                    load_server_context, config.certificate_dir
                )
            except CertificateError as exc:
                raise SandboxError(str(exc)) from None
            self.tls_context = context
            self.ca_file = files.ca_file
        loop = asyncio.get_running_loop()
        handler = SandboxHandler(self)
        # The sandbox lets AUTH happen without TLS on purpose: it is a local test server.
        warnings.filterwarnings(
            "ignore", message="Requiring AUTH while not requiring TLS", category=UserWarning
        )
        check = authenticator(config.auth_users) if config.auth_users is not None else None

        def factory() -> SandboxSMTP:
            return SandboxSMTP(
                self,
                handler,
                hostname=config.hostname,
                ident="tuimail sandbox",
                data_size_limit=config.size_limit or None,
                enable_SMTPUTF8=True,
                tls_context=self.tls_context if config.security is Security.STARTTLS else None,
                timeout=config.idle_timeout,
                authenticator=check,
                auth_required=config.auth_required,
                auth_require_tls=False,
                auth_exclude_mechanism=() if config.takes_tokens else TOKEN_MECHANISMS,
                loop=loop,
            )

        implicit = config.security is Security.TLS

        def serve() -> asyncio.Protocol:
            # Implicit TLS: counted from the accept, not only after the handshake.
            return ImplicitTLSAdmission(self, factory) if implicit else factory()

        try:
            self._server = await loop.create_server(
                serve, config.host, config.port, reuse_address=True
            )
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortUnavailable(
                    config.host, config.port, in_use=exc.errno == errno.EADDRINUSE
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
        handshakes = list(self._handshakes)
        for handshake in handshakes:
            handshake.cancel()  # not a session yet: nothing to finish
        # Each aborts its connection and gives its place back as it ends.
        await asyncio.gather(*handshakes, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._idle.wait()
        if hasattr(self._server, "close_clients"):
            self._server.close_clients()
        for record in list(self.active):
            self.end_session(record, SessionOutcome.STOPPED)
        self._server = None
        self.store.close()
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
                    session_files.prune,
                    self.sessions_dir,
                    session_files.MAX_SESSION_FILES,
                    session_files.MAX_SESSION_AGE,
                )

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- sessions and messages ---------------------------------------------

    def open_session(self, peer: str) -> SessionRecord:
        record = SessionRecord(id=self._session_id(), peer=peer)
        record.transcript.forbid_forms(self._forbidden)
        if self._on_entry is not None:
            callback = self._on_entry
            record.transcript.subscribe(lambda entry: callback(record, entry))
        self.sessions.append(record)
        self.active.add(record)
        self._idle.clear()
        return record

    def admit(self) -> bool:
        """Count a new connection in, or False when the cap is reached."""
        if self.connections >= self.max_connections:
            self.refused_connections += 1
            return False
        self.connections += 1
        return True

    def track_handshake(self, task: asyncio.Task[None]) -> None:
        """An implicit-TLS handshake in progress: cancelled if the sandbox stops first."""
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    def release(self) -> None:
        self.connections = max(0, self.connections - 1)

    def _session_id(self) -> str:
        """A session id no other process makes: time, process id, counter, random part.

        Two sandboxes may share a data dir, and the id names the session's file.
        """
        stamp = time.strftime("%Y%m%dT%H%M%S")
        return f"{stamp}-{os.getpid()}-{next(self._counter)}-{secrets.token_hex(3)}"

    def end_session(self, record: SessionRecord, outcome: SessionOutcome, detail: str = "") -> None:
        if record.ended is not None:
            return
        record.ended = time.time()
        record.outcome = outcome
        record.outcome_detail = detail
        omitted = record.transcript.omitted
        note = f" ({omitted:,} transcript lines omitted)" if omitted else ""
        record.transcript.event(
            EventKind.CLOSED, f"session ended: {record.outcome_words}{note}", secure=record.secure
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
        self._write(record, self._progress.pop(record.id, None))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._ended_since_prune += 1
        due = time.monotonic() - self._last_prune > session_files.PRUNE_EVERY_SECONDS
        if not self._pruning and (
            self._ended_since_prune >= session_files.PRUNE_EVERY_SESSIONS or due
        ):
            self._pruning = True
            self._ended_since_prune = 0
            self._last_prune = time.monotonic()
            pruning = loop.run_in_executor(
                None,
                session_files.prune,
                self.sessions_dir,
                session_files.MAX_SESSION_FILES,
                session_files.MAX_SESSION_AGE,
            )
            pruning.add_done_callback(self._pruned)

    def _pruned(self, _future: asyncio.Future[None]) -> None:
        self._pruning = False

    def _write(self, record: SessionRecord, versions: session_files.Versions | None) -> None:
        """The session's file as it stands, and its messages past the record's list (a
        memory bound) in a file of their own, written in a thread (now, without a loop);
        then its journal is ended.

        ``SESSION.N.json`` holds the envelopes of the messages from number N
        on, in the form of a session file, so the inbox's index (which keeps
        what it read) gives each its envelope and AUTH user too.
        """
        writes: list[session_files.Write] = [
            (
                self.sessions_dir / f"{record.id}.json",
                record.to_json(),
                versions,
                versions.next() if versions is not None else 0,
            )
        ]
        unlisted = self._unlisted.pop(record.id, [])
        if unlisted:
            first = record.message_count - len(unlisted) + 1
            document = {
                "id": record.id,
                "part_of": record.id,
                "authenticated_as": record.authenticated_as,
                "messages": [m.to_json() for m in unlisted],
            }
            writes.append((self.sessions_dir / f"{record.id}.{first}.json", document, None, 0))
        journal = self._journals.get(record.id)
        end = journal is not None and (
            record.ended is not None or journal.lines >= session_files.JOURNAL_MAX_LINES
        )
        if end:
            del self._journals[record.id]  # the next message starts a new one
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            session_files.save(writes, journal, end)
            return
        future = loop.run_in_executor(None, session_files.save, writes, journal, end)
        self._writes.add(future)
        future.add_done_callback(self._writes.discard)

    def _save_soon(self, record: SessionRecord) -> None:
        """Write an open session's file shortly (see :data:`PROGRESS_SAVE_DELAY`)."""
        if record.id in self._progress_due or record.ended is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._progress_due.add(record.id)
        loop.call_later(PROGRESS_SAVE_DELAY, self._save_progress, record)

    def _save_progress(self, record: SessionRecord) -> None:
        self._progress_due.discard(record.id)
        if record.ended is None:  # else its end wrote the whole file
            self._write(record, self._progress.setdefault(record.id, session_files.Versions()))

    async def store_message(
        self, record: SessionRecord, envelope: Envelope, content: bytes
    ) -> StoredMessage:
        """Write the message to the Maildir and note it in the session's record."""
        key = await self.store.keep(content)
        stored = record.note_stored(key, envelope, content)
        if record.message_count > len(record.messages):  # not in the record's list
            self._unlisted.setdefault(record.id, []).append(stored)
        await self._journal(record, stored)
        self._save_soon(record)
        return stored

    async def _journal(self, record: SessionRecord, stored: StoredMessage) -> None:
        """Append the message's envelope to the session's journal before the 250 (see
        :mod:`tuimail.sandbox.session_files`): one write on the loop, the file made in
        a thread once per session (and per ``JOURNAL_MAX_LINES`` lines). A disk that
        does not take it leaves the envelope to the session's file, a moment later."""
        journal = self._journals.get(record.id)
        try:
            if journal is None:
                path = self.sessions_dir / f"{record.id}.{record.message_count}.journal"
                journal = await asyncio.to_thread(session_files.open_journal, path)
                if record.ended is not None:
                    # Its end (the sandbox stopping) was written meanwhile.
                    await asyncio.to_thread(session_files.end_journal, journal)
                    return
                self._journals[record.id] = journal
            line = session_files.journal_line(
                record.message_count, record.authenticated_as, stored.to_json()
            )
            os.write(journal.fd, line)
            journal.lines += 1
        except OSError:
            return

    # -- for clients --------------------------------------------------------

    def client_profile(self) -> Profile:
        """A profile that reaches this sandbox, verifying its certificate when TLS is on."""
        host = self.config.host if self.config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return builtin_profile(host, self.port, self.config.security, str(self.ca_file or ""))

    def messages(self) -> list[StoredMessage]:
        """Messages stored in this run, newest last."""
        return [m for record in self.sessions for m in record.messages]

    def read_message(self, key: str) -> bytes:
        """A stored message's bytes; :class:`~tuimail.errors.NotFound` when none has ``key``."""
        return self.store.read(key)


def quiet_aiosmtpd_log() -> None:
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
