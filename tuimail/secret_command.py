"""A profile's secret from a command: ``password_command`` and ``token_command``.

As msmtp's ``passwordeval`` and aerc's ``outgoing-cred-cmd`` do, a profile
can name a command that prints its secret (``pass show mail``, ``gpg -d``,
``op read``, ``secret-tool lookup``; for a token, ``oama access``,
``mutt_oauth2.py``). The rules:

* the command is split as a shell would split words (:func:`shlex.split`) and
  run without a shell; a user who wants one writes ``sh -c '...'`` themselves;
* it gets no standard input, a timeout, and its output is read up to a bound;
  what it printed is never logged, and only the first line of standard
  output is used (a trailing newline is not part of the secret);
* a command that fails, times out, or prints nothing is an error naming the
  command and its exit status, with its standard error (the user's own
  program's words) escaped and cut;
* it runs each time a secret is needed: the outbox's next attempt runs it
  again, and a token it printed is never stored with a message.

The call blocks: the session runs it in a worker thread.
"""

from __future__ import annotations

import contextlib
import enum
import os
import selectors
import shlex
import signal
import subprocess
import time
from typing import TYPE_CHECKING

from tuimail.bearer import BearerToken
from tuimail.credentials import Secret
from tuimail.errors import TuimailError
from tuimail.terminal_text import escape_controls

if TYPE_CHECKING:
    from tuimail.profiles import Profile

#: Seconds a command may take (long enough to type a passphrase into pinentry).
COMMAND_TIMEOUT = 60.0
#: Bytes of standard output read; a command printing more prints no secret.
OUTPUT_LIMIT = 64 * 1024
#: Characters of standard error quoted in an error.
STDERR_LIMIT = 1000
#: Seconds to keep reading after the command exited (a child may hold the pipe open).
_AFTER_EXIT = 1.0


class CommandProblem(enum.Enum):
    """Why a command gave no secret."""

    #: It could not be started (not found, not executable, not a command line).
    NOT_STARTED = "not started"
    #: It exited with a status other than 0 (or was killed by a signal).
    FAILED = "failed"
    #: It did not finish within the timeout, and was stopped.
    TIMEOUT = "timeout"
    #: Its first line of output was empty.
    EMPTY = "empty"
    #: It printed something that cannot be a secret (too long, not UTF-8, a NUL).
    UNUSABLE = "unusable"


class SecretCommandError(TuimailError):
    """A ``password_command`` or ``token_command`` gave no secret: which, and why.

    ``setting`` names the profile setting, ``command`` the command as written,
    ``status`` its exit status (negative: the signal that ended it; None when
    it never ran to the end), ``stderr`` what it wrote there, escaped and cut.
    """

    def __init__(
        self,
        setting: str,
        command: str,
        problem: CommandProblem,
        detail: str = "",
        *,
        status: int | None = None,
        stderr: str = "",
    ) -> None:
        self.setting = setting
        self.command = command
        self.problem = problem
        self.status = status
        self.stderr = stderr
        words = f"{setting} {escape_controls(command)!r} {detail}"
        if stderr:
            words += f"; it said: {stderr}"
        super().__init__(words)

    @property
    def temporary(self) -> bool:
        """A later run may succeed (an agent not yet unlocked, a network down)."""
        return self.problem in (CommandProblem.FAILED, CommandProblem.TIMEOUT, CommandProblem.EMPTY)


