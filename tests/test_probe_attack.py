"""The probe under attack: no password to an unverified server, no fast-looking timeouts."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from tests.cli_helpers import run_tuimail
from tests.conftest import Certs
from tests.smtpservers import ServerThread, Sink
from tuimail.credentials import Secret
from tuimail.probe import ProbeTarget, Status, probe
from tuimail.profiles import Profile, ProfileStore, Security
from tuimail.session import Stage, check_account
from tuimail.transcript import Direction

PASSWORD = "probe-secret-7f3a"


class RecordingAuthenticator:
    """An aiosmtpd authenticator that remembers every attempt it saw, and accepts them."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, Any]] = []

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        self.attempts.append((mechanism, auth_data))
        return AuthResult(success=True)


def _profile(port: int, security: Security, ca_file: str, **changes: Any) -> Profile:
    settings: dict[str, Any] = {
        "name": "victim", "host": "127.0.0.1", "port": port, "security": security,
        "username": "u", "ca_file": ca_file, "timeout": 5.0,
    }  # fmt: skip
    settings.update(changes)
    return Profile(**settings)


def _client_lines(report: Any) -> list[str]:
    lines = [e.text for e in report.transcript if e.direction is Direction.CLIENT]
    assert "EHLO" in " ".join(lines)  # the capture saw the client at all
    return lines


# (certificate, trust its CA?): every way the server's TLS can fail verification.
UNVERIFIED = [
    ("self_signed", False),
    ("good", False),  # a real chain from a CA this client does not trust
    ("expired", True),
    ("wrong_host", True),  # trusted chain, but for another name: checked after the handshake
]


@pytest.mark.parametrize("security", [Security.STARTTLS, Security.TLS])
@pytest.mark.parametrize(("cert_name", "with_ca"), UNVERIFIED)
async def test_no_auth_over_a_connection_whose_certificate_was_refused(
    servers: ServerThread, certs: Certs, security: Security, cert_name: str, with_ca: bool
) -> None:
    recorder = RecordingAuthenticator()
    context = getattr(certs, cert_name)
    if security is Security.TLS:
        port = servers.smtp(Sink(), implicit_tls=context, authenticator=recorder)
    else:
        port = servers.smtp(Sink(), tls_context=context, authenticator=recorder)
    profile = _profile(port, security, str(certs.ca_file) if with_ca else "")
    report = await probe(ProbeTarget.from_profile(profile), Secret(PASSWORD))
    assert recorder.attempts == []  # the server never saw a password
    assert not any(line.upper().startswith("AUTH") for line in _client_lines(report))
    assert report.status is Status.CRITICAL
    assert report.auth.startswith("AUTH skipped"), report.auth
    assert "password was not sent" in report.auth
    assert report.tls is not None and report.tls.chain  # still inspected and described


async def test_auth_goes_where_the_profile_says_not_to_verify(
    servers: ServerThread, certs: Certs
) -> None:
    """``verify_tls = false`` is the user's explicit choice: the AUTH check still runs."""
    recorder = RecordingAuthenticator()
    port = servers.smtp(Sink(), tls_context=certs.self_signed, authenticator=recorder)
    profile = _profile(port, Security.STARTTLS, "", verify_tls=False)
    report = await probe(ProbeTarget.from_profile(profile), Secret(PASSWORD))
    assert report.auth == "ok" and len(recorder.attempts) == 1


async def test_auth_on_a_verified_connection(servers: ServerThread, certs: Certs) -> None:
    recorder = RecordingAuthenticator()
    port = servers.smtp(Sink(), tls_context=certs.good, authenticator=recorder)
    profile = _profile(port, Security.STARTTLS, str(certs.ca_file))
    report = await probe(ProbeTarget.from_profile(profile), Secret(PASSWORD))
    assert report.status is Status.OK, report.reasons
    assert report.auth == "ok" and len(recorder.attempts) == 1


