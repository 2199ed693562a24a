"""Account changes that fail leave every profile with its own password (real Secret Service)."""

from __future__ import annotations

import datetime
import json
import tomllib
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from tests.cli_helpers import run_tuimail
from tests.conftest import SecretService
from tests.smtpservers import ServerThread, Sink
from tuimail.accounts import save_account
from tuimail.credentials import SERVICE, CredentialStore, KeyringError, Secret
from tuimail.profiles import Profile, ProfileStore

PERSONAL = "personal-pass-1c9e"
WORK = "work-pass-77ab"


def _add(name: str, password: str) -> None:
    result = run_tuimail(
        "accounts", "add", name, "--host", "127.0.0.1", "--user", name, "--password-stdin",
        input=password + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.fixture
def two_accounts(secret_service: SecretService, isolated_dirs: Path) -> Path:
    _add("personal", PERSONAL)
    _add("work", WORK)
    return isolated_dirs / "config" / "tuimail" / "profiles.toml"


def _assert_untouched(profiles_file: Path, before: bytes) -> None:
    assert keyring.get_password(SERVICE, "work") == WORK
    assert keyring.get_password(SERVICE, "personal") == PERSONAL
    assert profiles_file.read_bytes() == before


@pytest.mark.parametrize("new_password", [None, "typed-in-edit"])
def test_refused_rename_keeps_the_other_profiles_password(
    two_accounts: Path, new_password: str | None
) -> None:
    before = two_accounts.read_bytes()
    extra = ["--password-stdin"] if new_password else []
    result = run_tuimail(
        "accounts", "edit", "personal", "--rename", "work", *extra,
        input=(new_password or "") + "\n",
    )  # fmt: skip
    assert result.returncode != 0
    assert "already exists" in result.stderr
    _assert_untouched(two_accounts, before)


def test_the_dialogs_refused_rename_and_add_change_nothing(two_accounts: Path) -> None:
    from tuimail.ui.screens.accounts import save_account_form
    from tuimail.ui.screens.dialogs import AccountForm

    before = two_accounts.read_bytes()
    store = ProfileStore()
    renamed = Profile(name="work", host="127.0.0.1", username="personal")
    for password in (None, Secret("typed-in-dialog")):
        problem, _ = save_account_form(AccountForm(renamed, password, "personal"))
        assert "already exists" in problem
        _assert_untouched(two_accounts, before)
    problem, _ = save_account_form(AccountForm(renamed, Secret("typed-in-dialog"), None))
    assert "already exists" in problem
    _assert_untouched(two_accounts, before)
    # and a rename to a free name moves the password along, once
    problem, leftovers = save_account_form(
        AccountForm(Profile(name="home", host="127.0.0.1", username="p"), None, "personal")
    )
    assert problem == "" and leftovers == []
    assert keyring.get_password(SERVICE, "home") == PERSONAL
    assert keyring.get_password(SERVICE, "personal") is None
    assert set(store.load()) == {"home", "work"}


def test_a_keyring_failure_puts_the_profile_file_back(two_accounts: Path) -> None:
    before = two_accounts.read_bytes()
    broken = CredentialStore(backend=fail.Keyring())
    renamed = Profile(name="home", host="127.0.0.1", username="personal")
    with pytest.raises(KeyringError):
        save_account(renamed, original_name="personal", password=Secret("x"), credentials=broken)
    _assert_untouched(two_accounts, before)
    with pytest.raises(KeyringError):
        save_account(
            Profile(name="new", host="127.0.0.1", username="n"),
            password=Secret("x"),
            credentials=broken,
        )
    _assert_untouched(two_accounts, before)


def test_a_keyring_failure_in_the_command_changes_nothing(two_accounts: Path) -> None:
    before = two_accounts.read_bytes()
    broken = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    edit = run_tuimail(
        "accounts", "edit", "personal", "--rename", "home", "--password-stdin",
        input="x\n", env=broken,
    )  # fmt: skip
    assert edit.returncode != 0 and "keyring" in edit.stderr
    add = run_tuimail(
        "accounts", "add", "new", "--host", "127.0.0.1", "--user", "n", "--password-stdin",
        input="x\n", env=broken,
    )  # fmt: skip
    assert add.returncode != 0 and "keyring" in add.stderr
    _assert_untouched(two_accounts, before)


def test_an_orphaned_password_is_not_inherited(
    secret_service: SecretService, isolated_dirs: Path
) -> None:
    """A keyring entry no profile owns (a removal whose keyring delete failed)."""
    keyring.set_password(SERVICE, "ghost", "someone-elses-password")
    added = run_tuimail("accounts", "add", "ghost", "--host", "127.0.0.1", "--user", "g",
                        "--no-password")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert keyring.get_password(SERVICE, "ghost") is None
    keyring.set_password(SERVICE, "spare", "someone-elses-password")
    renamed = run_tuimail("accounts", "edit", "ghost", "--rename", "spare")
    assert renamed.returncode == 0, renamed.stderr
    assert keyring.get_password(SERVICE, "spare") is None


# -- unknown keys holding TOML dates ---------------------------------------------------

DATED = """\
[profiles.dated]
host = "127.0.0.1"
port = {port}
security = "none"
from_address = "me@example.test"
added_on = 2026-01-02
checked = 1979-05-27T07:32:00Z
[profiles.dated.schedule]
quiet_from = 22:30:00
days = [2026-02-03, 2026-02-04]
"""


def test_unknown_keys_holding_dates_break_neither_send_nor_json_listing(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    """Unknown keys stay in the file as TOML dates; JSON shows them as ISO 8601 text."""
    sink = Sink()
    port = servers.smtp(sink)
    profiles_file = isolated_dirs / "config" / "tuimail" / "profiles.toml"
    profiles_file.parent.mkdir(parents=True, exist_ok=True)
    profiles_file.write_text(DATED.format(port=port))

    listing = run_tuimail("accounts", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    [record] = [r for r in json.loads(listing.stdout) if not r["builtin"]]
    assert record["added_on"] == "2026-01-02"
    assert record["checked"] == "1979-05-27T07:32:00+00:00"
    assert record["schedule"] == {"quiet_from": "22:30:00", "days": ["2026-02-03", "2026-02-04"]}

    sent = run_tuimail(
        "send", "--profile", "dated", "--to", "bob@example.test", "--subject", "s", "--body", "b"
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert len(sink.messages) == 1

    edited = run_tuimail("accounts", "edit", "dated", "--timeout", "9")
    assert edited.returncode == 0, edited.stderr
    table = tomllib.loads(profiles_file.read_text())["profiles"]["dated"]
    assert table["added_on"] == datetime.date(2026, 1, 2)  # still a date in the file
    assert table["schedule"]["days"][0] == datetime.date(2026, 2, 3)
