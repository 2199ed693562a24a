"""OpenPGP signing and encryption of outgoing mail as PGP/MIME (RFC 3156), through the user's gpg.

python-gnupg drives the user's own ``gpg`` (their ``GNUPGHOME``, agent,
smartcards), so keys work as they do for the user's other mail tools.
:func:`protect_for` is the step :mod:`tuimail.protection` runs before DKIM.

* Signing makes ``multipart/signed`` (``protocol="application/pgp-signature"``,
  ``micalg`` from the hash gpg reports). The signed part is the message's own
  content (its Content-* headers and body), made 7-bit clean with CRLF line
  ends and no trailing white space (RFC 3156 section 5): the bytes gpg signs
  are the bytes sent.
* Encryption makes ``multipart/encrypted`` (``application/pgp-encrypted``
  ``Version: 1``, then the ASCII-armored ``application/octet-stream``).
  Both: the signed message is encrypted (RFC 3156 section 6.1, "sign then
  encrypt", nested), which every PGP/MIME reader understands.
* Recipients' keys come from the keyring, looked up by the exact address
  (``<addr>``); each gets a :class:`KeyStatus`. A key that gpg has not
  certified (``untrusted``) is used, and said to be so; a missing, expired,
  revoked, disabled or encrypt-less key refuses the message with the
  addresses named (:class:`RecipientKeysUnusable`), never a plaintext copy.
  The message is also encrypted to the sender's own key, so the sent copy
  stays readable.
* Bcc recipients would all read one shared encrypted part, which names every
  key it is encrypted to. A separate message per Bcc recipient needs the
  outbox to carry several messages for one send, which it does not, so an
  encrypted message with Bcc is refused (:class:`BccNotEncryptable`).
* gpg runs with ``--batch --no-tty`` and ``--pinentry-mode loopback``, never
  a terminal pinentry fighting a full-screen app: a key the agent has not
  unlocked fails with :class:`PassphraseNeeded`, and the face asks (masked)
  and tries again with the passphrase, which python-gnupg writes to gpg's
  stdin (never argv, never a log or the transcript). Every call has a
  timeout, after which gpg is killed.
"""

from __future__ import annotations

import base64
import enum
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email import message_from_bytes
from email import policy as email_policy
from email.message import Message
from typing import TYPE_CHECKING, Any

from tuimail.errors import TuimailError

if TYPE_CHECKING:
    from tuimail.message import OutgoingMessage
    from tuimail.profiles import Profile

#: Seconds a gpg call may take before it is killed (key lookups, signing, encryption).
GPG_TIMEOUT = 60.0
#: The Subject shown outside an encrypted message with protected headers.
HIDDEN_SUBJECT = "..."
#: Headers copied into the protected part (the draft "Protected Headers for Cryptographic E-mail").
PROTECTED_HEADERS = ("From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID")
#: OpenPGP hash algorithm ids (RFC 4880 section 9.4) to the micalg names of RFC 3156.
HASH_NAMES = {
    "1": "md5",
    "2": "sha1",
    "3": "ripemd160",
    "8": "sha256",
    "9": "sha384",
    "10": "sha512",
    "11": "sha224",
}
#: The options every gpg call gets (python-gnupg adds --batch, --no-tty, --status-fd).
GPG_OPTIONS = ("--pinentry-mode", "loopback")


class PgpError(TuimailError):
    """OpenPGP could not do what the profile asks; nothing is sent."""


class GpgUnavailable(PgpError):
    """gpg is not installed, not runnable, or timed out."""


class SigningKeyUnusable(PgpError):
    """The key to sign with is missing or cannot sign."""


class PassphraseNeeded(PgpError):
    """The signing key is locked and no (or a wrong) passphrase was given.

    ``wrong`` is True when a passphrase was given and gpg refused it.
    """

    def __init__(self, key: str, wrong: bool) -> None:
        what = "the passphrase given is wrong" if wrong else "it needs its passphrase"
        super().__init__(f"the OpenPGP key {key} is locked: {what}")
        self.key = key
        self.wrong = wrong


class DecryptKeyLocked(PgpError):
    """Decrypting for display needs the passphrase of a secret key that gpg-agent does not
    hold (none given, or ``wrong``): the app asks for it, masked, and tries again.

    ``key`` is the locked key's id as gpg names it ("" when gpg did not say).
    """

    def __init__(self, words: str, key: str, wrong: bool) -> None:
        super().__init__(words)
        self.key = key
        self.wrong = wrong


class BccNotEncryptable(PgpError):
    """Encryption with Bcc recipients, refused: see the module's words."""

    def __init__(self, bcc: Sequence[str]) -> None:
        super().__init__(
            "an encrypted message cannot have Bcc recipients ("
            + ", ".join(bcc)
            + "): they would read one encrypted part that names every recipient's key, "
            "and tuimail cannot yet send each a separate message; send them their own copy"
        )
        self.bcc = tuple(bcc)


class RecipientKeysUnusable(PgpError):
    """Some recipients have no usable key: ``problems`` maps each address to its status."""

    def __init__(self, problems: Sequence[RecipientKey]) -> None:
        words = "; ".join(f"{p.address}: {p.status.words}" for p in problems)
        super().__init__(f"cannot encrypt: no usable OpenPGP key for {words}")
        self.problems = tuple(problems)


