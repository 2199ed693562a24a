"""Memory and disk of ``tuimail serve`` while clients flood it with over-long lines.

Starts ``tuimail serve --quiet`` in its own process with fresh temporary data
dirs, then ten clients (``--clients``) each send 30,000 (``--lines``)
command lines of 4,096 bytes (``--length``), longer than any command may be,
reading the server's answers as they come. Meanwhile another client sends
NOOPs and the time of each answer is noted.

Printed: the server's resident set size (VmRSS) before, its peak (VmHWM)
and after the clients have gone; the bytes of the session files it wrote;
the slowest NOOP answer during the flood. The sandbox keeps each session's
transcript within ``SESSION_MAX_ENTRIES`` entries and ``SESSION_MAX_CHARS``
characters (``tuimail/sandbox.py``), so its memory should stay far under
150 MB and return close to where it started.

Measured on 2026-12-04 (2 shared cores, default knobs, 1.2 GB sent): RSS
27 MB before, 32 MB peak, 30 MB after; 11 session files, 1.4 MB; slowest
NOOP 77 ms. Before the per-session bounds the same run gave 26, 738 and
627 MB, 543 MB of session files and a 6.5 s NOOP.

This script prints numbers; it never fails because of them. It exits
non-zero only when the server would not start.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TUIMAIL = str(Path(sys.executable).with_name("tuimail"))


def status_kb(pid: int, field: str) -> int:
    """A ``/proc/PID/status`` figure in kB (VmRSS, VmHWM); 0 where it is missing."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def start_server(home: Path) -> tuple[subprocess.Popen[str], int]:
    environment = dict(os.environ)
    for name in ("CONFIG", "DATA", "STATE"):
        environment[f"XDG_{name}_HOME"] = str(home / name.lower())
    process = subprocess.Popen(
        [TUIMAIL, "serve", "--port", "0", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    if "listening on 127.0.0.1:" not in line:
        process.kill()
        raise SystemExit(f"the sandbox did not start: {line.strip()}")
    return process, int(line.split("127.0.0.1:")[1].split()[0])


def flood(port: int, lines: int, length: int) -> None:
    """One client: ``lines`` over-long lines, then QUIT, reading answers alongside."""
    line = b"X" * (length - 2) + b"\r\n"
    batch = line * max(1, 65536 // len(line))
    per_batch = batch.count(b"\n")
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        reader = threading.Thread(target=lambda: sock.makefile("rb").read(), daemon=True)
        reader.start()
        sent = 0
        while sent < lines:
            sock.sendall(batch)
            sent += per_batch
        sock.sendall(b"QUIT\r\n")
        reader.join(120)


def noop_times(port: int, stop: threading.Event, times: list[float]) -> None:
    """NOOP round trips from a well-behaved client while the flood runs."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        replies = sock.makefile("rb")
        replies.readline()
        while not stop.is_set():
            started = time.perf_counter()
            sock.sendall(b"NOOP\r\n")
            replies.readline()
            times.append(time.perf_counter() - started)
            time.sleep(0.05)
        sock.sendall(b"QUIT\r\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--lines", type=int, default=30_000, help="lines per client")
    parser.add_argument("--length", type=int, default=4096, help="bytes per line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tuimail-flood-") as work:
        home = Path(work)
        process, port = start_server(home)
        try:
            time.sleep(0.5)  # let start-up settle before the first figure
            before = status_kb(process.pid, "VmRSS")
            stop = threading.Event()
            times: list[float] = []
            noops = threading.Thread(target=noop_times, args=(port, stop, times), daemon=True)
            noops.start()
            started = time.perf_counter()
            clients = [
                threading.Thread(target=flood, args=(port, args.lines, args.length), daemon=True)
                for _ in range(args.clients)
            ]
            for client in clients:
                client.start()
            for client in clients:
                client.join(600)
            elapsed = time.perf_counter() - started
            stop.set()
            noops.join(60)
            time.sleep(2.0)  # let session files be written and memory be returned
            peak = status_kb(process.pid, "VmHWM")
            after = status_kb(process.pid, "VmRSS")
        finally:
            process.terminate()
            process.communicate(timeout=30)
        sessions = home / "data" / "tuimail" / "sandbox" / "sessions"
        files = list(sessions.glob("*.json"))
        disk = sum(path.stat().st_size for path in files)
    sent_mb = args.clients * args.lines * args.length / 1e6
    print(
        f"flood: {args.clients} clients x {args.lines:,} lines of {args.length:,} bytes "
        f"({sent_mb:,.0f} MB) in {elapsed:.1f}s"
    )
    print(
        f"RSS before {before / 1024:.1f} MB, peak {peak / 1024:.1f} MB, after {after / 1024:.1f} MB"
    )
    print(f"session files: {len(files)}, {disk / 1e6:.2f} MB")
    if times:
        print(f"NOOP during the flood: {len(times)} answered, slowest {max(times) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
