"""F5's browser pages with a runtime dir that is not private: no link in it is followed.

``XDG_RUNTIME_DIR`` set to a shared folder (``/tmp``, a mode-1777 folder here,
or another user's) lets anyone create ``tuimail/browser`` in it before the
app does. As a link to a folder of the user's, it made that folder 0700 and
the pages of captured mail were written into it. The pages now go to the
state dir's private folder when the runtime dir is not the user's own 0700
folder, or when a link stands in it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tuimail import paths
from tuimail.inbox.browser import browser_dir, write_html_for_browser


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.parametrize("runtime_mode", [0o1777, 0o700])
def test_a_link_in_the_runtime_dir_is_not_followed(
    isolated_dirs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime_mode: int
) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir()
    runtime.chmod(runtime_mode)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    documents = tmp_path / "Documents"
    documents.mkdir()
    documents.chmod(0o755)
    (documents / "notes.txt").write_text("mine\n")
    (runtime / "tuimail").mkdir()
    (runtime / "tuimail" / "browser").symlink_to(documents)

    page, _remote = write_html_for_browser("<p>captured mail</p>")

    assert page.parent == paths.state_dir() / "browser"
    assert sorted(p.name for p in documents.iterdir()) == ["notes.txt"]
    assert _mode(documents) == 0o755
    assert _mode(page.parent) == 0o700 and _mode(page) == 0o600


def test_a_shared_runtime_dir_is_not_used(
    isolated_dirs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "shared"
    runtime.mkdir()
    runtime.chmod(0o1777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert browser_dir() == paths.state_dir() / "browser"
    assert list(runtime.iterdir()) == []


def test_a_private_runtime_dir_is_used(
    isolated_dirs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert browser_dir() == runtime / "tuimail" / "browser"
    assert _mode(runtime / "tuimail" / "browser") == 0o700


def test_a_linked_state_folder_is_refused_in_words(
    isolated_dirs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    paths.state_dir().mkdir(parents=True, exist_ok=True)
    (paths.state_dir() / "browser").symlink_to(elsewhere)
    with pytest.raises(OSError, match="not a private folder"):
        write_html_for_browser("<p>captured mail</p>")
    assert list(elsewhere.iterdir()) == []


def test_the_exit_pruning_follows_no_link_in_a_shared_runtime_dir(
    isolated_dirs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At exit the pages are pruned where they may be: not through another's
    ``tuimail`` link in a shared runtime dir, to a folder of the user's."""
    import time

    from tuimail.inbox.browser import BROWSER_KEPT_FOR, prune_browser_pages

    runtime = tmp_path / "shared"
    runtime.mkdir()
    runtime.chmod(0o1777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    mine = tmp_path / "saved" / "browser"
    mine.mkdir(parents=True)
    page = mine / "tuimail-kept_by_the_user.html"
    page.write_text("<p>saved</p>")
    old = time.time() - BROWSER_KEPT_FOR - 60
    os.utime(page, (old, old))
    (runtime / "tuimail").symlink_to(mine.parent)
    assert prune_browser_pages() == 0
    assert page.exists()