def test_scheduled_profile_probe_keeps_the_password_from_an_untrusted_server(
    servers: ServerThread, certs: Certs, isolated_dirs: Path
) -> None:
    """The command a cron job runs: ``tuimail probe --profile NAME``."""
    recorder = RecordingAuthenticator()
    port = servers.smtp(Sink(), tls_context=certs.self_signed, authenticator=recorder)
    ProfileStore().save(_profile(port, Security.STARTTLS, ""))
    result = run_tuimail(
        "probe", "--profile", "victim", "--password-stdin", "--json", input=PASSWORD + "\n"
    )
    assert result.returncode == 2, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["auth"].startswith("AUTH skipped")
    assert recorder.attempts == []
    assert PASSWORD not in result.stdout + result.stderr


# -- timings of a stage that fails by timeout -----------------------------------------


class Silent(asyncio.Protocol):
    """Accepts the TCP connection and never says a word."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport


TIMEOUT = 0.5


async def test_a_greeting_timeout_counts_its_wait(servers: ServerThread) -> None:
    port = servers.start(Silent)
    target = ProbeTarget(host="127.0.0.1", port=port, security=Security.NONE, timeout=TIMEOUT)
    report = await probe(target)
    assert report.status is Status.CRITICAL
    assert report.reasons[0].startswith("no banner")
    assert report.timings[Stage.GREETING] >= TIMEOUT  # a lower bound on the wait it measured
    assert report.total >= TIMEOUT
    perf = dict(re.findall(r"(\w+)=([\d.]+)s", report.nagios().split("|", 1)[1]))
    assert float(perf["banner"]) >= TIMEOUT and float(perf["time"]) >= TIMEOUT
    assert report.to_json()["timings"]["banner"] >= TIMEOUT


def test_a_greeting_timeout_counts_its_wait_in_the_command(servers: ServerThread) -> None:
    port = servers.start(Silent)
    server = f"127.0.0.1:{port}"
    common = ("--security", "none", "--timeout", str(TIMEOUT), "--no-history")
    nagios = run_tuimail("probe", server, *common, "--nagios")
    assert nagios.returncode == 2, nagios.stdout + nagios.stderr
    perf = dict(re.findall(r"(\w+)=([\d.]+)s", nagios.stdout.split("|", 1)[1]))
    assert float(perf["time"]) >= TIMEOUT and float(perf["banner"]) >= TIMEOUT
    document = json.loads(run_tuimail("probe", server, *common, "--json").stdout)
    assert document["timings"]["banner"] >= TIMEOUT and document["total"] >= TIMEOUT


class GreetThenSilent(asyncio.Protocol):
    """Greets, then never answers EHLO: the timeout falls in a later stage."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(b"220 mx.test ESMTP\r\n")


async def test_an_ehlo_timeout_counts_its_wait(servers: ServerThread) -> None:
    port = servers.start(GreetThenSilent)
    target = ProbeTarget(host="127.0.0.1", port=port, security=Security.NONE, timeout=TIMEOUT)
    report = await probe(target)
    assert report.status is Status.CRITICAL
    assert report.timings[Stage.EHLO] >= TIMEOUT
    assert "ehlo=" in report.nagios()


# -- the same rule for the session: its second look at a refused certificate -----------


@pytest.mark.parametrize("security", [Security.STARTTLS, Security.TLS])
@pytest.mark.parametrize(("cert_name", "with_ca"), UNVERIFIED)
async def test_a_session_never_authenticates_after_a_refused_certificate(
    servers: ServerThread, certs: Certs, security: Security, cert_name: str, with_ca: bool
) -> None:
    """``accounts test`` and every send: after the refusal, a read-only look, no AUTH."""
    recorder = RecordingAuthenticator()
    greeted = Counting()
    context = getattr(certs, cert_name)
    if security is Security.TLS:
        port = servers.smtp(greeted, implicit_tls=context, authenticator=recorder)
    else:
        port = servers.smtp(greeted, tls_context=context, authenticator=recorder)
    profile = _profile(port, security, str(certs.ca_file) if with_ca else "")
    report = await check_account(profile, Secret(PASSWORD))
    assert report.failure is not None and report.failure.stage is Stage.TLS
    assert recorder.attempts == []
    if security is Security.STARTTLS:
        assert greeted.ehlos == 2  # the refused session and the look at its certificate


class Counting(Sink):
    """Counts EHLO commands across connections."""

    ehlos = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.ehlos += 1
        session.host_name = hostname
        return responses