class KeyStatus(enum.StrEnum):
    """What the keyring holds for one address, best first."""

    TRUSTED = "trusted"
    UNTRUSTED = "untrusted"
    EXPIRED = "expired"
    REVOKED = "revoked"
    UNUSABLE = "unusable"
    MISSING = "missing"

    @property
    def usable(self) -> bool:
        return self in (KeyStatus.TRUSTED, KeyStatus.UNTRUSTED)

    @property
    def words(self) -> str:
        return {
            KeyStatus.TRUSTED: "a trusted key",
            KeyStatus.UNTRUSTED: "a key nobody you trust has certified",
            KeyStatus.EXPIRED: "the key has expired",
            KeyStatus.REVOKED: "the key is revoked",
            KeyStatus.UNUSABLE: "the key cannot encrypt (disabled, or no encryption subkey)",
            KeyStatus.MISSING: "no key in the keyring",
        }[self]


@dataclass(frozen=True)
class RecipientKey:
    """One address, what its best key is, and that key's fingerprint ("" when none)."""

    address: str
    status: KeyStatus
    fingerprint: str = ""


@dataclass(frozen=True)
class PgpSettings:
    """What the profile (and the send options) ask of OpenPGP for one message."""

    sign: bool = False
    encrypt: bool = False
    #: Encrypt when every recipient has a usable key, else send as it is.
    opportunistic: bool = False
    #: The key to sign with (an id, fingerprint or address); "": the From address.
    key: str = ""
    protected_headers: bool = False

    @property
    def active(self) -> bool:
        return self.sign or self.encrypt or self.opportunistic


def settings_of(profile: Profile) -> PgpSettings:
    """The profile's OpenPGP settings (all off for a profile that does not use OpenPGP)."""
    return PgpSettings(
        sign=profile.pgp_sign,
        encrypt=profile.pgp_encrypt,
        opportunistic=profile.pgp_encrypt_opportunistic,
        key=profile.pgp_key,
        protected_headers=profile.pgp_protected_headers,
    )


# -- gpg -------------------------------------------------------------------------------


def gpg(timeout: float = GPG_TIMEOUT) -> Any:
    """A python-gnupg handle on the user's gpg whose every call is killed after ``timeout``.

    Raises :class:`GpgUnavailable` when gpg cannot be run.
    """
    try:
        import gnupg
    except ImportError:  # pragma: no cover - a dependency
        raise GpgUnavailable("python-gnupg is not installed") from None

    class _TimedGPG(gnupg.GPG):  # type: ignore[misc]
        timed_out = False

        def __init__(self, **kwargs: Any) -> None:
            self._timers: list[threading.Timer] = []
            super().__init__(**kwargs)

        def _open_subprocess(self, args: Any, passphrase: Any = False) -> Any:
            # The one private name (tuimail/private_api.py): gpg's process, to time it.
            process = gnupg.GPG._open_subprocess(self, args, passphrase)

            def kill() -> None:
                if process.poll() is None:
                    self.timed_out = True
                    process.kill()

            timer = threading.Timer(timeout, kill)
            timer.daemon = True
            timer.start()
            self._timers.append(timer)
            return process

    try:
        handle = _TimedGPG(options=list(GPG_OPTIONS))
    except (OSError, ValueError) as exc:
        raise GpgUnavailable(f"gpg cannot be run ({exc}); install GnuPG (gpg)") from None
    _finish(handle, "start")
    return handle


def _finish(handle: Any, what: str) -> None:
    for timer in handle._timers:
        timer.cancel()
    handle._timers.clear()
    if handle.timed_out:
        raise GpgUnavailable(f"gpg took longer than {GPG_TIMEOUT:.0f} s to {what}; it was stopped")


#: What gpg says when the user's gpg-agent forbids the loopback pinentry.
_LOOPBACK_REFUSED = "setting pinentry mode 'loopback' failed"
LOOPBACK_REFUSED_WORDS = (
    "the user's gpg-agent refuses the loopback pinentry (no-allow-loopback-pinentry in "
    "gpg-agent.conf), through which tuimail asks for passphrases itself so that no "
    "pinentry takes over the terminal; remove that line (then: gpgconf --kill gpg-agent)"
)


def _listed(handle: Any, pattern: str, secret: bool = False) -> list[dict[str, Any]]:
    try:
        keys = handle.list_keys(secret=secret, keys=[pattern])
    finally:
        _finish(handle, "list keys")
    if secret and _LOOPBACK_REFUSED in str(getattr(keys, "stderr", "")):
        # Without this the secret keys look absent: "no key" would be the wrong words.
        raise SigningKeyUnusable(LOOPBACK_REFUSED_WORDS)
    return list(keys)


def _status_of(key: dict[str, Any]) -> KeyStatus:
    validity = str(key.get("trust", ""))
    caps = str(key.get("cap", ""))
    if validity == "r":
        return KeyStatus.REVOKED
    if validity == "e":
        return KeyStatus.EXPIRED
    if validity == "d" or "D" in caps or "E" not in caps:
        return KeyStatus.UNUSABLE
    return KeyStatus.TRUSTED if validity in ("f", "u") else KeyStatus.UNTRUSTED


def key_for(handle: Any, address: str) -> RecipientKey:
    """The best key in the keyring whose user id has exactly ``address``.

    A key is as good as the worse of itself and its best user id naming the
    address: gpg refuses to encrypt to a revoked user id, and trusts an
    address only when that user id is certified (another certified user id
    of the same key vouches for nothing here). tuimail encrypts to the key's
    fingerprint, so it judges the user id itself, as ``gpg -r`` would.
    """
    order = list(KeyStatus)
    best = RecipientKey(address, KeyStatus.MISSING)
    for key in _listed(handle, f"<{address}>"):
        fingerprint = str(key.get("fingerprint", ""))
        status = max(_status_of(key), _uid_status(handle, fingerprint, address), key=order.index)
        if order.index(status) < order.index(best.status):
            best = RecipientKey(address, status, fingerprint)
    return best


