"""A posture check's result as data: one :class:`Item` per thing checked, and the whole.

Each item carries a Nagios state (:class:`tuimail.probe.Status`), one
sentence per problem, notes that are no problem, and the facts found
(``details``, plain JSON values). The worst item decides the state of the
whole, as a Nagios plugin's does; an item that could not be checked
(UNKNOWN) makes an otherwise OK whole UNKNOWN, never OK.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tuimail.probe import ProbeReport, Status


@dataclass
class Item:
    """One thing checked: ``mx``, ``spf``, ``smtp mx1.example.org [192.0.2.1]``..."""

    name: str
    status: Status = Status.OK
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def problem(self, status: Status, sentence: str) -> None:
        """Add a problem; the item's state is the worst of its problems."""
        self.problems.append(sentence)
        if status is Status.UNKNOWN:
            if self.status is Status.OK:
                self.status = Status.UNKNOWN
        elif self.status is Status.UNKNOWN or status > self.status:
            self.status = status

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.name,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "details": self.details,
        }


def worst_status(statuses: list[Status]) -> Status:
    """CRITICAL over WARNING over UNKNOWN over OK: a check that could not run is not OK."""
    if not statuses:
        return Status.UNKNOWN
    known = [s for s in statuses if s is not Status.UNKNOWN]
    top = max(known) if known else Status.UNKNOWN
    if top is Status.OK and len(known) < len(statuses):
        return Status.UNKNOWN
    return top


#: How many characters of problems the Nagios line carries, and how many problems of one item.
NAGIOS_TEXT_LIMIT = 3000
NAGIOS_PROBLEMS_PER_ITEM = 3
#: The order of the items on the Nagios line: the worst first.
_NAGIOS_ORDER = {Status.CRITICAL: 0, Status.WARNING: 1, Status.UNKNOWN: 2, Status.OK: 3}


@dataclass
class PostureReport:
    """Everything ``tuimail check`` found about one domain."""

    domain: str
    items: list[Item] = field(default_factory=list)
    probes: list[ProbeReport] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    seconds: float = 0.0

    @property
    def status(self) -> Status:
        return worst_status([item.status for item in self.items])

    def item(self, name: str) -> Item:
        from tuimail.errors import NotFound

        for item in self.items:
            if item.name == name:
                return item
        raise NotFound("posture item", name)

    @property
    def mx_count(self) -> int:
        """How many MX hosts the domain lists, those not checked included."""
        details = self.details("mx")
        count = details.get("count")
        if isinstance(count, int):
            return count
        hosts = details.get("hosts", [])
        return len(hosts) if isinstance(hosts, list) else 0

    @property
    def spf_lookups(self) -> int | None:
        value = self.details("spf").get("lookups")
        return value if isinstance(value, int) else None

    @property
    def spf_void_lookups(self) -> int | None:
        value = self.details("spf").get("void_lookups")
        return value if isinstance(value, int) else None

    @property
    def min_certificate_days(self) -> int | None:
        days = [
            p.tls.days_left
            for p in self.probes
            if p.tls is not None and p.tls.days_left is not None
        ]
        return min(days) if days else None

    def details(self, name: str) -> dict[str, Any]:
        for item in self.items:
            if item.name == name:
                return item.details
        return {}

    def fingerprint(self) -> dict[str, Any]:
        """What the monitor compares between runs: the MTA-STS id, the TLSA records and
        each MX's certificate (its SHA-256), keyed so a change says what changed."""
        import hashlib

        certificates = {
            f"{p.target.host} [{p.target.address}]": hashlib.sha256(p.tls.der_chain[0]).hexdigest()
            for p in self.probes
            if p.tls is not None and p.tls.der_chain
        }
        tlsa = self.details("dane").get("tlsa", {})
        # A host whose TLSA lookup failed is left out: its records are unknown, not none.
        failed = self.details("dane").get("tlsa_failed", [])
        return {
            "mta_sts_id": self.details("mta-sts").get("id"),
            "tlsa": {
                host: sorted(records)
                for host, records in sorted(tlsa.items())
                if host not in failed
            }
            if isinstance(tlsa, dict)
            else {},
            "certificates": dict(sorted(certificates.items())),
        }

    def to_json(self) -> dict[str, Any]:
        status = self.status
        return {
            "domain": self.domain,
            "status": status.name,
            "exit_code": int(status),
            "started": self.started,
            "seconds": round(self.seconds, 6),
            "items": [item.to_json() for item in self.items],
            "mx_probes": [probe.to_json() for probe in self.probes],
        }

    def nagios(self) -> str:
        """One Nagios plugin line: ``MAILDOMAIN STATE - domain: problems | perfdata``.

        Escaped for a terminal already, and bounded: the worst items first, a
        few problems of each, at most :data:`NAGIOS_TEXT_LIMIT` characters, the
        rest counted. Nagios Core keeps only 8 KiB of a plugin's output (and
        NRPE 2 only 1 KiB): a longer line would lose its end, the perfdata.
        """
        from tuimail.terminal_text import escape_controls

        status = self.status
        bad = sorted(
            (item for item in self.items if item.status is not Status.OK),
            key=lambda item: _NAGIOS_ORDER[item.status],
        )
        if bad:
            parts: list[str] = []
            size = 0
            left = 0
            for item in bad:
                problems = [escape_controls(p) for p in item.problems] or ["not checked"]
                shown = problems[:NAGIOS_PROBLEMS_PER_ITEM]
                more = len(problems) - len(shown)
                part = f"{escape_controls(item.name)} {item.status.name}: {' / '.join(shown)}"
                part += f" (+{more} more)" if more else ""
                if parts and size + len(part) > NAGIOS_TEXT_LIMIT:
                    left += len(problems)
                    continue
                parts.append(part[:NAGIOS_TEXT_LIMIT])
                size += len(part) + 2
                left += more
            if left:
                parts.append(f"{left} more problems: tuimail check {self.domain} shows them all")
            text = "; ".join(parts)
        else:
            text = f"{len(self.items)} checks OK"
        perf = [f"mx={self.mx_count};;;0"]
        if self.spf_lookups is not None:
            perf.append(f"spf_lookups={self.spf_lookups};;10;0")
        if self.spf_void_lookups is not None:
            perf.append(f"spf_void_lookups={self.spf_void_lookups};;2;0")
        days = self.min_certificate_days
        if days is not None and self.probes:
            t = self.probes[0].target.thresholds
            perf.append(f"cert_days={days};{t.warn_days};{t.crit_days}")
        text = f"{self.domain}: {text}".replace("|", "/")
        return f"MAILDOMAIN {status.name} - {text} | {' '.join(perf)}"


