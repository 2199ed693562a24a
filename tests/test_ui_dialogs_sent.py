"""The account dialog when the keyring refuses, F7 Sent (sandbox sends, its layout and
footer) and where exports land: as a new user meets them, with real keyrings and servers."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import keyring
import keyring.errors
import pytest
from textual.widgets import Button, Input

from tests.conftest import SecretService
from tests.test_ui_app import fill_account_dialog
from tests.ui_support import screen_text, static_text, wait_for
from tuimail.credentials import CredentialStore
from tuimail.profiles import ProfileStore
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.accounts import AccountsScreen
from tuimail.ui.screens.dialogs import AccountDialog

WIDE = (120, 40)
PASSWORD = "typed-Once-Secret-73"
TYPED = {
    "name": "work",
    "host": "smtp.example.test",
    "port": "587",
    "username": "alice",
    "password": PASSWORD,
    "from_address": "alice@example.test",
    "display_name": "Alice Example",
    "ehlo_name": "laptop.example.test",
}


# -- the account dialog when the keyring refuses ----------------------------------


async def refused_save(pilot: Any) -> AccountDialog:
    """F4, ``a``, every field typed, Save: refused by the keyring (the fail backend)."""
    app = pilot.app
    await pilot.press("f4")
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the dialog")
    await fill_account_dialog(pilot, TYPED)
    await pilot.click("#save")
    await wait_for(
        pilot,
        lambda: static_text(app, "#error").startswith("Keyring: "),
        "the keyring's refusal in the dialog",
    )
    dialog = app.screen
    assert isinstance(dialog, AccountDialog)
    return dialog


def typed_values(dialog: AccountDialog) -> dict[str, str]:
    return {name: dialog.query_one(f"#{name}", Input).value for name in TYPED}


async def test_a_refused_keyring_keeps_the_dialog_with_what_was_typed_until_saved(
    secret_service_session: SecretService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keyring is keyring's fail backend (conftest): it refuses; the user then starts a
    Secret Service (gnome-keyring) and saves again from the same dialog."""
    app = TuimailApp(start_sandbox=False)
    try:
        async with app.run_test(size=WIDE) as pilot:
            dialog = await refused_save(pilot)
            problem = static_text(app, "#error")
            assert "refusing keyring backend keyring.backends.fail.Keyring" in problem
            assert "Secret Service" in problem
            # Everything typed is still there, the password too, masked.
            assert typed_values(dialog) == TYPED
            assert dialog.query_one("#password", Input).password
            assert PASSWORD not in screen_text(app)
            assert not dialog.query_one("#save", Button).disabled
            assert "work" not in ProfileStore().load()

            # The user starts a Secret Service and presses Save again.
            for key, value in secret_service_session.env.items():
                monkeypatch.setenv(key, value)
            keyring.set_keyring(secret_service_session.backend())
            save = dialog.query_one("#save", Button)
            # A button ignores a click while it still shows the last one (-active).
            await wait_for(pilot, lambda: not save.has_class("-active"), "the button to settle")
            await pilot.click("#save")
            await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "the save")
            await wait_for(pilot, lambda: "work" in app.model.saved_profiles, "the profile")
            saved = ProfileStore().load()["work"]
            assert (saved.host, saved.port, saved.username) == ("smtp.example.test", 587, "alice")
            assert saved.ehlo_name == "laptop.example.test"
            secret = CredentialStore().get("work")
            assert secret is not None and secret.reveal() == PASSWORD
            assert static_text(app, "#account-problem") == ""
    finally:
        with contextlib.suppress(keyring.errors.KeyringError):
            secret_service_session.backend().delete_password("tuimail", "work")


async def test_a_refused_save_can_be_cancelled_and_nothing_is_kept() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await refused_save(pilot)
        assert typed_values(dialog) == TYPED
        # The refusal and its whole fix are read at 80 columns, wrapped, not cut.
        assert "or keyringrc.cfg." in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "the dialog to close")
        assert "work" not in app.model.saved_profiles
        assert "work" not in ProfileStore().load()
        assert PASSWORD not in screen_text(app)
