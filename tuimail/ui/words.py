"""The app's words for what the core reports as data.

The core says what is wrong (:class:`tuimail.profiles.ProfileWarning`);
how to fix it differs per face: the command line names a command, the app a
key of its own (README.md's key table), worded here.
"""

from __future__ import annotations

from tuimail.profiles import Profile


def profile_warnings(profile: Profile) -> list[str]:
    """The profile's warnings; a secret in the file points to the Accounts screen."""
    return [
        warning.words("edit the account (F4, then e) to store the password there")
        for warning in profile.warnings()
    ]
