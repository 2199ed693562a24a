"""An SMTP server that takes OAuth 2.0 bearer tokens, checked by a real authorization server.

:class:`OAuthSink` is an aiosmtpd handler (tests/smtpservers.py's ``Sink``)
with ``auth_XOAUTH2`` and ``auth_OAUTHBEARER`` of its own, independent of
tuimail's sandbox: it parses each initial response, asks the test provider
(tests/oauth_support.py, oidc-provider) about the token by RFC 7662
introspection, and accepts it only when the provider says it is active, was
issued to the user named in the response and carries the scope wanted. A
refused token gets the standard error challenge, a ``334`` with a base64 JSON
object (``status``, ``scope``, ``schemes``), and after the client's answer a
``535``, as Gmail (XOAUTH2) and RFC 7628 (OAUTHBEARER) describe.

:class:`RawSMTP` keeps every byte the client sent, so a test can check each
exchange exactly; :func:`sign_in` gets a real token from the provider.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult

from tests.oauth_support import BrowserUser, OAuthProviderServer
from tests.smtpservers import Sink
from tuimail.credentials import Secret
from tuimail.oauth.flows import BrowserSignIn
from tuimail.oauth.tokens import Tokens

#: Seconds any wait here may take before it counts as a hang.
WAIT = 30.0


class RawSMTP(SMTP):
    """aiosmtpd's server, keeping every byte the client sent on ``handler.raw``."""

    def data_received(self, data: bytes) -> None:
        raw = getattr(self.event_handler, "raw", None)
        if isinstance(raw, bytearray):
            raw.extend(data)
        super().data_received(data)


@dataclass
class BearerLogin:
    """One AUTH with a token, as the server saw it."""

    mechanism: str
    #: The decoded initial response, exactly.
    response: bytes
    user: str
    token: str
    accepted: bool
    #: The challenge's ``status`` when the token was refused.
    status: str = ""
    #: The client's answer to the challenge, base64-decoded (None: no challenge,
    #: or the client cancelled with ``*``).
    answer: bytes | None = None


@dataclass
class OAuthSink(Sink):
    """A sink that takes XOAUTH2 and OAUTHBEARER, asking ``provider`` about each token.

    ``scope``: the scope a token must carry (default: the provider's mail
    scope). ``refuse_all``: answer every token as expired (a server that
    refuses every token, for the no-loop test).
    """

    provider: OAuthProviderServer | None = None
    scope: str = ""
    refuse_all: bool = False
    logins: list[BearerLogin] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        response = await self._initial(server, args)
        if response is None:
            return AuthResult(success=False, handled=True)
        parts = response.split(b"\x01")
        if len(parts) != 4 or parts[2:] != [b"", b""] or not parts[0].startswith(b"user="):
            return await self._malformed(server)
        user = parts[0].removeprefix(b"user=").decode()
        token = parts[1].removeprefix(b"auth=Bearer ").decode()
        return await self._check(server, "XOAUTH2", response, user, token)

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        response = await self._initial(server, args)
        if response is None:
            return AuthResult(success=False, handled=True)
        header, sep, rest = response.partition(b"\x01")
        gs2 = header.split(b",")
        if not sep or len(gs2) != 3 or gs2[0] != b"n" or not gs2[1].startswith(b"a="):
            return await self._malformed(server)
        pairs = rest.split(b"\x01")
        if pairs[-2:] != [b"", b""]:
            return await self._malformed(server)
        values = dict(p.decode().partition("=")[::2] for p in pairs[:-2])
        user = gs2[1][2:].decode().replace("=2C", ",").replace("=3D", "=")
        token = values.get("auth", "").removeprefix("Bearer ")
        return await self._check(server, "OAUTHBEARER", response, user, token)

    async def _initial(self, server: SMTP, args: list[str]) -> bytes | None:
        if len(args) > 1:
            return base64.b64decode(args[1], validate=True)
        said = await server.challenge_auth("")
        return said if isinstance(said, bytes) else None

    async def _malformed(self, server: SMTP) -> AuthResult:
        await server.push("501 5.5.2 Malformed initial response")
        return AuthResult(success=False, handled=True)

    async def _check(
        self, server: SMTP, mechanism: str, response: bytes, user: str, token: str
    ) -> AuthResult:
        assert self.provider is not None
        said = await asyncio.to_thread(self.provider.introspect, Secret(token))
        wanted = self.scope or self.provider.scope
        status = ""
        if self.refuse_all or said.get("active") is not True:
            status = "401" if mechanism == "XOAUTH2" else "invalid_token"
        elif said.get("sub") != user:
            status = "400" if mechanism == "XOAUTH2" else "invalid_request"
        elif wanted not in str(said.get("scope", "")).split():
            status = "403" if mechanism == "XOAUTH2" else "insufficient_scope"
        login = BearerLogin(mechanism, response, user, token, accepted=not status, status=status)
        self.logins.append(login)
        if not status:
            return AuthResult(success=True, auth_data=user)
        challenge = {"status": status, "schemes": "bearer", "scope": wanted}
        answer = await server.challenge_auth(json.dumps(challenge).encode())
        login.answer = answer if isinstance(answer, bytes) else None
        if answer is MISSING:
            return AuthResult(success=False, handled=True)
        return AuthResult(
            success=False, handled=False, message="535 5.7.8 Username and Password not accepted"
        )


def offered_auth(*mechanisms: str) -> dict[str, Any]:
    """aiosmtpd settings offering only ``mechanisms``, without TLS (loopback tests)."""
    every = {"LOGIN", "PLAIN", "XOAUTH2", "OAUTHBEARER"}
    return {
        "auth_require_tls": False,
        "auth_exclude_mechanism": [m for m in every if m not in mechanisms],
    }


def sign_in(server: OAuthProviderServer) -> Tokens:
    """Tokens for the provider's test user, through the browser sign-in with PKCE."""
    user = BrowserUser(server)
    with (
        ThreadPoolExecutor(max_workers=1) as pool,
        BrowserSignIn(server.provider(), server.app()) as signing_in,
    ):
        waiting = pool.submit(signing_in.finish, WAIT)
        status, _page = user.visit(user.sign_in(signing_in.url))
        assert status == 200
        return waiting.result(WAIT)


def wait_until_expired(server: OAuthProviderServer, token: Secret) -> None:
    """Wait until the provider itself says ``token`` is no longer active (its clock, not ours)."""
    give_up = time.monotonic() + WAIT
    while server.introspect(token).get("active") is True:
        assert time.monotonic() < give_up, "the provider never expired the token"
        time.sleep(0.25)
