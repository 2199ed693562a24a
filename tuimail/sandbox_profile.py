"""The built-in ``sandbox`` profile, how a client finds a running sandbox, and who serves it.

Kept apart from :mod:`tuimail.sandbox` (the server, built on aiosmtpd) so that
a client, the app's first screen or ``tuimail send``, can name and find the
sandbox without importing a server it may never start.

The built-in sandbox is one per data dir. Whoever starts first (the app,
``tuimail send --profile sandbox`` or ``tuimail serve``) serves it: it takes
an exclusive ``flock`` on :func:`lock_file` with :func:`claim_or_find`, and
holds it for as long as it serves; the runtime file (:func:`runtime_file`)
says where it listens. The kernel drops the lock when its holder ends, even
by ``kill -9``, so a runtime file whose writer no longer holds the lock is
stale and ignored: it never blocks the next user, who takes the lock and
serves the sandbox again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuimail import paths
from tuimail.errors import TuimailError
from tuimail.profiles import Profile, Security
from tuimail.small_files import parse_json, read_small_text

SANDBOX_PROFILE = "sandbox"
SANDBOX_SENDER = "you@sandbox.test"
SANDBOX_DISPLAY_NAME = "tuimail sandbox"

#: How long :func:`claim_or_find` waits for another process that holds the
#: lock to say where it listens (it is starting, or stopping).
CLAIM_WAIT = 10.0


def runtime_file() -> Path:
    """Where the process serving the built-in sandbox says where it listens."""
    return paths.state_dir() / "sandbox.json"


def lock_file() -> Path:
    """The lock its server holds (``flock``) for as long as it serves; beside :func:`runtime_file`."""
    return paths.state_dir() / "sandbox.lock"


#: How the runtime file names each security mode; "implicit" predates the
#: shared :class:`~tuimail.profiles.Security` enum, and a running sandbox of
#: another version may have written it.
RUNTIME_TLS_WORDS = {Security.NONE: "none", Security.STARTTLS: "starttls", Security.TLS: "implicit"}

#: Who serves the sandbox, as the runtime file's ``served_by`` names it, in words.
SERVER_WORDS = {"app": "the tuimail app", "serve": "'tuimail serve'", "send": "'tuimail send'"}


@dataclass(frozen=True)
class RunningSandbox:
    """The built-in sandbox as the runtime file describes it: where, how, and by whom."""

    pid: int
    host: str
    port: int
    security: Security = Security.NONE
    ca_file: str = ""
    maildir: str = ""
    sessions_dir: str = ""
    #: ``app``, ``serve`` or ``send`` (:data:`SERVER_WORDS`).
    served_by: str = ""
    #: The settings a ``tuimail serve`` compares its own with (see
    #: :func:`tuimail.sandbox.builtin.differences`); no password is ever kept here.
    settings: dict[str, Any] = field(default_factory=dict)

    def profile(self) -> Profile:
        return builtin_profile(self.host, self.port, self.security, self.ca_file)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def server_words(self) -> str:
        """Who serves it, for a person: "'tuimail serve' (pid 1234)"."""
        return f"{SERVER_WORDS.get(self.served_by, 'another tuimail process')} (pid {self.pid})"


def _holder_pid() -> int | None:
    """The pid the lock's holder wrote into the lock file, if any."""
    try:
        return int(read_small_text(lock_file(), 64).strip() or "0") or None
    except (OSError, ValueError):
        return None


def lock_is_held() -> bool:
    """Whether a process holds the sandbox's lock now (it serves, or is starting or stopping)."""
    try:
        fd = os.open(lock_file(), os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops the shared lock taken just now
    return False


def _read_record() -> RunningSandbox | None:
    try:
        record = parse_json(read_small_text(runtime_file()))
        pid, host, port = int(record["pid"]), str(record["host"]), int(record["port"])
        settings = record.get("settings") or {}
        if not isinstance(settings, dict):
            settings = {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    security = {word: mode for mode, word in RUNTIME_TLS_WORDS.items()}
    return RunningSandbox(
        pid=pid,
        host=host,
        port=port,
        security=security.get(str(record.get("tls")), Security.NONE),
        ca_file=str(record.get("ca_file") or ""),
        maildir=str(record.get("maildir") or ""),
        sessions_dir=str(record.get("sessions_dir") or ""),
        served_by=str(record.get("served_by") or ""),
        settings=settings,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_sandbox(*, lock_checked: bool = False) -> RunningSandbox | None:
    """The built-in sandbox, when a live process holds its lock and says where it listens.

    A runtime file left by a process that ended (``kill -9`` too) is ignored:
    its lock is gone with it, or the pid is not the lock holder's. Nothing
    connects to the port, so looking never adds a session to the sandbox.
    """
    if not lock_checked and not lock_is_held():
        return None
    found = _read_record()
    if found is None or not _alive(found.pid):
        return None
    holder = _holder_pid()
    if holder is not None and holder != found.pid:
        return None  # a file left by an earlier server; the holder has not written its own yet
    return found


def find_running() -> Profile | None:
    """The profile of the running built-in sandbox, if any (see :func:`running_sandbox`)."""
    found = running_sandbox()
    return found.profile() if found is not None else None


class SandboxBusy(TuimailError):
    """Another process holds the sandbox's lock and has not said where it listens in time."""


class Claim:
    """This process serves the built-in sandbox for as long as it holds this (an open, locked file).

    :meth:`release` withdraws the runtime file (when it is this server's) and
    drops the lock, in that order, so nobody finds a sandbox that is gone.
    """

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd
        self.port = 0

    def release(self) -> None:
        """Withdraw the runtime file if it names this server, then drop the lock (file I/O)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError, ValueError):
            found = _read_record()
            if found is not None and found.pid == os.getpid() and found.port == self.port:
                runtime_file().unlink()
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # the lock goes with the descriptor

    @property
    def held(self) -> bool:
        return self._fd is not None


def claim_or_find(wait: float = CLAIM_WAIT) -> Claim | RunningSandbox:
    """Serve the built-in sandbox (a :class:`Claim`), or the one another process serves.

    Race-safe between processes started at the same moment: the lock decides,
    and a process that does not get it waits (up to ``wait`` s) for the
    holder's runtime file. When the holder stops meanwhile, the lock is free
    again and this process takes it. :class:`SandboxBusy` when the holder never
    says where it listens; an ``OSError`` when the state dir cannot be used.
    """
    path = lock_file()
    paths.ensure_private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            else:
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
                claim, fd = Claim(fd), -1
                return claim
            found = running_sandbox(lock_checked=True)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                holder = _holder_pid()
                who = f"process {holder}" if holder else "another tuimail process"
                raise SandboxBusy(
                    f"{who} holds the sandbox of this data dir ({path}) but has not said "
                    f"where it listens for {wait:.0f} s"
                )
            time.sleep(0.05)
    finally:
        if fd >= 0:
            os.close(fd)


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
