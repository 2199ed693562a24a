"""Never lose a message: the durable outbox, retries with backoff, and the sent folder.

A message is written to the outbox (a Maildir in the data dir,
fsynced, atomic rename, mode 0600) before the first byte goes to the server,
and leaves it only after the server's 250 to the final dot, when it moves to
the sent Maildir with its transcript (JSON Lines) beside it. A
temporary failure (4xx, network, timeout) stays queued and is retried with
exponential backoff and jitter until a give-up period ends; a permanent one
(5xx) is marked failed with the server's reason and never retried on its own;
a connection lost after the final dot marks it "possibly delivered", and any
retry sends the very same bytes (so the same Message-ID).

Each queued message has a JSON sidecar (its envelope, including Bcc, which the
message itself never carries; its profile's settings, never a password; its
attempts). The sidecar is written first: a sidecar without a message is a send
that never got queued, and is cleaned up (only under the message's lock,
which :meth:`Outbox.enqueue` holds until the message is in place). A message
whose sidecar is missing or unreadable is listed as failed and never sent:
its envelope is not guessed from its headers (that would lose its Bcc).
The sidecar also keeps the message's SHA-256: a message file truncated or
changed on disk is marked failed, never sent as if it were the same message.
Two processes flushing at once never
send a message twice: a send holds an exclusive ``flock`` on the message's
lock file, which the kernel releases if the process dies, and re-reads the
sidecar under that lock, so a message another process has meanwhile sent,
marked failed or possibly delivered, or rescheduled is skipped.

A crash never causes a silent resend. After the server's 354, and before
the message data goes out, the sidecar is rewritten (a write and a rename,
which survive a killed process; no fsync) in the state ``sending``. A
message found in that state with nobody holding its lock was being
transferred when its sender died: it is shown as possibly delivered, and
sent again only when the user asks (``outbox retry``). As soon as the final
dot has its 250 the message is retired, before QUIT: whatever happens after
that (a deadline, a cancel, a crash) it is not sent again.

A message released from the sandbox (``tuimail inbox release``, F5's
release) is sent to the recipients the user gave, who may differ from its To
and Cc, as sendmail does with recipients named on its command line: its
sidecar says its envelope was given explicitly (``explicit_envelope``), and
only the check that the stored To and Cc are among the envelope's recipients
is left out for it. Everything else holds as for composed mail: queued before
the first byte, retried, never sent twice, and only ever to the recipients
in its sidecar.

Recipients refused with a 4xx while others were accepted stay queued, for
those recipients only (the same bytes go again, to them); recipients refused
with a 5xx are reported failed. The sidecar keeps who already has it.

Which server and which password: a message queued through a saved profile
follows that profile as it is when each attempt starts. Its settings and
its keyring password are read together at that moment, so they always belong
to each other, and its transcript says when the profile changed since the
message was queued (options given on the command line for that send, such
as ``--timeout``, still apply). A message queued with ``--server`` keeps the
settings it was queued with and never borrows a profile's password: if its
server wants one, ``outbox flush`` leaves it alone (saying why) until
``outbox retry ID --password-stdin``. If the profile a message followed has
been deleted, the message falls back to its frozen settings and, like a
``--server`` message, to no stored password.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import fcntl
import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any, ClassVar, Protocol

from tuimail import paths
from tuimail.addresses import ParsedAddress, parse_address
from tuimail.atomic import atomic_write_bytes
from tuimail.credentials import Secret
from tuimail.errors import NotFound, TuimailError
from tuimail.maildir import deliver, ensure_maildir
from tuimail.message import MAX_MESSAGE_BYTES, OutgoingMessage, check_stored_message
from tuimail.profiles import Profile
from tuimail.routing import is_direct, send_direct
from tuimail.serial_thread import SerialThread
from tuimail.session import Delivery, RecipientRefusal, SessionReport, send
from tuimail.small_files import parse_json, read_small_file, read_small_text
from tuimail.transcript import Entry, EventKind, Transcript

#: A stored message is at most the message limit once encoded (base64 adds a third).
STORED_MESSAGE_LIMIT = 2 * MAX_MESSAGE_BYTES


class State(enum.StrEnum):
    QUEUED = "queued"
    #: The message data is going out (or went out before a crash): see the module doc.
    SENDING = "sending"
    FAILED = "failed"
    POSSIBLY_DELIVERED = "possibly-delivered"
    #: The server took it (250 to the final dot), but it could not be moved to
    #: ``sent/`` yet: never sent again; a later flush finishes the move.
    DELIVERED = "delivered"


class Result(enum.StrEnum):
    """What one attempt did to a message: :attr:`Outcome.result`.

    Apart from :class:`State` because an attempt reports two things a stored
    message never is (``sent``: it left the outbox; ``skipped``: it was left
    alone this time) and never reports ``sending``; a message the server took
    but that is still waiting for its move to ``sent/`` is reported ``sent``.
    The values are what ``tuimail outbox flush`` prints and scripts read.
    """

    SENT = "sent"
    QUEUED = "queued"
    FAILED = "failed"
    POSSIBLY_DELIVERED = "possibly-delivered"
    SKIPPED = "skipped"

    @classmethod
    def of(cls, state: State) -> Result:
        """The result that leaves a message in ``state``."""
        return _RESULT_OF_STATE[state]


_RESULT_OF_STATE = {
    State.QUEUED: Result.QUEUED,
    State.SENDING: Result.POSSIBLY_DELIVERED,
    State.FAILED: Result.FAILED,
    State.POSSIBLY_DELIVERED: Result.POSSIBLY_DELIVERED,
    State.DELIVERED: Result.SENT,
}


class Stuck(enum.StrEnum):
    """Why a message waits for the user: each face says what the user can do.

    The core says what happened (:attr:`Queued.last_error`); the remedy is a
    command on the command line and a key in the app, so it is not stored:
    :func:`with_remedy` adds the face's words.
    """

    #: Its sender stopped mid-transfer: the user decides whether to send it again.
    CRASHED_WHILE_SENDING = "crashed-while-sending"
    #: Its record cannot be read, so it can never be sent: the user deletes it.
    RECORD_UNREADABLE = "record-unreadable"


def with_remedy(text: str, stuck: Stuck | None, remedies: Mapping[Stuck, str]) -> str:
    """``text``, followed by the face's remedy for ``stuck`` in parentheses, if it has one."""
    remedy = remedies.get(stuck) if stuck is not None else None
    return f"{text} ({remedy})" if remedy else text


