"""``tuimail send --direct`` under DANE: TLSA records in DNSSEC-signed zones, real MX servers.

The zones are served by nsd and validated by unbound (tests/dns_support.py),
so a TLSA answer is trusted only because unbound set the AD bit. Each MX is
an aiosmtpd listener on its own loopback address with a certificate from the
tests' CA (trustme); no ``--ca-file`` is given, since DANE does not use the
CA system: the TLSA records alone say which certificate is right.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import trustme

from tests.cli_helpers import run_tuimail
from tests.conftest import Certs
from tests.dns_support import DnsServer, free_port, serve_policies, started_dns
from tests.smtpservers import ServerThread, Sink
from tests.test_direct_mx import EHLO, listen
from tuimail import dane
from tuimail.cli import exitcodes

EE, BAD, BAD2, TA, BOGUS, PLAIN, BOTH, POLICY = (f"127.0.0.{n}" for n in range(7, 15))
#: An enforce policy naming another MX: DANE, not this, decides mx.both.dane.test.
BOTH_POLICY = "version: STSv1\nmode: enforce\nmx: other.both.dane.test\nmax_age: 86400\n"


@dataclass
class Mx:
    """The MX servers' certificates and the TLSA records published for them."""

    ee: trustme.LeafCert
    bad: trustme.LeafCert
    bad2: trustme.LeafCert
    ta: trustme.LeafCert
    bogus: trustme.LeafCert
    plain: trustme.LeafCert
    both: trustme.LeafCert
    dns: DnsServer


def _der(leaf: trustme.LeafCert, index: int = 0) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[index].bytes().decode())


def _tlsa(record: dane.TLSARecord) -> str:
    return f"TLSA {record.text(short=False)}"