def _uid_status(handle: Any, fingerprint: str, address: str) -> KeyStatus:
    """The best validity among the key's user ids that name ``address`` (MISSING: none).

    Listed by fingerprint, one key alone: python-gnupg keeps each user id's
    validity in one map for the whole listing, keyed by the user id's text,
    so two keys claiming the same user id would share one entry.
    """
    from email.utils import parseaddr

    if not fingerprint:
        return KeyStatus.MISSING
    try:
        listing = handle.list_keys(keys=[fingerprint])
    finally:
        _finish(handle, "list keys")
    wanted = address.lower()
    order = list(KeyStatus)
    best = KeyStatus.MISSING
    for uid, fields in dict(getattr(listing, "uid_map", {})).items():
        text = _from_gpg(str(uid))
        if f"<{wanted}>" not in text.lower() and parseaddr(text)[1].lower() != wanted:
            continue
        validity = str(fields.get("trust", ""))
        status = {
            "r": KeyStatus.REVOKED,
            "e": KeyStatus.EXPIRED,
            "f": KeyStatus.TRUSTED,
            "u": KeyStatus.TRUSTED,
        }.get(validity, KeyStatus.UNTRUSTED)
        best = min(best, status, key=order.index)
    return best


def user_id_status(fingerprint: str, address: str, timeout: float = GPG_TIMEOUT) -> KeyStatus:
    """How the key ``fingerprint`` names ``address``: by a certified user id (TRUSTED), an
    uncertified one (UNTRUSTED), a revoked one, or not at all (MISSING). For the views: a
    valid signature proves the key signed, and only this says the key is the From address's.
    Blocks (gpg): call it in a worker."""
    try:
        handle = gpg(timeout)
        return _uid_status(handle, fingerprint, address)
    except GpgUnavailable:
        return KeyStatus.MISSING


def recipient_keys(addresses: Sequence[str], timeout: float = GPG_TIMEOUT) -> list[RecipientKey]:
    """Each address's key status, in order (for Compose's line and for refusing)."""
    handle = gpg(timeout)
    return [key_for(handle, a) for a in addresses]


def _signing_key(handle: Any, settings: PgpSettings, sender: str) -> tuple[str, str]:
    """(fingerprint, the name in words) of the secret key to sign with."""
    wanted = settings.key or f"<{sender}>"
    for key in _listed(handle, wanted, secret=True):
        fingerprint = str(key.get("fingerprint", ""))
        for public in _listed(handle, fingerprint):
            if _status_of(public) not in (KeyStatus.EXPIRED, KeyStatus.REVOKED) and "S" in str(
                public.get("cap", "")
            ):
                return fingerprint, fingerprint
    raise SigningKeyUnusable(
        f"no secret OpenPGP key that can sign matches {wanted!r} in the keyring "
        "(gpg --list-secret-keys lists them; set the profile's pgp_key or --pgp-key)"
    )


def _check_passphrase(result: Any, key: str, passphrase: str | None) -> None:
    stderr = str(getattr(result, "stderr", ""))
    words = ("BAD_PASSPHRASE", "MISSING_PASSPHRASE", "Bad passphrase", "No passphrase given")
    if any(word in stderr for word in words) or ("NEED_PASSPHRASE" in stderr and not result):
        raise PassphraseNeeded(key, wrong=passphrase is not None)


# -- MIME -------------------------------------------------------------------------------

_CONTENT_HEADER = re.compile(rb"^(content-[!-9;-~]*|mime-version)[ \t]*:", re.I)


def _split(wire: bytes) -> tuple[list[bytes], bytes]:
    """The header fields (each with its folded lines and CRLF) and the body."""
    end = wire.find(b"\r\n\r\n")
    head, body = (wire, b"") if end < 0 else (wire[: end + 2], wire[end + 4 :])
    fields: list[bytes] = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    return fields, body


def _is_content(field: bytes) -> bool:
    return bool(_CONTENT_HEADER.match(field))


def _seven_bit(part: Message) -> None:
    """Re-encode each 7bit leaf with a line ending in white space as quoted-printable.

    The bodies message.py builds are already 7-bit (quoted-printable or base64
    when needed); a plain 7bit one may still end a line with a space ("-- "),
    which RFC 3156 section 5 says must be encoded so no transport strips it.
    """
    import quopri

    for leaf in part.walk():
        if leaf.is_multipart() or leaf.get_content_maintype() == "message":
            continue
        cte = str(leaf.get("Content-Transfer-Encoding", "7bit")).lower()
        payload = leaf.get_payload()
        if cte not in ("7bit", "8bit") or not isinstance(payload, str):
            continue
        if not re.search(r"[ \t]\r?$", payload, re.M) and cte == "7bit":
            continue
        raw = payload.encode("utf-8", "surrogateescape")
        encoded = quopri.encodestring(raw.replace(b"\r\n", b"\n"))
        del leaf["Content-Transfer-Encoding"]
        leaf["Content-Transfer-Encoding"] = "quoted-printable"
        leaf.set_payload(encoded.decode("ascii"))


def _inner(outgoing_wire: bytes, protected_fields: Sequence[bytes], settings: PgpSettings) -> bytes:
    """The message's content as a MIME entity (CRLF, 7-bit), with protected headers if asked."""
    fields, body = _split(outgoing_wire)
    entity = b"".join(f for f in fields if _is_content(f) and not f.lower().startswith(b"mime-"))
    if not entity:
        entity = b"Content-Type: text/plain; charset=us-ascii\r\n"
    part = message_from_bytes(entity + b"\r\n" + body, policy=email_policy.SMTP)
    _seven_bit(part)
    if settings.protected_headers:
        part.set_param("protected-headers", "v1")
    from email.generator import BytesGenerator
    from io import BytesIO

    buffer = BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=email_policy.SMTP).flatten(part)
    data = buffer.getvalue()
    if any(b > 0x7F for b in data):
        raise PgpError(
            "the message has 8-bit content (an attached message) that cannot be signed "
            "7-bit clean as RFC 3156 asks; attach it as a file instead"
        )
    if settings.protected_headers:
        # The fields exactly as outside, not parsed and written again: the email package
        # writes a UTF-8 address (SMTPUTF8) as an encoded word inside the address, which
        # no reader decodes. They are 8-bit only when the message's own headers are.
        end = data.find(b"\r\n\r\n") + 2
        data = data[:end] + b"".join(protected_fields) + data[end:]
    return data


