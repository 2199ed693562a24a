"""What a connection needs from the sandbox that accepted it.

The per-connection parts (:class:`~tuimail.sandbox.protocol.SandboxSMTP`,
:class:`~tuimail.sandbox.handler.SandboxHandler`,
:class:`~tuimail.sandbox.admission.ImplicitTLSAdmission`) are built by
:class:`~tuimail.sandbox.server.Sandbox` and call back into it. They depend
on this interface, which the sandbox satisfies, and not on the sandbox's
class: the server imports them, and nothing imports the server back.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Protocol

from aiosmtpd.smtp import Envelope

from tuimail.faults import FaultPlan
from tuimail.sandbox.config import SandboxConfig
from tuimail.sandbox.record import SessionOutcome, SessionRecord, StoredMessage


class SandboxHost(Protocol):
    """The sandbox as its connections see it: settings, faults, the cap, sessions, storage."""

    @property
    def config(self) -> SandboxConfig: ...

    @property
    def faults(self) -> FaultPlan: ...

    @property
    def tls_context(self) -> ssl.SSLContext | None:
        """The server's TLS context; set before the first connection when TLS is on."""

    @property
    def maildir_path(self) -> Path: ...

    def admit(self) -> bool:
        """Count a new connection in, or False when the cap is reached."""

    def release(self) -> None:
        """Give back the place of a connection that :meth:`admit` counted in."""

    def track_handshake(self, task: asyncio.Task[None]) -> None:
        """An implicit-TLS handshake in progress: cancelled if the sandbox stops first."""

    def open_session(self, peer: str) -> SessionRecord:
        """A new session's record, for a client connected from ``peer``."""

    def end_session(self, record: SessionRecord, outcome: SessionOutcome, detail: str = "") -> None:
        """End the session (once) with ``outcome`` (``detail``: what it names), and save it."""

    async def store_message(
        self, record: SessionRecord, envelope: Envelope, content: bytes
    ) -> StoredMessage:
        """Write the message to the Maildir and note it in the session's record."""
