"""What the probe learns about a server's certificate chain.

Trust is decided by OpenSSL during a verifying handshake, exactly as a mail
client would decide it (a stricter verifier would raise alarms that no client
raises). When that handshake fails, the probe connects again without
verification only to *look* at the certificate it refused. The host name is
checked here, separately, so that the report can say which of the two failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuimail.tlsinfo import CertificateInfo, certificate_from_der

_DER = 2  # ssl._ssl.ENCODING_DER: what 3.13's Certificate.public_bytes takes


@dataclass(frozen=True)
class TrustResult:
    trusted: bool
    hostname_matches: bool
    reason: str  # empty when trusted and matching

    def to_json(self) -> dict[str, Any]:
        return {
            "trusted": self.trusted,
            "hostname_matches": self.hostname_matches,
            "reason": self.reason,
        }


def peer_chain(ssl_object: Any) -> list[bytes]:
    """The chain the server sent, leaf first, as DER (Python 3.13 names it publicly)."""
    getter = getattr(ssl_object, "get_unverified_chain", None)
    if getter is None and hasattr(ssl_object, "_sslobj"):
        # Before 3.13 only the C object inside has it: listed in tuimail/private_api.py.
        getter = getattr(ssl_object._sslobj, "get_unverified_chain", None)
    if getter is not None:
        chain = getter() or []
        # 3.13's public method returns Certificate objects; the 3.11 private one, DER.
        return [c if isinstance(c, bytes) else c.public_bytes(_DER) for c in chain]
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def describe_chain(chain: list[bytes]) -> list[CertificateInfo]:
    return [certificate_from_der(der) for der in chain]


def hostname_matches(info: CertificateInfo, host: str) -> bool:
    """RFC 6125 matching against the SANs: exact, or a wildcard in the left-most label.

    As OpenSSL matches for a mail client, since the probe authenticates on the
    strength of this answer: an IP address matches only an address (never a
    wildcard such as ``*.0.0.1``), and a wildcard needs two labels after it
    (``*.com`` matches nothing).
    """
    import ipaddress

    host = host.lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    for name in info.names:
        pattern = name.lower().rstrip(".")
        if address is not None:
            try:
                if ipaddress.ip_address(pattern) == address:
                    return True
            except ValueError:
                pass
            continue
        if pattern == host:
            return True
        first, _, rest = host.partition(".")
        wildcard = pattern.startswith("*.") and "." in pattern[2:]
        if wildcard and rest == pattern[2:] and first:
            return True
    return False
