"""S/MIME (RFC 8551): sign and encrypt outgoing mail; verify and decrypt what arrives.

Signing makes a detached ``multipart/signed`` (``protocol=
"application/pkcs7-signature"; micalg=sha-256``) and encrypting an
``application/pkcs7-mime; smime-type=enveloped-data`` part (AES-256-CBC,
the key wrapped for each recipient's RSA certificate); with both, the
signed message is encrypted (sign then encrypt). The CMS structures are
made by the cryptography package's PKCS#7 builders (DER output); the MIME
around them is written here, byte for byte, because the builders' own
S/MIME output names the old ``application/x-pkcs7-signature`` type and
its signed part must be exactly the bytes that were signed.

What is protected is the message's MIME entity: its ``Content-*`` headers
and body. The other headers (From, To, Subject, Date, Message-ID) stay
outside, readable, as RFC 8551 has them. An 8-bit part is re-encoded as
quoted-printable before signing, since a relay that converts it to 7 bits
would break the signature.

Keys and certificates come from PEM files the profile names
(``smime_cert``, ``smime_key``, tuimail/profiles.py); a key file that others
can read is refused, and an encrypted key's passphrase comes from the
profile's ``smime_passphrase_command`` (tuimail/secret_command.py) or the
keyring entry ``<profile>/smime-key-passphrase`` of the service ``tuimail``.
The passphrase is never in an argument list, a log or an error.

Recipients' certificates come from a directory of PEM files
(``smime_recipient_certs``), matched by the certificate's e-mail addresses
(subjectAltName rfc822Name and the subject's emailAddress). One that has
expired or is not valid yet is refused with its dates; so is a non-RSA one
(cryptography's envelope builder wraps keys for RSA only). Bcc recipients
are refused for encryption: an enveloped message lists every recipient's
certificate, so each recipient would learn who else could read it.

cryptography cannot verify S/MIME signatures, so :func:`verify_smime` runs
``openssl cms -verify`` (OpenSSL's command line) with a timeout in a
temporary directory. Decryption for display is cryptography's
(:func:`decrypt_smime`). Everything here blocks; callers run it in a thread.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import enum
import os
import secrets
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from email.utils import getaddresses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuimail.errors import TuimailError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

    from tuimail.message import OutgoingMessage
    from tuimail.profiles import Profile

#: The largest certificate or key file read (a chain of a few certificates).
MAX_PEM_FILE = 256 * 1024
#: Files read from a recipients' certificate directory.
MAX_DIRECTORY_FILES = 5000
#: The file names taken as certificates in that directory.
CERT_SUFFIXES = (".pem", ".crt", ".cer")
#: Seconds ``openssl`` may take to verify one message.
OPENSSL_TIMEOUT = 20.0
#: Characters of openssl's own words quoted in a result.
OPENSSL_WORDS_LIMIT = 500


class SmimeError(TuimailError):
    """The message cannot be signed or encrypted as asked; the words say why."""


class SmimeKeyError(SmimeError):
    """The user's certificate or key (or its passphrase) cannot be used.

    ``source`` is where it was looked for; the words never quote a key or a
    passphrase.
    """

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"the S/MIME {source}: {problem}")
        self.source = source
        self.problem = problem


class SmimePassphraseNeeded(SmimeKeyError):
    """The key is encrypted and neither a command nor the keyring gives its passphrase
    (or the one typed, ``wrong``, does not open it): a face may ask the user for it."""

    def __init__(self, source: str, problem: str, wrong: bool = False) -> None:
        super().__init__(source, problem)
        self.wrong = wrong


class SmimeRecipientError(SmimeError):
    """Some recipients have no usable certificate; ``problems`` maps each to why.

    Encryption is refused as a whole: a message is never sent in plaintext
    to some recipients because they lack a certificate.
    """

    def __init__(self, problems: dict[str, str]) -> None:
        listed = "; ".join(f"{addr}: {why}" for addr, why in problems.items())
        super().__init__(f"cannot encrypt with S/MIME to every recipient ({listed})")
        self.problems = dict(problems)


def passphrase_entry(profile_name: str) -> str:
    """The keyring entry (service ``tuimail``) holding the S/MIME key's passphrase."""
    return f"{profile_name}/smime-key-passphrase"


@dataclass(frozen=True)
class SmimeSettings:
    """What to do and with which files; paths as the profile wrote them."""

    sign: bool
    encrypt: bool
    cert: str = ""
    key: str = ""
    recipient_certs: str = ""
    passphrase_command: str = ""
    profile_name: str = ""

    def path(self, value: str) -> Path:
        """``~`` expanded; a relative path is taken from the config dir (as ``dkim_key``)."""
        from tuimail import paths

        path = Path(value).expanduser()
        return path if path.is_absolute() else paths.config_dir() / path


def settings_of(profile: Profile) -> SmimeSettings | None:
    """The profile's S/MIME settings, or None when it neither signs nor encrypts."""
    if not (profile.smime_sign or profile.smime_encrypt):
        return None
    return SmimeSettings(
        sign=profile.smime_sign,
        encrypt=profile.smime_encrypt,
        cert=profile.smime_cert,
        key=profile.smime_key,
        recipient_certs=profile.smime_recipient_certs,
        passphrase_command=profile.smime_passphrase_command,
        profile_name=profile.name,
    )


