"""The body in the user's own editor: which editor, the private file it edits, the reading back.

Every function here but :func:`editor_argv` blocks (files, a process): Compose
calls them in threads while the app is suspended (``App.suspend``), so the
editor has the terminal to itself.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tuimail import paths


def editor_argv(environ: Mapping[str, str]) -> list[str]:
    """``$VISUAL``, else ``$EDITOR``, else ``vi``, split as a shell would split it.

    Raises ValueError when the variable cannot be split (an unclosed quote).
    """
    command = environ.get("VISUAL", "").strip() or environ.get("EDITOR", "").strip() or "vi"
    argv = shlex.split(command)
    if not argv:
        raise ValueError("the editor command is empty")
    return argv


def body_dir() -> Path:
    """The user's runtime dir (memory, private, gone at logout), else tuimail's data dir."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        return paths.ensure_private_dir(Path(runtime) / "tuimail")
    return paths.ensure_private_dir(paths.data_dir() / "editing")


def write_body(text: str) -> Path:
    """The body in a new file of mode 0600 (``mkstemp``'s), for the editor to open."""
    fd, name = tempfile.mkstemp(prefix="body-", suffix=".txt", dir=body_dir())
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
        file.write(text)
    return Path(name)


def run_editor(argv: list[str], path: Path) -> int:
    """Run the editor on ``path`` in the terminal, wait for it; its exit status
    (127 when it could not be started)."""
    try:
        return subprocess.run([*argv, str(path)], check=False).returncode
    except OSError:
        return 127


def read_back(path: Path) -> str | None:
    """What the editor left in ``path`` (None when unreadable or not UTF-8); the file is removed."""
    try:
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def edited_body(before: str, after: str | None, status: int) -> str | None:
    """The new body, or None to keep ``before``: the editor failed, or changed nothing.

    Editors end the file with a newline; one added to a body that had none
    is not a change and is not kept.
    """
    if status != 0 or after is None:
        return None
    if not before.endswith("\n") and after.endswith("\n"):
        after = after[:-1]
    return None if after == before else after
