"""A password typed into profiles.toml, as other tools take it, goes nowhere else.

tuimail keeps unknown profile keys so that a rewrite of the file loses
nothing, and it copied them into every outbox record and into
``accounts list --json``: a ``password = "..."`` line left by a user was
then spread over the data directory. Real processes, real files.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.cli_helpers import files_under, find_leaks, run_tuimail
from tuimail.profiles import ProfileStore, Risk
from tuimail.ui.words import profile_warnings

PASSWORD = "Plain-Text-PW-55"
TOKEN = "Nested-Token-66"


def write_profiles(isolated_dirs: Path) -> Path:
    directory = isolated_dirs / "config" / "tuimail"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "profiles.toml"
    path.write_text(
        "[profiles.w]\n"
        'host = "127.0.0.1"\nport = 1\nsecurity = "none"\n'
        f'password = "{PASSWORD}"\nnote = "kept"\n'
        f'[profiles.w.oauth]\naccess_token = "{TOKEN}"\n'
    )
    path.chmod(0o600)
    return path


def test_a_password_in_profiles_toml_is_not_copied_out(isolated_dirs: Path) -> None:
    path = write_profiles(isolated_dirs)
    listed = run_tuimail("accounts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (record,) = [r for r in json.loads(listed.stdout) if not r["builtin"]]
    assert record["note"] == "kept"  # other unknown keys still shown
    assert any("keyring" in warning for warning in record["warnings"])
    sent = run_tuimail(
        "send", "--profile", "w", "--from", "a@example.com", "--to", "b@example.com",
        "--body", "b", "--json",
    )  # fmt: skip
    assert "queued" in sent.stderr, sent.stderr
    outputs = {
        "list": listed.stdout.encode(),
        "send stdout": sent.stdout.encode(),
        "send stderr": sent.stderr.encode(),
        **files_under(isolated_dirs / "data", isolated_dirs / "state"),
    }
    for secret in (PASSWORD, TOKEN):
        assert find_leaks(secret, outputs) == [], secret
    # The user's file keeps what the user wrote: only copies are refused.
    ProfileStore(path).save(ProfileStore(path).get("w"))
    assert PASSWORD in path.read_text() and TOKEN in path.read_text()


def test_the_warning_names_each_secret_looking_key(isolated_dirs: Path) -> None:
    write_profiles(isolated_dirs)
    (warning,) = [w for w in ProfileStore().get("w").warnings() if w.risk is Risk.SECRET_IN_FILE]
    assert warning.keys == ("password", "oauth.access_token")
    assert warning.profile == "w"
    assert PASSWORD not in warning.words() and TOKEN not in warning.words()


def test_each_face_words_the_secret_warning_its_own_way(isolated_dirs: Path) -> None:
    """The core says what is wrong; the command line names its command, the app
    its key, and the transcript neither."""
    write_profiles(isolated_dirs)
    profile = ProfileStore().get("w")
    listed = run_tuimail("accounts", "list")
    assert listed.returncode == 0, listed.stderr
    assert (
        "profiles.toml holds password, oauth.access_token for this profile, which tuimail "
        "never uses: passwords belong in the keyring (tuimail accounts edit w "
        "--password-stdin); remove it from the file"
    ) in listed.stdout
    (app_words,) = [w for w in profile_warnings(profile) if "keyring" in w]
    assert "(edit the account (F4, then e) to store the password there)" in app_words
    assert "tuimail accounts" not in app_words and "--" not in app_words
    (neutral,) = [w.words() for w in profile.warnings() if w.risk is Risk.SECRET_IN_FILE]
    assert neutral.endswith("passwords belong in the keyring; remove it from the file")


def test_the_transcript_warns_without_command_line_words(isolated_dirs: Path) -> None:
    """A test connection's transcript carries the warning in neutral words."""
    from tuimail.session import check_account
    from tuimail.transcript import EventKind

    write_profiles(isolated_dirs)
    report = asyncio.run(check_account(ProfileStore().get("w"), None))
    warnings = [e.text for e in report.transcript if e.kind is EventKind.WARNING]
    (secret,) = [w for w in warnings if "keyring" in w]
    assert "password, oauth.access_token" in secret
    assert "tuimail accounts" not in secret and "--password-stdin" not in secret


async def test_the_app_points_to_its_own_key_not_a_command(isolated_dirs: Path) -> None:
    """The Accounts screen's notes say where the app stores a password."""
    from textual.widgets import DataTable

    from tests.ui_support import wait_for
    from tuimail.ui.app import TuimailApp
    from tuimail.ui.screens.accounts import AccountsScreen

    write_profiles(isolated_dirs)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "Accounts")
        table = app.screen.query_one("#profiles", DataTable)
        await wait_for(pilot, lambda: table.row_count > 0, "the profiles")
        notes = " ".join(
            str(cell) for row in range(table.row_count) for cell in table.get_row_at(row)
        )
        assert "edit the account (F4, then e) to store the password there" in notes
        assert "tuimail accounts" not in notes and "--password-stdin" not in notes
