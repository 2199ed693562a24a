"""Attacks on the size-limit memory (tuimail/size_limits.py): hostile, corrupt, huge
and special state files, and profile names that would be paths. All held: each
counts as nothing seen, and nothing is written outside the directory."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tuimail.size_limits import last_seen, remember

HOSTILE: dict[str, Callable[[Path], object]] = {
    "deep-list": lambda path: path.write_text("[" * 4000),
    "deep-object": lambda path: path.write_text('{"a":' * 800),
    "fifo": lambda path: os.mkfifo(path),
    "dev-zero": lambda path: os.symlink("/dev/zero", path),
    "directory": lambda path: path.mkdir(),
    "nan-time": lambda path: path.write_text('{"limit": 5, "seen_at": NaN, "server": "x:1"}'),
    "huge-int": lambda path: path.write_text(
        '{"limit": ' + "9" * 4000 + ', "seen_at": 1, "server": "x:1"}'
    ),
    "not-utf8": lambda path: path.write_bytes(b"\xff\xfe"),
    "too-large": lambda path: path.write_text(" " * 10_000 + '{"seen_at": 1, "server": "x:1"}'),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_state_file_is_nothing_seen(tmp_path: Path, kind: str) -> None:
    HOSTILE[kind](tmp_path / "p.json")
    assert last_seen("p", "x:1", directory=tmp_path) is None


@pytest.mark.parametrize("name", ["..", "../p", "a/b", ".hidden", "p\n", ""])
def test_a_name_that_is_a_path_is_never_one(tmp_path: Path, name: str) -> None:
    inner = tmp_path / "limits"
    assert remember(name, "x:1", {"size": "100"}, directory=inner) is None
    assert last_seen(name, "x:1", directory=inner) is None
    assert not inner.exists()


def test_a_directory_in_the_records_place_fails_as_oserror(tmp_path: Path) -> None:
    (tmp_path / "p.json").mkdir()
    with pytest.raises(OSError):
        remember("p", "x:1", {"size": "100"}, directory=tmp_path)
