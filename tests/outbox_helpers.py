"""Profiles, messages and the outbox's listing for the outbox and session tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.cli_helpers import TUIMAIL, run_tuimail
from tuimail.message import Draft, OutgoingMessage, build_message
from tuimail.outbox import Outbox
from tuimail.profiles import Profile


def profile(port: int, name: str = "local", **changes: Any) -> Profile:
    """A profile for the plain-text server on 127.0.0.1:``port``, with a short timeout."""
    settings: dict[str, Any] = {"security": "none", "timeout": 5.0}
    settings.update(changes)
    return Profile(name=name, host="127.0.0.1", port=port, **settings)


def message(*to: str, subject: str = "attack") -> OutgoingMessage:
    return build_message(
        Draft(
            from_address="a@example.test",
            to=list(to or ["b@example.test"]),
            subject=subject,
            body="hello\n",
        )
    )


def rewrite_sidecar(outbox: Outbox, key: str, **changes: object) -> None:
    """Change keys of a stored sidecar as an older version (or a crash) left them."""
    meta = outbox.meta_dir / f"{key}.json"
    data = json.loads(meta.read_text("utf-8"))
    data.update(changes)
    meta.write_text(json.dumps(data), "utf-8")


def outbox_entries() -> list[dict[str, Any]]:
    """The outbox as ``tuimail outbox list --json`` shows it."""
    result = run_tuimail("outbox", "list", "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def sent_keys(data: Path) -> list[str]:
    """The messages in the Sent Maildir under the data directory ``data``."""
    sent = data / "sent" / "new"
    return sorted(p.name for p in sent.iterdir()) if sent.is_dir() else []


def send_to_be_killed(profile: str = "local") -> subprocess.Popen[bytes]:
    """``tuimail send --profile`` of a small message as a process the test will kill."""
    return subprocess.Popen(
        [TUIMAIL, "send", "--profile", profile, "--from", "a@example.test",
         "--to", "b@example.test", "--subject", "killed", "--body", "x"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
