"""The sessions of this run of the app, so the transcript screen can go back to any."""

from __future__ import annotations

import enum
import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SMTP client is imported for the first send, not at start-up
    from tuimail.outbox import Result
    from tuimail.session import SessionReport
    from tuimail.transcript import Transcript

_ids = itertools.count(1)


class RunKind(enum.StrEnum):
    """What a session the app ran was for."""

    SEND = "send"  # a message from Compose
    TEST = "test"  # a connection test from Accounts: no mail
    RETRY = "retry"  # an outbox message sent again on request (F7)


class SentState(enum.StrEnum):
    """Where a message a session carried ended up (the outbox's word, or Compose's)."""

    NONE = ""  # not through the outbox (the sandbox, a connection test)
    SENT = "sent"
    QUEUED = "queued"  # in the outbox, to be retried (or taken by another sender)
    FAILED = "failed"  # in the outbox as failed for good
    POSSIBLY_DELIVERED = "possibly-delivered"  # in the outbox; the server may have it
    SKIPPED = "skipped"  # not tried: another sender holds it, or it has no password to use
    RETURNED = "returned"  # failed for good and back in Compose as a draft, not in the outbox
    NOT_STORED = "not stored"  # the outbox could not store it: the draft stays in Compose

    @classmethod
    def of(cls, result: Result) -> SentState:
        """Where the outbox's result of one attempt left the message."""
        from tuimail.outbox import Result

        return {
            Result.SENT: cls.SENT,
            Result.QUEUED: cls.QUEUED,
            Result.FAILED: cls.FAILED,
            Result.POSSIBLY_DELIVERED: cls.POSSIBLY_DELIVERED,
            Result.SKIPPED: cls.SKIPPED,
        }[result]


class RunStatus(enum.Enum):
    """How a session the app ran is going, or how it ended (its words are chosen where shown)."""

    RUNNING = enum.auto()
    OK = enum.auto()
    PARTIAL = enum.auto()  # delivered, but some recipients were refused
    FAILED = enum.auto()


@dataclass(eq=False)
class SessionRun:
    """One client session the app ran: a send or a connection test."""

    kind: RunKind
    profile_name: str
    summary: str
    transcript: Transcript
    id: int = field(default_factory=lambda: next(_ids))
    started: float = field(default_factory=time.time)
    report: SessionReport | None = None
    outbox_state: SentState = SentState.NONE
    outbox_key: str = ""

    @property
    def finished(self) -> bool:
        return self.report is not None

    @property
    def status(self) -> RunStatus:
        if self.report is None:
            return RunStatus.RUNNING
        if self.report.failure is not None:
            return RunStatus.FAILED
        delivery = self.report.delivery
        if delivery is not None and delivery.refused:
            return RunStatus.PARTIAL
        return RunStatus.OK


@dataclass
class SessionHistory:
    runs: list[SessionRun] = field(default_factory=list)

    def add(self, run: SessionRun) -> SessionRun:
        self.runs.append(run)
        return run

    def get(self, run_id: int) -> SessionRun | None:
        return next((run for run in self.runs if run.id == run_id), None)

    @property
    def latest(self) -> SessionRun | None:
        return self.runs[-1] if self.runs else None
