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
    profile: Profile,
    outgoing: OutgoingMessage,
    passphrase: str | None = None,
    notes: list[str] | None = None,
) -> OutgoingMessage:
    """The message as the profile says it must leave: wrapped, then DKIM-signed.

    ``passphrase`` unlocks the OpenPGP signing key when gpg's agent has not
    (asked by the face after a :class:`~tuimail.pgp_mime.PassphraseNeeded`).
    A profile asking for both OpenPGP and S/MIME is refused before either
    runs: a message is wrapped once. So is a prepared message already wrapped,
    or carrying a DKIM-Signature that wrapping would break.

    ``notes`` (when given) gets a line for what the face must say although
    nothing was refused: opportunistic OpenPGP sending a message unencrypted,
    and why (the faces put it in the transcript and ``send``'s output).
    """
    if not asks_anything(profile):
        return outgoing  # the common case: no signing modules (and their imports) at all
    from tuimail import pgp_mime, smime
    from tuimail.dkim_signing import signed_for

    pgp = pgp_mime.settings_of(profile).active
    smime_settings = smime.settings_of(profile)
    if pgp and smime_settings is not None:
        raise ProtectionConflict(
            "the profile asks for both PGP/MIME and S/MIME: a message is signed or "
            "encrypted with one of them; turn the other off"
        )
    if pgp or smime_settings is not None:
        settings = pgp_mime.settings_of(profile)
        wraps = smime_settings is not None or settings.sign or settings.encrypt
        target = "OpenPGP" if pgp else "S/MIME"
        scheme = _wrapped_in(outgoing)
        if scheme and wraps:
            raise ProtectionConflict(
                f"the message is already {scheme}-signed or encrypted: it cannot also be "
                f"{target}-signed or encrypted (send it without the profile's or the "
                "options' signing and encrypting)"
            )
        dkim_signed = _carries_dkim_signature(outgoing)
        if dkim_signed and wraps:
            raise ProtectionConflict(
                "the message carries a DKIM-Signature, which covers its body: "
                f"{target} signing or encrypting changes the body, so that signature would "
                "arrive broken; remove the DKIM-Signature field (tuimail DKIM-signs after "
                "wrapping, with the profile's dkim_domain) or send it without wrapping"
            )
        if scheme or dkim_signed:  # opportunistic OpenPGP only: the message stays as it is
            if notes is not None and not scheme:  # wrapped already: it may be encrypted
                notes.append(
                    "OpenPGP: the message goes UNENCRYPTED (opportunistic encryption): it "
                    "carries a DKIM-Signature, which encrypting would break"
                )
            return signed_for(profile, outgoing)
    if pgp:
        outgoing = pgp_mime.protect_for(profile, outgoing, passphrase, notes)
    elif smime_settings is not None:
        from tuimail.smime import protected_for

        outgoing = protected_for(profile, outgoing)
    return signed_for(profile, outgoing)


def asks_anything(profile: Profile) -> bool:
    """Whether the profile signs or encrypts at all (its fields alone, nothing imported)."""
    return bool(
        profile.pgp_sign
        or profile.pgp_encrypt
        or profile.pgp_encrypt_opportunistic
        or profile.smime_sign
        or profile.smime_encrypt
        or profile.dkim_domain
    )


class ProtectionConflict(TuimailError):
    """The profile asks for two end-to-end schemes at once (PGP/MIME and S/MIME), or to wrap
    a message already wrapped or DKIM-signed."""


def _carries_dkim_signature(outgoing: OutgoingMessage) -> bool:
    """The message (a prepared one) already has a DKIM-Signature field at its top level."""
    import re

    head = outgoing.to_bytes().split(b"\r\n\r\n", 1)[0]
    return re.search(rb"(?:^|\r\n)DKIM-Signature[ \t]*:", head, re.I) is not None


def _wrapped_in(outgoing: OutgoingMessage) -> str:
    """The scheme the message is already signed or encrypted with ("" when none), read from
    its top-level Content-Type: a prepared message (``send --eml``) may come wrapped, and a
    second wrapping would hide the first signature inside a part no reader checks."""
    from email.parser import BytesHeaderParser
    from email.policy import compat32

    head = outgoing.to_bytes().split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    message = BytesHeaderParser(policy=compat32).parsebytes(head)
    kind = message.get_content_type()
    protocol = str(message.get_param("protocol", "")).lower()
    if kind in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
        return "S/MIME"
    if kind in ("multipart/signed", "multipart/encrypted"):
        if "pkcs7" in protocol:
            return "S/MIME"
        return "OpenPGP" if "pgp" in protocol else "MIME"
    return ""
