"""targets.toml values that parse as TOML but make no sense are refused by name.

The file is the user's to edit; the monitor reads it every round. NaN passes
every comparison, an infinite or negative timeout makes a probe that never
ends or never starts, and a host with an escape sequence would reach the
terminal. Each is a TargetError naming the target, which the monitor reports
once, instead of a probe that misbehaves.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tuimail.targets import TargetError, TargetStore


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("timeout = nan", "timeout"),
        ("timeout = inf", "timeout"),
        ("timeout = -1", "timeout"),
        ("warn_seconds = nan", "thresholds"),
        ("crit_seconds = inf", "thresholds"),
        ('host = "mx\\u001b[2J.test"', "control characters"),
    ],
)
def test_a_nonsense_value_is_refused_by_name(isolated_dirs: Path, line: str, words: str) -> None:
    path = isolated_dirs / "config" / "tuimail" / "targets.toml"
    path.parent.mkdir(parents=True)
    host = "" if line.startswith("host") else 'host = "relay.example.test"\n'
    path.write_text(f"[targets.odd]\n{host}{line}\n")
    with pytest.raises(TargetError, match=words) as raised:
        TargetStore().load()
    assert "'odd'" in str(raised.value)
