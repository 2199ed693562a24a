"""Running the installed ``tuimail`` command as a user would: a real process."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PromptedRun:
    """A tuimail run that asked a question at a terminal and was answered."""

    returncode: int
    out: bytes
    err: bytes
    #: What the terminal and standard error showed up to the question.
    seen: bytes
    #: What the terminal showed after the answer was typed (an echo would be here).
    echoed: bytes


def answer_at_terminal(
    args: list[str], prompt: bytes, answer: str, env: dict[str, str] | None = None
) -> PromptedRun:
    """Run ``tuimail ARGS`` with a pty as its terminal, type ``answer`` once ``prompt`` shows.

    The process gets no controlling terminal (a new session), so ``getpass``
    reads the pty on standard input, as it would a user's terminal.
    """
    import pty
    import select

    master, slave = pty.openpty()
    process = subprocess.Popen(
        [TUIMAIL, *args], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, env=env,
    )  # fmt: skip
    os.close(slave)
    assert process.stderr is not None
    seen = b""
    try:
        while prompt not in seen:
            ready, _, _ = select.select([master, process.stderr.fileno()], [], [], 30)
            assert ready, f"no prompt: {seen!r}"
            for fd in ready:
                seen += os.read(fd, 4096)
        os.write(master, answer.encode() + b"\n")
        out, err = process.communicate(timeout=60)
        try:
            echoed = os.read(master, 4096)
        except OSError:
            echoed = b""
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    return PromptedRun(process.returncode, out, err, seen, echoed)
