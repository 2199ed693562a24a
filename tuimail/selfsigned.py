"""A private CA and a server certificate for the sandbox, made on first use.

The sandbox's TLS is real TLS: clients verify it against ``ca.pem`` (the
built-in sandbox profile does), so testing STARTTLS locally does not teach
anyone to switch verification off. The files live in the data dir, the key
with mode 0600, and are renewed when they are close to expiry.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from tuimail import paths
from tuimail.atomic import atomic_write_bytes
from tuimail.maildir import make_private_dirs

RENEW_WITHIN = datetime.timedelta(days=30)
VALIDITY = datetime.timedelta(days=825)


@dataclass(frozen=True)
class CertificateFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def default_directory() -> Path:
    return paths.data_dir() / "sandbox" / "tls"


def ensure_certificate(directory: Path | None = None) -> CertificateFiles:
    """Return the sandbox certificate files, creating or renewing them as needed."""
    directory = directory or default_directory()
    files = CertificateFiles(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    if all(p.exists() for p in (files.ca_file, files.cert_file, files.key_file)) and _still_valid(
        files.cert_file
    ):
        return files
    make_private_dirs(directory)
    _generate(files)
    return files


def _still_valid(cert_file: Path) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
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