def run_secret_command(
    command: str,
    *,
    setting: str = "password_command",
    timeout: float = COMMAND_TIMEOUT,
) -> Secret:
    """Run ``command`` and return the first line it printed, as a secret.

    Raises :class:`SecretCommandError`. Blocks up to ``timeout`` seconds.
    """
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise SecretCommandError(
            setting, command, CommandProblem.NOT_STARTED, f"is not a command line: {exc}"
        ) from None
    if not argv:
        raise SecretCommandError(setting, command, CommandProblem.NOT_STARTED, "is empty")
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
            # Its own process group: a command stopped for taking too long (or
            # a run cancelled) goes with everything it started, as a shell
            # script's background jobs would otherwise run on.
            start_new_session=True,
        )
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SecretCommandError(
            setting, command, CommandProblem.NOT_STARTED, f"could not be run: {reason}"
        ) from None
    with process:
        over: str | None = "cancelled"
        try:
            stdout, stderr, over = _collect(process, timeout)
        finally:
            if over is not None:
                _stop_group(process)
    said = _quoted(stderr)
    if over == "timeout":
        raise SecretCommandError(
            setting,
            command,
            CommandProblem.TIMEOUT,
            f"did not finish within {timeout:g} seconds and was stopped",
            stderr=said,
        )
    if over == "output":
        raise SecretCommandError(
            setting,
            command,
            CommandProblem.UNUSABLE,
            f"printed more than {OUTPUT_LIMIT:,} bytes and was stopped; that is no secret",
        )
    status = process.returncode
    assert status is not None  # _collect returns None only once the command has ended
    if status != 0:
        how = f"was ended by signal {-status}" if status < 0 else f"exited with status {status}"
        raise SecretCommandError(
            setting, command, CommandProblem.FAILED, how, status=status, stderr=said
        )
    line = stdout.split(b"\n", 1)[0].removesuffix(b"\r")
    if not line:
        raise SecretCommandError(
            setting, command, CommandProblem.EMPTY, "printed nothing", status=0, stderr=said
        )
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretCommandError(
            setting, command, CommandProblem.UNUSABLE, "printed something that is not UTF-8 text"
        ) from None
    if "\0" in text:
        raise SecretCommandError(
            setting, command, CommandProblem.UNUSABLE, "printed a NUL character"
        )
    return Secret(text)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the command's whole process group, then reap the command."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()
    process.wait()


def _collect(process: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bytes, str | None]:
    """Standard output and error of ``process``, bounded; and what stopped the reading.

    The third value is None when the command ended, ``"timeout"`` when the
    timeout ran out, ``"output"`` when standard output passed its bound.
    Standard error is kept up to a bound and the rest read and dropped.
    """
    assert process.stdout is not None and process.stderr is not None
    out, err = process.stdout.fileno(), process.stderr.fileno()
    kept = {out: bytearray(), err: bytearray()}
    deadline = time.monotonic() + timeout
    exited_at: float | None = None
    with selectors.DefaultSelector() as selector:
        for fd in kept:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            now = time.monotonic()
            if exited_at is None and process.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > _AFTER_EXIT:
                break  # a child of the command holds the pipe open: what came is all
            if now >= deadline:
                return bytes(kept[out]), bytes(kept[err]), "timeout"
            for key, _events in selector.select(min(0.1, deadline - now)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = kept[key.fd]
                if key.fd == out:
                    if len(buffer) + len(chunk) > OUTPUT_LIMIT:
                        return b"", bytes(kept[err]), "output"
                    buffer += chunk
                elif len(buffer) < STDERR_LIMIT * 4:
                    buffer += chunk[: STDERR_LIMIT * 4 - len(buffer)]
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(max(deadline - time.monotonic(), 0.0))
    if process.returncode is None:
        return bytes(kept[out]), bytes(kept[err]), "timeout"
    return bytes(kept[out]), bytes(kept[err]), None


def _quoted(stderr: bytes) -> str:
    """The command's standard error, as one escaped line of bounded length."""
    text = stderr.decode("utf-8", "replace").strip()
    text = " / ".join(line.strip() for line in text.splitlines() if line.strip())
    shown = escape_controls(text)
    return shown[:STDERR_LIMIT] + "…" if len(shown) > STDERR_LIMIT else shown


def command_secret(profile: Profile, *, timeout: float = COMMAND_TIMEOUT) -> Secret | None:
    """The secret ``profile``'s command prints, or None when it names no command.

    A ``token_command``'s output is a :class:`~tuimail.bearer.BearerToken`
    that renews itself by running the command again. Blocks: run it in a
    worker thread.
    """
    if profile.token_command:
        command = profile.token_command

        def fresh() -> Secret:
            return run_secret_command(command, setting="token_command", timeout=timeout)

        return BearerToken(fresh().reveal(), renew=fresh)
    if profile.password_command:
        return run_secret_command(
            profile.password_command, setting="password_command", timeout=timeout
        )
    return None
