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

if TYPE_CHECKING:
    from tuimail.message import OutgoingMessage
    from tuimail.profiles import Profile


def protected(
    profile: Profile, outgoing: OutgoingMessage, passphrase: str | None = None
) -> OutgoingMessage:
    """The message as the profile says it must leave: wrapped, then DKIM-signed.

    ``passphrase`` unlocks the OpenPGP signing key when gpg's agent has not
    (asked by the face after a :class:`~tuimail.pgp_mime.PassphraseNeeded`).
    """
    from tuimail.dkim_signing import signed_for
    from tuimail.pgp_mime import protect_for

    outgoing = protect_for(profile, outgoing, passphrase)  # OpenPGP (tuimail/pgp_mime.py)
    return signed_for(profile, outgoing)
