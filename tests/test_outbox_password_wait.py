"""A message waiting for a password: the outbox says why as data, the command line words it.

The core names no command (``outbox retry ... --password-stdin``, ``--server``):
``Outcome.password_wait`` carries the reason, and ``tuimail outbox flush``
prints the sentence it always printed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import run_tuimail
from tuimail.message import Draft, build_message
from tuimail.outbox import Outbox, Result, WaitReason, short_id
from tuimail.profiles import Profile, ProfileStore, Security


def _queue(outbox: Outbox, *, follows_profile: bool | None) -> str:
    profile = Profile(name="work", host="127.0.0.1", port=9, security=Security.NONE, username="ann")
    draft = Draft(from_address="a@example.test", to=["b@example.test"], subject="s", body="hi\n")
    return outbox.enqueue(profile, build_message(draft), follows_profile=follows_profile).key


@pytest.mark.parametrize(
    ("follows", "saved", "reason"),
    [
        (True, True, WaitReason.NONE_STORED),
        (True, False, WaitReason.PROFILE_DELETED),
        (False, False, WaitReason.NO_PROFILE),
    ],
)
async def test_the_reason_is_data_and_the_words_name_no_command(
    isolated_dirs: Path, follows: bool, saved: bool, reason: WaitReason
) -> None:
    if saved:
        ProfileStore().save(Profile(name="work", host="127.0.0.1", port=9, username="ann"))
    outbox = Outbox()
    key = _queue(outbox, follows_profile=follows)
    outcome = await outbox.attempt(key, passwords=lambda profile: None)
    assert outcome.result is Result.SKIPPED
    assert outcome.password_wait is not None and outcome.password_wait.reason is reason
    assert outcome.detail.startswith("waiting: the server wants a password for ann")
    assert "--" not in outcome.detail and "tuimail" not in outcome.detail


@pytest.mark.parametrize(
    ("follows", "why"),
    [
        (False, "this message was queued without a saved profile (--server)"),
        (True, "the profile 'work' it was queued through has been deleted"),
    ],
)
def test_the_command_line_names_the_retry_command(
    isolated_dirs: Path, follows: bool, why: str
) -> None:
    key = _queue(Outbox(), follows_profile=follows)
    flushed = run_tuimail("outbox", "flush")
    how = f"'tuimail outbox retry {short_id(key)} --password-stdin'"
    assert (
        f"waiting: the server wants a password for ann, and {why}, so no stored password "
        f"is used; send it with {how}"
    ) in flushed.stdout, flushed.stdout + flushed.stderr