def _boundary(*parts: bytes) -> str:
    while True:
        boundary = f"=-pgp-{secrets.token_hex(12)}"
        if not any(boundary.encode() in p for p in parts):
            return boundary


def _outer(fields: Sequence[bytes], content_type: str, body: bytes) -> bytes:
    kept = b"".join(f for f in fields if not _is_content(f))
    head = kept + b"MIME-Version: 1.0\r\nContent-Type: " + content_type.encode("ascii") + b"\r\n"
    return head + b"\r\n" + body


def _signed(
    handle: Any, inner: bytes, fingerprint: str, passphrase: str | None
) -> tuple[str, bytes]:
    """(the multipart/signed Content-Type value, its body)."""
    try:
        result = handle.sign(
            inner, keyid=fingerprint, detach=True, binary=False, passphrase=_to_gpg(passphrase)
        )
    finally:
        _finish(handle, "sign")
    _check_passphrase(result, fingerprint, passphrase)
    if not result or not result.data:
        raise PgpError(f"gpg could not sign with {fingerprint}: {_gpg_words(result)}")
    micalg = "pgp-" + HASH_NAMES.get(str(result.hash_algo), "sha256")
    boundary = _boundary(inner, result.data)
    body = (
        b"This is an OpenPGP/MIME signed message (RFC 3156).\r\n"
        + f"--{boundary}\r\n".encode()
        + inner
        + f"\r\n--{boundary}\r\n".encode()
        + b'Content-Type: application/pgp-signature; name="signature.asc"\r\n'
        + b"Content-Description: OpenPGP digital signature\r\n"
        + b'Content-Disposition: attachment; filename="signature.asc"\r\n\r\n'
        + result.data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        + f"\r\n--{boundary}--\r\n".encode()
    )
    content_type = (
        f'multipart/signed; micalg="{micalg}";\r\n protocol="application/pgp-signature";'
        f'\r\n boundary="{boundary}"'
    )
    return content_type, body


def _encrypted(handle: Any, inner: bytes, fingerprints: Sequence[str]) -> tuple[str, bytes]:
    """(the multipart/encrypted Content-Type value, its body)."""
    try:
        result = handle.encrypt(inner, list(fingerprints), always_trust=True, armor=True)
    finally:
        _finish(handle, "encrypt")
    if not result or not result.data:
        raise PgpError(f"gpg could not encrypt: {_gpg_words(result)}")
    boundary = _boundary(result.data)
    body = (
        b"This is an OpenPGP/MIME encrypted message (RFC 3156).\r\n"
        + f"--{boundary}\r\n".encode()
        + b"Content-Type: application/pgp-encrypted\r\n"
        + b"Content-Description: PGP/MIME version identification\r\n\r\n"
        + b"Version: 1\r\n\r\n"
        + f"--{boundary}\r\n".encode()
        + b'Content-Type: application/octet-stream; name="encrypted.asc"\r\n'
        + b"Content-Description: OpenPGP encrypted message\r\n"
        + b'Content-Disposition: inline; filename="encrypted.asc"\r\n\r\n'
        + result.data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        + f"\r\n--{boundary}--\r\n".encode()
    )
    content_type = (
        f'multipart/encrypted;\r\n protocol="application/pgp-encrypted";\r\n boundary="{boundary}"'
    )
    return content_type, body


def _gpg_words(result: Any) -> str:
    from tuimail.terminal_text import escape_controls

    if _LOOPBACK_REFUSED in str(getattr(result, "stderr", "")):
        return LOOPBACK_REFUSED_WORDS
    status = str(getattr(result, "status", "") or "").strip()
    lines = [
        line.strip()
        for line in str(getattr(result, "stderr", "")).splitlines()
        if line.startswith("gpg:")
    ]
    return escape_controls(_from_gpg(status or (lines[-1] if lines else "no reason given")))


def _bcc(outgoing: OutgoingMessage) -> list[str]:
    from tuimail.addresses import parse_address_list

    shown: set[str] = set()
    for name in ("To", "Cc"):
        for value in outgoing.message.get_all(name, []):
            try:
                shown.update(a.addr_spec.lower() for a in parse_address_list(str(value)))
            except Exception:
                continue
    return [a for a in outgoing.envelope_recipients if a.lower() not in shown]


