"""Telling other tuimail processes where a running ``tuimail serve`` listens."""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING

from tuimail import paths
from tuimail.atomic import atomic_write_bytes
from tuimail.sandbox_profile import RUNTIME_TLS_WORDS, runtime_file

if TYPE_CHECKING:
    from tuimail.sandbox.server import Sandbox


def announce(sandbox: Sandbox) -> None:
    """Tell other tuimail processes where this sandbox listens."""
    record = {
        "pid": os.getpid(),
        "host": sandbox.client_profile().host,
        "port": sandbox.port,
        "tls": RUNTIME_TLS_WORDS[sandbox.config.security],
        "ca_file": str(sandbox.ca_file or ""),
        "maildir": str(sandbox.maildir_path),
        "sessions_dir": str(sandbox.sessions_dir),
    }
    paths.ensure_private_dir(runtime_file().parent)
    atomic_write_bytes(runtime_file(), json.dumps(record).encode())


def withdraw() -> None:
    """Remove the runtime file if it is ours."""
    with contextlib.suppress(OSError, ValueError):
        record = json.loads(runtime_file().read_text())
        if record.get("pid") == os.getpid():
            runtime_file().unlink()
