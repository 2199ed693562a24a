"""DKIM signatures (RFC 6376) on outgoing mail, made with dkimpy.

A profile that names ``dkim_domain``, ``dkim_selector`` and ``dkim_key``
signs every message it sends: relaxed/relaxed canonicalisation, rsa-sha256
or ed25519-sha256 (RFC 8463) as the key is, From signed twice (so a second
From added on the way breaks the signature) and the other headers of
:data:`DEFAULT_HEADERS` that the message has.

The signature is the last change to a message: it is put above the bytes
that ``message.py`` (or ``eml.py``) built and checked, and those signed
bytes are what the outbox stores. A retry therefore sends the very same
bytes, with the Date and Message-ID that were signed; nothing re-signs.

The private key is a secret like a password. It is read from a file that
only its owner may read (``dkim_key = "/path/to/key.pem"``) or from the
keyring (``dkim_key = "keyring"``: the entry ``<profile>/dkim-key`` of the
service ``tuimail``, stored by ``tuimail dkim import-key`` or ``tuimail dkim
keygen --keyring``). It lives in a :class:`SigningKey` that never prints
itself, and errors about it never quote it. dkimpy and cryptography are
imported only when a message is signed or a key is made.
"""

from __future__ import annotations

import base64
import enum
import functools
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from tuimail.errors import TuimailError

if TYPE_CHECKING:
    from tuimail.message import OutgoingMessage
    from tuimail.profiles import Profile

#: The headers signed when a profile does not list its own, in this order;
#: those the message lacks are left out. From comes first and is signed a
#: second time at the end (oversigned, RFC 6376 section 8.15).
DEFAULT_HEADERS = (
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Reply-To",
    "In-Reply-To",
    "References",
)
#: ``dkim_key`` naming the keyring instead of a file.
KEYRING = "keyring"
#: The largest key file read: an RSA 8192 key in PEM is under 7 KB.
MAX_KEY_FILE = 64 * 1024
#: RFC 8301: verifiers do not accept RSA keys under 1024 bits.
MIN_RSA_BITS = 1024
#: RFC 1035: one character-string of a TXT record holds at most 255 bytes.
TXT_STRING_MAX = 255
#: Headers dkimpy (and RFC 6376 section 5.4) will not sign.
UNSIGNABLE = frozenset(
    {"return-path", "received", "comments", "keywords", "bcc", "resent-bcc", "dkim-signature"}
)


class KeyType(enum.StrEnum):
    RSA = "rsa"
    ED25519 = "ed25519"

    @property
    def algorithm(self) -> str:
        """The ``a=`` tag of a signature made with this kind of key."""
        return "rsa-sha256" if self is KeyType.RSA else "ed25519-sha256"


class DkimKeyError(TuimailError):
    """The private key cannot be used (missing, unreadable, too open, not a key).

    ``source`` is where it was looked for (a path, or the keyring entry);
    the message never quotes the key.
    """

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"the DKIM key {source}: {problem}")
        self.source = source
        self.problem = problem


class DkimSigningError(TuimailError):
    """dkimpy refused to sign this message; the message says why (never the key)."""


def key_entry(profile_name: str) -> str:
    """The keyring entry (service ``tuimail``) holding ``profile_name``'s DKIM key."""
    return f"{profile_name}/dkim-key"


@dataclass(frozen=True)
class DkimSettings:
    """What to sign with: domain, selector, where the key is, the headers to sign."""

    domain: str
    selector: str
    #: A path (``~`` allowed), or :data:`KEYRING`.
    key: str
    #: Empty: :data:`DEFAULT_HEADERS`.
    headers: tuple[str, ...] = ()
    #: The profile whose keyring entry holds the key, when ``key`` is :data:`KEYRING`.
    profile_name: str = ""

    @property
    def key_path(self) -> Path:
        """The key file: ``~`` expanded, a relative path taken from the config dir
        (as a profile's ``signature_file`` is)."""
        from tuimail import paths

        path = Path(self.key).expanduser()
        return path if path.is_absolute() else paths.config_dir() / path

    @property
    def key_source(self) -> str:
        """Where the key is, in words: its path, or its keyring entry."""
        if self.key == KEYRING:
            return f"in the keyring (entry {key_entry(self.profile_name)!r})"
        return repr(str(self.key_path))


