"""Every change made to a message after it is built, in the one order that keeps each valid.

End-to-end protection (OpenPGP or S/MIME: signing covers the MIME body as
it will be sent, encryption hides it) wraps the built message first; a DKIM
signature comes last, because it covers the final headers and body and any
later change would break it. Both faces call :func:`protected` once, after
``build_message`` and before the outbox stores the bytes, so every retry
sends exactly what was signed and encrypted. Each step is blocking (files,
processes, key stores): the app calls this in a thread.

To add a step, add it to :func:`protected` in its place in that order; a
step that cannot do what the profile asks raises its own
:class:`~tuimail.errors.TuimailError` subclass, and nothing is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuimail.errors import TuimailError

if TYPE_CHECKING:
    from tuimail.message import OutgoingMessage
    from tuimail.profiles import Profile


def protected(
    profile: Profile, outgoing: OutgoingMessage, passphrase: str | None = None
) -> OutgoingMessage:
    """The message as the profile says it must leave: wrapped, then DKIM-signed.

    ``passphrase`` unlocks the OpenPGP signing key when gpg's agent has not
    (asked by the face after a :class:`~tuimail.pgp_mime.PassphraseNeeded`).
    A profile asking for both OpenPGP and S/MIME is refused before either
    runs: a message is wrapped once.
    """
    from tuimail import pgp_mime, smime
    from tuimail.dkim_signing import signed_for

    pgp = pgp_mime.settings_of(profile).active
    smime_settings = smime.settings_of(profile)
    if pgp and smime_settings is not None:
        raise ProtectionConflict(
            "the profile asks for both PGP/MIME and S/MIME: a message is signed or "
            "encrypted with one of them; turn the other off"
        )
    if pgp:
        outgoing = pgp_mime.protect_for(profile, outgoing, passphrase)
    elif smime_settings is not None:
        outgoing = _smime_step(profile, outgoing)
    return signed_for(profile, outgoing)


class ProtectionConflict(TuimailError):
    """The profile asks for two end-to-end schemes at once (PGP/MIME and S/MIME)."""


def _smime_step(profile: Profile, outgoing: OutgoingMessage) -> OutgoingMessage:
    """S/MIME (tuimail/smime.py); a message that is already OpenPGP is not wrapped again."""
    from tuimail.smime import protected_for

    head = outgoing.to_bytes().split(b"\r\n\r\n", 1)[0].lower()
    if b"application/pgp-" in head:
        raise ProtectionConflict(
            "the message is already OpenPGP-signed or encrypted: it cannot also be "
            "S/MIME-signed or encrypted"
        )
    return protected_for(profile, outgoing)
