"""Probe results over time, bounded, in the state dir.

The monitor's latency chart and the "capabilities changed" check both read
this, so a restart (or a cron-driven ``tuimail probe``) keeps its memory.
Only a small summary of each probe is kept, never a transcript.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuimail import paths
from tuimail.atomic import atomic_write_bytes
from tuimail.probe import ProbeReport
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
    return (
        number(record.get("started"))
        and number(record.get("total", 0.0))
        and isinstance(record.get("status", ""), str)
        and (days_left is None or number(days_left))
        and (capabilities is None or isinstance(capabilities, dict))
    )


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

    def add(self, report: ProbeReport) -> None:
        records = self.targets.setdefault(report.target.key, [])
        records.append(
            {
                "started": report.started,
                "status": report.status.name,
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

    def last_capabilities(self, key: str) -> dict[str, str] | None:
        for record in reversed(self.targets.get(key, [])):
            capabilities = record.get("capabilities")
            if capabilities:
                return {str(k): str(v) for k, v in capabilities.items()}
        return None

    def latencies(self, key: str, limit: int = 60) -> list[float]:
        return [float(r.get("total", 0.0)) for r in self.targets.get(key, [])[-limit:]]

    def save(self) -> None:
        paths.ensure_private_dir(self.path.parent)
        data = json.dumps({"version": 1, "targets": self.targets}, ensure_ascii=False)
        atomic_write_bytes(self.path, data.encode("utf-8"))
