"""Signing in with OAuth 2.0 against a real authorization server (oidc-provider on loopback).

tests/oauth_support.py starts the provider and plays the user at the browser;
tuimail/oauth does the rest, as it would against Google or Microsoft: the
loopback redirect with PKCE, the device grant, refreshing before expiry, and a
revoked refresh token turned into "sign in again".
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from tests.oauth_support import BrowserUser, OAuthProviderServer
from tuimail.credentials import Secret
from tuimail.oauth.errors import ProviderRefused, SignInAgain, SignInDenied, StateMismatch
from tuimail.oauth.flows import BrowserSignIn, DeviceCode, sign_in_with_device
from tuimail.oauth.providers import ClientApp
from tuimail.oauth.tokens import TokenKeeper, Tokens, request_tokens

#: Seconds any wait in these tests may take before it counts as a hang.
WAIT = 30.0


def in_thread(function: Any, *args: Any, **kwargs: Any) -> Future[Any]:
    """Run ``function`` on a worker thread, as the app and the command line do."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(function, *args, **kwargs)
    pool.shutdown(wait=False)
    return future


def browser_sign_in(server: OAuthProviderServer) -> Tokens:
    user = BrowserUser(server)
    with BrowserSignIn(server.provider(), server.app()) as sign_in:
        tokens = in_thread(sign_in.finish, WAIT)
        back = user.sign_in(sign_in.url)
        status, page = user.visit(back)
        assert (status, "Signed in") == (200, page.split("<h1>")[1].split("</h1>")[0])
        result: Tokens = tokens.result(WAIT)
    return result


def test_browser_sign_in_with_pkce_gets_tokens_the_provider_knows(
    oauth_provider: OAuthProviderServer,
) -> None:
    user = BrowserUser(oauth_provider)
    with BrowserSignIn(oauth_provider.provider(), oauth_provider.app()) as sign_in:
        assert sign_in.url.startswith(oauth_provider.issuer + "/auth?")
        assert "code_challenge_method=S256" in sign_in.url
        assert sign_in.redirect_uri == f"http://127.0.0.1:{sign_in.port}/"
        waiting = in_thread(sign_in.finish, WAIT)
        back = user.sign_in(sign_in.url)
        assert back.startswith(sign_in.redirect_uri + "?code=")
        status, page = user.visit(back)
        tokens: Tokens = waiting.result(WAIT)
    assert status == 200 and "You can close this tab" in page
    assert tokens.refresh_token
    said = oauth_provider.introspect(tokens.access_token)
    assert said["active"] is True
    assert said["sub"] == oauth_provider.login
    assert said["client_id"] == oauth_provider.app().client_id
    assert oauth_provider.scope in said["scope"].split()
    assert tokens.access_token.reveal() not in repr(tokens)
    assert tokens.refresh_token.reveal() not in repr(tokens)


def test_the_provider_refuses_a_code_redeemed_without_its_pkce_verifier(
    oauth_provider: OAuthProviderServer,
) -> None:
    """PKCE is really checked: the code alone (say, stolen from the redirect) is worthless."""

    user = BrowserUser(oauth_provider)
    with BrowserSignIn(oauth_provider.provider(), oauth_provider.app()) as sign_in:
        back = user.sign_in(sign_in.url)
    code = back.split("code=")[1].split("&")[0]
    with pytest.raises(ProviderRefused) as refused:
        request_tokens(
            oauth_provider.provider(),
            oauth_provider.app(),
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": sign_in.redirect_uri,
                "code_verifier": "a" * 64,
            },
        )
    assert refused.value.error == "invalid_grant"


def test_a_redirect_with_another_state_is_refused_in_words(
    oauth_provider: OAuthProviderServer,
) -> None:
    user = BrowserUser(oauth_provider)
    with BrowserSignIn(oauth_provider.provider(), oauth_provider.app()) as sign_in:
        waiting = in_thread(sign_in.finish, WAIT)
        back = user.sign_in(sign_in.url)
        forged = back.replace("state=", "state=forged")
        assert forged != back
        status, page = user.visit(forged)
        with pytest.raises(StateMismatch) as refused:
            waiting.result(WAIT)
    assert status == 400 and "Sign-in refused" in page
    assert "state does not match" in str(refused.value)
    assert "start the sign-in again" in str(refused.value)


def test_a_refused_consent_comes_back_as_not_allowed(
    oauth_provider: OAuthProviderServer,
) -> None:
    user = BrowserUser(oauth_provider)
    with BrowserSignIn(oauth_provider.provider(), oauth_provider.app()) as sign_in:
        waiting = in_thread(sign_in.finish, WAIT)
        back = user.sign_in(sign_in.url, approve=False)
        user.visit(back)
        with pytest.raises(SignInDenied) as denied:
            waiting.result(WAIT)
    assert denied.value.error == "access_denied"
    assert "not allowed" in str(denied.value)


