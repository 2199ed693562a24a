"""The app's words for what the core reports as data.

The core says what is wrong (:class:`tuimail.profiles.ProfileWarning`,
:class:`tuimail.outbox.Stuck`); how to fix it differs per face: the command
line names a command, the app a key of its own (README.md's key table),
worded here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tuimail.profiles import Profile

if TYPE_CHECKING:  # the outbox is imported by the first send, not by the first screen
    from tuimail.outbox import Queued


def profile_warnings(profile: Profile) -> list[str]:
    """The profile's warnings; a secret in the file points to the Accounts screen."""
    return [
        warning.words("edit the account (F4, then e) to store the password there")
        for warning in profile.warnings()
    ]


def where_the_secret_is(profile: Profile) -> str:
    """Where a saved profile's password or token comes from, said after a save."""
    if profile.uses_oauth:
        return (
            f"it signs in with OAuth ({profile.oauth_provider}): if it has not signed in "
            "yet, press Sign in in its account dialog (F4, then e)"
        )
    if profile.token_command:
        return "its access token comes from its token command at each send"
    if profile.password_command:
        return "its password comes from its password command at each send"
    if profile.ask_at_send:
        return "its password is asked for when it is first needed in each run, never stored"
    if profile.username:
        return "its password is in the keyring, not in the file"
    return "it signs in with no password"


#: Compose's status when the password asked for at send time was not given (Escape).
NOT_SENT_NO_PASSWORD = "Not sent: no password given. The draft is kept."


def last_error(queued: Queued) -> str:
    """A queued message's last error, with the key of the outbox screen (F7) that helps
    if it waits for the user."""
    from tuimail.outbox import Stuck, with_remedy

    remedies = {
        Stuck.CRASHED_WHILE_SENDING: "r sends it again",
        Stuck.RECORD_UNREADABLE: "d deletes it",
    }
    return with_remedy(queued.last_error, queued.stuck, remedies)


#: The Sent table's mark for a message the built-in sandbox took (F7), read at a glance.
SANDBOX_SENT_TAG = "sandbox"
#: Above such a message's preview in Sent: where it went, and where it did not.
SANDBOX_SENT_NOTE = "Sent to the built-in sandbox (F5): it did not leave this machine."


def no_device_sign_in(provider: str, device_url: str) -> str:
    """Why the account dialog offers no sign-in on another device ("" when it does)."""
    if provider == "google":
        return (
            "Google gives no mail access through a sign-in on another device: sign in with "
            "the browser (over SSH, through a forwarded port: docs/oauth.md)."
        )
    if provider == "custom" and not device_url.strip():
        return "A sign-in on another device needs the provider's device URL."
    return ""


#: The app's key that opens the account dialog of a profile waiting for a sign-in
#: (``[keymap]`` id below); offered only while one waits.
SIGN_IN_BINDING_ID = "app.sign_in"
SIGN_IN_KEY = "ctrl+l"


def sign_in_key(keymap: Mapping[str, str]) -> str:
    """The sign-in key as the user's ``[keymap]`` has it."""
    return str(keymap.get(SIGN_IN_BINDING_ID, SIGN_IN_KEY))


def sign_in_again(profile_name: str, key: str = SIGN_IN_KEY, *, queued: bool = True) -> str:
    """The notice when a run needs the profile's OAuth sign-in (missing or revoked): the
    one key that opens its account dialog, where Sign in is."""
    waits = " (the message waits in the outbox; F7, then r, sends it after that)" if queued else ""
    return (
        f"{profile_name} needs to sign in (again) with OAuth: press {key} to sign in again{waits}."
    )


#: How the core's failure names the command line's sign-in (``tuimail accounts login NAME``).
_LOGIN_COMMAND = re.compile(
    r"(?:sign in again with|sign in first:)\s*`?tuimail accounts login [^`\s]+`?"
)


def sign_in_status(explanation: str, key: str = SIGN_IN_KEY) -> str:
    """A failure's explanation that needs a sign-in, with the app's key instead of the
    command line's ``tuimail accounts login NAME`` (the core words it for the command line)."""
    remedy = f"press {key} to sign in again"
    worded, found = _LOGIN_COMMAND.subn(remedy, explanation)
    return worded if found else f"{explanation}; {remedy}"


#: F4's answer to ``d`` on the built-in sandbox, as ``tuimail accounts remove sandbox`` says it.
SANDBOX_NOT_DELETED = (
    "'sandbox' is the built-in profile of the local capture server, not a saved one: "
    "it cannot be deleted (adding a profile named sandbox saves one that takes its place)."
)
