"""The sessions of this run of the app, so the transcript screen can go back to any."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SMTP client is imported for the first send, not at start-up
    from tuimail.session import SessionReport
    from tuimail.transcript import Transcript

_ids = itertools.count(1)


@dataclass(eq=False)
class SessionRun:
    """One client session the app ran: a send or a connection test."""

    kind: str  # "send" or "test"
    profile_name: str
    summary: str
    transcript: Transcript
    id: int = field(default_factory=lambda: next(_ids))
    started: float = field(default_factory=time.time)
    report: SessionReport | None = None
    #: Through the outbox: "sent", "queued", "failed" or "possibly-delivered"; "" when not.
    outbox_state: str = ""
    outbox_key: str = ""

    @property
    def finished(self) -> bool:
        return self.report is not None

    @property
    def status(self) -> str:
        if self.report is None:
            return "running"
        if self.report.failure is not None:
            return "failed"
        delivery = self.report.delivery
        if delivery is not None and delivery.refused:
            return "partial"
        return "ok"

    def label(self) -> str:
        mark = {"running": "…", "ok": "✓", "partial": "!", "failed": "✗"}[self.status]
        when = time.strftime("%H:%M:%S", time.localtime(self.started))
        return f"{mark} {when} {self.kind} {self.profile_name}: {self.summary}"


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
