"""Monitor targets: every profile's server, plus extra servers kept in ``targets.toml``.

An extra target is a server to watch that you do not send through (a
colleague's relay, each MX of your domain, a test box)::

    [targets.relay]
    host = "relay.example.com"      # or: mx = "example.com" (every MX host, port 25)
    port = 25
    security = "starttls"
    ca_file = "/etc/ssl/relay-ca.pem"   # optional: trust this CA, not the system's
    warn_days = 21
    crit_days = 7
    warn_seconds = 5.0
    crit_seconds = 15.0

Each profile and each extra target is a target of its own, even when two
share a server: what one trusts (its CA file) or how it connects may make it
CRITICAL where the other is OK, and hiding one behind the other hid that.

Written like the profiles: tomli-w, atomic replace, mode 0600; a file that
does not load is reported with its line and never overwritten.

A mail domain's MX hosts (:func:`mx_host_targets`) are found, with their
addresses, through dnspython and the DNS servers the monitor is given (not
the system's own name lookup), and each is probed at the address found with
its name kept for TLS, as a sender would reach it.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuimail import paths
from tuimail.atomic import atomic_write_bytes
from tuimail.errors import NotFound, TuimailError
from tuimail.probe import ProbeReport, ProbeTarget, Status, Thresholds
from tuimail.profiles import Profile, Security
from tuimail.small_files import parse_toml, read_small_text

if TYPE_CHECKING:
    import dns.asyncresolver

    from tuimail.mx import MXHost

TARGETS_FILE = "targets.toml"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_THRESHOLD_KEYS = {"warn_days": int, "crit_days": int, "warn_seconds": float, "crit_seconds": float}


class TargetError(TuimailError, ValueError):
    """A target value is invalid, or ``targets.toml`` cannot be used."""


@dataclass
class TargetStore:
    path: Path = field(default_factory=lambda: paths.config_dir() / TARGETS_FILE)

    def load(self) -> dict[str, ProbeTarget]:
        return {name: _target(name, table, self.path) for name, table in self._tables().items()}

    def save(self, target: ProbeTarget, *, replace_name: str | None = None) -> None:
        validate_target(target)
        tables = self._tables()
        if replace_name and replace_name != target.name:
            tables.pop(replace_name, None)
        tables[target.name] = _table(target)
        self._write(tables)

    def remove(self, name: str) -> None:
        tables = self._tables()
        if name not in tables:
            raise NotFound("target", name)
        del tables[name]
        self._write(tables)

    def _tables(self) -> dict[str, Any]:
        import tomllib

        try:
            text = read_small_text(self.path)
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise TargetError(f"{self.path}: cannot be read: {exc}") from None
        try:
            document = parse_toml(text)
        except tomllib.TOMLDecodeError as exc:
            raise TargetError(f"{self.path}: {exc}") from None
        tables = document.get("targets", {})
        if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
            raise TargetError(f"{self.path}: [targets] must hold one table per target")
        for name, table in tables.items():
            _target(name, table, self.path)  # validate everything before any write
        return tables

    def _write(self, tables: dict[str, Any]) -> None:
        import tomli_w

        paths.ensure_private_dir(self.path.parent)
        atomic_write_bytes(self.path, tomli_w.dumps({"targets": tables}).encode("utf-8"))


def owner(name: str) -> str:
    """The :attr:`~tuimail.probe.ProbeTarget.owner` of the extra target ``name``."""
    return f"target:{name}"


def split_address(text: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[IPv6]:port`` as (host, port); port 0 when not given."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    # isdigit() alone accepts "²" and "٣", which int() then refuses or reads as a port.
    if port_text and not (port_text.isascii() and port_text.isdigit() and int(port_text) <= 65535):
        raise TargetError(f"port: {port_text!r} is not a port number (1-65535)")
    return host, int(port_text or 0)


def validate_target(target: ProbeTarget) -> None:
    if not _NAME_RE.fullmatch(target.name):
        raise TargetError("name: use 1-64 letters, digits, '.', '_' or '-'")
    host = target.host
    if not host or any(c.isspace() for c in host) or not host.isprintable():
        raise TargetError("host: a host name or address without spaces or control characters")
    if not 0 <= target.port <= 65535:
        raise TargetError("port: between 1 and 65535 (0 for the default)")
    if not target.ca_file.isprintable():
        raise TargetError("CA file: a path without control characters")
    # NaN passes every comparison below, and a probe waiting NaN seconds never ends well.
    if not (math.isfinite(target.timeout) and 0 < target.timeout <= 3600):
        raise TargetError("timeout: a number of seconds, more than 0 and at most 3600")
    t = target.thresholds
    if not all(math.isfinite(s) and s >= 0 for s in (t.warn_seconds, t.crit_seconds)):
        raise TargetError("thresholds: seconds must be numbers, 0 or more")
    if t.crit_days > t.warn_days or t.crit_seconds < t.warn_seconds:
        raise TargetError("thresholds: the critical level must be beyond the warning level")


def _target(name: str, table: dict[str, Any], path: Path) -> ProbeTarget:
    try:
        security = Security(str(table.get("security", "starttls")).lower())
        thresholds = Thresholds(
            **{k: kind(table[k]) for k, kind in _THRESHOLD_KEYS.items() if k in table}
        )
        is_mx = "mx" in table
        target = ProbeTarget(
            host=str(table["mx"] if is_mx else table["host"]),
            port=int(table.get("port", 25 if is_mx else 0)),
            mx=is_mx,
            security=security,
            ca_file=str(table.get("ca_file", "")),
            thresholds=thresholds,
            timeout=float(table.get("timeout", 10.0)),
            name=name,
            owner=owner(name),
        )
        validate_target(target)
    except KeyError as exc:
        raise TargetError(f"{path}: target {name!r}: {exc.args[0]} is missing") from None
    except (TypeError, ValueError) as exc:
        raise TargetError(f"{path}: target {name!r}: {exc}") from None
    return target


def _table(target: ProbeTarget) -> dict[str, Any]:
    t = target.thresholds
    table: dict[str, Any] = {
        ("mx" if target.mx else "host"): target.host,
        "port": target.port,
        "security": target.security.value,
        "warn_days": t.warn_days,
        "crit_days": t.crit_days,
        "warn_seconds": t.warn_seconds,
        "crit_seconds": t.crit_seconds,
        "timeout": target.timeout,
    }
    if target.ca_file:
        table["ca_file"] = target.ca_file
    return table


def monitor_targets(
    profiles: dict[str, Profile], extra: dict[str, ProbeTarget]
) -> list[ProbeTarget]:
    """What the monitor watches: each profile, then each extra target.

    Two of them on one server are two targets, each probed with its own
    settings: the one whose CA file does not trust the server is CRITICAL
    while the other is OK, and merging them by address hid that.
    """
    targets = [ProbeTarget.from_profile(profile) for profile in profiles.values()]
    return targets + [replace(target, owner=owner(name)) for name, target in extra.items()]


@dataclass(frozen=True)
class MXRow:
    """One MX host of a mail domain target: the target to probe, or why it cannot be probed."""

    target: ProbeTarget
    #: Why the host has no address to connect to ("" when ``target.address`` holds one).
    problem: str = ""


async def mx_host_targets(target: ProbeTarget, servers: Sequence[str]) -> list[MXRow]:
    """A mail domain target's MX hosts (:func:`tuimail.probe.expand_mx`), each with its address.

    MX records and addresses are asked of ``servers`` (``HOST[:PORT]``; none:
    the system's resolver) through dnspython (tuimail/mx.py); each target
    connects to the host's first address (IPv4 first, as a sender tries) and
    names the host for TLS. Raises :class:`tuimail.mx.MXLookupError` when the
    MX hosts cannot be found (a server that is not an address included); a
    host without an address is a row with its ``problem``.
    """
    from tuimail.mx import MX_HOSTS_EXAMINED, Cause, MXLookupError, make_resolver, mx_hosts
    from tuimail.probe import expand_mx

    timeout = min(target.timeout, 10.0)
    try:
        # In a thread: the system's resolver is read from /etc/resolv.conf.
        resolver = await asyncio.to_thread(make_resolver, list(servers), timeout)
    except ValueError as exc:
        raise MXLookupError(str(exc), Cause.RESOLVER) from None

    async def lookup(domain: str, **_ignored: object) -> list[MXHost]:
        return await mx_hosts(domain, resolver)

    # The best few (tuimail/mx.py MX_HOSTS_EXAMINED): a domain listing 1,000 is not
    # watched through 1,000 rows and connections.
    hosts = (await expand_mx(target, lookup))[:MX_HOSTS_EXAMINED]
    return list(await asyncio.gather(*(_addressed(host, resolver) for host in hosts)))


async def _addressed(target: ProbeTarget, resolver: dns.asyncresolver.Resolver) -> MXRow:
    """The MX host's target with its address, or why it has none.

    An MX that names an IP address (not a host name, as RFC 5321 asks) is
    probed there, as the system's lookup did: the monitor reports what is.
    """
    import ipaddress

    from tuimail.mx import MXLookupError, resolve_host

    try:
        return MXRow(replace(target, address=str(ipaddress.ip_address(target.host))))
    except ValueError:
        pass
    try:
        addresses, _secure = await resolve_host(target.host, resolver)
    except MXLookupError as exc:
        return MXRow(target, f"the address of {target.host} could not be found: {exc.explanation}")
    if not addresses:
        return MXRow(target, f"{target.host} has no address record (A or AAAA)")
    return MXRow(replace(target, address=addresses[0]))


def unprobed(row: MXRow) -> ProbeReport:
    """The report of an MX host that could not be probed: CRITICAL, saying why.

    Mail to that host cannot be delivered, as for a host that does not answer.
    """
    from tuimail.transcript import EventKind, Transcript

    transcript = Transcript(title=f"probe {row.target.label}")
    transcript.event(EventKind.ERROR, f"not probed: {row.problem}")
    report = ProbeReport(row.target, transcript)
    report.raise_status(Status.CRITICAL, row.problem)
    return report
