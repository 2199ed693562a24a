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
characters (``tuimail/sandbox/record.py``), so its memory should stay far under
150 MB and return close to where it started.

Figures, then and now, are in docs/performance.md.

This script prints numbers; it never fails because of them. It exits
non-zero only when the server would not start.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import HOST, find_tuimail, isolated_dirs, status_kb


def start_server() -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [find_tuimail(), "serve", "--port", "0", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
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
    with socket.create_connection((HOST, port), timeout=120) as sock:
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
    with socket.create_connection((HOST, port), timeout=60) as sock:
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
    with isolated_dirs() as home:
        process, port = start_server()
        try:
            time.sleep(0.5)  # let start-up settle before the first figure
            before = status_kb("VmRSS", process.pid) or 0
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
            peak = status_kb("VmHWM", process.pid) or 0
            after = status_kb("VmRSS", process.pid) or 0
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
