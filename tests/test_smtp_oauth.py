"""XOAUTH2 and OAUTHBEARER against a server that checks each token with a real provider.

tests/oauth_smtp.py's server asks oidc-provider (tests/oauth_support.py)
about every token by introspection, so the tokens accepted here are ones the
provider really issued to the user named, and the refusals (expired, wrong
user, missing scope) are the provider's verdict. Each exchange is checked
byte for byte on the server's side, and the client's transcript never holds
a token.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from tests.oauth_smtp import OAuthSink, RawSMTP, offered_auth, sign_in, wait_until_expired
from tests.oauth_support import OAuthProviderServer
from tests.smtpservers import ServerThread
from tuimail.bearer import BearerToken, TokenProblem, keeper_token, read_challenge
from tuimail.credentials import Secret
from tuimail.message import Draft, OutgoingMessage, build_message
from tuimail.oauth.tokens import TokenKeeper, Tokens
from tuimail.profiles import AuthMechanism, Profile
from tuimail.session import SessionReport, Stage, send
from tuimail.smtp_stepper import choose_mechanism
from tuimail.transcript import Direction, secret_forms


def profile(port: int, user: str, **changes: Any) -> Profile:
    settings: dict[str, Any] = {
        "security": "none",
        "allow_plaintext_auth": True,
        "timeout": 10.0,
        "username": user,
    }
    settings.update(changes)
    return Profile(name="oauth", host="127.0.0.1", port=port, **settings)


def message() -> OutgoingMessage:
    return build_message(
        Draft(from_address="alice@example.test", to=["bob@example.test"], subject="s", body="b")
    )


def start(servers: ServerThread, sink: OAuthSink, *mechanisms: str) -> int:
    return servers.smtp(sink, server_class=RawSMTP, **offered_auth(*mechanisms))


def auth_bytes(sink: OAuthSink) -> list[bytes]:
    """The client's lines from its first AUTH up to (not including) MAIL, exactly as sent."""
    lines = bytes(sink.raw).split(b"\r\n")[:-1]  # whole lines only
    first = next(i for i, line in enumerate(lines) if line.startswith(b"AUTH "))
    ends = (i for i, line in enumerate(lines) if line.startswith((b"MAIL ", b"QUIT", b"RSET")))
    return lines[first : next(ends, len(lines))]


def b64(raw: bytes) -> bytes:
    return base64.b64encode(raw)


def assert_no_token(report: SessionReport, *tokens: Secret) -> None:
    text = report.transcript.to_text() + report.transcript.to_jsonl()
    if report.failure is not None:
        text += json.dumps(report.failure.to_json())
    for token in tokens:
        for form in secret_forms(token.reveal()):
            assert form not in text


def test_auto_chooses_by_the_credential() -> None:
    both = ["plain", "login", "xoauth2", "oauthbearer"]
    auto = AuthMechanism.AUTO
    assert choose_mechanism(auto, both, secure=True, token=True) is AuthMechanism.OAUTHBEARER
    assert choose_mechanism(auto, ["xoauth2", "plain"], secure=True, token=True) is (
        AuthMechanism.XOAUTH2
    )
    # A token never goes as a password, nor a password as a token.
    assert choose_mechanism(auto, ["plain", "login"], secure=True, token=True) is None
    assert choose_mechanism(auto, both, secure=True) is AuthMechanism.PLAIN
    assert choose_mechanism(auto, ["oauthbearer"], secure=True) is None
    named = AuthMechanism.OAUTHBEARER
    assert choose_mechanism(named, both, secure=True, token=True) is AuthMechanism.OAUTHBEARER


async def test_a_token_is_never_sent_as_a_password(servers: ServerThread) -> None:
    sink = OAuthSink()
    port = start(servers, sink, "PLAIN", "LOGIN")
    token = BearerToken("ya29.never-as-a-password")
    report = await send(profile(port, "alice"), message(), token)
    assert report.failure is not None and report.failure.stage is Stage.AUTH
    assert "the server offers no mechanism for one, XOAUTH2 or OAUTHBEARER (offered: " in (
        report.failure.explanation
    )
    assert b"AUTH" not in bytes(sink.raw)


def test_keeper_token_is_the_keepers_token_renewed_through_it(
    oauth_provider: OAuthProviderServer,
) -> None:
    tokens = sign_in(oauth_provider)
    assert tokens.refresh_token is not None
    keeper = TokenKeeper(
        "oauth", oauth_provider.provider(), oauth_provider.app(), tokens.refresh_token,
        tokens=tokens, margin=0,
    )  # fmt: skip
    token = keeper_token(keeper)
    assert token == tokens.access_token and token.renew is not None
    fresh = token.renew()
    assert fresh != tokens.access_token
    assert oauth_provider.introspect(fresh)["active"] is True