def protect(
    outgoing: OutgoingMessage,
    settings: PgpSettings,
    passphrase: str | None = None,
    notes: list[str] | None = None,
) -> OutgoingMessage:
    """The message signed and/or encrypted as ``settings`` ask (see the module's words).

    Raises a :class:`PgpError` (and nothing is sent) when it cannot be done
    as asked; opportunistic encryption that cannot be done is skipped, and
    ``notes`` (when given) gets one line saying so and why (:func:`unencrypted_words`),
    for the faces to put in the transcript: never plaintext in silence.
    """
    if not settings.active:
        return outgoing
    handle = gpg()
    wire = outgoing.to_bytes()
    encrypt = settings.encrypt
    keys: list[RecipientKey] = []
    bcc = _bcc(outgoing)
    if settings.encrypt or settings.opportunistic:
        keys = [key_for(handle, a) for a in outgoing.envelope_recipients]
        if settings.encrypt:
            if bcc:
                raise BccNotEncryptable(bcc)
            problems = [k for k in keys if not k.status.usable]
            if problems:
                raise RecipientKeysUnusable(problems)
        else:
            encrypt = not bcc and all(k.status.usable for k in keys)
            if not encrypt and notes is not None:
                notes.append(unencrypted_words(keys, bcc))
    if not (settings.sign or encrypt):
        return outgoing
    fields, _ = _split(wire)
    protected = [
        f
        for f in fields
        if f.split(b":", 1)[0].strip().decode("ascii", "replace").title()
        in {h.title() for h in PROTECTED_HEADERS}
    ]
    inner = _inner(wire, protected, settings)
    if settings.sign:
        fingerprint, _ = _signing_key(handle, settings, outgoing.envelope_sender)
        content_type, body = _signed(handle, inner, fingerprint, passphrase)
        inner = (
            (b"Content-Type: " + content_type.encode("ascii") + b"\r\n\r\n" + body)
            if encrypt
            else inner
        )
        if not encrypt:
            return replace(outgoing, wire_bytes=_outer(fields, content_type, body))
    own = _own_key(handle, settings, outgoing.envelope_sender)
    fingerprints = list(dict.fromkeys([k.fingerprint for k in keys] + ([own] if own else [])))
    content_type, body = _encrypted(handle, inner, fingerprints)
    if settings.protected_headers:
        fields = [_hidden_subject(f) for f in fields]
    return replace(outgoing, wire_bytes=_outer(fields, content_type, body))


def _own_key(handle: Any, settings: PgpSettings, sender: str) -> str:
    """The sender's own key to encrypt to as well, so the sent copy stays readable ("": none).

    One whose secret key is in the keyring: ``pgp_key`` is a gpg pattern, and an address
    without angle brackets matches as a substring, so among the public keys it would
    also find a stranger's "malice@example.test" and give them every message.
    """
    for secret in _listed(handle, settings.key or f"<{sender}>", secret=True):
        fingerprint = str(secret.get("fingerprint", ""))
        for key in _listed(handle, fingerprint) if fingerprint else []:
            if _status_of(key).usable and str(key.get("fingerprint", "")) == fingerprint:
                return fingerprint
    return ""


def _hidden_subject(field: bytes) -> bytes:
    if field.split(b":", 1)[0].strip().lower() == b"subject":
        return f"Subject: {HIDDEN_SUBJECT}\r\n".encode("ascii")
    return field


def protect_for(
    profile: Profile,
    outgoing: OutgoingMessage,
    passphrase: str | None = None,
    notes: list[str] | None = None,
) -> OutgoingMessage:
    """The message as the profile's OpenPGP fields ask, or as it is when it asks nothing."""
    settings = settings_of(profile)
    return protect(outgoing, settings, passphrase, notes) if settings.active else outgoing


def unencrypted_words(keys: Sequence[RecipientKey], bcc: Sequence[str]) -> str:
    """One line: why opportunistic encryption sends this message unencrypted."""
    lacking = [f"{k.address} ({k.status.words})" for k in keys if not k.status.usable]
    why = []
    if lacking:
        why.append("no usable OpenPGP key for " + ", ".join(lacking))
    if bcc:
        why.append(
            "it has Bcc recipients (" + ", ".join(bcc) + "), who cannot share one encrypted part"
        )
    return "OpenPGP: the message goes UNENCRYPTED (opportunistic encryption): " + "; ".join(
        why or ["not every recipient has a usable key"]
    )


# -- what a message carries, for the transcript ------------------------------------------------


@dataclass(frozen=True)
class PgpSummary:
    """What a PGP/MIME message says of itself: who signed (a key id), to how many keys."""

    signed_by: str = ""
    encrypted_to: tuple[str, ...] = ()
    encrypted: bool = False

    def words(self) -> str:
        said: list[str] = []
        if self.signed_by:
            said.append(f"signed by key {self.signed_by}")
        if self.encrypted:
            n = len(self.encrypted_to)
            keys = ", ".join(self.encrypted_to)
            said.append(f"encrypted to {n} key{'s' if n != 1 else ''} ({keys})")
        return "OpenPGP/MIME: " + "; ".join(s for s in said if s)

    def to_json(self) -> dict[str, object]:
        return {
            "signed_by": self.signed_by,
            "encrypted": self.encrypted,
            "encrypted_to": list(self.encrypted_to),
        }


def _dearmor(text: bytes) -> bytes:
    lines = text.replace(b"\r\n", b"\n").split(b"\n")
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith(b"-----BEGIN PGP"))
    except StopIteration:
        return b""
    body: list[bytes] = []
    in_headers = True
    for line in lines[start + 1 :]:
        if in_headers:
            if not line.strip():
                in_headers = False
            continue
        if line.startswith((b"=", b"-----")):
            break
        body.append(line.strip())
    try:
        return base64.b64decode(b"".join(body))
    except ValueError:
        return b""


