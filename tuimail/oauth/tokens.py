"""Tokens in memory, and keeping an account's access token fresh from its refresh token.

Only the refresh token is ever stored (by the caller, in the keyring); the
access token lives in a :class:`TokenKeeper` with the moment it expires, on
the monotonic clock, and is refreshed ``REFRESH_MARGIN`` seconds before that
so a message is never sent with a token that expires on the way. Tokens are
:class:`~tuimail.credentials.Secret` from the moment they are read: no repr,
str, log or traceback shows them; ``reveal()`` is for the wire alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tuimail.credentials import Secret
from tuimail.oauth.errors import BadAnswer, ProviderRefused, SignInAgain
from tuimail.oauth.providers import ClientApp, Provider
from tuimail.oauth.transport import DEFAULT_TIMEOUT, post_form

#: Refresh this many seconds before the access token expires.
REFRESH_MARGIN = 120.0
#: The lifetime assumed when a token answer has no ``expires_in`` (RFC 6749 5.1: optional).
DEFAULT_LIFETIME = 3600.0
#: Token answers longer than this are refused (Microsoft's JWTs are a few KiB).
TOKEN_LIMIT = 16 * 1024


@dataclass(frozen=True)
class Tokens:
    """What a token endpoint gave: an access token, when it expires, maybe a refresh token.

    ``expires_at`` is on the monotonic clock of the process (``time.monotonic``
    unless a clock was passed in), measured from when the request was sent.
    """

    access_token: Secret
    expires_at: float
    refresh_token: Secret | None = None
    scope: str | None = None


def _lifetime(value: Any, url: str) -> float:
    if value is None:
        return DEFAULT_LIFETIME
    try:
        seconds = float(value)  # Some providers send a string.
    except (TypeError, ValueError):
        raise BadAnswer(url, "expires_in is not a number") from None
    if not 0 < seconds < 10 * 365 * 24 * 3600:
        raise BadAnswer(url, "expires_in is out of range")
    return seconds


def _token_value(answer: Mapping[str, Any], name: str, url: str) -> Secret | None:
    """A token field of the answer (a Secret: transport.post_form wraps them)."""
    value = answer.get(name)
    if value is None:
        return None
    if not isinstance(value, Secret) or not value or len(value.reveal()) > TOKEN_LIMIT:
        raise BadAnswer(url, f"{name} is not a usable token")
    if not value.reveal().isascii() or not value.reveal().isprintable():
        raise BadAnswer(url, f"{name} holds characters a token cannot have")
    return value


def tokens_from_answer(answer: Mapping[str, Any], url: str, *, sent_at: float) -> Tokens:
    """Read a successful token answer (RFC 6749 section 5.1)."""
    access = _token_value(answer, "access_token", url)
    if access is None:
        raise BadAnswer(url, "no access_token in the answer")
    token_type = answer.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise BadAnswer(url, "the token is not a Bearer token")
    scope = answer.get("scope")
    return Tokens(
        access_token=access,
        expires_at=sent_at + _lifetime(answer.get("expires_in"), url),
        refresh_token=_token_value(answer, "refresh_token", url),
        scope=scope if isinstance(scope, str) else None,
    )


def request_tokens(
    provider: Provider,
    client: ClientApp,
    fields: Mapping[str, str | Secret],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
) -> Tokens:
    """One token request (any grant) with the client's credentials added."""
    sent_at = clock()
    answer = post_form(provider.token_url, {**client.token_fields(), **fields}, timeout=timeout)
    return tokens_from_answer(answer, provider.token_url, sent_at=sent_at)


class TokenKeeper:
    """One account's access token, kept fresh from its refresh token.

    ``account`` is the profile name, for the "sign in again" message.
    ``on_new_refresh_token`` is called with the new refresh token when the
    provider rotates it (Microsoft does, and oidc-provider for public
    clients): the caller stores it in place of the old one, which stops
    working. Safe to share between threads; one refresh at a time.
    """

    def __init__(
        self,
        account: str,
        provider: Provider,
        client: ClientApp,
        refresh_token: Secret,
        *,
        tokens: Tokens | None = None,
        on_new_refresh_token: Callable[[Secret], None] | None = None,
        margin: float = REFRESH_MARGIN,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account = account
        self.provider = provider
        self.client = client
        self._refresh_token = refresh_token
        self._tokens = tokens
        self._on_new_refresh_token = on_new_refresh_token
        self._margin = margin
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"TokenKeeper(account={self.account!r}, provider={self.provider.name!r}, "
            f"refresh_token={self._refresh_token!r})"
        )

    @property
    def refresh_token(self) -> Secret:
        """The refresh token to store (the newest, if the provider rotated it)."""
        return self._refresh_token

    def access_token(self) -> Secret:
        """A current access token: the one in memory, or a fresh one near its expiry.

        Blocks while refreshing (run it in a worker thread). Raises
        :class:`SignInAgain` when the provider no longer accepts the refresh
        token, other :class:`OAuthError` subclasses when it cannot be asked.
        """
        with self._lock:
            tokens = self._tokens
            if tokens is None or self._clock() >= tokens.expires_at - self._margin:
                tokens = self._refresh_locked()
            return tokens.access_token

    def refresh(self) -> Tokens:
        """Ask for a new access token now (after a server said the token had expired)."""
        with self._lock:
            return self._refresh_locked()

    def forget_access_token(self) -> None:
        """Drop the access token in memory, so the next :meth:`access_token` refreshes."""
        with self._lock:
            self._tokens = None

    def _refresh_locked(self) -> Tokens:
        fields: dict[str, str | Secret] = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token,
        }
        if self.provider.scope_on_refresh:
            fields["scope"] = self.provider.scope
        try:
            tokens = request_tokens(
                self.provider, self.client, fields, timeout=self._timeout, clock=self._clock
            )
        except ProviderRefused as refused:
            if refused.error == "invalid_grant":
                self._tokens = None
                raise SignInAgain(self.account, refused) from None
            raise
        self._tokens = tokens
        if tokens.refresh_token and tokens.refresh_token != self._refresh_token:
            self._refresh_token = tokens.refresh_token
            if self._on_new_refresh_token is not None:
                self._on_new_refresh_token(tokens.refresh_token)
        return tokens
