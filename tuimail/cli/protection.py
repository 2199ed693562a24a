"""The send options that sign or encrypt a message, applied through tuimail/protection.py.

Each option group (``--dkim-*`` here; each end-to-end scheme adds its own
names to :data:`PROFILE_OPTIONS`) overrides the profile field of the same
name, and the message then goes through the core's one
:func:`~tuimail.protection.protected`, so ``send`` and the app sign and
encrypt alike. A key that cannot be used exits 4 and a message that cannot
be signed exits 3, before anything is stored or sent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tuimail.cli import exitcodes
from tuimail.cli.common import CLIError

if TYPE_CHECKING:
    from tuimail.message import OutgoingMessage
    from tuimail.profiles import Profile

#: argparse destinations that override the profile field of the same name.
PROFILE_OPTIONS: tuple[str, ...] = ("dkim_domain", "dkim_selector", "dkim_key")
PROFILE_OPTIONS += ("pgp_sign", "pgp_encrypt", "pgp_key")  # tuimail/cli/pgp_options.py
PROFILE_OPTIONS += (
    "smime_sign",
    "smime_encrypt",
    "smime_cert",
    "smime_key",
    "smime_recipient_certs",
)

#: Of those, the ones naming a file: made absolute, and always a file (a file
#: named "keyring" is not the keyring).
FILE_OPTIONS: frozenset[str] = frozenset({"dkim_key"})
FILE_OPTIONS |= {"smime_cert", "smime_key", "smime_recipient_certs"}


def protected_as_asked(
    args: argparse.Namespace, profile: Profile, outgoing: OutgoingMessage
) -> OutgoingMessage:
    """The message signed and encrypted as the profile and the options ask, else as it is."""
    from tuimail.errors import TuimailError
    from tuimail.profiles import ProfileError, with_changes

    overrides: dict[str, object] = {}
    for name in PROFILE_OPTIONS:
        value = getattr(args, name, None)
        if value:
            overrides[name] = (
                str(Path(str(value)).expanduser().absolute()) if name in FILE_OPTIONS else value
            )
    try:
        effective = with_changes(profile, **overrides) if overrides else profile
    except ProfileError as exc:
        option = exc.field_name.replace("_", "-")
        raise CLIError(f"--{option}: {exc.message}", exitcodes.USAGE) from None
    from tuimail.protection import asks_anything

    if not asks_anything(effective):
        return outgoing
    try:
        return _protected_unlocking(effective, outgoing)
    except CLIError:
        raise  # already in words, with its exit code
    except TuimailError as exc:
        raise CLIError(f"{exc}; nothing was sent", _refusal_exit(exc)) from None


def _refusal_exit(exc: Exception) -> int:
    """Exit 4 for a key, a certificate or settings that cannot be used; 3 for a message
    that cannot be signed as it is. (Imported here, not above: a send that signs nothing
    loads none of the signing modules.)"""
    from tuimail.dkim_signing import DkimKeyError
    from tuimail.smime import SmimeError, SmimeKeyError

    if isinstance(exc, DkimKeyError | SmimeKeyError):
        return exitcodes.CONFIG
    if isinstance(exc, SmimeError):
        return exitcodes.INVALID_MESSAGE
    from tuimail.dkim_signing import DkimSigningError

    if isinstance(exc, DkimSigningError):
        return exitcodes.INVALID_MESSAGE
    return exitcodes.CONFIG  # ProtectionConflict, and any other refusal of the settings


def _protected_unlocking(profile: Profile, outgoing: OutgoingMessage) -> OutgoingMessage:
    """:func:`~tuimail.protection.protected`, asking for a locked OpenPGP key's passphrase.

    OpenPGP refusals: a key that cannot be used (a recipient's missing or
    expired, the signing key absent or locked with no terminal to ask at,
    gpg missing) exits 4; a message that cannot be encrypted as it is (Bcc)
    exits 3. Nothing is stored or sent.
    """
    from tuimail.cli.pgp_options import ask_passphrase
    from tuimail.pgp_mime import (
        BccNotEncryptable,
        PassphraseNeeded,
        PgpError,
        RecipientKeysUnusable,
    )
    from tuimail.protection import protected

    passphrase: str | None = None
    last: PgpError = PgpError("the passphrase was refused three times")
    for _attempt in range(3):
        notes: list[str] = []
        try:
            done = protected(profile, outgoing, passphrase, notes)
            for note in notes:  # opportunistic OpenPGP going unencrypted: one line, said
                print(f"tuimail: warning: {note}", file=sys.stderr)
            return done
        except PassphraseNeeded as exc:
            passphrase = ask_passphrase(str(exc))
            if passphrase is None:
                raise CLIError(
                    f"{exc}, and there is no terminal to ask at (unlock it in gpg-agent "
                    "first, e.g. with 'echo | gpg --clearsign'); nothing was sent",
                    exitcodes.CONFIG,
                ) from None
            last = exc
        except BccNotEncryptable as exc:
            raise CLIError(f"{exc}; nothing was sent", exitcodes.INVALID_MESSAGE) from None
        except RecipientKeysUnusable as exc:
            raise CLIError(f"{exc}; nothing was sent", exitcodes.CONFIG) from None
        except PgpError as exc:
            raise CLIError(f"OpenPGP: {exc}; nothing was sent", exitcodes.CONFIG) from None
    raise CLIError(f"{last}; nothing was sent", exitcodes.CONFIG)
