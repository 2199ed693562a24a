"""One form POST to a provider endpoint, bounded in time and size.

Every OAuth request tuimail makes (token, device authorization, revocation)
is a form POST answered with JSON, so this is the only HTTP code: urllib,
blocking (run it in a worker thread), one deadline for the whole request
(connect, send, headers and body: a server trickling a byte at a time cannot
hold a call past it), at most
``ANSWER_LIMIT`` bytes read from any answer, redirects not followed (a token
endpoint that redirects is misconfigured, and following would resend the
form elsewhere), and secrets sent only over https or to loopback.
"""

from __future__ import annotations

import base64
import functools
import http.client
import io
import ipaddress
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import IO, Any

from tuimail.credentials import Secret
from tuimail.oauth.errors import (
    BadAnswer,
    EndpointRefused,
    ProviderRefused,
    ProviderUnreachable,
    quote_outside,
)
from tuimail.transcript import REDACTED, secret_forms

#: The most bytes read from any answer: token answers are a few kilobytes.
ANSWER_LIMIT = 64 * 1024
#: Seconds a whole request may take, connect to last byte.
DEFAULT_TIMEOUT = 30.0
#: Answer fields that are secrets: read into a :class:`Secret` straight away, so
#: no repr, log or traceback with local variables (rich, Textual) shows them.
SECRET_FIELDS = frozenset({"access_token", "refresh_token", "id_token", "device_code"})
#: Request fields that are secrets even when passed as plain text: a provider
#: that echoes the request in its error text must not put them in a message.
SECRET_REQUEST_FIELDS = frozenset(
    {"refresh_token", "client_secret", "code", "code_verifier", "device_code", "password"}
)


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (127.0.0.0/8, ::1 or localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str) -> str:
    """``url`` if secrets may be sent there: https anywhere, plain http only to loopback."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and is_loopback_host(parts.hostname):
        return url
    raise EndpointRefused(url, "an OAuth endpoint must be an https:// address")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Hand a 3xx back as an error instead of following it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _DeadlineReader(io.RawIOBase):
    """A socket's reads, each given only the time left before ``deadline``.

    A socket timeout bounds one read; a server sending a byte just inside it,
    again and again, would hold the request for ever. Here each read gets the
    remaining time, so the whole answer has to arrive before the deadline.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        # The socket's own file object keeps the descriptor open after
        # http.client closes the connection, as a plain makefile() would.
        self._raw = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def close(self) -> None:
        self._raw.close()
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        self._sock.settimeout(remaining)
        # A socket's file object in blocking use always returns a count.
        return self._raw.readinto(buffer) or 0


