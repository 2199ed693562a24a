"""Real SMTP servers for the tests: aiosmtpd on 127.0.0.1, port 0, in a thread (and a DNS one).

The servers run on their own event loop in their own thread, like a remote
server would, so a client under test (in-process or a subprocess) shares
nothing with them but the socket. Misbehaving servers are aiosmtpd subclasses
with one behaviour changed, so everything else stays protocol-correct.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
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


@dataclass(frozen=True)
class Reply:
    """One scripted answer: ``text`` (lines joined by CRLF; None sends nothing), then
    ``close`` the connection, or ``hold`` it open without reading or answering again."""

    text: str | None
    close: bool = False
    hold: bool = False


EHLO_REPLY = Reply("250-mx.test\r\n250-8BITMIME\r\n250 PIPELINING")
DEFAULT_REPLIES = {
    "EHLO": EHLO_REPLY,
    "DATA": Reply("354 End data with <CR><LF>.<CR><LF>"),
    ".": Reply("250 2.0.0 Ok: queued as SCRIPTED"),
    "QUIT": Reply("221 2.0.0 Bye", close=True),
}


class ScriptedServer:
    """A hostile SMTP server written line by line, for what aiosmtpd will not do.

    ``replies`` maps a command verb (``"."`` is the final dot of DATA) to a
    :class:`Reply`; anything not scripted gets ``250 2.0.0 Ok``. It records
    every client line and every connection, and sets ``final_dot`` when a
    message's final dot arrives. Every read has a timeout, every line a bound.
    """

    def __init__(self, replies: dict[str, Reply] | None = None) -> None:
        self.replies = {**DEFAULT_REPLIES, **(replies or {})}
        self.commands: list[str] = []
        self.messages: list[bytes] = []
        self.connections = 0
        self.final_dot = threading.Event()

    def verbs(self) -> list[str]:
        return [line.split(" ", 1)[0].upper() for line in self.commands]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            writer.write(b"220 mx.test scripted ESMTP\r\n")
            await writer.drain()
            while True:
                line = await self._read_line(reader)
                if line is None:
                    return
                self.commands.append(line)
                verb = line.split(" ", 1)[0].upper()
                reply = self.replies.get(verb, Reply("250 2.0.0 Ok"))
                if verb == "DATA" and reply.text and reply.text.startswith("354"):
                    if not await self._answer(writer, reader, reply):
                        return
                    if not await self._read_message(reader):
                        return
                    self.final_dot.set()
                    reply = self.replies["."]
                if not await self._answer(writer, reader, reply):
                    return
        except (ConnectionError, TimeoutError):
            return
        finally:
            writer.close()

    @staticmethod
    async def _read_line(reader: asyncio.StreamReader) -> str | None:
        raw = await asyncio.wait_for(reader.readline(), 30)
        if not raw.endswith(b"\n") or len(raw) > 4096:
            return None
        return raw.rstrip(b"\r\n").decode("utf-8", "replace")

    async def _read_message(self, reader: asyncio.StreamReader) -> bool:
        lines: list[bytes] = []
        while len(lines) < 100_000:
            raw = await asyncio.wait_for(reader.readline(), 30)
            if not raw.endswith(b"\n"):
                return False
            if raw == b".\r\n":
                self.messages.append(b"".join(lines))
                return True
            lines.append(raw[1:] if raw.startswith(b".") else raw)
        return False

    @staticmethod
    async def _answer(
        writer: asyncio.StreamWriter, reader: asyncio.StreamReader, reply: Reply
    ) -> bool:
        """Send the reply; False when the script ends the conversation here."""
        if reply.text is not None:
            writer.write(reply.text.encode() + b"\r\n")
            await writer.drain()
        if reply.hold:
            # Say nothing more until the client gives up (or 60 s pass).
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(_discard_until_eof(reader), 60)
            return False
        return not reply.close


async def _discard_until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(4096):
        pass


class TinyDNS(asyncio.DatagramProtocol):
    """A real DNS responder on loopback, answering MX queries from a small zone."""

    def __init__(self, zone: dict[str, list[str]]) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().rstrip(".")
        if name not in self.zone:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif self.zone[name]:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, "IN", "MX", self.zone[name])
            )
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


class ServerThread:
    """An event loop in a thread, hosting servers on 127.0.0.1 with free ports."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._servers: list[asyncio.AbstractServer] = []
        self._datagrams: list[asyncio.DatagramTransport] = []

    def __enter__(self) -> ServerThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        async def shutdown() -> None:
            for server in self._servers:
                server.close()
            for transport in self._datagrams:
                transport.close()
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

    def scripted(self, server: ScriptedServer) -> int:
        """Start a :class:`ScriptedServer`; returns its port."""

        async def create() -> asyncio.Server:
            return await asyncio.start_server(server.handle, "127.0.0.1", 0)

        listening = asyncio.run_coroutine_threadsafe(create(), self.loop).result(5)
        self._servers.append(listening)
        return int(listening.sockets[0].getsockname()[1])

    def dns(self, zone: dict[str, list[str]]) -> int:
        """Start a :class:`TinyDNS` answering from ``zone`` (name: MX records); returns its port."""

        async def create() -> asyncio.DatagramTransport:
            transport, _ = await self.loop.create_datagram_endpoint(
                lambda: TinyDNS(zone), local_addr=("127.0.0.1", 0)
            )
            return transport

        transport = asyncio.run_coroutine_threadsafe(create(), self.loop).result(5)
        self._datagrams.append(transport)
        return int(transport.get_extra_info("sockname")[1])

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
