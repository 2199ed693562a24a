"""A test CA and S/MIME certificates made with cryptography, and openssl to check messages.

trustme makes server and client certificates but sets neither the e-mail
protection purpose nor an rfc822Name, which ``openssl cms`` needs; so the
tests make their own: a CA, then for each address an RSA (or EC) key and a
certificate with ``subjectAltName: email:ADDRESS`` and ``emailProtection``.
"""

from __future__ import annotations

import datetime
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import require_tool

_DAY = datetime.timedelta(days=1)


@dataclass
class Identity:
    """One person's certificate and key, written as PEM files."""

    address: str
    cert_path: Path
    key_path: Path
    cert: x509.Certificate


class TestCA:
    """A self-signed CA that issues S/MIME certificates into ``directory``."""

    __test__ = False

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tuimail test S/MIME CA")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        address: str,
        *,
        kind: str = "rsa",
        passphrase: bytes | None = None,
        valid_from: datetime.datetime | None = None,
        valid_to: datetime.datetime | None = None,
        name: str | None = None,
    ) -> Identity:
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if kind == "rsa"
            else ec.generate_private_key(ec.SECP256R1())
        )
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.COMMON_NAME, address.split("@")[0]),
                        x509.NameAttribute(NameOID.EMAIL_ADDRESS, address),
                    ]
                )
            )
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid_from or now - _DAY)
            .not_valid_after(valid_to or now + 10 * _DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(address)]), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=kind == "rsa",
                    data_encipherment=False,
                    key_agreement=kind != "rsa",
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        stem = name or address.replace("@", "_at_")
        cert_path = self.directory / f"{stem}.pem"
        key_path = self.directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            )
        )
        key_path.chmod(0o600)
        return Identity(address, cert_path, key_path, cert)


def openssl() -> str:
    return require_tool("openssl", "openssl")


def openssl_verify(message: bytes, ca: TestCA, tmp: Path) -> bytes:
    """The signed content, as ``openssl cms -verify`` checks it against the CA (raises if not)."""
    return _openssl_on(message, tmp, "verify", ["cms", "-verify", "-CAfile", str(ca.ca_file)])


def openssl_decrypt(message: bytes, who: Identity, tmp: Path) -> bytes:
    """The decrypted entity, as ``openssl smime -decrypt`` gives it with ``who``'s key."""
    command = ["smime", "-decrypt", "-recip", str(who.cert_path), "-inkey", str(who.key_path)]
    return _openssl_on(message, tmp, "decrypt", command)


def _openssl_on(message: bytes, tmp: Path, name: str, command: list[str]) -> bytes:
    """What ``openssl COMMAND -in FILE -out FILE`` writes for ``message`` (raises if it fails)."""
    source = tmp / f"{name}-in.eml"
    source.write_bytes(message)
    out = tmp / f"{name}-out.eml"
    result = subprocess.run(
        [openssl(), *command, "-in", str(source), "-out", str(out)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    return out.read_bytes()