def test_device_sign_in_after_the_user_approves_the_code(
    oauth_provider: OAuthProviderServer,
) -> None:
    user = BrowserUser(oauth_provider)
    shown: list[DeviceCode] = []
    approved = threading.Event()

    def show(code: DeviceCode) -> None:
        """The user reads the code off the terminal and enters it on another device."""
        shown.append(code)
        page = user.approve_device(code.verification_uri, code.user_code)
        assert page.title == "Sign-in Success", page.body[:500]
        approved.set()

    tokens = sign_in_with_device(oauth_provider.provider(), oauth_provider.app(), show)
    assert approved.is_set()
    (code,) = shown
    assert code.verification_uri == oauth_provider.issuer + "/device"
    assert code.device_code.reveal() not in repr(code)
    said = oauth_provider.introspect(tokens.access_token)
    assert said["active"] is True and said["sub"] == oauth_provider.login
    assert tokens.refresh_token


def test_device_sign_in_the_user_aborts_is_not_allowed(
    oauth_provider: OAuthProviderServer,
) -> None:
    user = BrowserUser(oauth_provider)

    def show(code: DeviceCode) -> None:
        user.approve_device(code.verification_uri, code.user_code, approve=False)

    with pytest.raises(SignInDenied) as denied:
        sign_in_with_device(oauth_provider.provider(), oauth_provider.app(), show)
    assert denied.value.error == "access_denied"


class FakeClock:
    """The keeper's clock, moved by the test: expiry without waiting for it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_access_token_is_refreshed_shortly_before_it_expires(
    make_oauth_provider: Any,
) -> None:
    server: OAuthProviderServer = make_oauth_provider(access_token_ttl=600)
    first = browser_sign_in(server)
    clock = FakeClock()
    stored: list[Secret] = []
    keeper = TokenKeeper(
        "work",
        server.provider(),
        server.app(),
        first.refresh_token or Secret(""),
        on_new_refresh_token=stored.append,
        margin=120,
        clock=clock,
    )
    token = keeper.access_token()  # nothing in memory yet: refreshed
    assert token != first.access_token
    assert server.introspect(token)["active"] is True
    # The provider rotates a public client's refresh token: the newest is handed on.
    assert stored == [keeper.refresh_token] and keeper.refresh_token != first.refresh_token

    clock.now += 600 - 120 - 1  # not yet within the margin: the same token
    assert keeper.access_token() == token
    clock.now += 1  # 120 seconds before expiry: a new one
    fresh = keeper.access_token()
    assert fresh != token
    assert server.introspect(fresh)["active"] is True
    assert len(stored) == 2
    assert "refresh_token=Secret('********')" in repr(keeper)
    assert keeper.refresh_token.reveal() not in repr(keeper)


def test_a_revoked_refresh_token_says_sign_in_again(
    oauth_provider: OAuthProviderServer,
) -> None:
    tokens = browser_sign_in(oauth_provider)
    assert tokens.refresh_token
    oauth_provider.revoke(tokens.refresh_token)
    keeper = TokenKeeper(
        "work", oauth_provider.provider(), oauth_provider.app(), tokens.refresh_token
    )
    with pytest.raises(SignInAgain) as again:
        keeper.access_token()
    words = str(again.value)
    assert "sign in again with `tuimail accounts login work`" in words
    assert again.value.refused.error == "invalid_grant"
    assert tokens.refresh_token.reveal() not in words


def test_a_client_with_a_secret_signs_in_and_refreshes_with_it(
    oauth_provider: OAuthProviderServer,
) -> None:
    """As with Google's installed apps: the secret goes with every token request."""
    app = oauth_provider.secret_app()
    user = BrowserUser(oauth_provider)
    with BrowserSignIn(oauth_provider.provider(), app) as sign_in:
        waiting = in_thread(sign_in.finish, WAIT)
        user.visit(user.sign_in(sign_in.url))
        tokens: Tokens = waiting.result(WAIT)
    assert tokens.refresh_token
    keeper = TokenKeeper("work", oauth_provider.provider(), app, tokens.refresh_token)
    assert oauth_provider.introspect(keeper.access_token())["active"] is True

    wrong = ClientApp(app.client_id, Secret("not-the-secret"))
    with pytest.raises(ProviderRefused) as refused:
        TokenKeeper("work", oauth_provider.provider(), wrong, keeper.refresh_token).refresh()
    assert refused.value.error == "invalid_client"
    assert not isinstance(refused.value, SignInAgain)
