"""Attacks on ``tuimail send --edit`` (tuimail/cli/edit_loop.py, tuimail/editor.py):
an editor that swaps the private file for a symlink or a FIFO, or leaves a huge file.

Real processes on a pty (the stand-in editor and Terminal of
tests/test_cli_send_edit.py) and a real SMTP server on loopback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.smtpservers import ServerThread, Sink
from tests.test_cli_send_edit import Terminal, editor, send_edit
from tuimail.cli import exitcodes

__all__ = ["editor"]  # the fixture, used by name

#: An editor that puts something else where its file was, then exits with a status.
SWAPPER = f"""#!{sys.executable}
import os, sys, pathlib
target = pathlib.Path(sys.argv[-1])
steps = pathlib.Path(os.environ["EDIT_STEPS"])
count = len(list(steps.glob("*.ran"))) + 1
(steps / f"{{count}}.ran").write_text(str(target))
kind = (steps / f"{{count}}.kind").read_text() if (steps / f"{{count}}.kind").exists() else ""
if kind.startswith("symlink:"):
    target.unlink()
    os.symlink(kind.removeprefix("symlink:"), target)
    sys.exit(1)
if kind == "fifo":
    target.unlink()
    os.mkfifo(target, 0o600)
if kind == "huge":
    with open(target, "ab") as file:
        file.truncate(200 * 1024 * 1024)
"""


def swapper(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    script = tmp_path / "swapper.py"
    script.write_text(SWAPPER)
    script.chmod(0o755)
    return env | {"EDITOR": str(script)}


def test_a_symlink_left_by_a_failed_editor_is_not_written_through(
    servers: ServerThread, editor: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    """The editor fails after putting a symlink to another file in place of its own:
    putting the message back must not truncate and overwrite that other file."""
    env, steps = editor
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (steps / "1.kind").write_text(f"symlink:{victim}")
    port = servers.smtp(Sink())
    terminal = Terminal(send_edit(port), swapper(env, tmp_path))
    terminal.read_until("(c)ancel?")
    terminal.type("c\n")
    assert terminal.wait() == exitcodes.EDIT_CANCELLED, terminal.output
    assert victim.read_text() == "precious\n"
    assert not list((Path(env["XDG_RUNTIME_DIR"]) / "tuimail").iterdir())


def test_a_fifo_left_by_the_editor_does_not_hang(
    servers: ServerThread, editor: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    """A FIFO in place of the file (nobody writing to it): reading it back must not wait forever."""
    env, steps = editor
    (steps / "1.kind").write_text("fifo")
    sink = Sink()
    port = servers.smtp(sink)
    terminal = Terminal(send_edit(port), swapper(env, tmp_path))
    terminal.read_until("(c)ancel?", timeout=20)
    terminal.type("c\n")
    assert terminal.wait() == exitcodes.EDIT_CANCELLED, terminal.output
    assert not sink.messages
    assert not list((Path(env["XDG_RUNTIME_DIR"]) / "tuimail").iterdir())


def test_a_huge_file_is_refused_in_words(
    servers: ServerThread, editor: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    """200 MB left by the editor: past any message tuimail sends; said, not read whole."""
    env, steps = editor
    (steps / "1.kind").write_text("huge")
    sink = Sink()
    port = servers.smtp(sink)
    terminal = Terminal(send_edit(port), swapper(env, tmp_path))
    terminal.read_until("(c)ancel?", timeout=60)
    assert "too large" in terminal.output
    terminal.type("c\n")
    assert terminal.wait() == exitcodes.EDIT_CANCELLED, terminal.output
    assert not sink.messages
    runtime = Path(env["XDG_RUNTIME_DIR"]) / "tuimail"
    assert not list(runtime.iterdir())
    assert os.path.isdir(runtime)
