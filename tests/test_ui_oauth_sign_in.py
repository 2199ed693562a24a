"""Signing in with OAuth 2.0 from the app: the account dialog's settings and Sign in buttons,
end to end against a real authorization server, then a real send with the token.

The provider is oidc-provider (tests/oauth_support.py). The test reads the
sign-in address (or the device code) from the dialog, as a person would, and
plays the user at the browser with :class:`~tests.oauth_support.BrowserUser`
in a thread, while the app keeps running. The refresh token lands in
gnome-keyring in a private D-Bus session (tests/conftest.py's
``secret_service``); the send goes to an aiosmtpd server that asks the
provider about every token it gets (tests/oauth_smtp.py).
"""

from __future__ import annotations

import asyncio
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandPalette
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from tests.cli_helpers import files_under, find_leaks
from tests.conftest import SecretService
from tests.oauth_smtp import OAuthSink, RawSMTP, offered_auth, sign_in
from tests.oauth_support import BrowserUser, OAuthProviderServer
from tests.smtpservers import ServerThread
from tests.ui_support import (
    fill_draft,
    open_mailboxes,
    save_profile,
    screen_text,
    type_text,
    wait_for,
    wait_for_run,
)
from tuimail.credentials import Secret
from tuimail.oauth_account import OAuthSecrets, keep_sign_in
from tuimail.outbox import Outbox
from tuimail.profiles import Profile, ProfileStore, Security
from tuimail.ui.app import TuimailApp
from tuimail.ui.commands import TuimailCommands
from tuimail.ui.history import SentState
from tuimail.ui.screens.dialogs import AccountDialog, SignInDialog
from tuimail.ui.words import SIGN_IN_BINDING_ID, SIGN_IN_KEY, sign_in_again

WIDE = (120, 40)
NAME = "mail"
#: Seconds a sign-in step may take before it counts as a hang.
WAIT = 60.0


@pytest.fixture(autouse=True)
def no_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    """No browser window in a test: the dialog must show the address."""
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def keyring_service(secret_service: SecretService) -> Iterator[SecretService]:
    """gnome-keyring, without a sign-in or client secret left under NAME by another test
    (the Secret Service runs for the whole session)."""
    OAuthSecrets().forget(NAME)
    yield secret_service
    OAuthSecrets().forget(NAME)


@pytest.fixture
def smtp_sink(servers: ServerThread, oauth_provider: OAuthProviderServer) -> tuple[OAuthSink, int]:
    sink = OAuthSink(provider=oauth_provider)
    port = servers.smtp(sink, server_class=RawSMTP, **offered_auth("XOAUTH2", "OAUTHBEARER"))
    return sink, port


def plain_account(server: OAuthProviderServer, port: int, **more: Any) -> Profile:
    """A profile for the test SMTP server (no TLS on loopback), signed in as the test user."""
    return save_profile(
        name=NAME, host="127.0.0.1", port=port, security=Security.NONE,
        allow_plaintext_auth=True, username=server.login, from_address="alice@example.test",
        **more,
    )  # fmt: skip


def oauth_settings(server: OAuthProviderServer) -> dict[str, str]:
    info = server.info
    return {
        "oauth_provider": "custom",
        "oauth_client_id": info["clients"]["app"]["client_id"],
        "oauth_authorize_url": info["authorization_endpoint"],
        "oauth_token_url": info["token_endpoint"],
        "oauth_device_url": info["device_authorization_endpoint"],
        "oauth_scope": server.scope,
    }


async def edit_account(pilot: Any, name: str = NAME) -> AccountDialog:
    """F4, the cursor on ``name``, e: the account dialog on that profile."""
    app = pilot.app
    await pilot.press("f4")
    table = app.screen.query_one("#profiles", DataTable)
    await wait_for(pilot, lambda: name in [str(k.value) for k in table.rows], "the profile row")
    table.move_cursor(row=[str(k.value) for k in table.rows].index(name))
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the account dialog")
    dialog = app.screen
    assert isinstance(dialog, AccountDialog)
    await pilot.pause()
    return dialog


async def press_button(pilot: Any, selector: str) -> None:
    """Focus a button of the form (it scrolls into view) and press Enter on it."""
    pilot.app.screen.query_one(selector, Button).focus()
    await pilot.pause()
    await pilot.press("enter")


async def signed_in(pilot: Any, dialog: AccountDialog) -> None:
    """The sign-in dialog closed and the account dialog says it is signed in."""
    status = dialog.query_one("#oauth-status", Label)
    await wait_for(
        pilot,
        lambda: pilot.app.screen is dialog and "Signed in" in str(status.content),
        "the account dialog to say Signed in",
        timeout=WAIT,
    )


async def stored_refresh_token() -> Secret | None:
    return await asyncio.to_thread(OAuthSecrets().refresh_token, NAME)


