"""``tuimail send --direct`` under MTA-STS: real DNS, a real HTTPS policy server, real MX servers.

The ``_mta-sts`` records come from the unbound fixture; the policy from an
HTTPS server on 127.0.0.6 with a certificate from the tests' CA (trusted with
``--ca-file``, which also applies to the MX certificates).
"""

from __future__ import annotations

import datetime
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import run_tuimail
from tests.conftest import Certs
from tests.dns_support import DnsServer, free_port, serve_policies, started_dns
from tests.smtpservers import ServerThread, Sink
from tests.test_direct_mx import EHLO, free_mx_port, listen
from tuimail.cli import exitcodes
from tuimail.mta_sts import mx_matches

POLICY_ADDRESS = "127.0.0.6"


def _zones(server: DnsServer) -> None:
    server.add_zone(
        "enforce.test",
        [
            "@ MX 10 rogue",  # the best preference, but outside the policy
            "@ MX 20 mx.mail",
            "rogue A 127.0.0.2",
            "mx.mail A 127.0.0.3",
            '_mta-sts TXT "v=STSv1; id=20260101"',
            f"mta-sts A {POLICY_ADDRESS}",
        ],
    )
    server.add_zone(
        "testing.test",
        [
            "@ MX 10 mx",
            "mx A 127.0.0.4",
            '_mta-sts TXT "v=STSv1; id=7"',
            f"mta-sts A {POLICY_ADDRESS}",
        ],
    )


POLICIES = {
    "mta-sts.enforce.test": "version: STSv1\nmode: enforce\nmx: *.mail.enforce.test\nmax_age: 86400\n",
    "mta-sts.testing.test": "version: STSv1\nmode: testing\nmx: mx.testing.test\nmax_age: 86400\n",
}


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    server = started_dns(tmp_path_factory.mktemp("dns"), _zones)
    yield server
    server.stop()


def _context(certs: Certs, *names: str, expired: bool = False) -> ssl.SSLContext:
    now = datetime.datetime.now(datetime.UTC)
    when: dict[str, Any] = {}
    if expired:
        when = {
            "not_before": now - datetime.timedelta(days=60),
            "not_after": now - datetime.timedelta(days=2),
        }
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certs.ca.issue_cert(*names, **when).configure_cert(context)
    return context


@pytest.fixture
def mx_port() -> int:
    return free_mx_port()


@pytest.fixture
def policy_port(servers: ServerThread, certs: Certs) -> Iterator[int]:
    port = free_port()
    context = _context(certs, *POLICIES)
    server = serve_policies(servers.loop, POLICY_ADDRESS, port, POLICIES, context)
    servers._servers.append(server)
    yield port


def send(dns_server: DnsServer, certs: Certs, mx: int, policy: int, to: str) -> Any:
    return run_tuimail(
        "send", "--direct", "--dns-server", dns_server.server, "--mx-port", str(mx),
        "--mta-sts-port", str(policy), "--ca-file", str(certs.ca_file), "--ehlo", EHLO,
        "--from", "alice@example.test", "--to", to, "--subject", "Hello", "--body", "Hi",
    )  # fmt: skip


def test_enforce_uses_only_matching_mx_with_verified_tls(
    dns_server: DnsServer, servers: ServerThread, certs: Certs, mx_port: int, policy_port: int
) -> None:
    rogue, good = Sink(), Sink()
    listen(servers, "127.0.0.2", mx_port, rogue, tls_context=_context(certs, "rogue.enforce.test"))
    listen(servers, "127.0.0.3", mx_port, good, tls_context=_context(certs, "mx.mail.enforce.test"))
    done = send(dns_server, certs, mx_port, policy_port, "bob@enforce.test")
    out = done.stdout
    assert done.returncode == exitcodes.OK, out + done.stderr
    assert rogue.messages == []
    assert len(good.messages) == 1
    assert (
        "=== MTA-STS enforce for enforce.test (id 20260101): mx must match *.mail.enforce.test"
        in out
    )
    assert "*** MTA-STS: rogue.enforce.test does not match the policy's mx" in out
    assert "=== MTA-STS: policy id 20260101 fetched from https://mta-sts.enforce.test/" in out
    assert "verified" in out and "NOT VERIFIED" not in out
    assert "opportunistic" not in out
    # Sent again: the policy comes from the cache (same id, within max_age).
    again = send(dns_server, certs, mx_port, policy_port, "bob@enforce.test")
    assert again.returncode == exitcodes.OK, again.stdout + again.stderr
    assert "=== MTA-STS: policy id 20260101 from the cache" in again.stdout
    assert len(good.messages) == 2