# -- files --------------------------------------------------------------------


def _read_pem(path: Path, what: str, *, private: bool) -> bytes:
    from tuimail.small_files import NotReadable, read_small_file

    source = f"{what} {str(path)!r}"
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        data = read_small_file(path, MAX_PEM_FILE)
    except FileNotFoundError:
        raise SmimeKeyError(source, "does not exist") from None
    except NotReadable as exc:
        raise SmimeKeyError(source, exc.words) from None
    except OSError as exc:
        raise SmimeKeyError(source, f"cannot be read ({exc.strerror or exc})") from None
    if private and mode & 0o077:
        raise SmimeKeyError(
            source,
            f"can be read or changed by other users (mode {mode:04o}); "
            f"make it private with: chmod 600 {path}",
        )
    return data


def _load_certificates(data: bytes) -> list[x509.Certificate]:
    from cryptography import x509

    try:
        return list(x509.load_pem_x509_certificates(data))
    except ValueError:
        return []


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def validity_problem(cert: x509.Certificate, now: datetime.datetime | None = None) -> str:
    """Why ``cert`` cannot be used today ("" when it can)."""
    now = now or _now()
    if now < cert.not_valid_before_utc:
        return f"its certificate is not valid until {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    if now > cert.not_valid_after_utc:
        return f"its certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    return ""


def certificate_emails(cert: x509.Certificate) -> list[str]:
    """The addresses a certificate is for: its rfc822Name SANs and subject emailAddress."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    found: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        found.extend(str(v) for v in san.value.get_values_for_type(x509.RFC822Name))
    except (x509.ExtensionNotFound, ValueError):
        pass
    for attribute in cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS):
        found.append(str(attribute.value))
    return list(dict.fromkeys(addr.strip().lower() for addr in found if addr.strip()))


def describe(cert: x509.Certificate) -> str:
    """The certificate's subject, as the transcript and the views say it."""
    from cryptography.x509.oid import NameOID

    from tuimail.terminal_text import escape_controls

    names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    emails = certificate_emails(cert)
    if names and emails:
        words = f"{_cut(names[0])} <{_cut(emails[0])}>"
    else:
        words = names[0] if names else emails[0] if emails else cert.subject.rfc4514_string()
    return escape_controls(_cut(words))


#: The most characters of a certificate's name or address a view shows: whoever made the
#: certificate chose them, and a 10 kB common name would fill the screen.
MOST_NAME_CHARS = 200


def _cut(text: str) -> str:
    return text if len(text) <= MOST_NAME_CHARS else text[: MOST_NAME_CHARS - 1] + "…"


def shown_emails(cert: x509.Certificate) -> tuple[str, ...]:
    """The certificate's addresses for a view: escaped, each cut, at most eight."""
    from tuimail.terminal_text import escape_controls

    return tuple(escape_controls(_cut(a)) for a in certificate_emails(cert)[:8])


@dataclass
class Signer:
    """The user's certificate (with any chain after it) and private key."""

    cert: x509.Certificate
    chain: list[x509.Certificate]
    key: Any = dataclasses.field(repr=False)

    def __reduce__(self) -> Any:
        raise TypeError("a Signer cannot be pickled")


def _passphrase(settings: SmimeSettings, source: str) -> bytes:
    if settings.passphrase_command:
        from tuimail.secret_command import SecretCommandError, run_secret_command

        try:
            printed = run_secret_command(
                settings.passphrase_command, setting="smime_passphrase_command"
            )
        except SecretCommandError as exc:
            raise SmimeKeyError(source, f"no passphrase: {exc}") from None
        return printed.reveal().encode()
    entry = passphrase_entry(settings.profile_name)
    how = (
        f"store it with 'tuimail smime passphrase {settings.profile_name}' "
        "or set smime_passphrase_command"
    )
    if not settings.profile_name:
        raise SmimePassphraseNeeded(
            source, "is encrypted with a passphrase; set smime_passphrase_command"
        )
    from tuimail.credentials import CredentialStore, KeyringError

    try:
        secret = CredentialStore().get(entry)
    except KeyringError:
        raise SmimePassphraseNeeded(
            source,
            f"is encrypted with a passphrase, and the keyring (entry {entry!r}) cannot be "
            "used here; set smime_passphrase_command to a command that prints it",
        ) from None
    if secret is None:
        raise SmimePassphraseNeeded(
            source,
            f"is encrypted with a passphrase, and the keyring has none (entry {entry!r}); {how}",
        )
    return secret.reveal().encode()


