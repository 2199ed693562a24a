"""Seeing the wire under aiosmtplib.

aiosmtplib has no transcript hook, so tuimail supplies its own protocol object:
:class:`TranscribingProtocol` is aiosmtplib's ``SMTPProtocol`` with the two
doors of the connection watched, ``data_received`` (server to client) and
``write`` (client to server). :class:`TranscribingSMTP` makes its own TCP
connection (so the start of connect, TLS handshake and greeting can each be
told to its caller, who keeps the clock: tuimail/smtp_stepper.py) and hands
aiosmtplib the socket through its public ``sock=``.

This reaches into aiosmtplib internals (``_create_connection`` and the
protocol class, listed in tuimail/private_api.py), so two safety nets exist:
:meth:`TranscribingSMTP._create_connection` checks after the greeting that the
capture saw it (:class:`CaptureLost` otherwise), and the test suite asserts
every command of a real session appears in the transcript.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiosmtplib import SMTP, SMTPResponse
from aiosmtplib.errors import (
    SMTPConnectError,
    SMTPConnectResponseError,
    SMTPConnectTimeoutError,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)
from aiosmtplib.protocol import SMTPProtocol

from tuimail.bearer import (
    OAUTHBEARER_ABORT,
    XOAUTH2_ABORT,
    TokenRefused,
    oauthbearer_response,
    read_challenge,
    xoauth2_response,
)
from tuimail.credentials import Secret
from tuimail.errors import TuimailError
from tuimail.line_framer import LineFramer, cut_note
from tuimail.stages import Stage
from tuimail.terminal_text import decode_for_terminal
from tuimail.transcript import ConversationRedactor, Direction, EventKind, Transcript


class CaptureLost(TuimailError, RuntimeError):
    """The transcript stopped seeing the wire: aiosmtplib changed under us."""


@dataclass(frozen=True)
class AddressFailure:
    """Why one address of a host did not take the connection."""

    address: str
    #: The OS error number (``errno.ECONNREFUSED``...), when there is one.
    errno: int | None
    #: The OS's words for it ("Connection refused"), not asyncio's "Connect call failed".
    reason: str


class ConnectFailed(SMTPConnectError):
    """No address of the host took the TCP connection: each one's reason, as data.

    A refused connection never opened, so nothing was closed: the session
    says "refused" (:attr:`refused`), not that a server closed anything.
    """

    def __init__(self, host: str, port: int, failures: tuple[AddressFailure, ...]) -> None:
        reasons = "; ".join(f"{f.address}: {f.reason}" for f in failures)
        super().__init__(f"cannot connect to {host} port {port}: {reasons}")
        self.host = host
        self.port = port
        self.failures = failures

    @property
    def refused(self) -> bool:
        """Every address answered the connection with a refusal (nothing listens there)."""
        return bool(self.failures) and all(f.errno == errno.ECONNREFUSED for f in self.failures)


class WireCapture:
    """Turns raw bytes, in both directions, into redacted transcript entries."""

    def __init__(self, transcript: Transcript) -> None:
        self.transcript = transcript
        self.redactor = ConversationRedactor(replies_in_order=True)
        self.secure = False
        #: A TCP connection was made: only then can one be closed.
        self.connected = False
        self.closed = False
        #: Lines over tuimail/line_framer.py's bound are cut, their rest counted.
        self._lines = LineFramer(
            lambda dropped: self.transcript.event(EventKind.INFO, cut_note(dropped))
        )
        self._pending = self._lines.buffer
        #: The client asked for STARTTLS and the server said 220: until TLS is
        #: up, what the server sends is plaintext that aiosmtplib discards
        #: (RFC 3207 4.2), however it is split into lines.
        self._starttls_asked = False
        self._before_tls = False
        self._discarded = 0

    def received(self, data: bytes) -> None:
        self._lines.feed(data)
        while (line := self._lines.next_line()) is not None:
            self._server_line(line)

    def _server_line(self, raw: bytes) -> None:
        if self._before_tls:
            self._discarded += len(raw)
        # Masked in the whole line before the transcript cuts a long one: a
        # server that echoes the password where the cut falls would show its start.
        shown = self.transcript.scrub(decode_for_terminal(raw))[0]
        text = self.redactor.server_line(shown)
        self.transcript.add(Direction.SERVER, text, secure=self.secure)
        if self._starttls_asked and text[3:4] != "-":
            self._starttls_asked = False
            self._before_tls = text.startswith("220")

    def tls_started(self) -> None:
        """STARTTLS succeeded: bytes the server sent before it are plaintext, discarded.

        A line the server had not finished before the handshake is recorded
        as the plaintext it was, not joined to the first line inside TLS.
        """
        if self._pending:
            self._server_line(bytes(self._pending))
            self._pending.clear()
        if self._before_tls and self._discarded:
            self.transcript.event(
                EventKind.WARNING,
                f"{self._discarded:,} bytes of plaintext the server sent after its 220 to "
                "STARTTLS, before the TLS handshake, were discarded unread (RFC 3207 4.2)",
            )
        self._before_tls = False
        self._discarded = 0
        self.secure = True

    def sent(self, data: bytes) -> None:
        if self.redactor.in_data:
            # aiosmtplib writes the whole dot-stuffed payload, final dot included, at once.
            lines = data.count(b"\r\n") - 1
            summary = self.redactor.client_data(len(data) - 3, max(lines, 0))
            self.transcript.add(Direction.CLIENT, summary, secure=self.secure)
            return
        # An empty line inside AUTH is a SASL response (XOAUTH2's answer to an
        # error challenge): recorded, and counted, as the response it is.
        empty_response = data == b"\r\n" and self.redactor.sasl_pending
        for raw in [b""] if empty_response else data.split(b"\r\n"):
            if not raw and not empty_response:
                continue
            if raw.upper() == b"STARTTLS" and not self.secure:
                self._starttls_asked = True
            result = self.redactor.client_line(decode_for_terminal(raw))
            if result is not None:
                text, redacted = result
                self.transcript.add(Direction.CLIENT, text, secure=self.secure, redacted=redacted)

    def mark_connected(self, host: str, port: int) -> None:
        """The TCP connection is up: say where to."""
        self.connected = True
        shown = f"[{host}]" if ":" in host else host
        self.transcript.event(
            EventKind.CONNECTED, f"connected to {shown}:{port}", address=host, port=port
        )

    def connection_lost(self, exc: Exception | None) -> None:
        """The transport is gone; says so unless we closed it ourselves.

        A TLS error here (other than the peer's end of the stream) is this
        side's: the handshake failed in tuimail (a refused certificate, a
        server that does not speak TLS), which then drops the connection.
        The server closed nothing, so the line is left to whoever knows why
        (tuimail/session.py's close).
        """
        if self._pending:
            self._server_line(bytes(self._pending))
            self._pending.clear()
        if isinstance(exc, ssl.SSLError) and not isinstance(
            exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)
        ):
            return
        reason = f": {exc}" if exc else ""
        self.mark_closed(f"the server closed the connection{reason}")

    def mark_closed(self, text: str = "connection closed") -> None:
        """Say once that the connection is closed; nothing to say when none was ever made."""
        if self.connected and not self.closed:
            self.closed = True
            self.transcript.event(EventKind.CLOSED, text, secure=self.secure)


def _literal_address(host: str, port: int) -> list[Any]:
    """``getaddrinfo``'s answer for an IP literal, without its thread pool and IDNA codec."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        address = (host, port) if family == socket.AF_INET else (host, port, 0, 0)
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)]
    return []