def test_enforce_refuses_an_expired_certificate(
    dns_server: DnsServer, servers: ServerThread, certs: Certs, mx_port: int, policy_port: int
) -> None:
    good = Sink()
    expired = _context(certs, "mx.mail.enforce.test", expired=True)
    listen(servers, "127.0.0.3", mx_port, good, tls_context=expired)
    done = send(dns_server, certs, mx_port, policy_port, "bob@enforce.test")
    assert done.returncode == exitcodes.QUEUED, done.stdout + done.stderr
    assert good.messages == []
    assert "certificate" in done.stdout and "expired" in done.stdout
    assert "=== direct: mx.mail.enforce.test [127.0.0.3] failed for now" in done.stdout


def test_enforce_with_no_matching_mx_refuses_with_the_reason(
    dns_server: DnsServer, servers: ServerThread, certs: Certs, mx_port: int, policy_port: int
) -> None:
    # Only the rogue MX answers; the matching one is down: nothing is sent to the rogue.
    rogue = Sink()
    listen(servers, "127.0.0.2", mx_port, rogue, tls_context=_context(certs, "rogue.enforce.test"))
    done = send(dns_server, certs, mx_port, policy_port, "bob@enforce.test")
    assert done.returncode == exitcodes.QUEUED, done.stdout + done.stderr
    assert rogue.messages == []
    assert "rogue.enforce.test does not match the policy's mx (*.mail.enforce.test); not used" in (
        done.stdout
    )


def test_testing_mode_delivers_and_reports_the_failure(
    dns_server: DnsServer, servers: ServerThread, certs: Certs, mx_port: int, policy_port: int
) -> None:
    sink = Sink()
    listen(servers, "127.0.0.4", mx_port, sink, tls_context=certs.wrong_host)
    done = send(dns_server, certs, mx_port, policy_port, "carol@testing.test")
    out = done.stdout
    assert done.returncode == exitcodes.OK, out + done.stderr
    assert len(sink.messages) == 1
    assert "=== MTA-STS testing for testing.test (id 7): mx should match mx.testing.test" in out
    assert "*** MTA-STS testing: verified TLS with mx.testing.test failed" in out
    assert "=== opportunistic TLS: STARTTLS with mx.testing.test" in out


def test_mx_patterns() -> None:
    assert mx_matches("*.mail.example.org", "a.mail.example.org")
    assert not mx_matches("*.mail.example.org", "a.b.mail.example.org")
    assert not mx_matches("*.mail.example.org", "mail.example.org")
    assert mx_matches("MX.Example.org", "mx.example.org.")


def test_a_changed_id_fetches_the_policy_again(
    dns_server: DnsServer,
    servers: ServerThread,
    certs: Certs,
    mx_port: int,
    policy_port: int,
    isolated_dirs: Path,
) -> None:
    # A fresh cached policy with another id, naming no MX of the domain: the
    # record's id differs, so the policy is fetched again and the new one is used.
    cache = isolated_dirs / "state" / "tuimail" / "mta-sts"
    cache.mkdir(parents=True)
    old = {
        "domain": "enforce.test", "id": "20250101", "mode": "enforce",
        "mx": ["nothing.example"], "max_age": 86400, "fetched_at": time.time(),
    }  # fmt: skip
    (cache / "enforce.test.json").write_text(json.dumps(old))
    good = Sink()
    listen(servers, "127.0.0.3", mx_port, good, tls_context=_context(certs, "mx.mail.enforce.test"))
    done = send(dns_server, certs, mx_port, policy_port, "bob@enforce.test")
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr
    assert "fetched from https://mta-sts.enforce.test/ (the cached id 20250101 changed)" in (
        done.stdout
    )
    assert len(good.messages) == 1
    assert json.loads((cache / "enforce.test.json").read_text())["id"] == "20260101"


def test_testing_mode_failure_is_in_the_outcome_and_the_outbox_record(
    dns_server: DnsServer,
    servers: ServerThread,
    certs: Certs,
    mx_port: int,
    policy_port: int,
    isolated_dirs: Path,
) -> None:
    # Delivered (testing mode enforces nothing), but the outcome line says what the
    # policy would have refused, and the sent message's kept transcript says it too.
    sink = Sink()
    listen(servers, "127.0.0.4", mx_port, sink, tls_context=certs.wrong_host)
    done = send(dns_server, certs, mx_port, policy_port, "carol@testing.test")
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr
    assert len(sink.messages) == 1
    note = (
        "the MTA-STS policy of testing.test (id 7, testing mode) would refuse mx.testing.test: "
        "verified TLS failed (the certificate does not match the host name mx.testing.test"
    )
    assert f"tuimail: note: {note}" in done.stderr
    kept = list((isolated_dirs / "data" / "tuimail" / "sent-transcripts").glob("*.jsonl"))
    assert len(kept) == 1
    assert f"direct: delivered, but {note}" in kept[0].read_text()
