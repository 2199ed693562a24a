"""DANE for SMTP (RFC 7672, RFC 6698): an MX host's TLSA records and the chain it presents.

Two steps, each usable alone (tuimail/routing.py uses both for ``send
--direct``, tuimail/posture/check.py both on each live MX of ``tuimail check``):

* :func:`lookup_tlsa` asks for the TLSA records at ``_25._tcp.<mx>`` and says
  whether the answer can be trusted (:class:`TLSALookup`): only an answer
  with the AD bit from a validating resolver is ``SECURE``; an answer without
  it is ``INSECURE`` (DANE does not apply); a SERVFAIL (a DNSSEC-bogus
  answer) or no answer is ``FAILED``, which RFC 7672 section 2.2 treats as a
  failure of that MX, never as "no DANE". After a SERVFAIL the name is asked
  once more with the CD bit (checking disabled): records found that way mean
  the zone is DNSSEC-bogus, not unreachable (:attr:`TLSALookup.failure`), so
  the words can say which. Those unchecked records are never used.
* :func:`match` compares a certificate chain (DER, leaf first, as
  :func:`tuimail.trust.peer_chain` reads it from a TLS connection) with the
  usable records (:class:`Verdict`).

Usable records (RFC 7672 section 3.1): DANE-EE(3), where the leaf's
certificate or public key must match and its names and dates are ignored;
DANE-TA(2), where a certificate the server sent must match and the chain
from the leaf up to it must be signed link by link, valid now, with the
leaf's names covering the MX host name. PKIX-TA(0) and PKIX-EE(1) are
unusable in SMTP (RFC 7672 section 3.1.3), as are unknown selectors and
matching types. A trust anchor published only as a key (``2 1 x``) must
still be sent by the server as a certificate of its chain (RFC 7672 section
3.1.2 asks servers to send it): a chain ending below it does not match.

The resolver must ask with the DNSSEC OK bit (tuimail/mx.py's
``make_resolver`` does), or a validating resolver may leave AD off.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tuimail.mx import Cause, dns_trouble, is_secure

if TYPE_CHECKING:
    import dns.asyncresolver
    from cryptography import x509

#: TLSA certificate usages (RFC 6698 section 2.1.1, RFC 7218 names).
PKIX_TA, PKIX_EE, DANE_TA, DANE_EE = 0, 1, 2, 3
#: Selectors: the whole certificate, or its SubjectPublicKeyInfo.
CERT, SPKI = 0, 1
#: Matching types: the data itself, its SHA-256, its SHA-512.
FULL, SHA256, SHA512 = 0, 1, 2

USAGE_NAMES = {PKIX_TA: "PKIX-TA", PKIX_EE: "PKIX-EE", DANE_TA: "DANE-TA", DANE_EE: "DANE-EE"}


@dataclass(frozen=True)
class TLSARecord:
    """One TLSA record: usage, selector, matching type and the association data."""

    usage: int
    selector: int
    mtype: int
    data: bytes

    @property
    def usable(self) -> bool:
        """Usable for SMTP (RFC 7672 section 3.1): DANE-TA or DANE-EE, known selector and hash."""
        return (
            self.usage in (DANE_TA, DANE_EE)
            and self.selector in (CERT, SPKI)
            and self.mtype in (FULL, SHA256, SHA512)
        )

    def text(self, short: bool = True) -> str:
        """``3 1 1 0a1b2c3d4e5f...`` (the data cut to 12 hex digits unless ``short`` is False)."""
        data = self.data.hex()
        if short and len(data) > 12:
            data = data[:12] + "..."
        return f"{self.usage} {self.selector} {self.mtype} {data}"

    def to_json(self) -> dict[str, Any]:
        return {
            "usage": self.usage,
            "selector": self.selector,
            "matching_type": self.mtype,
            "data": self.data.hex(),
            "usable": self.usable,
        }


class Failure(enum.StrEnum):
    """Why a ``FAILED`` lookup failed."""

    #: SERVFAIL, and the unchecked (CD) answer has records: DNSSEC validation failed.
    BOGUS = "bogus"
    #: SERVFAIL, and no answer without validation either: a broken or unreachable zone.
    SERVFAIL = "servfail"
    #: No answer in time.
    TIMEOUT = "timeout"
    #: Another DNS error.
    ERROR = "error"


class Status(enum.StrEnum):
    """What the TLSA lookup says about DANE for one MX host."""

    #: Validated (AD) TLSA records: DANE applies if any is usable.
    SECURE = "secure"
    #: No TLSA records at that name (NXDOMAIN or no data): no DANE.
    NONE = "none"
    #: An answer without the AD bit (an unsigned zone, or no validation): not trusted, no DANE.
    INSECURE = "insecure"
    #: SERVFAIL (DNSSEC-bogus) or no answer: the MX cannot be used safely (RFC 7672 2.2).
    FAILED = "failed"


@dataclass(frozen=True)
class TLSALookup:
    """The TLSA records found for one MX host, and whether they can be trusted."""

    name: str
    status: Status
    records: tuple[TLSARecord, ...] = ()
    #: For ``FAILED``: why, in words, and which kind of failure.
    problem: str = ""
    failure: Failure | None = None

    @property
    def usable(self) -> tuple[TLSARecord, ...]:
        """The records DANE uses (none unless the answer was validated)."""
        if self.status is not Status.SECURE:
            return ()
        return tuple(r for r in self.records if r.usable)

    @property
    def applies(self) -> bool:
        """DANE decides this MX's TLS: validated records, at least one usable."""
        return bool(self.usable)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "records": [r.to_json() for r in self.records],
            "problem": self.problem,
            "failure": self.failure.value if self.failure else None,
        }


