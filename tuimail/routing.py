"""Direct delivery: a message to a recipient domain's own mail servers, found in DNS.

What an MTA does in place of a relay (RFC 5321 section 5): the recipients
are grouped by domain (:func:`by_domain`); each domain's MX records are tried
in preference order, equal preferences in random order; a domain without MX
records is its own mail server (its A/AAAA records, RFC 5321 section 5.1); a
null MX (``0 .``, RFC 7505) says the domain takes no mail, a permanent
failure. Every name, the MX hosts' addresses included, is resolved through
dnspython's async resolver (the system's, or the servers the user names), and
the session connects to the resolved address while EHLO and TLS use names.

A temporary failure (a 4xx, a refused or dropped connection, a timeout, an
MX host whose addresses DNS does not give) before the message data went out
moves on to the next address and the next
MX; a permanent refusal or a delivery stops, and once the data went out no
other MX is tried, so a message is never delivered twice. TLS per MX,
strongest first: DANE (tuimail/dane.py: DNSSEC-validated TLSA records, the
chain checked by the session's ``PeerCheck``; a mismatch or a bogus answer
fails that MX, never a fall back to less), then the domain's MTA-STS policy
(tuimail/mta_sts.py), else opportunistic (tuimail/session.py: STARTTLS when
offered, unverified, never presented as secure). Each decision is an ``===``
line in the transcript.

A message to several domains is one outbox message (:func:`is_direct`
profiles, see tuimail/cli/send.py): the domains that failed for now count as
recipients refused for now, so a retry goes only to them, never again to a
domain that took it (:func:`send_direct`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from tuimail.dane import Status
from tuimail.errors import TuimailError

# The resolver and the MX hosts are tuimail/mx.py's: routing re-exports what its callers use.
from tuimail.mx import MXHost, MXLookupError, make_resolver, mx_hosts, resolve_host
from tuimail.profiles import Profile, ProfileError, Security
from tuimail.session import (
    DEFAULT_DEADLINE,
    Delivery,
    PeerCheck,
    RecipientRefusal,
    SessionFailure,
    SessionReport,
    Stage,
    send,
)
from tuimail.transcript import Entry, EventKind, Transcript

if TYPE_CHECKING:
    import dns.asyncresolver

    from tuimail.credentials import Secret
    from tuimail.dane import TLSALookup, TLSARecord
    from tuimail.message import OutgoingMessage
    from tuimail.mta_sts import Policy

#: The port MX servers listen on; other ports are for tests (``--mx-port``).
SMTP_PORT = 25

#: What a direct profile carries in ``Profile.extra`` (kept in the outbox's sidecar).
ROUTE_KEY = "route"
DIRECT = "direct"
DNS_SERVERS_KEY = "dns_servers"
#: The MTA-STS policy server's port (tests only: real ones listen on 443).
MTA_STS_PORT_KEY = "mta_sts_port"
HTTPS_PORT = 443

#: How many MX addresses one delivery attempt tries, at most, as Postfix's
#: ``smtp_mx_address_limit`` (default 5): the addresses that the MX hosts'
#: lookups give, in MX order, an unusable host's (DANE, MTA-STS) included.
#: A domain that lists 1,000 MX hosts (or one with 1,000 addresses) would
#: otherwise have a connection tried to each, one after another, every retry.
#: Five is more than any real domain's fallback needs; the outbox's retry
#: starts again from the best MX, so nothing is lost by stopping.
MX_ADDRESS_LIMIT = 5
#: How many SMTP sessions one delivery attempt has, at most, as Postfix's
#: ``smtp_mx_session_limit`` (default 2): a session counts once it got
#: through the greeting, EHLO and TLS (a server that answers and then says
#: 4xx to MAIL, RCPT or DATA); refused connections and failed handshakes
#: count only against :data:`MX_ADDRESS_LIMIT`. Two servers that both
#: defer the message mean a later retry, not a third server now.
MX_SESSION_LIMIT = 2
#: The stages a session has passed when it fails at these: it counts
#: against :data:`MX_SESSION_LIMIT`.
_SESSION_STAGES = frozenset({Stage.AUTH, Stage.MAIL, Stage.RCPT, Stage.DATA, Stage.DOT})

#: EHLO names real MX servers refuse or that say nothing about the sender.
_NOT_A_NAME = frozenset({"localhost", "localhost.localdomain", "localdomain"})
#: One label of a host name (RFC 1123; the underscore, which some hosts carry, let through).
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


class RoutingError(TuimailError):
    """No route to a domain's mail servers; ``temporary`` says whether to try again later."""

    def __init__(self, explanation: str, *, temporary: bool) -> None:
        super().__init__(explanation)
        self.explanation = explanation
        self.temporary = temporary


