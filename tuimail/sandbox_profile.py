"""The built-in ``sandbox`` profile, and how a client finds a running sandbox.

Kept apart from :mod:`tuimail.sandbox` (the server, built on aiosmtpd) so that
a client, the app's first screen or ``tuimail send``, can name and find the
sandbox without importing a server it may never start.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from tuimail import paths
from tuimail.profiles import Profile, Security
from tuimail.small_files import parse_json, read_small_text

SANDBOX_PROFILE = "sandbox"
SANDBOX_SENDER = "you@sandbox.test"
SANDBOX_DISPLAY_NAME = "tuimail sandbox"


def runtime_file() -> Path:
    """Where a running ``tuimail serve`` says where it listens."""
    return paths.state_dir() / "sandbox.json"


def find_running() -> Profile | None:
    """The profile of a ``tuimail serve`` that is running and answering, if any."""
    try:
        record = parse_json(read_small_text(runtime_file()))
        pid, host, port = int(record["pid"]), str(record["host"]), int(record["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    try:
        with socket.create_connection((host, port), timeout=1):
            pass
    except OSError:
        return None
    security = {word: mode for mode, word in RUNTIME_TLS_WORDS.items()}
    return builtin_profile(
        host,
        port,
        security.get(str(record.get("tls")), Security.NONE),
        str(record.get("ca_file") or ""),
    )


#: How the runtime file names each security mode; "implicit" predates the
#: shared :class:`~tuimail.profiles.Security` enum, and a running sandbox of
#: another version may have written it.
RUNTIME_TLS_WORDS = {Security.NONE: "none", Security.STARTTLS: "starttls", Security.TLS: "implicit"}


def builtin_profile(
    host: str = "127.0.0.1", port: int = 0, security: Security = Security.NONE, ca_file: str = ""
) -> Profile:
    """The ``sandbox`` profile every install has; port 0 until a sandbox runs."""
    return Profile(
        name=SANDBOX_PROFILE,
        host=host,
        port=port,
        security=security,
        ca_file=ca_file,
        from_address=SANDBOX_SENDER,
        display_name=SANDBOX_DISPLAY_NAME,
        timeout=10.0,
    )