@dataclass(frozen=True)
class Verdict:
    """Whether a chain matches: the record that matched, or why none did."""

    matched: bool
    reason: str
    record: TLSARecord | None = None


def tlsa_name(host: str, port: int = 25) -> str:
    """Where an MX host's TLSA records live: ``_25._tcp.<host>``."""
    return f"_{port}._tcp.{host.rstrip('.')}"


async def lookup_tlsa(
    host: str, resolver: dns.asyncresolver.Resolver, *, port: int = 25
) -> TLSALookup:
    """The TLSA records of ``host`` (an MX name), with their DNSSEC status; never raises for DNS."""
    import dns.exception
    import dns.resolver

    name = tlsa_name(host, port)
    try:
        answer = await resolver.resolve(name, "TLSA", raise_on_no_answer=True)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return TLSALookup(name, Status.NONE)
    except dns.exception.DNSException as exc:
        cause, problem = dns_trouble(exc, name, "TLSA")
        if cause is Cause.REFUSED or not isinstance(exc, dns.resolver.NoNameservers):
            failure = Failure.TIMEOUT if cause is Cause.TIMEOUT else Failure.ERROR
            return TLSALookup(name, Status.FAILED, problem=problem, failure=failure)
        if await _answers_unchecked(name, resolver):
            return TLSALookup(
                name,
                Status.FAILED,
                problem=f"the TLSA records at {name} fail DNSSEC validation (bogus)",
                failure=Failure.BOGUS,
            )
        return TLSALookup(name, Status.FAILED, problem=problem, failure=Failure.SERVFAIL)
    records = tuple(
        TLSARecord(int(r.usage), int(r.selector), int(r.mtype), bytes(r.cert)) for r in answer
    )
    return TLSALookup(name, Status.SECURE if is_secure(answer) else Status.INSECURE, records)


async def _answers_unchecked(name: str, resolver: dns.asyncresolver.Resolver) -> bool:
    """Whether ``name`` has TLSA records when asked with CD (no validation): bogus, not broken.

    Only to tell the two apart in words; what this answer holds is never used.
    """
    import copy

    import dns.exception
    import dns.flags

    unchecked = copy.copy(resolver)
    unchecked.flags = dns.flags.RD | dns.flags.CD
    try:
        answer = await unchecked.resolve(name, "TLSA", raise_on_no_answer=False)
    except dns.exception.DNSException:
        return False
    return answer.rrset is not None


