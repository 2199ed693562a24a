"""Review: F5's "open in the browser" pages of captured mail do not pile up.

Each ``o`` wrote the message's HTML into a new file in the system's temporary
folder and nothing removed it. Pages now go into a private (0700) folder of
their own, 0600 each, and those older than a minute are removed when the next
one is written and when the app exits. The app's own sandbox receives from
Python's smtplib; the browser is a stand-in that records the address asked for.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
import webbrowser
from pathlib import Path

import pytest

from tests.test_sandbox_port import free_port, write_config
from tests.test_ui_inbox import open_first, rich_message, send, started
from tests.ui_support import wait_for
from tuimail import paths
from tuimail.inbox.browser import BROWSER_KEPT_FOR, prune_browser_pages, write_html_for_browser
from tuimail.ui.app import TuimailApp

OLD = time.time() - BROWSER_KEPT_FOR - 60


def aged(path: Path) -> Path:
    os.utime(path, (OLD, OLD), follow_symlinks=False)
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


async def test_pages_are_private_and_removed_at_the_next_page_and_at_exit(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    opened: list[Path] = []

    def browser(uri: str) -> bool:
        opened.append(Path(uri.removeprefix("file://")))
        return True

    monkeypatch.setattr(webbrowser, "open", browser)
    write_config(f"[sandbox]\nport = {free_port()}\n")
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        port = await started(pilot)
        await asyncio.to_thread(send, port, rich_message())
        await open_first(pilot, 1)
        await pilot.press("o")
        await wait_for(pilot, lambda: len(opened) == 1, "the browser to be asked")
        first = opened[0]
        folder = runtime / "tuimail" / "browser"
        assert first.parent == folder  # not the shared temporary folder
        assert mode(folder) == 0o700 and mode(first) == 0o600
        assert "Thanks" in first.read_text(encoding="utf-8")

        await pilot.press("o")  # a moment later: the first is still there for the browser
        await wait_for(pilot, lambda: len(opened) == 2, "the second page")
        assert first.is_file()

        aged(first)  # a minute on, the next page takes the first one's place
        await pilot.press("o")
        await wait_for(pilot, lambda: len(opened) == 3, "the third page")
        assert not first.exists()
        assert opened[1].is_file() and opened[2].is_file()
        aged(opened[1])
    # At exit the pages past a minute go; the one just opened may still be loading.
    assert not opened[1].exists()
    assert opened[2].is_file()
    assert sorted(folder.iterdir()) == [opened[2]]


def test_without_a_runtime_dir_the_state_dir_holds_them(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    path, remote = write_html_for_browser("<p>Hello</p>")
    assert path.parent == paths.state_dir() / "browser"
    assert mode(path.parent) == 0o700 and mode(path) == 0o600
    assert not remote
    aged(path)
    assert prune_browser_pages() == 1 and not path.exists()


def test_only_tuimail_s_own_old_pages_are_removed_and_links_are_not_followed(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    folder = paths.ensure_private_dir(paths.state_dir() / "browser")
    precious = tmp_path / "precious.html"
    precious.write_text("the user's own")
    page = folder / "tuimail-abc123_x.html"
    page.write_text("old page")
    aged(page)
    other = folder / "notes.html"  # not a name tuimail gives
    other.write_text("someone's")
    aged(other)
    link = folder / "tuimail-link0001.html"
    link.symlink_to(precious)
    aged(link)
    assert prune_browser_pages() == 1
    assert not page.exists()
    assert other.read_text() == "someone's"
    assert link.is_symlink() and precious.read_text() == "the user's own"

    # A browser folder that is a link to elsewhere is not entered.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    old = elsewhere / "tuimail-zzz.html"
    old.write_text("not in tuimail's folder")
    aged(old)
    for entry in folder.iterdir():
        entry.unlink()
    folder.rmdir()
    folder.symlink_to(elsewhere, target_is_directory=True)
    assert prune_browser_pages() == 0
    assert old.is_file()
