"""A private CA and a server certificate for the sandbox, made on first use.

The sandbox's TLS is real TLS: clients verify it against ``ca.pem`` (the
built-in sandbox profile does), so testing STARTTLS locally does not teach
anyone to switch verification off. The files live in the data dir, the key
with mode 0600, and are renewed when they are close to expiry.

Several sandboxes may share the data dir and start at the same moment. The
files are checked, made and loaded under an exclusive lock on ``.lock`` in
their directory, so one process makes them and the others use what it made;
and they are used only when they belong together (the key is the
certificate's, the certificate is the CA's), else made afresh, so a set left
mixed by an older version or by hand heals itself.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import os
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tuimail import paths
from tuimail.atomic import atomic_write_bytes
from tuimail.errors import TuimailError

RENEW_WITHIN = datetime.timedelta(days=30)
VALIDITY = datetime.timedelta(days=825)
#: How long to wait for another process making the certificate.
LOCK_TIMEOUT = 30.0


class CertificateError(TuimailError):
    """The certificate files cannot be made or used; the message says why."""


@dataclass(frozen=True)
class CertificateFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def default_directory() -> Path:
    return paths.data_dir() / "sandbox" / "tls"


def ensure_certificate(directory: Path | None = None) -> CertificateFiles:
    """Return the sandbox certificate files, creating or renewing them as needed."""
    return load_server_context(directory)[1]


def load_server_context(directory: Path | None = None) -> tuple[ssl.SSLContext, CertificateFiles]:
    """A server TLS context from the sandbox certificate, made first if missing or unusable.

    Check, make and load happen under one lock, so a context never pairs one
    process's key with another's certificate.
    """
    directory = directory or default_directory()
    files = CertificateFiles(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    try:
        paths.ensure_private_dir(directory, tighten=False)
        with _locked(directory / ".lock"):
            if not _usable(files):
                _generate(files)
            return _server_context(files), files
    except OSError as exc:
        raise CertificateError(
            f"cannot make the sandbox certificate in {directory}: {exc.strerror or exc}"
        ) from None


def _server_context(files: CertificateFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(files.cert_file, files.key_file)
    except ssl.SSLError as exc:
        raise CertificateError(
            f"cannot use the sandbox certificate in {files.cert_file.parent}: {exc}"
        ) from None
    return context


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file``, waiting at most :data:`LOCK_TIMEOUT`."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CertificateError(
                        f"another process has held {lock_file} for {LOCK_TIMEOUT:g} seconds "
                        "while making the sandbox certificate; try again, or remove the "
                        "directory if no tuimail is running"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _usable(files: CertificateFiles) -> bool:
    """All three files exist, belong together, and the certificate is not about to expire."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
        ca_cert = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
        key = serialization.load_pem_private_key(files.key_file.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = serialization.Encoding.PEM
    if key.public_key().public_bytes(pem, public) != cert.public_key().public_bytes(pem, public):
        return False
    return cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > RENEW_WITHIN


def _generate(files: CertificateFiles) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tuimail sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, "tuimail sandbox CA"),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    atomic_write_bytes(
        files.key_file,
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        mode=0o600,
    )
    atomic_write_bytes(files.cert_file, cert.public_bytes(pem), mode=0o644)
    atomic_write_bytes(files.ca_file, ca_cert.public_bytes(pem), mode=0o644)