#: The last error of a message whose sender died while transferring it.
CRASHED_WHILE_SENDING = (
    "the process sending this message stopped while the message was being transferred; "
    "it may or may not have arrived"
)
#: The same, as versions that stored the command line's remedy wrote it.
_CRASHED_WHILE_SENDING_WITH_COMMAND = (
    f"{CRASHED_WHILE_SENDING} ('tuimail outbox retry' sends it again)"
)


class OutboxError(TuimailError):
    """The outbox cannot be used (a read-only or full data dir...); says what to do."""


class MessageNotFound(NotFound):
    """No outbox message has the id (or the start of one) ``name``."""

    def __init__(self, key: str) -> None:
        super().__init__("outbox message", key)

    def _words(self) -> str:
        return f"no outbox message {self.name!r}"


class EmptyMessageId(MessageNotFound):
    """An empty id was given: it would match every message, so it is refused."""

    def __init__(self) -> None:
        super().__init__("")

    def _words(self) -> str:
        return "give a message id; an empty one is refused"


class AmbiguousMessageId(MessageNotFound):
    """Several outbox messages have ids starting with ``name``; ``matches`` are they."""

    #: How many of the matches the words list.
    LISTED = 10

    def __init__(self, key: str, matches: list[Queued]) -> None:
        self.matches = matches
        super().__init__(key)

    def _words(self) -> str:
        shown = self.matches[: self.LISTED]
        listed = "; ".join(f"{e.short_id} (to {', '.join(e.recipients)})" for e in shown)
        rest = len(self.matches) - len(shown)
        more = f" and {rest} more" if rest > 0 else ""
        return (
            f"{self.name!r} matches {len(self.matches)} outbox messages: {listed}{more}; "
            "give more of the id"
        )


class MessageGone(MessageNotFound):
    """The message left the outbox (``how``: "sent", "sent or dropped") since it was looked up."""

    def __init__(self, short: str, how: str) -> None:
        self.how = how
        super().__init__(short)

    def _words(self) -> str:
        return f"{self.name} was {self.how} meanwhile"


class NotRetryable(TuimailError):
    """The user asked to retry a message that must not, or cannot, be sent again.

    ``delivered`` is true when the server accepted it already; otherwise its
    record cannot be read and ``reason`` says what is known about it.
    """

    def __init__(
        self, short: str, reason: str, *, delivered: bool = False, stuck: Stuck | None = None
    ) -> None:
        self.short_id = short
        self.reason = reason
        self.delivered = delivered
        self.stuck = stuck
        if delivered:
            words = f"{short} was delivered (the server accepted it); it is not sent again"
        else:
            words = f"{short}: {reason}"
        super().__init__(words)


class Uniform(Protocol):
    """A source of jitter: the :mod:`random` module, or a seeded ``random.Random``."""

    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, then give up. Configurable in ``config.toml``."""

    first_delay: float = 60.0
    factor: float = 2.0
    max_delay: float = 3600.0
    jitter: float = 0.2
    give_up_after: float = 2 * 24 * 3600.0

    #: The range each setting may take: outside it a flush would overflow,
    #: never wait, or never give up.
    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "first_delay": (0.0, 7 * 24 * 3600.0),
        "factor": (1.0, 100.0),
        "max_delay": (0.0, 7 * 24 * 3600.0),
        "jitter": (0.0, 1.0),
        "give_up_after": (0.0, 365 * 24 * 3600.0),
    }

    def delay(self, attempt: int, rng: Uniform | None = None) -> float:
        """Seconds before attempt ``attempt + 1``; ``rng`` draws the jitter (default: random)."""
        if rng is None:
            import random

            rng = random
        steps = max(attempt - 1, 0)
        base = min(self.first_delay, self.max_delay)
        if base > 0 and self.factor > 1:
            # Compared in logarithms: factor ** steps overflows a float in time.
            steps_to_cap = math.log(self.max_delay / base) / math.log(self.factor)
            base = self.max_delay if steps >= steps_to_cap else base * self.factor**steps
        spread = base * self.jitter
        return float(max(0.0, base + rng.uniform(-spread, spread)))

    @classmethod
    def from_config(cls, table: object) -> RetryPolicy:
        """The ``[outbox]`` table; a value that is not a number in its range is a ValueError."""
        if not isinstance(table, dict):
            return cls()
        known: dict[str, float] = {}
        for name, value in table.items():
            if name not in cls.LIMITS:
                continue
            low, high = cls.LIMITS[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number of seconds, not {value!r}")
            if not (math.isfinite(value) and low <= value <= high):
                raise ValueError(f"{name} must be between {low:g} and {high:g}, not {value!r}")
            known[name] = float(value)
        return cls(**known)


def _stuck_from(value: object) -> Stuck | None:
    """The stored reason; one a newer version wrote and this one does not know is none."""
    try:
        return Stuck(value) if isinstance(value, str) else None
    except ValueError:
        return None


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
    #: Set when it waits for the user; the face adds its remedy to ``last_error``.
    stuck: Stuck | None = None
    needs_smtputf8: bool = False
    #: Queued through a saved profile: each attempt uses that profile as it is then.
    follows_profile: bool = False
    #: Command-line changes to the saved profile for this send (TOML values).
    overrides: dict[str, Any] = field(default_factory=dict)
    #: Recipients who already have it (earlier partly accepted attempts).
    delivered_to: list[str] = field(default_factory=list)
    #: Recipients refused for good: address, code, reply.
    rejected: list[dict[str, Any]] = field(default_factory=list)
    #: SHA-256 of the message as queued ("" from older versions): a message
    #: file truncated or changed on disk is never sent as if it were the same.
    sha256: str = ""
    #: The Subject header as queued, decoded ("" from older versions: see
    #: :meth:`Outbox.subject`), so a listing tells two messages apart.
    subject: str = ""
    #: The recipients were given apart from the message (a release), so its
    #: To and Cc need not be among them; they are still the only ones sent to.
    explicit_envelope: bool = False

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
            "stuck": self.stuck.value if self.stuck else None,
            "needs_smtputf8": self.needs_smtputf8,
            "follows_profile": self.follows_profile,
            "overrides": self.overrides,
            "delivered_to": self.delivered_to,
            "rejected": self.rejected,
            "sha256": self.sha256,
            "subject": self.subject,
            "explicit_envelope": self.explicit_envelope,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Queued:
        last_error = str(data.get("last_error", ""))
        stuck = _stuck_from(data.get("stuck"))
        if stuck is None and last_error == _CRASHED_WHILE_SENDING_WITH_COMMAND:
            # Written by a version that stored the command line's words.
            stuck, last_error = Stuck.CRASHED_WHILE_SENDING, CRASHED_WHILE_SENDING
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
            last_error=last_error,
            stuck=stuck,
            needs_smtputf8=bool(data.get("needs_smtputf8", False)),
            follows_profile=bool(data.get("follows_profile", False)),
            overrides=dict(data.get("overrides", {})),
            delivered_to=[str(r) for r in data.get("delivered_to", [])],
            rejected=[dict(r) for r in data.get("rejected", [])],
            sha256=str(data.get("sha256", "")),
            subject=str(data.get("subject", "")),
            explicit_envelope=data.get("explicit_envelope") is True,
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


class WaitReason(enum.Enum):
    """Why a message waits for a password given by hand."""

    #: It follows a saved profile that has no password in the keyring.
    NONE_STORED = enum.auto()
    #: The profile it was queued through is deleted: no stored password is used.
    PROFILE_DELETED = enum.auto()
    #: It was queued with settings of its own, never with a saved profile's password.
    NO_PROFILE = enum.auto()


@dataclass(frozen=True)
class PasswordWait:
    """A message the server wants a password for, and the outbox has none it may use.

    The face says how to give one (the command line names its retry command).
    """

    reason: WaitReason
    username: str
    profile_name: str

    def words(self, *, aside: str = "") -> str:
        """The reason in a sentence; ``aside`` follows "without a saved profile"."""
        wants = f"waiting: the server wants a password for {self.username}"
        if self.reason is WaitReason.NONE_STORED:
            return f"{wants} and none is stored for the profile {self.profile_name!r}"
        if self.reason is WaitReason.PROFILE_DELETED:
            return (
                f"{wants}, and the profile {self.profile_name!r} it was queued through has been "
                "deleted, so no stored password is used"
            )
        return (
            f"{wants}, and this message was queued without a saved profile{aside}, "
            "so no stored password is used"
        )


@dataclass
class Outcome:
    """What happened to one message on one attempt.

    ``delivered_to`` got it on this attempt; ``deferred`` were refused for
    now (4xx) and stay queued, for them only; ``rejected`` were refused for
    good (5xx). A partly accepted send with deferred recipients is ``queued``.
    """

    key: str
    report: SessionReport | None
    result: Result
    detail: str = ""
    #: Set when it was skipped for want of a password it may not take from the keyring.
    password_wait: PasswordWait | None = None
    #: Set when the message now waits for the user (the face adds its remedy).
    stuck: Stuck | None = None
    delivered_to: list[str] = field(default_factory=list)
    deferred: list[RecipientRefusal] = field(default_factory=list)
    rejected: list[RecipientRefusal] = field(default_factory=list)


def _profile_table(profile: Profile) -> dict[str, Any]:
    return profile.to_json()  # JSON-safe: an unknown key may hold a TOML date


def _profile_from(table: dict[str, Any]) -> Profile:
    data = dict(table)
    name = str(data.pop("name", "queued"))
    return Profile.from_toml_table(name, data)


def _same_account(saved: Profile, profile: Profile) -> bool:
    """The same server and user: the saved profile's password belongs to ``profile``."""
    return (saved.host, saved.effective_port, saved.username) == (
        profile.host,
        profile.effective_port,
        profile.username,
    )


