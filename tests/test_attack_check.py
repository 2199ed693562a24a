"""Attacks on ``tuimail check DOMAIN`` (tuimail/posture/) from a hostile DNS server on
loopback: escapes in every TXT record, an SPF include loop, a server that never
answers, and an MX list of 1,000 hosts."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset
import pytest

from tests.cli_helpers import run_tuimail

ESCAPES = ("\x1b", "\x07", "\x9b")


class HostileDns:
    """UDP and TCP on one loopback port; ``mode`` picks the attack."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen()
        self.udp.settimeout(0.2)
        self.tcp.settimeout(0.2)
        self.stopped = False
        self.threads = [threading.Thread(target=self._udp), threading.Thread(target=self._tcp)]
        for thread in self.threads:
            thread.start()

    def answer(self, data: bytes) -> bytes | None:
        if self.mode == "silent":
            return None
        query = dns.message.from_wire(data)
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.RA
        question = query.question[0]
        name, text = question.name, question.name.to_text()

        def add(kind: str, *rdatas: str) -> None:
            reply.answer.append(dns.rrset.from_text(name, 300, "IN", kind, *rdatas))

        if question.rdtype == dns.rdatatype.TXT:
            if text.startswith("_dmarc."):
                add("TXT", '"v=DMARC1; p=none; rua=mailto:\\027]0;PWNED\\007@evil.test"')
            elif text.startswith("_mta-sts."):
                add("TXT", '"v=STSv1; id=\\027[2J"')
            elif text.startswith("_smtp._tls."):
                add("TXT", '"v=TLSRPTv1; rua=mailto:\\027[31mx@evil.test"')
            elif "_domainkey" in text:
                add("TXT", '"v=DKIM1; k=\\027[31m\\155\\194\\155rsa; p=AAAA"')
            elif self.mode == "loop":
                add("TXT", f'"v=spf1 include:{text.rstrip(".")} -all"')
            else:
                add("TXT", '"v=spf1 \\027]0;PWNED\\007 include:\\027[31m.evil.test ~all"')
        elif question.rdtype == dns.rdatatype.MX and text == "evil.test.":
            if self.mode == "many":
                add("MX", *(f"{n} mx{n}.evil.test." for n in range(1000)))
            else:
                add("MX", "10 mx\\027[31m.evil.test.")
        elif question.rdtype == dns.rdatatype.A:
            add("A", "127.0.0.9")
        wire = reply.to_wire(max_size=65535)
        return wire

    def _udp(self) -> None:
        while not self.stopped:
            try:
                data, peer = self.udp.recvfrom(65535)
            except TimeoutError:
                continue
            wire = self.answer(data)
            if wire is None:
                continue
            if len(wire) > 512:
                truncated = dns.message.make_response(dns.message.from_wire(data))
                truncated.flags |= dns.flags.TC
                wire = truncated.to_wire()
            self.udp.sendto(wire, peer)

    def _tcp(self) -> None:
        while not self.stopped:
            try:
                connection, _ = self.tcp.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                try:
                    size = int.from_bytes(connection.recv(2), "big")
                    data = b""
                    while len(data) < size:
                        data += connection.recv(size - len(data))
                    wire = self.answer(data)
                    if wire is not None:
                        connection.sendall(len(wire).to_bytes(2, "big") + wire)
                except OSError:
                    continue

    def stop(self) -> None:
        self.stopped = True
        for thread in self.threads:
            thread.join(5)
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def hostile_dns(request: pytest.FixtureRequest) -> Iterator[HostileDns]:
    server = HostileDns(request.param)
    yield server
    server.stop()


def check(server: HostileDns, *args: str, timeout: float = 120) -> tuple[int, str, float]:
    started = time.monotonic()
    result = run_tuimail(
        "check", "evil.test", "--dns-server", f"127.0.0.1:{server.port}", "--timeout", "2",
        "--mx-port", "1", *args, timeout=timeout,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


@pytest.mark.parametrize("hostile_dns", ["escapes"], indirect=True)
@pytest.mark.parametrize("form", [[], ["--nagios"], ["--openmetrics"], ["--json"]])
def test_escapes_in_dns_never_reach_the_terminal(hostile_dns: HostileDns, form: list[str]) -> None:
    code, output, _ = check(hostile_dns, "--dkim-selector", "s1", *form)
    assert code == 2, output
    assert not any(escape in output for escape in ESCAPES), repr(output)


@pytest.mark.parametrize("hostile_dns", ["loop"], indirect=True)
def test_an_spf_include_loop_is_said(hostile_dns: HostileDns) -> None:
    _code, output, spent = check(hostile_dns)
    assert "loop" in output and spent < 30


@pytest.mark.parametrize("hostile_dns", ["silent"], indirect=True)
def test_a_dns_server_that_never_answers_is_unknown_in_time(hostile_dns: HostileDns) -> None:
    code, output, spent = check(hostile_dns)
    assert code == 3, output
    assert "no DNS answer" in output and spent < 30


@pytest.mark.parametrize("hostile_dns", ["many"], indirect=True)
def test_an_mx_list_of_1000_hosts_is_bounded(hostile_dns: HostileDns) -> None:
    _code, output, spent = check(hostile_dns, timeout=300)
    assert output.count("CRITICAL smtp mx") <= 50, output.count("CRITICAL smtp mx")
    assert spent < 30, spent
    # tuimail/posture/check.py MX_CHECK_LIMIT: the best 10 probed, the count in full.
    assert output.count("CRITICAL smtp mx") == 10, output
    assert "evil.test lists 1000 MX hosts; the best 10 were checked and 990 were not" in output
    assert "1000 MX hosts, 10 checked" in output
    _code, metrics, _spent = check(hostile_dns, "--openmetrics", timeout=300)
    assert 'tuimail_check_mx_hosts{domain="evil.test"} 1000' in metrics, metrics


@pytest.mark.parametrize("hostile_dns", ["many"], indirect=True)
def test_probe_mx_of_1000_hosts_probes_the_best_few_and_says_so(hostile_dns: HostileDns) -> None:
    """tuimail/mx.py MX_HOSTS_EXAMINED bounds ``probe --mx`` as it bounds the check."""
    started = time.monotonic()
    result = run_tuimail(
        "probe", "--mx", "evil.test", "--dns-server", f"127.0.0.1:{hostile_dns.port}",
        "--timeout", "2", "--mx-port", "1", "--no-history", "--json", timeout=300,
    )  # fmt: skip
    spent = time.monotonic() - started
    assert "evil.test lists 1000 MX hosts; the best 10 are probed and 990 are not" in result.stderr
    assert result.stdout.count('"host"') <= 20, result.stdout[:2000]
    assert spent < 60, spent
