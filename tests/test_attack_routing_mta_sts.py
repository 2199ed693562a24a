"""Hostile MTA-STS policy servers against ``tuimail send --direct`` and ``tuimail check``.

Real processes, the unbound/nsd fixture (tests/dns_support.py) for the
``_mta-sts`` record, and an HTTPS server on 127.0.0.8 (a certificate from
the tests' CA) that answers each test's raw bytes: a policy that cannot be
used is no policy (RFC 8461 section 5: deliver as without one), said in
words, never a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Iterator

import pytest

from tests.cli_helpers import run_tuimail
from tests.conftest import Certs
from tests.dns_support import DnsServer, free_port, started_dns
from tests.smtpservers import ServerThread, Sink
from tests.test_direct_mx import EHLO, free_mx_port, listen
from tuimail.cli import exitcodes

POLICY_ADDRESS = "127.0.0.8"
MX_ADDRESS = "127.0.0.7"


def _zones(server: DnsServer) -> None:
    server.add_zone(
        "hostile-sts.test",
        [
            "@ MX 10 mx",
            f"mx A {MX_ADDRESS}",
            '_mta-sts TXT "v=STSv1; id=1"',
            f"mta-sts A {POLICY_ADDRESS}",
        ],
    )
    # A policy host with 12 addresses, none of which finishes a TLS handshake.
    server.add_zone(
        "many-policy.test",
        ["@ MX 10 mx", f"mx A {MX_ADDRESS}", '_mta-sts TXT "v=STSv1; id=1"']
        + [f"mta-sts A 127.0.3.{n}" for n in range(1, 13)],
    )
    # RFC 8461 section 3.1: records not beginning with "v=STSv1;" are discarded.
    server.add_zone(
        "other-version.test",
        ["@ MX 10 mx", f"mx A {MX_ADDRESS}", '_mta-sts TXT "v=STSv10; id=5"'],
    )


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    server = started_dns(tmp_path_factory.mktemp("dns"), _zones)
    yield server
    server.stop()


def _answer(body: str) -> bytes:
    data = body.encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(data)}\r\n"
    return (head + "Connection: close\r\n\r\n").encode() + data


def serve_raw(servers: ServerThread, certs: Certs, answer: bytes) -> int:
    """An HTTPS server on 127.0.0.8 that answers every request with ``answer``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certs.ca.issue_cert("mta-sts.hostile-sts.test").configure_cert(context)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()

    port = free_port()

    async def create() -> asyncio.Server:
        return await asyncio.start_server(handle, POLICY_ADDRESS, port, ssl=context)

    server = asyncio.run_coroutine_threadsafe(create(), servers.loop).result(5)
    servers._servers.append(server)
    return port


POLICY = "version: STSv1\nmode: enforce\nmx: mx.hostile-sts.test\nmax_age: {}\n"
#: max_age values that are no number RFC 8461 allows (1 to 10 ASCII digits), yet
#: that str.isdigit() takes: a superscript digit, and more digits than int() reads.
BAD_MAX_AGES = {"superscript": "\u00b2", "5000 digits": "9" * 5000}