def _context(leaf: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return context


@pytest.fixture(scope="module")
def mx(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[Mx]:
    ca = certs.ca
    ee = ca.issue_cert("mx.ee.dane.test")
    bad = ca.issue_cert("mx.bad.dane.test")
    bad2 = ca.issue_cert("mx2.bad.dane.test")
    ta = ca.create_child_ca().issue_cert("mx.ta.dane.test")
    bogus = ca.issue_cert("mx.bogus.test")
    plain = ca.issue_cert("mx.plain.test")
    both = ca.issue_cert("mx.both.dane.test")
    someone_else = ca.issue_cert("mx.bad.dane.test")
    ee_record = dane.record_for(_der(ee))
    ta_record = dane.record_for(_der(ta, 1), dane.DANE_TA, dane.CERT, dane.SHA256)

    def zones(server: DnsServer) -> None:
        server.add_zone(
            "dane.test",
            [
                "ee MX 10 mx.ee",
                f"mx.ee A {EE}",
                f"_25._tcp.mx.ee {_tlsa(ee_record)}",
                # A PKIX-TA record alongside: unusable in SMTP, never shown as usable.
                f"_25._tcp.mx.ee {_tlsa(dane.record_for(_der(ee), dane.PKIX_TA))}",
                "bad MX 10 mx.bad",
                "bad MX 20 mx2.bad",
                f"mx.bad A {BAD}",
                f"mx2.bad A {BAD2}",
                f"_25._tcp.mx.bad {_tlsa(dane.record_for(_der(someone_else)))}",
                f"_25._tcp.mx2.bad {_tlsa(dane.record_for(_der(bad2), mtype=dane.SHA512))}",
                "ta MX 10 mx.ta",
                f"mx.ta A {TA}",
                f"_25._tcp.mx.ta {_tlsa(ta_record)}",
                "both MX 10 mx.both",
                f"mx.both A {BOTH}",
                f"_25._tcp.mx.both {_tlsa(dane.record_for(_der(both)))}",
                '_mta-sts.both TXT "v=STSv1; id=1"',
                f"mta-sts.both A {POLICY}",
            ],
            signed=True,
        )
        server.add_zone(
            "bogus.test",
            [
                "@ MX 10 mx",
                f"mx A {BOGUS}",
                f"_25._tcp.mx {_tlsa(dane.record_for(_der(bogus)))}",
            ],
            signed=True,
            bogus="_25._tcp.mx TLSA",
        )
        server.add_zone(
            "plain.test",
            [
                "@ MX 10 mx",
                f"mx A {PLAIN}",
                # Not signed: a TLSA record nobody can trust, naming another key.
                f"_25._tcp.mx {_tlsa(dane.record_for(_der(someone_else)))}",
            ],
        )

    server = started_dns(tmp_path_factory.mktemp("dns"), zones)
    yield Mx(ee, bad, bad2, ta, bogus, plain, both, server)
    server.stop()


@pytest.fixture
def mx_port() -> int:
    """A port free on every address these tests listen on."""
    for _ in range(20):
        with socket.socket() as probe:
            probe.bind((EE, 0))
            port = int(probe.getsockname()[1])
        if all(_free(address, port) for address in (BAD, BAD2, TA, BOGUS, PLAIN, BOTH)):
            return port
    raise RuntimeError("no port free on the test addresses")


def _free(address: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def send(mx: Mx, port: int, to: str, *extra: str) -> Any:
    return run_tuimail(
        "send", "--direct", "--dns-server", mx.dns.server, "--mx-port", str(port),
        "--ehlo", EHLO, "--from", "alice@example.test", "--to", to,
        "--subject", "Hello", "--body", "Hi", *extra, timeout=60,
    )  # fmt: skip


def test_dane_ee_match_delivers_over_checked_tls(
    mx: Mx, servers: ServerThread, mx_port: int
) -> None:
    sink = Sink()
    listen(servers, EE, mx_port, sink, tls_context=_context(mx.ee))
    done = send(mx, mx_port, "bob@ee.dane.test")
    out = done.stdout
    assert done.returncode == exitcodes.OK, out + done.stderr
    assert len(sink.messages) == 1
    record = dane.record_for(_der(mx.ee))
    assert (
        f"=== DANE for mx.ee.dane.test: 1 usable TLSA record ({record.text()}), TLS required"
        in (out)
    )
    assert f"=== DANE: the server's certificate matches TLSA {record.text()} (DANE-EE" in out
    assert "opportunistic TLS:" not in out and "NOT VERIFIED" not in out
    # The TLS summary precedes the verdict, and nothing went over TLS before it.
    assert out.index("TLS established") < out.index("=== DANE: the server's certificate")


def test_dane_ee_mismatch_refuses_that_mx_then_the_next_then_queues(
    mx: Mx, servers: ServerThread, mx_port: int
) -> None:
    refused, second = Sink(), Sink()
    listen(servers, BAD, mx_port, refused, tls_context=_context(mx.bad))
    done = send(mx, mx_port, "carol@bad.dane.test")
    out = done.stdout
    # mx2 is down: nothing went to the refused MX, nothing in plain text; queued for later.
    assert done.returncode == exitcodes.QUEUED, out + done.stderr
    assert refused.messages == []
    assert "*** DANE: no TLSA record (3 1 1 " in out
    assert "tuimail refused the certificate of mx.bad.dane.test (DANE)" in out
    assert "=== direct: mx.bad.dane.test [127.0.0.8] failed for now (DANE refused" in out
    assert "MAIL FROM" not in out
    # The retry keeps the MX order: mx.bad first (refused again), then mx2, which matches.
    listen(servers, BAD2, mx_port, second, tls_context=_context(mx.bad2))
    flushed = run_tuimail("outbox", "flush", "--all", "--verbose", timeout=60)
    text = flushed.stdout + flushed.stderr
    assert [m.rcpt_tos for m in second.messages] == [["carol@bad.dane.test"]], text
    assert refused.messages == []
    assert text.index("trying mx.bad.dane.test") < text.index("trying mx2.bad.dane.test")
    assert "DANE for mx2.bad.dane.test: 1 usable TLSA record (3 1 2 " in text


def test_dane_ta_match_checks_the_chain_and_the_name(
    mx: Mx, servers: ServerThread, mx_port: int
) -> None:
    sink = Sink()
    listen(servers, TA, mx_port, sink, tls_context=_context(mx.ta))
    done = send(mx, mx_port, "dave@ta.dane.test")
    out = done.stdout
    assert done.returncode == exitcodes.OK, out + done.stderr
    assert len(sink.messages) == 1
    assert "=== DANE for mx.ta.dane.test: 1 usable TLSA record (2 0 1 " in out
    assert "=== DANE: certificate 2 of the chain matches TLSA 2 0 1 " in out
    assert "and the certificate names mx.ta.dane.test" in out


def test_dane_ta_with_a_certificate_for_another_name_is_refused(
    mx: Mx, servers: ServerThread, mx_port: int, certs: Certs
) -> None:
    # Same issuer (the TLSA's anchor), but a certificate for another host.
    sink = Sink()
    listen(servers, TA, mx_port, sink, tls_context=_context(mx.ee))
    done = send(mx, mx_port, "dave@ta.dane.test")
    assert done.returncode == exitcodes.QUEUED, done.stdout + done.stderr
    assert sink.messages == []
    assert "*** DANE: no TLSA record (2 0 1 " in done.stdout


def test_bogus_tlsa_is_a_failure_not_no_dane(mx: Mx, servers: ServerThread, mx_port: int) -> None:
    sink = Sink()
    listen(servers, BOGUS, mx_port, sink, tls_context=_context(mx.bogus))
    done = send(mx, mx_port, "erin@bogus.test")
    out = done.stdout
    assert done.returncode == exitcodes.QUEUED, out + done.stderr
    assert sink.messages == []
    assert "*** DANE: the TLSA lookup for _25._tcp.mx.bogus.test failed (SERVFAIL" in out
    assert "mx.bogus.test is not used" in out
    assert "no MX host of bogus.test could be used safely" in out + done.stderr


def test_tlsa_in_an_unsigned_zone_is_ignored(mx: Mx, servers: ServerThread, mx_port: int) -> None:
    sink = Sink()
    listen(servers, PLAIN, mx_port, sink, tls_context=_context(mx.plain))
    done = send(mx, mx_port, "frank@plain.test")
    out = done.stdout
    assert done.returncode == exitcodes.OK, out + done.stderr
    assert len(sink.messages) == 1
    assert "DANE: not looked up for mx.plain.test: its MX records are not DNSSEC-validated" in out
    assert "=== opportunistic TLS: STARTTLS with mx.plain.test, certificate not verified" in out


def test_the_fixture_signs_what_dane_trusts(mx: Mx) -> None:
    import dns.flags
    import dns.rcode

    signed = mx.dns.query("_25._tcp.mx.ee.dane.test", "TLSA")
    assert signed.flags & dns.flags.AD and signed.answer
    unsigned = mx.dns.query("_25._tcp.mx.plain.test", "TLSA")
    assert not unsigned.flags & dns.flags.AD and unsigned.answer
    assert mx.dns.query("_25._tcp.mx.bogus.test", "TLSA").rcode() == dns.rcode.SERVFAIL


def test_dane_beats_mta_sts(mx: Mx, servers: ServerThread, mx_port: int, certs: Certs) -> None:
    # The enforce policy names another host; the MX's TLSA records decide instead.
    policy_port = free_port()
    policy_context = _context(certs.ca.issue_cert("mta-sts.both.dane.test"))
    policies = {"mta-sts.both.dane.test": BOTH_POLICY}
    server = serve_policies(servers.loop, POLICY, policy_port, policies, policy_context)
    servers._servers.append(server)
    sink = Sink()
    listen(servers, BOTH, mx_port, sink, tls_context=_context(mx.both))
    done = send(
        mx, mx_port, "gina@both.dane.test",
        "--mta-sts-port", str(policy_port), "--ca-file", str(certs.ca_file),
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == exitcodes.OK, out + done.stderr
    assert len(sink.messages) == 1
    assert "=== MTA-STS enforce for both.dane.test (id 1)" in out
    assert "=== DANE: mx.both.dane.test is checked by DANE, not by the MTA-STS policy" in out
    assert "=== DANE: the server's certificate matches TLSA 3 1 1 " in out
    assert "does not match the policy's mx" not in out
