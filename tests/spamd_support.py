"""A real SpamAssassin ``spamd`` for tests: Debian's daemon, offline, on a free loopback port.

Debian 12 ships the daemon in the ``spamd`` package and its rules in
``spamassassin`` (installed with their compiled form, so no ``sa-update``
and no network is needed). The daemon runs with ``--local`` (no network
tests: no DNS blocklists, Razor or DCC), ``-x`` (no per-user files), one
child, listening only on 127.0.0.1 and accepting only loopback. spamd will
not run as root: as root it is told to drop to ``nobody`` with a home in
the test's own (world-writable) directory.

Under CI=true a missing binary fails the test; elsewhere it is skipped
(:func:`tests.conftest.require`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Seconds spamd gets to load its rules and answer PING (it compiles nothing: a few seconds).
START_TIMEOUT = 60.0


class SpamdError(RuntimeError):
    """spamd could not be started; carries its log."""


def spamd_binary() -> str | None:
    return shutil.which("spamd") or shutil.which("spamd", path="/usr/sbin:/usr/bin")


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Spamd:
    """A running spamd: where it listens, and its process (stopped by :meth:`stop`)."""

    directory: Path
    port: int = 0
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None
    start_seconds: float = 0.0
    log: Path = field(default_factory=Path)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, binary: str) -> None:
        started = time.monotonic()
        self.directory.mkdir(parents=True, exist_ok=True)
        home = self.directory / "home"
        home.mkdir(exist_ok=True)
        self.log = self.directory / "spamd.log"
        self.port = free_tcp_port()
        argv = [
            binary,
            "--local",
            "--nouser-config",
            f"--listen={self.host}:{self.port}",
            f"--allowed-ips={self.host}",
            "--max-children=1",
            "--min-children=1",
            "--min-spare=1",
            "--max-spare=1",
            "--syslog=stderr",
            f"--helper-home-dir={home}",
            f"--pidfile={self.directory / 'spamd.pid'}",
        ]
        if os.geteuid() == 0:  # spamd refuses to serve as root
            os.chmod(self.directory, 0o777)
            os.chmod(home, 0o777)
            argv.append("--username=nobody")
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.directory
            )
        self._wait_until_answering()
        self.start_seconds = time.monotonic() - started

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        assert self.process is not None
        while True:
            if self.process.poll() is not None:
                raise SpamdError(f"spamd exited at start:\n{self._tail()}")
            if self._pong():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise SpamdError(
                    f"spamd did not answer within {START_TIMEOUT:g} s:\n{self._tail()}"
                )
            time.sleep(0.1)

    def _pong(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as client:
                client.sendall(b"PING SPAMC/1.5\r\n\r\n")
                return b"PONG" in client.recv(200)
        except OSError:
            return False

    def _tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()  # spamd ends its children on SIGTERM
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def started_spamd(directory: Path) -> Spamd:
    """A started :class:`Spamd`; skips (or fails under CI) without Debian's spamd."""
    from tests.conftest import require

    binary = spamd_binary()
    require(binary is not None, "spamd (Debian packages spamd and spamassassin)")
    assert binary is not None
    server = Spamd(directory)
    server.start(binary)
    return server


#: SpamAssassin's test string (GTUBE): any message with it scores as spam.
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
