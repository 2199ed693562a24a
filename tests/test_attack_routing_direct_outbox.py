"""A direct message to two domains, its sender killed (-9) between them: no loss, no duplicate.

Real processes and the unbound/nsd fixture (tests/dns_support.py). The
first domain's MX takes the message at once; the second's accepts the
connection and says nothing, so the sender is still waiting there when it
is killed. The first domain has its copy: the outbox must know, so that
what it sends later goes to the second domain only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import TUIMAIL, run_tuimail
from tests.dns_support import DnsServer, started_dns
from tests.smtpservers import ServerThread, Sink
from tests.test_direct_mx import EHLO, free_mx_port, listen


def _zones(server: DnsServer) -> None:
    server.add_zone("first.test", ["@ MX 10 mx", "mx A 127.0.0.2"])
    server.add_zone("second.test", ["@ MX 10 mx", "mx A 127.0.0.3"])


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    server = started_dns(tmp_path_factory.mktemp("dns"), _zones)
    yield server
    server.stop()


def _silent(servers: ServerThread, address: str, port: int) -> tuple[asyncio.Server, list[int]]:
    """A server that accepts connections and never greets; counts them."""
    accepted: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await reader.read()  # until the sender is gone
        writer.close()

    async def create() -> asyncio.Server:
        return await asyncio.start_server(handle, address, port)

    server = asyncio.run_coroutine_threadsafe(create(), servers.loop).result(5)
    return server, accepted


def _wait_for(condition: object, seconds: float) -> None:
    ends = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < ends, "timed out"
        time.sleep(0.05)


def test_killed_between_two_domains_sends_only_to_the_second_later(
    dns_server: DnsServer, servers: ServerThread, isolated_dirs: Path
) -> None:
    port = free_mx_port()
    first = Sink()
    listen(servers, "127.0.0.2", port, first)
    silent, accepted = _silent(servers, "127.0.0.3", port)
    args = [
        "send", "--direct", "--dns-server", dns_server.server, "--mx-port", str(port),
        "--ehlo", EHLO, "--from", "alice@example.test",
        "--to", "bob@first.test", "--to", "carol@second.test", "--subject", "Hello", "--body", "Hi",
    ]  # fmt: skip
    sender = subprocess.Popen(
        [TUIMAIL, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait_for(lambda: len(first.messages) == 1 and accepted, 30)
        os.kill(sender.pid, signal.SIGKILL)
    finally:
        sender.wait(10)
        if sender.stdout:
            sender.stdout.close()
        if sender.stderr:
            sender.stderr.close()
    # On disk: the first domain has it; the message is queued for the second only.
    listed = run_tuimail("outbox", "list", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert entry["state"] == "queued", entry
    assert entry["recipients"] == ["carol@second.test"], entry
    assert entry["delivered_to"] == ["bob@first.test"], entry
    # The second domain's MX works now; the retry goes to it alone.
    asyncio.run_coroutine_threadsafe(_close(silent), servers.loop).result(5)
    second = Sink()
    listen(servers, "127.0.0.3", port, second)
    flushed = run_tuimail("outbox", "flush", timeout=120)
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert len(first.messages) == 1, "the first domain got the message twice"
    assert len(second.messages) == 1
    assert run_tuimail("outbox", "list", "--json").stdout.strip() == "[]"


async def _close(server: asyncio.Server) -> None:
    server.close()