class _SocketWithDeadline:
    """What :class:`http.client.HTTPResponse` reads from: the socket, behind a deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(_SocketWithDeadline(sock, deadline), *args, **kwargs)  # type: ignore[arg-type]


def _with_deadline(
    base: type[http.client.HTTPConnection], deadline: float
) -> type[http.client.HTTPConnection]:
    """``base`` whose connect and answer both end at ``deadline`` (a monotonic time)."""

    class Connection(base):  # type: ignore[valid-type,misc]
        response_class = functools.partial(_DeadlineResponse, deadline=deadline)

        def connect(self) -> None:
            self.timeout = max(deadline - time.monotonic(), 0.001)
            super().connect()

    return Connection


class _DeadlineHTTP(urllib.request.HTTPHandler):
    def __init__(self, deadline: float) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_with_deadline(http.client.HTTPConnection, self._deadline), req)


class _DeadlineHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, deadline: float) -> None:
        super().__init__()
        self._deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_with_deadline(http.client.HTTPSConnection, self._deadline), req)


def _opener(deadline: float) -> urllib.request.OpenerDirector:
    """An opener for one request: no redirects, everything over by ``deadline``."""
    return urllib.request.build_opener(
        _NoRedirects(), _DeadlineHTTP(deadline), _DeadlineHTTPS(deadline)
    )


def _read_capped(stream: IO[bytes], url: str) -> bytes:
    data = stream.read(ANSWER_LIMIT + 1)
    if len(data) > ANSWER_LIMIT:
        raise BadAnswer(url, f"the answer is larger than {ANSWER_LIMIT // 1024} KiB")
    return data


def _parse_json(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(value, dict):
        return None
    return {
        key: Secret(item) if key in SECRET_FIELDS and isinstance(item, str) else item
        for key, item in value.items()
    }


def _plain(value: str | Secret) -> str:
    return value.reveal() if isinstance(value, Secret) else value


def _request_secrets(
    fields: Mapping[str, str | Secret], basic_auth: tuple[str, str | Secret] | None
) -> list[str]:
    """Every form in which a secret this request carried could come back.

    Raw, URL-encoded (as in the form body or Basic credentials) and base64 at
    any alignment (:func:`tuimail.transcript.secret_forms`), longest first.
    """
    secrets = [
        _plain(value)
        for key, value in fields.items()
        if isinstance(value, Secret) or key in SECRET_REQUEST_FIELDS
    ]
    if basic_auth is not None:
        secrets.append(_plain(basic_auth[1]))
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        for encoded in (
            secret,
            urllib.parse.quote(secret, safe=""),
            urllib.parse.quote_plus(secret),
        ):
            forms.update(secret_forms(encoded))
    return sorted((form for form in forms if form), key=len, reverse=True)


def _redacted(text: str, forms: list[str]) -> str:
    """``text`` from the provider with every form of a request secret masked."""
    for form in forms:
        text = text.replace(form, REDACTED)
    return text


def _snippet(data: bytes, forms: list[str]) -> str:
    text = _redacted(data.decode("utf-8", "replace").strip(), forms)
    return quote_outside(text, 200) or "(empty)"


def post_form(
    url: str,
    fields: Mapping[str, str | Secret],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    basic_auth: tuple[str, str | Secret] | None = None,
) -> dict[str, Any]:
    """POST ``fields`` as a form to ``url`` and return the JSON object it answers.

    An OAuth error answer (a JSON object with ``error``, usually status 400 or
    401) raises :class:`ProviderRefused`; anything else that is not a JSON
    object with status 200 raises :class:`BadAnswer`; no answer raises
    :class:`ProviderUnreachable`. ``basic_auth`` is a client id and secret
    sent as HTTP Basic (RFC 6749 section 2.3.1), never in the URL. Secrets
    are revealed only inside the request (no local variable holds them), and
    the answer's token fields come back as :class:`Secret`.
    """
    check_endpoint(url)
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode({k: _plain(v) for k, v in fields.items()}).encode("ascii"),
        method="POST",
    )
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    request.add_header("Accept", "application/json")
    request.add_header("User-Agent", "tuimail")
    if basic_auth is not None:
        request.add_header(
            "Authorization",
            "Basic "
            + base64.b64encode(
                ":".join(urllib.parse.quote(_plain(part), safe="") for part in basic_auth).encode()
            ).decode(),
        )
    try:
        with _opener(deadline).open(request, timeout=timeout) as response:
            status = response.status
            data = _read_capped(response, url)
    except urllib.error.HTTPError as error:
        try:
            status = error.code
            data = _read_capped(error, url) if error.fp is not None else b""
        finally:
            error.close()
    except (OSError, http.client.HTTPException) as error:  # URLError and timeouts too
        reason = getattr(error, "reason", None) or error
        if isinstance(reason, TimeoutError) or time.monotonic() >= deadline:
            raise ProviderUnreachable(
                url, f"no complete answer within {timeout:g} seconds (timed out)"
            ) from None
        raise ProviderUnreachable(url, str(reason) or type(error).__name__) from None
    answer = _parse_json(data)
    if answer is not None and isinstance(answer.get("error"), str):
        # A provider may echo the request (with its secrets) in its error text.
        forms = _request_secrets(fields, basic_auth)
        description = answer.get("error_description")
        raise ProviderRefused(
            url,
            status,
            _redacted(answer["error"], forms),
            _redacted(description, forms) if isinstance(description, str) else "",
        )
    if status != 200:
        raise BadAnswer(
            url, f"HTTP status {status}: {_snippet(data, _request_secrets(fields, basic_auth))}"
        )
    if answer is None:
        raise BadAnswer(
            url, f"not a JSON object: {_snippet(data, _request_secrets(fields, basic_auth))}"
        )
    return answer