def by_domain(recipients: Sequence[str]) -> dict[str, list[str]]:
    """Recipients grouped by their domain (compared in lower case), in first-seen order."""
    groups: dict[str, list[str]] = {}
    for address in recipients:
        domain = address.rpartition("@")[2].rstrip(".").lower()
        groups.setdefault(domain, []).append(address)
    return groups


def check_ehlo_name(name: str) -> str:
    """The EHLO name for direct delivery, or :class:`RoutingError` saying why it is unusable.

    MX servers check that the name is a fully qualified domain name (many
    refuse ``localhost`` outright, and a bare address or a name with an empty
    or a malformed label), so such names are refused here too.
    """
    name = name.strip().rstrip(".")
    if not name or name.lower() in _NOT_A_NAME or name.lower().endswith(".localdomain"):
        raise RoutingError(
            f"the EHLO name {name or '(none)'!r} is not a fully qualified domain name, "
            "and mail servers refuse it",
            temporary=False,
        )
    labels = name.split(".")
    if (
        name.startswith("[")
        or len(labels) < 2
        or len(name) > 253
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()  # 192.0.2.1: an address, not a name
    ):
        raise RoutingError(
            f"the EHLO name {name!r} is not a fully qualified domain name "
            "(like mail.example.org), and mail servers refuse it",
            temporary=False,
        )
    return name


#: Where an EHLO name came from, for the face to word (:func:`choose_ehlo_name`).
EHLO_GIVEN, EHLO_CONFIG, EHLO_MACHINE = "given", "config", "machine"


class EhloNameRefused(RoutingError):
    """The EHLO name direct delivery would use is refused; ``source`` says where it came from."""

    def __init__(self, explanation: str, source: str) -> None:
        super().__init__(explanation, temporary=False)
        self.source = source


def choose_ehlo_name(given: str, configured: str) -> str:
    """The EHLO name: ``given`` (a flag), else ``configured`` (``[direct] ehlo_name``), else the FQDN.

    The FQDN lookup may block on a slow resolver: call in a thread. Raises
    :class:`EhloNameRefused` naming the source of a name MX servers refuse
    (``localhost``, a name without a dot).
    """
    source = EHLO_GIVEN if given else EHLO_CONFIG if configured else EHLO_MACHINE
    name = given or configured or machine_fqdn()
    try:
        return check_ehlo_name(name)
    except RoutingError as exc:
        raise EhloNameRefused(exc.explanation, source) from None


def machine_fqdn() -> str:
    """This machine's fully qualified name (may block on a slow resolver: call in a thread)."""
    return socket.getfqdn()


async def mail_hosts(domain: str, resolver: dns.asyncresolver.Resolver) -> list[MXHost]:
    """The domain's MX hosts, best first (equal preferences shuffled), or the domain itself.

    Raises :class:`RoutingError`: permanent for a domain that does not exist
    or publishes a null MX, temporary when DNS does not answer.
    """
    try:
        return await mx_hosts(domain, resolver, shuffle=True)
    except MXLookupError as exc:
        raise RoutingError(exc.explanation, temporary=exc.temporary) from None


