"""The body in the user's own editor, for Compose: the core's one implementation.

Which editor, the private 0600 file, running it and reading it back live in
tuimail/editor.py, shared with ``tuimail send --edit``; this module names
what Compose uses of it. Every function but :func:`editor_argv` and
:func:`edited_body` blocks (files, a process): Compose calls them in threads
while the app is suspended (``App.suspend``), so the editor has the terminal
to itself.
"""

from __future__ import annotations

from tuimail.editor import body_dir, edited_body, editor_argv, read_back, run_editor, write_body

__all__ = ["body_dir", "edited_body", "editor_argv", "read_back", "run_editor", "write_body"]
