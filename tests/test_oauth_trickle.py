"""The OAuth client and sign-in listener against peers that send a byte at a time.

A per-read timeout does not bound a peer that keeps sending just inside it:
these check the whole-request deadline of the token requests and that the
sign-in listener stops on cancel while a local client trickles its request.
They check only that an error came back, never how fast.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import Certs
from tuimail.credentials import Secret
from tuimail.oauth.errors import ProviderUnreachable, SignInCancelled
from tuimail.oauth.loopback import LoopbackListener
from tuimail.oauth.transport import post_form


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    """Set at the end of a test so every scripted peer stops sending."""
    event = threading.Event()
    yield event
    event.set()


def serve_raw(handler: Callable[[socket.socket], None], tls: ssl.SSLContext | None = None) -> str:
    """A loopback server handing each connection to ``handler``; its token URL."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)

    def run() -> None:
        with server:
            connection, _ = server.accept()
            if tls is not None:
                connection = tls.wrap_socket(connection, server_side=True)
            with connection:
                handler(connection)

    threading.Thread(target=run, daemon=True).start()
    scheme, host = ("https", "localhost") if tls is not None else ("http", "127.0.0.1")
    return f"{scheme}://{host}:{server.getsockname()[1]}/token"


def trickle(stop: threading.Event, head: bytes) -> Callable[[socket.socket], None]:
    """Read the request, send ``head``, then one byte every half second until stopped."""

    def handler(connection: socket.socket) -> None:
        connection.recv(65536)
        connection.sendall(head)
        while not stop.wait(0.5):
            try:
                connection.sendall(b" ")
            except OSError:
                return

    return handler


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", id="body"),
        pytest.param(b"HTTP/1.1 200 OK\r\nX-Slow: ", id="headers"),
    ],
)
def test_a_trickling_provider_cannot_hold_a_request_past_its_timeout(
    stop: threading.Event, head: bytes
) -> None:
    url = serve_raw(trickle(stop, head))
    with pytest.raises(ProviderUnreachable) as caught:
        post_form(url, {"grant_type": "refresh_token", "refresh_token": Secret("rt")}, timeout=1)
    assert "no complete answer within 1 seconds" in str(caught.value)


def test_the_deadline_holds_over_https_too(
    stop: threading.Event, certs: Certs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca_file))
    url = serve_raw(trickle(stop, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"), certs.good)
    with pytest.raises(ProviderUnreachable) as caught:
        post_form(url, {"grant_type": "refresh_token", "refresh_token": Secret("rt")}, timeout=2)
    assert "no complete answer within 2 seconds" in str(caught.value)


def test_a_trickling_local_client_does_not_hold_the_sign_in_past_cancel(
    stop: threading.Event,
) -> None:
    cancel = threading.Event()
    with LoopbackListener("state") as listener:

        def client() -> None:
            with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as sock:
                for byte in b"GET /?state=state&code=c HTTP/1.1\r\n":
                    if stop.wait(1):
                        return
                    try:
                        sock.sendall(bytes([byte]))
                    except OSError:
                        return

        threading.Thread(target=client, daemon=True).start()
        threading.Timer(1.5, cancel.set).start()
        started = time.monotonic()
        with pytest.raises(SignInCancelled):
            listener.wait_for_code(50, cancel)
    # Generous: the old listener stayed for the client's whole 36-byte trickle.
    assert time.monotonic() - started < 20
