"""A profile's ``aliases`` (its other From addresses) are checked where profiles are made:
loading profiles.toml names the file, the line and the reason; the account dialog shows
the reason under the field and keeps what was typed; nothing invalid reaches Compose."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, Label

from tests.cli_helpers import run_tuimail
from tests.test_ui_app import fill_account_dialog
from tests.ui_support import save_profile, wait_for
from tuimail import paths
from tuimail.profiles import Profile, ProfileError, ProfileStore, ProfileStoreError, with_changes
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.accounts import AccountsScreen
from tuimail.ui.screens.dialogs import AccountDialog
from tuimail.ui.widgets.address_field import AddressField

BASE = Profile(name="work", host="smtp.example.test", from_address="me@example.test")


@pytest.mark.parametrize(
    ("aliases", "reason"),
    [
        ("help@example.test, not valid ((", "comments in parentheses are not allowed"),
        ("help@example.test\r\nBcc: eve@example.test", "line breaks or NUL"),
        ("help@example.test, Help <HELP@example.test>", "HELP@example.test is listed twice"),
        ("Me <me@example.test>", "me@example.test is the profile's From address already"),
        ('"Ops <ops@example.test>', "a quotation mark is not closed"),
        ("ops@", "ops@"),
    ],
)
def test_an_invalid_alias_is_refused_with_its_reason(aliases: str, reason: str) -> None:
    with pytest.raises(ProfileError) as raised:
        with_changes(BASE, aliases=aliases)
    assert raised.value.field_name == "aliases"
    assert reason in raised.value.message


def test_valid_aliases_are_kept_as_written() -> None:
    aliases = 'Help Desk <help@example.test>, "Ops, night" <ops@example.test>, x@example.test,'
    assert with_changes(BASE, aliases=aliases).aliases == aliases


def test_loading_profiles_toml_names_the_line_and_the_reason() -> None:
    path = paths.config_dir() / "profiles.toml"
    path.parent.mkdir(parents=True)
    path.write_text(
        '[profiles.work]\nhost = "smtp.example.test"\nfrom_address = "me@example.test"\n'
        'aliases = "help@example.test, help@example.test"\n'
    )
    with pytest.raises(ProfileStoreError) as raised:
        ProfileStore().load()
    assert raised.value.line == 4
    assert "profile 'work': aliases: help@example.test is listed twice" in str(raised.value)
    listing = run_tuimail("accounts", "list")
    assert listing.returncode != 0
    assert f"{path}:4" in listing.stderr and "is listed twice" in listing.stderr


async def test_the_account_dialog_shows_the_reason_under_the_field() -> None:
    save_profile(name="work", host="127.0.0.1", port=2599, security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "Accounts")
        table = app.screen.query_one("#profiles", DataTable)
        await wait_for(pilot, lambda: "work" in table.rows, "the row")
        table.move_cursor(row=table.get_row_index("work"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the dialog")
        dialog = app.screen
        await fill_account_dialog(pilot, {"aliases": "Ops <ops@example.test>, not valid (("})
        dialog.query_one("#save").focus()
        await pilot.press("enter")
        error = dialog.query_one("#aliases-error", Label)
        await wait_for(pilot, lambda: error.display, "the reason under the field")
        assert "comments in parentheses" in str(error.content)
        assert app.screen is dialog
        assert dialog.query_one("#aliases", Input).value == "Ops <ops@example.test>, not valid (("
        assert ProfileStore().get("work").aliases == ""

        await fill_account_dialog(pilot, {"aliases": "Ops <ops@example.test>, help@example.test"})
        dialog.query_one("#save").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "the save")
        assert ProfileStore().get("work").aliases == "Ops <ops@example.test>, help@example.test"

        await pilot.press("f2")
        sender = app.screen.query_one("#field-from", AddressField)
        await pilot.click("#input-from")
        await wait_for(pilot, lambda: sender.suggesting, "the identities under From")
        assert [s.address for s in sender.suggestions] == [
            "me@example.test",
            "ops@example.test",
            "help@example.test",
        ]