async def test_oauthbearer_sends_a_token_the_provider_issued(
    servers: ServerThread, oauth_provider: OAuthProviderServer
) -> None:
    sink = OAuthSink(provider=oauth_provider)
    port = start(servers, sink, "XOAUTH2", "OAUTHBEARER")
    tokens = await _tokens(oauth_provider)
    user = oauth_provider.login
    token = BearerToken(tokens.access_token.reveal())
    report = await send(profile(port, user), message(), token)
    assert report.ok, report.failure
    expected = (
        f"n,a={user},\x01host=127.0.0.1\x01port={port}\x01"
        f"auth=Bearer {token.reveal()}\x01\x01".encode()
    )
    assert auth_bytes(sink) == [b"AUTH OAUTHBEARER " + b64(expected)]
    assert [(x.mechanism, x.accepted) for x in sink.logins] == [("OAUTHBEARER", True)]
    assert len(sink.messages) == 1
    assert "AUTH OAUTHBEARER ********" in [
        e.text for e in report.transcript if e.direction is Direction.CLIENT
    ]
    assert_no_token(report, token)


async def test_xoauth2_when_it_is_all_the_server_offers(
    servers: ServerThread, oauth_provider: OAuthProviderServer
) -> None:
    """Microsoft 365 offers XOAUTH2 only: ``auto`` with a token takes it."""
    sink = OAuthSink(provider=oauth_provider)
    port = start(servers, sink, "XOAUTH2")
    tokens = await _tokens(oauth_provider)
    user = oauth_provider.login
    token = BearerToken(tokens.access_token.reveal())
    report = await send(profile(port, user), message(), token)
    assert report.ok, report.failure
    expected = f"user={user}\x01auth=Bearer {token.reveal()}\x01\x01".encode()
    assert auth_bytes(sink) == [b"AUTH XOAUTH2 " + b64(expected)]
    assert_no_token(report, token)


@pytest.mark.parametrize(
    ("mechanism", "answer", "status"),
    [("xoauth2", b"", "401"), ("oauthbearer", b"AQ==", "invalid_token")],
)
async def test_a_revoked_token_gets_the_challenge_answered_as_its_mechanism_wants(
    servers: ServerThread,
    oauth_provider: OAuthProviderServer,
    mechanism: str,
    answer: bytes,
    status: str,
) -> None:
    """The 334 challenge is read and answered (XOAUTH2: an empty line; OAUTHBEARER: %x01)."""
    sink = OAuthSink(provider=oauth_provider)
    port = start(servers, sink, "XOAUTH2", "OAUTHBEARER")
    tokens = await _tokens(oauth_provider)
    oauth_provider.revoke(tokens.access_token)
    token = BearerToken(tokens.access_token.reveal())  # no way to renew it
    user = oauth_provider.login
    report = await send(profile(port, user, auth_mechanism=mechanism), message(), token)
    failure = report.failure
    assert failure is not None and failure.stage is Stage.AUTH
    sent = auth_bytes(sink)
    assert len(sent) == 2 and sent[0].startswith(f"AUTH {mechanism.upper()} ".encode())
    assert sent[1] == answer
    assert [(x.status, x.answer) for x in sink.logins] == [(status, base64.b64decode(answer))]
    assert failure.code == 535 and not failure.temporary
    assert f"the access token for {user} has expired or is not valid" in failure.explanation
    # The challenge is in the transcript as the server sent it; the answer is masked.
    lines = [(e.direction, e.text) for e in report.transcript]
    challenge = next(t for d, t in lines if d is Direction.SERVER and t.startswith("334 "))
    parsed = read_challenge(challenge[4:])
    assert parsed is not None and parsed.problem is TokenProblem.EXPIRED
    after = lines[lines.index((Direction.SERVER, challenge)) + 1]
    assert after == (Direction.CLIENT, "********")
    assert_no_token(report, token)


async def test_a_token_for_another_user_is_explained(
    servers: ServerThread, oauth_provider: OAuthProviderServer
) -> None:
    sink = OAuthSink(provider=oauth_provider)
    port = start(servers, sink, "XOAUTH2")
    tokens = await _tokens(oauth_provider)
    token = BearerToken(tokens.access_token.reveal())
    report = await send(profile(port, "mallory@example.test"), message(), token)
    assert report.failure is not None
    assert [x.status for x in sink.logins] == ["400"]
    assert "the user name must be the account the token was issued to" in (
        report.failure.explanation
    )
    assert sink.messages == []