class TranscribingProtocol(SMTPProtocol):
    """aiosmtplib's protocol, with both directions copied to a :class:`WireCapture`."""

    def __init__(self, capture: WireCapture, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.capture = capture

    def data_received(self, data: bytes) -> None:
        self.capture.received(data)
        super().data_received(data)

    def write(self, data: bytes) -> None:
        super().write(data)
        self.capture.sent(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.capture.connection_lost(exc)
        super().connection_lost(exc)


def default_ehlo_name() -> str:
    """This machine's name if it is usable in EHLO, else ``localhost``.

    ``socket.getfqdn()`` (aiosmtplib's default) can block for seconds on a
    broken resolver; the plain host name is instant.
    """
    name = socket.gethostname()
    return name if re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})", name) else "localhost"


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect: the server, implicit TLS or not, and the limits."""

    host: str
    port: int
    #: TLS from the first byte (port 465 style); STARTTLS is a later step.
    implicit_tls: bool
    #: The context for implicit TLS and for STARTTLS; ``None`` without TLS.
    tls_context: ssl.SSLContext | None
    #: Seconds for each step and each command.
    timeout: float
    #: The name this client gives in EHLO.
    ehlo_name: str
    #: The IP address to connect to, already resolved (an MX host's, found
    #: through dnspython by tuimail/routing.py); empty: resolve ``host``. TLS
    #: (SNI, the certificate's name) keeps using ``host``.
    address: str = ""


class TranscribingSMTP(SMTP):
    """aiosmtplib's client on a :class:`TranscribingProtocol`, telling when each part starts.

    :meth:`open` connects the TCP socket itself (reported as "connected to")
    and hands it to aiosmtplib's public ``connect(sock=...)``; the one
    override left, ``_create_connection``, puts the transcribing protocol on
    that socket and tells the implicit TLS handshake apart from the greeting
    (see tuimail/private_api.py). ``on_part`` hears each part of :meth:`open`
    as it starts (connect, tls, greeting): the caller keeps the clock and
    knows which part a failure stopped in.
    """

    def __init__(
        self,
        capture: WireCapture,
        endpoint: Endpoint,
        on_tls: Callable[[ssl.SSLObject], None] | None = None,
        on_part: Callable[[Stage], None] | None = None,
    ) -> None:
        # No port: aiosmtplib takes the connected socket instead (and refuses both).
        super().__init__(
            hostname=endpoint.host,
            local_hostname=endpoint.ehlo_name,
            timeout=endpoint.timeout,
            use_tls=endpoint.implicit_tls,
            start_tls=False,
            tls_context=endpoint.tls_context,
        )
        self.capture = capture
        self.endpoint = endpoint
        self._on_tls = on_tls
        self._on_part = on_part or (lambda stage: None)

    async def open(self) -> SMTPResponse:
        """Connect, run implicit TLS if asked, and read the greeting; returns the greeting."""
        endpoint = self.endpoint
        self._on_part(Stage.CONNECT)
        sock = await self._open_socket(
            endpoint.address or endpoint.host, endpoint.port, endpoint.timeout
        )
        return await self.connect(sock=sock)

    async def _create_connection(self, timeout: float | None) -> SMTPResponse:
        """aiosmtplib's own step, on the socket :meth:`open` connected, with the transcribing protocol."""
        loop = self.loop
        if loop is None or self.sock is None:
            raise RuntimeError("TranscribingSMTP connects through open()")
        host = self.endpoint.host
        transcript = self.capture.transcript
        tls_context = self.tls_context if self.use_tls else None
        if self.use_tls:
            self._on_part(Stage.TLS)
            if tls_context is None:
                raise ValueError("implicit TLS needs a TLS context")
        protocol = TranscribingProtocol(
            self.capture, loop=loop, connection_lost_callback=self._connection_dropped
        )
        if tls_context is not None:
            # The protocol sees only decrypted bytes, and the greeting can arrive
            # before create_connection() returns to us: mark them secure now.
            self.capture.secure = True
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(
                    lambda: protocol,
                    sock=self.sock,
                    ssl=tls_context,
                    server_hostname=host if tls_context else None,
                    ssl_handshake_timeout=timeout if tls_context else None,
                ),
                timeout=timeout,
            )
        except BaseException:
            self.sock.close()
            raise
        self.protocol = protocol
        self.transport = transport
        if tls_context is not None:
            ssl_object = transport.get_extra_info("ssl_object")
            if self._on_tls is not None and ssl_object is not None:
                self._on_tls(ssl_object)

        self._on_part(Stage.GREETING)
        try:
            response = await protocol.read_response(timeout=timeout)
        except SMTPServerDisconnected as exc:
            raise SMTPConnectError(f"{host} closed the connection before greeting") from exc
        except SMTPTimeoutError as exc:
            raise SMTPConnectTimeoutError(
                f"{host} did not send its greeting within {timeout:g} seconds"
            ) from exc
        if response.code != 220:
            raise SMTPConnectResponseError(response.code, response.message)
        if not any(e.direction is Direction.SERVER for e in transcript.entries):
            raise CaptureLost("the transcript did not see the server's greeting")
        return response

    def _connection_dropped(self, protocol: SMTPProtocol) -> None:
        """The protocol lost its connection: forget it, as aiosmtplib's own callback does."""
        if protocol is self.protocol:
            self.close()

    async def _open_socket(self, host: str, port: int, timeout: float | None) -> socket.socket:
        """Resolve and connect, trying each address in turn, within ``timeout`` overall."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = _literal_address(host, port) or await loop.getaddrinfo(
                    host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
                failures: list[AddressFailure] = []
                for family, type_, proto, _name, address in infos:
                    sock = socket.socket(family, type_, proto)
                    sock.setblocking(False)
                    try:
                        await loop.sock_connect(sock, address)
                    except OSError as exc:
                        sock.close()
                        # asyncio's own text is "Connect call failed (...)": the OS's says why.
                        reason = os.strerror(exc.errno) if exc.errno else str(exc)
                        failures.append(AddressFailure(str(address[0]), exc.errno, reason))
                        continue
                    except BaseException:
                        sock.close()
                        raise
                    self.capture.mark_connected(str(address[0]), int(address[1]))
                    return sock
        except TimeoutError as exc:
            raise SMTPConnectTimeoutError(
                f"could not connect to {host} port {port} within {timeout:g} seconds"
            ) from exc
        except socket.gaierror as exc:
            raise SMTPConnectError(f"cannot resolve {host}: {exc.strerror}") from exc
        raise ConnectFailed(host, port, tuple(failures))

    async def authenticate(self, mechanism: str, username: str, password: str) -> SMTPResponse:
        """One AUTH exchange with a password mechanism (plain, login, cram-md5).

        Unlike aiosmtplib's ``login()``, a refusal is not retried with every
        other mechanism: one password, one attempt. Tokens go through
        :meth:`authenticate_bearer`.
        """
        method = {
            "plain": self.auth_plain,
            "login": self.auth_login,
            "cram-md5": self.auth_crammd5,
        }[str(mechanism)]
        return await method(username, password)

    async def authenticate_bearer(
        self, mechanism: str, username: str, token: Secret
    ) -> SMTPResponse:
        """One AUTH exchange with a bearer token (xoauth2, oauthbearer), through the command API.

        aiosmtplib's ``auth_xoauth2`` answers an error challenge itself and
        raises with only the final ``535``; here the challenge is kept,
        answered as the mechanism requires (tuimail/bearer.py), and raised
        with the final reply as :class:`~tuimail.bearer.TokenRefused`.
        """
        oauthbearer = str(mechanism) == "oauthbearer"
        if oauthbearer:
            initial = oauthbearer_response(username, token, self.endpoint.host, self.endpoint.port)
        else:
            initial = xoauth2_response(username, token)
        response = await self.execute_command(b"AUTH", str(mechanism).upper().encode(), initial)
        challenge = None
        if response.code == 334:
            challenge = read_challenge(response.message)
            answer = OAUTHBEARER_ABORT if oauthbearer else XOAUTH2_ABORT
            response = await self.execute_command(answer)
            if response.code == 334:
                # Another challenge where the final reply belongs: cancel (RFC 4954 4).
                response = await self.execute_command(b"*")
        if response.code != 235:
            raise TokenRefused(response.code, response.message, challenge)
        return response

    def mark_secure(self) -> None:
        """Called once STARTTLS has upgraded the connection."""
        self.capture.tls_started()
        ssl_object = self.get_transport_info("ssl_object")
        if self._on_tls is not None and ssl_object is not None:
            self._on_tls(ssl_object)