def _open_encrypted_key(pem: bytes, passphrase: bytes, source: str) -> PrivateKeyTypes:
    """Decrypt a key known to be encrypted, whatever the wrong passphrase looks like.

    The key already asked for a passphrase, so any failure now is the
    passphrase's (or a damaged file's). OpenSSL's message for it varies: about
    one wrong passphrase in 256 decrypts to bytes with valid padding, which then
    fail as "could not deserialize", so the reason cannot be read from the text.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(pem, password=passphrase)
    except (ValueError, UnsupportedAlgorithm):
        raise SmimeKeyError(source, "the passphrase does not open it") from None


def load_signer(settings: SmimeSettings, passphrase: str | None = None) -> Signer:
    """The user's certificate and key, checked to belong together and be valid now.

    ``passphrase``: what the user typed for an encrypted key (the app's masked
    dialog), used instead of the command or keyring; one that does not open
    the key raises :class:`SmimePassphraseNeeded` with ``wrong`` set."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if not settings.cert or not settings.key:
        raise SmimeKeyError("certificate", "is needed: set smime_cert and smime_key")
    cert_path = settings.path(settings.cert)
    certs = _load_certificates(_read_pem(cert_path, "certificate", private=False))
    cert_source = f"certificate {str(cert_path)!r}"
    if not certs:
        raise SmimeKeyError(cert_source, "holds no PEM certificate")
    problem = validity_problem(certs[0])
    if problem:
        raise SmimeKeyError(cert_source, problem.replace("its certificate", "it", 1))
    key_path = settings.path(settings.key)
    source = f"key {str(key_path)!r}"
    pem = _read_pem(key_path, "key", private=True)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        if passphrase is None:
            key = _open_encrypted_key(pem, _passphrase(settings, source), source)
        else:
            try:
                key = _open_encrypted_key(pem, passphrase.encode(), source)
            except SmimeKeyError:
                raise SmimePassphraseNeeded(
                    source, "the passphrase given does not open it", wrong=True
                ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise SmimeKeyError(source, "is not a PEM private key") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise SmimeKeyError(source, "is neither an RSA nor an EC key (S/MIME signs with those)")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, public) != certs[0].public_key().public_bytes(
        der, public
    ):
        raise SmimeKeyError(source, f"does not belong to the certificate {str(cert_path)!r}")
    return Signer(certs[0], certs[1:], key)


class CertificateDirectory:
    """The recipients' certificates: every PEM file of a directory, by e-mail address."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.by_address: dict[str, list[x509.Certificate]] = {}
        source = f"recipients' certificate directory {str(directory)!r}"
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            raise SmimeKeyError(source, "does not exist") from None
        except OSError as exc:
            raise SmimeKeyError(source, f"cannot be read ({exc.strerror or exc})") from None
        from tuimail.small_files import read_small_file

        for name in names[:MAX_DIRECTORY_FILES]:
            if not name.lower().endswith(CERT_SUFFIXES):
                continue
            try:
                data = read_small_file(directory / name, MAX_PEM_FILE)
            except OSError:
                continue  # a broken file is one certificate fewer, named as missing
            for cert in _load_certificates(data):
                for address in certificate_emails(cert):
                    self.by_address.setdefault(address, []).append(cert)

    def choose(self, address: str, now: datetime.datetime | None = None) -> x509.Certificate | str:
        """The certificate to encrypt to ``address``, or why there is none."""
        from cryptography.hazmat.primitives.asymmetric import rsa

        candidates = self.by_address.get(address.lower(), [])
        if not candidates:
            return f"no certificate for it in {str(self.directory)!r}"
        valid = [c for c in candidates if not validity_problem(c, now)]
        if not valid:
            return validity_problem(candidates[-1], now)
        usable = [c for c in valid if isinstance(c.public_key(), rsa.RSAPublicKey)]
        if not usable:
            kind = type(valid[0].public_key()).__name__.removeprefix("_").replace("PublicKey", "")
            return (
                f"its certificate has a {kind or 'non-RSA'} key; S/MIME encryption here "
                "needs an RSA certificate (cryptography's PKCS#7 envelope wraps keys for RSA only)"
            )
        return max(usable, key=lambda c: c.not_valid_after_utc)


# -- the MIME entity ------------------------------------------------------------------


def _split_headers(wire: bytes) -> tuple[list[bytes], bytes]:
    """The header fields (each with its folded lines and CRLF) and the body."""
    end = wire.find(b"\r\n\r\n")
    if end < 0:
        head, body = wire, b""
    else:
        head, body = wire[: end + 2], wire[end + 4 :]
    fields: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields, body


def _is_content_field(field: bytes) -> bool:
    name = field.split(b":", 1)[0].strip().lower()
    return name.startswith(b"content-")


def _is_mime_version(field: bytes) -> bool:
    return field.split(b":", 1)[0].strip().lower() == b"mime-version"


def split_entity(wire: bytes) -> tuple[list[bytes], bytes]:
    """The message's outer headers (not Content-*, not MIME-Version) and its MIME entity."""
    fields, body = _split_headers(wire)
    outer = [f for f in fields if not _is_content_field(f) and not _is_mime_version(f)]
    inner = [f for f in fields if _is_content_field(f)]
    if not inner:
        inner = [b"Content-Type: text/plain; charset=us-ascii\r\n"]
    return outer, b"".join(inner) + b"\r\n" + body


