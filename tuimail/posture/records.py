"""The text records of a mail domain, parsed strictly, with no DNS: SPF terms, DMARC,
TLS-RPT and DKIM key records. Each parser returns data or raises
:class:`RecordError` with a sentence; what the parsed values mean for the
domain's posture is judged in tuimail/posture/check.py.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass, field

from tuimail.errors import TuimailError


class RecordError(TuimailError):
    """A record that does not follow its specification, in words."""


# --- SPF (RFC 7208) -------------------------------------------------------

#: Mechanisms that cost a DNS lookup (RFC 7208 section 4.6.4), and the redirect modifier.
SPF_LOOKUP_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
_SPF_MECHANISMS = SPF_LOOKUP_MECHANISMS | {"all", "ip4", "ip6"}
_SPF_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
_DOMAIN_SPEC = re.compile(r"[!-~]+")  # visible ASCII: macros are checked apart


@dataclass(frozen=True)
class SpfTerm:
    """One mechanism (``qualifier``, ``name``, ``value``) or modifier (``modifier`` True)."""

    name: str
    value: str = ""
    qualifier: str = "+"
    modifier: bool = False

    @property
    def has_macro(self) -> bool:
        return "%" in self.value

    def __str__(self) -> str:
        if self.modifier:
            return f"{self.name}={self.value}"
        text = ("" if self.qualifier == "+" else self.qualifier) + self.name
        return text + (
            f":{self.value}" if self.value and not self.value.startswith("/") else self.value
        )


def is_spf(text: str) -> bool:
    """An SPF record: ``v=spf1`` alone or followed by a space (RFC 7208 section 4.5)."""
    lowered = text.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def parse_spf(text: str) -> list[SpfTerm]:
    """The record's terms after ``v=spf1``; RecordError names the first bad one."""
    if not is_spf(text):
        raise RecordError(f"{text[:40]!r} does not begin with v=spf1")
    terms: list[SpfTerm] = []
    seen_modifiers: set[str] = set()
    for word in text.split()[1:]:
        name, sep, value = word.partition("=")
        if sep and _SPF_NAME.fullmatch(name) and ":" not in name and "/" not in name:
            lowered = name.lower()
            if lowered in ("redirect", "exp"):
                if lowered in seen_modifiers:
                    raise RecordError(f"the {lowered}= modifier appears twice")
                seen_modifiers.add(lowered)
                if not value:
                    raise RecordError(f"{word!r} names no domain")
            _check_macros(word, value)
            terms.append(SpfTerm(lowered, value, modifier=True))
            continue
        qualifier = "+"
        if word[:1] in "+-~?":
            qualifier, word = word[0], word[1:]
        # name, :domain, /ip4-cidr, //ip6-cidr (RFC 7208 section 5.6)
        match = re.fullmatch(r"([A-Za-z0-9]+)(?::([^/]*))?((?:/\d+)?(?://\d+)?)", word)
        if match is None or match.group(1).lower() not in _SPF_MECHANISMS:
            raise RecordError(f"{word!r} is not an SPF mechanism or modifier")
        name, domain, cidr = match.group(1).lower(), match.group(2), match.group(3)
        if match.group(2) is not None and not domain:
            raise RecordError(f"{word!r} has an empty domain after the colon")
        value = domain or ""
        if name == "all" and (domain is not None or cidr):
            raise RecordError(f"{word!r}: all takes no argument")
        if name in ("include", "exists") and not domain:
            raise RecordError(f"{word!r} needs a domain ({name}:example.org)")
        if name in ("include", "exists", "ptr") and cidr:
            raise RecordError(f"{word!r}: {name} takes no prefix length")
        if name in ("ip4", "ip6"):
            if not domain:
                raise RecordError(f"{word!r} needs an address")
            network = domain + cidr
            try:
                parsed = ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise RecordError(f"{word!r} is not a valid {name} network") from None
            if (parsed.version == 4) != (name == "ip4"):
                raise RecordError(f"{word!r}: the address is not IPv{name[-1]}")
            value = network
        elif cidr:
            _check_cidr(word, cidr)
            value = (domain or "") + cidr
        if domain:
            _check_macros(word, domain)
        terms.append(SpfTerm(name, value, qualifier))
    return terms


def _check_cidr(word: str, cidr: str) -> None:
    """``/N`` (IPv4, at most 32) then ``//N`` (IPv6, at most 128), either or both."""
    four, _, six = cidr.partition("//")
    if four and int(four[1:]) > 32:
        raise RecordError(f"{word!r} has an invalid prefix length")
    if six and int(six) > 128:
        raise RecordError(f"{word!r} has an invalid prefix length")


def _check_macros(word: str, text: str) -> None:
    if not _DOMAIN_SPEC.fullmatch(text or "x"):
        raise RecordError(f"{word!r} has characters an SPF domain cannot hold")
    rest = text
    while "%" in rest:
        _, _, rest = rest.partition("%")
        if rest[:1] in ("%", "_", "-"):
            rest = rest[1:]
            continue
        match = re.match(r"\{[slodiphcrtvSLODIPHCRTV]\d*r?[.\-+,/_=]*\}", rest)
        if match is None:
            raise RecordError(f"{word!r} has a malformed macro (RFC 7208 section 7)")
        rest = rest[match.end() :]


