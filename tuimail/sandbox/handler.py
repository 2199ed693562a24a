"""aiosmtpd's handler hooks for the sandbox: EHLO's keywords, storing, authenticating."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tuimail.faults import FaultAction, FaultStage
from tuimail.sandbox.protocol import SandboxSMTP
from tuimail.sandbox.record import SessionRecord
from tuimail.transcript import EventKind

if TYPE_CHECKING:
    from tuimail.sandbox.server import Sandbox


class SandboxHandler:
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
                server.close_with(f"disconnected by fault {rule.describe()}; not stored")
                return "421 4.3.0 closing"  # never reaches the client: the transport is closed
            else:
                return rule.reply
        content = envelope.original_content or b""
        assert server.record is not None
        try:
            stored = await self.sandbox.store_message(server.record, envelope, content)
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


def authenticator(users: dict[str, str]) -> Callable[..., AuthResult]:
    """aiosmtpd's authenticator: any credentials when ``users`` is empty, else theirs."""

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


def _same(expected: str, given: str) -> bool:
    import hmac

    return hmac.compare_digest(expected.encode(), given.encode())