def report_lines(report: PostureReport) -> list[str]:
    """The report as plain lines (unescaped: the face escapes them for where it shows them)."""
    lines = [f"{report.domain}: {report.status.name} ({report.seconds:.1f}s)"]
    for item in report.items:
        lines.append(f"  {item.status.name:<8} {item.name}{_summary(item)}")
        lines += [f"             - {problem}" for problem in item.problems]
        lines += [f"             . {note}" for note in item.notes]
    return lines


def _summary(item: Item) -> str:
    """The item's main facts in a few words, after its name."""
    d = item.details
    parts: list[str] = []
    if item.name == "mx":
        for host in d.get("hosts", []):
            shown = ", ".join(
                a["address"]
                + (
                    f" ({', '.join(a['ptr'])}{'' if a['fcrdns'] else ' !'})"
                    if a["ptr"]
                    else " (no PTR)"
                )
                for a in host["addresses"]
            )
            parts.append(f"{host['preference']} {host['host']} {shown or '(no address)'}")
        if d.get("hosts"):
            parts.append("DNSSEC" if d.get("dnssec") else "not DNSSEC-validated")
        count = d.get("count")
        if isinstance(count, int) and count > len(d.get("hosts", [])):
            parts.append(f"{count} MX hosts, {len(d.get('hosts', []))} checked")
    elif item.name.startswith("smtp "):
        if d.get("tls_version"):
            parts.append(f"STARTTLS {d['tls_version']}")
            if d.get("certificate_days_left") is not None:
                parts.append(f"cert {d['certificate_days_left']} days")
        elif d.get("reached"):
            parts.append("no TLS")
    elif item.name == "spf" and "lookups" in d:
        parts.append(f"{d['lookups']}/10 lookups, {d['void_lookups']}/2 void")
    elif item.name == "dmarc" and "policy" in d:
        parts.append(f"p={d['policy']} sp={d['subdomain_policy']} pct={d['pct']}")
        if d.get("rua"):
            parts.append("rua " + ", ".join(d["rua"]))
        if d.get("ruf"):
            parts.append("ruf " + ", ".join(d["ruf"]))
    elif item.name == "mta-sts" and d.get("mode"):
        parts.append(f"id {d['id']}, mode {d['mode']}, mx {', '.join(d['mx'])}")
    elif item.name == "tls-rpt" and d.get("rua"):
        parts.append("rua " + ", ".join(d["rua"]))
    elif item.name == "dane":
        hosts = [h for h, records in d.get("tlsa", {}).items() if records]
        if hosts:
            parts.append("TLSA for " + ", ".join(hosts))
    elif item.name.startswith("dkim ") and "key_type" in d:
        parts.append(f"{d['key_type']} {d['bits']} bits")
    return (": " + "; ".join(parts)) if parts else ""
