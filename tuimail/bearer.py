"""OAuth 2.0 bearer tokens in SMTP AUTH: XOAUTH2 and OAUTHBEARER, and a server's refusal.

Both mechanisms carry an access token instead of a password, in one initial
response:

* XOAUTH2 (Google's, also Microsoft's): ``user=U^Aauth=Bearer T^A^A``;
* OAUTHBEARER (RFC 7628): a GS2 header naming the user, then key/value pairs,
  ``n,a=U,^Ahost=H^Aport=P^Aauth=Bearer T^A^A``.

A server that refuses the token first sends a ``334`` challenge holding a
base64 JSON object (``status``, ``scope``, ``schemes``) and waits for an
answer before its final ``535``: OAUTHBEARER's is a single ``%x01`` byte
(RFC 7628 section 3.2.3), XOAUTH2's an empty line. :class:`BearerChallenge`
reads that object, so a refusal can say *why* (the token expired, a scope is
missing, the user is not the token's), and so a token that had only expired
is renewed once (tuimail/smtp_stepper.py) instead of failing the send.

A :class:`BearerToken` is a :class:`~tuimail.credentials.Secret` that knows it
is a token and, optionally, how to get a fresh one: from the token command
again, or from a :class:`~tuimail.oauth.tokens.TokenKeeper`. Everything that
passes a password along (the outbox, the session) passes it unchanged.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiosmtplib.errors import SMTPAuthenticationError

from tuimail.credentials import Secret
from tuimail.errors import TuimailError
from tuimail.terminal_text import escape_controls

if TYPE_CHECKING:
    from tuimail.oauth.tokens import TokenKeeper

#: The most characters of a challenge's fields that a message quotes.
_FIELD_LIMIT = 200
#: A challenge longer than this (base64) is not read: it is no JSON error object.
_CHALLENGE_LIMIT = 8192

#: OAUTHBEARER's answer to an error challenge: the byte %x01, base64 as SASL wants it.
OAUTHBEARER_ABORT = base64.b64encode(b"\x01")
#: XOAUTH2's answer to an error challenge: an empty response.
XOAUTH2_ABORT = b""


class BearerToken(Secret):
    """An access token: a secret that is sent as a bearer token, never as a password.

    ``renew`` gets a fresh token (blocking: run it in a worker thread); it is
    called at most once per AUTH, after the server said this one had expired.
    """

    __slots__ = ("renew",)

    def __init__(self, value: str, renew: Callable[[], Secret] | None = None) -> None:
        super().__init__(value)
        self.renew = renew


def keeper_token(keeper: TokenKeeper) -> BearerToken:
    """The keeper's current access token (refreshed if near expiry), renewable from it.

    Blocks: run it in a worker thread.
    """
    return BearerToken(keeper.access_token().reveal(), renew=lambda: keeper.refresh().access_token)


def _checked(username: str) -> str:
    """The user name, refused if it holds the byte that separates the fields (or any control)."""
    if not username.isprintable():
        raise ValueError("the user name holds control characters")
    return username


def xoauth2_response(username: str, token: Secret) -> bytes:
    """XOAUTH2's initial response, base64: ``user=U^Aauth=Bearer T^A^A``."""
    username = _checked(username)
    raw = f"user={username}\x01auth=Bearer {token.reveal()}\x01\x01"
    return base64.b64encode(raw.encode("utf-8"))


def _gs2_name(username: str) -> str:
    """A user name as RFC 5801's saslname: ``=`` and ``,`` written ``=3D`` and ``=2C``."""
    return username.replace("=", "=3D").replace(",", "=2C")


def oauthbearer_response(username: str, token: Secret, host: str, port: int) -> bytes:
    """OAUTHBEARER's initial response, base64 (RFC 7628 section 3.1)."""
    raw = (
        f"n,a={_gs2_name(_checked(username))},\x01host={host}\x01port={port}\x01"
        f"auth=Bearer {token.reveal()}\x01\x01"
    )
    return base64.b64encode(raw.encode("utf-8"))


