"""Compose's built-in "direct" profile: the app sends to the recipient domain's MX hosts.

A real DNS (unbound validating before nsd, tests/dns_support.py) names the
MX and publishes its TLSA record in a signed zone; the MX is an aiosmtpd
server on its own loopback address with a certificate from the tests' CA.
The app reads the resolver from config.toml ``[dns] servers`` and the EHLO
name from ``[direct] ehlo_name``; only the MX port (25 in real life) is
moved, by the module constant the direct profile reads at each send.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from textual.pilot import Pilot
from textual.widgets import Select

from tests.conftest import Certs
from tests.dns_support import DnsServer, started_dns
from tests.smtpservers import ServerThread, Sink
from tests.test_direct_mx import listen
from tests.ui_support import fill_draft, paste, static_text, wait_for, wait_for_run
from tuimail import dane, routing
from tuimail.ui.app import TuimailApp
from tuimail.ui.history import SentState

MX = "127.0.0.13"
WIDE = (120, 40)


@pytest.fixture(scope="module")
def mx_cert(certs: Certs) -> trustme.LeafCert:
    return certs.ca.issue_cert("mx.app.test")


@pytest.fixture(scope="module")
def dns_server(
    tmp_path_factory: pytest.TempPathFactory, mx_cert: trustme.LeafCert
) -> Iterator[DnsServer]:
    der = ssl.PEM_cert_to_DER_cert(mx_cert.cert_chain_pems[0].bytes().decode())
    record = dane.record_for(der)

    def zones(server: DnsServer) -> None:
        server.add_zone(
            "app.test",
            ["@ MX 10 mx", f"mx A {MX}", f"_25._tcp.mx TLSA {record.text(short=False)}"],
            signed=True,
        )

    server = started_dns(tmp_path_factory.mktemp("dns"), zones)
    yield server
    server.stop()


def _config(isolated_dirs: Path, dns_server: DnsServer, ehlo: str) -> None:
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        f'[dns]\nservers = ["{dns_server.server}"]\n[direct]\nehlo_name = "{ehlo}"\n'
    )


async def _compose_direct(app: TuimailApp, pilot: Pilot[Any]) -> None:
    """Choose "direct" (Select refuses a value it does not offer) and write a message."""
    select = app.screen.query_one("#profile", Select)
    select.value = "direct"
    await pilot.pause()
    assert static_text(app, "#security-badge").strip() == "per domain"
    assert "each recipient domain's MX hosts" in static_text(app, "#profile-warning")
    await pilot.click("#input-from")
    await paste(pilot, "alice@example.test")
    await fill_draft(pilot, to="bob@app.test", subject="Hello", body="Hi Bob")


async def test_direct_profile_sends_to_the_mx_with_dane(
    servers: ServerThread,
    dns_server: DnsServer,
    mx_cert: trustme.LeafCert,
    isolated_dirs: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.test_direct_mx import free_mx_port

    port = free_mx_port()
    monkeypatch.setattr(routing, "SMTP_PORT", port)
    _config(isolated_dirs, dns_server, "out.example.test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    mx_cert.configure_cert(context)
    sink = Sink()
    listen(servers, MX, port, sink, tls_context=context)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await _compose_direct(app, pilot)
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        assert [m.rcpt_tos for m in sink.messages] == [["bob@app.test"]]
        texts = [entry.text for entry in run.transcript]
        assert any(t.startswith("direct: MX of app.test: 10 mx.app.test") for t in texts)
        assert any(
            t.startswith("DANE for mx.app.test: 1 usable TLSA record (3 1 1 ") for t in texts
        )
        assert any(t.startswith("DANE: the server's certificate matches TLSA") for t in texts)
        assert "EHLO out.example.test" in texts
        assert run.outbox_state is SentState.SENT
        await wait_for(
            pilot, lambda: static_text(app, "#send-status").startswith("✓ sent"), "the outcome"
        )


async def test_direct_profile_refuses_an_ehlo_name_servers_refuse(
    servers: ServerThread, dns_server: DnsServer, isolated_dirs: Path
) -> None:
    _config(isolated_dirs, dns_server, "localhost")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await _compose_direct(app, pilot)
        await pilot.press("ctrl+s")
        await wait_for(
            pilot,
            lambda: static_text(app, "#send-status").startswith("Not sent"),
            "the refusal",
        )
        status = static_text(app, "#send-status")
        assert (
            "config.toml [direct] ehlo_name: the EHLO name 'localhost' is not a fully "
            "qualified domain name" in status
        )
        assert "The draft is kept" in status
        assert not app.screen.query_one("#compose-form").disabled
        assert app.model.history.runs == []