async def test_sign_in_from_the_dialog_in_the_browser_then_send_with_it(
    keyring_service: SecretService,
    oauth_provider: OAuthProviderServer,
    smtp_sink: tuple[OAuthSink, int],
    isolated_dirs: Path,
) -> None:
    sink, port = smtp_sink
    # A profile that asked for its password at send time turns to OAuth in the dialog.
    plain_account(oauth_provider, port, ask_at_send=True)
    app = TuimailApp(profile=NAME, start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        dialog = await edit_account(pilot)
        dialog.query_one("#secret_source", Select).value = "oauth"
        await pilot.pause()
        for field, value in oauth_settings(oauth_provider).items():
            if field == "oauth_provider":
                dialog.query_one(f"#{field}", Select).value = value
            else:
                dialog.query_one(f"#{field}", Input).value = value
        await pilot.pause()
        await press_button(pilot, "#sign-in")
        await wait_for(pilot, lambda: isinstance(app.screen, SignInDialog), "the sign-in dialog")
        signing_in = app.screen
        assert isinstance(signing_in, SignInDialog)
        shown = signing_in.query_one("#sign-in-address", Static)
        await wait_for(pilot, lambda: str(shown.content), "the sign-in address", timeout=WAIT)
        url = str(shown.content)  # what the user reads and opens
        assert url.startswith(oauth_provider.info["authorization_endpoint"] + "?")
        assert url == signing_in.address

        user = BrowserUser(oauth_provider)
        redirect = await asyncio.to_thread(user.sign_in, url)
        status, page = await asyncio.to_thread(user.visit, redirect)
        assert status == 200 and "Signed in" in page
        await signed_in(pilot, dialog)
        first = await stored_refresh_token()
        assert first is not None
        assert oauth_provider.introspect(first)["active"] is True

        await press_button(pilot, "#save")
        await wait_for(pilot, lambda: not isinstance(app.screen, AccountDialog), "the save")
        saved = await asyncio.to_thread(ProfileStore().get, NAME)
        assert saved.uses_oauth and not saved.ask_at_send
        assert saved.oauth_token_url == oauth_provider.info["token_endpoint"]

        await pilot.press("f2")
        await fill_draft(pilot, to="bob@example.test", subject="Hello", body="Signed in.")
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        assert run.report is not None and run.report.failure is None, run.report
    assert [(login.user, login.accepted) for login in sink.logins] == [(oauth_provider.login, True)]
    assert len(sink.messages) == 1 and b"Subject: Hello" in sink.messages[0].content
    rotated = await stored_refresh_token()
    assert rotated is not None
    # The refresh tokens and the access token: in the keyring and on the wire, in no file.
    written = files_under(isolated_dirs)
    assert any(name.endswith("profiles.toml") for name in written)
    for token in (first.reveal(), rotated.reveal(), sink.logins[0].token):
        assert find_leaks(token, written) == []


async def test_sign_in_on_another_device_from_the_dialog(
    keyring_service: SecretService, oauth_provider: OAuthProviderServer
) -> None:
    plain_account(oauth_provider, 2599, **oauth_settings(oauth_provider))
    app = TuimailApp(profile=NAME, start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        dialog = await edit_account(pilot)
        assert not dialog.query_one("#sign-in-device", Button).disabled
        await press_button(pilot, "#sign-in-device")
        await wait_for(pilot, lambda: isinstance(app.screen, SignInDialog), "the device dialog")
        device = app.screen
        assert isinstance(device, SignInDialog)
        await wait_for(pilot, lambda: device.user_code, "the user code", timeout=WAIT)
        code_shown = str(device.query_one("#sign-in-code", Static).content)
        assert device.user_code in code_shown
        assert str(device.query_one("#sign-in-address", Static).content) == device.address

        user = BrowserUser(oauth_provider)
        page = await asyncio.to_thread(user.approve_device, device.address, device.user_code)
        assert "Success" in page.title or "Success" in page.body, page.body[:500]
        await signed_in(pilot, dialog)
    token = await stored_refresh_token()
    assert token is not None and oauth_provider.introspect(token)["active"] is True


async def test_google_offers_no_sign_in_on_another_device_and_says_why() -> None:
    save_profile(
        name=NAME, host="smtp.gmail.com", port=587, username="you@gmail.com",
        oauth_provider="google", oauth_client_id="id.apps.googleusercontent.com",
    )  # fmt: skip
    app = TuimailApp(profile=NAME, start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        dialog = await edit_account(pilot)
        assert dialog.query_one("#sign-in-device", Button).disabled
        assert "forwarded port" in str(dialog.query_one("#oauth-status", Label).content)
        # A custom provider without a device URL says what it needs.
        dialog.query_one("#oauth_provider", Select).value = "custom"
        await pilot.pause()
        assert dialog.query_one("#sign-in-device", Button).disabled
        assert "device URL" in str(dialog.query_one("#oauth-status", Label).content)
        dialog.query_one("#oauth_device_url", Input).value = "https://auth.example.test/device"
        await pilot.pause()
        assert not dialog.query_one("#sign-in-device", Button).disabled


async def test_oauth_settings_are_checked_by_the_core_in_the_dialog() -> None:
    """The same checks as 'tuimail accounts add --oauth-...': an endpoint that is not
    https is refused in the core's words, and nothing is saved."""
    save_profile(name=NAME, host="smtp.example.test", username="alice", ask_at_send=True)
    app = TuimailApp(profile=NAME, start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        dialog = await edit_account(pilot)
        dialog.query_one("#secret_source", Select).value = "oauth"
        dialog.query_one("#oauth_provider", Select).value = "custom"
        dialog.query_one("#oauth_client_id", Input).value = "tuimail-app"
        dialog.query_one("#oauth_authorize_url", Input).value = "http://auth.example.test/a"
        dialog.query_one("#oauth_token_url", Input).value = "https://auth.example.test/t"
        dialog.query_one("#oauth_scope", Input).value = "smtp"
        await pilot.pause()
        await press_button(pilot, "#sign-in")
        await pilot.pause()
        error = str(dialog.query_one("#error", Label).content)
        assert error.startswith("oauth_authorize_url:") and "https://" in error
        assert app.screen is dialog
    assert not (await asyncio.to_thread(ProfileStore().get, NAME)).uses_oauth


def sign_in_offered(app: TuimailApp) -> bool:
    """The sign-in key is in the app's bindings, enabled (so in the footer), and the
    palette offers the same (asserted to agree)."""
    keyed = any(
        active.binding.id == SIGN_IN_BINDING_ID and active.enabled
        for active in app.active_bindings.values()
    )
    titles = [title for title, _ in TuimailCommands(app.screen)._available()]
    assert any(title.startswith("Sign in again") for title in titles) is keyed, titles
    return keyed


async def test_a_revoked_sign_in_is_said_with_the_key_that_signs_in_again(
    keyring_service: SecretService,
    oauth_provider: OAuthProviderServer,
    smtp_sink: tuple[OAuthSink, int],
) -> None:
    """The notice names one key; it opens the account dialog on Sign in; after the new
    sign-in there the key goes, and F7's retry delivers the message that waited."""
    sink, port = smtp_sink
    plain_account(oauth_provider, port, **oauth_settings(oauth_provider))
    tokens = await asyncio.to_thread(sign_in, oauth_provider)
    await asyncio.to_thread(keep_sign_in, NAME, tokens)
    assert tokens.refresh_token is not None
    oauth_provider.revoke(tokens.refresh_token)

    app = TuimailApp(profile=NAME, start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        # Not offered before a sign-in is missed: the key does nothing.
        assert not sign_in_offered(app)
        await pilot.press(SIGN_IN_KEY)
        await pilot.pause()
        assert not isinstance(app.screen, AccountDialog)

        await fill_draft(pilot, to="bob@example.test", subject="Later", body="Kept.")
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        assert run.report is not None and run.report.failure is not None
        assert run.report.failure.needs_sign_in
        assert run.outbox_state is SentState.QUEUED
        notices = [n for n in app._notifications if n.title == "Sign in again"]
        assert [str(n.message) for n in notices] == [sign_in_again(NAME, SIGN_IN_KEY)]
        assert f"press {SIGN_IN_KEY} to sign in again" in notices[0].message
        assert "waits in the outbox" in notices[0].message
        # Compose's status says the key too, not the command line's command.
        status = str(app.screen.query_one("#send-status", Static).content)
        assert f"press {SIGN_IN_KEY} to sign in again" in status, status
        assert "tuimail accounts login" not in status
        await wait_for(pilot, lambda: sign_in_offered(app), "the sign-in key in the footer")

        # The palette offers the same; Escape in the dialog leaves the wait as it was.
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await type_text(pilot, "sign in again")
        await wait_for(pilot, lambda: "(the account a send" in screen_text(app), "the entry")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the account dialog")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AccountDialog), "the cancel")
        assert app.sign_in_waiting == NAME

        await pilot.press(SIGN_IN_KEY)
        await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the account dialog")
        dialog = app.screen
        assert isinstance(dialog, AccountDialog)
        assert dialog.profile is not None and dialog.profile.name == NAME
        sign_in_button = dialog.query_one("#sign-in", Button)
        await wait_for(pilot, lambda: app.focused is sign_in_button, "Sign in to have the focus")
        assert not sign_in_offered(app), "the key would open a second dialog over this one"

        await pilot.press("enter")  # Sign in
        await wait_for(pilot, lambda: isinstance(app.screen, SignInDialog), "the sign-in dialog")
        signing_in = app.screen
        assert isinstance(signing_in, SignInDialog)
        await wait_for(pilot, lambda: signing_in.address, "the sign-in address", timeout=WAIT)
        user = BrowserUser(oauth_provider)
        redirect = await asyncio.to_thread(user.sign_in, signing_in.address)
        status_code, page = await asyncio.to_thread(user.visit, redirect)
        assert status_code == 200 and "Signed in" in page
        await signed_in(pilot, dialog)
        await wait_for(pilot, lambda: app.sign_in_waiting is None, "the wait to end")
        await press_button(pilot, "#save")
        await wait_for(pilot, lambda: not isinstance(app.screen, AccountDialog), "the save")
        assert not sign_in_offered(app)

        await open_mailboxes(pilot, "tab-outbox")
        await pilot.press("r")
        retried = await wait_for_run(pilot, 2)
        assert retried.report is not None and retried.report.failure is None, retried.report
        assert retried.outbox_state is SentState.SENT
    assert [login.accepted for login in sink.logins] == [True]
    assert len(sink.messages) == 1 and b"Subject: Later" in sink.messages[0].content
    assert await asyncio.to_thread(Outbox().entries) == []


def listening_port(address: str) -> int:
    """The loopback listener's port, from the redirect_uri in the sign-in address."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(address).query)
    port = urllib.parse.urlsplit(query["redirect_uri"][0]).port
    assert port is not None
    return port


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


async def open_sign_in(pilot: Any) -> SignInDialog:
    await edit_account(pilot)
    await press_button(pilot, "#sign-in")
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, SignInDialog), "the sign-in dialog")
    signing_in = app.screen
    assert isinstance(signing_in, SignInDialog)
    await wait_for(pilot, lambda: signing_in.address, "the sign-in address", timeout=WAIT)
    return signing_in


async def test_escape_stops_the_sign_in_and_closes_the_listener(
    keyring_service: SecretService, oauth_provider: OAuthProviderServer
) -> None:
    plain_account(oauth_provider, 2599, **oauth_settings(oauth_provider))
    app = TuimailApp(profile=NAME, start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        signing_in = await open_sign_in(pilot)
        port = listening_port(signing_in.address)
        assert await asyncio.to_thread(accepts, port)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the account dialog")
        await wait_for(pilot, lambda: not accepts(port), "the listener to close", timeout=WAIT)
        status = str(app.screen.query_one("#oauth-status", Label).content)
        assert "Signed in" not in status
    assert await stored_refresh_token() is None


async def test_a_sign_in_nobody_finishes_ends_in_words(
    keyring_service: SecretService,
    oauth_provider: OAuthProviderServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tuimail.oauth import flows

    monkeypatch.setattr(flows, "BROWSER_TIMEOUT", 1.0)
    plain_account(oauth_provider, 2599, **oauth_settings(oauth_provider))
    app = TuimailApp(profile=NAME, start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        signing_in = await open_sign_in(pilot)
        error = signing_in.query_one("#error", Label)
        await wait_for(pilot, lambda: str(error.content), "the time-out", timeout=WAIT)
        assert "no sign-in in the browser within 1 seconds" in str(error.content)
        assert str(signing_in.query_one("#cancel", Button).label) == "Close"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the account dialog")
    assert await stored_refresh_token() is None


async def test_the_client_secret_typed_in_the_dialog_goes_to_the_keyring_only(
    keyring_service: SecretService, isolated_dirs: Path
) -> None:
    client_secret = "GOCSPX-typed-In-The-Dialog-41"
    save_profile(name=NAME, host="smtp.gmail.com", port=587, username="you@gmail.com",
                 ask_at_send=True)  # fmt: skip
    app = TuimailApp(profile=NAME, start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        dialog = await edit_account(pilot)
        dialog.query_one("#secret_source", Select).value = "oauth"
        await pilot.pause()
        dialog.query_one("#oauth_client_id", Input).value = "id.apps.googleusercontent.com"
        secret_field = dialog.query_one("#oauth_client_secret", Input)
        assert secret_field.password, "the client secret must be masked"
        secret_field.value = client_secret
        await press_button(pilot, "#save")
        await wait_for(pilot, lambda: not isinstance(app.screen, AccountDialog), "the save")
    saved = await asyncio.to_thread(ProfileStore().get, NAME)
    assert (saved.oauth_provider, saved.oauth_client_id) == (
        "google",
        "id.apps.googleusercontent.com",
    )
    stored = await asyncio.to_thread(OAuthSecrets().client_secret, NAME)
    assert stored is not None and stored.reveal() == client_secret
    assert find_leaks(client_secret, files_under(isolated_dirs)) == []