def address_literal(domain: str) -> str | None:
    """The address of a domain literal (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``), else None.

    RFC 5321 section 4.1.3: IPv4 bare, IPv6 tagged ``IPv6:``. A literal that
    is neither is :class:`RoutingError` (permanent): no retry makes it one.
    """
    if not domain.startswith("["):
        return None
    inside = domain[1:-1] if domain.endswith("]") else ""
    version = 4
    if inside[:5].lower() == "ipv6:":
        inside, version = inside[5:], 6
    try:
        address = ipaddress.ip_address(inside)
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise RoutingError(
            f"{domain} is not an IP address literal ([192.0.2.1] or [IPv6:2001:db8::1])",
            temporary=False,
        )
    return str(address)


def direct_profile(
    domain: str,
    *,
    ehlo_name: str,
    mx_port: int = SMTP_PORT,
    dns_servers: Sequence[str] = (),
    ca_file: str = "",
    timeout: float = 30.0,
    mta_sts_port: int = HTTPS_PORT,
) -> Profile:
    """The outbox's settings for a direct delivery (no server, no account).

    ``domain`` (the first recipient's) is only what the outbox shows as the
    message's server: :func:`send_direct` routes by the recipients.
    """
    return Profile(
        name=DIRECT,
        host=domain,
        port=mx_port,
        security=Security.NONE,
        verify_tls=False,
        ca_file=ca_file,
        ehlo_name=ehlo_name,
        timeout=timeout,
        extra={
            ROUTE_KEY: DIRECT,
            DNS_SERVERS_KEY: list(dns_servers),
            MTA_STS_PORT_KEY: mta_sts_port,
        },
    )


def is_direct(profile: Profile) -> bool:
    """A profile made by :func:`direct_profile`: its host is a recipient domain, not a server."""
    return profile.extra.get(ROUTE_KEY) == DIRECT


def _dns_servers(profile: Profile) -> list[str]:
    servers = profile.extra.get(DNS_SERVERS_KEY, [])
    return [str(s) for s in servers] if isinstance(servers, list) else []


async def send_direct(
    profile: Profile,
    outgoing: OutgoingMessage,
    password: Secret | None = None,
    *,
    on_entry: Callable[[Entry], None] | None = None,
    deadline: float = DEFAULT_DEADLINE,
    transcript: Transcript | None = None,
    before_data: Callable[[], Awaitable[None] | None] | None = None,
    on_delivered: Callable[[Delivery], Awaitable[None] | None] | None = None,
    on_domain_delivered: Callable[[Delivery], Awaitable[None] | None] | None = None,
) -> SessionReport:
    """Deliver to each recipient domain's MX hosts (a :func:`direct_profile`), as ``session.send`` would.

    Never raises for delivery problems: the report's failure says why (the
    last MX's, or the routing's own). ``password`` is unused: direct delivery
    never authenticates. Everything, every domain and MX, runs within
    ``deadline``.

    With one domain the report is that domain's session's. With several,
    the domains are tried in turn and the report is one delivery for all
    (``on_delivered`` hears it once, at the end): a domain that failed
    counts as a refusal of its recipients, for now (4xx) or for good, so the
    outbox retries only the recipients of the domains that failed for now
    (their ``delivered_to`` is kept); a domain whose delivery may have
    arrived counts as refused for good (a 554 saying so), never sent again.
    ``on_domain_delivered`` hears each domain's delivery as soon as it has
    its 250, before the next domain is tried, while the others are still to
    go: the outbox records who has the message, so that a sender killed
    between two domains sends it later to the others only.
    """
    del password
    if transcript is None:
        transcript = Transcript(title=f"direct to {profile.host}")
    if on_entry is not None:
        transcript.subscribe(on_entry)
    ends = asyncio.get_running_loop().time() + deadline
    groups = by_domain(outgoing.envelope_recipients)
    if len(groups) == 1:
        (domain,) = groups
        return await _one_domain(
            profile, domain, outgoing, transcript, ends, before_data, on_delivered
        )
    reports: dict[str, tuple[list[str], SessionReport]] = {}
    for index, (domain, addresses) in enumerate(groups.items()):
        wanted = set(addresses)
        part = dataclasses.replace(
            outgoing, recipients=tuple(r for r in outgoing.recipients if r.addr_spec in wanted)
        )
        transcript.event(EventKind.INFO, f"direct: to {domain}: {', '.join(addresses)}")
        report = await _one_domain(profile, domain, part, transcript, ends, before_data, None)
        reports[domain] = (addresses, report)
        more = index < len(groups) - 1
        if more and report.delivery is not None and on_domain_delivered is not None:
            recorded = on_domain_delivered(report.delivery)
            if recorded is not None:
                await recorded
    return await _combined(transcript, reports, on_delivered)


