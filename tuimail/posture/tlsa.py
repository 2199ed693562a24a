"""Does a server's certificate chain match its TLSA records (RFC 6698, RFC 7672 for SMTP)?

Kept apart so that the check can use the sender's own DANE code once there
is one (``tuimail/dane.py``): :func:`chain_matches` is the one place to
change. For SMTP, RFC 7672 section 3.1.3 says senders use DANE-TA(2) and
DANE-EE(3) records only; PKIX-TA(0) and PKIX-EE(1) are reported as unusable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

USAGE_NAMES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}


@dataclass(frozen=True)
class Tlsa:
    usage: int
    selector: int
    matching: int
    data: bytes

    @classmethod
    def from_text(cls, text: str) -> Tlsa:
        """``3 1 1 ab12...`` as dnspython writes a TLSA record."""
        usage, selector, matching, *hexdata = text.split()
        return cls(int(usage), int(selector), int(matching), bytes.fromhex("".join(hexdata)))

    @property
    def usable_for_smtp(self) -> bool:
        return self.usage in (2, 3) and self.selector in (0, 1) and self.matching in (0, 1, 2)

    def to_text(self) -> str:
        return f"{self.usage} {self.selector} {self.matching} {self.data.hex()}"


def _selected(der: bytes, selector: int) -> bytes:
    if selector == 0:
        return der
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = x509.load_der_x509_certificate(der).public_key()
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _digest(data: bytes, matching: int) -> bytes:
    if matching == 1:
        return hashlib.sha256(data).digest()
    if matching == 2:
        return hashlib.sha512(data).digest()
    return data


def record_matches(record: Tlsa, chain: tuple[bytes, ...]) -> bool:
    """One record against the chain as sent (leaf first): an EE record the leaf, a TA record
    a certificate above it. (A DANE-TA match here says the anchor was sent; the chain
    from it to the leaf is what the verifying handshake checks.)"""
    if not chain or record.matching not in (0, 1, 2) or record.selector not in (0, 1):
        return False
    # A trust anchor must be sent by the server (RFC 7672 section 3.1.2), above the leaf.
    candidates = chain[:1] if record.usage in (1, 3) else chain[1:]
    return any(
        _digest(_selected(der, record.selector), record.matching) == record.data
        for der in candidates
    )


def chain_matches(records: list[Tlsa], chain: tuple[bytes, ...]) -> list[Tlsa]:
    """The usable records (DANE-TA, DANE-EE) the chain matches; empty: no match."""
    return [r for r in records if r.usable_for_smtp and record_matches(r, chain)]
