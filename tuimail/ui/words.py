"""The app's words for what the core reports as data.

The core says what is wrong (:class:`tuimail.profiles.ProfileWarning`,
:class:`tuimail.outbox.Stuck`); how to fix it differs per face: the command
line names a command, the app a key of its own (README.md's key table),
worded here.
"""

from __future__ import annotations

from tuimail.outbox import Queued, Stuck, with_remedy
from tuimail.profiles import Profile

#: What the user can do, on the outbox screen (F7), about a message that waits for them.
_OUTBOX_REMEDIES = {
    Stuck.CRASHED_WHILE_SENDING: "r sends it again",
    Stuck.RECORD_UNREADABLE: "d deletes it",
}


def profile_warnings(profile: Profile) -> list[str]:
    """The profile's warnings; a secret in the file points to the Accounts screen."""
    return [
        warning.words("edit the account (F4, then e) to store the password there")
        for warning in profile.warnings()
    ]


def last_error(queued: Queued) -> str:
    """A queued message's last error, with the key that helps if it waits for the user."""
    return with_remedy(queued.last_error, queued.stuck, _OUTBOX_REMEDIES)
