"""Private directories: what tuimail makes is 0700, what it finds is left or tightened."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuimail.paths import ensure_private_dir


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask, under which a plain ``mkdir`` gives 0755."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
@pytest.mark.parametrize("tighten", [True, False])
def test_every_directory_made_is_private_and_an_existing_parent_keeps_its_mode(
    tmp_path: Path, tighten: bool
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    leaf = shared / "a" / "b"
    assert ensure_private_dir(leaf, tighten=tighten) == leaf
    assert mode(shared) == 0o755
    assert mode(shared / "a") == 0o700
    assert mode(leaf) == 0o700


@pytest.mark.parametrize(("tighten", "expected"), [(True, 0o700), (False, 0o755)])
def test_an_existing_directory_is_tightened_only_when_asked(
    tmp_path: Path, tighten: bool, expected: int
) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    existing.chmod(0o755)
    ensure_private_dir(existing, tighten=tighten)
    assert mode(existing) == expected


def test_a_file_in_the_way_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError):
        ensure_private_dir(tmp_path / "file")
    with pytest.raises(FileExistsError):
        ensure_private_dir(tmp_path / "file" / "below", tighten=False)