def _packets(data: bytes) -> list[tuple[int, bytes]]:
    """The OpenPGP packets (RFC 4880 section 4.2) at the top of ``data``: (tag, body)."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data) and len(out) < 64:
        first = data[i]
        if not first & 0x80:
            break
        if first & 0x40:  # new format
            tag = first & 0x3F
            o = data[i + 1] if i + 1 < len(data) else 0
            if o < 192:
                length, header = o, 2
            elif o < 224 and i + 2 < len(data):
                length, header = ((o - 192) << 8) + data[i + 2] + 192, 3
            elif o == 255:
                length, header = int.from_bytes(data[i + 2 : i + 6], "big"), 6
            else:  # partial lengths: only data packets use them, and they come last
                out.append((tag, b""))
                break
        else:
            tag = (first >> 2) & 0x0F
            size = {0: 1, 1: 2, 2: 4}.get(first & 3)
            if size is None:
                out.append((tag, b""))
                break
            length, header = int.from_bytes(data[i + 1 : i + 1 + size], "big"), 1 + size
        out.append((tag, data[i + header : i + header + length]))
        i += header + length
    return out


def _issuer(signature: bytes) -> str:
    """The issuer fingerprint (or key id) of a v4 signature packet's body."""
    if len(signature) < 6 or signature[0] != 4:
        return ""
    found = ""
    at = 4
    for _ in range(2):  # hashed, then unhashed subpackets
        size = int.from_bytes(signature[at : at + 2], "big")
        area = signature[at + 2 : at + 2 + size]
        at += 2 + size
        j = 0
        while j < len(area):
            length = area[j]
            skip = 1
            if length >= 192 and length < 255 and j + 1 < len(area):
                length, skip = ((length - 192) << 8) + area[j + 1] + 192, 2
            elif length == 255:
                length, skip = int.from_bytes(area[j + 1 : j + 5], "big"), 5
            kind = area[j + skip] & 0x7F if j + skip < len(area) else 0
            value = area[j + skip + 1 : j + skip + length]
            if kind == 33 and value:
                return value[1:].hex().upper()
            if kind == 16 and not found:
                found = value.hex().upper()
            j += skip + length
    return found


def summary(wire: bytes) -> PgpSummary | None:
    """What the message's top-level PGP/MIME structure says (None: not PGP/MIME).

    Read from the bytes, so a retry says the same: the signer of a signed
    message, the key ids an encrypted one is encrypted to (an encrypted
    message's signature is inside, unreadable here).
    """
    head_end = wire.find(b"\r\n\r\n")
    head = wire[: head_end + 2] if head_end >= 0 else wire
    match = re.search(rb"^Content-Type:[ \t]*multipart/(signed|encrypted)", head, re.I | re.M)
    if match is None or b"application/pgp-" not in head.lower():
        return None
    body = wire[head_end + 4 :]
    if match.group(1).lower() == b"signed":
        start = body.find(b"-----BEGIN PGP SIGNATURE-----")
        packets = _packets(_dearmor(body[start:])) if start >= 0 else []
        issuer = next((_issuer(b) for tag, b in packets if tag == 2), "")
        return PgpSummary(signed_by=issuer or "unknown")
    start = body.find(b"-----BEGIN PGP MESSAGE-----")
    packets = _packets(_dearmor(body[start:])) if start >= 0 else []
    ids = tuple(b[1:9].hex().upper() for tag, b in packets if tag == 1 and len(b) >= 9)
    return PgpSummary(encrypted_to=ids, encrypted=True)


# -- reading what arrives: verify and decrypt, for the views --------------------------------------


class SignatureVerdict(enum.StrEnum):
    #: gpg checked the signature with a key in the keyring, and the signed part is unchanged.
    VALID = "valid"
    #: The signed part changed after signing (gpg's BADSIG).
    INVALID = "invalid"
    #: The signer's key is not in the keyring, so the signature cannot be checked.
    UNKNOWN_KEY = "unknown-key"
    #: The signed part is unchanged, but the signer's key has been revoked (REVKEYSIG).
    REVOKED_KEY = "revoked-key"
    #: The signed part is unchanged, made by a key that has expired since (EXPKEYSIG).
    EXPIRED_KEY = "expired-key"
    #: gpg is missing, timed out, or could not read the signature.
    ERROR = "error"


@dataclass(frozen=True)
class PgpVerification:
    """gpg's verdict on a PGP/MIME signature: valid, invalid or by an unknown key, and whose."""

    verdict: SignatureVerdict
    #: The signer's user id as the keyring names it ("" when the key is unknown).
    signer: str = ""
    #: The signing key's fingerprint, or its key id when only that is known.
    key: str = ""
    #: gpg's words when it could not check.
    detail: str = ""

    def words(self) -> str:
        who = self.signer or (f"key {self.key}" if self.key else "an unnamed key")
        if self.verdict is SignatureVerdict.VALID:
            return f"OpenPGP signature valid, signed by {who}"
        if self.verdict is SignatureVerdict.INVALID:
            return f"OpenPGP signature INVALID (the message changed after signing), by {who}"
        if self.verdict is SignatureVerdict.UNKNOWN_KEY:
            return f"OpenPGP signed by an unknown key ({self.key or 'no key id'}): not checked"
        if self.verdict is SignatureVerdict.REVOKED_KEY:
            return f"OpenPGP signature by {who}, whose key is REVOKED: not to be trusted"
        if self.verdict is SignatureVerdict.EXPIRED_KEY:
            return f"OpenPGP signature intact, signed by {who}, but that key has expired since"
        return f"OpenPGP signature not checked: {self.detail}"

    def to_json(self) -> dict[str, object]:
        return {
            "verdict": self.verdict.value,
            "signer": self.signer,
            "key": self.key,
            "detail": self.detail,
        }


def _crlf(wire: bytes) -> bytes:
    return wire if b"\r\n" in wire else wire.replace(b"\n", b"\r\n")


def _top_parts(wire: bytes, kind: str) -> list[bytes] | None:
    """The parts of a top-level ``multipart/<kind>`` PGP/MIME message, exactly as they are
    on the wire (RFC 3156 section 5: the bytes signed), or None when it is not one."""
    wire = _crlf(wire)
    head_end = wire.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    message = message_from_bytes(wire[: head_end + 4], policy=email_policy.compat32)
    if message.get_content_type() != f"multipart/{kind}":
        return None
    if not str(message.get_param("protocol", "")).lower().startswith("application/pgp-"):
        return None
    boundary = message.get_boundary()
    if not boundary:
        return None
    pieces = (b"\r\n" + wire[head_end + 4 :]).split(b"\r\n--" + boundary.encode())
    parts = [p[2:] if p.startswith(b"\r\n") else p for p in pieces[1:-1]]
    return parts if len(parts) >= 2 else None