async def _one_domain(
    profile: Profile,
    domain: str,
    outgoing: OutgoingMessage,
    transcript: Transcript,
    ends: float,
    before_data: Callable[[], Awaitable[None] | None] | None,
    on_delivered: Callable[[Delivery], Awaitable[None] | None] | None,
) -> SessionReport:
    remaining = max(ends - asyncio.get_running_loop().time(), 0.1)
    try:
        async with asyncio.timeout(remaining):
            return await _route(
                profile, domain, outgoing, transcript, remaining, before_data, on_delivered
            )
    except TimeoutError:
        failure = SessionFailure(
            Stage.CONNECT,
            f"direct delivery to {domain} did not finish within the deadline",
            temporary=True,
        )
        return _failed(transcript, failure)
    except RoutingError as exc:
        stage = Stage.CONNECT
        return _failed(transcript, SessionFailure(stage, exc.explanation, temporary=exc.temporary))


async def _combined(
    transcript: Transcript,
    reports: dict[str, tuple[list[str], SessionReport]],
    on_delivered: Callable[[Delivery], Awaitable[None] | None] | None,
) -> SessionReport:
    """Several domains' reports as one, in the terms the outbox settles by (see :func:`send_direct`)."""
    delivered = [r.delivery for _, r in reports.values() if r.delivery is not None]
    refused = [refusal for delivery in delivered for refusal in delivery.refused]
    for domain, (addresses, report) in reports.items():
        failure = report.failure
        if report.delivery is not None or failure is None:
            continue
        if failure.possibly_delivered:
            code = 554
            reply = f"{domain}: it may have arrived ({failure.problem}); not sent again"
        elif failure.refused:
            refused += failure.refused
            continue
        else:
            code = failure.code or 0
            if (400 <= code < 500) != failure.temporary:
                code = 451 if failure.temporary else 550
            reply = f"{domain}: {failure.problem}"
        refused += [RecipientRefusal(address, code, reply) for address in addresses]
    if delivered:
        first = delivered[0]
        combined = Delivery(
            message_id=first.message_id,
            size=first.size,
            accepted=[a for d in delivered for a in d.accepted],
            refused=refused,
            reply="; ".join(d.reply for d in delivered),
            notes=[note for d in delivered for note in d.notes],
        )
        if on_delivered is not None:
            settled = on_delivered(combined)
            if settled is not None:
                await settled
        return SessionReport(transcript, delivery=combined)
    failures = [r.failure for _, r in reports.values() if r.failure is not None]
    problems = "; ".join(
        f"{domain}: {r.failure.problem}" for domain, (_, r) in reports.items() if r.failure
    )
    return SessionReport(
        transcript,
        failure=SessionFailure(
            failures[0].stage if failures else Stage.CONNECT,
            problems,
            temporary=any(r.temporary for r in refused),
            possibly_delivered=all(f.possibly_delivered for f in failures),
            refused=tuple(refused),
        ),
    )


