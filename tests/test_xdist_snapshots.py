"""A snapshot no test uses fails a run on pytest-xdist workers too, and --snapshot-update deletes it.

syrupy does both in one process but leaves them out under xdist;
tests/xdist_support.py puts them back for ``--dist loadfile``. Here a small
project of its own (two test files, each with its syrupy snapshot file, one
holding a snapshot no test makes) runs in a real ``pytest -n 2``
subprocess, with that plugin named by its conftest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TEST_A = """
def test_kept_a(snapshot):
    assert snapshot == "a"
"""

TEST_B = """
def test_kept_b(snapshot):
    assert snapshot == "b"
"""


def amber(*entries: tuple[str, str]) -> str:
    """A syrupy snapshot file holding ``(test name, string)`` entries."""
    parts = [f"# name: {name}\n  '{value}'\n# ---\n" for name, value in sorted(entries)]
    return "# serializer version: 1\n" + "".join(parts)


def run_pytest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Two workers, so each test file may run on another one than its neighbour."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTEST_ADDOPTS", None)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2"]
    return subprocess.run(
        [*command, "--dist", "loadfile", "-c", str(project / "pytest.ini"), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_unused_snapshot_fails_an_xdist_run_and_snapshot_update_deletes_it(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    (project / "__snapshots__").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "conftest.py").write_text('pytest_plugins = ["tests.xdist_support"]\n')
    (project / "test_a.py").write_text(TEST_A)
    (project / "test_b.py").write_text(TEST_B)
    stored_a = project / "__snapshots__" / "test_a.ambr"
    stored_b = project / "__snapshots__" / "test_b.ambr"
    stored_a.write_text(amber(("test_kept_a", "a")))
    # test_gone was renamed or deleted; its snapshot was left behind.
    stored_b.write_text(amber(("test_kept_b", "b"), ("test_gone", "gone")))

    unused = run_pytest(project)
    said = unused.stdout + unused.stderr
    assert unused.returncode == 1, said
    assert "2 passed" in unused.stdout, said
    assert [line for line in unused.stdout.splitlines() if line.startswith("unused:")] == [
        f"unused: {stored_b}: test_gone"
    ], said
    assert "test_gone" in stored_b.read_text()  # reported, not deleted

    updated = run_pytest(project, "--snapshot-update")
    said = updated.stdout + updated.stderr
    assert updated.returncode == 0, said
    assert f"deleted, unused: {stored_b}: test_gone" in updated.stdout, said
    assert stored_b.read_text() == amber(("test_kept_b", "b"))
    assert stored_a.read_text() == amber(("test_kept_a", "a"))