@pytest.mark.parametrize("max_age", BAD_MAX_AGES.values(), ids=BAD_MAX_AGES.keys())
def test_send_direct_with_a_policy_whose_max_age_is_no_number(
    dns_server: DnsServer, servers: ServerThread, certs: Certs, max_age: str
) -> None:
    mx_port = free_mx_port()
    sink = Sink()
    listen(servers, MX_ADDRESS, mx_port, sink)
    policy_port = serve_raw(servers, certs, _answer(POLICY.format(max_age)))
    done = run_tuimail(
        "send", "--direct", "--dns-server", dns_server.server, "--mx-port", str(mx_port),
        "--mta-sts-port", str(policy_port), "--ca-file", str(certs.ca_file), "--ehlo", EHLO,
        "--from", "alice@example.test", "--to", "bob@hostile-sts.test",
        "--subject", "Hello", "--body", "Hi", timeout=60,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output[-3000:]
    # No usable policy: delivered as without one, opportunistically, and the reason said.
    assert done.returncode == exitcodes.OK, output[-3000:]
    assert len(sink.messages) == 1
    assert "max_age" in done.stdout and "is not a number of seconds" in done.stdout
    assert "no MTA-STS policy for hostile-sts.test" in done.stdout


@pytest.mark.parametrize("max_age", BAD_MAX_AGES.values(), ids=BAD_MAX_AGES.keys())
def test_check_with_a_policy_whose_max_age_is_no_number(
    dns_server: DnsServer, servers: ServerThread, certs: Certs, max_age: str
) -> None:
    mx_port = free_mx_port()
    listen(servers, MX_ADDRESS, mx_port, Sink())
    policy_port = serve_raw(servers, certs, _answer(POLICY.format(max_age)))
    done = run_tuimail(
        "check", "hostile-sts.test", "--dns-server", dns_server.server, "--mx-port", str(mx_port),
        "--mta-sts-port", str(policy_port), "--ca-file", str(certs.ca_file), "--ehlo", EHLO,
        "--nagios", timeout=60,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output[-3000:]
    assert done.returncode == 2, output[-3000:]  # CRITICAL: the policy cannot be used
    assert done.stdout.startswith("MAILDOMAIN CRITICAL - "), output
    assert "mta-sts CRITICAL: the policy's max_age" in done.stdout


GOOD = POLICY.format(86400)
#: Answers no sender may take a policy from, and the words that say why.
BROKEN_ANSWERS = {
    "redirect": (
        b"HTTP/1.1 301 Moved\r\nLocation: https://elsewhere.test/\r\nContent-Length: 0\r\n\r\n",
        "not 200",
    ),
    "not found": (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "not 200"),
    "html": (_answer(GOOD).replace(b"text/plain", b"text/html"), "not served as text/plain"),
    "megabytes": (_answer(GOOD + "x" * 3_000_000), "larger than 64 KiB"),
    "not http": (b"SSH-2.0-OpenSSH\r\n", "not HTTP"),
}


@pytest.mark.parametrize("answer,words", BROKEN_ANSWERS.values(), ids=BROKEN_ANSWERS.keys())
def test_check_refuses_a_policy_from_a_broken_answer(
    dns_server: DnsServer, servers: ServerThread, certs: Certs, answer: bytes, words: str
) -> None:
    mx_port = free_mx_port()
    listen(servers, MX_ADDRESS, mx_port, Sink())
    policy_port = serve_raw(servers, certs, answer)
    done = run_tuimail(
        "check", "hostile-sts.test", "--dns-server", dns_server.server, "--mx-port", str(mx_port),
        "--mta-sts-port", str(policy_port), "--ca-file", str(certs.ca_file), "--ehlo", EHLO,
        "--json", timeout=60,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    import json

    items = {item["name"]: item for item in json.loads(done.stdout)["items"]}
    sts = items["mta-sts"]
    assert sts["status"] == "CRITICAL", sts
    assert any(words in problem for problem in sts["problems"]), sts


def _check_sts(dns_server: DnsServer, policy_port: int, *extra: str) -> dict[str, object]:
    mx_port = free_mx_port()
    done = run_tuimail(
        "check", "hostile-sts.test", "--dns-server", dns_server.server, "--mx-port", str(mx_port),
        "--mta-sts-port", str(policy_port), "--json", *extra, timeout=60,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    import json

    items = {item["name"]: item for item in json.loads(done.stdout)["items"]}
    sts: dict[str, object] = items["mta-sts"]
    return sts


def test_check_refuses_a_policy_server_whose_certificate_is_not_trusted(
    dns_server: DnsServer, servers: ServerThread, certs: Certs
) -> None:
    policy_port = serve_raw(servers, certs, _answer(GOOD))
    sts = _check_sts(dns_server, policy_port)  # the tests' CA not trusted (no --ca-file)
    assert sts["status"] == "CRITICAL", sts
    assert "the certificate was refused" in str(sts["problems"]), sts


def test_check_gives_up_on_a_policy_server_that_trickles(
    dns_server: DnsServer, servers: ServerThread, certs: Certs
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certs.ca.issue_cert("mta-sts.hostile-sts.test").configure_cert(context)
    answer = _answer(GOOD)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            for byte in answer:  # a byte every 0.3 s: about a minute for the whole answer
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.3)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    port = free_port()

    async def create() -> asyncio.Server:
        return await asyncio.start_server(handle, POLICY_ADDRESS, port, ssl=context)

    server = asyncio.run_coroutine_threadsafe(create(), servers.loop).result(5)
    servers._servers.append(server)
    started = time.monotonic()
    sts = _check_sts(dns_server, port, "--ca-file", str(certs.ca_file), "--timeout", "2")
    assert time.monotonic() - started < 20
    assert sts["status"] == "CRITICAL", sts
    assert "no answer within 2 seconds" in str(sts["problems"]), sts


def test_escapes_in_a_policy_never_reach_the_terminal(
    dns_server: DnsServer, servers: ServerThread, certs: Certs
) -> None:
    mx_port = free_mx_port()
    sink = Sink()
    listen(servers, MX_ADDRESS, mx_port, sink)
    policy = (
        "version: STSv1\nmode: testing\nmx: \x1b]0;PWNED\x07\x1b[31m.test\u009b\nmax_age: 86400\n"
    )
    policy_port = serve_raw(servers, certs, _answer(policy))
    done = run_tuimail(
        "send", "--direct", "--dns-server", dns_server.server, "--mx-port", str(mx_port),
        "--mta-sts-port", str(policy_port), "--ca-file", str(certs.ca_file), "--ehlo", EHLO,
        "--from", "alice@example.test", "--to", "bob@hostile-sts.test",
        "--subject", "Hello", "--body", "Hi", timeout=60,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == exitcodes.OK, output[-3000:]
    assert "MTA-STS testing for hostile-sts.test" in done.stdout
    assert not any(c in output for c in ("\x1b", "\x07", "\x9b")), repr(output[-3000:])
    checked = run_tuimail(
        "check", "hostile-sts.test", "--dns-server", dns_server.server, "--mx-port", str(mx_port),
        "--mta-sts-port", str(policy_port), "--ca-file", str(certs.ca_file), timeout=60,
    )  # fmt: skip
    output = checked.stdout + checked.stderr
    assert "mode testing" in checked.stdout, output[-3000:]
    assert not any(c in output for c in ("\x1b", "\x07", "\x9b")), repr(output[-3000:])


def test_a_record_of_another_version_is_no_mta_sts_record(dns_server: DnsServer) -> None:
    done = run_tuimail(
        "check", "other-version.test", "--dns-server", dns_server.server, "--mx-port", "1",
        "--mta-sts-port", str(free_port()), "--timeout", "2", "--json", timeout=60,
    )  # fmt: skip
    import json

    items = {item["name"]: item for item in json.loads(done.stdout)["items"]}
    sts = items["mta-sts"]
    assert sts["status"] == "WARNING", sts
    assert sts["problems"] == ["no MTA-STS record: senders may deliver without verified TLS"]


def test_a_policy_host_with_many_silent_addresses_is_given_up_in_time(
    dns_server: DnsServer, servers: ServerThread
) -> None:
    port = free_port()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await reader.read()  # never a TLS handshake
        writer.close()

    async def create(address: str) -> asyncio.Server:
        return await asyncio.start_server(silent, address, port)

    for n in range(1, 13):
        made = asyncio.run_coroutine_threadsafe(create(f"127.0.3.{n}"), servers.loop).result(5)
        servers._servers.append(made)
    started = time.monotonic()
    done = run_tuimail(
        "check", "many-policy.test", "--dns-server", dns_server.server, "--mx-port", "1",
        "--mta-sts-port", str(port), "--timeout", "1", "--json", timeout=120,
    )  # fmt: skip
    spent = time.monotonic() - started
    import json

    sts = {item["name"]: item for item in json.loads(done.stdout)["items"]}["mta-sts"]
    # A few addresses are tried, each for the timeout, and the failure said: not
    # twelve of them until the check's own deadline cuts it off without a word.
    assert sts["status"] == "CRITICAL", sts
    assert "could not be fetched" in sts["problems"][0], sts
    assert "8 more addresses not tried" in sts["problems"][0], sts
    assert spent < 8, spent
