"""Check a mail domain's posture: its DNS records and a live probe of each MX address.

Every name is resolved through dnspython's async resolver (the system's, or
the servers the user names), asking for DNSSEC (the DO bit) so that the AD
bit of a validating resolver says which answers were validated. Each MX
address is probed with tuimail/probe.py, connected to by address with the MX
name for TLS, a few at a time. Each part is bounded in time and caught: a
part that cannot run becomes an UNKNOWN item that says why, never a crash.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tuimail import dane
from tuimail.mx import (
    MX_HOSTS_EXAMINED,
    Cause,
    MXLookupError,
    dns_trouble,
    make_resolver,
    mx_hosts,
    resolve_host,
)
from tuimail.posture.records import (
    RecordError,
    SpfTerm,
    is_dmarc,
    is_spf,
    is_tlsrpt,
    parse_dkim,
    parse_dmarc,
    parse_spf,
    parse_tlsrpt,
    spf_domain,
)
from tuimail.posture.report import Item, PostureReport
from tuimail.probe import ProbeReport, ProbeTarget, Status, Thresholds, probe_many
from tuimail.profiles import Security

#: RFC 7208 section 4.6.4: at most 10 lookups, and at most 2 that find nothing.
SPF_LOOKUP_LIMIT = 10
SPF_VOID_LIMIT = 2
#: How deep include:/redirect= chains are followed (a loop stops at the limit too).
_SPF_DEPTH = 12
#: How many MX hosts are checked: tuimail/mx.py's limit for every examiner of MX hosts.
MX_CHECK_LIMIT = MX_HOSTS_EXAMINED
#: How many addresses of one MX host are checked, and how many PTR names of one
#: address are kept: what the report keeps per host stays small whatever DNS says.
MX_ADDRESSES_PER_HOST = 8
PTR_NAMES_KEPT = 4
#: DNS trouble that says nothing about the domain (no answer in time, a resolver that
#: refuses this machine): what depends on it is UNKNOWN, not CRITICAL.
_NO_ANSWER = frozenset({Cause.TIMEOUT, Cause.REFUSED})
#: A policy cached for less than a day helps little against a downgrade (RFC 8461 section 3.2).
_SHORT_MAX_AGE = 86400


@dataclass(frozen=True)
class CheckOptions:
    """How to check: whom to ask, which ports (tests only), what to trust, how long to wait."""

    dns_servers: tuple[str, ...] = ()
    mx_port: int = 25
    mta_sts_port: int = 443
    ca_file: str = ""
    timeout: float = 10.0
    dkim_selectors: tuple[str, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    ehlo_name: str = ""
    #: MX addresses probed at once.
    concurrency: int = 8


@dataclass
class Answer:
    """One DNS answer: its records as text, whether it was validated, or what went wrong."""

    name: str
    rdtype: str
    records: list[str] = field(default_factory=list)
    #: The AD bit: a validating resolver checked the DNSSEC signatures.
    secure: bool = False
    #: ok, nxdomain, nodata, or failed (``problem`` says how, tuimail/mx.py's words).
    outcome: str = "ok"
    problem: str = ""

    @property
    def empty(self) -> bool:
        """Found nothing: a void lookup in SPF's terms."""
        return self.outcome in ("nxdomain", "nodata")

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"

    def trouble(self) -> str:
        """The failure in words."""
        return self.problem