class TokenProblem(enum.Enum):
    """What a server's error challenge says is wrong with the token."""

    #: ``401`` / ``invalid_token``: expired, revoked or not valid; a fresh one may do.
    EXPIRED = "expired"
    #: ``403`` / ``insufficient_scope``: the token lacks the permission to send mail.
    SCOPE = "scope"
    #: ``400`` / ``invalid_request``: the request itself, most often a user name
    #: that is not the account the token was issued to.
    REQUEST = "request"
    #: A status this module does not know.
    OTHER = "other"


_PROBLEMS = {
    "401": TokenProblem.EXPIRED,
    "invalid_token": TokenProblem.EXPIRED,
    "403": TokenProblem.SCOPE,
    "insufficient_scope": TokenProblem.SCOPE,
    "400": TokenProblem.REQUEST,
    "invalid_request": TokenProblem.REQUEST,
}


@dataclass(frozen=True)
class BearerChallenge:
    """A server's error challenge, as sent (fields escaped and cut) and what it means."""

    status: str
    scope: str = ""
    schemes: str = ""

    @property
    def problem(self) -> TokenProblem:
        return _PROBLEMS.get(self.status.strip().lower(), TokenProblem.OTHER)

    @property
    def expired(self) -> bool:
        """The token had expired (or was revoked): one fresh token is worth a try."""
        return self.problem is TokenProblem.EXPIRED


def _field(value: object) -> str:
    text = value if isinstance(value, str) else "" if value is None else str(value)
    return escape_controls(text)[:_FIELD_LIMIT]


def read_challenge(text: str) -> BearerChallenge | None:
    """The JSON error object in a ``334`` challenge's text, or None when it holds none."""
    data = text.strip().encode("ascii", "replace")
    if not data or len(data) > _CHALLENGE_LIMIT:
        return None
    try:
        document = json.loads(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(document, dict) or "status" not in document:
        return None
    return BearerChallenge(
        _field(document.get("status")),
        _field(document.get("scope")),
        _field(document.get("schemes")),
    )


class TokenRefused(SMTPAuthenticationError):
    """The server refused the bearer token: its final reply, and the challenge before it.

    ``challenge`` is None when the server answered without one (a bare
    ``535``). ``renewed`` is True when the token refused is the fresh one
    fetched after the first had expired.
    """

    def __init__(
        self, code: int, message: str, challenge: BearerChallenge | None, *, renewed: bool = False
    ) -> None:
        super().__init__(code, message)
        self.challenge = challenge
        self.renewed = renewed


class TokenRenewalFailed(TuimailError):
    """The server said the token had expired and a fresh one could not be had.

    ``cause`` says why (the provider wants a new sign-in, the token command
    failed...); ``temporary`` whether a later attempt may do better.
    """

    def __init__(self, cause: BaseException) -> None:
        from tuimail.oauth.errors import ProviderUnreachable

        super().__init__(
            f"the server says the access token has expired, and no fresh one could be had: {cause}"
        )
        self.cause = cause
        temporary = getattr(cause, "temporary", None)
        if not isinstance(temporary, bool):
            # The provider out of reach may answer later; a refusal needs the user.
            temporary = isinstance(cause, ProviderUnreachable)
        self.temporary = temporary


def refusal_words(refused: TokenRefused, username: str) -> str:
    """What a refused token means, in words: for the session's failure and the probe."""
    challenge = refused.challenge
    if challenge is None:
        what = f"the server refused the access token for {username}"
    elif challenge.problem is TokenProblem.EXPIRED:
        what = f"the server says the access token for {username} has expired or is not valid"
        if refused.renewed:
            what += "; a fresh token was refused as well"
    elif challenge.problem is TokenProblem.SCOPE:
        scope = f" (it asks for {challenge.scope})" if challenge.scope else ""
        what = (
            "the access token does not allow sending mail: it lacks the scope the server "
            f"wants{scope}; sign in again, allowing mail access"
        )
    elif challenge.problem is TokenProblem.REQUEST:
        what = (
            f"the server refused the token for {username}: the user name must be the "
            "account the token was issued to"
        )
    else:
        what = f"the server refused the access token for {username} (status {challenge.status})"
    return what