def seven_bit(entity: bytes, needs_smtputf8: bool) -> bytes:
    """``entity`` with each 8-bit or binary leaf part re-encoded as quoted-printable
    (base64 for non-text), so no relay changes the bytes that were signed."""
    if all(b < 0x80 for b in entity) and b"\0" not in entity:
        return entity
    from email import message_from_bytes
    from email.message import EmailMessage

    from tuimail.message import WIRE_POLICY, WIRE_POLICY_UTF8, render

    policy = WIRE_POLICY_UTF8 if needs_smtputf8 else WIRE_POLICY
    part = message_from_bytes(entity, _class=EmailMessage, policy=policy)
    for leaf in part.walk():
        if leaf.is_multipart() or leaf.get_content_maintype() == "message":
            continue
        cte = str(leaf.get("Content-Transfer-Encoding", "7bit")).strip().lower()
        if cte not in ("8bit", "binary"):
            continue
        data = leaf.get_payload(decode=True)
        assert isinstance(data, bytes)
        del leaf["Content-Transfer-Encoding"]
        if leaf.get_content_maintype() == "text":
            import quopri

            encoded = quopri.encodestring(data.replace(b"\r\n", b"\n")).decode("ascii")
            leaf.set_payload(encoded)
            leaf["Content-Transfer-Encoding"] = "quoted-printable"
        else:
            leaf.set_payload(base64.encodebytes(data).decode("ascii"))
            leaf["Content-Transfer-Encoding"] = "base64"
    rendered = render(part, needs_smtputf8)
    # render writes the MIME-Version the parsed entity does not have only for a
    # whole message; an entity keeps just its Content-* headers.
    fields, body = _split_headers(rendered)
    return b"".join(f for f in fields if _is_content_field(f)) + b"\r\n" + body


def _boundary(entity: bytes) -> bytes:
    while True:
        boundary = f"----smime-{secrets.token_hex(12)}".encode()
        if boundary not in entity:
            return boundary


def _base64_lines(data: bytes) -> bytes:
    text = base64.b64encode(data)
    return b"".join(text[i : i + 76] + b"\r\n" for i in range(0, len(text), 76))


def sign_entity(entity: bytes, signer: Signer) -> bytes:
    """A detached ``multipart/signed`` entity whose first part is ``entity`` as signed."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    builder = pkcs7.PKCS7SignatureBuilder().set_data(entity)
    builder = builder.add_signer(signer.cert, signer.key, hashes.SHA256())
    for extra in signer.chain:
        builder = builder.add_certificate(extra)
    signature = builder.sign(
        serialization.Encoding.DER,
        [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
    )
    boundary = _boundary(entity)
    head = (
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature";\r\n'
        b' micalg=sha-256; boundary="' + boundary + b'"\r\n\r\n'
    )
    return (
        head
        + b"This is an S/MIME signed message.\r\n\r\n--"
        + boundary
        + b"\r\n"
        + entity
        + b"\r\n--"
        + boundary
        + b"\r\n"
        + b'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n"
        + b'Content-Disposition: attachment; filename="smime.p7s"\r\n\r\n'
        + _base64_lines(signature)
        + b"\r\n--"
        + boundary
        + b"--\r\n"
    )


def encrypt_entity(entity: bytes, recipients: Sequence[x509.Certificate]) -> bytes:
    """An ``application/pkcs7-mime; smime-type=enveloped-data`` entity (AES-256-CBC)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.ciphers import algorithms
    from cryptography.hazmat.primitives.serialization import pkcs7

    builder = pkcs7.PKCS7EnvelopeBuilder().set_data(entity)
    for cert in recipients:
        builder = builder.add_recipient(cert)
    builder = builder.set_content_encryption_algorithm(algorithms.AES256)
    der = builder.encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    return (
        b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data;\r\n"
        b' name="smime.p7m"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="smime.p7m"\r\n\r\n' + _base64_lines(der)
    )


def _header_addresses(outgoing: OutgoingMessage, *names: str) -> set[str]:
    values: list[str] = []
    for name in names:
        values.extend(str(v) for v in outgoing.message.get_all(name, []))
    return {addr.lower() for _, addr in getaddresses(values) if addr}


