"""Never lose a message: the durable outbox, retries with backoff, and the sent folder.

Promise 5: a message is written to the outbox (a Maildir in the data dir,
fsynced, atomic rename, mode 0600) before the first byte goes to the server,
and leaves it only after the server's 250 to the final dot, when it moves to
the sent Maildir with its transcript (JSON Lines) beside it. Promise 6: a
temporary failure (4xx, network, timeout) stays queued and is retried with
exponential backoff and jitter until a give-up period ends; a permanent one
(5xx) is marked failed with the server's reason and never retried on its own;
a connection lost after the final dot marks it "possibly delivered", and any
retry sends the very same bytes (so the same Message-ID).

Each queued message has a JSON sidecar (its envelope, including Bcc, which the
message itself never carries; its profile's settings, never a password; its
attempts). The sidecar is written first: a sidecar without a message is a send
that never got queued, and is cleaned up. Two processes flushing at once never
send a message twice: a send holds an exclusive ``flock`` on the message's
lock file, which the kernel releases if the process dies.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from tuimail import paths
from tuimail.addresses import parse_address
from tuimail.atomic import atomic_write_bytes
from tuimail.credentials import Secret
from tuimail.maildir import deliver, ensure_maildir
from tuimail.message import OutgoingMessage
from tuimail.profiles import Profile
from tuimail.session import SessionReport, send
from tuimail.transcript import Entry, Transcript


class State(enum.StrEnum):
    QUEUED = "queued"
    FAILED = "failed"
    POSSIBLY_DELIVERED = "possibly-delivered"


class OutboxError(Exception):
    """The outbox cannot be used (a read-only or full data dir...); says what to do."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, then give up. Configurable in ``config.toml``."""

    first_delay: float = 60.0
    factor: float = 2.0
    max_delay: float = 3600.0
    jitter: float = 0.2
    give_up_after: float = 2 * 24 * 3600.0

    def delay(self, attempt: int, rng: Any = None) -> float:
        """Seconds before attempt ``attempt + 1``; ``rng`` has ``uniform`` (default: random)."""
        if rng is None:
            import random as rng
        base = min(self.first_delay * self.factor ** max(attempt - 1, 0), self.max_delay)
        spread = base * self.jitter
        return float(max(0.0, base + rng.uniform(-spread, spread)))

    @classmethod
    def from_config(cls, table: Any) -> RetryPolicy:
        if not isinstance(table, dict):
            return cls()
        known = {k: float(v) for k, v in table.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class Queued:
    """One outbox message's sidecar: envelope, profile settings, attempts, state."""

    key: str
    message_id: str
    sender: str
    recipients: list[str]
    profile: dict[str, Any]
    created: float
    state: State = State.QUEUED
    attempts: list[dict[str, Any]] = field(default_factory=list)
    next_attempt: float = 0.0
    last_error: str = ""
    needs_smtputf8: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "message_id": self.message_id,
            "sender": self.sender,
            "recipients": self.recipients,
            "profile": self.profile,
            "created": self.created,
            "state": self.state.value,
            "attempts": self.attempts,
            "next_attempt": self.next_attempt,
            "last_error": self.last_error,
            "needs_smtputf8": self.needs_smtputf8,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Queued:
        return cls(
            key=str(data["key"]),
            message_id=str(data.get("message_id", "")),
            sender=str(data["sender"]),
            recipients=[str(r) for r in data["recipients"]],
            profile=dict(data["profile"]),
            created=float(data["created"]),
            state=State(data.get("state", "queued")),
            attempts=list(data.get("attempts", [])),
            next_attempt=float(data.get("next_attempt", 0.0)),
            last_error=str(data.get("last_error", "")),
            needs_smtputf8=bool(data.get("needs_smtputf8", False)),
        )

    @property
    def short_id(self) -> str:
        """The key without its host name part: unique enough to type."""
        return short_id(self.key)

    @property
    def profile_name(self) -> str:
        return str(self.profile.get("name", ""))

    def due(self, now: float) -> bool:
        return self.state is State.QUEUED and self.next_attempt <= now


@dataclass
class Outcome:
    """What happened to one message on one attempt."""

    key: str
    report: SessionReport | None
    state: str  # "sent", "queued", "failed", "possibly-delivered", "skipped"
    detail: str = ""


def _profile_table(profile: Profile) -> dict[str, Any]:
    return profile.to_json()  # JSON-safe: an unknown key may hold a TOML date


def _profile_from(table: dict[str, Any]) -> Profile:
    data = dict(table)
    name = str(data.pop("name", "queued"))
    return Profile.from_toml_table(name, data)


class Outbox:
    """The outbox, sent and their sidecars, under the data dir (or ``root``)."""

    def __init__(self, root: Path | None = None, policy: RetryPolicy | None = None) -> None:
        self.root = root or paths.data_dir()
        self.policy = policy or RetryPolicy()
        self.queue_dir = self.root / "outbox"
        self.meta_dir = self.root / "outbox-meta"
        self.sent_dir = self.root / "sent"
        self.transcripts_dir = self.root / "sent-transcripts"

    def _prepare(self) -> None:
        try:
            paths.ensure_private_dir(self.root)
            for maildir in (self.queue_dir, self.sent_dir):
                ensure_maildir(maildir)
            paths.ensure_private_dir(self.meta_dir)
            paths.ensure_private_dir(self.transcripts_dir)
        except OSError as exc:
            raise OutboxError(self._explain(exc, "prepare")) from None

    def _explain(self, exc: OSError, doing: str) -> str:
        reason = exc.strerror or str(exc)
        if exc.errno in (30,):  # EROFS
            hint = "the data directory is on a read-only file system"
        elif exc.errno in (28, 122):  # ENOSPC, EDQUOT
            hint = "the disk is full"
        elif exc.errno in (13, 1):
            hint = "permission denied"
        else:
            hint = reason
        return (
            f"cannot {doing} the outbox in {self.root}: {hint}; nothing was sent. "
            f"Free space or fix the permissions of {self.root} (XDG_DATA_HOME chooses it)"
        )

    # -- queueing -----------------------------------------------------------

    def enqueue(self, profile: Profile, outgoing: OutgoingMessage) -> Queued:
        """Store durably; from here on the message cannot be lost."""
        self._prepare()
        from tuimail.maildir import unique_name

        key = unique_name()
        entry = Queued(
            key=key,
            message_id=outgoing.message_id,
            sender=outgoing.envelope_sender,
            recipients=outgoing.envelope_recipients,
            profile=_profile_table(profile),
            created=time.time(),
            needs_smtputf8=outgoing.needs_smtputf8,
        )
        try:
            self._write_meta(entry)
            deliver(self.queue_dir, outgoing.to_bytes(), durable=True, key=key)
        except OSError as exc:
            with contextlib.suppress(OSError):
                (self.meta_dir / f"{key}.json").unlink()
            raise OutboxError(self._explain(exc, "write to")) from None
        return entry

    def _write_meta(self, entry: Queued) -> None:
        data = json.dumps(entry.to_json(), ensure_ascii=False, indent=1).encode("utf-8")
        atomic_write_bytes(self.meta_dir / f"{entry.key}.json", data)

    def entries(self) -> list[Queued]:
        """Everything in the outbox, oldest first; stray sidecars are cleaned up."""
        if not self.meta_dir.is_dir():
            return []
        found = []
        for meta in sorted(self.meta_dir.glob("*.json")):
            key = meta.stem
            if not (self.queue_dir / "new" / key).exists():
                # Sent (moved to sent/) or never queued: the sidecar is stale.
                with contextlib.suppress(OSError):
                    meta.unlink()
                continue
            try:
                found.append(Queued.from_json(json.loads(meta.read_text("utf-8"))))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return sorted(found, key=lambda e: e.created)

    def get(self, key: str) -> Queued:
        for entry in self.entries():
            if entry.key == key or entry.key.startswith(key):
                return entry
        raise KeyError(f"no outbox message {key!r}")

    def message_bytes(self, key: str) -> bytes:
        return (self.queue_dir / "new" / key).read_bytes()

    def drop(self, key: str) -> Queued:
        entry = self.get(key)
        with self._locked(entry.key) as locked:
            if not locked:
                raise OutboxError(f"{entry.key} is being sent right now")
            (self.queue_dir / "new" / entry.key).unlink()
            with contextlib.suppress(OSError):
                (self.meta_dir / f"{entry.key}.json").unlink()
        return entry

    def requeue(self, key: str) -> Queued:
        """Make a failed or possibly-delivered message due again (a retry by the user)."""
        entry = self.get(key)
        entry.state = State.QUEUED
        entry.next_attempt = 0.0
        self._write_meta(entry)
        return entry

    # -- sending ------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[bool]:
        lock_path = self.meta_dir / f"{key}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                if not (self.queue_dir / "new" / key).exists():
                    lock_path.unlink()

    async def attempt(
        self,
        key: str,
        password: Secret | None = None,
        *,
        on_entry: Callable[[Entry], None] | None = None,
        deadline: float = 300.0,
        outgoing: OutgoingMessage | None = None,
        transcript: Transcript | None = None,
    ) -> Outcome:
        """Send one queued message once, under its lock; update or retire it.

        ``outgoing`` is the message just queued, if the caller has it: the
        stored bytes are the same, and re-parsing them is not free.
        """
        with self._locked(key) as locked:
            if not locked:
                return Outcome(key, None, "skipped", "another process is sending it")
            try:
                meta = json.loads((self.meta_dir / f"{key}.json").read_text("utf-8"))
                entry = Queued.from_json(meta)
                data = self.message_bytes(key)
            except FileNotFoundError:
                return Outcome(key, None, "skipped", "already sent by another process")
            if outgoing is None or outgoing.to_bytes() != data:
                outgoing = _outgoing_from(entry, data)
            profile = _profile_from(entry.profile)
            report = await send(
                profile,
                outgoing,
                password,
                on_entry=on_entry,
                deadline=deadline,
                transcript=transcript,
            )
            return self._settle(entry, report)

    def _settle(self, entry: Queued, report: SessionReport) -> Outcome:
        now = time.time()
        failure = report.failure
        attempt = {"at": now, "ok": failure is None}
        if failure is not None:
            attempt.update(failure.to_json())
        entry.attempts.append(attempt)
        if failure is None:
            self._retire(entry, report)
            refused = report.delivery.refused if report.delivery else []
            detail = "; ".join(f"refused {r.address}: {r.code} {r.reply}" for r in refused)
            return Outcome(entry.key, report, "sent", detail)
        entry.last_error = f"{failure.stage.value}: {failure.explanation}"
        if failure.possibly_delivered:
            entry.state = State.POSSIBLY_DELIVERED
        elif not failure.temporary:
            entry.state = State.FAILED
        elif now - entry.created >= self.policy.give_up_after:
            entry.state = State.FAILED
            entry.last_error = f"gave up after {len(entry.attempts)} attempts: {entry.last_error}"
        else:
            entry.state = State.QUEUED
            entry.next_attempt = now + self.policy.delay(len(entry.attempts))
        self._write_meta(entry)
        return Outcome(entry.key, report, entry.state.value, entry.last_error)

    def _retire(self, entry: Queued, report: SessionReport) -> None:
        """Sent: transcript first, then the message moves; the sidecar goes last.

        Nothing here is fsynced: a power cut that undid these steps would leave
        the message queued (sent again, never lost), whatever the transcript's
        fate, so syncing the transcript alone bought nothing; it cost two
        fsyncs on every send.
        """
        transcript = report.transcript.to_jsonl().encode("utf-8")
        atomic_write_bytes(self.transcripts_dir / f"{entry.key}.jsonl", transcript, durable=False)
        os.rename(self.queue_dir / "new" / entry.key, self.sent_dir / "new" / entry.key)
        with contextlib.suppress(OSError):
            (self.meta_dir / f"{entry.key}.json").unlink()

    async def flush(
        self,
        passwords: Callable[[Profile], Secret | None] | None = None,
        *,
        include_not_due: bool = False,
        on_entry: Callable[[Queued, Entry], None] | None = None,
    ) -> list[Outcome]:
        """Try every due queued message once, oldest first."""
        outcomes = []
        now = time.time()
        for entry in self.entries():
            if not (entry.due(now) or (include_not_due and entry.state is State.QUEUED)):
                continue
            profile = _profile_from(entry.profile)
            password = passwords(profile) if passwords and profile.username else None
            callback = None
            if on_entry is not None:
                callback = _bind(on_entry, entry)
            outcomes.append(await self.attempt(entry.key, password, on_entry=callback))
        return outcomes

    # -- sent ---------------------------------------------------------------

    def sent(self) -> list[tuple[str, bytes]]:
        new = self.sent_dir / "new"
        if not new.is_dir():
            return []
        return [
            (p.name, p.read_bytes()) for p in sorted(new.iterdir(), key=lambda p: p.stat().st_mtime)
        ]

    def sent_transcript(self, key: str) -> str:
        return (self.transcripts_dir / f"{key}.jsonl").read_text("utf-8")


def short_id(key: str) -> str:
    return key.rsplit(".", 1)[0] if key.count(".") >= 2 else key


def _bind(callback: Callable[[Queued, Entry], None], entry: Queued) -> Callable[[Entry], None]:
    return lambda line: callback(entry, line)


def _outgoing_from(entry: Queued, data: bytes) -> OutgoingMessage:
    """Rebuild what the session needs from the stored bytes and envelope (no re-render)."""
    message = message_from_bytes(data, policy=policy.SMTP)
    return OutgoingMessage(
        message=message,
        sender=parse_address(entry.sender),
        recipients=tuple(parse_address(r) for r in entry.recipients),
        needs_smtputf8=entry.needs_smtputf8,
        wire_bytes=data,
    )