class Resolver:
    """dnspython's async resolver (tuimail/mx.py: with the DO bit), answers as :class:`Answer`.

    The MX hosts, their addresses and the TLSA records are looked up by the
    code that delivery uses (tuimail/mx.py, tuimail/dane.py) through
    :attr:`resolver`; :meth:`ask` reads the other records as the report needs them.
    """

    def __init__(self, servers: tuple[str, ...], timeout: float) -> None:
        self.resolver = make_resolver(servers, timeout=timeout)
        self.servers = servers

    async def ask(self, name: str, rdtype: str) -> Answer:
        import dns.exception
        import dns.flags
        import dns.resolver

        answer = Answer(name.rstrip("."), rdtype)
        try:
            found = await self.resolver.resolve(name, rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            answer.outcome = "nxdomain"
            return answer
        except dns.exception.DNSException as exc:
            answer.outcome, answer.problem = "failed", dns_trouble(exc, name, rdtype)[1]
            return answer
        answer.secure = bool(found.response.flags & dns.flags.AD)
        if found.rrset is None:
            answer.outcome = "nodata"
            return answer
        for record in found.rrset:
            if rdtype == "TXT":
                answer.records.append(b"".join(record.strings).decode("utf-8", "replace"))
            else:
                answer.records.append(record.to_text())
        return answer


async def check_domain(
    domain: str,
    options: CheckOptions,
    *,
    on_item: Callable[[Item], None] | None = None,
) -> PostureReport:
    """Everything about ``domain``, as a :class:`PostureReport`. Never raises for what it finds.

    A wrong ``--dns-server`` raises ValueError (from tuimail/mx.py) before anything runs.
    """
    domain = domain.strip().rstrip(".").lower()
    started = time.monotonic()
    report = PostureReport(domain)
    resolver = Resolver(options.dns_servers, min(options.timeout, 10.0))
    part_deadline = options.timeout * 3 + 5

    async def guarded(name: str, work: Awaitable[Item]) -> Item:
        try:
            async with asyncio.timeout(part_deadline):
                item = await work
        except TimeoutError:
            item = Item(name)
            item.problem(Status.UNKNOWN, f"not checked: no result within {part_deadline:g} seconds")
        except Exception as exc:  # a bug or an unforeseen library error: say so, go on
            item = Item(name)
            item.problem(Status.UNKNOWN, f"not checked: {type(exc).__name__}: {exc}")
        if on_item is not None:
            on_item(item)
        return item

    mx_item, hosts = await _guarded_mx(domain, resolver, guarded)
    report.items.append(mx_item)
    targets = [
        ProbeTarget(
            host=host.host,
            port=options.mx_port,
            security=Security.STARTTLS,
            ca_file=options.ca_file,
            thresholds=options.thresholds,
            timeout=options.timeout,
            ehlo_name=options.ehlo_name,
            name=f"MX {host.preference} {host.host} [{address}]",
            address=address,
        )
        for host in hosts
        for address in host.addresses
    ]

    async def probes() -> list[ProbeReport]:
        if not targets:
            return []
        return await probe_many(targets, concurrency=options.concurrency)

    mx_names = [host.host for host in hosts]
    dns_parts: list[Awaitable[Item]] = [
        guarded("spf", _spf(domain, resolver)),
        guarded("dmarc", _dmarc(domain, resolver)),
        guarded("tls-rpt", _tlsrpt(domain, resolver)),
        *(
            guarded(f"dkim {selector}", _dkim(domain, selector, resolver))
            for selector in options.dkim_selectors
        ),
    ]
    sts_task = asyncio.ensure_future(_sts_policy(domain, resolver, options))
    tlsa_task = asyncio.ensure_future(_tlsa_records(mx_names, resolver))
    addresses_secure = {host.host: host.secure for host in hosts}
    probe_task = asyncio.ensure_future(probes())
    dns_items = await asyncio.gather(*dns_parts)
    report.probes = await probe_task
    for probe_report in report.probes:
        item = _probe_item(probe_report)
        report.items.append(item)
        if on_item is not None:
            on_item(item)
    #: No MX host known although the domain may take mail: what depends on them is unknown.
    unknown_mx = not mx_names and not mx_item.details.get("null_mx")
    sts = await guarded("mta-sts", _judge_sts(sts_task, mx_names, report.probes, unknown_mx))
    dane = await guarded(
        "dane",
        _judge_dane(
            tlsa_task,
            addresses_secure,
            report.probes,
            mx_item.details.get("dnssec"),
            unknown_mx,
        ),
    )
    report.items += [*dns_items[:3], sts, dane, *dns_items[3:]]
    report.seconds = time.monotonic() - started
    return report


@dataclass
class _Host:
    """An MX host as the probes and the DANE judgement need it."""

    preference: int
    host: str
    addresses: list[str]
    #: Its address records were DNSSEC-validated (RFC 7672 section 2.2.2).
    secure: bool


async def _guarded_mx(
    domain: str,
    resolver: Resolver,
    guarded: Callable[[str, Awaitable[Item]], Awaitable[Item]],
) -> tuple[Item, list[_Host]]:
    hosts: list[_Host] = []
    item = await guarded("mx", _mx(domain, resolver, hosts))
    return item, hosts


# --- MX, addresses, reverse DNS --------------------------------------------


async def _mx(domain: str, resolver: Resolver, hosts: list[_Host]) -> Item:
    """The MX hosts (found as delivery finds them, tuimail/mx.py), their addresses and
    reverse DNS; fills ``hosts`` for the probes."""
    item = Item("mx")
    try:
        found = await mx_hosts(domain, resolver.resolver)
    except MXLookupError as exc:
        item.details["dnssec"] = exc.secure
        if exc.cause is Cause.NULL_MX:
            item.problem(
                Status.WARNING, f"{domain} publishes a null MX: it accepts no mail (RFC 7505)"
            )
            item.details["null_mx"] = True
            item.details["hosts"] = []
        else:
            item.problem(
                Status.UNKNOWN if exc.cause in _NO_ANSWER else Status.CRITICAL, exc.explanation
            )
        return item
    item.details["dnssec"] = found[0].secure
    if found[0].implicit:
        item.problem(
            Status.WARNING,
            f"{domain} has no MX record: senders use its own address (RFC 5321 section 5.1)",
        )
    item.details["count"] = len(found)
    if len(found) > MX_CHECK_LIMIT:
        item.problem(
            Status.WARNING,
            f"{domain} lists {len(found)} MX hosts; the best {MX_CHECK_LIMIT} were checked and "
            f"{len(found) - MX_CHECK_LIMIT} were not (senders try only the first few: Postfix "
            "tries 5 addresses)",
        )
        found = found[:MX_CHECK_LIMIT]
    listed: list[dict[str, Any]] = []
    for mx in found:
        if _is_address(mx.host):
            # MX 10 192.0.2.1.: a name that is no host (RFC 1035 section 3.3.9 says the
            # exchange is a host's name); not looked up, probed or given TLSA records.
            listed.append({"preference": mx.preference, "host": mx.host, "addresses": []})
            item.problem(
                Status.CRITICAL,
                f"the MX {mx.host} is an IP address, not a host name: senders look it up "
                "as a name and find no server",
            )
    found = [mx for mx in found if not _is_address(mx.host)]
    looked = await asyncio.gather(*(_host(mx.host, resolver) for mx in found))
    for mx, (addresses, secure, problems) in zip(found, looked, strict=True):
        listed.append({"preference": mx.preference, "host": mx.host, "addresses": addresses})
        for status, sentence in problems:
            item.problem(status, sentence)
        hosts.append(_Host(mx.preference, mx.host, [a["address"] for a in addresses], secure))
    item.details["hosts"] = listed
    return item


async def _host(
    host: str, resolver: Resolver
) -> tuple[list[dict[str, Any]], bool, list[tuple[Status, str]]]:
    """The host's addresses with their reverse DNS, whether they were validated, and problems."""
    problems: list[tuple[Status, str]] = []
    # Asked beside the addresses, so an alias check costs no time of its own.
    alias, resolved = await asyncio.gather(
        resolver.ask(host, "CNAME"), resolve_host(host, resolver.resolver), return_exceptions=True
    )
    if isinstance(alias, Answer) and alias.records:
        target = alias.records[0].rstrip(".").lower()
        problems.append(
            (
                Status.WARNING,
                f"the MX {host} is an alias (CNAME) of {target}: an MX must name the host "
                "itself (RFC 2181 section 10.3), and some senders refuse an alias",
            )
        )
    if isinstance(resolved, MXLookupError):
        # No answer in time says nothing of the zone (UNKNOWN); a SERVFAIL is what senders get too.
        status = Status.UNKNOWN if resolved.cause in _NO_ANSWER else Status.CRITICAL
        problems.append((status, f"the MX {host} has no address ({resolved.explanation})"))
        return [], False, problems
    if isinstance(resolved, BaseException):
        raise resolved
    found, secure = resolved
    if not found:
        problems.append((Status.CRITICAL, f"the MX {host} has no address record (A or AAAA)"))
        return [], False, problems
    if len(found) > MX_ADDRESSES_PER_HOST:
        problems.append(
            (
                Status.WARNING,
                f"the MX {host} has {len(found)} addresses; the first {MX_ADDRESSES_PER_HOST} "
                f"were checked and {len(found) - MX_ADDRESSES_PER_HOST} were not",
            )
        )
        found = found[:MX_ADDRESSES_PER_HOST]
    reverse = await asyncio.gather(*(_reverse(address, resolver) for address in found))
    addresses = []
    for address, (names, confirmed, trouble) in zip(found, reverse, strict=True):
        addresses.append({"address": address, "ptr": names, "fcrdns": confirmed})
        if trouble:
            problems.append((Status.WARNING, trouble))
        elif not names:
            problems.append(
                (
                    Status.WARNING,
                    f"{address} ({host}) has no reverse DNS (PTR): many servers refuse mail from such addresses",
                )
            )
        elif not confirmed:
            problems.append(
                (
                    Status.WARNING,
                    f"the reverse DNS of {address} ({host}) is {', '.join(names)}, "
                    "which does not resolve back to it (no FCrDNS)",
                )
            )
    return addresses, secure, problems


async def _reverse(address: str, resolver: Resolver) -> tuple[list[str], bool, str]:
    """The PTR names of ``address``, whether one resolves back to it, and DNS trouble."""
    import dns.reversename

    answer = await resolver.ask(dns.reversename.from_address(address).to_text(), "PTR")
    if answer.failed:
        return [], False, answer.trouble()
    # Only the first few names are kept and resolved back (PTR_NAMES_KEPT): one is usual.
    names = [name.rstrip(".").lower() for name in answer.records[:PTR_NAMES_KEPT]]
    rdtype = "AAAA" if ":" in address else "A"
    forward = await asyncio.gather(*(resolver.ask(name, rdtype) for name in names))
    confirmed = any(_same_address(address, found) for answer in forward for found in answer.records)
    return names, confirmed, ""


def _is_address(host: str) -> bool:
    """Whether an MX name is an IPv4 or IPv6 address rather than a host's name."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _same_address(one: str, other: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(one) == ipaddress.ip_address(other)
    except ValueError:
        return False


# --- the live probes ---------------------------------------------------------


def _probe_item(probe: ProbeReport) -> Item:
    target = probe.target
    item = Item(f"smtp {target.host} [{target.address}]")
    item.status = probe.status
    item.problems = list(probe.reasons)
    tls = probe.tls
    item.details = {
        "host": target.host,
        "address": target.address,
        "port": target.effective_port,
        "reached": probe.reached,
        "banner": probe.banner,
        "starttls": "starttls" in probe.capabilities_before_tls,
        "tls_version": tls.version if tls else None,
        "certificate_days_left": tls.days_left if tls else None,
        "certificate_trusted": tls.trust.trusted if tls else None,
        "name_matches": tls.trust.hostname_matches if tls else None,
        "seconds": round(probe.total, 6),
    }
    return item


# --- SPF --------------------------------------------------------------------


@dataclass
class _SpfCount:
    lookups: int = 0
    void: int = 0
    #: The include:/redirect= path from the domain's own record to the one being read:
    #: a name met again on it is a loop (the same record included twice is no loop).
    visited: list[str] = field(default_factory=list)


async def _spf_record(domain: str, resolver: Resolver) -> tuple[str | None, Answer]:
    answer = await resolver.ask(domain, "TXT")
    records = [text for text in answer.records if is_spf(text)]
    if len(records) > 1:
        raise RecordError(f"{domain} has {len(records)} SPF records; one is allowed (permerror)")
    return (records[0] if records else None), answer


async def _spf(domain: str, resolver: Resolver) -> Item:
    item = Item("spf")
    try:
        record, answer = await _spf_record(domain, resolver)
    except RecordError as exc:
        item.problem(Status.CRITICAL, str(exc))
        return item
    if answer.failed:
        item.problem(Status.UNKNOWN, answer.trouble())
        return item
    if record is None:
        item.problem(
            Status.WARNING, f"{domain} has no SPF record: receivers cannot tell who may send as it"
        )
        return item
    item.details["record"] = record
    count = _SpfCount(visited=[domain])
    try:
        terms = parse_spf(record)
    except RecordError as exc:
        item.problem(Status.CRITICAL, f"the SPF record is invalid (permerror): {exc}")
        return item
    try:
        await _spf_walk(domain, terms, resolver, count, item, depth=0)
    except RecordError as exc:
        item.problem(Status.CRITICAL, f"a record it includes is invalid (permerror): {exc}")
    item.details["lookups"] = count.lookups
    item.details["void_lookups"] = count.void
    if count.lookups > SPF_LOOKUP_LIMIT:
        item.problem(
            Status.CRITICAL,
            f"the SPF record needs {count.lookups} DNS lookups; more than {SPF_LOOKUP_LIMIT} "
            "is a permerror (RFC 7208 section 4.6.4)",
        )
    if count.void > SPF_VOID_LIMIT:
        item.problem(
            Status.CRITICAL,
            f"{count.void} SPF lookups find nothing; more than {SPF_VOID_LIMIT} such void "
            "lookups is a permerror (RFC 7208 section 4.6.4)",
        )
    final = [t for t in terms if not t.modifier and t.name == "all"]
    redirect = any(t.modifier and t.name == "redirect" for t in terms)
    if final and final[-1].qualifier == "+":
        item.problem(Status.CRITICAL, "+all lets every server on the internet send as this domain")
    elif final and final[-1].qualifier == "?":
        item.problem(Status.WARNING, "?all says nothing about servers not listed (neutral)")
    elif not final and not redirect:
        item.problem(
            Status.WARNING,
            "the SPF record ends without an all mechanism: other servers get neutral",
        )
    return item


async def _spf_walk(
    domain: str, terms: list[SpfTerm], resolver: Resolver, count: _SpfCount, item: Item, depth: int
) -> None:
    has_all = any(not t.modifier and t.name == "all" for t in terms)
    for term in terms:
        if count.lookups > SPF_LOOKUP_LIMIT:
            return
        if term.modifier:
            if term.name != "redirect" or has_all:
                continue
        elif term.name not in ("include", "a", "mx", "ptr", "exists"):
            continue
        count.lookups += 1
        if term.name == "ptr":
            item.problem(
                Status.WARNING,
                f"{term} is slow and unreliable and should not be used (RFC 7208 section 5.5)",
            )
            continue
        if term.has_macro:
            item.notes.append(
                f"{term} uses a macro; its lookup depends on the message and is not followed"
            )
            continue
        target = spf_domain(term, domain)
        if term.name in ("include", "redirect"):
            await _spf_follow(term, target, resolver, count, item, depth)
        elif term.name == "a":
            answers = await asyncio.gather(resolver.ask(target, "A"), resolver.ask(target, "AAAA"))
            if all(a.empty for a in answers):
                count.void += 1
                item.notes.append(f"{term} ({domain}): {target} has no address (a void lookup)")
        elif term.name == "mx":
            answer = await resolver.ask(target, "MX")
            if answer.empty:
                count.void += 1
                item.notes.append(f"{term} ({domain}): {target} has no MX (a void lookup)")
            elif len(answer.records) > 10:
                item.problem(
                    Status.CRITICAL,
                    f"{term}: {target} has {len(answer.records)} MX hosts; more than 10 is a permerror",
                )
        elif term.name == "exists":
            answer = await resolver.ask(target, "A")
            if answer.empty:
                count.void += 1
                item.notes.append(f"{term} ({domain}): {target} has no address (a void lookup)")


async def _spf_follow(
    term: SpfTerm, target: str, resolver: Resolver, count: _SpfCount, item: Item, depth: int
) -> None:
    if target.lower() in count.visited[: depth + 1] or depth >= _SPF_DEPTH:
        raise RecordError(f"{term} leads back to a record it came from (a loop)")
    del count.visited[depth + 1 :]
    count.visited.append(target.lower())
    record, answer = await _spf_record(target, resolver)
    if answer.failed:
        item.problem(Status.UNKNOWN, f"{term}: {answer.trouble()}")
        return
    if answer.empty:
        count.void += 1
    if record is None:
        raise RecordError(f"{term}: {target} has no SPF record")
    await _spf_walk(target, parse_spf(record), resolver, count, item, depth + 1)


# --- DMARC, TLS-RPT, DKIM ---------------------------------------------------


async def _single_record(
    item: Item,
    resolver: Resolver,
    name: str,
    kind: tuple[str, Callable[[str], bool]],
    without: str,
    readers: str,
) -> str | None:
    """The one TXT record of ``kind`` (its name, its test) at ``name``; None when there is
    not exactly one, with the item's problem said (``without``: what its absence means)."""
    answer = await resolver.ask(name, "TXT")
    if answer.failed:
        item.problem(Status.UNKNOWN, answer.trouble())
        return None
    words, is_kind = kind
    records = [text for text in answer.records if is_kind(text)]
    if not records:
        item.problem(Status.WARNING, f"no {words} record at {name}: {without}")
        return None
    if len(records) > 1:
        item.problem(
            Status.CRITICAL, f"{name} has {len(records)} {words} records; {readers} use none"
        )
        return None
    item.details["record"] = records[0]
    return records[0]


async def _dmarc(domain: str, resolver: Resolver) -> Item:
    item = Item("dmarc")
    record = await _single_record(
        item,
        resolver,
        f"_dmarc.{domain}",
        ("DMARC", is_dmarc),
        "receivers have no policy for mail that fails SPF and DKIM",
        "receivers",
    )
    if record is None:
        return item
    try:
        dmarc = parse_dmarc(record)
    except RecordError as exc:
        item.problem(Status.CRITICAL, f"the DMARC record is invalid: {exc}")
        return item
    item.details.update(
        policy=dmarc.policy,
        subdomain_policy=dmarc.subdomain_policy,
        pct=dmarc.percent,
        rua=list(dmarc.rua),
        ruf=list(dmarc.ruf),
    )
    if dmarc.policy == "none":
        item.problem(Status.WARNING, "p=none: mail failing DMARC is only reported, not refused")
    if dmarc.subdomain_policy == "none" and dmarc.policy != "none":
        item.problem(Status.WARNING, "sp=none: mail from subdomains failing DMARC is not refused")
    if dmarc.percent < 100:
        item.problem(
            Status.WARNING,
            f"pct={dmarc.percent}: the policy applies to {dmarc.percent}% of failing mail only",
        )
    if not dmarc.rua:
        item.problem(Status.WARNING, "no rua= address: nobody receives the aggregate reports")
    return item


async def _tlsrpt(domain: str, resolver: Resolver) -> Item:
    item = Item("tls-rpt")
    record = await _single_record(
        item,
        resolver,
        f"_smtp._tls.{domain}",
        ("TLS-RPT", is_tlsrpt),
        "senders cannot report TLS failures to you",
        "senders",
    )
    if record is None:
        return item
    try:
        item.details["rua"] = list(parse_tlsrpt(record))
    except RecordError as exc:
        item.problem(Status.CRITICAL, f"the TLS-RPT record is invalid: {exc}")
    return item


async def _dkim(domain: str, selector: str, resolver: Resolver) -> Item:
    item = Item(f"dkim {selector}")
    name = f"{selector}._domainkey.{domain}"
    item.details["name"] = name
    answer = await resolver.ask(name, "TXT")
    if answer.failed:
        item.problem(Status.UNKNOWN, answer.trouble())
        return item
    if not answer.records:
        item.problem(Status.CRITICAL, f"no DKIM key at {name}")
        return item
    text = "".join(answer.records) if len(answer.records) == 1 else answer.records[0]
    if len(answer.records) > 1:
        item.problem(
            Status.WARNING, f"{name} has {len(answer.records)} TXT records; verifiers may pick any"
        )
    item.details["record"] = text
    try:
        key = parse_dkim(text)
    except RecordError as exc:
        item.problem(Status.CRITICAL, f"the DKIM record is invalid: {exc}")
        return item
    item.details.update(key_type=key.key_type, bits=key.bits, testing=key.testing)
    if key.bits == 0:
        item.problem(Status.CRITICAL, f"the key at {name} is revoked (empty p=)")
    elif key.key_type == "rsa" and key.bits < 1024:
        item.problem(
            Status.CRITICAL, f"an RSA key of {key.bits} bits is refused by verifiers (RFC 8301)"
        )
    elif key.key_type == "rsa" and key.bits < 2048:
        item.problem(Status.WARNING, f"an RSA key of {key.bits} bits is weak; use 2048 bits")
    if key.testing:
        item.problem(
            Status.WARNING, "t=y: the key is in testing mode; verifiers may ignore failures"
        )
    return item


# --- MTA-STS ----------------------------------------------------------------


@dataclass
class _StsFound:
    record: str | None = None
    policy: Any = None  # tuimail.mta_sts.Policy
    problem: tuple[Status, str] | None = None


async def _sts_policy(domain: str, resolver: Resolver, options: CheckOptions) -> _StsFound:
    """The record and the policy fetched now over verified HTTPS (no cache: the check is live).

    tuimail/mta_sts.py reads the record as delivery does; DNS trouble is told
    apart from a broken record (UNKNOWN, not CRITICAL).
    """
    from tuimail.mta_sts import PolicyError, RecordLookupError, fetch_policy, record_id

    found = _StsFound()
    try:
        found.record = await record_id(domain, resolver.resolver)
    except RecordLookupError as exc:
        found.problem = (Status.UNKNOWN, str(exc))
        return found
    except PolicyError as exc:
        found.problem = (Status.CRITICAL, f"the _mta-sts.{domain} record is unusable: {exc}")
        return found
    if found.record is None:
        return found
    try:
        found.policy = await fetch_policy(
            domain,
            found.record,
            resolver.resolver,
            ca_file=options.ca_file,
            port=options.mta_sts_port,
            timeout=min(options.timeout, 10.0),
        )
    except PolicyError as exc:
        found.problem = (Status.CRITICAL, str(exc))
    return found


async def _judge_sts(
    task: asyncio.Future[_StsFound],
    mx_names: list[str],
    probes: list[ProbeReport],
    unknown_mx: bool,
) -> Item:
    item = Item("mta-sts")
    found = await task
    item.details["id"] = found.record
    if found.problem is not None:
        item.problem(*found.problem)
        return item
    if found.record is None:
        item.problem(
            Status.WARNING,
            "no MTA-STS record: senders may deliver without verified TLS",
        )
        return item
    policy = found.policy
    item.details.update(mode=policy.mode, mx=list(policy.mx), max_age=policy.max_age)
    if policy.mode == "none":
        item.problem(Status.WARNING, "the policy's mode is none: it asks nothing of senders")
        return item
    if policy.mode == "testing":
        item.problem(
            Status.WARNING, "the policy is in testing mode: failures are reported, not refused"
        )
    if policy.max_age < _SHORT_MAX_AGE:
        item.problem(Status.WARNING, f"max_age {policy.max_age} is less than a day")
    severity = Status.CRITICAL if policy.mode == "enforce" else Status.WARNING
    if unknown_mx:
        item.problem(
            Status.UNKNOWN, "the MX hosts are unknown, so they were not compared with the policy"
        )
    matches = {host: policy.matches(host) for host in mx_names}
    item.details["matches"] = matches
    patterns = ", ".join(policy.mx)
    for host, matched in matches.items():
        if not matched:
            item.problem(
                severity,
                f"the MX {host} does not match the policy's mx ({patterns}): senders refuse it",
            )
    for probe in probes:
        host = probe.target.host
        if not matches.get(host):
            continue
        tls = probe.tls
        where = f"{host} [{probe.target.address}]"
        if tls is None:
            if probe.reached:
                item.problem(
                    severity, f"{where} offers no TLS; senders following the policy refuse it"
                )
        elif not (tls.trust.trusted and tls.trust.hostname_matches):
            item.problem(
                severity, f"{where}: {tls.trust.reason}; senders following the policy refuse it"
            )
    return item


# --- DANE -------------------------------------------------------------------


async def _tlsa_records(mx_names: list[str], resolver: Resolver) -> dict[str, dane.TLSALookup]:
    """Each MX host's TLSA records, looked up as delivery does (tuimail/dane.py)."""
    results = await asyncio.gather(
        *(dane.lookup_tlsa(host, resolver.resolver) for host in mx_names)
    )
    return dict(zip(mx_names, results, strict=True))


def _tlsa_failure(tlsa: dane.TLSALookup) -> tuple[Status, str]:
    """A failed TLSA lookup as a problem: senders treat it as a failed MX, not as no DANE."""
    if tlsa.failure in (dane.Failure.TIMEOUT, dane.Failure.ERROR):
        return Status.UNKNOWN, tlsa.problem
    if tlsa.failure is dane.Failure.BOGUS:
        return Status.CRITICAL, f"{tlsa.problem}: senders using DANE refuse to deliver"
    return Status.CRITICAL, f"{tlsa.problem}: senders using DANE do not use this MX"


async def _judge_dane(
    task: asyncio.Future[dict[str, dane.TLSALookup]],
    addresses_secure: dict[str, bool],
    probes: list[ProbeReport],
    mx_secure: Any,
    unknown_mx: bool,
) -> Item:
    """What a sender using DANE (tuimail/routing.py, RFC 7672) would make of each MX host."""
    item = Item("dane")
    if unknown_mx:
        await task
        item.problem(Status.UNKNOWN, "not checked: the MX hosts are unknown")
        return item
    found = await task
    item.details["mx_dnssec"] = bool(mx_secure)
    item.details["tlsa"] = {
        host: [r.text(short=False) for r in f.records] for host, f in found.items()
    }
    item.details["dnssec"] = {host: f.status is dane.Status.SECURE for host, f in found.items()}
    # Whose lookup failed: their empty record list is no answer, not "no TLSA records".
    item.details["tlsa_failed"] = sorted(
        host for host, f in found.items() if f.status is dane.Status.FAILED
    )
    matched: dict[str, bool] = {}
    published = False
    for host, tlsa in found.items():
        if tlsa.status is dane.Status.NONE:
            continue
        published = True
        if tlsa.status is dane.Status.FAILED:
            item.problem(*_tlsa_failure(tlsa))
            continue
        if tlsa.status is dane.Status.INSECURE:
            item.problem(
                Status.WARNING,
                f"the TLSA records of {host} are not DNSSEC-validated: senders ignore them",
            )
            continue
        if not mx_secure:
            item.problem(
                Status.WARNING,
                f"the MX records are not DNSSEC-validated: senders do not use the TLSA records of {host}",
            )
        elif not addresses_secure.get(host, False):
            item.problem(
                Status.WARNING,
                f"the address records of {host} are not DNSSEC-validated: senders do not use "
                "its TLSA records (RFC 7672 section 2.2.2)",
            )
        for record in tlsa.records:
            if record.usable:
                continue
            usage = dane.USAGE_NAMES.get(record.usage, str(record.usage))
            item.problem(
                Status.WARNING,
                f"{host}: the TLSA record {record.text()} ({usage}) is not used for SMTP (RFC 7672)",
            )
        for probe in probes:
            if probe.target.host != host:
                continue
            where = f"{host} [{probe.target.address}]"
            _judge_chain(item, matched, tlsa, probe, where)
    item.details["matches"] = matched
    if not published:
        item.notes.append("no MX host publishes TLSA records (no DANE)")
    return item


def _judge_chain(
    item: Item,
    matched: dict[str, bool],
    tlsa: dane.TLSALookup,
    probe: ProbeReport,
    where: str,
) -> None:
    """One probed address against its host's validated TLSA records (tuimail/dane.py's match)."""
    chain = probe.tls.der_chain if probe.tls is not None else ()
    if not tlsa.applies:
        # Records, none usable: senders still require TLS, without authenticating it.
        if probe.reached and probe.tls is None:
            item.problem(
                Status.CRITICAL,
                f"{where} offers no TLS, which its TLSA records require even though none "
                "is usable: senders using DANE refuse to deliver",
            )
        return
    if not chain and not probe.reached:
        # Down, or port 25 closed from here: nothing to compare, which is no mismatch.
        item.problem(
            Status.UNKNOWN,
            f"{where} could not be reached, so its certificate was not compared with its "
            "TLSA records",
        )
        return
    if not chain:
        matched[where] = False
        item.problem(Status.CRITICAL, f"{where} presented no certificate to match its TLSA records")
        return
    verdict = dane.match(tlsa.usable, chain, probe.target.host)
    matched[where] = verdict.matched
    if not verdict.matched:
        item.problem(
            Status.CRITICAL,
            f"the certificate {where} presents matches none of its TLSA records "
            f"({verdict.reason}): senders using DANE refuse to deliver",
        )
