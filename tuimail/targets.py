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
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tuimail import paths
from tuimail.atomic import atomic_write_bytes
from tuimail.errors import NotFound, TuimailError
from tuimail.probe import ProbeTarget, Thresholds
from tuimail.profiles import Profile, Security
from tuimail.small_files import parse_toml, read_small_text

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
