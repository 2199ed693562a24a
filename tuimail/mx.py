"""A mail domain's servers in DNS: the resolver, the MX hosts in order, their addresses.

One place for what direct delivery (tuimail/routing.py), the posture check
(tuimail/posture/check.py), the probe and the monitor (tuimail/probe.py,
tuimail/targets.py) each need from DNS, so that they find the same hosts
in the same way:

* :func:`make_resolver`: dnspython's async resolver, the system's or the
  servers the user names (``HOST``, ``HOST:PORT``, ``[V6]:PORT``), asking
  with the DNSSEC OK bit so that a validating resolver's AD bit says what it
  validated (tuimail/dane.py trusts TLSA records only then).
* :func:`mx_hosts`: the MX hosts by preference (RFC 5321 section 5.1): the
  domain itself when it has no MX, a null MX (RFC 7505) an error. Equal
  preferences are shuffled for delivery, sorted by name for a report.
* :func:`resolve_host`: a host's IPv4 then IPv6 addresses, and whether the
  answers were validated (RFC 7672 section 2.2.2 asks it of an MX host).

Nothing here uses the system's own name lookup: a caller connects to the
address found, keeping the name for TLS.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuimail.errors import TuimailError

if TYPE_CHECKING:
    import dns.asyncresolver


#: How many MX hosts of one domain are examined (checked by ``tuimail check``,
#: probed by ``probe --mx`` and the monitor), best first. A domain may list any
#: number (a hostile one 1,000: a minute, hundreds of MB and a connection to
#: each); senders try few of them (Postfix tries 5 addresses, as
#: tuimail/routing.py's MX_ADDRESS_LIMIT does), so the rest are counted and
#: said, not examined.
MX_HOSTS_EXAMINED = 10


class Cause(enum.StrEnum):
    """Why a lookup found no host to use: what a caller words or decides by."""

    #: The domain does not exist: a permanent failure.
    NXDOMAIN = "nxdomain"
    #: ``MX 0 .``: the domain takes no mail (RFC 7505), a permanent failure.
    NULL_MX = "null-mx"
    #: No answer in time: try again later.
    TIMEOUT = "timeout"
    #: SERVFAIL (a broken or DNSSEC-bogus zone) or another DNS error: try again later.
    FAILED = "failed"
    #: The DNS server refused to answer (REFUSED): it does not serve this client or
    #: this name, which says nothing about the domain. Try again later, or another resolver.
    REFUSED = "refused"
    #: The resolver named cannot be used (not an IP address).
    RESOLVER = "resolver"


def dns_trouble(exc: BaseException, name: str, rdtype: str) -> tuple[Cause, str]:
    """A failed lookup of ``name``/``rdtype`` (a dnspython exception other than
    NXDOMAIN and no data) in words, and whether it was a timeout or a failure.

    Every lookup of tuimail's (MX, addresses, TLSA, the ``_mta-sts`` record,
    the posture check's records) says DNS trouble in these words.
    """
    import dns.exception
    import dns.resolver

    name = name.rstrip(".")
    if isinstance(exc, dns.exception.Timeout):
        return Cause.TIMEOUT, f"no DNS answer for {name} {rdtype} in time"
    if isinstance(exc, dns.resolver.NoNameservers):
        # Each server's answer: (server, tcp, port, rcode or exception, response).
        errors = exc.kwargs.get("errors") or []
        codes = {str(error[3]) for error in errors if len(error) > 3}
        if codes == {"REFUSED"}:
            return (
                Cause.REFUSED,
                f"the DNS server refused the lookup of {name} {rdtype} (REFUSED): it does "
                "not answer this machine, or not for this name; use another resolver",
            )
        return Cause.FAILED, f"the DNS lookup of {name} {rdtype} failed (SERVFAIL)"
    return Cause.FAILED, f"the DNS lookup of {name} {rdtype} failed: {exc}"


class MXLookupError(TuimailError):
    """The domain's mail servers (or a host's addresses) could not be found; says why.

    ``cause`` says what happened; ``temporary`` whether another try may
    succeed; ``secure`` whether the answer that said so was DNSSEC-validated.
    """

    def __init__(self, explanation: str, cause: Cause = Cause.FAILED, *, secure: bool = False):
        super().__init__(explanation)
        self.explanation = explanation
        self.cause = cause
        self.secure = secure

    @property
    def temporary(self) -> bool:
        return self.cause in (Cause.TIMEOUT, Cause.FAILED, Cause.REFUSED)


@dataclass(frozen=True)
class MXHost:
    """One MX host (or the domain itself, implicitly) and its preference."""

    preference: int
    host: str
    #: True when the domain has no MX and its own address records are used.
    implicit: bool = False
    #: The MX answer (or, implicit, the "no MX" answer) was DNSSEC-validated (AD).
    secure: bool = False


def wants_dnssec(resolver: dns.asyncresolver.Resolver) -> None:
    """Ask with the DO and AD bits, so a validating resolver says (AD) what it validated."""
    import dns.flags

    resolver.use_edns(0, dns.flags.DO, 1232)
    resolver.flags = dns.flags.RD | dns.flags.AD


def is_secure(answer: Any) -> bool:
    """Whether a dnspython answer, message, or NoAnswer/NXDOMAIN (a denial) carries the AD bit."""
    import dns.exception
    import dns.flags
    import dns.message

    response: Any = None
    if isinstance(answer, dns.exception.DNSException):
        response = answer.kwargs.get("response")
        if response is None:
            responses = answer.kwargs.get("responses") or {}
            response = next(iter(responses.values()), None)
    elif isinstance(answer, dns.message.Message):
        response = answer
    elif answer is not None:
        response = getattr(answer, "response", None)
    return isinstance(response, dns.message.Message) and bool(response.flags & dns.flags.AD)


def parse_server(text: str, default_port: int = 53) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[V6]:PORT`` as an IP address and a port; ValueError in words."""
    host, port = text.strip(), default_port
    if host.startswith("["):
        inside, _, rest = host[1:].partition("]")
        host = inside
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r} is not HOST[:PORT]")
            port = _port(rest[1:], text)
    elif host.count(":") == 1:
        host, _, number = host.partition(":")
        port = _port(number, text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"the DNS server {text!r} is not an IP address; give the resolver's address"
        ) from None
    return host, port


