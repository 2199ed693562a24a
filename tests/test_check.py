"""``tuimail check DOMAIN``: a real process against real DNS, MX servers and an MTA-STS server.

The zones are served by nsd behind a validating unbound (tests/dns_support.py),
both signed, so the AD bit is unbound's own verdict; one TLSA record of
``bad.test`` is falsified after signing (bogus). The MX hosts are aiosmtpd
listeners on their own loopback addresses with certificates from the tests'
CA (one expired, one for the wrong name, one without STARTTLS); the MTA-STS
policies come from an HTTPS server on 127.0.0.6. Each test compares the
report, field by field, with what the zones and servers hold.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.cli_helpers import run_tuimail
from tests.conftest import Certs
from tests.dns_support import DnsServer, free_port, serve_policies, started_dns
from tests.smtpservers import ServerThread, Sink
from tests.test_direct_mx import listen

POLICY_ADDRESS = "127.0.0.6"
ADDRESSES = (
    "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8",
)  # fmt: skip

POLICIES = {
    "mta-sts.good.test": "version: STSv1\nmode: enforce\nmx: *.good.test\nmax_age: 604800\n",
    "mta-sts.bad.test": "version: STSv1\nmode: enforce\nmx: mx1.bad.test\nmax_age: 3600\n",
}


def _spki(cert: trustme.LeafCert) -> bytes:
    leaf = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())
    return leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _dkim_key(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    data = base64.b64encode(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
    text = data.decode()
    # A TXT string holds 255 bytes at most: the zone splits the key.
    return " ".join(f'"{text[i : i + 200]}"' for i in range(0, len(text), 200))


class Fixture:
    """The zones' facts the tests compare with, and the MX certificates."""

    def __init__(self, certs: Certs) -> None:
        now = datetime.datetime.now(datetime.UTC)
        ca = certs.ca
        self.leaf = {
            "mx1.good.test": ca.issue_cert("mx1.good.test"),
            "mx2.good.test": ca.issue_cert("mx2.good.test"),
            "mx1.bad.test": ca.issue_cert(
                "mx1.bad.test",
                not_before=now - datetime.timedelta(days=60),
                not_after=now - datetime.timedelta(days=2),
            ),
            "mx2.bad.test": ca.issue_cert("elsewhere.example"),
        }
        self.tlsa = {
            host: f"3 1 1 {hashlib.sha256(_spki(cert)).hexdigest()}"
            for host, cert in self.leaf.items()
        }
        anchor = x509.load_pem_x509_certificate(ca.cert_pem.bytes()).public_bytes(Encoding.DER)
        #: DANE-TA: the tests' CA, which the MX of ta.test sends with a certificate
        #: for another name.
        self.tlsa_ta = f"2 0 1 {hashlib.sha256(anchor).hexdigest()}"
        self.dkim_good = _dkim_key(2048)
        self.dkim_weak = _dkim_key(1024)

    def context(self, host: str) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.leaf[host].configure_cert(context)
        return context


@pytest.fixture(scope="module")
def zone_facts(certs: Certs) -> Fixture:
    return Fixture(certs)