def _selected(cert: x509.Certificate, der: bytes, selector: int) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    if selector == CERT:
        return der
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _digest(data: bytes, mtype: int) -> bytes:
    if mtype == SHA256:
        return hashlib.sha256(data).digest()
    if mtype == SHA512:
        return hashlib.sha512(data).digest()
    return data


def record_for(
    der: bytes, usage: int = DANE_EE, selector: int = SPKI, mtype: int = SHA256
) -> TLSARecord:
    """The TLSA record that a certificate (DER) matches: for publishing one, or a report."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    return TLSARecord(usage, selector, mtype, _digest(_selected(cert, der, selector), mtype))


def _matches(record: TLSARecord, cert: x509.Certificate, der: bytes) -> bool:
    return _digest(_selected(cert, der, record.selector), record.mtype) == record.data


def match(
    records: Sequence[TLSARecord],
    chain: Sequence[bytes],
    host: str,
    *,
    now: datetime | None = None,
) -> Verdict:
    """Whether the chain the server presented (DER, leaf first) satisfies a usable record.

    ``host`` is the MX host name, checked against the leaf's names for
    DANE-TA only. Unusable records are ignored; with none usable the verdict
    is a mismatch (the caller decides whether DANE applies at all).
    """
    from cryptography import x509

    from tuimail.tlsinfo import certificate_from_der
    from tuimail.trust import hostname_matches

    usable = [r for r in records if r.usable]
    if not usable:
        return Verdict(False, "no usable TLSA record (only DANE-TA and DANE-EE count for SMTP)")
    if not chain:
        return Verdict(False, "the server presented no certificate")
    try:
        certs = [x509.load_der_x509_certificate(der) for der in chain]
    except ValueError as exc:
        return Verdict(False, f"the server's certificate could not be read: {exc}")
    leaf = certs[0]
    for record in usable:
        if record.usage == DANE_EE and _matches(record, leaf, chain[0]):
            return Verdict(
                True,
                f"the server's certificate matches TLSA {record.text()} (DANE-EE: "
                "its names and dates are not checked)",
                record,
            )
    problems: list[str] = []
    when = now or datetime.now(UTC)
    for record in usable:
        if record.usage != DANE_TA:
            continue
        for index in range(1, len(certs)):
            if not _matches(record, certs[index], chain[index]):
                continue
            broken = _chain_problem(certs[: index + 1], when)
            if broken:
                problems.append(
                    f"TLSA {record.text()} matches certificate {index + 1}, but {broken}"
                )
                break
            info = certificate_from_der(chain[0])
            if not hostname_matches(info, host):
                names = ", ".join(info.names) or info.subject
                problems.append(
                    f"the chain matches TLSA {record.text()} (DANE-TA), but the certificate "
                    f"is for {names}, not {host}"
                )
                break
            return Verdict(
                True,
                f"certificate {index + 1} of the chain matches TLSA {record.text()} (DANE-TA), "
                f"and the certificate names {host}",
                record,
            )
    spki = record_for(chain[0], DANE_EE, SPKI, SHA256)
    shown = "; ".join(r.text() for r in usable)
    problems.insert(
        0,
        f"no TLSA record ({shown}) matches the {len(chain)} certificate(s) presented "
        f"(the server's key is 3 1 1 {spki.data.hex()[:12]}...)",
    )
    return Verdict(False, "; ".join(problems) if len(problems) > 1 else problems[0])


def _chain_problem(certs: Sequence[x509.Certificate], now: datetime) -> str:
    """Why the chain from the leaf up to the matched trust anchor does not hold, or ''."""
    from cryptography.exceptions import InvalidSignature

    for position, cert in enumerate(certs):
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            return f"certificate {position + 1} is not valid now (until {cert.not_valid_after_utc:%Y-%m-%d})"
    for position in range(len(certs) - 1):
        try:
            certs[position].verify_directly_issued_by(certs[position + 1])
        except (ValueError, TypeError) as exc:
            return f"certificate {position + 1} is not issued by certificate {position + 2} ({exc})"
        except InvalidSignature:
            return f"certificate {position + 1} has a bad signature"
    return ""
