"""Probe and posture results as OpenMetrics text, for Prometheus and its textfile collector.

The format (https://openmetrics.io): each family has ``# TYPE`` and
``# HELP`` lines (and ``# UNIT`` where the name carries one), samples with
labels, and the text ends with ``# EOF``. Label values are escaped as the
format says (backslash, double quote, newline); label names are fixed here.
The TLS version is a label of an ``_info`` metric (a gauge that is always
1), so a change of version shows as a new series rather than a number. Only
the types the Prometheus text format also knows are used (gauge), so the
same text serves Prometheus' textfile collector, whose parser refuses a
file with an ``info`` family.

``tests/test_openmetrics.py`` reads what this writes with
``prometheus_client``'s OpenMetrics parser.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tuimail.posture.report import PostureReport
from tuimail.probe import ProbeReport

PREFIX = "tuimail"


def escape_label(value: str) -> str:
    """A label value as OpenMetrics writes it: ``\\`` ``"`` and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


@dataclass
class Family:
    """One metric family: its samples, each ``(suffix, labels, value)``."""

    name: str
    kind: str  # gauge: the one type both OpenMetrics and the Prometheus text format know here
    help: str
    unit: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def add(self, labels: dict[str, str], value: float, suffix: str = "") -> None:
        self.samples.append((suffix, labels, value))

    def lines(self) -> list[str]:
        out = [f"# TYPE {self.name} {self.kind}", f"# HELP {self.name} {_help(self.help)}"]
        if self.unit:
            out.insert(1, f"# UNIT {self.name} {self.unit}")
        for suffix, labels, value in self.samples:
            out.append(f"{self.name}{suffix}{_labels(labels)} {_number(value)}")
        return out


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


class Exposition:
    """Families in the order first asked for, written once with :meth:`text`."""

    def __init__(self) -> None:
        self.families: dict[str, Family] = {}

    def family(self, name: str, kind: str, help_text: str, unit: str = "") -> Family:
        full = f"{PREFIX}_{name}"
        if full not in self.families:
            self.families[full] = Family(full, kind, help_text, unit)
        return self.families[full]

    def text(self) -> str:
        lines = [line for family in self.families.values() for line in family.lines()]
        return "\n".join([*lines, "# EOF"]) + "\n"


def add_probes(
    exposition: Exposition, reports: Iterable[ProbeReport], extra: dict[str, str] | None = None
) -> None:
    """Each probe's up, state, per-stage seconds, certificate expiry and TLS version."""
    up = exposition.family(
        "probe_up", "gauge", "1 when the server answered, 0 when it could not be reached"
    )
    status = exposition.family(
        "probe_status", "gauge", "Nagios state of the probe: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"
    )
    stage = exposition.family(
        "probe_stage_seconds", "gauge", "Seconds each stage of the conversation took", "seconds"
    )
    total = exposition.family(
        "probe_duration_seconds", "gauge", "Seconds the whole probe took", "seconds"
    )
    expiry = exposition.family(
        "probe_certificate_expiry_timestamp_seconds",
        "gauge",
        "When the server's certificate expires, in seconds since the Unix epoch",
        "seconds",
    )
    # A gauge named ..._info, always 1, rather than an OpenMetrics "info" family:
    # the same sample name, and the textfile collector's Prometheus text parser
    # (node_exporter) refuses a whole file with a type it does not know.
    tls = exposition.family(
        "probe_tls_info", "gauge", "Always 1: the TLS version and cipher the server agreed to"
    )
    for report in reports:
        target = report.target
        labels = {
            **(extra or {}),
            "target": target.label,
            "host": target.host,
            "port": str(target.effective_port),
        }
        if target.address:
            labels["address"] = target.address
        up.add(labels, 1 if report.reached else 0)
        status.add(labels, int(report.status))
        for name, seconds in report.labelled_timings().items():
            stage.add({**labels, "stage": name}, seconds)
        total.add(labels, report.total)
        if report.tls is not None:
            if report.tls.chain:
                expiry.add(labels, report.tls.chain[0].not_after.timestamp())
            tls.add({**labels, "version": report.tls.version, "cipher": report.tls.cipher}, 1)


def probe_text(reports: Iterable[ProbeReport]) -> str:
    """``tuimail probe --openmetrics``."""
    exposition = Exposition()
    add_probes(exposition, reports)
    return exposition.text()


def posture_text(report: PostureReport) -> str:
    """``tuimail check --openmetrics``: each item's state, the counts, and each MX probe."""
    exposition = Exposition()
    domain = {"domain": report.domain}
    overall = exposition.family(
        "check_status", "gauge", "Nagios state of the whole check: the worst item's"
    )
    overall.add(domain, int(report.status))
    items = exposition.family(
        "check_item_status",
        "gauge",
        "Nagios state of each item checked: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
    )
    for item in report.items:
        items.add({**domain, "item": item.name}, int(item.status))
    exposition.family("check_mx_hosts", "gauge", "MX hosts the domain publishes").add(
        domain, report.mx_count
    )
    if report.spf_lookups is not None:
        exposition.family(
            "check_spf_lookups", "gauge", "DNS lookups the SPF record needs (limit 10)"
        ).add(domain, report.spf_lookups)
    if report.spf_void_lookups is not None:
        exposition.family(
            "check_spf_void_lookups", "gauge", "SPF lookups that find nothing (limit 2)"
        ).add(domain, report.spf_void_lookups)
    exposition.family(
        "check_duration_seconds", "gauge", "Seconds the whole check took", "seconds"
    ).add(domain, report.seconds)
    add_probes(exposition, report.probes, domain)
    return exposition.text()