def _overrides(saved: Profile, profile: Profile) -> dict[str, Any]:
    """What a send changed on its saved profile (``--timeout``...), as TOML values."""
    changed: dict[str, Any] = {}
    for name in Profile.__dataclass_fields__:
        if name in ("name", "extra"):
            continue
        value = getattr(profile, name)
        if value != getattr(saved, name):
            changed[name] = value.value if isinstance(value, enum.Enum) else value
    return changed


@dataclass(frozen=True)
class _MessageLock:
    """A message's open lock file; ``held`` when this process has its ``flock``."""

    key: str
    path: Path
    fd: int
    held: bool


class Outbox:
    """The outbox, sent and their sidecars, under the data dir (or ``root``)."""

    def __init__(
        self,
        root: Path | None = None,
        policy: RetryPolicy | None = None,
        profiles: Callable[[], dict[str, Profile]] | None = None,
    ) -> None:
        self.root = root or paths.data_dir()
        self.policy = policy or RetryPolicy()
        self._profiles = profiles or _saved_profiles
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

    def enqueue(
        self,
        profile: Profile,
        outgoing: OutgoingMessage,
        *,
        follows_profile: bool | None = None,
        explicit_envelope: bool = False,
    ) -> Queued:
        """Store durably; from here on the message cannot be lost.

        ``follows_profile``: whether later attempts use the saved profile of
        this name as it is then (see the module doc). By default: when a saved
        profile of that name exists for the same server and user name.
        ``explicit_envelope``: the recipients were given apart from the
        message (a release: see :func:`release_outgoing`), so its To and Cc
        are not checked against them.
        """
        self._prepare()
        from tuimail.maildir import unique_name

        saved = self._saved_profile(profile.name) if follows_profile is not False else None
        if follows_profile is None:
            follows_profile = saved is not None and _same_account(saved, profile)
        key = unique_name()
        data = outgoing.to_bytes()
        entry = Queued(
            key=key,
            message_id=outgoing.message_id,
            sender=outgoing.envelope_sender,
            recipients=outgoing.envelope_recipients,
            profile=_profile_table(profile),
            created=time.time(),
            needs_smtputf8=outgoing.needs_smtputf8,
            follows_profile=follows_profile,
            overrides=_overrides(saved, profile) if follows_profile and saved else {},
            sha256=hashlib.sha256(data).hexdigest(),
            subject=str(outgoing.message.get("Subject", "")),
            explicit_envelope=explicit_envelope,
        )
        try:
            # Under the message's lock: a flush (or ``outbox list``) that sees the
            # sidecar before the message is in place must not take it for stale.
            with self._locked(key) as locked:
                if not locked:  # a fresh key nobody else knows: cannot happen
                    raise OSError(11, f"the lock of the new message {key} is taken")
                self._write_meta(entry)
                deliver(self.queue_dir, data, durable=True, key=key)
        except OSError as exc:
            with contextlib.suppress(OSError):
                (self.meta_dir / f"{key}.json").unlink()
            raise OutboxError(self._explain(exc, "write to")) from None
        return entry

    def _saved_profile(self, name: str) -> Profile | None:
        """The saved profile ``name`` as it is now; None if gone or unreadable."""
        from tuimail.profiles import ProfileStoreError

        try:
            return self._profiles().get(name)
        except (ProfileStoreError, OSError, ValueError):
            return None

    def _write_meta(self, entry: Queued, *, durable: bool = True) -> None:
        data = json.dumps(entry.to_json(), ensure_ascii=False, indent=1).encode("utf-8")
        atomic_write_bytes(self.meta_dir / f"{entry.key}.json", data, durable=durable)

    def _read_meta(self, key: str) -> Queued:
        text = read_small_text(self.meta_dir / f"{key}.json")
        return Queued.from_json(parse_json(text))

    def entries(self) -> list[Queued]:
        """Everything in the outbox, oldest first; stray sidecars are cleaned up.

        A message left ``sending`` by a process that died is shown as
        possibly delivered from here on (and recorded so).
        """
        if not self.meta_dir.is_dir():
            return []
        found = []
        seen: set[str] = set()
        for meta in sorted(self.meta_dir.glob("*.json")):
            key = meta.stem
            if not (self.queue_dir / "new" / key).exists():
                # Sent (moved to sent/) or never queued: the sidecar is stale.
                self._remove_stale_sidecar(key)
                continue
            seen.add(key)
            try:
                entry = self._read_meta(key)
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                found.append(self._unusable_entry(key, f"its sidecar {meta} is unreadable ({exc})"))
                continue
            if entry.state is State.SENDING:
                entry = self._recover_if_abandoned(entry)
            found.append(entry)
        new = self.queue_dir / "new"
        if new.is_dir():
            for path in sorted(new.iterdir()):
                # Checked in this order: a message being retired or dropped
                # leaves new/ before its sidecar goes.
                if (
                    path.name not in seen
                    and not path.name.startswith(".")
                    and not (self.meta_dir / f"{path.name}.json").exists()
                    and path.exists()
                ):
                    found.append(self._unusable_entry(path.name, "its sidecar is missing"))
        return sorted(found, key=lambda e: e.created)

    def _remove_stale_sidecar(self, key: str) -> None:
        """Delete a sidecar whose message is gone, unless its message is being queued.

        :meth:`enqueue` writes the sidecar first and holds the lock until the
        message is in place: a sidecar whose lock is taken is not stale.
        """
        with contextlib.suppress(OSError), self._locked(key) as locked:
            if locked and not (self.queue_dir / "new" / key).exists():
                (self.meta_dir / f"{key}.json").unlink()

    def _unusable_entry(self, key: str, why: str) -> Queued:
        """A queued message whose envelope cannot be read: shown as failed, never sent.

        Its envelope (Bcc included) is known only from the sidecar, so it is
        never guessed from the headers; the user sees it and decides.
        """
        path = self.queue_dir / "new" / key
        try:
            created = path.stat().st_mtime
        except OSError:
            created = 0.0
        return Queued(
            key=key,
            message_id="",
            sender="",
            recipients=[],
            profile={},
            created=created,
            state=State.FAILED,
            last_error=(
                f"{why}, so its recipients are unknown and it cannot be sent; "
                f"the message is kept in {path}"
            ),
            stuck=Stuck.RECORD_UNREADABLE,
        )

    def _recover_if_abandoned(self, entry: Queued) -> Queued:
        """A ``sending`` message nobody holds the lock of: its sender died mid-transfer."""
        with contextlib.suppress(OSError), self._locked(entry.key) as locked:
            if locked:
                current = self._read_meta(entry.key)
                if current.state is State.SENDING:
                    self._mark_crashed(current)
                return current
        return entry

    def _mark_crashed(self, entry: Queued) -> None:
        entry.state = State.POSSIBLY_DELIVERED
        entry.last_error = CRASHED_WHILE_SENDING
        entry.stuck = Stuck.CRASHED_WHILE_SENDING
        self._write_meta(entry)

    def get(self, key: str) -> Queued:
        """The message whose key, or short id, is ``key`` or starts with it (unambiguously).

        Raises :class:`MessageNotFound`: nothing matches, or (its subclasses)
        the id is empty or several messages match.
        """
        if not key.strip():
            raise EmptyMessageId()
        entries = self.entries()
        for entry in entries:
            if key in (entry.key, entry.short_id):
                return entry
        matches = [e for e in entries if e.key.startswith(key)]
        if not matches:
            raise MessageNotFound(key)
        if len(matches) > 1:
            raise AmbiguousMessageId(key, matches)
        return matches[0]

    def subject(self, entry: Queued) -> str:
        """The message's subject: the sidecar's, else read from the stored message's head.

        Sidecars written by older versions have no subject. Only the first
        :data:`SUBJECT_READ_LIMIT` bytes are read (the headers come first), so
        a huge or damaged message costs no more than a small one; what cannot
        be read or decoded is "" (the listing still shows the envelope). The
        text is from a file: the face escapes it before printing.
        """
        if entry.subject:
            return entry.subject
        import stat

        try:
            # Without blocking, and a regular file only: a FIFO in the message's
            # place hung ``outbox list`` (and the app's outbox) on its open.
            fd = os.open(self.queue_dir / "new" / entry.key, os.O_RDONLY | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as stored:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return ""
                head = stored.read(SUBJECT_READ_LIMIT)
        except OSError:
            return ""
        return _subject_in(head)

    def password_wait(
        self, key: str, passwords: Callable[[Profile], Secret | None] | None = None
    ) -> PasswordWait | None:
        """Why a send of ``key`` now, without a password given by hand, would wait; None if not.

        Answers before anything connects: the server's wish for a password
        is known from the settings (a user name), and the password the outbox
        may use is a saved profile's own, asked of ``passwords``. Raises
        :class:`MessageNotFound` like :meth:`get`.
        """
        entry = self.get(key)
        if entry.state is State.DELIVERED:
            return None  # never sent again: the caller's own refusal says so
        try:
            profile, (_note, may_use_stored) = self._profile_for(entry)
        except Exception:  # unusable settings: the attempt itself says so
            return None
        if not profile.needs_password:
            return None
        if may_use_stored and passwords is not None and passwords(profile) is not None:
            return None
        return _password_wait(entry, profile, may_use_stored)

    def message_bytes(self, key: str) -> bytes:
        return read_small_file(self.queue_dir / "new" / key, STORED_MESSAGE_LIMIT)

    def drop(self, key: str) -> Queued:
        entry = self.get(key)
        with self._locked(entry.key) as locked:
            if not locked:
                raise OutboxError(f"{entry.short_id} is being sent right now")
            try:
                (self.queue_dir / "new" / entry.key).unlink()
            except FileNotFoundError:
                # Sent (or dropped) by another process since it was looked up.
                raise MessageGone(entry.short_id, "sent or dropped") from None
            with contextlib.suppress(OSError):
                (self.meta_dir / f"{entry.key}.json").unlink()
        return entry

    def requeue(self, key: str) -> Queued:
        """Make a failed or possibly-delivered message due again (a retry by the user).

        Raises :class:`MessageNotFound` (or a subclass) when there is no such
        message any more, :class:`NotRetryable` for a delivered message or one
        whose record cannot be read, :class:`OutboxError` while it is being sent.
        """
        entry = self.get(key)
        with self._locked(entry.key) as locked:
            if not locked:
                raise OutboxError(f"{entry.short_id} is being sent right now")
            try:
                entry = self._read_meta(entry.key)
            except FileNotFoundError:
                if (self.queue_dir / "new" / entry.key).exists():
                    raise NotRetryable(
                        entry.short_id, entry.last_error, stuck=entry.stuck
                    ) from None
                raise MessageGone(entry.short_id, "sent") from None
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                raise NotRetryable(entry.short_id, entry.last_error, stuck=entry.stuck) from None
            if entry.state is State.DELIVERED:
                raise NotRetryable(entry.short_id, entry.last_error, delivered=True)
            entry.state = State.QUEUED
            entry.next_attempt = 0.0
            entry.stuck = None  # the user decided: it waits no longer
            self._write_meta(entry)
        return entry

    # -- sending ------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[bool]:
        lock = self._lock(key)
        try:
            yield lock.held
        finally:
            self._unlock(lock)

    def _lock(self, key: str) -> _MessageLock:
        """Open the message's lock file and try its exclusive ``flock`` (never waits)."""
        lock_path = self.meta_dir / f"{key}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # Someone else holds it: their lock file is theirs to remove.
            return _MessageLock(key, lock_path, fd, held=False)
        except BaseException:
            os.close(fd)
            raise
        return _MessageLock(key, lock_path, fd, held=True)

    def _unlock(self, lock: _MessageLock) -> None:
        try:
            if lock.held:
                # Removed only by its holder, while held, once the message is
                # gone for good: removing it under another holder would let a
                # third process lock a fresh file beside them.
                with contextlib.suppress(OSError):
                    if not (self.queue_dir / "new" / lock.key).exists():
                        lock.path.unlink()
                fcntl.flock(lock.fd, fcntl.LOCK_UN)
        finally:
            os.close(lock.fd)

    def _unlock_taken(self, taking: Future[_MessageLock]) -> None:
        """Let go of a lock :meth:`_lock` took in the file thread (if it opened one)."""
        if taking.exception() is None:
            self._unlock(taking.result())

    async def attempt(
        self,
        key: str,
        password: Secret | None = None,
        *,
        on_entry: Callable[[Entry], None] | None = None,
        deadline: float = 300.0,
        outgoing: OutgoingMessage | None = None,
        transcript: Transcript | None = None,
        passwords: Callable[[Profile], Secret | None] | None = None,
        due_only: bool = False,
    ) -> Outcome:
        """Send one queued message once, under its lock; update or retire it.

        The sidecar is read again under the lock: only a message still
        queued (and, with ``due_only``, due now) is sent. ``password`` is
        the one to use; without it, ``passwords`` is asked for a message that
        follows a saved profile, at the same moment as the profile is read.
        ``outgoing`` is the message just queued, if the caller has it: the
        stored bytes are the same, and re-parsing them is not free. No file
        is touched on the caller's loop (the app's): see below.
        """
        # Every file step runs in this attempt's own thread, in order: the
        # caller's loop (the app's) never waits on the disk, and the lock is
        # let go after the last write, even when the caller is cancelled.
        with SerialThread("tuimail-outbox") as files:
            taking = files.submit(self._lock, key)
            try:
                if not (await files.result(taking)).held:
                    return Outcome(key, None, Result.SKIPPED, "another process is sending it")
                ready = await files.run(self._ready, key, outgoing, due_only=due_only)
                if isinstance(ready, Outcome):
                    return ready
                entry, profile, outgoing, (note, may_use_stored) = ready
                if password is None and passwords and may_use_stored and profile.needs_password:
                    try:
                        # Read now, with the profile it belongs to, and in a thread:
                        # a keyring call may wait on D-Bus, never on the caller's loop.
                        password = await asyncio.to_thread(passwords, profile)
                    except Exception as exc:  # a keyring problem: try again later
                        return Outcome(key, None, Result.SKIPPED, f"no password available: {exc}")
                if profile.needs_password and password is None:
                    wait = _password_wait(entry, profile, may_use_stored)
                    return Outcome(key, None, Result.SKIPPED, wait.words(), password_wait=wait)
                return await self._send(
                    entry, profile, outgoing, password, files,
                    note=note, on_entry=on_entry, deadline=deadline, transcript=transcript,
                )  # fmt: skip
            finally:
                await files.run(self._unlock_taken, taking)

    def _ready(
        self, key: str, outgoing: OutgoingMessage | None, *, due_only: bool
    ) -> Outcome | tuple[Queued, Profile, OutgoingMessage, tuple[str, bool]]:
        """Under the lock: the sidecar read again, and what the send needs, or why not to send."""
        try:
            entry = self._read_meta(key)
            data = self.message_bytes(key)
        except FileNotFoundError:
            return Outcome(key, None, Result.SKIPPED, "already sent by another process")
        if entry.state is State.SENDING:
            self._mark_crashed(entry)
            return Outcome(key, None, Result.of(entry.state), entry.last_error, stuck=entry.stuck)
        if entry.state is not State.QUEUED or (due_only and not entry.due(time.time())):
            return Outcome(key, None, Result.SKIPPED, f"no longer due ({entry.state.value})")
        try:
            profile, note = self._profile_for(entry)
            if outgoing is None or not _matches(outgoing, entry, data):
                outgoing = _outgoing_from(entry, data)
        except Exception as exc:  # one bad message fails alone
            return self._fail_unusable(entry, exc)
        return entry, profile, outgoing, note

    def _profile_for(self, entry: Queued) -> tuple[Profile, tuple[str, bool]]:
        """The settings for this attempt, a note for the transcript, and whether
        a stored password may be used (only a saved profile's own)."""
        frozen = _profile_from(entry.profile)
        if not entry.follows_profile:
            return frozen, ("", False)
        current = self._saved_profile(frozen.name)
        if current is None:
            return frozen, (
                f"the profile {frozen.name!r} was deleted after this message was queued; "
                "sending with the settings it was queued with, without a stored password",
                False,
            )
        from tuimail.profiles import with_changes

        # Options given for one send (--no-verify, --security none, a CA file...)
        # were given for the server and user of that moment: they never follow
        # the profile to another server, where they could weaken what the user
        # never weakened.
        keeps_overrides = bool(entry.overrides) and _same_account(current, frozen)
        profile = with_changes(current, **entry.overrides) if keeps_overrides else current
        note = ""
        if _profile_table(profile) != entry.profile:
            note = (
                f"the profile {frozen.name!r} changed after this message was queued; "
                f"sending with its current settings ({profile.address})"
            )
            if entry.overrides and not keeps_overrides:
                note += (
                    "; the options given for this send ("
                    + ", ".join(sorted(entry.overrides))
                    + ") were for its former server and are not used"
                )
        return profile, (note, True)

    def _fail_unusable(self, entry: Queued, exc: Exception) -> Outcome:
        """A message that cannot even be tried (its stored settings or bytes are bad)."""
        entry.state = State.FAILED
        entry.last_error = f"cannot be sent as stored: {exc}"
        entry.attempts.append({"at": time.time(), "ok": False, "explanation": entry.last_error})
        self._write_meta(entry)
        return Outcome(entry.key, None, Result.of(entry.state), entry.last_error)

    async def _send(
        self,
        entry: Queued,
        profile: Profile,
        outgoing: OutgoingMessage,
        password: Secret | None,
        files: SerialThread,
        *,
        note: str,
        on_entry: Callable[[Entry], None] | None,
        deadline: float,
        transcript: Transcript | None,
    ) -> Outcome:
        """One session; the sidecar says ``sending`` from the 354 until it is settled.

        The sidecar's writes and the settling run in ``files`` (the attempt's
        thread), awaited by the session where they happen: ``sending`` is on
        disk before the data goes out, and the message is settled before QUIT.
        """
        if transcript is None:
            transcript = Transcript(title=f"{profile.name} {profile.address}")
        if note:
            shown = transcript.event(EventKind.WARNING, note)
            if shown is not None and on_entry is not None:
                on_entry(shown)
        settled: list[Outcome] = []

        def record_sending() -> None:
            entry.state = State.SENDING
            self._write_meta(entry, durable=False)

        def settle_delivered(delivery: Delivery) -> None:
            try:
                settled.append(self._delivered(entry, delivery, transcript))
            except Exception as exc:  # whatever it is, the 250 stands
                settled.append(self._delivered_not_moved(entry, delivery, exc))

        def record_domain(delivery: Delivery) -> None:
            # A direct message's domain has it, others are still to go: on disk
            # now, so a sender killed before the next domain's data leaves the
            # message queued for the others only, never "possibly delivered" to all.
            taken = set(delivery.accepted)
            entry.delivered_to.extend(a for a in delivery.accepted if a not in entry.delivered_to)
            entry.recipients = [r for r in entry.recipients if r not in taken]
            entry.state = State.QUEUED
            with contextlib.suppress(OSError):  # still "sending" on disk: the safe side
                self._write_meta(entry, durable=False)

        # A direct message (tuimail/routing.py) goes to its domains' MX hosts.
        deliver: Callable[..., Awaitable[SessionReport]] = send
        if is_direct(profile):
            deliver = functools.partial(
                send_direct,
                on_domain_delivered=lambda delivery: files.run(record_domain, delivery),
            )
        report = await deliver(
            profile,
            outgoing,
            password,
            on_entry=on_entry,
            deadline=deadline,
            transcript=transcript,
            before_data=lambda: files.run(record_sending),
            on_delivered=lambda delivery: files.run(settle_delivered, delivery),
        )
        # After settle_delivered in the same thread, even if its wait was cut short.
        return await files.run(self._after_send, entry, report, settled)

    def _after_send(self, entry: Queued, report: SessionReport, settled: list[Outcome]) -> Outcome:
        if settled:
            outcome = settled[0]
            outcome.report = report
            if outcome.result is Result.SENT:
                # Rewritten with the whole conversation, QUIT included.
                self._write_transcript(entry.key, report)
            return outcome
        return self._settle(entry, report)

    def _delivered(self, entry: Queued, delivery: Delivery, transcript: Transcript) -> Outcome:
        """The final dot has its 250: settle now, before QUIT can go wrong."""
        now = time.time()
        deferred = [r for r in delivery.refused if r.temporary]
        rejected = [r for r in delivery.refused if not r.temporary]
        entry.attempts.append(
            {"at": now, "ok": True, "accepted": delivery.accepted, "reply": delivery.reply}
            | {"refused": [dataclasses.asdict(r) for r in delivery.refused]}
            | ({"notes": list(delivery.notes)} if delivery.notes else {})
        )
        # A direct message's earlier domains may be there already (record_domain).
        entry.delivered_to.extend(a for a in delivery.accepted if a not in entry.delivered_to)
        entry.rejected.extend(dataclasses.asdict(r) for r in rejected)
        parts = [f"delivered to {', '.join(delivery.accepted)}"]
        parts += [f"refused for now {r.address}: {r.code} {r.reply}" for r in deferred]
        parts += [f"refused {r.address}: {r.code} {r.reply}" for r in rejected]
        outcome = Outcome(
            entry.key, None, Result.SENT, "; ".join(parts[1:]),
            delivered_to=list(delivery.accepted), deferred=deferred, rejected=rejected,
        )  # fmt: skip
        if not deferred:
            self._retire(entry, transcript)
            return outcome
        entry.recipients = [r.address for r in deferred]
        entry.last_error = "; ".join(parts)
        self._reschedule(entry, now)
        outcome.result = Result.of(entry.state)
        outcome.detail = entry.last_error
        self._write_meta(entry)
        return outcome

    def _delivered_not_moved(self, entry: Queued, delivery: Delivery, exc: Exception) -> Outcome:
        """Delivered, but ``sent/`` could not take it: say so on disk, never offer a resend.

        If even the sidecar cannot be written, it still says ``sending``, which
        is shown as possibly delivered: the safe side, never a silent resend.
        """
        entry.state = State.DELIVERED
        entry.last_error = (
            f"delivered (the server accepted it), but it could not be moved to sent/ ({exc}); "
            "it will not be sent again, and the next flush finishes the move"
        )
        with contextlib.suppress(OSError):
            self._write_meta(entry)
        return Outcome(
            entry.key, None, Result.SENT, entry.last_error, delivered_to=list(delivery.accepted)
        )

    def _finish_move_unless_locked(self, entry: Queued) -> Outcome | None:
        with self._locked(entry.key) as locked:
            return self._finish_move(entry) if locked else None

    def _finish_move(self, entry: Queued) -> Outcome:
        """A delivered message left behind: move it to ``sent/`` now; nothing is sent."""
        try:
            os.rename(self.queue_dir / "new" / entry.key, self.sent_dir / "new" / entry.key)
        except OSError as exc:
            return Outcome(
                entry.key, None, Result.SKIPPED, f"delivered; still not moved to sent/: {exc}"
            )
        with contextlib.suppress(OSError):
            (self.meta_dir / f"{entry.key}.json").unlink()
        return Outcome(entry.key, None, Result.SENT, "delivered earlier; now moved to sent/")

    def _reschedule(self, entry: Queued, now: float) -> None:
        if now - entry.created >= self.policy.give_up_after:
            entry.state = State.FAILED
            entry.last_error = f"gave up after {len(entry.attempts)} attempts: {entry.last_error}"
        else:
            entry.state = State.QUEUED
            entry.next_attempt = now + self.policy.delay(len(entry.attempts))

    def _settle(self, entry: Queued, report: SessionReport) -> Outcome:
        """A session that did not deliver: queued again, failed or possibly delivered."""
        now = time.time()
        failure = report.failure
        attempt: dict[str, Any] = {"at": now, "ok": False}
        if failure is None:  # the session ended without a delivery: a bug, never "sent"
            entry.last_error = "the session ended without the server's reply to the message"
            attempt["explanation"] = entry.last_error
            entry.attempts.append(attempt)
            entry.state = State.POSSIBLY_DELIVERED
            self._write_meta(entry)
            return Outcome(entry.key, report, Result.of(entry.state), entry.last_error)
        attempt.update(failure.to_json())
        entry.attempts.append(attempt)
        entry.last_error = f"{failure.stage.value}: {failure.explanation}"
        later = [r for r in failure.refused if r.temporary]
        if later and len(later) < len(failure.refused):
            # Every recipient refused, some for good: only those refused for
            # now are tried again, as when others were accepted.
            entry.rejected.extend(dataclasses.asdict(r) for r in failure.refused if not r.temporary)
            entry.recipients = [r.address for r in later]
        if failure.possibly_delivered:
            entry.state = State.POSSIBLY_DELIVERED
        elif not failure.temporary:
            entry.state = State.FAILED
        else:
            self._reschedule(entry, now)
        self._write_meta(entry)
        return Outcome(entry.key, report, Result.of(entry.state), entry.last_error)

    def _retire(self, entry: Queued, transcript: Transcript) -> None:
        """Sent: transcript first, then the message moves; the sidecar goes last.

        Nothing here is fsynced: a power cut that undid these steps would leave
        the message queued (sent again, never lost), whatever the transcript's
        fate, so syncing the transcript alone bought nothing; it cost two
        fsyncs on every send.
        """
        try:
            self._write_transcript_text(entry.key, transcript)
            os.rename(self.queue_dir / "new" / entry.key, self.sent_dir / "new" / entry.key)
        except FileNotFoundError:
            # sent/ or its transcripts removed since the message was queued (a
            # clean-up by hand): made again, else a delivered message would be
            # shown as possibly delivered, and a retry would send it twice.
            self._prepare()
            self._write_transcript_text(entry.key, transcript)
            os.rename(self.queue_dir / "new" / entry.key, self.sent_dir / "new" / entry.key)
        with contextlib.suppress(OSError):
            (self.meta_dir / f"{entry.key}.json").unlink()

    def _write_transcript(self, key: str, report: SessionReport) -> None:
        with contextlib.suppress(OSError):
            self._write_transcript_text(key, report.transcript)

    def _write_transcript_text(self, key: str, transcript: Transcript) -> None:
        data = transcript.to_jsonl().encode("utf-8")
        atomic_write_bytes(self.transcripts_dir / f"{key}.jsonl", data, durable=False)

    async def flush(
        self,
        passwords: Callable[[Profile], Secret | None] | None = None,
        *,
        include_not_due: bool = False,
        on_entry: Callable[[Queued, Entry], None] | None = None,
    ) -> list[Outcome]:
        """Try every due queued message once, oldest first.

        Each message's state is read again under its lock before it is sent
        (another flush may have sent it, or marked it, meanwhile), and one
        message's failure, whatever it is, never stops the others. The files
        are read and written in threads, never on the caller's loop.
        """
        outcomes = []
        now = time.time()
        for entry in await asyncio.to_thread(self.entries):
            if entry.state is State.DELIVERED:
                moved = await asyncio.to_thread(self._finish_move_unless_locked, entry)
                if moved is not None:
                    outcomes.append(moved)
                continue
            if not (entry.due(now) or (include_not_due and entry.state is State.QUEUED)):
                continue
            callback = None
            if on_entry is not None:
                callback = _bind(on_entry, entry)
            try:
                outcome = await self.attempt(
                    entry.key, passwords=passwords, on_entry=callback, due_only=not include_not_due
                )
            except Exception as exc:  # whatever it is, it is this message's alone
                detail = f"could not be tried: {type(exc).__name__}: {exc}"
                outcome = Outcome(entry.key, None, Result.SKIPPED, detail)
            outcomes.append(outcome)
        return outcomes

    # -- sent ---------------------------------------------------------------

    def record_sent(self, outgoing: OutgoingMessage, transcript: Transcript) -> str:
        """Keep in ``sent/``, with its transcript, a message the built-in sandbox took.

        Such a message is sent without the outbox (the sandbox is a test server
        of this machine, and a queued copy could be retried later against
        another run's sandbox); it is recorded after the fact, only once the
        sandbox accepted it, so it is never sent twice. Its key ends with
        :data:`SANDBOX_SENT_MARK` (see :func:`sent_to_sandbox`). Returns the
        key; raises :class:`OutboxError` when ``sent/`` cannot take it (the
        message itself is in the sandbox's Maildir then, not lost).
        """
        from tuimail.maildir import unique_name

        key = unique_name() + SANDBOX_SENT_MARK
        try:
            self._prepare()
            self._write_transcript_text(key, transcript)
            deliver(self.sent_dir, outgoing.to_bytes(), durable=False, key=key)
        except OSError as exc:
            raise OutboxError(
                f"the sandbox has the message, but it could not be kept in {self.sent_dir}: "
                f"{exc.strerror or exc}"
            ) from None
        except OutboxError:  # the data dir could not be made ready (its words say "nothing sent")
            raise OutboxError(
                f"the sandbox has the message, but it could not be kept in {self.sent_dir}: "
                f"{self.root} cannot be written"
            ) from None
        return key

    def sent(self) -> list[tuple[str, bytes]]:
        new = self.sent_dir / "new"
        if not new.is_dir():
            return []
        found = []
        for path in sorted(new.iterdir(), key=_mtime):
            with contextlib.suppress(OSError):  # not a message tuimail wrote: left out
                found.append((path.name, read_small_file(path, STORED_MESSAGE_LIMIT)))
        return found

    def sent_transcript(self, key: str) -> str:
        return read_small_text(self.transcripts_dir / f"{key}.jsonl", STORED_MESSAGE_LIMIT)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _saved_profiles() -> dict[str, Profile]:
    from tuimail.profiles import ProfileStore

    return ProfileStore().load()


def _password_wait(entry: Queued, profile: Profile, may_use_stored: bool) -> PasswordWait:
    if entry.follows_profile and may_use_stored:
        reason = WaitReason.NONE_STORED
    elif entry.follows_profile:
        reason = WaitReason.PROFILE_DELETED
    else:
        reason = WaitReason.NO_PROFILE
    return PasswordWait(reason, profile.username, profile.name)


#: How much of a stored message :meth:`Outbox.subject` reads to find its headers.
SUBJECT_READ_LIMIT = 64 * 1024


def _subject_in(head: bytes) -> str:
    """The decoded Subject among the headers at the start of ``head``; "" if none or unreadable."""
    from email.parser import BytesHeaderParser

    end = head.find(b"\r\n\r\n")
    if end < 0:
        end = head.find(b"\n\n")
    headers = head if end < 0 else head[: end + 2]
    try:
        parsed = BytesHeaderParser(policy=policy.default).parsebytes(headers)
        return str(parsed.get("Subject", "") or "")
    except Exception:  # any damage: no subject rather than no listing
        return ""


#: How the key of a message sent to the built-in sandbox ends (:meth:`Outbox.record_sent`);
#: a key :func:`tuimail.maildir.unique_name` makes ends with a host name, which has no comma.
SANDBOX_SENT_MARK = ",sandbox"


def sent_to_sandbox(key: str) -> bool:
    """The sent message ``key`` went to the built-in sandbox, not to a mail server."""
    return key.endswith(SANDBOX_SENT_MARK)


def short_id(key: str) -> str:
    return key.rsplit(".", 1)[0] if key.count(".") >= 2 else key


def _bind(callback: Callable[[Queued, Entry], None], entry: Queued) -> Callable[[Entry], None]:
    return lambda line: callback(entry, line)


def _matches(outgoing: OutgoingMessage, entry: Queued, data: bytes) -> bool:
    """The caller's message is this entry's: same bytes, same remaining recipients."""
    return outgoing.envelope_recipients == entry.recipients and outgoing.to_bytes() == data


def _outgoing_from(entry: Queued, data: bytes) -> OutgoingMessage:
    """Rebuild what the session needs from the stored bytes and envelope (no re-render).

    The bytes were checked when built, but a file on disk can be changed or
    left by an older version: they are checked again, as a reader would
    decode them, before they go anywhere (a bad one fails alone).
    """
    everyone = [
        *entry.recipients,
        *entry.delivered_to,
        *(str(r.get("address", "")) for r in entry.rejected),
    ]
    # A release's To and Cc may name others than its recipients (given
    # apart from the message); every other check of the bytes holds.
    check_stored_message(data, None if entry.explicit_envelope else everyone)
    if entry.sha256 and hashlib.sha256(data).hexdigest() != entry.sha256:
        raise ValueError(
            f"the message file is not the message that was queued ({len(data):,} bytes "
            "now): it was truncated or changed on disk"
        )
    message = message_from_bytes(data, policy=policy.SMTP)
    return OutgoingMessage(
        message=message,
        sender=parse_address(entry.sender),
        recipients=tuple(parse_address(r) for r in entry.recipients),
        needs_smtputf8=entry.needs_smtputf8,
        wire_bytes=data,
    )


def release_outgoing(raw: bytes, recipients: Sequence[str]) -> OutgoingMessage:
    """A captured message made ready to go on to ``recipients`` alone, as it is.

    The bytes pass every check a prepared message passes
    (:func:`tuimail.eml.build_prepared`: headers, line lengths, no Bcc),
    but the recipients are the ones given, whoever its To and Cc name, as
    when sendmail is given recipients on its command line and Mailpit or
    smtp4dev release a message. Queue it with ``explicit_envelope=True``.
    Raises :class:`~tuimail.message.DraftInvalid` (the bytes, or a
    recipient that is not an address).
    """
    from tuimail.eml import build_prepared
    from tuimail.message import DraftInvalid, FieldError, validate_address_field

    given: list[ParsedAddress] = []
    for address in validate_address_field("to", recipients):
        if address.addr_spec.lower() not in {a.addr_spec.lower() for a in given}:
            given.append(address)
    if not given:
        raise DraftInvalid([FieldError("to", "no recipient: name at least one")])
    # Built with everyone its headers name among the recipients, so that
    # every check of a prepared message holds; the envelope is then the
    # given recipients alone.
    built = build_prepared(raw, to=recipients, read_recipients=True)
    # 8-bit headers need SMTPUTF8 (build_prepared said so); an 8-bit body needs 8BITMIME only.
    needs_utf8 = built.needs_smtputf8 or any(a.needs_smtputf8 for a in given)
    return dataclasses.replace(built, recipients=tuple(given), needs_smtputf8=needs_utf8)