def recipient_certificates(
    outgoing: OutgoingMessage, settings: SmimeSettings, own: x509.Certificate | None
) -> list[x509.Certificate]:
    """A certificate for each envelope recipient (and the sender's own RSA one, so the
    sent copy stays readable); raises :class:`SmimeRecipientError` naming who lacks one."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not settings.recipient_certs:
        raise SmimeKeyError(
            "recipients' certificates", "are needed to encrypt: set smime_recipient_certs"
        )
    visible = _header_addresses(outgoing, "To", "Cc")
    hidden = [a for a in outgoing.envelope_recipients if a.lower() not in visible]
    if hidden:
        raise SmimeError(
            "S/MIME encryption is refused with Bcc recipients "
            f"({', '.join(hidden)}): the encrypted message lists every recipient's "
            "certificate, which would tell the others who else got it; "
            "send them a separate message"
        )
    directory = CertificateDirectory(settings.path(settings.recipient_certs))
    chosen: list[x509.Certificate] = []
    problems: dict[str, str] = {}
    for address in dict.fromkeys(a.lower() for a in outgoing.envelope_recipients):
        found = directory.choose(address)
        if isinstance(found, str):
            problems[address] = found
        else:
            chosen.append(found)
    if problems:
        raise SmimeRecipientError(problems)
    own_usable = own is not None and isinstance(own.public_key(), rsa.RSAPublicKey)
    if own is not None and own_usable and not validity_problem(own):
        chosen.append(own)
    unique: dict[bytes, x509.Certificate] = {}
    for cert in chosen:
        unique.setdefault(cert.fingerprint(_sha256()), cert)
    return list(unique.values())


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def protect_bytes(
    wire: bytes,
    *,
    needs_smtputf8: bool,
    signer: Signer | None,
    recipients: Sequence[x509.Certificate],
) -> bytes:
    """The message signed (when ``signer``) and then encrypted (when ``recipients``)."""
    outer, entity = split_entity(wire)
    if signer is not None:
        entity = sign_entity(seven_bit(entity, needs_smtputf8), signer)
    if recipients:
        entity = encrypt_entity(entity, recipients)
    return b"".join(outer) + b"MIME-Version: 1.0\r\n" + entity


def protect_outgoing(outgoing: OutgoingMessage, settings: SmimeSettings) -> OutgoingMessage:
    """The message as the settings say, the envelope unchanged.

    Everything that can fail (files, passphrase, certificates) is checked
    before anything is built, so a refusal leaves nothing half-made.
    """
    signer = load_signer(settings) if settings.sign else None
    own: x509.Certificate | None = signer.cert if signer else None
    if settings.encrypt and own is None and settings.cert:
        certs = _load_certificates(
            _read_pem(settings.path(settings.cert), "certificate", private=False)
        )
        own = certs[0] if certs else None
    recipients = recipient_certificates(outgoing, settings, own) if settings.encrypt else []
    wire = protect_bytes(
        outgoing.to_bytes(),
        needs_smtputf8=outgoing.needs_smtputf8,
        signer=signer,
        recipients=recipients,
    )
    return replace(outgoing, wire_bytes=wire)


def protected_for(profile: Profile, outgoing: OutgoingMessage) -> OutgoingMessage:
    """The message as the profile's S/MIME settings say, or as it is."""
    settings = settings_of(profile)
    return outgoing if settings is None else protect_outgoing(outgoing, settings)


# -- reading back: what the transcript and the views say ----------------------------


