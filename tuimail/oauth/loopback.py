"""The one-shot listener on 127.0.0.1 that the browser comes back to (RFC 8252 section 7.3).

It listens on a random port (or one given, for a port forwarded over SSH),
waits a bounded time for the provider's redirect, checks its ``state``
against the one sent, answers the browser with a short page and stops. Other
requests (a favicon, a stray tab) get a 404 and the wait goes on. Nothing is
logged: the request line carries the authorization code.
"""

from __future__ import annotations

import hmac
import http.server
import io
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass

from tuimail.credentials import Secret
from tuimail.oauth.errors import (
    OAuthError,
    SignInCancelled,
    SignInDenied,
    SignInTimedOut,
    StateMismatch,
)

#: Seconds a browser connection may take to send its whole request.
REQUEST_TIMEOUT = 10.0
#: How often the wait looks at its deadline and the cancel flag.
_SLICE = 0.25

_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>tuimail</title></head>
<body style="font-family: sans-serif; margin: 3em"><h1>{title}</h1><p>{text}</p></body></html>
"""
_SIGNED_IN = _PAGE.format(
    title="Signed in", text="tuimail has the sign-in. You can close this tab."
)
_REFUSED_STATE = _PAGE.format(
    title="Sign-in refused",
    text="This answer does not belong to the sign-in tuimail started (an old tab, or a "
    "forged link). Nothing was saved: start the sign-in again from tuimail.",
)
_DENIED = _PAGE.format(
    title="Sign-in not allowed", text="The provider did not allow the sign-in. Back to tuimail."
)
_NOT_HERE = _PAGE.format(title="Not found", text="tuimail is waiting for a sign-in here.")


@dataclass
class _Outcome:
    code: Secret | None = None
    error: OAuthError | None = None


class _Server(http.server.HTTPServer):
    """One listener; the handler fills ``outcome`` once the redirect arrived."""

    expected_state: str
    outcome: _Outcome | None = None
    #: The wait's own deadline (monotonic) and cancel flag, looked at while a
    #: connection is being read, so a slow client cannot hold the wait.
    deadline: float = 0.0
    cancel: threading.Event | None = None

    def handle_error(self, request: object, client_address: object) -> None:
        """A broken browser connection is not worth a traceback on stderr."""


class _BoundedReader(io.RawIOBase):
    """A connection's reads, in short slices, given up at a deadline or on cancel.

    A per-read timeout does not bound a client sending a byte just inside it;
    here the whole request must arrive within :data:`REQUEST_TIMEOUT` (and
    before the wait's own deadline), and cancelling the wait ends it too.
    """

    def __init__(self, connection: socket.socket, server: _Server) -> None:
        super().__init__()
        self._connection = connection
        self._server = server
        self._deadline = min(time.monotonic() + REQUEST_TIMEOUT, server.deadline)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: object) -> int:
        while True:
            cancel = self._server.cancel
            if cancel is not None and cancel.is_set():
                raise TimeoutError("sign-in cancelled")
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the request took too long")
            self._connection.settimeout(min(remaining, _SLICE))
            try:
                return self._connection.recv_into(buffer)  # type: ignore[arg-type]
            except TimeoutError:
                continue


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    timeout = _SLICE

    def setup(self) -> None:
        super().setup()
        self.rfile = io.BufferedReader(_BoundedReader(self.connection, self.server))

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the request line holds the authorization code."""

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        if parts.path != "/" or self.server.outcome is not None:
            self._answer(404, _NOT_HERE)
            return
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        state = query.get("state", [""])[0]
        if not hmac.compare_digest(state.encode(), self.server.expected_state.encode()):
            self.server.outcome = _Outcome(error=StateMismatch())
            self._answer(400, _REFUSED_STATE)
            return
        if "error" in query:
            description = query.get("error_description", [""])[0]
            self.server.outcome = _Outcome(error=SignInDenied(query["error"][0], description))
            self._answer(200, _DENIED)
            return
        code = query.get("code", [""])[0]
        if not code:
            self._answer(400, _NOT_HERE)
            return
        self.server.outcome = _Outcome(code=Secret(code))
        self._answer(200, _SIGNED_IN)

    def _answer(self, status: int, page: str) -> None:
        body = page.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


class LoopbackListener:
    """Listens on 127.0.0.1 until the browser brings the authorization code back.

    Open it before building the authorization URL (the URL names its port);
    close it afterwards, or use it as a context manager.
    """

    def __init__(self, state: str, port: int = 0) -> None:
        self._server = _Server(("127.0.0.1", port), _Handler, bind_and_activate=True)
        self._server.expected_state = state
        self._server.timeout = _SLICE

    def __repr__(self) -> str:
        return f"LoopbackListener(port={self.port})"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def wait_for_code(self, timeout: float, cancel: threading.Event | None = None) -> Secret:
        """The authorization code, once the browser came back with the right state.

        Raises :class:`StateMismatch` for a wrong ``state``, :class:`SignInDenied`
        for an ``error`` redirect, :class:`SignInTimedOut` after ``timeout``
        seconds, :class:`SignInCancelled` once ``cancel`` is set.
        """
        deadline = time.monotonic() + timeout
        self._server.deadline = deadline
        self._server.cancel = cancel
        while self._server.outcome is None:
            if cancel is not None and cancel.is_set():
                raise SignInCancelled()
            if time.monotonic() >= deadline:
                raise SignInTimedOut(timeout, "in the browser")
            self._server.handle_request()
        outcome = self._server.outcome
        if outcome.error is not None:
            raise outcome.error
        assert outcome.code is not None
        return outcome.code

    def close(self) -> None:
        self._server.server_close()

    def __enter__(self) -> LoopbackListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