def _noting(
    notes: list[str],
    transcript: Transcript,
    on_delivered: Callable[[Delivery], Awaitable[None] | None] | None,
) -> Callable[[Delivery], Awaitable[None]]:
    """``on_delivered``, with the policy notes put on the delivery first.

    So the outcome line shows them, and the outbox keeps them: in the
    attempt's record, and in the sent message's transcript (said here,
    before the outbox settles and writes it).
    """

    async def delivered(delivery: Delivery) -> None:
        delivery.notes.extend(notes)
        for note in notes:
            transcript.event(EventKind.WARNING, f"direct: delivered, but {note}")
        if on_delivered is not None:
            settled = on_delivered(delivery)
            if settled is not None:
                await settled

    return delivered


def _failed(transcript: Transcript, failure: SessionFailure) -> SessionReport:
    kind = "temporary" if failure.temporary else "permanent"
    transcript.event(EventKind.ERROR, f"direct delivery failed ({kind}): {failure.problem}")
    return SessionReport(transcript, failure=failure)


async def _route(
    profile: Profile,
    domain: str,
    outgoing: OutgoingMessage,
    transcript: Transcript,
    deadline: float,
    before_data: Callable[[], Awaitable[None] | None] | None,
    on_delivered: Callable[[Delivery], Awaitable[None] | None] | None,
) -> SessionReport:
    ehlo_name = check_ehlo_name(profile.ehlo_name)
    servers = _dns_servers(profile)
    try:
        resolver = make_resolver(servers, timeout=min(profile.timeout, 10.0))
    except ValueError as exc:
        raise RoutingError(str(exc), temporary=False) from None
    asked = ", ".join(servers) if servers else "the system's resolver"
    literal = address_literal(domain)
    if literal is not None:
        hosts = [MXHost(0, literal, implicit=True)]
        transcript.event(
            EventKind.INFO,
            f"direct: {domain} is an address literal: delivering to {literal} itself, "
            "without MX, MTA-STS or DANE, which need a domain name (RFC 5321 5.1)",
        )
    else:
        hosts = await mail_hosts(domain, resolver)
        _said_hosts(transcript, domain, hosts, asked)
    policy = None if literal else await _sts_policy(profile, domain, resolver, transcript)
    if policy is None and literal is None:
        transcript.event(
            EventKind.INFO,
            f"direct: no MTA-STS policy for {domain}; TLS is opportunistic unless DANE "
            f"applies to an MX (EHLO {ehlo_name})",
        )
    port = profile.effective_port
    last: SessionReport | None = None
    loop = asyncio.get_running_loop()
    ends = loop.time() + deadline
    matched = 0
    unusable: list[str] = []
    lookup_failed: list[str] = []
    found = 0  # addresses, against MX_ADDRESS_LIMIT
    sessions = 0  # against MX_SESSION_LIMIT
    for index, host in enumerate(hosts):
        if found >= MX_ADDRESS_LIMIT or sessions >= MX_SESSION_LIMIT:
            _bounded(transcript, domain, len(hosts) - index, found, sessions)
            break
        try:
            addresses, addresses_secure = (
                ([literal], False) if literal else await resolve_host(host.host, resolver)
            )
        except MXLookupError as exc:
            # One host's broken DNS is that host's failure, as a refused connection
            # is: the next MX (as Postfix does), the queue only when none is left.
            # It counts as one address tried, so a list of hosts that all time out
            # stays bounded by MX_ADDRESS_LIMIT.
            transcript.event(EventKind.WARNING, f"direct: {exc.explanation}; next MX")
            lookup_failed.append(exc.explanation)
            found += 1
            continue
        if len(addresses) > MX_ADDRESS_LIMIT - found:
            transcript.event(
                EventKind.INFO,
                f"direct: {host.host}: {len(addresses) - (MX_ADDRESS_LIMIT - found)} of its "
                f"{len(addresses)} addresses not tried (at most {MX_ADDRESS_LIMIT} addresses "
                "per delivery attempt)",
            )
            addresses = addresses[: MX_ADDRESS_LIMIT - found]
        found += len(addresses)
        if not addresses:
            transcript.event(
                EventKind.WARNING, f"direct: {host.host} has no address record; next MX"
            )
            continue
        tlsa = None if literal else await _dane(host, addresses_secure, resolver, transcript)
        if tlsa is not None and tlsa.status is Status.FAILED:
            unusable.append(f"{host.host}: {tlsa.problem}")
            continue
        peer_check = _dane_check(host.host, tlsa.usable) if tlsa is not None else None
        # What an MTA-STS policy in testing mode would have refused, said with the outcome.
        notes: list[str] = []
        if peer_check is not None and policy is not None:
            transcript.event(
                EventKind.INFO,
                f"DANE: {host.host} is checked by DANE, not by the MTA-STS policy "
                "(DANE takes precedence)",
            )
        elif policy is not None and not policy.matches(host.host):
            patterns = ", ".join(policy.mx)
            if policy.mode == "enforce":
                transcript.event(
                    EventKind.WARNING,
                    f"MTA-STS: {host.host} does not match the policy's mx ({patterns}); not used",
                )
                continue
            transcript.event(
                EventKind.WARNING,
                f"MTA-STS testing: {host.host} does not match the policy's mx ({patterns}); "
                "delivering anyway",
            )
            notes.append(
                f"the MTA-STS policy of {domain} (id {policy.id}, testing mode) would refuse "
                f"{host.host}: it does not match the policy's mx ({patterns})"
            )
        matched += 1
        for address in addresses:
            transcript.event(
                EventKind.INFO,
                f"direct: trying {host.host} [{address}] port {port}"
                + ("" if host.implicit else f" (preference {host.preference})"),
            )
            try:
                session_profile = _session_profile(
                    profile,
                    host.host,
                    ehlo_name,
                    verified=policy is not None and peer_check is None,
                    tls_required=tlsa is not None and tlsa.status is Status.SECURE,
                )
            except ProfileError as exc:  # a name from DNS no server setting can hold
                transcript.event(EventKind.WARNING, f"direct: {host.host} is unusable: {exc}")
                break

            async def attempt(
                session_profile: Profile,
                address: str,
                notes: list[str],
                peer_check: PeerCheck | None = None,
            ) -> SessionReport:
                return await send(
                    session_profile,
                    outgoing,
                    None,
                    deadline=max(ends - loop.time(), 0.1),
                    transcript=transcript,
                    before_data=before_data,
                    on_delivered=_noting(notes, transcript, on_delivered),
                    address=address,
                    opportunistic_tls=session_profile.security is Security.NONE,
                    peer_check=peer_check,
                )

            report = await attempt(session_profile, address, notes, peer_check)
            failure = report.failure
            tls_failed = (
                failure is not None
                and failure.stage is Stage.TLS
                and report.delivery is None
                and not failure.possibly_delivered
            )
            if (
                tls_failed
                and peer_check is None
                and policy is not None
                and policy.mode == "testing"
            ):
                assert failure is not None
                transcript.event(
                    EventKind.WARNING,
                    f"MTA-STS testing: verified TLS with {host.host} failed ({failure.problem}); "
                    "the policy would refuse it; delivering with opportunistic TLS",
                )
                assert policy is not None
                notes.append(
                    f"the MTA-STS policy of {domain} (id {policy.id}, testing mode) would refuse "
                    f"{host.host}: verified TLS failed ({failure.problem}); sent with "
                    "opportunistic TLS"
                )
                report = await attempt(
                    _session_profile(profile, host.host, ehlo_name), address, notes
                )
                failure = report.failure
                tls_failed = False
            if failure is None or report.delivery is not None:
                transcript.event(EventKind.INFO, f"direct: {domain} done through {host.host}")
                return report
            if failure.possibly_delivered or (not failure.temporary and not tls_failed):
                why = "it may have arrived" if failure.possibly_delivered else "a permanent refusal"
                transcript.event(
                    EventKind.INFO, f"direct: {host.host}: {why}; no other MX is tried"
                )
                return report
            if tls_failed:
                # MTA-STS enforce or DANE: a certificate refused (or TLS missing) is this
                # MX's failure, not the message's: the next MX, then the queue.
                failure.temporary = True
            if failure.stage in _SESSION_STAGES:
                sessions += 1
            transcript.event(
                EventKind.INFO,
                f"direct: {host.host} [{address}] failed for now ({failure.problem}); "
                "trying the next",
            )
            last = report
            if sessions >= MX_SESSION_LIMIT:
                break
    if last is None and unusable:
        raise RoutingError(
            f"no MX host of {domain} could be used safely: " + "; ".join(unusable + lookup_failed),
            temporary=True,
        )
    if last is None and lookup_failed:
        raise RoutingError("; ".join(lookup_failed), temporary=True)
    if policy is not None and matched == 0:
        raise RoutingError(
            f"no MX host of {domain} matches its MTA-STS policy (mx: {', '.join(policy.mx)}); "
            "the policy forbids delivery to the others",
            temporary=True,
        )
    if last is None:
        raise RoutingError(f"no MX host of {domain} has an address", temporary=True)
    transcript.event(
        EventKind.WARNING, f"direct: no MX host of {domain} took the message; try again later"
    )
    return last


