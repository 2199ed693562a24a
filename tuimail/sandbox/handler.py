"""aiosmtpd's handler hooks for the sandbox: EHLO's keywords, storing, authenticating."""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tuimail.faults import GREYLIST_REPLY
from tuimail.sandbox.config import DEFAULT_MAX_RECIPIENTS
from tuimail.sandbox.host import SandboxHost
from tuimail.sandbox.protocol import SandboxSMTP
from tuimail.sandbox.record import SessionOutcome, SessionRecord
from tuimail.stages import Stage
from tuimail.terminal_text import escape_controls
from tuimail.transcript import EventKind

#: Recipients per message by default, as Postfix's ``smtpd_recipient_limit``
#: (``SandboxConfig.max_recipients`` sets it); more are answered
#: :data:`TOO_MANY_RECIPIENTS`, as Postfix does (RFC 5321 4.5.3.1.10), and
#: the session goes on.
MAX_RECIPIENTS = DEFAULT_MAX_RECIPIENTS
TOO_MANY_RECIPIENTS = "452 4.5.3 Error: too many recipients"

#: Postfix's answer to a non-ASCII address in a transaction that did not
#: declare SMTPUTF8 (RFC 6531 3.4): an application that forgets it fails here
#: as it would against a production server.
NEEDS_SMTPUTF8 = "553 5.6.7 Must declare SMTPUTF8 to send unicode address"


class SandboxHandler:
    """aiosmtpd's documented hooks: EHLO's keywords, the envelope's rules, storing.

    Each hook runs after aiosmtpd's own syntax, sequence and AUTH checks, so
    the faults here (MAIL, RCPT, after the dot) fire only on a command aiosmtpd
    accepted; the ones that must come first are in :class:`SandboxSMTP`.
    """

    def __init__(self, sandbox: SandboxHost) -> None:
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

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        assert isinstance(server, SandboxSMTP)
        reply = await server.fault_reply(Stage.MAIL, _fault_address(address))
        if reply is not None:
            return reply
        if not address.isascii() and not envelope.smtp_utf8:
            return NEEDS_SMTPUTF8
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        assert isinstance(server, SandboxSMTP) and server.record is not None
        reply = await server.fault_reply(Stage.RCPT, _fault_address(address))
        if reply is not None:
            return reply
        assert envelope.mail_from is not None  # aiosmtpd answered 503 otherwise
        if self.sandbox.faults.greylisted(envelope.mail_from, address):
            server.record.transcript.event(
                EventKind.WARNING, f"greylisted {escape_controls(address)}"
            )
            return GREYLIST_REPLY
        limit = self.sandbox.config.max_recipients
        if len(envelope.rcpt_tos) >= limit:
            if server.over_limit is not envelope:
                server.over_limit = envelope  # said once per transaction
                server.record.transcript.event(
                    EventKind.WARNING,
                    f"recipient limit of {limit:,} per message reached: "
                    "further recipients are answered 452",
                )
            return TOO_MANY_RECIPIENTS
        if not address.isascii() and not envelope.smtp_utf8:
            return NEEDS_SMTPUTF8
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(server, SandboxSMTP) and server.record is not None
        reply = await server.fault_reply(Stage.DOT, lost="; not stored")
        if reply is not None:
            return reply
        content = envelope.original_content or b""
        try:
            stored = await self.sandbox.store_message(server.record, envelope, content)
        except OSError as exc:
            return self._not_stored(server.record, exc)
        return f"250 2.0.0 Ok: queued as {stored.key}"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(server, SandboxSMTP)
        if server.record is not None:
            server.record.outcome = SessionOutcome.COMPLETED
        return "221 Bye"

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


def _fault_address(address: str) -> str:
    """The address a fault rule is matched against: none for the null sender ``<>``."""
    return "" if address == "<>" else address
