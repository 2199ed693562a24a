"""Running the installed ``tuimail`` command as a user would: a real process."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

from tuimail.transcript import secret_forms

TUIMAIL = str(Path(sys.executable).with_name("tuimail"))


def run_tuimail(
    *args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    environment.update(env or {})
    return subprocess.run(
        [TUIMAIL, *args],
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
    )


def send_args(port: int, *extra: str, to: str | None = "bob@example.test") -> list[str]:
    """``tuimail send`` to the plain-text server on 127.0.0.1:``port``, from Alice, subject Hello.

    To Bob unless ``to`` names another recipient (None: no ``--to``); ``extra``
    (the body, more options) comes last.
    """
    recipient = ["--to", to] if to is not None else []
    return [
        "send",
        "--server",
        f"127.0.0.1:{port}",
        "--security",
        "none",
        "--from",
        "Alice <alice@example.test>",
        *recipient,
        "--subject",
        "Hello",
        *extra,
    ]


def leak_patterns(secret: str) -> list[bytes]:
    """The secret as text, its base64 forms at any alignment, and in AUTH PLAIN/LOGIN form."""
    patterns = {form.encode() for form in secret_forms(secret)}
    patterns.add(secret.encode())
    patterns.add(base64.b64encode(secret.encode()))
    return sorted(patterns)


def find_leaks(secret: str, blobs: dict[str, bytes]) -> list[str]:
    """Names of the blobs that contain the secret in any form."""
    patterns = leak_patterns(secret)
    return [name for name, blob in blobs.items() if any(p in blob for p in patterns)]


def files_under(*roots: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for root in roots:
        if not root.exists():
            continue
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                found[str(path)] = path.read_bytes()
    return found
