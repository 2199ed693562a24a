"""The test DNS itself: unbound answers the zones, and sets AD only for what it validated."""

from __future__ import annotations

from collections.abc import Iterator

import dns.flags
import dns.rcode
import pytest

from tests.dns_support import DnsServer, started_dns


def _zones(server: DnsServer) -> None:
    server.add_zone(
        "plain.test",
        [
            "@ MX 10 mx1",
            '@ TXT "v=spf1 ip4:127.0.0.2 -all"',
            '_dmarc TXT "v=DMARC1; p=reject"',
            '_mta-sts TXT "v=STSv1; id=20260101"',
            '_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@plain.test"',
            "mx1 A 127.0.0.2",
            "mx1 AAAA ::1",
        ],
    )
    server.add_zone("2.0.0.127.in-addr.arpa", ["@ PTR mx1.plain.test."])
    tlsa = "_25._tcp.mx1 TLSA 3 1 1 " + "ab" * 32
    server.add_zone("signed.test", ["mx1 A 127.0.0.2", tlsa], signed=True)
    server.add_zone("bogus.test", ["mx1 A 127.0.0.3", tlsa], signed=True, bogus="_25._tcp.mx1 TLSA")
    server.add_zone("local.test", ["mx1 A 127.0.0.4", '@ TXT "v=spf1 -all"'], local=True)


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    server = started_dns(tmp_path_factory.mktemp("dns"), _zones)
    yield server
    server.stop()


def test_records_are_served(dns_server: DnsServer) -> None:
    def texts(name: str, rdtype: str) -> list[str]:
        answer = dns_server.query(name, rdtype, dnssec=False)
        assert answer.rcode() == dns.rcode.NOERROR, (name, rdtype)
        return sorted(rdata.to_text() for rrset in answer.answer for rdata in rrset)

    assert texts("plain.test", "MX") == ["10 mx1.plain.test."]
    assert texts("mx1.plain.test", "A") == ["127.0.0.2"]
    assert texts("mx1.plain.test", "AAAA") == ["::1"]
    assert texts("_mta-sts.plain.test", "TXT") == ['"v=STSv1; id=20260101"']
    assert texts("_dmarc.plain.test", "TXT") == ['"v=DMARC1; p=reject"']
    assert texts("_smtp._tls.plain.test", "TXT") == ['"v=TLSRPTv1; rua=mailto:tls@plain.test"']
    assert texts("2.0.0.127.in-addr.arpa", "PTR") == ["mx1.plain.test."]
    assert texts("local.test", "TXT") == ['"v=spf1 -all"']
    # Starting everything (keys, signing, two daemons) stays cheap.
    assert dns_server.start_seconds < 5, dns_server.start_seconds


def test_ad_only_for_validated_answers(dns_server: DnsServer) -> None:
    signed = dns_server.query("_25._tcp.mx1.signed.test", "TLSA")
    assert signed.rcode() == dns.rcode.NOERROR
    assert signed.flags & dns.flags.AD
    assert signed.answer
    for name in ("mx1.plain.test", "mx1.local.test"):
        unsigned = dns_server.query(name, "A")
        assert unsigned.answer, name
        assert not unsigned.flags & dns.flags.AD, name


def test_tampered_signed_record_is_servfail(dns_server: DnsServer) -> None:
    bogus = dns_server.query("_25._tcp.mx1.bogus.test", "TLSA")
    assert bogus.rcode() == dns.rcode.SERVFAIL
    # The zone's unchanged records still validate.
    good = dns_server.query("mx1.bogus.test", "A")
    assert good.flags & dns.flags.AD
