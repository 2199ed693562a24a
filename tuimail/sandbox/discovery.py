"""Telling other tuimail processes where the built-in sandbox listens, and who serves it.

Only the process holding the sandbox's lock (a
:class:`~tuimail.sandbox_profile.Claim`) announces; see
:mod:`tuimail.sandbox_profile` for how a client reads it and why a file left
behind by a killed server is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

from tuimail import paths
from tuimail.atomic import atomic_write_bytes
from tuimail.sandbox_profile import RUNTIME_TLS_WORDS, runtime_file

if TYPE_CHECKING:
    from tuimail.sandbox.server import Sandbox


def announce(
    sandbox: Sandbox, served_by: str = "serve", settings: dict[str, Any] | None = None
) -> None:
    """Tell other tuimail processes where this sandbox listens (file I/O: off the UI loop).

    ``served_by`` is ``app``, ``serve`` or ``send``; ``settings`` what a later
    ``tuimail serve`` compares its options with.
    """
    record = {
        "pid": os.getpid(),
        "host": sandbox.client_profile().host,
        "port": sandbox.port,
        "tls": RUNTIME_TLS_WORDS[sandbox.config.security],
        "ca_file": str(sandbox.ca_file or ""),
        "maildir": str(sandbox.maildir_path),
        "sessions_dir": str(sandbox.sessions_dir),
        "served_by": served_by,
        "settings": settings or {},
    }
    paths.ensure_private_dir(runtime_file().parent)
    atomic_write_bytes(runtime_file(), json.dumps(record).encode())


def withdraw() -> None:
    """Remove the runtime file if it is ours (read without blocking: a FIFO put in its
    place hung ``tuimail serve`` on its way out, see tuimail/small_files.py)."""
    from tuimail.small_files import parse_json, read_small_text

    with contextlib.suppress(OSError, ValueError):
        record = parse_json(read_small_text(runtime_file()))
        if not isinstance(record, dict):
            return
        if record.get("pid") == os.getpid():
            runtime_file().unlink()