def verify(wire: bytes, timeout: float = GPG_TIMEOUT) -> PgpVerification | None:
    """Check a ``multipart/signed`` PGP/MIME message's signature with the user's gpg.

    None when the message is not PGP/MIME signed. Blocks (gpg, a temporary
    file for the detached signature, removed afterwards): call it in a worker.
    """
    import tempfile
    from pathlib import Path

    parts = _top_parts(wire, "signed")
    if parts is None:
        return None
    signed, signature = parts[0], parts[1]
    start = signature.find(b"-----BEGIN PGP SIGNATURE-----")
    if start < 0:
        return PgpVerification(SignatureVerdict.ERROR, detail="the signature part is empty")
    try:
        handle = gpg(timeout)
    except GpgUnavailable as exc:
        return PgpVerification(SignatureVerdict.ERROR, detail=str(exc))
    with tempfile.TemporaryDirectory(prefix="tuimail-pgp-") as tmp:
        sig_file = Path(tmp, "signature.asc")
        sig_file.write_bytes(signature[start:])
        result = handle.verify_data(str(sig_file), signed)
    try:
        _finish(handle, "verify")
    except GpgUnavailable as exc:
        return PgpVerification(SignatureVerdict.ERROR, detail=str(exc))
    key = str(result.fingerprint or result.key_id or "")
    signer = _words(str(result.username or ""))
    if result.valid and len(parts) != 2:
        # RFC 3156: the content and the signature, nothing else. A part added after the
        # signature is shown with the message but covered by nothing: "valid" would vouch
        # for it.
        return PgpVerification(
            SignatureVerdict.INVALID,
            signer,
            key,
            f"the multipart/signed has {len(parts)} parts where RFC 3156 has two: "
            "what follows the signature was added, unsigned",
        )
    if result.valid:
        return PgpVerification(SignatureVerdict.VALID, signer, key)
    status = str(result.status or "")
    # REVKEYSIG or EXPKEYSIG, then VALIDSIG: the signature checks, by a withdrawn key.
    tokens = set(re.findall(r"^\[GNUPG:\] ([A-Z_]+)", str(result.stderr or ""), re.M))
    if "VALIDSIG" in tokens and "REVKEYSIG" in tokens:
        return PgpVerification(SignatureVerdict.REVOKED_KEY, signer, key)
    if "VALIDSIG" in tokens and "EXPKEYSIG" in tokens:
        return PgpVerification(SignatureVerdict.EXPIRED_KEY, signer, key)
    if status == "signature bad":
        return PgpVerification(SignatureVerdict.INVALID, signer, key)
    if status == "no public key":
        return PgpVerification(SignatureVerdict.UNKNOWN_KEY, key=str(result.key_id or key))
    return PgpVerification(SignatureVerdict.ERROR, signer, key, _gpg_words(result))


def _words(text: str) -> str:
    from tuimail.terminal_text import escape_controls

    return escape_controls(_from_gpg(text))[:200]


