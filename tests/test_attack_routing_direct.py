"""``tuimail send --direct`` when one MX host's own DNS is broken: the next MX is tried.

Real processes and the unbound/nsd fixture (tests/dns_support.py). The
zone is signed and the best MX host's A record is changed after signing,
so unbound answers SERVFAIL for that name only: an MTA (Postfix's
smtp_addr.c, RFC 5321 section 5.1) goes on to the next MX host rather than
deferring the whole domain, and so must tuimail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dns_support import DnsServer, started_dns
from tests.smtpservers import ServerThread, Sink
from tests.test_direct_mx import EHLO, free_mx_port, listen, send_direct
from tuimail.cli import exitcodes


def _zones(server: DnsServer) -> None:
    server.add_zone(
        "halfbroken.test",
        ["@ MX 10 mx1", "@ MX 20 mx2", "mx1 A 1.2.3.4", "mx2 A 127.0.0.3"],
        signed=True,
        bogus="mx1 A",
    )
    server.add_zone("allbroken.test", ["@ MX 10 mx1", "mx1 A 1.2.3.4"], signed=True, bogus="mx1 A")


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    server = started_dns(tmp_path_factory.mktemp("dns"), _zones)
    yield server
    server.stop()


def test_an_mx_host_whose_address_lookup_fails_is_skipped(
    dns_server: DnsServer, servers: ServerThread
) -> None:
    port = free_mx_port()
    second = Sink()
    listen(servers, "127.0.0.3", port, second)
    done = send_direct(dns_server, port, "bob@halfbroken.test", "--ehlo", EHLO)
    out = done.stdout + done.stderr
    assert done.returncode == exitcodes.OK, out[-3000:]
    assert len(second.messages) == 1
    assert "mx1.halfbroken.test" in done.stdout and "SERVFAIL" in done.stdout
    assert "direct: halfbroken.test done through mx2.halfbroken.test" in done.stdout


def test_no_mx_host_with_an_address_queues_with_the_reason(
    dns_server: DnsServer, servers: ServerThread
) -> None:
    port = free_mx_port()
    done = send_direct(dns_server, port, "bob@allbroken.test", "--ehlo", EHLO)
    out = done.stdout + done.stderr
    assert done.returncode == exitcodes.QUEUED, out[-3000:]
    assert "the DNS lookup of mx1.allbroken.test A failed (SERVFAIL)" in out


#: EHLO names no MX takes as a host name (Postfix's reject_invalid_helo_hostname):
#: a bare IPv4 address (an address goes in brackets, and MX servers refuse those
#: too), an empty label, a space, a label starting with a hyphen.
BAD_EHLO = ["127.0.0.1", "a..b.example.org", "mail server.example.org", "-mx.example.org"]


@pytest.mark.parametrize("name", BAD_EHLO)
def test_an_ehlo_name_that_is_no_host_name_is_refused_in_words(
    dns_server: DnsServer, servers: ServerThread, name: str
) -> None:
    port = free_mx_port()
    sink = Sink()
    listen(servers, "127.0.0.3", port, sink)
    done = send_direct(dns_server, port, "bob@halfbroken.test", f"--ehlo={name}")
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == exitcodes.USAGE, done.stdout + done.stderr
    assert f"--ehlo: the EHLO name {name!r} is not a fully qualified domain name" in done.stderr
    assert sink.messages == []


def test_an_address_literal_recipient_is_delivered_to_that_address(
    dns_server: DnsServer, servers: ServerThread
) -> None:
    # RFC 5321 section 5.1: a domain literal is the address to deliver to, with no
    # MX lookup (and no MTA-STS or DANE, which need a domain name).
    port = free_mx_port()
    sink = Sink()
    listen(servers, "127.0.0.3", port, sink)
    done = send_direct(dns_server, port, "bob@[127.0.0.3]", "--ehlo", EHLO)
    assert done.returncode == exitcodes.OK, (done.stdout + done.stderr)[-3000:]
    assert len(sink.messages) == 1
    assert "[127.0.0.3] is an address literal" in done.stdout


@pytest.mark.parametrize("literal", ["[127.0.0.300]", "[IPv6:127.0.0.3]", "[::1]"])
def test_a_malformed_address_literal_is_a_permanent_failure(
    dns_server: DnsServer, literal: str
) -> None:
    done = send_direct(dns_server, free_mx_port(), f"bob@{literal}", "--ehlo", EHLO)
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output[-3000:]
    # Refused for good, in words (the address check refuses it before routing
    # would): never queued to be retried for days.
    assert done.returncode == exitcodes.INVALID_MESSAGE, output[-3000:]
    assert "is not a valid" in done.stderr, output[-3000:]