def _port(number: str, text: str) -> int:
    if not number.isdigit() or not 0 < int(number) < 65536:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return int(number)


def make_resolver(
    servers: Sequence[str], timeout: float = 5.0, *, default_port: int = 53
) -> dns.asyncresolver.Resolver:
    """dnspython's async resolver: the system's when ``servers`` is empty, else those.

    Raises ValueError (in words) for a server that is not an IP address.
    """
    import dns.asyncresolver
    import dns.nameserver

    resolver = dns.asyncresolver.Resolver(configure=not servers)
    if servers:
        parsed = [parse_server(server, default_port) for server in servers]
        resolver.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in parsed]
    resolver.lifetime = timeout
    # DANE trusts only what the resolver validated: ask it to say so (AD).
    wants_dnssec(resolver)
    return resolver


async def mx_hosts(
    domain: str, resolver: dns.asyncresolver.Resolver, *, shuffle: bool = False
) -> list[MXHost]:
    """The domain's MX hosts, best first, or the domain itself when it has no MX.

    Equal preferences come in random order when ``shuffle`` (RFC 5321
    section 5.1, for delivery), else by name (a report that reads the same
    each time). Raises :class:`MXLookupError`: NXDOMAIN and a null MX are
    permanent, no answer and SERVFAIL temporary.
    """
    import dns.exception
    import dns.resolver

    domain = domain.rstrip(".")
    try:
        answer = await resolver.resolve(domain, "MX")
    except dns.resolver.NXDOMAIN as exc:
        raise MXLookupError(
            f"{domain} does not exist (NXDOMAIN)", Cause.NXDOMAIN, secure=is_secure(exc)
        ) from None
    except dns.resolver.NoAnswer as exc:
        return [MXHost(0, domain, implicit=True, secure=is_secure(exc))]
    except dns.exception.DNSException as exc:
        cause, problem = dns_trouble(exc, domain, "MX")
        raise MXLookupError(problem, cause) from None
    secure = is_secure(answer)
    records = [(int(r.preference), str(r.exchange).rstrip(".").lower()) for r in answer]
    if any(host == "" for _, host in records):
        # RFC 7505: a null MX is the only record, and it means "no mail here".
        raise MXLookupError(
            f"{domain} accepts no mail: it publishes a null MX (RFC 7505)",
            Cause.NULL_MX,
            secure=secure,
        )
    if shuffle:
        records = random.SystemRandom().sample(records, len(records))
        records.sort(key=lambda record: record[0])  # stable: ties stay shuffled
    else:
        records.sort()
    return [MXHost(preference, host, secure=secure) for preference, host in records]


async def resolve_host(host: str, resolver: dns.asyncresolver.Resolver) -> tuple[list[str], bool]:
    """The host's IPv4 then IPv6 addresses, and whether every answer was DNSSEC-validated (AD).

    No address at all is an empty list; :class:`MXLookupError` (temporary)
    when none was found because DNS did not answer.
    """
    import dns.exception
    import dns.resolver

    async def one(rdtype: str) -> tuple[list[str], bool, Cause | None, str]:
        try:
            answer = await resolver.resolve(host, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as exc:
            return [], is_secure(exc), None, ""
        except dns.exception.DNSException as exc:
            cause, problem = dns_trouble(exc, host, rdtype)
            return [], False, cause, problem
        return [r.to_text() for r in answer], is_secure(answer), None, ""

    answers = await asyncio.gather(one("A"), one("AAAA"))
    found = [address for addresses, _, _, _ in answers for address in addresses]
    causes = [cause for _, _, cause, _ in answers if cause is not None]
    if not found and causes:
        problems = "; ".join(problem for _, _, _, problem in answers if problem)
        same = {*causes}
        cause = same.pop() if len(same) == 1 else Cause.FAILED
        raise MXLookupError(problems, cause)
    secure = all(secure for _, secure, _, _ in answers)
    return found, secure and bool(found)


async def lookup_mx(
    domain: str, *, nameservers: list[str] | None = None, port: int = 53, timeout: float = 5.0
) -> list[MXHost]:
    """MX hosts by preference, asking ``nameservers`` (IP addresses) on ``port``, else the system's.

    A domain without MX falls back to itself (RFC 5321 5.1); see :func:`mx_hosts`.
    """
    servers = nameservers or []
    try:
        resolver = make_resolver([f"[{s}]" for s in servers], timeout, default_port=port)
    except ValueError:  # dnspython takes addresses (and URLs), not host names
        shown = ", ".join(servers)
        raise MXLookupError(
            f"the DNS server {shown!r} is not an IP address; give the resolver's address",
            Cause.RESOLVER,
        ) from None
    return await mx_hosts(domain, resolver)