def _der_items(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) of each DER element in ``data`` (definite lengths only)."""
    items: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        tag = data[i]
        length = data[i + 1]
        i += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4:
                raise ValueError("indefinite or huge length")
            length = int.from_bytes(data[i : i + count], "big")
            i += count
        if i + length > len(data):
            raise ValueError("truncated")
        items.append((tag, data[i : i + length]))
        i += length
    return items


def enveloped_recipient_count(der: bytes) -> int | None:
    """How many RecipientInfos a CMS EnvelopedData (RFC 5652) holds; None if not one."""
    try:
        ((_, content_info),) = _der_items(der)
        _, explicit = _der_items(content_info)[:2]
        ((_, enveloped),) = _der_items(explicit[1])
        parts = _der_items(enveloped)
        index = 1
        if parts[index][0] == 0xA0:  # originatorInfo
            index += 1
        tag, recipient_infos = parts[index]
        if tag != 0x31:
            return None
        return len(_der_items(recipient_infos))
    except (ValueError, IndexError):
        return None


@dataclass(frozen=True)
class RecipientId:
    """How one RecipientInfo of an EnvelopedData names the certificate it is for
    (RFC 5652 section 6.2.1): by issuer and serial number, or by subject key
    identifier; ``kind`` is "other" for key agreement, KEK or password recipients."""

    kind: str
    issuer: bytes = b""
    serial: int | None = None
    key_id: bytes = b""


#: RecipientInfos named one by one (a hostile message may list thousands).
MOST_RECIPIENTS_NAMED = 16


def enveloped_recipient_ids(der: bytes) -> list[RecipientId] | None:
    """The RecipientInfos of a CMS EnvelopedData, each as the certificate it names.

    Read with the DER reader above rather than a library: cryptography reads
    no EnvelopedData but its own decryption's, asn1crypto is not a dependency,
    and ``openssl cms -cmsout -print`` prints a text meant for people, not for
    parsing. The reader takes definite lengths only and checks every length
    against what is left, so a hostile structure ends as None, never a hang.
    """
    try:
        ((_, content_info),) = _der_items(der)
        _, explicit = _der_items(content_info)[:2]
        ((_, enveloped),) = _der_items(explicit[1])
        parts = _der_items(enveloped)
        index = 1
        if parts[index][0] == 0xA0:  # originatorInfo
            index += 1
        tag, recipient_infos = parts[index]
        if tag != 0x31:
            return None
        found: list[RecipientId] = []
        for info_tag, info in _der_items(recipient_infos)[:MOST_RECIPIENTS_NAMED]:
            if info_tag != 0x30:  # [1] kari, [2] kekri, [3] pwri, [4] ori
                found.append(RecipientId("other"))
                continue
            rid_tag, rid = _der_items(info)[1]
            if rid_tag == 0x80:  # [0] subjectKeyIdentifier
                found.append(RecipientId("ktri", key_id=rid))
            elif rid_tag == 0x30:
                (issuer_tag, issuer), (serial_tag, serial) = _der_items(rid)[:2]
                if issuer_tag != 0x30 or serial_tag != 0x02:
                    return None
                issuer_der = _der_item(0x30, issuer)
                found.append(
                    RecipientId("ktri", issuer_der, int.from_bytes(serial, "big", signed=True))
                )
            else:
                found.append(RecipientId("other"))
        return found
    except (ValueError, IndexError):
        return None


def _der_item(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


#: Short names of the attributes an issuer is usually named by (RFC 4514, and emailAddress).
_NAME_OIDS = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "1.2.840.113549.1.9.1": "emailAddress",
}


def _oid(content: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for byte in content[:64]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return "?"
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def _name_words(issuer_der: bytes) -> str:
    """An issuer Name (DER) as "CN=..., O=...", read from the message: escaped and cut."""
    from tuimail.terminal_text import escape_controls

    words: list[str] = []
    try:
        ((_, rdns),) = _der_items(issuer_der)
        for _, rdn in _der_items(rdns)[:16]:
            for _, attribute in _der_items(rdn)[:4]:
                (oid_tag, oid), (value_tag, value) = _der_items(attribute)[:2]
                if oid_tag != 0x06:
                    continue
                if value_tag == 0x1E:
                    text = value.decode("utf-16-be", "replace")
                else:
                    text = value.decode("utf-8" if value_tag == 0x0C else "latin-1", "replace")
                name = _NAME_OIDS.get(_oid(oid), _oid(oid))
                words.append(f"{name}={text}")
    except (ValueError, IndexError):
        return "an unreadable name"
    return escape_controls(_cut(", ".join(words) or "an empty name"))


def _subject_key_id(cert: x509.Certificate) -> bytes:
    from cryptography import x509

    try:
        return bytes(
            cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        )
    except (x509.ExtensionNotFound, ValueError):
        return b""


def recipient_names(
    ids: Sequence[RecipientId],
    own: Sequence[x509.Certificate],
    others: Sequence[x509.Certificate],
) -> tuple[str, ...]:
    """Each recipient in words: the matching certificate's subject and address (one of
    ``own`` said to be yours), else the issuer and serial number the message gives."""
    named: list[str] = []
    for rid in ids:
        if rid.kind != "ktri":
            named.append("a recipient of another kind (key agreement, KEK or password)")
            continue
        match = ""
        for yours, certs in ((True, own), (False, others)):
            for cert in certs:
                if rid.key_id:
                    hit = rid.key_id == _subject_key_id(cert)
                else:
                    hit = (
                        rid.serial == cert.serial_number
                        and rid.issuer == cert.issuer.public_bytes()
                    )
                if hit:
                    match = describe(cert) + (" (your certificate)" if yours else "")
                    break
            if match:
                break
        if not match:
            if rid.key_id:
                match = f"an unknown certificate (subject key id {rid.key_id.hex()[:64]})"
            else:
                serial = f"{rid.serial:X}"[:64] if rid.serial is not None else "?"
                match = (
                    f"an unknown certificate (issuer {_name_words(rid.issuer)}, serial {serial})"
                )
        named.append(match)
    return tuple(named)


def enveloped_recipients_of(wire: bytes) -> list[RecipientId] | None:
    """:func:`enveloped_recipient_ids` of an ``application/pkcs7-mime`` message's body."""
    message = _message(wire)
    if message.get_content_type() not in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
        return None
    payload = message.get_payload(decode=True)
    return enveloped_recipient_ids(payload) if isinstance(payload, bytes) else None


def known_certificates(
    profiles: Iterable[Profile],
) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """(the users' own certificates, those in the recipients' directories) of
    ``profiles``, to name who an encrypted message is for. Files that cannot be
    read are skipped: naming is a help, not a check. Reads files: in a thread."""
    from tuimail.small_files import read_small_file

    own: list[x509.Certificate] = []
    others: list[x509.Certificate] = []
    directories: list[str] = []
    for profile in profiles:
        settings = SmimeSettings(False, False, profile_name=profile.name)
        if profile.smime_cert:
            with contextlib.suppress(OSError):  # unreadable: that one is not named
                own += _load_certificates(
                    read_small_file(settings.path(profile.smime_cert), MAX_PEM_FILE)
                )[:1]
        if profile.smime_recipient_certs and profile.smime_recipient_certs not in directories:
            directories.append(profile.smime_recipient_certs)
            try:
                directory = CertificateDirectory(settings.path(profile.smime_recipient_certs))
            except SmimeKeyError:
                continue
            for certs in directory.by_address.values():
                others += [c for c in certs if c not in others]
    return own, others


def _message(wire: bytes) -> Any:
    from email import message_from_bytes
    from email.policy import compat32

    return message_from_bytes(wire, policy=compat32)


class SmimeKind(enum.StrEnum):
    SIGNED = "signed"
    ENCRYPTED = "encrypted"


