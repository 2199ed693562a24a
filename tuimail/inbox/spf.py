"""SPF (RFC 7208) evaluated over dnspython's async resolver, for the inbox's authentication check.

Why tuimail's own evaluation and not a library: pyspf, the Python SPF
library, is synchronous and takes its DNS from module-level functions (or
dnspython's process-wide default resolver), so pointing it at the resolver
the user names (``[dns] servers``, ``--dns-server``) would change global
state, and its lookups could not share the check's asyncio deadline; its last
release is from 2020. The evaluation is small: :func:`check_host` follows
RFC 7208 section 4 and 5 (every mechanism, ``redirect=``, the limit of 10
DNS mechanisms and of 2 void lookups, macros of section 7), with these
simplifications, each allowed by the RFC: the ``%{p}`` macro expands to
``unknown`` (section 7.3 allows it when no name is validated; its use is
discouraged), and ``exp=`` is not fetched (it only words a failure).

Every DNS question goes through the one resolver given; the caller bounds
the whole evaluation in time (:mod:`tuimail.inbox.authcheck`).
"""

from __future__ import annotations

import enum
import ipaddress
import re
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dns.asyncresolver

#: RFC 7208 section 4.6.4: at most this many mechanisms and modifiers that ask DNS.
MAX_DNS_MECHANISMS = 10
#: RFC 7208 section 4.6.4: at most this many lookups answered with nothing.
MAX_VOID_LOOKUPS = 2
#: RFC 7208 section 4.6.4: at most this many MX (or PTR) names per mechanism.
MAX_NAMES = 10
#: The most characters one domain-spec's macros may expand to before the 253-character cut
#: (RFC 7208 section 7.3 sets none; a record of thousands of macros must not cost minutes).
MAX_EXPANSION = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Result(enum.StrEnum):
    """RFC 7208 section 2.6's results, as RFC 8601 writes them."""

    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


_QUALIFIERS = {"+": Result.PASS, "-": Result.FAIL, "~": Result.SOFTFAIL, "?": Result.NEUTRAL}


@dataclass(frozen=True)
class SpfOutcome:
    """What :func:`check_host` decided, and in words why (the mechanism, or the error)."""

    result: Result
    reason: str


