"""The probe against real servers: healthy, misconfigured, broken, slow and silent."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import run_tuimail
from tests.conftest import Certs
from tests.smtpservers import ServerThread, Sink, password_checker
from tuimail.credentials import Secret
from tuimail.faults import FaultPlan
from tuimail.mx import MXLookupError, lookup_mx
from tuimail.probe import (
    ProbeReport,
    ProbeTarget,
    Status,
    Thresholds,
    capability_changes,
    probe,
)
from tuimail.profiles import Profile, ProfileStore, Security
from tuimail.sandbox import Sandbox, SandboxConfig
from tuimail.session import SessionReport
from tuimail.stages import Stage
from tuimail.transcript import Transcript

NAGIOS_RE = re.compile(r"^SMTP (OK|WARNING|CRITICAL|UNKNOWN) - .+ \| time=[\d.]+s;[\d.]+;[\d.]+;0")


def target(port: int, **changes: Any) -> ProbeTarget:
    settings: dict[str, Any] = {"host": "127.0.0.1", "port": port, "timeout": 5.0}
    settings.update(changes)
    return ProbeTarget(**settings)


class GrowingEhlo(Sink):
    """Advertises one more capability once ``grow`` is set: a server that changed."""

    grow = False

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.grow:
            return [*responses[:-1], "250-CHUNKING", responses[-1]]
        return responses


async def test_healthy_starttls_server(servers: ServerThread, certs: Certs) -> None:
    port = servers.smtp(Sink(), tls_context=certs.good)
    report = await probe(target(port, security=Security.STARTTLS, ca_file=str(certs.ca_file)))
    assert report.status is Status.OK, report.reasons
    assert set(report.labelled_timings()) >= {"connect", "banner", "ehlo", "tls", "quit"}
    assert report.banner.startswith("mx.test")
    assert "starttls" in report.capabilities_before_tls and "size" in report.capabilities
    tls = report.tls
    assert tls is not None and tls.version.startswith("TLSv1.")
    assert tls.trust.trusted and tls.trust.hostname_matches
    assert tls.chain[0].names == ("localhost", "127.0.0.1")
    assert tls.days_left is not None and tls.days_left > 1000
    lines = [e.text for e in report.transcript]
    assert "STARTTLS" in lines and "QUIT" in lines
    assert NAGIOS_RE.match(report.nagios())
    assert "cert_days=" in report.nagios() and "tls=" in report.nagios()


async def test_implicit_tls_and_plain(servers: ServerThread, certs: Certs) -> None:
    tls_port = servers.smtp(Sink(), implicit_tls=certs.good)
    report = await probe(target(tls_port, security=Security.TLS, ca_file=str(certs.ca_file)))
    assert report.status is Status.OK, report.reasons
    plain = await probe(target(servers.smtp(Sink()), security=Security.NONE))
    assert plain.status is Status.OK and plain.tls is None


async def test_starttls_missing_where_expected(servers: ServerThread) -> None:
    report = await probe(target(servers.smtp(Sink()), security=Security.STARTTLS))
    assert report.status is Status.CRITICAL
    assert "STARTTLS is not offered" in report.reasons
    # The stepper's own check decided it before any TLS began; the probe still said QUIT.
    assert Stage.TLS not in report.timings and report.quit_seconds is not None
    assert report.capabilities_before_tls == {} and "size" in report.capabilities


@pytest.mark.parametrize(
    ("cert_name", "with_ca", "expected"),
    [
        ("expired", True, "the certificate for 127.0.0.1 expired on"),
        ("wrong_host", True, "does not match 127.0.0.1 (it is for mail.example.test)"),
        ("self_signed", False, "self-signed"),
        ("good", False, "does not trust"),
    ],
)
async def test_bad_certificates_are_critical_and_described(
    servers: ServerThread, certs: Certs, cert_name: str, with_ca: bool, expected: str
) -> None:
    port = servers.smtp(Sink(), tls_context=getattr(certs, cert_name))
    ca_file = str(certs.ca_file) if with_ca else ""
    report = await probe(target(port, security=Security.STARTTLS, ca_file=ca_file))
    assert report.status is Status.CRITICAL
    assert any(expected in reason for reason in report.reasons), report.reasons
    # The refused certificate is still inspected and described.
    assert report.tls is not None and report.tls.chain
    assert report.capabilities  # the probe went on, without trusting, to see the rest


@pytest.mark.parametrize(
    ("warn", "crit", "status"),
    [(10, 3, Status.WARNING), (30, 10, Status.CRITICAL), (3, 1, Status.OK)],
)
async def test_certificate_expiry_thresholds(
    servers: ServerThread, certs: Certs, warn: int, crit: int, status: Status
) -> None:
    port = servers.smtp(Sink(), tls_context=certs.soon)  # expires in 5 days
    thresholds = Thresholds(warn_days=warn, crit_days=crit)
    report = await probe(
        target(port, security=Security.STARTTLS, ca_file=str(certs.ca_file), thresholds=thresholds)
    )
    assert report.status is status, report.reasons
    assert report.tls is not None and report.tls.days_left in (4, 5)


async def test_closed_port_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = await probe(target(port, security=Security.NONE))
    assert report.status is Status.CRITICAL and not report.reached
    assert report.reasons[0].startswith("unreachable")


async def test_server_that_never_sends_its_banner() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        report = await probe(target(port, security=Security.NONE, timeout=0.5))
    finally:
        server.close()
    assert report.status is Status.CRITICAL
    assert report.reasons[0].startswith("no banner")


@pytest.fixture
async def sandbox(tmp_path: Path) -> Any:
    box = Sandbox(
        SandboxConfig(port=0, maildir=tmp_path / "m", sessions_dir=tmp_path / "s"),
        faults=FaultPlan(),
    )
    await box.start()
    yield box
    await box.stop(grace=1)


@pytest.mark.parametrize(
    ("fault", "status", "words"),
    [
        ("greeting:421 4.3.2 Too busy", Status.WARNING, "the banner is 421"),
        ("greeting:554 5.7.1 Go away", Status.CRITICAL, "the banner is 554"),
        ("greeting:disconnect", Status.CRITICAL, "no banner"),
        ("ehlo:554 5.5.1 No", Status.CRITICAL, "ehlo failed"),
        ("ehlo:delay 0.3", Status.WARNING, "slow:"),
    ],
)
async def test_sandbox_faults(sandbox: Sandbox, fault: str, status: Status, words: str) -> None:
    from tuimail.faults import parse_fault

    sandbox.faults.add(parse_fault(fault))
    thresholds = Thresholds(warn_seconds=0.25, crit_seconds=30)
    report = await probe(target(sandbox.port, security=Security.NONE, thresholds=thresholds))
    assert report.status is status, report.reasons
    assert any(words in r for r in report.reasons), report.reasons


async def test_auth_check_with_a_profile(servers: ServerThread, certs: Certs) -> None:
    port = servers.smtp(Sink(), tls_context=certs.good, authenticator=password_checker({"u": "pw"}))
    profile = Profile(
        name="p", host="127.0.0.1", port=port, security=Security.STARTTLS, username="u",
        ca_file=str(certs.ca_file),
    )  # fmt: skip
    good = await probe(ProbeTarget.from_profile(profile), Secret("pw"))
    assert good.status is Status.OK and good.auth == "ok"
    bad = await probe(ProbeTarget.from_profile(profile), Secret("nope"))
    assert bad.status is Status.CRITICAL and bad.auth.startswith("rejected: 535")
    assert "pw" not in bad.transcript.to_text().split("AUTH")[-1].split("\n")[0]


def test_capability_changes() -> None:
    before = {"size": "1000", "starttls": "", "pipelining": ""}
    after = {"size": "2000", "pipelining": "", "chunking": ""}
    assert capability_changes(before, after) == ["+CHUNKING", "SIZE 1000 -> 2000", "-STARTTLS"]
    assert capability_changes(after, after) == []


# -- the command -----------------------------------------------------------------


def test_nagios_output_and_exit_codes(servers: ServerThread, certs: Certs) -> None:
    ok = servers.smtp(Sink(), tls_context=certs.good)
    result = run_tuimail("probe", f"127.0.0.1:{ok}", "--ca-file", str(certs.ca_file), "--nagios")
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = result.stdout.splitlines()
    assert NAGIOS_RE.match(line) and line.startswith("SMTP OK - ")

    soon = servers.smtp(Sink(), tls_context=certs.soon)
    warning = run_tuimail(
        "probe", f"127.0.0.1:{soon}", "--ca-file", str(certs.ca_file), "--nagios",
        "--warn-days", "10", "--crit-days", "2",
    )  # fmt: skip
    assert warning.returncode == 1 and warning.stdout.startswith("SMTP WARNING - ")

    no_tls = servers.smtp(Sink())
    critical = run_tuimail("probe", f"127.0.0.1:{no_tls}", "--nagios")
    assert critical.returncode == 2 and "STARTTLS is not offered" in critical.stdout

    unknown = run_tuimail("probe", "--profile", "missing", "--nagios")
    assert unknown.returncode == 3 and "SMTP UNKNOWN" in unknown.stdout


def test_json_document(servers: ServerThread, certs: Certs) -> None:
    port = servers.smtp(Sink(), tls_context=certs.good)
    result = run_tuimail("probe", f"127.0.0.1:{port}", "--ca-file", str(certs.ca_file), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "OK" and document["exit_code"] == 0
    assert document["target"] == {
        "name": f"127.0.0.1:{port}", "host": "127.0.0.1", "port": port, "security": "starttls",
        "thresholds": {"warn_days": 21, "crit_days": 7, "warn_seconds": 5.0, "crit_seconds": 15.0},
    }  # fmt: skip
    assert set(document["timings"]) >= {"connect", "banner", "ehlo", "tls", "quit"}
    assert document["tls"]["trusted"] and document["tls"]["hostname_matches"]
    assert document["tls"]["chain"][0]["names"] == ["localhost", "127.0.0.1"]
    assert document["capabilities"]["size"] and document["transcript"]


def test_plain_output_shows_stages_and_chain(servers: ServerThread, certs: Certs) -> None:
    port = servers.smtp(Sink(), tls_context=certs.good)
    result = run_tuimail("probe", f"127.0.0.1:{port}", "--ca-file", str(certs.ca_file))
    assert result.returncode == 0
    assert " -> STARTTLS" in result.stdout and ": OK" in result.stdout
    assert "cert[0]" in result.stdout and "days left" in result.stdout


def test_capability_change_is_detected_from_history(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    handler = GrowingEhlo()
    port = servers.smtp(handler)
    first = run_tuimail("probe", f"127.0.0.1:{port}", "--security", "none", "--nagios")
    assert first.returncode == 0, first.stdout
    handler.grow = True
    second = run_tuimail("probe", f"127.0.0.1:{port}", "--security", "none", "--nagios")
    assert second.returncode == 1
    assert "capabilities changed: +CHUNKING" in second.stdout
    history = json.loads((isolated_dirs / "state" / "tuimail" / "probe-history.json").read_text())
    [records] = history["targets"].values()
    assert [r["status"] for r in records] == ["OK", "WARNING"]


def test_profile_probe_checks_auth(
    servers: ServerThread, certs: Certs, isolated_dirs: Path
) -> None:
    port = servers.smtp(Sink(), tls_context=certs.good, authenticator=password_checker({"u": "pw"}))
    ProfileStore().save(
        Profile(name="work", host="127.0.0.1", port=port, username="u", ca_file=str(certs.ca_file))
    )
    result = run_tuimail("probe", "--profile", "work", "--password-stdin", "--json", input="pw\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["auth"] == "ok"


# -- MX ------------------------------------------------------------------------------


@pytest.fixture
def dns_server(servers: ServerThread) -> int:
    zone = {
        "example.test": ["20 localhost.", "10 127.0.0.1."],
        "nomx.test": [],
        "nomail.test": ["0 ."],
    }

    return servers.dns(zone)


async def test_mx_lookup(dns_server: int) -> None:
    hosts = await lookup_mx("example.test", nameservers=["127.0.0.1"], port=dns_server)
    assert [(h.preference, h.host) for h in hosts] == [(10, "127.0.0.1"), (20, "localhost")]
    fallback = await lookup_mx("nomx.test", nameservers=["127.0.0.1"], port=dns_server)
    assert [h.host for h in fallback] == ["nomx.test"]
    with pytest.raises(MXLookupError, match="NXDOMAIN"):
        await lookup_mx("missing.test", nameservers=["127.0.0.1"], port=dns_server)
    with pytest.raises(MXLookupError, match="null MX"):
        await lookup_mx("nomail.test", nameservers=["127.0.0.1"], port=dns_server)


def test_probe_every_mx_host(servers: ServerThread, dns_server: int) -> None:
    port = servers.smtp(Sink())
    result = run_tuimail(
        "probe", "--mx", "example.test", "--dns-server", f"127.0.0.1:{dns_server}",
        "--mx-port", str(port), "--security", "none", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["domain"] == "example.test" and document["status"] == "OK"
    assert [t["target"]["name"] for t in document["targets"]] == [
        "MX 10 127.0.0.1",
        "MX 20 localhost",
    ]


# -- targets ---------------------------------------------------------------------


def test_target_store_round_trip(isolated_dirs: Path) -> None:
    from tuimail.targets import TargetError, TargetStore, monitor_targets

    store = TargetStore()
    relay = ProbeTarget(
        host="relay.example.test", port=25, security=Security.STARTTLS, name="relay",
        thresholds=Thresholds(warn_days=30, crit_days=10, warn_seconds=2, crit_seconds=8),
    )  # fmt: skip
    store.save(relay)
    assert store.load() == {"relay": replace(relay, owner="target:relay")}
    path = isolated_dirs / "config" / "tuimail" / "targets.toml"
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(TargetError, match="critical level"):
        store.save(ProbeTarget(host="x.test", name="bad", thresholds=Thresholds(3, 10)))
    profile = Profile(name="work", host="relay.example.test", port=25)
    targets = monitor_targets({"work": profile}, store.load())
    # A profile and a target on one server are two targets, each with its own settings.
    assert [t.label for t in targets] == ["work", "relay"]
    assert len({t.key for t in targets}) == 2
    path.write_text('[targets.broken]\nport = "x"\n')
    with pytest.raises(TargetError, match="broken"):
        store.load()
    with pytest.raises(TargetError):
        store.save(relay)
    assert "broken" in path.read_text()  # never overwritten with less


def test_timings_are_kept_by_stage_and_worded_only_in_the_output() -> None:
    """The perfdata and JSON words are the ones monitoring has always matched, in order."""
    report = ProbeReport(ProbeTarget(host="h.test"), Transcript(), started=1.0)
    report.reached = True
    report.timings = {
        Stage.CONNECT: 0.0123456789,
        Stage.GREETING: 0.2,
        Stage.EHLO: 0.0031,
        Stage.TLS: 0.04,
        Stage.AUTH: 0.5,
    }
    report.quit_seconds = 0.001
    assert report.nagios() == (
        "SMTP UNKNOWN - h.test:587, no TLS, 0.756s | time=0.756446s;5;15;0 "
        "connect=0.012346s;;;0 banner=0.200000s;;;0 ehlo=0.003100s;;;0 tls=0.040000s;;;0 "
        "auth=0.500000s;;;0 quit=0.001000s;;;0"
    )
    assert json.dumps(report.to_json()["timings"]) == (
        '{"connect": 0.012346, "banner": 0.2, "ehlo": 0.0031, "tls": 0.04, "auth": 0.5, '
        '"quit": 0.001}'
    )
    session = SessionReport(Transcript(), timings={Stage.CONNECT: 0.1, Stage.TLS: 0.2})
    assert session.to_json()["timings"] == {"connect": 0.1, "tls": 0.2}


def test_a_probe_that_cannot_run_is_unknown_on_standard_output_for_nagios() -> None:
    """Nagios and Icinga show a plugin's standard output only: an UNKNOWN said on
    standard error reached the operator as '(null)'. Without --nagios it stays there."""
    for command, line in (
        (("probe", "--profile", "nosuch", "--nagios"), "SMTP UNKNOWN - no profile named"),
        (("check", "[127.0.0.1]", "--nagios"), "MAILDOMAIN UNKNOWN - '[127.0.0.1]' is an address"),
    ):
        done = run_tuimail(*command)
        assert done.returncode == 3 and done.stdout.startswith(line), done
        plain = run_tuimail(*command[:-1])
        assert plain.returncode == 3 and plain.stdout == "" and "tuimail: " in plain.stderr