@dataclass(frozen=True)
class SmimeSummary:
    """What a message's S/MIME wrapping says from outside: signed as whom, or encrypted to how many."""

    kind: SmimeKind
    #: The signer's certificate subject (signed), "" otherwise.
    signer: str = ""
    #: Certificates the message is encrypted to (encrypted); 0 when unreadable.
    recipients: int = 0

    def words(self) -> str:
        if self.kind is SmimeKind.SIGNED:
            return f"S/MIME signed as {self.signer or 'an unknown certificate'}"
        return (
            f"S/MIME encrypted to {self.recipients} certificate"
            f"{'' if self.recipients == 1 else 's'} (anything signed inside is hidden too)"
        )

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind.value, "signer": self.signer, "recipients": self.recipients}


def smime_summary(wire: bytes) -> SmimeSummary | None:
    """The message's S/MIME wrapping, read from its bytes (None when it has none)."""
    head_end = wire.find(b"\r\n\r\n")
    head = wire[: head_end if head_end >= 0 else len(wire)].lower()
    if b"pkcs7" not in head:
        return None
    message = _message(wire)
    ctype = message.get_content_type()
    if ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
        if str(message.get_param("smime-type", "")).lower() == "signed-data":
            return SmimeSummary(SmimeKind.SIGNED)  # opaque signing: openssl reads the signer
        payload = message.get_payload(decode=True)
        count = enveloped_recipient_count(payload) if isinstance(payload, bytes) else None
        return SmimeSummary(SmimeKind.ENCRYPTED, recipients=count or 0)
    if ctype == "multipart/signed" and "pkcs7" in str(message.get_param("protocol", "")):
        from cryptography.hazmat.primitives.serialization import pkcs7

        parts = message.get_payload()
        signer = ""
        if isinstance(parts, list) and len(parts) == 2:
            der = parts[1].get_payload(decode=True)
            try:
                certs = pkcs7.load_der_pkcs7_certificates(der) if der else []
            except ValueError:
                certs = []
            if certs:
                signer = describe(certs[0])
        return SmimeSummary(SmimeKind.SIGNED, signer=signer)
    return None


class Verdict(enum.StrEnum):
    #: The signature matches and the signer's certificate chains to the CA file.
    VALID = "valid"
    #: The signature matches, but the certificate is not trusted (no CA file, or another CA).
    UNTRUSTED = "untrusted"
    #: The message was changed after signing, or the signature is broken.
    INVALID = "invalid"
    #: Not an S/MIME signed message.
    NOT_SIGNED = "not-signed"
    #: openssl is missing, timed out or could not read the message.
    ERROR = "error"


@dataclass(frozen=True)
class VerifyResult:
    """What ``openssl cms -verify`` said about a message's signature."""

    verdict: Verdict
    #: The signer's certificate subject and e-mail addresses, when openssl named them.
    signer: str = ""
    signer_emails: tuple[str, ...] = ()
    #: openssl's words (escaped, cut) when it refused, or why it could not run.
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "verdict": self.verdict.value,
            "signer": self.signer,
            "signer_emails": list(self.signer_emails),
            "detail": self.detail,
        }

    def words(self) -> str:
        who = f" by {self.signer}" if self.signer else ""
        if self.verdict is Verdict.VALID:
            return f"S/MIME signature valid{who}"
        if self.verdict is Verdict.UNTRUSTED:
            return f"S/MIME signature intact{who}, but the certificate is not trusted"
        if self.verdict is Verdict.INVALID:
            return f"S/MIME signature INVALID{who}: the message changed after signing"
        if self.verdict is Verdict.NOT_SIGNED:
            return "no S/MIME signature"
        return f"S/MIME signature not checked: {self.detail}"


def _openssl(args: Iterable[str], cwd: str, message: bytes) -> tuple[int, str]:
    """Run openssl on ``message`` given on its stdin: a decrypted message checked
    here is clear text, which must never be put in a file."""
    from tuimail.terminal_text import escape_controls

    process = subprocess.run(
        ["openssl", *args],
        cwd=cwd,
        input=message,
        capture_output=True,
        timeout=OPENSSL_TIMEOUT,
        check=False,
    )
    words = process.stderr.decode("utf-8", "replace").strip()
    return process.returncode, escape_controls(words)[:OPENSSL_WORDS_LIMIT]


#: openssl's words for a signature that does not match the content.
_BROKEN_WORDS = ("digest failure", "signature failure", "verification failure", "verify error")


