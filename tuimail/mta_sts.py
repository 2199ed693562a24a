"""MTA-STS (RFC 8461): a domain's published demand for verified TLS to its MX hosts.

The ``_mta-sts.<domain>`` TXT record (``v=STSv1; id=...``) says a policy
exists and names its version; the policy itself is fetched over HTTPS from
``https://mta-sts.<domain>/.well-known/mta-sts.txt`` with the certificate
verified, connecting to the address dnspython found (never the system
resolver) with SNI and the HTTP ``Host`` set to the policy host. No redirect
is followed. A fetched policy is kept in the state dir for its ``max_age`` and
fetched again when the record's id changes.

:func:`mx_matches` is the policy's ``mx`` pattern rule (``*.example.org``
matches one leftmost label). What the modes do to delivery is decided in
tuimail/routing.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuimail import paths
from tuimail.errors import TuimailError

if TYPE_CHECKING:
    import dns.asyncresolver

#: The policy's size limit: RFC 8461 section 3.3 suggests 64 KiB.
MAX_POLICY_BYTES = 64 * 1024

#: How many addresses of the policy host are tried, each for the timeout: a host
#: with many that never answer would otherwise hold a delivery (or a check) for
#: minutes. Two IPv4 and two IPv6 addresses are more than a policy host needs.
POLICY_ADDRESS_LIMIT = 4

#: The longest max_age the RFC allows (about a year).
MAX_AGE_LIMIT = 31_557_600

_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_MAX_AGE = re.compile(r"[0-9]{1,10}")
_VERSION = re.compile(r"v=STSv1[ \t]*(;|$)")


class PolicyError(TuimailError):
    """A record or policy that cannot be used, in words."""


class RecordLookupError(PolicyError):
    """The ``_mta-sts`` record could not be read (DNS trouble), as opposed to a broken one."""


@dataclass(frozen=True)
class Policy:
    """A domain's MTA-STS policy as fetched."""

    domain: str
    id: str
    mode: str  # enforce, testing or none
    mx: tuple[str, ...]
    max_age: int
    fetched_at: float = 0.0

    def expired(self, now: float) -> bool:
        return now >= self.fetched_at + self.max_age

    def matches(self, host: str) -> bool:
        return any(mx_matches(pattern, host) for pattern in self.mx)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["mx"] = list(self.mx)
        return data


@dataclass
class Lookup:
    """What the lookup found: the policy in force (or none), and what to say about it."""

    policy: Policy | None
    notes: list[str] = field(default_factory=list)


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 section 4.1: exact, or ``*.`` standing for exactly one leftmost label."""
    pattern = pattern.lower().rstrip(".")
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        label, _, rest = host.partition(".")
        return bool(label) and rest == pattern[2:]
    return host == pattern


def parse_record(texts: Sequence[str]) -> str | None:
    """The id of the one ``v=STSv1`` record among a name's TXT strings; None if there is none.

    RFC 8461 section 3.1: records that do not begin with ``v=STSv1;`` are
    discarded (``v=STSv10``, ``v=STSv1x`` are other records).
    """
    records = [t for t in texts if _VERSION.match(t)]
    if not records:
        return None
    if len(records) > 1:
        raise PolicyError("more than one v=STSv1 record (RFC 8461 3.1: treated as none)")
    fields = dict(
        part.strip().partition("=")[::2] for part in records[0].split(";") if part.strip()
    )
    record_id = fields.get("id", "")
    if not _ID.fullmatch(record_id):
        raise PolicyError(f"the record's id {record_id!r} is not 1-32 letters and digits")
    return record_id


def parse_policy(domain: str, record_id: str, text: str, now: float) -> Policy:
    """The policy file's ``key: value`` lines (RFC 8461 section 3.2)."""
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values.setdefault(key.strip(), []).append(value.strip())
    if values.get("version") != ["STSv1"]:
        raise PolicyError("the policy has no 'version: STSv1' line")
    mode = (values.get("mode") or [""])[0]
    if mode not in ("enforce", "testing", "none"):
        raise PolicyError(f"the policy's mode {mode!r} is not enforce, testing or none")
    max_age_text = (values.get("max_age") or [""])[0]
    # ASCII digits only, as many as the RFC allows (1*10DIGIT): str.isdigit() also
    # takes digits int() refuses ("²"), and int() refuses more than 4,300 digits.
    if not _MAX_AGE.fullmatch(max_age_text):
        raise PolicyError(
            f"the policy's max_age {max_age_text[:20]!r} is not a number of seconds "
            "(1 to 10 digits)"
        )
    mx = tuple(values.get("mx", []))
    if mode != "none" and not mx:
        raise PolicyError("the policy names no mx")
    max_age = min(int(max_age_text), MAX_AGE_LIMIT)
    return Policy(domain, record_id, mode, mx, max_age, now)


def cache_dir() -> Path:
    return paths.state_dir() / "mta-sts"


def _cache_path(domain: str) -> Path:
    return cache_dir() / f"{domain.lower().rstrip('.')}.json"


