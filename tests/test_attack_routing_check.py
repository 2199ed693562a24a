"""``tuimail check`` on MX records that name no proper host: an alias (CNAME), an address.

Real processes and the unbound/nsd fixture (tests/dns_support.py). RFC 2181
section 10.3: an MX must name a host, not an alias; an MX whose name is an
IP address (``MX 10 192.0.2.1.``) names no host at all, and senders look it
up as a name and find nothing. A posture check says both, in words.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from tests.cli_helpers import run_tuimail
from tests.dns_support import DnsServer, started_dns
from tests.test_attack_check import HostileDns
from tests.test_ui_posture import dns_server as watch_dns
from tests.test_ui_posture import mx_cert, tlsa

__all__ = ["mx_cert", "tlsa", "watch_dns"]  # the fixtures, used by name


def _zones(server: DnsServer) -> None:
    server.add_zone("alias.test", ["@ MX 10 alias", "alias CNAME mx", "mx A 127.0.0.2"])
    server.add_zone("literal.test", ["@ MX 10 mx", "@ MX 20 127.0.0.3.", "mx A 127.0.0.2"])
    # 10 MX hosts of 8 addresses each, none answering: 80 probes' and addresses' problems.
    server.add_zone(
        "wide.test",
        [f"@ MX {10 * n} mx{n}" for n in range(10)]
        + [f"mx{n} A 127.0.{20 + n}.{k}" for n in range(10) for k in range(1, 9)],
    )


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    server = started_dns(tmp_path_factory.mktemp("dns"), _zones)
    yield server
    server.stop()


def check(dns_server: DnsServer, domain: str) -> dict[str, Any]:
    done = run_tuimail(
        "check", domain, "--dns-server", dns_server.server, "--mx-port", "1", "--timeout", "2",
        "--json", timeout=120,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return {item["name"]: item for item in report["items"]}


def test_an_mx_that_is_an_alias_is_a_warning(dns_server: DnsServer) -> None:
    items = check(dns_server, "alias.test")
    mx = items["mx"]
    assert mx["status"] in ("WARNING", "CRITICAL"), mx
    assert any(
        "the MX alias.alias.test is an alias (CNAME) of mx.alias.test" in problem
        for problem in mx["problems"]
    ), mx["problems"]


def test_an_mx_that_is_an_ip_address_is_critical_and_not_looked_up(
    dns_server: DnsServer,
) -> None:
    items = check(dns_server, "literal.test")
    mx = items["mx"]
    assert mx["status"] == "CRITICAL", mx
    assert any(
        "the MX 127.0.0.3 is an IP address, not a host name" in problem
        for problem in mx["problems"]
    ), mx["problems"]
    # It names no host: no TLSA lookup at _25._tcp.127.0.0.3 makes DANE fail.
    assert items["dane"]["status"] == "OK", items["dane"]
    assert "127.0.0.3" not in items["dane"]["details"]["tlsa"]


#: Nagios Core keeps 8 KiB of a plugin's output (MAX_PLUGIN_OUTPUT_LENGTH): past
#: that the line is cut, and the perfdata after "|" is lost with it.
NAGIOS_OUTPUT_LIMIT = 8192


def test_the_nagios_line_of_a_domain_with_many_problems_keeps_its_perfdata(
    dns_server: DnsServer,
) -> None:
    done = run_tuimail(
        "check", "wide.test", "--dns-server", dns_server.server, "--mx-port", "1",
        "--timeout", "2", "--nagios", timeout=180,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    line = done.stdout
    assert line.count("\n") == 1 and line.endswith("\n")
    assert len(line.encode()) <= NAGIOS_OUTPUT_LIMIT, len(line.encode())
    assert line.startswith(
        "MAILDOMAIN CRITICAL - wide.test: smtp mx0.wide.test [127.0.20."
    )  # worst first
    text, _, perf = line.strip().partition(" | ")
    assert dict(p.split("=", 1) for p in perf.split())["mx"] == "10;;;0"
    # What was left out is said, with where to read it all.
    assert "more problems: tuimail check wide.test shows them all" in text


def test_dane_of_an_mx_that_cannot_be_reached_is_unknown_not_a_mismatch(
    dns_server: DnsServer, watch_dns: DnsServer
) -> None:
    # watch.test (tests/test_ui_posture.py): signed, with a TLSA record for its MX.
    # Nobody listens on the MX port: the probe says unreachable; DANE cannot be
    # compared, which is not "presented no certificate".
    done = run_tuimail(
        "check", "watch.test", "--dns-server", watch_dns.server, "--mx-port", "1",
        "--timeout", "2", "--json", timeout=120,
    )  # fmt: skip
    items = {item["name"]: item for item in json.loads(done.stdout)["items"]}
    dane = items["dane"]
    assert dane["status"] == "UNKNOWN", dane
    assert not any("presented no certificate" in p for p in dane["problems"]), dane
    assert any("could not be reached" in p for p in dane["problems"]), dane


class SlowHostDns(HostileDns):
    """Answers the MX of slow.test at once and never the addresses of its MX host."""

    def answer(self, data: bytes) -> bytes | None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        if question.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            return None
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.RA
        if question.rdtype == dns.rdatatype.MX and question.name.to_text() == "slow.test.":
            reply.answer.append(
                dns.rrset.from_text(question.name, 300, "IN", "MX", "10 mx.slow.test.")
            )
        else:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        wire: bytes = reply.to_wire()
        return wire


def _started(kind: type[HostileDns]) -> HostileDns:
    """The server on a port free for UDP and TCP: the UDP port it draws may be taken for TCP."""
    for _ in range(20):
        try:
            return kind("slow")
        except OSError:
            continue
    raise RuntimeError("no port free for both UDP and TCP")


def test_an_mx_whose_address_lookup_times_out_is_unknown_not_critical() -> None:
    server = _started(SlowHostDns)
    try:
        done = run_tuimail(
            "check", "slow.test", "--dns-server", f"127.0.0.1:{server.port}", "--mx-port", "1",
            "--timeout", "2", "--json", timeout=120,
        )  # fmt: skip
    finally:
        server.stop()
    items = {item["name"]: item for item in json.loads(done.stdout)["items"]}
    mx = items["mx"]
    # No answer in time says nothing about the zone: the check could not tell.
    assert mx["status"] == "UNKNOWN", mx
    assert any("no DNS answer for mx.slow.test A in time" in p for p in mx["problems"]), mx


def test_a_dns_server_that_refuses_is_said_and_unknown_not_servfail(
    dns_server: DnsServer,
) -> None:
    # nsd answers only for its own zones: a resolver that will not serve us says
    # REFUSED, which tells nothing about the domain (not SERVFAIL, not CRITICAL).
    refusing = f"127.0.0.1:{dns_server.nsd_port}"
    done = run_tuimail(
        "check", "elsewhere.example", "--dns-server", refusing, "--mx-port", "1",
        "--timeout", "2", "--json", timeout=120,
    )  # fmt: skip
    report = json.loads(done.stdout)
    items = {item["name"]: item for item in report["items"]}
    assert items["mx"]["status"] == "UNKNOWN", items["mx"]
    assert "SERVFAIL" not in done.stdout
    assert (
        "the DNS server refused the lookup of elsewhere.example MX (REFUSED)"
        in (items["mx"]["problems"][0])
    )
    assert report["status"] == "UNKNOWN" and done.returncode == 3, report
    sent = run_tuimail(
        "send", "--direct", "--dns-server", refusing, "--mx-port", "1", "--ehlo",
        "client.example.test", "--from", "a@example.test", "--to", "b@elsewhere.example",
        "--subject", "s", "--body", "b", timeout=120,
    )  # fmt: skip
    assert sent.returncode == 75, sent.stdout + sent.stderr  # queued: another try may work
    assert "refused the lookup of elsewhere.example MX (REFUSED)" in sent.stderr