class _Stop(Exception):
    """An error result ends the evaluation at once (RFC 7208 sections 4.4 to 4.6)."""

    def __init__(self, result: Result, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason


@dataclass(frozen=True)
class _Directive:
    qualifier: Result
    name: str  # all, include, a, mx, ptr, ip4, ip6, exists
    argument: str  # the domain-spec or network, "" when absent
    cidr4: int
    cidr6: int
    text: str  # as written, for the reason


_MACRO = re.compile(r"%(?:\{([A-Za-z])(\d*)(r?)([.\-+,/_=]*)\}|(%)|(_)|(-))", re.I)
_DOMAIN_AND_CIDR = re.compile(r"^([^/]*)(?:/(\d+))?(?://(\d+))?$")


def _parse(record: str) -> tuple[list[_Directive], str | None]:
    """The record's directives and its redirect= target; a syntax error anywhere is permerror.

    The syntax is checked by tuimail/posture/records.py's ``parse_spf`` (the
    parser ``tuimail check`` uses); this adds what evaluating needs: the
    prefix lengths as numbers, and the macro letters a domain-spec may hold.
    """
    from tuimail.posture.records import RecordError, parse_spf

    try:
        terms = parse_spf(record)
    except RecordError as exc:
        raise _Stop(Result.PERMERROR, f"the record is broken: {exc}") from None
    directives: list[_Directive] = []
    redirect: str | None = None
    for term in terms:
        if term.modifier:
            if term.name == "redirect":
                _check_macros(term.value)
                redirect = term.value
            continue  # exp= and unknown modifiers are not needed (RFC 7208 section 6)
        argument, cidr4, cidr6 = term.value, 32, 128
        if term.name in ("a", "mx"):
            parts = _DOMAIN_AND_CIDR.match(term.value)
            if parts is None:
                raise _Stop(Result.PERMERROR, f"{term} is not {term.name}[:domain][/cidr]")
            argument = parts.group(1)
            cidr4 = int(parts.group(2)) if parts.group(2) else 32
            cidr6 = int(parts.group(3)) if parts.group(3) else 128
        if argument and term.name not in ("ip4", "ip6"):
            _check_macros(argument)
        qualifier = _QUALIFIERS[term.qualifier]
        directives.append(_Directive(qualifier, term.name, argument, cidr4, cidr6, str(term)))
    return directives, redirect


def _check_macros(text: str) -> None:
    """A domain-spec's macros are well formed (checked while parsing, as a syntax error)."""
    rest = _MACRO.sub("", text)
    if "%" in rest:
        raise _Stop(Result.PERMERROR, f"{text!r} has a malformed macro")
    for found in _MACRO.finditer(text):
        letter = found.group(1)
        if letter is not None and letter.lower() not in "slodipvh":
            raise _Stop(Result.PERMERROR, f"{text!r}: %{{{letter}}} is not allowed here")


class _Evaluation:
    """One run of check_host and everything it recurses into, sharing the lookup limits."""

    def __init__(
        self, resolver: dns.asyncresolver.Resolver, ip: IPAddress, sender: str, helo: str
    ) -> None:
        self.resolver = resolver
        self.ip = ip
        self.sender = sender
        self.helo = helo
        self.dns_mechanisms = 0
        self.void_lookups = 0

    async def lookup(self, name: str, rdtype: str, *, void_counts: bool = True) -> list[Any]:
        """The answer's records; none for NXDOMAIN or no data; DNS trouble is temperror."""
        import dns.exception
        import dns.resolver

        try:
            answer = await self.resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            records: list[Any] = []
        except dns.exception.Timeout:
            raise _Stop(Result.TEMPERROR, f"no DNS answer in time for {name} {rdtype}") from None
        except dns.exception.DNSException as exc:
            raise _Stop(Result.TEMPERROR, f"the {rdtype} lookup of {name} failed: {exc}") from None
        else:
            records = list(answer)
        if not records and void_counts:
            self.void_lookups += 1
            if self.void_lookups > MAX_VOID_LOOKUPS:
                raise _Stop(
                    Result.PERMERROR,
                    f"more than {MAX_VOID_LOOKUPS} lookups found nothing (the last: {name})",
                )
        return records

    def count_dns_mechanism(self, term: str) -> None:
        self.dns_mechanisms += 1
        if self.dns_mechanisms > MAX_DNS_MECHANISMS:
            raise _Stop(
                Result.PERMERROR,
                f"more than {MAX_DNS_MECHANISMS} DNS lookups ({term} is one too many)",
            )

    async def record(self, domain: str) -> str | None:
        """The domain's one SPF record; None when it has none; two are permerror."""
        found = []
        from tuimail.posture.records import is_spf

        for rdata in await self.lookup(_absolute(domain), "TXT"):
            text = b"".join(rdata.strings).decode("utf-8", "replace")
            if is_spf(text):
                found.append(text)
        if len(found) > 1:
            raise _Stop(Result.PERMERROR, f"{domain} publishes {len(found)} SPF records")
        return found[0] if found else None

    async def check_host(self, domain: str) -> SpfOutcome:
        """RFC 7208 section 4 for ``domain``: the first matching mechanism decides."""
        record = await self.record(domain)
        if record is None:
            return SpfOutcome(Result.NONE, f"{domain} publishes no SPF record")
        directives, redirect = _parse(record)
        for directive in directives:
            if await self.matches(directive, domain):
                return SpfOutcome(
                    directive.qualifier, f"{directive.text} in the record of {domain}"
                )
        if redirect is not None:
            self.count_dns_mechanism(f"redirect={redirect}")
            target = self.expand(redirect, domain)
            outcome = await self.check_host(target)
            if outcome.result is Result.NONE:
                raise _Stop(
                    Result.PERMERROR, f"redirect={target} from {domain}: it has no SPF record"
                )
            return outcome
        return SpfOutcome(Result.NEUTRAL, f"nothing in the record of {domain} matched")

    async def matches(self, directive: _Directive, domain: str) -> bool:
        name = directive.name
        if name == "all":
            return True
        if name in ("ip4", "ip6"):
            network = ipaddress.ip_network(directive.argument, strict=False)
            return self.ip.version == network.version and self.ip in network
        self.count_dns_mechanism(directive.text)
        target = self.expand(directive.argument, domain) if directive.argument else domain
        if name == "include":
            outcome = await self.check_host(target)
            if outcome.result is Result.NONE:
                raise _Stop(
                    Result.PERMERROR, f"include:{target} from {domain}: it has no SPF record"
                )
            if outcome.result in (Result.TEMPERROR, Result.PERMERROR):
                raise _Stop(outcome.result, outcome.reason)
            return outcome.result is Result.PASS
        if name == "exists":
            return bool(await self.lookup(_absolute(target), "A"))
        if name == "a":
            return self.within(await self.addresses(target), directive)
        if name == "mx":
            exchanges = await self.lookup(_absolute(target), "MX")
            if len(exchanges) > MAX_NAMES:
                raise _Stop(
                    Result.PERMERROR, f"{target} has more than {MAX_NAMES} MX records (mx limit)"
                )
            for record in exchanges:
                host = str(record.exchange)
                if host in ("", ".") or not self.within(
                    await self.addresses(host, void_counts=False), directive
                ):
                    continue
                return True
            return False
        return await self.ptr_matches(target)

    async def addresses(self, host: str, *, void_counts: bool = True) -> list[IPAddress]:
        rdtype = "A" if self.ip.version == 4 else "AAAA"
        records = await self.lookup(_absolute(host), rdtype, void_counts=void_counts)
        return [ipaddress.ip_address(r.address) for r in records]

    def within(self, addresses: list[IPAddress], directive: _Directive) -> bool:
        prefix = directive.cidr4 if self.ip.version == 4 else directive.cidr6
        for address in addresses:
            network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
            if self.ip in network:
                return True
        return False

    async def ptr_matches(self, target: str) -> bool:
        """RFC 7208 section 5.5: a PTR name of the IP that points back to it, under ``target``."""
        import dns.reversename

        reverse = dns.reversename.from_address(str(self.ip)).to_text()
        names = [str(r.target).rstrip(".").lower() for r in await self.lookup(reverse, "PTR")]
        wanted = target.rstrip(".").lower()
        for name in names[:MAX_NAMES]:
            if name != wanted and not name.endswith("." + wanted):
                continue
            with _ignoring_errors():
                if self.ip in await self.addresses(name, void_counts=False):
                    return True
        return False

    def expand(self, spec: str, domain: str) -> str:
        """A domain-spec with its macros expanded (RFC 7208 section 7), cut to 253 characters."""
        local, _, sender_domain = self.sender.rpartition("@")

        def value(letter: str) -> str:
            letter = letter.lower()
            if letter == "s":
                return self.sender
            if letter == "l":
                return local or "postmaster"
            if letter == "o":
                return sender_domain
            if letter == "d":
                return domain
            if letter == "i":
                if self.ip.version == 4:
                    return str(self.ip)
                return ".".join(self.ip.exploded.replace(":", ""))
            if letter == "v":
                return "in-addr" if self.ip.version == 4 else "ip6"
            if letter == "h":
                return self.helo or "unknown"
            return "unknown"  # p: see the module's docstring

        def replace(found: re.Match[str]) -> str:
            if found.group(5):
                return "%"
            if found.group(6):
                return " "
            if found.group(7):
                return "%20"
            letter, digits, reverse, delimiters = found.group(1, 2, 3, 4)
            parts = re.split("[" + re.escape(delimiters or ".") + "]", value(letter))
            if reverse:
                parts.reverse()
            if digits:
                if int(digits) == 0:
                    raise _Stop(Result.PERMERROR, f"{spec!r}: a macro keeps 0 parts")
                parts = parts[-int(digits) :]
            text = ".".join(parts)
            if letter.isupper():
                text = urllib.parse.quote(text, safe="")
            return text

        pieces: list[str] = []
        size = start = 0
        for found in _MACRO.finditer(spec):
            pieces += [spec[start : found.start()], replace(found)]
            start = found.end()
            size += len(pieces[-2]) + len(pieces[-1])
            if size > MAX_EXPANSION:  # a record of 16,000 %{s} would be a gigabyte
                raise _Stop(
                    Result.PERMERROR, f"{_cut(spec)} expands to over {MAX_EXPANSION:,} characters"
                )
        expanded = ("".join(pieces) + spec[start:]).rstrip(".")
        if len(expanded) > 253:  # drop whole labels from the left (one cut, not a copy per label)
            dot = expanded.find(".", len(expanded) - 254)
            expanded = expanded[dot + 1 :] if dot >= 0 else expanded
        if not _valid_domain(expanded):
            raise _Stop(
                Result.PERMERROR, f"{_cut(spec)} does not make a domain name ({_cut(expanded)})"
            )
        return expanded


def _cut(text: str) -> str:
    """A record's text for a reason: quoted, and at most 120 characters of it."""
    return repr(text if len(text) <= 120 else text[:119] + "…")


class _ignoring_errors:
    """A failed forward lookup of one PTR name only skips that name (RFC 7208 section 5.5)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: object, trace: object) -> bool:
        return isinstance(error, _Stop) and error.result is Result.TEMPERROR


def _absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


def _valid_domain(name: str) -> bool:
    labels = name.split(".")
    return (
        0 < len(name) <= 253
        and all(0 < len(label) <= 63 for label in labels)
        and not any(c.isspace() for c in name)
    )


def sender_domain(sender: str, helo: str) -> tuple[str, str]:
    """The identity SPF checks (RFC 7208 section 2.4): ``(sender, domain)``.

    The MAIL FROM address; for the null sender, ``postmaster@`` the HELO
    name (empty when that is unknown too).
    """
    if sender:
        local, _, domain = sender.rpartition("@")
        if not local:
            return f"postmaster@{sender.lstrip('@')}", sender.lstrip("@")
        return sender, domain
    if helo:
        return f"postmaster@{helo}", helo
    return "", ""


async def check_host(
    resolver: dns.asyncresolver.Resolver, ip: str, sender: str, helo: str = ""
) -> SpfOutcome:
    """SPF's verdict on mail from ``sender`` (the MAIL FROM, or empty) sent from ``ip``.

    Never raises for what DNS or the record says; ``ip`` must be an IP
    address (``ValueError`` otherwise). The caller bounds the time.
    """
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    full_sender, domain = sender_domain(sender, helo)
    domain = domain.rstrip(".").lower()
    if not domain:
        return SpfOutcome(Result.NONE, "no envelope sender and no HELO name to check")
    if "." not in domain or not _valid_domain(domain):
        return SpfOutcome(Result.NONE, f"{domain!r} is not a domain SPF can check")
    evaluation = _Evaluation(resolver, address, full_sender, helo)
    try:
        return await evaluation.check_host(domain)
    except _Stop as stop:
        return SpfOutcome(stop.result, stop.reason)