def spf_domain(term: SpfTerm, current: str) -> str:
    """The domain a lookup mechanism queries: its own, or the record's domain."""
    value = term.value
    if term.modifier:
        return value
    name = value.split("/", 1)[0] if value and not value.startswith("/") else ""
    return name or current


# --- DMARC (RFC 7489) -----------------------------------------------------

_DMARC_POLICIES = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class Dmarc:
    policy: str
    subdomain_policy: str  # sp, or the policy when not given
    percent: int
    rua: tuple[str, ...]
    ruf: tuple[str, ...]
    tags: dict[str, str] = field(default_factory=dict)


def _tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            raise RecordError(f"{part[:40]!r} is not tag=value")
        if name in tags:
            raise RecordError(f"the tag {name} appears twice")
        tags[name] = value.strip()
    return tags


def is_dmarc(text: str) -> bool:
    return re.match(r"v\s*=\s*DMARC1\s*(;|$)", text) is not None


def parse_dmarc(text: str) -> Dmarc:
    """A ``v=DMARC1`` record's policy, subdomain policy, percentage and report addresses."""
    if not is_dmarc(text):
        raise RecordError("the record does not begin with v=DMARC1")
    tags = _tags(text)
    policy = tags.get("p", "").lower()
    if policy not in _DMARC_POLICIES:
        shown = tags.get("p")
        raise RecordError(
            "the record has no p= tag"
            if shown is None
            else f"p={shown} is not none, quarantine or reject"
        )
    sub = tags.get("sp", policy).lower()
    if sub not in _DMARC_POLICIES:
        raise RecordError(f"sp={tags['sp']} is not none, quarantine or reject")
    pct_text = tags.get("pct", "100")
    if not pct_text.isdigit() or int(pct_text) > 100:
        raise RecordError(f"pct={pct_text} is not a number from 0 to 100")
    rua = _uris(tags.get("rua", ""), "rua")
    ruf = _uris(tags.get("ruf", ""), "ruf")
    return Dmarc(policy, sub, int(pct_text), rua, ruf, tags)


def _uris(text: str, tag: str) -> tuple[str, ...]:
    uris = tuple(u.strip() for u in text.split(",") if u.strip())
    for uri in uris:
        scheme = uri.partition(":")[0].lower()
        if scheme not in ("mailto", "https", "http") or ":" not in uri:
            raise RecordError(f"{tag}={uri} is not a mailto: (or http:) address")
    return uris


# --- TLS-RPT (RFC 8460) ---------------------------------------------------


def is_tlsrpt(text: str) -> bool:
    return re.match(r"v\s*=\s*TLSRPTv1\s*(;|$)", text) is not None


def parse_tlsrpt(text: str) -> tuple[str, ...]:
    """The report addresses (``rua=``) of a ``v=TLSRPTv1`` record."""
    if not is_tlsrpt(text):
        raise RecordError("the record does not begin with v=TLSRPTv1")
    tags = _tags(text)
    if "rua" not in tags:
        raise RecordError("the record has no rua= tag")
    uris = tuple(u.strip() for u in tags["rua"].split(",") if u.strip())
    if not uris:
        raise RecordError("rua= names no address")
    for uri in uris:
        scheme = uri.partition(":")[0].lower()
        if scheme not in ("mailto", "https") or ":" not in uri:
            raise RecordError(f"rua={uri} is not a mailto: or https: address")
    return uris


# --- DKIM (RFC 6376 section 3.6.1, RFC 8463) -----------------------------


@dataclass(frozen=True)
class DkimKey:
    key_type: str  # rsa or ed25519
    bits: int  # 0: revoked (empty p=)
    testing: bool
    tags: dict[str, str] = field(default_factory=dict)


def parse_dkim(text: str) -> DkimKey:
    """A DKIM key record: its key type and size; an empty ``p=`` is a revoked key."""
    tags = _tags(text)
    if "v" in tags and (tags["v"] != "DKIM1" or next(iter(tags)) != "v"):
        raise RecordError("v= must be DKIM1 and come first")
    key_type = tags.get("k", "rsa").lower()
    if "p" not in tags:
        raise RecordError("the record has no p= (public key) tag")
    data = re.sub(r"\s+", "", tags["p"])
    flags = {f.strip() for f in tags.get("t", "").split(":")}
    testing = "y" in flags
    if not data:
        return DkimKey(key_type, 0, testing, tags)
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RecordError("p= is not base64") from None
    if key_type == "ed25519":
        if len(raw) != 32:
            raise RecordError(f"an ed25519 key is 32 bytes, not {len(raw)}")
        return DkimKey(key_type, 256, testing, tags)
    if key_type != "rsa":
        raise RecordError(f"k={key_type} is not rsa or ed25519")
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(raw)
    except ValueError:
        raise RecordError("p= is not an RSA public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise RecordError("p= is not an RSA public key")
    return DkimKey(key_type, key.key_size, testing, tags)
