"""Probe results over time, bounded, in the state dir.

The monitor's latency chart and the "capabilities changed" check both read
this, so a restart (or a cron-driven ``tuimail probe``) keeps its memory.
Only a small summary of each probe is kept, never a transcript.

Records are kept per target (:attr:`tuimail.probe.ProbeTarget.key`: its owner,
a profile or an extra target, and its server). Files written before the owner
was part of the key hold one list per server address; they are read as they
are, and a profile or extra target with no records of its own starts from its
server's (:meth:`ProbeHistory.records`), so nothing recorded is lost or hidden.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuimail import paths
from tuimail.atomic import atomic_write_bytes
from tuimail.probe import ProbeReport, ProbeTarget
from tuimail.small_files import parse_json, read_small_text

MAX_PER_TARGET = 500
MAX_TARGETS = 500
#: Beyond any plausible time stamp or latency (year 5138); larger ones overflow ``localtime``.
LATEST_TIME = 1e11
#: Above what MAX_TARGETS x MAX_PER_TARGET records with capabilities and reasons take.
HISTORY_LIMIT = 512 * 1024 * 1024


def history_file() -> Path:
    return paths.state_dir() / "probe-history.json"


def _usable(record: object) -> bool:
    """A record with the fields the monitor reads, of the types it reads them as.

    The file is the user's to edit or break; a record with ``"total": "abc"``
    or a list for ``capabilities`` stopped the monitor. Such records are left out.
    """
    if not isinstance(record, dict):
        return False

    def number(value: object) -> bool:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and 0 <= value < LATEST_TIME
        )

    capabilities = record.get("capabilities", {})
    days_left = record.get("days_left")
    timings = record.get("timings", {})
    return (
        number(record.get("started"))
        and number(record.get("total", 0.0))
        and isinstance(record.get("status", ""), str)
        and isinstance(record.get("reached", True), bool)
        and (timings is None or isinstance(timings, dict))
        and (days_left is None or number(days_left))
        and (capabilities is None or isinstance(capabilities, dict))
    )


def reached(record: dict[str, Any]) -> bool:
    """Whether the probe recorded got through to the server (its ``total`` is then a
    latency; otherwise only how long the connection attempt took).

    Records written before ``reached`` was kept say it by their timings: a probe
    that got no further than the TCP connect timed nothing else.
    """
    said = record.get("reached")
    if isinstance(said, bool):
        return said
    timings = record.get("timings")
    if isinstance(timings, dict) and timings:
        return any(stage != "connect" for stage in timings)
    return True


@dataclass
class ProbeHistory:
    path: Path = field(default_factory=history_file)
    targets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> ProbeHistory:
        history = cls(path or history_file())
        try:
            data = parse_json(read_small_text(history.path, HISTORY_LIMIT))
        except (OSError, ValueError):
            return history  # no history yet, or unreadable: start again rather than fail
        if isinstance(data, dict) and isinstance(data.get("targets"), dict):
            targets = {
                str(k): [r for r in v if _usable(r)]
                for k, v in data["targets"].items()
                if isinstance(v, list)
            }
            history.targets = {k: v for k, v in targets.items() if v}
        return history

    def records(self, target: ProbeTarget) -> list[dict[str, Any]]:
        """``target``'s records, oldest first: its own, or (for a profile or an extra
        target with none yet) those of its server from an older file."""
        own = self.targets.get(target.key)
        if own is not None or not target.owner:
            return own or []
        return self.targets.get(target.address_key, [])

    def add(self, report: ProbeReport) -> None:
        target = report.target
        if target.key not in self.targets:
            # Carried over, not moved: two profiles on one server both had that past.
            self.targets[target.key] = [dict(r) for r in self.records(target)]
        records = self.targets[target.key]
        records.append(
            {
                "started": report.started,
                "status": report.status.name,
                "reached": report.reached,
                "total": round(report.total, 6),
                "timings": {k: round(v, 6) for k, v in report.labelled_timings().items()},
                "days_left": report.tls.days_left if report.tls else None,
                "capabilities": report.capabilities,
                "reasons": report.reasons,
            }
        )
        del records[:-MAX_PER_TARGET]
        if len(self.targets) > MAX_TARGETS:
            oldest = sorted(self.targets, key=lambda k: self.targets[k][-1]["started"])
            for key in oldest[: len(self.targets) - MAX_TARGETS]:
                del self.targets[key]

    def last_capabilities(self, target: ProbeTarget) -> dict[str, str] | None:
        for record in reversed(self.records(target)):
            capabilities = record.get("capabilities")
            if capabilities:
                return {str(k): str(v) for k, v in capabilities.items()}
        return None

    def latencies(self, target: ProbeTarget, limit: int = 60) -> list[float | None]:
        """The last ``limit`` probes' total seconds, oldest first; ``None`` for a probe
        that did not reach the server (its time is no latency)."""
        return [
            float(r.get("total", 0.0)) if reached(r) else None
            for r in self.records(target)[-limit:]
        ]

    def save(self) -> None:
        paths.ensure_private_dir(self.path.parent)
        data = json.dumps({"version": 1, "targets": self.targets}, ensure_ascii=False)
        atomic_write_bytes(self.path, data.encode("utf-8"))