def settings_of(profile: Profile) -> DkimSettings | None:
    """The profile's DKIM settings, or None when it does not sign.

    The profile was validated (tuimail/profiles.py): the three fields are
    all set or all empty, and the header list is usable.
    """
    if not profile.dkim_domain:
        return None
    headers = tuple(h.strip() for h in profile.dkim_headers.split(",") if h.strip())
    return DkimSettings(
        profile.dkim_domain.lower().rstrip("."),
        profile.dkim_selector,
        profile.dkim_key,
        headers,
        profile.name,
    )


class SigningKey:
    """A DKIM private key, in the form dkimpy signs with; never printed, never pickled.

    ``material`` is PKCS#1 PEM for RSA and the base64 of the 32-byte seed for
    Ed25519 (dkimpy's forms). ``bits`` is the RSA modulus size (256 for Ed25519).
    """

    __slots__ = ("_material", "bits", "kind")

    def __init__(self, kind: KeyType, material: bytes, bits: int) -> None:
        self.kind = kind
        self.bits = bits
        self._material = material

    def reveal(self) -> bytes:
        return self._material

    def __repr__(self) -> str:
        return f"SigningKey({self.kind.value}, ********)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a SigningKey cannot be pickled")


def parse_key(pem: bytes, source: str) -> SigningKey:
    """A PEM private key (PKCS#8 or PKCS#1, RSA or Ed25519) as a :class:`SigningKey`.

    Raises :class:`DkimKeyError` naming ``source``; the cause is dropped so a
    traceback cannot carry the bytes.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise DkimKeyError(
            source,
            "is encrypted with a passphrase; DKIM signing needs it without "
            "(openssl pkey -in KEY -out NEW, then chmod 600 NEW)",
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise DkimKeyError(
            source, "is not a PEM private key (RSA or Ed25519, as 'tuimail dkim keygen' writes)"
        ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise DkimKeyError(
                source,
                f"is an RSA key of {key.key_size} bits; receivers ignore signatures made "
                f"with fewer than {MIN_RSA_BITS} (2048 is usual)",
            )
        material = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return SigningKey(KeyType.RSA, material, key.key_size)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return SigningKey(KeyType.ED25519, base64.b64encode(seed), 256)
    raise DkimKeyError(source, "is neither an RSA nor an Ed25519 key (DKIM signs with those)")


def read_key_file(path: Path) -> bytes:
    """The bytes of a private key file that only its owner can read.

    A key that others can read is refused as OpenSSH refuses one, and a
    FIFO or huge file is refused without waiting (tuimail/small_files.py).
    """
    from tuimail.small_files import NotReadable, read_small_file

    source = repr(str(path))
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        data = read_small_file(path, MAX_KEY_FILE)
    except FileNotFoundError:
        raise DkimKeyError(source, "does not exist") from None
    except NotReadable as exc:
        raise DkimKeyError(source, exc.words) from None
    except OSError as exc:
        raise DkimKeyError(source, f"cannot be read ({exc.strerror or exc})") from None
    if mode & 0o077:
        raise DkimKeyError(
            source,
            f"can be read or changed by other users (mode {mode:04o}); "
            f"make it private with: chmod 600 {path}",
        )
    return data


def load_key(settings: DkimSettings) -> SigningKey:
    """The signing key the settings name, from its file or the keyring.

    Raises :class:`DkimKeyError`; a keyring that cannot be used is one too
    (its words say what to do about it).
    """
    if settings.key != KEYRING:
        path = settings.key_path
        return parse_key(read_key_file(path), repr(str(path)))
    from tuimail.credentials import CredentialStore, KeyringError

    source = settings.key_source
    if not settings.profile_name:
        raise DkimKeyError(source, "only a saved profile has a keyring entry")
    try:
        secret = CredentialStore().get(key_entry(settings.profile_name))
    except KeyringError as exc:
        raise DkimKeyError(source, f"cannot be read: {exc}") from None
    if secret is None:
        raise DkimKeyError(
            source,
            "is not there; store it with "
            f"'tuimail dkim import-key {settings.profile_name} KEYFILE'",
        )
    return parse_key(secret.reveal().encode(), source)


def header_names(wire: bytes) -> list[str]:
    """The names of the top-level headers of ``wire``, in order."""
    end = wire.find(b"\r\n\r\n")
    head = wire if end < 0 else wire[: end + 2]
    return [
        m.group(1).decode("ascii", "replace")
        for m in re.finditer(rb"^([!-9;-~]+)[ \t]*:", head, re.MULTILINE)
    ]


def headers_to_sign(wire: bytes, wanted: Sequence[str]) -> list[str]:
    """The ``h=`` list: each wanted header the message has, as many times as it has
    it, and From once more (oversigned)."""
    present = [name.lower() for name in header_names(wire)]
    chosen: list[str] = []
    for name in wanted or DEFAULT_HEADERS:
        count = present.count(name.lower())
        if name.lower() in {c.lower() for c in chosen}:
            continue
        chosen.extend([name] * count)
    return [*chosen, "From"]


def sign_bytes(wire: bytes, settings: DkimSettings, key: SigningKey) -> bytes:
    """``wire`` with a DKIM-Signature header put on top.

    Raises :class:`DkimSigningError` when dkimpy refuses (a header it must
    not sign, a message it cannot parse); its error text is kept, the
    traceback's chain is not (it would hold the key's bytes).
    """
    import dkim

    included = headers_to_sign(wire, settings.headers)
    try:
        header = dkim.sign(
            wire,
            settings.selector.encode("ascii"),
            settings.domain.encode("ascii"),
            key.reveal(),
            canonicalize=(b"relaxed", b"relaxed"),
            signature_algorithm=key.kind.algorithm.encode("ascii"),
            include_headers=[name.encode("ascii") for name in included],
        )
    except dkim.DKIMException as exc:
        raise DkimSigningError(f"the message could not be DKIM-signed: {exc}") from None
    return bytes(header) + wire


def sign_outgoing(outgoing: OutgoingMessage, settings: DkimSettings) -> OutgoingMessage:
    """The message with its signature: the same envelope, the signed bytes.

    The key is read here, once per message; a problem with it is a
    :class:`DkimKeyError` raised before anything is stored or sent.
    """
    key = load_key(settings)
    return replace(outgoing, wire_bytes=sign_bytes(outgoing.to_bytes(), settings, key))


def signed_for(profile: Profile, outgoing: OutgoingMessage) -> OutgoingMessage:
    """The message signed as the profile says, or as it is when the profile does not sign."""
    settings = settings_of(profile)
    return outgoing if settings is None else sign_outgoing(outgoing, settings)


_SIGNATURE_RE = re.compile(rb"^DKIM-Signature[ \t]*:((?:.*\r?\n(?:[ \t].*\r?\n)*))", re.I | re.M)


@dataclass(frozen=True)
class SignatureSummary:
    """What the top DKIM-Signature of a message says: who signed, how, which headers."""

    domain: str
    selector: str
    algorithm: str
    canonicalization: str
    headers: tuple[str, ...]
    #: The From address's domain ("" when the message has no one From domain).
    from_domain: str = ""
    #: Whether d= is the From domain or of its organisation (DMARC's relaxed alignment);
    #: None when there is no From domain to compare.
    aligned: bool | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "domain": self.domain,
            "selector": self.selector,
            "algorithm": self.algorithm,
            "canonicalization": self.canonicalization,
            "headers": list(self.headers),
            "from_domain": self.from_domain,
            "aligned": self.aligned,
        }

    def words(self) -> str:
        said = (
            f"DKIM signature d={self.domain} s={self.selector} ({self.algorithm}, "
            f"{self.canonicalization}) signs the headers: {', '.join(self.headers)}"
        )
        if self.aligned is False:
            said += (
                f"; d={self.domain} is not the From domain {self.from_domain} nor of its "
                "organisation: receivers checking DMARC will not count this signature"
            )
        return said


def _alignment(head: bytes, domain: str) -> tuple[str, bool | None]:
    """(the From domain, whether ``domain`` is of its organisation by the public suffix
    list, as DMARC's relaxed alignment asks (RFC 7489 section 3.1.1)). The inbox's check
    (tuimail/inbox/authcheck.py) judges arriving mail the same way; it is not imported
    here, since it imports the session that imports this module."""
    from email.parser import BytesHeaderParser
    from email.policy import compat32
    from email.utils import getaddresses

    values = BytesHeaderParser(policy=compat32).parsebytes(head + b"\r\n").get_all("From")
    addresses = [a for _, a in getaddresses([str(v) for v in values or []]) if a]
    if len(values or []) != 1 or len(addresses) != 1 or "@" not in addresses[0] or not domain:
        return "", None
    found = addresses[0].rpartition("@")[2].strip().rstrip(".").lower()
    ours = domain.rstrip(".").lower()
    if not found:
        return "", None
    return found, found == ours or _organisation(found) == _organisation(ours)


@functools.cache
def _public_suffixes() -> Any:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def _organisation(domain: str) -> str:
    found = _public_suffixes().privatesuffix(domain)
    return str(found) if found else domain


def signature_summary(wire: bytes) -> SignatureSummary | None:
    """The message's first DKIM-Signature (the last one added), read from its bytes.

    For the transcript: a retry reads it again from the stored bytes, so it
    says the same. None when the message carries none.
    """
    end = wire.find(b"\r\n\r\n")
    head = wire[: end + 2] if end >= 0 else wire
    match = _SIGNATURE_RE.search(head)
    if match is None:
        return None
    value = re.sub(rb"\s+", b"", match.group(1)).decode("ascii", "replace")
    tags: dict[str, str] = {}
    for part in value.split(";"):
        name, sep, tag_value = part.partition("=")
        if sep:
            tags.setdefault(name, tag_value)
    from tuimail.terminal_text import escape_controls

    def tag(name: str, default: str = "") -> str:
        return escape_controls(tags.get(name, default))

    domain = tag("d")
    from_domain, aligned = _alignment(head, domain)
    return SignatureSummary(
        domain=domain,
        selector=tag("s"),
        algorithm=tag("a"),
        canonicalization=tag("c", "simple/simple"),
        headers=tuple(h for h in tag("h").split(":") if h),
        from_domain=escape_controls(from_domain),
        aligned=aligned,
    )


# -- key generation ----------------------------------------------------------------


@dataclass(frozen=True)
class NewKey:
    """A key pair just made: the private key as PEM (a secret), the TXT record to publish."""

    kind: KeyType
    private_pem: SigningKey
    #: The TXT record's text, before it is split into strings.
    record: str


def generate_key(kind: KeyType, bits: int = 2048) -> NewKey:
    """A new key pair and its DNS record (``v=DKIM1; k=...; p=...``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if kind is KeyType.RSA:
        if bits < MIN_RSA_BITS or bits > 8192:
            raise ValueError(f"an RSA key of {MIN_RSA_BITS} to 8192 bits")
        private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = rsa.generate_private_key(
            public_exponent=65537, key_size=bits
        )
        # The SubjectPublicKeyInfo, as every DKIM key record carries it.
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        private = ed25519.Ed25519PrivateKey.generate()
        # RFC 8463: the bare 32-byte public key.
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    record = f"v=DKIM1; k={kind.value}; p={base64.b64encode(public).decode('ascii')}"
    return NewKey(kind, SigningKey(kind, pem, bits if kind is KeyType.RSA else 256), record)


def txt_strings(record: str) -> list[str]:
    """The record split into character-strings of at most 255 bytes (RFC 1035)."""
    return [record[i : i + TXT_STRING_MAX] for i in range(0, len(record), TXT_STRING_MAX)]


def zone_line(domain: str, selector: str, record: str) -> str:
    """The record as a zone-file line, its strings quoted: what to publish."""
    strings = " ".join(f'"{s}"' for s in txt_strings(record))
    return f"{selector}._domainkey.{domain.rstrip('.')}. IN TXT ( {strings} )"


def write_new_key(path: Path, key: SigningKey) -> None:
    """Write the private key to a new file, mode 0600; an existing file is never replaced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, key.reveal())
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
