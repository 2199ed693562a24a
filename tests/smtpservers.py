"""Real SMTP servers for the tests: aiosmtpd on 127.0.0.1, port 0, in a thread.

The servers run on their own event loop in their own thread, like a remote
server would, so a client under test (in-process or a subprocess) shares
nothing with them but the socket. Misbehaving servers are aiosmtpd subclasses
with one behaviour changed, so everything else stays protocol-correct.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    mail_options: list[str]


@dataclass
class Sink:
    """aiosmtpd handler that keeps every message and can refuse on cue."""

    messages: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    disconnect_after_data: bool = False

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        assert isinstance(envelope.content, bytes)
        self.messages.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                envelope.content,
                list(envelope.mail_options),
            )
        )
        if self.disconnect_after_data:
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
        return "250 Message accepted for delivery"


def password_checker(users: dict[str, str]) -> Callable[..., AuthResult]:
    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode()
            if users.get(login) == auth_data.password.decode():
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    return authenticate


class ByteAtATimeSMTP(SMTP):
    """Sends every reply one byte per write, with a flush after each byte."""

    async def push(self, status: Any) -> None:
        data = (status.encode("utf-8") if isinstance(status, str) else status) + b"\r\n"
        for i in range(len(data)):
            self._writer.write(data[i : i + 1])
            await self._writer.drain()
            await asyncio.sleep(0)


class BusyGreetingSMTP(SMTP):
    """Greets with 421 and hangs up, as an overloaded server does."""

    async def push(self, status: Any) -> None:
        text = status.decode() if isinstance(status, bytes) else status
        if text.startswith("220"):
            await super().push("421 4.3.2 Service not available, try again later")
            assert self.transport is not None
            self.transport.close()
            return
        await super().push(status)


class RefuseStartTLSSMTP(SMTP):
    """Offers STARTTLS, then refuses it."""

    async def smtp_STARTTLS(self, arg: str) -> None:
        await self.push("454 4.7.0 TLS not available due to temporary reason")


class ServerThread:
    """An event loop in a thread, hosting servers on 127.0.0.1 with free ports."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._servers: list[asyncio.AbstractServer] = []

    def __enter__(self) -> ServerThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        async def shutdown() -> None:
            for server in self._servers:
                server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def start(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        ssl_context: ssl.SSLContext | None = None,
    ) -> int:
        async def create() -> asyncio.Server:
            return await self.loop.create_server(protocol_factory, "127.0.0.1", 0, ssl=ssl_context)

        server = asyncio.run_coroutine_threadsafe(create(), self.loop).result(5)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def smtp(
        self,
        handler: Any,
        *,
        server_class: type[SMTP] = SMTP,
        implicit_tls: ssl.SSLContext | None = None,
        **smtp_kwargs: Any,
    ) -> int:
        """Start an aiosmtpd server; returns its port."""
        smtp_kwargs.setdefault("hostname", "mx.test")
        smtp_kwargs.setdefault("timeout", 30)

        def factory() -> SMTP:
            return server_class(handler, loop=self.loop, **smtp_kwargs)

        return self.start(factory, implicit_tls)


@contextmanager
def server_thread() -> Iterator[ServerThread]:
    with ServerThread() as thread:
        yield thread
