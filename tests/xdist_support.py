"""Syrupy's unused-snapshot check, kept when the suite runs on pytest-xdist workers.

Run in one process, syrupy (under pytest-textual-snapshot) fails the run when
a snapshot file belongs to no test (a renamed or deleted test left its SVG
behind), and ``--snapshot-update`` deletes such files. Under xdist it does
neither: each worker sees only the tests it ran, so syrupy leaves the check
out on workers and controller alike.

With ``--dist loadfile`` (the Makefile's) every test file runs whole on one
worker, so what a worker's syrupy found unused among the files it ran is
exactly what a one-process run would find there. Each worker does what
syrupy would have done (delete with ``--snapshot-update``, else report) and
sends the snapshot names to the controller in ``workeroutput``; the
controller prints them and fails the run. With another ``--dist`` mode a file
may be split between workers and the check is left out, as syrupy does.

Syrupy is pinned (pytest-textual-snapshot 1.1.0 requires syrupy 4.8.0), so
its session object read here does not change under us;
tests/test_xdist_snapshots.py runs the check through real xdist workers.
"""

from __future__ import annotations

from typing import Any

import pytest

#: The ``--dist`` modes that keep each test file on one worker.
WHOLE_FILE_MODES = ("loadfile", "loadscope")

_DIST = "tuimail_dist"
_UNUSED = "tuimail_snapshots_unused"
_REMOVED = "tuimail_snapshots_removed"
_ran_key = pytest.StashKey[list[pytest.Item]]()
_unused_key = pytest.StashKey[list[str]]()
_removed_key = pytest.StashKey[list[str]]()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """On the controller: tell each worker the ``--dist`` mode (workers see ``no``)."""
    node.workerinput[_DIST] = node.config.option.dist


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Note the tests this process runs (on a worker: its share of the files)."""
    item.config.stash.setdefault(_ran_key, []).append(item)


def _unused_here(session: pytest.Session, syrupy: Any) -> Any:
    """Syrupy's unused snapshots that belong to the test files this worker ran.

    A worker's syrupy also lists the snapshots of files other workers ran
    (it cannot tell them from stale ones): those are left out, by syrupy's
    own rule for which snapshot location belongs to which test file.
    """
    from syrupy.data import SnapshotCollections
    from syrupy.location import PyTestLocation

    ran = [PyTestLocation(item) for item in session.config.stash.get(_ran_key, [])]
    unused = SnapshotCollections()
    for collection in syrupy.report.unused:
        if any(location.matches_snapshot_location(collection.location) for location in ran):
            unused.add(collection)
    return unused


def _names(unused: Any) -> list[str]:
    """``location: name`` of each unused snapshot (a whole unused file: its path)."""
    names = []
    for collection in unused:
        snapshots = sorted(snapshot.name for snapshot in collection)
        whole = snapshots == ["unknown snapshot collection"]
        names += (
            [collection.location] if whole else [f"{collection.location}: {n}" for n in snapshots]
        )
    return names


@pytest.hookimpl(trylast=True)  # after syrupy's own (tryfirst) hook has made its report
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if config.stash.get(_unused_key, []) and session.exitstatus == pytest.ExitCode.OK:
        # The controller: fail as syrupy's exit status would in one process.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    workerinput = getattr(config, "workerinput", None)
    syrupy = getattr(config, "_syrupy", None)
    if workerinput is None or syrupy is None or syrupy.report is None:
        return  # not an xdist worker (syrupy checks for itself), or no syrupy
    if workerinput.get(_DIST) not in WHOLE_FILE_MODES:
        return  # a file may be split between workers: no worker can tell
    unused = _unused_here(session, syrupy)
    names = _names(unused)
    if not names:
        return
    output = config.workeroutput  # type: ignore[attr-defined]
    if syrupy.update_snapshots:
        syrupy.remove_unused_snapshots(
            unused_snapshot_collections=unused, used_snapshot_collections=syrupy.report.used
        )
        output[_REMOVED] = names
    elif not syrupy.warn_unused_snapshots:
        output[_UNUSED] = names


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object | None) -> None:
    """On the controller: collect what each worker found."""
    output = getattr(node, "workeroutput", None) or {}
    stash = node.config.stash
    stash[_unused_key] = stash.get(_unused_key, []) + list(output.get(_UNUSED, []))
    stash[_removed_key] = stash.get(_removed_key, []) + list(output.get(_REMOVED, []))


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    unused = config.stash.get(_unused_key, [])
    removed = config.stash.get(_removed_key, [])
    if not unused and not removed:
        return
    terminalreporter.write_sep("-", "snapshot report summary (from the xdist workers)")
    for name in removed:
        terminalreporter.write_line(f"deleted, unused: {name}")
    for name in unused:
        terminalreporter.write_line(f"unused: {name}")
    if unused:
        terminalreporter.write_line(
            "Each snapshot above belongs to no test: re-run with --snapshot-update to delete them."
        )