def _said_hosts(transcript: Transcript, domain: str, hosts: list[MXHost], asked: str) -> None:
    """Say which hosts DNS gave for ``domain``: its MX hosts in order, or itself."""
    if hosts[0].implicit:
        transcript.event(
            EventKind.INFO,
            f"direct: {domain} has no MX record; using its own address (RFC 5321 5.1), "
            f"DNS from {asked}",
        )
        return
    # The hosts a delivery attempt may reach (MX_ADDRESS_LIMIT), not a hostile list's all.
    listed = ", ".join(f"{h.preference} {h.host}" for h in hosts[:MX_ADDRESS_LIMIT])
    if len(hosts) > MX_ADDRESS_LIMIT:
        listed += f" and {len(hosts) - MX_ADDRESS_LIMIT} more"
    transcript.event(
        EventKind.INFO,
        f"direct: MX of {domain}: {listed} (in this order; equal preferences shuffled), "
        f"DNS from {asked}",
    )


def _bounded(transcript: Transcript, domain: str, skipped: int, found: int, sessions: int) -> None:
    """Say that a delivery attempt stops before the MX list's end, and why."""
    if sessions >= MX_SESSION_LIMIT:
        why = f"{sessions} sessions, at most {MX_SESSION_LIMIT} per delivery attempt"
    else:
        why = f"{found} addresses, at most {MX_ADDRESS_LIMIT} per delivery attempt"
    hosts = "1 MX host" if skipped == 1 else f"{skipped} MX hosts"
    transcript.event(
        EventKind.WARNING,
        f"direct: {hosts} of {domain} skipped ({why}, as Postfix's smtp_mx_address_limit "
        "and smtp_mx_session_limit); a retry starts again from the best MX",
    )


