"""The body in $EDITOR: the private file, which editor, what counts as an edit, and the
palette entry (the suspend itself is tests/test_ui_tmux.py's, in a real terminal)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.ui_support import static_text, type_text, wait_for
from tuimail import editor as external_editor
from tuimail.ui.app import TuimailApp


def test_the_body_file_is_private_in_the_runtime_dir_and_removed_when_read(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = isolated_dirs / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    path = external_editor.write_body("naïve body\n")
    assert path.parent == runtime / "tuimail"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert external_editor.read_back(path) == "naïve body\n"
    assert not path.exists()
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    elsewhere = external_editor.write_body("")
    assert elsewhere.parent.name == "editing"  # the data dir's, when there is no runtime dir
    external_editor.read_back(elsewhere)


def test_which_editor_and_what_counts_as_an_edit() -> None:
    assert external_editor.editor_argv({"VISUAL": "code -w", "EDITOR": "nano"}) == ["code", "-w"]
    assert external_editor.editor_argv({"EDITOR": "nano"}) == ["nano"]
    assert external_editor.editor_argv({}) == ["vi"]
    with pytest.raises(ValueError):
        external_editor.editor_argv({"EDITOR": "'unclosed"})
    assert external_editor.edited_body("Hi", "Hi\n", 0) is None  # only the editor's newline
    assert external_editor.edited_body("Hi", "Hello\n", 0) == "Hello"
    assert external_editor.edited_body("Hi\n", "Hi\nmore\n", 0) == "Hi\nmore\n"
    assert external_editor.edited_body("Hi", "Hello", 1) is None  # a failed editor: kept
    assert external_editor.edited_body("Hi", None, 0) is None  # unreadable: kept


async def test_the_palette_offers_the_editor_and_the_body_is_kept_without_a_terminal() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.click("#body")
        await type_text(pilot, "Hello")
        await pilot.press("ctrl+p")
        await type_text(pilot, "EDITOR")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: "needs a terminal" in static_text(app, "#send-status"), "the refusal"
        )
        assert "The body is as it was" in static_text(app, "#send-status")
