"""What a TLS connection is made of, in words a person can check.

The security of every connection is shown plainly (protocol
version, cipher, certificate subject, issuer, names and expiry). When
verification fails, the bare OpenSSL reason ("certificate verify failed") is
not enough, so the stage that ran the handshake takes a second, non-verifying
look at the server's certificate (tuimail/smtp_stepper.py,
``look_at_certificate``) purely to explain the failure ("the certificate for
mail.example.com expired on 2026-01-02"). Nothing from that look is trusted or
used to send.
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# OpenSSL X509_V_ERR_* codes that deserve their own sentence.
_X509_EXPIRED = 10
_X509_NOT_YET_VALID = 9
_X509_SELF_SIGNED = 18
_X509_SELF_SIGNED_IN_CHAIN = 19
_X509_UNKNOWN_ISSUER = 20
_X509_HOSTNAME_MISMATCH = 62
_X509_IP_ADDRESS_MISMATCH = 64


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    issuer: str
    names: tuple[str, ...]
    not_before: datetime
    not_after: datetime

    def days_left(self, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        return int((self.not_after - now).total_seconds() // 86400)

    @property
    def self_issued(self) -> bool:
        return self.subject == self.issuer

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "names": list(self.names),
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "days_left": self.days_left(),
        }


@dataclass(frozen=True)
class TLSInfo:
    version: str
    cipher: str
    bits: int
    verified: bool
    certificate: CertificateInfo | None

    def summary(self) -> str:
        parts = [f"TLS established: {self.version}, {self.cipher} ({self.bits} bits)"]
        cert = self.certificate
        if cert is not None:
            parts.append(f"certificate {cert.subject}, issued by {cert.issuer}")
            if cert.names:
                parts.append(
                    "names " + ", ".join(cert.names[:6]) + (" ..." if len(cert.names) > 6 else "")
                )
            parts.append(f"expires {cert.not_after:%Y-%m-%d} ({cert.days_left()} days)")
        parts.append("verified" if self.verified else "NOT VERIFIED")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "cipher": self.cipher,
            "bits": self.bits,
            "verified": self.verified,
            "certificate": self.certificate.to_json() if self.certificate else None,
        }


def tls_info(ssl_object: ssl.SSLObject | ssl.SSLSocket, verified: bool) -> TLSInfo:
    """Describe an established TLS connection."""
    cipher_name, _protocol, bits = ssl_object.cipher() or ("unknown", "", 0)
    cert: CertificateInfo | None = None
    decoded = ssl_object.getpeercert()
    if decoded:
        cert = certificate_from_decoded(decoded)
    else:
        der = ssl_object.getpeercert(binary_form=True)
        if der:
            cert = certificate_from_der(der)
    return TLSInfo(ssl_object.version() or "unknown", cipher_name, bits or 0, verified, cert)


def certificate_from_decoded(decoded: dict[str, Any]) -> CertificateInfo:
    """From the dict ``getpeercert()`` returns for a verified peer."""

    def name(rdns: Any) -> str:
        return ", ".join(f"{key}={value}" for rdn in rdns for key, value in rdn)

    names = tuple(
        value for kind, value in decoded.get("subjectAltName", ()) if kind in ("DNS", "IP Address")
    )
    return CertificateInfo(
        subject=name(decoded.get("subject", ())),
        issuer=name(decoded.get("issuer", ())),
        names=names,
        not_before=datetime.fromtimestamp(ssl.cert_time_to_seconds(decoded["notBefore"]), UTC),
        not_after=datetime.fromtimestamp(ssl.cert_time_to_seconds(decoded["notAfter"]), UTC),
    )


def certificate_from_der(der: bytes) -> CertificateInfo:
    """From raw DER, for certificates the stdlib will not decode (unverified peers)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)

    def name(value: x509.Name) -> str:
        short = {NameOID.COMMON_NAME: "commonName", NameOID.ORGANIZATION_NAME: "organizationName"}
        parts = []
        for attribute in value:
            # The long name has no public accessor: listed in tuimail/private_api.py.
            label = short.get(attribute.oid, attribute.oid._name)
            parts.append(f"{label}={attribute.value!s}")
        return ", ".join(parts)

    names: tuple[str, ...] = ()
    with contextlib.suppress(x509.ExtensionNotFound):
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(str(v) for v in san.get_values_for_type(x509.DNSName)) + tuple(
            str(v) for v in san.get_values_for_type(x509.IPAddress)
        )
    return CertificateInfo(
        subject=name(cert.subject),
        issuer=name(cert.issuer),
        names=names,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


#: Far more than a CA bundle needs (the system's whole bundle is about 220 KB).
CA_FILE_LIMIT = 16 * 1024 * 1024


def verifying_context(ca_file: str = "") -> ssl.SSLContext:
    """A client context that verifies against ``ca_file`` (PEM) or the system store.

    ``create_default_context(cafile=...)`` has OpenSSL open and read the path
    itself, blocking: a FIFO there hung the probe's event loop for good, and
    ``/dev/zero`` is read without end. The file is read here instead, as a
    regular file of bounded size, and its text given as ``cadata``. Raises
    :class:`OSError` (missing, not a regular file, too large) or
    :class:`ValueError` (not PEM text; :class:`ssl.SSLError` is one).
    """
    if not ca_file:
        return ssl.create_default_context()
    from pathlib import Path

    from tuimail.small_files import read_small_file

    data = read_small_file(Path(ca_file), CA_FILE_LIMIT)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("not PEM text (PEM is ASCII)") from None
    return ssl.create_default_context(cadata=text)


def find_verification_error(exc: BaseException | None) -> ssl.SSLCertVerificationError | None:
    """The certificate error somewhere in an exception's chain, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLCertVerificationError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


@dataclass(frozen=True)
class VerificationProblem:
    """Why a certificate was refused, and whether trusting a CA file would change that.

    The words say what is wrong, not what to change: the session words the
    remedy for its face (a profile's CA file, the command line's
    ``--ca-file``).
    """

    words: str
    #: The certificate is self-signed or from an unknown authority: a CA file
    #: holding it (or its CA) makes it trusted.
    ca_file_helps: bool


#: The remedy a profile offers for :attr:`VerificationProblem.ca_file_helps`.
PROFILE_CA_FILE_REMEDY = "set the profile's CA file to trust it, if you know this server"


def verification_problem(
    error: ssl.SSLCertVerificationError, host: str, cert: CertificateInfo | None
) -> VerificationProblem:
    """Why the certificate was refused, in one sentence, and whether a CA file helps."""
    code = getattr(error, "verify_code", None)
    if code == _X509_EXPIRED:
        when = f" on {cert.not_after:%Y-%m-%d %H:%M} UTC" if cert else ""
        return VerificationProblem(f"the certificate for {host} expired{when}", False)
    if code == _X509_NOT_YET_VALID:
        when = f" until {cert.not_before:%Y-%m-%d %H:%M} UTC" if cert else ""
        return VerificationProblem(f"the certificate for {host} is not valid yet{when}", False)
    if code in (_X509_HOSTNAME_MISMATCH, _X509_IP_ADDRESS_MISMATCH):
        names = f" (it is for {', '.join(cert.names or (cert.subject,))})" if cert else ""
        return VerificationProblem(
            f"the certificate does not match the host name {host}{names}", False
        )
    if code in (_X509_SELF_SIGNED, _X509_SELF_SIGNED_IN_CHAIN):
        return VerificationProblem(
            f"the certificate for {host} is self-signed and not trusted", True
        )
    if code == _X509_UNKNOWN_ISSUER:
        issuer = f" ({cert.issuer})" if cert else ""
        return VerificationProblem(
            f"the certificate for {host} was issued by an authority this system does not "
            f"trust{issuer}",
            True,
        )
    reason = getattr(error, "verify_message", "") or str(error)
    return VerificationProblem(f"the certificate for {host} could not be verified: {reason}", False)


def explain_verification_error(
    error: ssl.SSLCertVerificationError, host: str, cert: CertificateInfo | None
) -> str:
    """One sentence on why the certificate was refused, with a profile's remedy where one helps."""
    problem = verification_problem(error, host, cert)
    return problem.words + (f"; {PROFILE_CA_FILE_REMEDY}" if problem.ca_file_helps else "")