async def _sts_policy(
    profile: Profile,
    domain: str,
    resolver: dns.asyncresolver.Resolver,
    transcript: Transcript,
) -> Policy | None:
    """The domain's MTA-STS policy in enforce or testing mode, each step said; None otherwise."""
    from tuimail.mta_sts import lookup

    port = profile.extra.get(MTA_STS_PORT_KEY, HTTPS_PORT)
    found = await lookup(
        domain,
        resolver,
        ca_file=profile.ca_file,
        port=port if isinstance(port, int) else HTTPS_PORT,
        timeout=min(profile.timeout, 10.0),
    )
    for note in found.notes:
        transcript.event(EventKind.INFO, f"MTA-STS: {note}")
    policy = found.policy
    if policy is None or policy.mode == "none":
        return None
    patterns = ", ".join(policy.mx)
    if policy.mode == "enforce":
        transcript.event(
            EventKind.INFO,
            f"MTA-STS enforce for {domain} (id {policy.id}): mx must match {patterns}; "
            "verified TLS is required",
        )
    else:
        transcript.event(
            EventKind.INFO,
            f"MTA-STS testing for {domain} (id {policy.id}): mx should match {patterns}; "
            "failures are reported here, not enforced (tuimail sends no TLS-RPT reports)",
        )
    return policy


