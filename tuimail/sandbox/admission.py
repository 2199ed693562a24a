"""Implicit TLS: a connection counted from its accept, handed over after its handshake."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from tuimail.sandbox.host import SandboxHost
from tuimail.sandbox.protocol import SandboxSMTP
from tuimail.sandbox.tap import MAX_HELD


class ImplicitTLSAdmission(asyncio.Protocol):
    """An implicit-TLS connection from its accept to the end of its TLS handshake.

    With ``create_server(ssl=...)`` the SMTP protocol sees a connection only
    once its handshake is done, so a client that connects and never says a
    word of TLS holds a descriptor that no cap counts: enough of them exhaust
    the open-file limit and nobody else is served. Here the connection is
    counted at its accept (closed at once beyond the cap: no 421 can be said
    before TLS), its handshake runs under the idle timeout, and only then is it
    handed to a :class:`SandboxSMTP`.
    """

    def __init__(self, sandbox: SandboxHost, factory: Callable[[], SandboxSMTP]) -> None:
        self.sandbox = sandbox
        self.factory = factory
        self._early = bytearray()
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self.sandbox.admit():
            transport.abort()
            return
        # Nothing is read until start_tls() takes the socket over.
        transport.pause_reading()
        self._task = asyncio.get_running_loop().create_task(self._handshake(transport))
        self.sandbox.track_handshake(self._task)

    async def _handshake(self, transport: asyncio.Transport) -> None:
        context = self.sandbox.tls_context
        assert context is not None
        loop = asyncio.get_running_loop()
        try:
            secured = await loop.start_tls(
                transport,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=self.sandbox.config.idle_timeout,
            )
        except asyncio.CancelledError:
            # The sandbox is stopping: the connection goes, its place is given
            # back, and the task ends cancelled, as whoever cancelled it expects.
            self._give_up(transport)
            raise
        except (OSError, ssl.SSLError, TimeoutError, RuntimeError):
            self._give_up(transport)
            return
        if secured is None:  # the client went away as the handshake ended
            self._give_up(transport)
            return
        smtp = self.factory()
        smtp.admitted = True
        secured.set_protocol(smtp)
        smtp.connection_made(secured)
        if self._early:
            smtp.data_received(bytes(self._early))
            self._early.clear()

    def _give_up(self, transport: asyncio.Transport) -> None:
        """Close a connection whose handshake did not complete, and free its place."""
        transport.abort()
        self.sandbox.release()

    def data_received(self, data: bytes) -> None:
        # Bytes the client sent straight after the handshake, before the hand-over.
        self._early.extend(data[: MAX_HELD - len(self._early)])