@pytest.fixture(scope="module")
def dns_server(
    tmp_path_factory: pytest.TempPathFactory, zone_facts: Fixture
) -> Iterator[DnsServer]:
    facts = zone_facts

    def zones(server: DnsServer) -> None:
        server.add_zone(
            "good.test",
            [
                "@ MX 10 mx1",
                "@ MX 20 mx2",
                "mx1 A 127.0.0.2",
                "mx2 A 127.0.0.3",
                "out A 192.0.2.10",
                '@ TXT "v=spf1 mx a:out.good.test include:_spf.good.test -all"',
                '_spf TXT "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"',
                '_dmarc TXT "v=DMARC1; p=reject; sp=quarantine; pct=100; '
                'rua=mailto:dmarc@good.test; ruf=mailto:forensic@good.test"',
                '_mta-sts TXT "v=STSv1; id=2026good"',
                f"mta-sts A {POLICY_ADDRESS}",
                '_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tlsrpt@good.test"',
                f"_25._tcp.mx1 TLSA {facts.tlsa['mx1.good.test']}",
                f"_25._tcp.mx2 TLSA {facts.tlsa['mx2.good.test']}",
                f'sel1._domainkey TXT ( "v=DKIM1; k=rsa; p=" {facts.dkim_good} )',
            ],
            signed=True,
        )
        server.add_zone(
            "bad.test",
            [
                "@ MX 10 mx1",
                "@ MX 20 mx2",
                "@ MX 30 mx3",
                "@ MX 40 gone",
                "mx1 A 127.0.0.4",
                "mx2 A 127.0.0.5",
                "mx3 A 127.0.0.7",
                "more A 192.0.2.20",
                *(f"x{n} A 192.0.2.{n}" for n in range(1, 8)),
                '@ TXT "v=spf1 a:nothing.bad.test mx:nothing.bad.test exists:nothing.bad.test '
                'ptr include:more.bad.test +all"',
                'more TXT "v=spf1 a:x1.bad.test a:x2.bad.test a:x3.bad.test a:x4.bad.test '
                'a:x5.bad.test a:x6.bad.test a:x7.bad.test ~all"',
                '_dmarc TXT "v=DMARC1; p=none; pct=50"',
                '_mta-sts TXT "v=STSv1; id=2026bad"',
                f"mta-sts A {POLICY_ADDRESS}",
                f"_25._tcp.mx1 TLSA {facts.tlsa['mx1.bad.test']}",
                "_25._tcp.mx2 TLSA 3 1 1 " + "00" * 32,
                f'weak._domainkey TXT ( "v=DKIM1; p=" {facts.dkim_weak} )',
                'revoked._domainkey TXT "v=DKIM1; k=rsa; p="',
            ],
            signed=True,
            bogus="_25._tcp.mx1 TLSA",
        )
        server.add_zone("nullmx.test", ["@ MX 0 .", '@ TXT "v=spf1 -all"'])
        server.add_zone(
            "ta.test",
            ["@ MX 10 mx", "mx A 127.0.0.8", f"_25._tcp.mx TLSA {facts.tlsa_ta}"],
            signed=True,
        )
        server.add_zone(
            "0.0.127.in-addr.arpa",
            [
                "2 PTR mx1.good.test.",
                "3 PTR mx2.good.test.",
                "4 PTR wrong.bad.test.",
                "7 PTR mx3.bad.test.",
            ],
        )

    server = started_dns(tmp_path_factory.mktemp("dns"), zones)
    yield server
    server.stop()


