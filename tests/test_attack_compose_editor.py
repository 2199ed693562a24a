"""$EDITOR from Compose in a real terminal (tmux, the installed command): an edit the
app cannot take back is named as such, never reported as "nothing changed"."""

from __future__ import annotations

import shlex
from pathlib import Path

from tests.conftest import require_tool
from tests.test_ui_tmux import Tmux, tuimail_command


def edit_in_compose(isolated_dirs: Path, editor_script: str) -> tuple[Tmux, Path]:
    """The app in tmux with ``editor_script`` (sh, the file as ``$1``) as $EDITOR,
    ctrl+g pressed in Compose; the runtime dir the edited file lives in."""
    tmux = Tmux(require_tool("tmux", "tmux"))
    runtime = isolated_dirs / "runtime"
    runtime.mkdir(mode=0o700)
    editor = isolated_dirs / "editor.sh"
    editor.write_text(f"#!/bin/sh\n{editor_script}\n")
    editor.chmod(0o700)
    command = tuimail_command().replace(
        "env -i ",
        f"env -i EDITOR={shlex.quote(str(editor))} XDG_RUNTIME_DIR={shlex.quote(str(runtime))} ",
        1,
    )
    try:
        tmux.start(command, width=120, height=30)
        tmux.wait_for_text("F2 Compose")
        tmux.keys("C-g")
    except BaseException:
        tmux.kill()
        raise
    return tmux, runtime


def test_an_edit_saved_in_another_charset_is_refused_in_words(isolated_dirs: Path) -> None:
    # An editor set to Latin-1 saves "café" as the byte E9: the body cannot be
    # read back as UTF-8. The user changed it; "nothing changed" would say
    # their writing was not there.
    tmux, runtime = edit_in_compose(isolated_dirs, "printf 'Lunch at the caf\\351\\n' >> \"$1\"")
    try:
        screen = tmux.wait_until(
            lambda s: "F2 Compose" in s and "The body is as it was" in s,
            "the app back, saying what became of the edit",
        )
        assert "nothing changed" not in screen
        assert "not UTF-8" in screen
        assert not list((runtime / "tuimail").iterdir())  # the file is removed all the same
        tmux.quit_app()
    finally:
        tmux.kill()


def test_an_edit_saved_with_crlf_line_ends_comes_back_as_lines(isolated_dirs: Path) -> None:
    # An editor set to DOS line ends (vim's ff=dos, an editor from Windows)
    # writes CRLF: each CR came back into the body as a visible "\x0d".
    tmux, _runtime = edit_in_compose(
        isolated_dirs, "printf 'Line one\\r\\nLine two\\r\\n' > \"$1\""
    )
    try:
        screen = tmux.wait_until(
            lambda s: "F2 Compose" in s and "the body is back" in s,
            "the app back with the edited body",
        )
        assert "Line one" in screen and "Line two" in screen
        assert "\\x0d" not in screen
        tmux.quit_app()
    finally:
        tmux.kill()