async def test_a_token_without_the_scope_says_which_scope(
    servers: ServerThread, oauth_provider: OAuthProviderServer
) -> None:
    sink = OAuthSink(provider=oauth_provider, scope="https://mail.example.test/send")
    port = start(servers, sink, "OAUTHBEARER")
    tokens = await _tokens(oauth_provider)
    renewals: list[int] = []

    def renew() -> Secret:
        renewals.append(1)
        return tokens.access_token

    token = BearerToken(tokens.access_token.reveal(), renew=renew)
    report = await send(profile(port, oauth_provider.login), message(), token)
    assert report.failure is not None
    assert [x.status for x in sink.logins] == ["insufficient_scope"]
    assert "lacks the scope the server wants (it asks for https://mail.example.test/send)" in (
        report.failure.explanation
    )
    assert renewals == []  # a fresh token would lack the scope as well


async def test_an_expired_token_is_refreshed_once_and_the_send_goes_through(
    servers: ServerThread, make_oauth_provider: Any
) -> None:
    """A real short-lived token, expired by the provider's own clock, then one refresh."""
    provider: OAuthProviderServer = make_oauth_provider(access_token_ttl=2)
    sink = OAuthSink(provider=provider)
    port = start(servers, sink, "XOAUTH2")
    tokens = await _tokens(provider)
    assert tokens.refresh_token is not None
    keeper = TokenKeeper("oauth", provider.provider(), provider.app(), tokens.refresh_token)
    refreshes: list[Secret] = []

    def renew() -> Secret:
        fresh = keeper.refresh().access_token
        refreshes.append(fresh)
        return fresh

    wait_until_expired(provider, tokens.access_token)
    expired = BearerToken(tokens.access_token.reveal(), renew=renew)
    user = provider.login
    report = await send(profile(port, user), message(), expired)
    assert report.ok, report.failure
    assert len(refreshes) == 1
    fresh = refreshes[0]
    assert fresh != expired
    first = f"user={user}\x01auth=Bearer {expired.reveal()}\x01\x01".encode()
    second = f"user={user}\x01auth=Bearer {fresh.reveal()}\x01\x01".encode()
    assert auth_bytes(sink) == [b"AUTH XOAUTH2 " + b64(first), b"", b"AUTH XOAUTH2 " + b64(second)]
    assert [(x.status, x.accepted) for x in sink.logins] == [("401", False), ("", True)]
    assert len(sink.messages) == 1
    events = [e.text for e in report.transcript if e.direction is Direction.EVENT]
    assert any("has expired: fetching a fresh one" in text for text in events)
    assert_no_token(report, expired, fresh)


async def test_a_server_refusing_every_token_gets_one_retry_not_a_loop(
    servers: ServerThread, oauth_provider: OAuthProviderServer
) -> None:
    sink = OAuthSink(provider=oauth_provider, refuse_all=True)
    port = start(servers, sink, "OAUTHBEARER")
    tokens = await _tokens(oauth_provider)
    renewals: list[int] = []

    def renew() -> Secret:
        renewals.append(1)
        return BearerToken(f"{tokens.access_token.reveal()}-{len(renewals)}")

    token = BearerToken(tokens.access_token.reveal(), renew=renew)
    report = await send(profile(port, oauth_provider.login), message(), token)
    assert report.failure is not None and report.failure.stage is Stage.AUTH
    assert renewals == [1]
    assert [x.status for x in sink.logins] == ["invalid_token", "invalid_token"]
    assert [line for line in auth_bytes(sink) if not line.startswith(b"AUTH ")] == [
        b"AQ==",
        b"AQ==",
    ]
    assert "a fresh token was refused as well" in report.failure.explanation
    assert_no_token(report, token, Secret(f"{tokens.access_token.reveal()}-1"))


async def test_a_refresh_that_fails_says_so(
    servers: ServerThread, oauth_provider: OAuthProviderServer
) -> None:
    """A revoked refresh token: the failure says to sign in again, nothing is retried now.

    It needs the user, not time: a message in the outbox stays queued for the
    sign-in (``needs_sign_in``; temporary, so it is not marked failed).
    """
    sink = OAuthSink(provider=oauth_provider)
    port = start(servers, sink, "XOAUTH2")
    tokens = await _tokens(oauth_provider)
    assert tokens.refresh_token is not None
    keeper = TokenKeeper(
        "work", oauth_provider.provider(), oauth_provider.app(), tokens.refresh_token
    )
    oauth_provider.revoke(tokens.refresh_token)
    token = BearerToken(tokens.access_token.reveal(), renew=lambda: keeper.refresh().access_token)
    report = await send(profile(port, oauth_provider.login), message(), token)
    failure = report.failure
    assert failure is not None and failure.stage is Stage.AUTH
    assert failure.needs_sign_in and failure.temporary
    assert "sign in again with `tuimail accounts login work`" in failure.explanation
    assert len(sink.logins) == 1


async def _tokens(server: OAuthProviderServer) -> Tokens:
    return await asyncio.to_thread(sign_in, server)