def verify_smime(message_bytes: bytes, ca_file: Path | None = None) -> VerifyResult:
    """Check the S/MIME signature of a message with ``openssl cms -verify``.

    ``ca_file`` holds the trusted CA certificates (PEM); without it, or when
    the chain does not lead there, an intact signature is
    :attr:`Verdict.UNTRUSTED`. Runs openssl with a timeout, the message on its
    stdin and the signed content thrown away (the message may be one just
    decrypted: clear text never goes to a file); only the signer's
    certificate is written, in a temporary directory removed afterwards. Blocks.
    """
    summary = smime_summary(message_bytes)
    if summary is None or summary.kind is not SmimeKind.SIGNED:
        return VerifyResult(Verdict.NOT_SIGNED)
    if shutil.which("openssl") is None:
        return VerifyResult(Verdict.ERROR, detail="openssl is not installed")
    with tempfile.TemporaryDirectory(prefix="tuimail-smime-") as tmp:
        base = ["cms", "-verify", "-inform", "SMIME"]
        base += ["-signer", "signer.pem", "-out", os.devnull, "-purpose", "smimesign"]
        try:
            if ca_file is not None:
                code, words = _openssl(
                    [*base, "-CAfile", str(ca_file.absolute())], tmp, message_bytes
                )
            else:
                code, words = 1, "no CA file given"
            verdict = Verdict.VALID
            if code != 0:
                intact, loose_words = _openssl([*base, "-noverify"], tmp, message_bytes)
                if intact == 0:
                    verdict = Verdict.UNTRUSTED
                elif any(sign in loose_words for sign in _BROKEN_WORDS):
                    return VerifyResult(Verdict.INVALID, detail=loose_words)
                else:
                    return VerifyResult(Verdict.ERROR, detail=loose_words or words)
        except subprocess.TimeoutExpired:
            return VerifyResult(Verdict.ERROR, detail=f"openssl took over {OPENSSL_TIMEOUT:g}s")
        except OSError as exc:
            return VerifyResult(Verdict.ERROR, detail=f"openssl could not run: {exc.strerror}")
        certs = _load_certificates(Path(tmp, "signer.pem").read_bytes())
    signer = describe(certs[0]) if certs else ""
    emails = shown_emails(certs[0]) if certs else ()
    return VerifyResult(verdict, signer, emails, "" if verdict is Verdict.VALID else words)


def decrypt_smime(message_bytes: bytes, signer: Signer) -> bytes:
    """The MIME entity inside an enveloped message, decrypted with the user's key.

    For display: the result is a MIME entity (a signed one can be given to
    :func:`verify_smime`). Raises :class:`SmimeError` when the message is not
    encrypted to this certificate or cannot be read.
    """
    from cryptography.hazmat.primitives.serialization import pkcs7

    message = _message(message_bytes)
    if message.get_content_type() not in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
        raise SmimeError("the message is not S/MIME encrypted")
    der = message.get_payload(decode=True)
    try:
        return bytes(pkcs7.pkcs7_decrypt_der(der, signer.cert, signer.key, []))
    except (ValueError, TypeError) as exc:
        raise SmimeError(f"the message cannot be decrypted with this certificate: {exc}") from None


def smime_json(message_bytes: bytes, ca_file: Path | None = None) -> dict[str, object] | None:
    """For a view's JSON: the wrapping (:func:`smime_summary`) and, when signed, what
    :func:`verify_smime` says; None when the message has no S/MIME."""
    summary = smime_summary(message_bytes)
    if summary is None:
        return None
    document = summary.to_json()
    if summary.kind is SmimeKind.SIGNED:
        document["verification"] = verify_smime(message_bytes, ca_file).to_json()
    return document


@dataclass(frozen=True)
class SmimeReading:
    """A captured or sent message as a view shows it: its wrapping, what is inside
    when the user's key opens it, and whether its signature holds."""

    summary: SmimeSummary | None
    #: The decrypted MIME entity, when the message was encrypted to the user's certificate.
    decrypted: bytes | None = None
    #: Why an encrypted message was not decrypted ("" when it was, or was not encrypted).
    decrypt_problem: str = ""
    #: The signature's check: of the message, or of what decrypting it gave.
    verification: VerifyResult | None = None


def signer_of(profile: Profile, passphrase: str | None = None) -> Signer | None:
    """The profile's own certificate and key, for decrypting; None when it names none.

    Raises :class:`SmimeKeyError` as signing does (a passphrase may be asked
    of its command or the keyring); :class:`SmimePassphraseNeeded` when neither
    gives one, so the app can ask (``passphrase``: what the user typed).
    """
    if not (profile.smime_cert and profile.smime_key):
        return None
    return load_signer(
        SmimeSettings(
            sign=True,
            encrypt=False,
            cert=profile.smime_cert,
            key=profile.smime_key,
            passphrase_command=profile.smime_passphrase_command,
            profile_name=profile.name,
        ),
        passphrase,
    )


def read_smime(
    message_bytes: bytes, *, ca_file: Path | None = None, signer: Signer | None = None
) -> SmimeReading:
    """Everything a view says about a message's S/MIME: decrypted with ``signer``'s key
    when it is encrypted (sign-then-encrypt: the inner signature is checked too)."""
    summary = smime_summary(message_bytes)
    if summary is None:
        return SmimeReading(None)
    if summary.kind is SmimeKind.SIGNED:
        return SmimeReading(summary, verification=verify_smime(message_bytes, ca_file))
    if signer is None:
        return SmimeReading(summary, decrypt_problem="no S/MIME key of yours to decrypt it with")
    try:
        inner = decrypt_smime(message_bytes, signer)
    except SmimeError as exc:
        return SmimeReading(summary, decrypt_problem=str(exc))
    inside = smime_summary(inner)
    signed = inside is not None and inside.kind is SmimeKind.SIGNED
    return SmimeReading(
        summary, decrypted=inner, verification=verify_smime(inner, ca_file) if signed else None
    )
