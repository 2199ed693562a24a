"""The command line's words as a new user meets them: one listing of the profiles."""

from __future__ import annotations

from tests.cli_helpers import run_tuimail
from tests.outbox_helpers import profile
from tuimail.cli import exitcodes
from tuimail.profiles import ProfileStore


def test_testing_an_unknown_profile_lists_the_built_in_sandbox_as_the_app_does() -> None:
    ProfileStore().save(profile(2599, name="acct"))
    tested = run_tuimail("accounts", "test", "nosuch")
    launched = run_tuimail("--profile", "nosuch", timeout=20)
    assert tested.returncode == exitcodes.CONFIG, tested.stderr  # this command's code, as before
    assert launched.returncode == exitcodes.USAGE, launched.stderr
    assert "acct, sandbox (built-in)" in tested.stderr
    assert tested.stderr == launched.stderr
