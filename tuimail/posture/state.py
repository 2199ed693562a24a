"""What the monitor remembers of a domain's posture between runs, and what changed.

The monitor (tuimail/ui/screens/monitor.py) keeps each domain's last
:meth:`~tuimail.posture.report.PostureReport.fingerprint` (the MTA-STS id, the
TLSA records, each MX certificate's SHA-256) in the state dir, and compares
the next check with it: a change of any of them is what an administrator
wants to hear about (a policy rolled, a key rotated, a certificate replaced
or swapped by someone else). The functions here read and write files:
callers run them off any UI loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuimail import paths


@dataclass(frozen=True)
class Change:
    """One thing that changed: ``what`` (mta-sts id, tlsa, certificate), of ``where``."""

    what: str
    where: str
    before: str
    after: str


def state_dir() -> Path:
    return paths.state_dir() / "posture"


def _path(domain: str) -> Path:
    return state_dir() / f"{domain.lower().rstrip('.')}.json"


def load(domain: str) -> dict[str, Any] | None:
    """The fingerprint kept for ``domain``; None when none is kept or it cannot be read."""
    from tuimail.small_files import parse_json, read_small_text

    try:
        data = parse_json(read_small_text(_path(domain)))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save(domain: str, fingerprint: dict[str, Any]) -> None:
    from tuimail.atomic import atomic_write_bytes

    paths.ensure_private_dir(state_dir())
    atomic_write_bytes(_path(domain), json.dumps(fingerprint, sort_keys=True).encode())


def _short(value: object) -> str:
    if value is None or value == []:
        return "none"
    if isinstance(value, list):
        return ", ".join(str(v)[:24] + ("..." if len(str(v)) > 24 else "") for v in value)
    text = str(value)
    return text[:16] + "..." if len(text) > 16 else text


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[Change]:
    """What differs between two fingerprints; nothing when there was none before.

    A certificate or TLSA set that is missing now (an MX that did not answer, a
    lookup that failed: the report's fingerprint leaves them out) is not a
    change: only a different value is, an empty TLSA set (the records removed)
    included.
    """
    if before is None:
        return []
    found: list[Change] = []
    old_id, new_id = before.get("mta_sts_id"), after.get("mta_sts_id")
    if old_id != new_id and new_id is not None:
        found.append(Change("mta-sts id", "the policy", _short(old_id), _short(new_id)))
    for key, what in (("tlsa", "tlsa"), ("certificates", "certificate")):
        old = before.get(key)
        new = after.get(key)
        if not isinstance(old, dict) or not isinstance(new, dict):
            continue
        for where, value in sorted(new.items()):
            if where in old and old[where] != value and value is not None:
                found.append(Change(what, where, _short(old[where]), _short(value)))
    return found


def merged(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """What to keep after a check: ``after``, with what it lacks taken from ``before``.

    A round in which an MX did not answer or a lookup failed has no value
    for it (:func:`changes` says nothing then); the value seen before is
    kept, so a certificate or policy that changed meanwhile is still
    compared with it, and said, on the next round that sees it.
    """
    if before is None:
        return after
    kept = dict(after)
    if kept.get("mta_sts_id") is None and before.get("mta_sts_id") is not None:
        kept["mta_sts_id"] = before["mta_sts_id"]
    for key in ("tlsa", "certificates"):
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            seen = {where: value for where, value in new.items() if value is not None}
            kept[key] = dict(sorted({**old, **seen}.items()))
    return kept