async def _dane(
    host: MXHost,
    addresses_secure: bool,
    resolver: dns.asyncresolver.Resolver,
    transcript: Transcript,
) -> TLSALookup | None:
    """The MX host's TLSA lookup when DANE can apply, each decision said; None when it cannot.

    RFC 7672 section 2.2: TLSA records are looked up only when the MX
    answer (for a domain without MX, the "no MX" answer) and the host's
    address records were DNSSEC-validated, since an attacker who can forge
    those chooses the host and hence its TLSA records.
    """
    from tuimail.dane import Status, lookup_tlsa, tlsa_name

    name = host.host
    if not host.secure or not addresses_secure:
        which = "MX" if not host.secure else "address"
        transcript.event(
            EventKind.INFO,
            f"DANE: not looked up for {name}: its {which} records are not DNSSEC-validated",
        )
        return None
    found = await lookup_tlsa(name, resolver)
    if found.status is Status.FAILED:
        transcript.event(
            EventKind.WARNING,
            f"DANE: {found.problem}; {name} is not used (RFC 7672 2.2: a failed TLSA lookup "
            "is not 'no DANE')",
        )
    elif found.status is Status.NONE:
        transcript.event(EventKind.INFO, f"DANE: {name} has no TLSA records (DNSSEC-validated)")
        return None
    elif found.status is Status.INSECURE:
        transcript.event(
            EventKind.WARNING,
            f"DANE: {tlsa_name(name)} has TLSA records but the answer is not "
            "DNSSEC-validated (no AD bit); ignored",
        )
        return None
    elif found.applies:
        usable = found.usable
        shown = ", ".join(r.text() for r in usable)
        transcript.event(
            EventKind.INFO,
            f"DANE for {name}: {len(usable)} usable TLSA record{'s' if len(usable) != 1 else ''} "
            f"({shown}), TLS required",
        )
    else:
        shown = ", ".join(r.text() for r in found.records)
        transcript.event(
            EventKind.WARNING,
            f"DANE for {name}: TLSA records ({shown}) but none usable (only DANE-TA and "
            "DANE-EE count, RFC 7672 3.1.3): TLS required, the certificate not authenticated",
        )
    return found


def _dane_check(host: str, records: Sequence[TLSARecord]) -> PeerCheck | None:
    """The session's check of the chain against the MX host's usable TLSA records."""
    if not records:
        return None
    from tuimail.dane import match

    def check(chain: list[bytes]) -> tuple[bool, str]:
        verdict = match(records, chain, host)
        return verdict.matched, verdict.reason

    return PeerCheck("DANE", check)


def _session_profile(
    profile: Profile,
    host: str,
    ehlo_name: str,
    *,
    verified: bool = False,
    tls_required: bool = False,
) -> Profile:
    """One MX's session: no account, the direct limits, and its TLS.

    ``verified`` (an MTA-STS policy): STARTTLS required and the certificate
    checked against the MX name (``--ca-file`` trusted). ``tls_required``
    (DANE): STARTTLS required, the chain checked by the session's
    ``PeerCheck`` instead. Else opportunistic TLS (tuimail/session.py).
    """
    changes: dict[str, Any] = {
        "name": DIRECT,
        "host": host,
        "port": profile.effective_port,
        "security": Security.STARTTLS if verified or tls_required else Security.NONE,
        "verify_tls": verified,
        "ca_file": profile.ca_file if verified else "",
        "ehlo_name": ehlo_name,
        "timeout": profile.timeout,
    }
    return Profile(**changes)