def _free_everywhere() -> int:
    """A port free on every test address (the MX hosts share it, as port 25 is shared)."""
    for _ in range(30):
        port = free_port()
        ok = True
        for address in ADDRESSES:
            with socket.socket() as probe:
                try:
                    probe.bind((address, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no port free on the test addresses")


@pytest.fixture
def ports(servers: ServerThread, certs: Certs, zone_facts: Fixture) -> tuple[int, int]:
    """The MX servers of both domains and the policy server: (MX port, policy port)."""
    mx_port, policy_port = _free_everywhere(), _free_everywhere()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certs.ca.issue_cert(*POLICIES).configure_cert(context)
    server = serve_policies(servers.loop, POLICY_ADDRESS, policy_port, POLICIES, context)
    servers._servers.append(server)
    for address, host in (
        ("127.0.0.2", "mx1.good.test"),
        ("127.0.0.3", "mx2.good.test"),
        ("127.0.0.4", "mx1.bad.test"),
        ("127.0.0.5", "mx2.bad.test"),
    ):
        listen(servers, address, mx_port, Sink(), tls_context=zone_facts.context(host))
    listen(servers, "127.0.0.7", mx_port, Sink())  # mx3.bad.test: no STARTTLS
    return mx_port, policy_port


def check(dns_server: DnsServer, certs: Certs, ports: tuple[int, int], *args: str) -> Any:
    mx_port, policy_port = ports
    return run_tuimail(
        "check", *args, "--dns-server", dns_server.server, "--mx-port", str(mx_port),
        "--mta-sts-port", str(policy_port), "--ca-file", str(certs.ca_file), "--timeout", "5",
        "--ehlo", "client.example.test",
    )  # fmt: skip


def _items(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in document["items"]}


def test_good_posture_field_by_field(
    dns_server: DnsServer, certs: Certs, ports: tuple[int, int], zone_facts: Fixture
) -> None:
    done = check(dns_server, certs, ports, "good.test", "--dkim-selector", "sel1", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "OK"
    items = _items(document)
    assert all(item["status"] == "OK" for item in items.values()), items
    assert list(items) == [
        "mx",
        "smtp mx1.good.test [127.0.0.2]",
        "smtp mx2.good.test [127.0.0.3]",
        "spf",
        "dmarc",
        "tls-rpt",
        "mta-sts",
        "dane",
        "dkim sel1",
    ]
    mx = items["mx"]["details"]
    assert mx["dnssec"] is True
    assert mx["hosts"] == [
        {"preference": 10, "host": "mx1.good.test",
         "addresses": [{"address": "127.0.0.2", "ptr": ["mx1.good.test"], "fcrdns": True}]},
        {"preference": 20, "host": "mx2.good.test",
         "addresses": [{"address": "127.0.0.3", "ptr": ["mx2.good.test"], "fcrdns": True}]},
    ]  # fmt: skip
    for host in ("mx1.good.test", "mx2.good.test"):
        address = "127.0.0.2" if host.startswith("mx1") else "127.0.0.3"
        smtp = items[f"smtp {host} [{address}]"]["details"]
        assert smtp["starttls"] is True
        assert smtp["tls_version"] == "TLSv1.3"
        assert smtp["certificate_trusted"] is True and smtp["name_matches"] is True
        assert smtp["certificate_days_left"] > 300
    spf = items["spf"]["details"]
    assert spf["record"] == "v=spf1 mx a:out.good.test include:_spf.good.test -all"
    assert (spf["lookups"], spf["void_lookups"]) == (3, 0)
    dmarc = items["dmarc"]["details"]
    assert (dmarc["policy"], dmarc["subdomain_policy"], dmarc["pct"]) == (
        "reject",
        "quarantine",
        100,
    )
    assert dmarc["rua"] == ["mailto:dmarc@good.test"]
    assert dmarc["ruf"] == ["mailto:forensic@good.test"]
    assert items["tls-rpt"]["details"]["rua"] == ["mailto:tlsrpt@good.test"]
    sts = items["mta-sts"]["details"]
    assert (sts["id"], sts["mode"], sts["mx"], sts["max_age"]) == (
        "2026good", "enforce", ["*.good.test"], 604800,
    )  # fmt: skip
    assert sts["matches"] == {"mx1.good.test": True, "mx2.good.test": True}
    dane = items["dane"]["details"]
    assert dane["tlsa"] == {
        "mx1.good.test": [zone_facts.tlsa["mx1.good.test"]],
        "mx2.good.test": [zone_facts.tlsa["mx2.good.test"]],
    }
    assert dane["dnssec"] == {"mx1.good.test": True, "mx2.good.test": True}
    assert dane["matches"] == {
        "mx1.good.test [127.0.0.2]": True,
        "mx2.good.test [127.0.0.3]": True,
    }
    probed = [(p["target"]["host"], p["target"]["address"]) for p in document["mx_probes"]]
    assert probed == [("mx1.good.test", "127.0.0.2"), ("mx2.good.test", "127.0.0.3")]
    dkim = items["dkim sel1"]["details"]
    assert (dkim["key_type"], dkim["bits"], dkim["testing"]) == ("rsa", 2048, False)


def test_good_posture_as_text_and_nagios(
    dns_server: DnsServer, certs: Certs, ports: tuple[int, int]
) -> None:
    text = check(dns_server, certs, ports, "good.test")
    assert text.returncode == 0, text.stdout + text.stderr
    assert text.stdout.startswith("good.test: OK")
    assert "OK       spf: 3/10 lookups, 0/2 void" in text.stdout
    assert "OK       mta-sts: id 2026good, mode enforce, mx *.good.test" in text.stdout
    nagios = check(dns_server, certs, ports, "good.test", "--nagios")
    assert nagios.returncode == 0
    line = nagios.stdout.strip()
    assert line.startswith("MAILDOMAIN OK - good.test: 8 checks OK | ")
    perf = dict(p.split("=", 1) for p in line.split(" | ")[1].split())
    assert perf["mx"] == "2;;;0"
    assert perf["spf_lookups"] == "3;;10;0"
    assert perf["spf_void_lookups"] == "0;;2;0"
    assert perf["cert_days"].endswith(";21;7")


def test_every_problem_at_once(
    dns_server: DnsServer, certs: Certs, ports: tuple[int, int], zone_facts: Fixture
) -> None:
    done = check(
        dns_server, certs, ports, "bad.test", "--json",
        "--dkim-selector", "weak", "--dkim-selector", "missing", "--dkim-selector", "revoked",
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "CRITICAL"
    items = _items(document)
    mx = items["mx"]
    assert mx["status"] == "CRITICAL"
    hosts = {h["host"]: h for h in mx["details"]["hosts"]}
    assert [h["preference"] for h in mx["details"]["hosts"]] == [10, 20, 30, 40]
    assert hosts["mx1.bad.test"]["addresses"] == [
        {"address": "127.0.0.4", "ptr": ["wrong.bad.test"], "fcrdns": False}
    ]
    assert hosts["mx2.bad.test"]["addresses"] == [
        {"address": "127.0.0.5", "ptr": [], "fcrdns": False}
    ]
    assert hosts["mx3.bad.test"]["addresses"] == [
        {"address": "127.0.0.7", "ptr": ["mx3.bad.test"], "fcrdns": True}
    ]
    assert hosts["gone.bad.test"]["addresses"] == []
    assert "the MX gone.bad.test has no address record (A or AAAA)" in mx["problems"]
    assert any("127.0.0.5 (mx2.bad.test) has no reverse DNS" in p for p in mx["problems"])
    assert any(
        "the reverse DNS of 127.0.0.4 (mx1.bad.test) is wrong.bad.test" in p for p in mx["problems"]
    )

    expired = items["smtp mx1.bad.test [127.0.0.4]"]
    assert expired["status"] == "CRITICAL"
    assert any("expired" in p for p in expired["problems"])
    assert expired["details"]["certificate_days_left"] < 0
    wrong = items["smtp mx2.bad.test [127.0.0.5]"]
    assert wrong["status"] == "CRITICAL"
    assert wrong["details"]["name_matches"] is False
    assert any("does not match mx2.bad.test" in p for p in wrong["problems"])
    plain = items["smtp mx3.bad.test [127.0.0.7]"]
    assert plain["status"] == "CRITICAL"
    assert plain["details"]["starttls"] is False and plain["details"]["tls_version"] is None
    assert "STARTTLS is not offered" in plain["problems"]

    spf = items["spf"]
    assert spf["status"] == "CRITICAL"
    # a:, mx:, exists: (lookups 1-3, each void), ptr (4), include: (5), then more.bad.test's
    # a:x1..a:x6 (6-11): the count stops once past the limit of 10.
    assert (spf["details"]["lookups"], spf["details"]["void_lookups"]) == (11, 3)
    assert len(spf["problems"]) == 4, spf["problems"]
    assert any(p.startswith("ptr is slow") for p in spf["problems"])
    assert any("needs 11 DNS lookups; more than 10 is a permerror" in p for p in spf["problems"])
    assert any("3 SPF lookups find nothing" in p for p in spf["problems"])
    assert "+all lets every server on the internet send as this domain" in spf["problems"]

    dmarc = items["dmarc"]
    assert dmarc["status"] == "WARNING"
    details = dmarc["details"]
    assert (details["policy"], details["subdomain_policy"], details["pct"]) == ("none", "none", 50)
    assert details["rua"] == [] and details["ruf"] == []
    assert len(dmarc["problems"]) == 3  # p=none, pct=50, no rua

    assert items["tls-rpt"]["status"] == "WARNING"
    assert items["tls-rpt"]["problems"] == [
        "no TLS-RPT record at _smtp._tls.bad.test: senders cannot report TLS failures to you"
    ]

    sts = items["mta-sts"]
    assert sts["status"] == "CRITICAL"
    assert (sts["details"]["id"], sts["details"]["mode"], sts["details"]["max_age"]) == (
        "2026bad", "enforce", 3600,
    )  # fmt: skip
    assert sts["details"]["matches"] == {
        "mx1.bad.test": True,
        "mx2.bad.test": False,
        "mx3.bad.test": False,
        "gone.bad.test": False,
    }
    assert "max_age 3600 is less than a day" in sts["problems"]
    assert any(p.startswith("mx1.bad.test [127.0.0.4]: the certificate") for p in sts["problems"])

    dane = items["dane"]
    assert dane["status"] == "CRITICAL"
    assert dane["details"]["mx_dnssec"] is True
    assert dane["details"]["tlsa"]["mx2.bad.test"] == ["3 1 1 " + "00" * 32]
    assert dane["details"]["matches"] == {"mx2.bad.test [127.0.0.5]": False}
    assert any(
        "the TLSA records at _25._tcp.mx1.bad.test fail DNSSEC validation (bogus)" in p
        for p in dane["problems"]
    )
    assert any(
        "the certificate mx2.bad.test [127.0.0.5] presents matches none" in p
        for p in dane["problems"]
    )

    weak = items["dkim weak"]
    assert weak["status"] == "WARNING"
    assert (weak["details"]["key_type"], weak["details"]["bits"]) == ("rsa", 1024)
    assert items["dkim missing"]["status"] == "CRITICAL"
    assert items["dkim missing"]["problems"] == ["no DKIM key at missing._domainkey.bad.test"]
    assert items["dkim revoked"]["status"] == "CRITICAL"
    assert items["dkim revoked"]["details"]["bits"] == 0


def test_every_problem_in_words_and_nagios(
    dns_server: DnsServer, certs: Certs, ports: tuple[int, int]
) -> None:
    text = check(dns_server, certs, ports, "bad.test")
    assert text.returncode == 2, text.stdout + text.stderr
    print(text.stdout)
    lines = text.stdout.splitlines()
    assert lines[0].startswith("bad.test: CRITICAL")
    assert "  CRITICAL spf: 11/10 lookups, 3/2 void" in lines
    assert "  WARNING  dmarc: p=none sp=none pct=50" in lines
    assert "             - p=none: mail failing DMARC is only reported, not refused" in lines
    nagios = check(dns_server, certs, ports, "bad.test", "--nagios")
    assert nagios.returncode == 2
    line = nagios.stdout.strip()
    assert line.startswith("MAILDOMAIN CRITICAL - bad.test: mx CRITICAL: ")
    assert "\n" not in line
    perf = dict(p.split("=", 1) for p in line.split(" | ")[1].split())
    assert perf["mx"] == "4;;;0"
    assert perf["spf_lookups"] == "11;;10;0"
    assert perf["spf_void_lookups"] == "3;;2;0"
    assert perf["cert_days"].startswith("-")


def test_check_openmetrics_is_read_by_prometheus(
    dns_server: DnsServer, certs: Certs, ports: tuple[int, int]
) -> None:
    from tests.test_openmetrics import families

    done = check(dns_server, certs, ports, "bad.test", "--openmetrics")
    assert done.returncode == 2, done.stdout + done.stderr
    found = families(done.stdout)
    assert found["tuimail_check_status"].samples[0].value == 2
    items = {s.labels["item"]: s.value for s in found["tuimail_check_item_status"].samples}
    assert items["spf"] == 2 and items["dmarc"] == 1 and items["mta-sts"] == 2
    assert found["tuimail_check_mx_hosts"].samples[0].value == 4
    assert found["tuimail_check_spf_lookups"].samples[0].value == 11
    assert found["tuimail_check_spf_void_lookups"].samples[0].value == 3
    up = {s.labels["address"]: s.value for s in found["tuimail_probe_up"].samples}
    assert up == {"127.0.0.4": 1, "127.0.0.5": 1, "127.0.0.7": 1}
    versions = {
        s.labels["host"]: s.labels["version"] for s in found["tuimail_probe_tls_info"].samples
    }
    assert versions == {"mx1.bad.test": "TLSv1.3", "mx2.bad.test": "TLSv1.3"}
    expiry = {
        s.labels["host"]: s.value
        for s in found["tuimail_probe_certificate_expiry_timestamp_seconds"].samples
    }
    assert expiry["mx1.bad.test"] < time.time()


def test_a_null_mx_takes_no_mail_and_probes_nothing(
    dns_server: DnsServer, certs: Certs, ports: tuple[int, int]
) -> None:
    done = check(dns_server, certs, ports, "nullmx.test", "--json")
    document = json.loads(done.stdout)
    items = _items(document)
    assert items["mx"]["status"] == "WARNING"
    assert items["mx"]["problems"] == [
        "nullmx.test publishes a null MX: it accepts no mail (RFC 7505)"
    ]
    assert document["mx_probes"] == []
    assert items["dane"]["status"] == "OK"
    assert items["spf"]["status"] == "OK"
    assert (items["spf"]["details"]["lookups"], items["spf"]["details"]["void_lookups"]) == (0, 0)


def test_a_silent_resolver_is_unknown_in_time() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound, never read: queries go unanswered
        port = silent.getsockname()[1]
        started = time.monotonic()
        done = run_tuimail(
            "check", "example.test", "--dns-server", f"127.0.0.1:{port}", "--timeout", "1",
            "--nagios",
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout.startswith("MAILDOMAIN UNKNOWN - example.test: mx UNKNOWN: no DNS answer")
    assert elapsed < 20


def test_the_resolver_of_config_toml_is_used(dns_server: DnsServer, isolated_dirs: Path) -> None:
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(f'[dns]\nservers = ["{dns_server.server}"]\n')
    done = run_tuimail("check", "nullmx.test", "--json", "--timeout", "5")
    items = _items(json.loads(done.stdout))
    assert items["spf"]["details"]["record"] == "v=spf1 -all"
    (config / "config.toml").write_text("[dns]\nservers = 5\n")
    refused = run_tuimail("check", "nullmx.test", "--nagios")
    assert refused.returncode == 3
    assert refused.stdout.startswith("MAILDOMAIN UNKNOWN - config.toml [dns] servers = 5")


def test_dane_ta_needs_the_chain_and_the_mx_name_as_senders_do(
    dns_server: DnsServer,
    certs: Certs,
    ports: tuple[int, int],
    servers: ServerThread,
    tmp_path: Path,
) -> None:
    """The check judges TLSA records with send --direct's own code (tuimail/dane.py): a
    DANE-TA anchor that the server sends is not enough when the certificate names
    another host, since a sender refuses it."""
    chain = tmp_path / "chain.pem"
    leaf = certs.ca.issue_cert("elsewhere.example")
    chain.write_bytes(leaf.private_key_and_cert_chain_pem.bytes() + certs.ca.cert_pem.bytes())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain)
    listen(servers, "127.0.0.8", ports[0], Sink(), tls_context=context)
    done = check(dns_server, certs, ports, "ta.test", "--json")
    dane = _items(json.loads(done.stdout))["dane"]
    assert dane["status"] == "CRITICAL", dane
    assert dane["details"]["matches"] == {"mx.ta.test [127.0.0.8]": False}
    assert any(
        "(DANE-TA), but the certificate is for elsewhere.example, not mx.ta.test" in p
        for p in dane["problems"]
    ), dane["problems"]


def test_a_domain_is_taken_as_people_write_it_and_asked_in_its_ascii_form() -> None:
    """``bücher.test`` is asked for as ``xn--bcher-kva.test``; names DNS cannot
    carry, or that the two IDNA standards spell differently, are refused in words."""
    import dns.message

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as resolver:
        resolver.bind(("127.0.0.1", 0))  # bound, never answering: the questions wait here
        port = resolver.getsockname()[1]
        done = run_tuimail(
            "check", "Bücher.test", "--dns-server", f"127.0.0.1:{port}", "--timeout", "1",
        )  # fmt: skip
        resolver.settimeout(5)
        asked = {str(dns.message.from_wire(resolver.recv(4096)).question[0].name)}
    assert done.stdout.startswith("xn--bcher-kva.test: UNKNOWN"), done.stdout + done.stderr
    assert asked <= {
        f"{prefix}xn--bcher-kva.test." for prefix in ("", "_dmarc.", "_mta-sts.", "_smtp._tls.")
    }, asked
    for given, words in (
        ("straße.test", "spelled differently by the two IDNA standards"),
        ("[127.0.0.1]", "is an address literal, not a domain name"),
        ("a b.test", "is not a valid domain name"),
    ):
        refused = run_tuimail("check", given)
        assert refused.returncode == 3 and words in refused.stderr, refused.stderr  # UNKNOWN