def _from_gpg(text: str) -> str:
    """Text python-gnupg read from gpg, as gpg wrote it: python-gnupg decodes gpg's
    streams as Latin-1 (so any byte reads), and gpg writes user ids in UTF-8, so
    "Jörg" arrives as "JÃ¶rg". A user id that is not UTF-8 (an old key's Latin-1, which
    RFC 4880 does not allow) stays as Latin-1 read it."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not from gpg's stream (already text), or not UTF-8
        return text


def _to_gpg(passphrase: str | None) -> str | None:
    """The passphrase as python-gnupg must be given it for gpg to read its UTF-8 bytes
    (python-gnupg writes it as Latin-1: each UTF-8 byte as one Latin-1 character).
    Typed "Grüße" was refused as wrong, and "日本" raised UnicodeEncodeError."""
    return None if passphrase is None else passphrase.encode("utf-8").decode("latin-1")


def decrypt(wire: bytes, timeout: float = GPG_TIMEOUT) -> bytes:
    """The MIME entity inside a ``multipart/encrypted`` PGP/MIME message, for display
    (:func:`decrypted`, without the signature the OpenPGP message may carry)."""
    return decrypted(wire, timeout)[0]


#: gpg's status tokens that speak of a signature (DETAILS in GnuPG's documentation).
_SIGNATURE_TOKENS = frozenset({"GOODSIG", "BADSIG", "ERRSIG", "EXPKEYSIG", "REVKEYSIG", "VALIDSIG"})


def _embedded_verdict(result: Any) -> PgpVerification | None:
    """gpg's verdict on a signature inside the OpenPGP message it decrypted (RFC 3156
    section 6.2, signed and encrypted at once), from its status tokens; None: unsigned."""
    tokens = set(re.findall(r"^\[GNUPG:\] ([A-Z_]+)", str(result.stderr or ""), re.M))
    if not tokens & _SIGNATURE_TOKENS:
        return None
    key = str(result.fingerprint or result.key_id or "")
    signer = _words(str(result.username or ""))
    if "BADSIG" in tokens:
        return PgpVerification(SignatureVerdict.INVALID, signer, key)
    if "VALIDSIG" in tokens and "REVKEYSIG" in tokens:
        return PgpVerification(SignatureVerdict.REVOKED_KEY, signer, key)
    if "VALIDSIG" in tokens and "EXPKEYSIG" in tokens:
        return PgpVerification(SignatureVerdict.EXPIRED_KEY, signer, key)
    if "VALIDSIG" in tokens and "GOODSIG" in tokens:
        return PgpVerification(SignatureVerdict.VALID, signer, key)
    if "NO_PUBKEY" in tokens:
        return PgpVerification(SignatureVerdict.UNKNOWN_KEY, key=str(result.key_id or key))
    return PgpVerification(SignatureVerdict.ERROR, signer, key, _gpg_words(result))


def decrypted(
    wire: bytes, timeout: float = GPG_TIMEOUT, passphrase: str | None = None
) -> tuple[bytes, PgpVerification | None]:
    """The MIME entity inside a ``multipart/encrypted`` PGP/MIME message, for display,
    and gpg's verdict on a signature in the OpenPGP message itself (None when unsigned;
    a multipart/signed inside is checked by :func:`verify`).

    Decrypted by the user's gpg with a key from their keyring (an agent that
    holds the passphrase, a key without one, or ``passphrase``, which goes to
    gpg's stdin as for signing: gpg never prompts here). Returned, never
    written anywhere. Raises :class:`DecryptKeyLocked` when the key is locked
    (and ``passphrase`` is missing or wrong), :class:`PgpError` with gpg's words
    otherwise.
    """
    parts = _top_parts(wire, "encrypted")
    if parts is None:
        raise PgpError("the message is not OpenPGP/MIME encrypted")
    data = parts[1]
    start = data.find(b"-----BEGIN PGP MESSAGE-----")
    if start < 0:
        raise PgpError("the encrypted part holds no OpenPGP message")
    from tuimail.message import MAX_MESSAGE_BYTES

    handle = gpg(timeout)
    # A compressed packet may hold far more than the message (200 MB of zeros fit in
    # 200 kB): gpg stops writing past the largest message tuimail handles, so the
    # clear text read into memory is bounded too.
    limit = ["--max-output", str(MAX_MESSAGE_BYTES)]
    try:
        result = handle.decrypt(data[start:], passphrase=_to_gpg(passphrase), extra_args=limit)
    finally:
        _finish(handle, "decrypt")
    if len(result.data) >= MAX_MESSAGE_BYTES:
        raise PgpError(
            f"it decrypts to more than {MAX_MESSAGE_BYTES // (1024 * 1024)} MiB; not shown"
        )
    if not result.ok:
        _raise_if_locked(result, passphrase)
        raise PgpError(_undecrypted_words(result))
    return bytes(result.data), _embedded_verdict(result)


def _raise_if_locked(result: Any, passphrase: str | None) -> None:
    """:class:`DecryptKeyLocked` when gpg stopped for a passphrase (status tokens, the
    same in every language), naming the key from NEED_PASSPHRASE."""
    stderr = str(getattr(result, "stderr", ""))
    if _LOOPBACK_REFUSED in stderr:
        return
    tokens = set(re.findall(r"^\[GNUPG:\] ([A-Z_]+)", stderr, re.M))
    # With a passphrase given on stdin, gpg 2.2+ says only "ERROR pkdecrypt_failed CODE",
    # whose low 16 bits are libgpg-error's GPG_ERR_BAD_PASSPHRASE (11).
    codes = re.findall(r"^\[GNUPG:\] ERROR pkdecrypt_failed (\d+)", stderr, re.M)
    if any(int(code) & 0xFFFF == 11 for code in codes):
        tokens.add("BAD_PASSPHRASE")
    if not tokens & {"NEED_PASSPHRASE", "MISSING_PASSPHRASE", "BAD_PASSPHRASE"}:
        return
    if not result.data and "DECRYPTION_OKAY" not in tokens:
        need = re.search(r"^\[GNUPG:\] NEED_PASSPHRASE [0-9A-F]+ ([0-9A-F]+)", stderr, re.M)
        key = need.group(1) if need else ""
        if passphrase is not None:
            words = f"the passphrase given does not unlock your secret key {key}".replace(" .", ".")
        else:
            words = _undecrypted_words(result)
        raise DecryptKeyLocked(words.strip(), key, wrong=passphrase is not None)


def _undecrypted_words(result: Any) -> str:
    """Why gpg did not decrypt, from its status tokens (the same in every language)."""
    stderr = str(getattr(result, "stderr", ""))
    if _LOOPBACK_REFUSED in stderr:
        return f"gpg could not decrypt it: {LOOPBACK_REFUSED_WORDS}"
    tokens = set(re.findall(r"^\[GNUPG:\] ([A-Z_]+)", stderr, re.M))
    if tokens & {"NEED_PASSPHRASE", "MISSING_PASSPHRASE", "BAD_PASSPHRASE"}:
        return (
            "your secret key for it is locked, and gpg-agent does not hold its passphrase; "
            "the app (F5's x) asks for it; elsewhere, unlock the key with gpg (any "
            "gpg --decrypt or gpg --sign asks once), then decrypt again"
        )
    if "NO_SECKEY" in tokens:
        return "it is not encrypted to any secret key in your keyring (it is for others)"
    return f"gpg could not decrypt it: {_gpg_words(result)}"


def key_names(key_ids: Sequence[str], timeout: float = GPG_TIMEOUT) -> dict[str, str]:
    """The keyring's first user id for each key id (an encryption subkey's id names its key);
    ids not in the keyring are left out. Blocks: call it in a worker."""
    if not key_ids:
        return {}
    try:
        handle = gpg(timeout)
    except GpgUnavailable:
        return {}
    names: dict[str, str] = {}
    for key_id in list(key_ids)[:16]:
        try:
            found = _listed(handle, key_id)
        except GpgUnavailable:
            break
        uids = found[0].get("uids") if found else None
        if uids:
            names[key_id] = _words(str(uids[0]))
    return names
