"""The two ways to sign in: the browser with a loopback redirect, and the device grant.

Browser (RFC 6749 4.1 with PKCE S256, RFC 7636, for native apps per RFC 8252):
:class:`BrowserSignIn` opens the loopback listener, builds the authorization
URL (the face opens it in a browser or prints it), waits for the redirect
and redeems the code with the PKCE verifier. Device (RFC 8628):
:func:`start_device_sign_in` gets the user code and verification URL (the
face shows them) and :func:`finish_device_sign_in` polls at the interval the
provider asks, slower on ``slow_down``, until the user approved, refused, or
the code expired. Both block: run them in a worker thread.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tuimail.credentials import Secret
from tuimail.oauth.errors import (
    BadAnswer,
    OAuthError,
    ProviderRefused,
    SignInCancelled,
    SignInDenied,
    SignInTimedOut,
)
from tuimail.oauth.loopback import LoopbackListener
from tuimail.oauth.providers import ClientApp, Provider
from tuimail.oauth.tokens import Tokens, request_tokens
from tuimail.oauth.transport import DEFAULT_TIMEOUT, check_endpoint, post_form

#: Seconds the browser sign-in waits for the redirect by default.
BROWSER_TIMEOUT = 300.0
#: RFC 8628 section 3.5: the poll interval when the provider names none, and
#: what ``slow_down`` adds to it.
DEFAULT_INTERVAL = 5.0
SLOW_DOWN_STEP = 5.0
#: Never poll faster than this, whatever the provider says; nor wait longer than this.
MIN_INTERVAL = 1.0
MAX_INTERVAL = 60.0
#: Device codes are never waited for longer than this, whatever ``expires_in`` says.
MAX_DEVICE_WAIT = 30 * 60.0
#: The longest user code or verification URL accepted for showing.
_USER_CODE_LIMIT = 64
_URL_LIMIT = 2048

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def pkce_pair() -> tuple[Secret, str]:
    """A fresh PKCE code verifier and its S256 challenge (RFC 7636 section 4)."""
    verifier = Secret(secrets.token_urlsafe(64))  # 86 characters of [A-Za-z0-9_-]
    digest = hashlib.sha256(verifier.reveal().encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


def _with_query(url: str, params: dict[str, str]) -> str:
    joiner = "&" if urllib.parse.urlsplit(url).query else "?"
    return url + joiner + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


class BrowserSignIn:
    """A sign-in through the browser, waiting on a loopback listener.

    Use as a context manager (the listener closes on exit)::

        with BrowserSignIn(provider, client) as sign_in:
            open_or_print(sign_in.url)
            tokens = sign_in.finish()

    ``port`` 0 takes a random free port; a fixed one is for a port forwarded
    over SSH (the redirect then reaches the listener through the tunnel).
    """

    def __init__(
        self,
        provider: Provider,
        client: ClientApp,
        *,
        port: int = 0,
        login_hint: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.provider = provider
        self.client = client
        self._timeout = timeout
        self._state = secrets.token_urlsafe(32)
        self._verifier, challenge = pkce_pair()
        self._listener = LoopbackListener(self._state, port)
        params = {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": self._listener.redirect_uri,
            "scope": provider.scope,
            "state": self._state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **provider.authorize_params,
        }
        if login_hint:
            params["login_hint"] = login_hint
        #: The address to open in a browser (or print, for the user to open).
        self.url = _with_query(provider.authorize_url, params)

    def __repr__(self) -> str:
        return f"BrowserSignIn(provider={self.provider.name!r}, port={self.port})"

    @property
    def port(self) -> int:
        return self._listener.port

    @property
    def redirect_uri(self) -> str:
        return self._listener.redirect_uri

    def finish(
        self, wait: float = BROWSER_TIMEOUT, cancel: threading.Event | None = None
    ) -> Tokens:
        """Wait up to ``wait`` seconds for the browser, then redeem the code for tokens."""
        code = self._listener.wait_for_code(wait, cancel)
        self._listener.close()
        return request_tokens(
            self.provider,
            self.client,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self._listener.redirect_uri,
                "code_verifier": self._verifier,
            },
            timeout=self._timeout,
        )

    def close(self) -> None:
        self._listener.close()

    def __enter__(self) -> BrowserSignIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class DeviceCode:
    """What the user needs to approve a device sign-in, and what the polling needs.

    ``verification_uri`` and ``user_code`` are for showing (checked printable
    and bounded, still text from outside: escape as any other); the
    ``device_code`` is a secret and never shown.
    """

    verification_uri: str
    user_code: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float
    device_code: Secret


def _shown_text(answer: dict[str, Any], name: str, url: str, limit: int) -> str | None:
    value = answer.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
        raise BadAnswer(url, f"{name} is not something tuimail can show")
    return value


def _shown_url(answer: dict[str, Any], name: str, url: str) -> str | None:
    value = _shown_text(answer, name, url, _URL_LIMIT)
    if value is not None:
        check_endpoint(value)
    return value


def _seconds(value: Any, default: float, url: str, name: str) -> float:
    if value is None:
        return default
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise BadAnswer(url, f"{name} is not a number") from None
    if not 0 < seconds < 24 * 3600:
        raise BadAnswer(url, f"{name} is out of range")
    return seconds


def start_device_sign_in(
    provider: Provider, client: ClientApp, *, timeout: float = DEFAULT_TIMEOUT
) -> DeviceCode:
    """Ask for a device code (RFC 8628 section 3.1): the user code and where to enter it."""
    if provider.device_url is None:
        raise OAuthError(
            f"{provider.name} does not offer a device sign-in for mail: "
            "sign in through the browser (over SSH, with a forwarded port: docs/oauth.md)"
        )
    url = provider.device_url
    fields = {**client.token_fields(), "scope": provider.scope}
    answer = post_form(url, fields, timeout=timeout)
    device_code = answer.get("device_code")
    if not isinstance(device_code, Secret) or not device_code or len(device_code.reveal()) > 4096:
        raise BadAnswer(url, "no usable device_code in the answer")
    # Google says verification_url, RFC 8628 and Microsoft verification_uri.
    verification = _shown_url(answer, "verification_uri", url) or _shown_url(
        answer, "verification_url", url
    )
    user_code = _shown_text(answer, "user_code", url, _USER_CODE_LIMIT)
    if verification is None or user_code is None:
        raise BadAnswer(url, "no verification_uri or user_code in the answer")
    interval = _seconds(answer.get("interval"), DEFAULT_INTERVAL, url, "interval")
    return DeviceCode(
        verification_uri=verification,
        user_code=user_code,
        verification_uri_complete=_shown_url(answer, "verification_uri_complete", url),
        expires_in=min(
            _seconds(answer.get("expires_in"), 600.0, url, "expires_in"), MAX_DEVICE_WAIT
        ),
        interval=min(max(interval, MIN_INTERVAL), MAX_INTERVAL),
        device_code=device_code,
    )


def finish_device_sign_in(
    provider: Provider,
    client: ClientApp,
    code: DeviceCode,
    *,
    cancel: threading.Event | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
    wait: Callable[[float], bool] | None = None,
) -> Tokens:
    """Poll the token endpoint until the user approved the code (RFC 8628 section 3.4-3.5).

    Waits ``interval`` seconds before each poll, five more after each
    ``slow_down``; ``access_denied`` raises :class:`SignInDenied`; the code's
    ``expires_in`` (or ``expired_token``) :class:`SignInTimedOut`; setting
    ``cancel`` stops the wait with :class:`SignInCancelled`. ``wait`` (for
    tests, with ``clock``) waits the given seconds and says whether to stop;
    by default ``cancel.wait``.
    """
    pause = wait if wait is not None else (cancel or threading.Event()).wait
    deadline = clock() + code.expires_in
    interval = code.interval
    fields: dict[str, str | Secret] = {"grant_type": DEVICE_GRANT, "device_code": code.device_code}
    while True:
        if pause(interval):
            raise SignInCancelled()
        if clock() >= deadline:
            raise SignInTimedOut(code.expires_in, "with the device code")
        try:
            return request_tokens(provider, client, fields, timeout=timeout, clock=clock)
        except ProviderRefused as refused:
            if refused.error == "authorization_pending":
                continue
            if refused.error == "slow_down":
                interval = min(interval + SLOW_DOWN_STEP, MAX_INTERVAL)
                continue
            if refused.error in ("access_denied", "authorization_declined"):
                raise SignInDenied(refused.error, refused.description) from None
            if refused.error == "expired_token":
                raise SignInTimedOut(code.expires_in, "with the device code") from None
            raise


def sign_in_with_device(
    provider: Provider,
    client: ClientApp,
    show: Callable[[DeviceCode], None],
    *,
    cancel: threading.Event | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Tokens:
    """The whole device sign-in: get a code, ``show`` it to the user, poll until approved."""
    code = start_device_sign_in(provider, client, timeout=timeout)
    show(code)
    return finish_device_sign_in(provider, client, code, cancel=cancel, timeout=timeout)