def cached(domain: str) -> Policy | None:
    """The policy kept for ``domain``, whatever its age; None when none is kept or readable."""
    from tuimail.small_files import parse_json, read_small_text

    try:
        data = parse_json(read_small_text(_cache_path(domain)))
        return Policy(
            str(data["domain"]),
            str(data["id"]),
            str(data["mode"]),
            tuple(str(m) for m in data["mx"]),
            int(data["max_age"]),
            float(data["fetched_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def keep(policy: Policy) -> None:
    from tuimail.atomic import atomic_write_bytes

    paths.ensure_private_dir(cache_dir())
    atomic_write_bytes(_cache_path(policy.domain), json.dumps(policy.to_json()).encode())


async def record_id(domain: str, resolver: dns.asyncresolver.Resolver) -> str | None:
    """The ``_mta-sts`` record's id (None: no record).

    PolicyError for a broken record; its subclass RecordLookupError for DNS trouble.
    """
    import dns.exception
    import dns.resolver

    name = f"_mta-sts.{domain}"
    try:
        answer = await resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    except dns.exception.DNSException as exc:
        from tuimail.mx import dns_trouble

        raise RecordLookupError(dns_trouble(exc, name, "TXT")[1]) from None
    texts = [b"".join(r.strings).decode("ascii", "replace") for r in answer]
    return parse_record(texts)


async def fetch_policy(
    domain: str,
    record: str,
    resolver: dns.asyncresolver.Resolver,
    *,
    ca_file: str = "",
    port: int = 443,
    timeout: float = 10.0,
) -> Policy:
    """GET the policy over verified HTTPS from the address DNS gave for ``mta-sts.<domain>``."""
    from tuimail.mx import MXLookupError, resolve_host
    from tuimail.tlsinfo import verifying_context

    host = f"mta-sts.{domain}"
    try:
        addresses, _secure = await resolve_host(host, resolver)
    except MXLookupError as exc:
        raise PolicyError(f"the address of {host} could not be found: {exc.explanation}") from None
    if not addresses:
        raise PolicyError(f"{host} has no address record")
    skipped = max(len(addresses) - POLICY_ADDRESS_LIMIT, 0)
    addresses = addresses[:POLICY_ADDRESS_LIMIT]
    try:
        context = await asyncio.to_thread(verifying_context, ca_file)
    except (OSError, ValueError) as exc:
        raise PolicyError(f"cannot use the CA file {ca_file!r}: {exc}") from None
    request = (
        f"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\n"
        "User-Agent: tuimail\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    problems = []
    for address in addresses:
        try:
            async with asyncio.timeout(timeout):
                body = await _get(address, port, host, context, request)
        except TimeoutError:
            problems.append(f"{address}: no answer within {timeout:g} seconds")
            continue
        except ssl.SSLCertVerificationError as exc:
            problems.append(f"{address}: the certificate was refused ({exc.verify_message})")
            continue
        except (OSError, ssl.SSLError, PolicyError) as exc:
            problems.append(f"{address}: {exc}")
            continue
        return parse_policy(domain, record, body, time.time())
    if skipped:
        problems.append(f"{skipped} more addresses not tried")
    raise PolicyError(
        f"the policy could not be fetched from https://{host}/: " + "; ".join(problems)
    )


async def _get(address: str, port: int, host: str, context: ssl.SSLContext, request: bytes) -> str:
    reader, writer = await asyncio.open_connection(address, port, ssl=context, server_hostname=host)
    try:
        writer.write(request)
        await writer.drain()
        data = await reader.read(MAX_POLICY_BYTES + 16 * 1024)
        while True:
            more = await reader.read(MAX_POLICY_BYTES)
            if not more:
                break
            data += more
            if len(data) > MAX_POLICY_BYTES + 16 * 1024:
                raise PolicyError("the policy is larger than 64 KiB")
    finally:
        writer.close()
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise PolicyError("the answer is not HTTP")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "200":
        raise PolicyError(f"the server answered {lines[0][:80]!r}, not 200")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    if not headers.get("content-type", "").lower().startswith("text/plain"):
        raise PolicyError("the policy is not served as text/plain")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise PolicyError("a chunked answer is not read (send Content-Length)")
    return body.decode("utf-8", "replace")


async def lookup(
    domain: str,
    resolver: dns.asyncresolver.Resolver,
    *,
    ca_file: str = "",
    port: int = 443,
    timeout: float = 10.0,
) -> Lookup:
    """The policy in force for ``domain``: cached while fresh and the id is the same, else fetched.

    A record or fetch that fails falls back to a cached policy not yet
    expired (RFC 8461 section 5.1); with none, the domain has no policy now,
    and the notes say why.
    """
    now = time.time()
    kept = await asyncio.to_thread(cached, domain)
    fresh = kept if kept is not None and not kept.expired(now) else None
    notes: list[str] = []
    try:
        record = await record_id(domain, resolver)
    except PolicyError as exc:
        notes.append(str(exc))
        return Lookup(fresh, notes)
    if record is None:
        return Lookup(fresh, notes)
    if fresh is not None and fresh.id == record:
        notes.append(f"policy id {record} from the cache (fetched {_ago(now - fresh.fetched_at)})")
        return Lookup(fresh, notes)
    try:
        policy = await fetch_policy(
            domain, record, resolver, ca_file=ca_file, port=port, timeout=timeout
        )
    except PolicyError as exc:
        notes.append(str(exc))
        return Lookup(fresh, notes)
    notes.append(
        f"policy id {record} fetched from https://mta-sts.{domain}/"
        + (f" (the cached id {kept.id} changed)" if kept is not None and kept.id != record else "")
    )
    try:
        await asyncio.to_thread(keep, policy)
    except OSError as exc:
        notes.append(f"the policy could not be cached: {exc}")
    return Lookup(policy, notes)


def _ago(seconds: float) -> str:
    return f"{int(seconds)} s ago" if seconds < 120 else f"{int(seconds // 60)} min ago"
