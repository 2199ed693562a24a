"""F6: a certificate that changed while the monitor could not see it is still noticed.

The monitor keeps the posture it last saw (tuimail/posture/state.py). A
round in which the MX did not answer has no certificate to keep; the one
seen before must stay kept, or the next round, with a certificate someone
swapped meanwhile, compares with nothing and says nothing.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from textual.widgets import DataTable

from tests.conftest import Certs
from tests.dns_support import DnsServer, started_dns
from tests.smtpservers import ServerThread, Sink
from tests.test_direct_mx import free_mx_port, listen
from tests.test_ui_posture import dns_server, mx_cert, tlsa
from tests.ui_support import open_monitor, wait_for, wait_for_saves
from tuimail.ui.app import TuimailApp

__all__ = ["dns_server", "mx_cert", "tlsa"]  # the fixtures, used by name


async def test_a_certificate_swapped_while_the_mx_was_down_is_noticed(
    dns_server: object,
    servers: ServerThread,
    certs: Certs,
    mx_cert: trustme.LeafCert,
    tlsa: str,
    isolated_dirs: Path,
) -> None:
    server = dns_server.server  # type: ignore[attr-defined]
    port = free_mx_port()
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(f'[monitor]\ninterval = 0\ndns_server = "{server}"\n')
    (config / "targets.toml").write_text(
        f'[targets.watch]\nmx = "watch.test"\nport = {port}\nsecurity = "starttls"\n'
        f'ca_file = "{certs.ca_file}"\n'
    )
    # What an earlier round saw: the same policy and TLSA, another certificate.
    kept = isolated_dirs / "state" / "tuimail" / "posture"
    kept.mkdir(parents=True)
    old = "ab" * 32
    (kept / "watch.test.json").write_text(
        json.dumps({
            "mta_sts_id": "2026new",
            "tlsa": {"mx.watch.test": [tlsa]},
            "certificates": {"mx.watch.test [127.0.0.2]": old},
        })
    )  # fmt: skip
    key = f"target:watch@watch.test:{port}/starttls"
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 50)) as pilot:
        screen = await open_monitor(pilot)
        screen.query_one("#targets", DataTable).move_cursor(row=0)
        await pilot.pause()
        # A round with the MX down: no certificate seen, nothing to say.
        await pilot.press("r")
        await wait_for(pilot, lambda: key in screen.posture, "the first check", timeout=30)
        first = screen.posture[key]
        assert [n for n in app._notifications if n.title == "Posture"] == []
        await wait_for_saves(pilot)
        saved = json.loads((kept / "watch.test.json").read_text())
        assert saved["certificates"] == {"mx.watch.test [127.0.0.2]": old}, saved
        # The MX is back, with another certificate than the one seen before the outage.
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        mx_cert.configure_cert(context)
        listen(servers, "127.0.0.2", port, Sink(), tls_context=context)
        await pilot.press("r")
        await wait_for(
            pilot, lambda: screen.posture[key] is not first, "the second check", timeout=30
        )
        notices = [n.message for n in app._notifications if n.title == "Posture"]
        assert len(notices) == 1, notices
        assert "the certificate of mx.watch.test [127.0.0.2] changed (abababab" in notices[0]


@pytest.fixture(scope="module")
def bare_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    # Signed, so "no TLSA records" is a validated answer, not a failed lookup.
    def zones(server: DnsServer) -> None:
        server.add_zone("bare.test", ["@ MX 10 mx", "mx A 127.0.0.2"], signed=True)

    server = started_dns(tmp_path_factory.mktemp("dns"), zones)
    yield server
    server.stop()


async def test_tlsa_records_removed_are_a_change(bare_dns: DnsServer, isolated_dirs: Path) -> None:
    port = free_mx_port()
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(
        f'[monitor]\ninterval = 0\ndns_server = "{bare_dns.server}"\n'
    )
    (config / "targets.toml").write_text(
        f'[targets.bare]\nmx = "bare.test"\nport = {port}\nsecurity = "starttls"\n'
    )
    # An earlier round saw a TLSA record; DNS now says, validated, that there is none.
    kept = isolated_dirs / "state" / "tuimail" / "posture"
    kept.mkdir(parents=True)
    (kept / "bare.test.json").write_text(
        json.dumps({"mta_sts_id": None, "tlsa": {"mx.bare.test": ["3 1 1 " + "00" * 32]},
                    "certificates": {}})
    )  # fmt: skip
    key = f"target:bare@bare.test:{port}/starttls"
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 50)) as pilot:
        screen = await open_monitor(pilot)
        screen.query_one("#targets", DataTable).move_cursor(row=0)
        await pilot.pause()
        await pilot.press("r")
        await wait_for(pilot, lambda: key in screen.posture, "the check", timeout=30)
        notices = [n.message for n in app._notifications if n.title == "Posture"]
        assert len(notices) == 1, notices
        assert "the tlsa of mx.bare.test changed (3 1 1 0000" in notices[0]
        assert notices[0].endswith("→ none)")
        await wait_for_saves(pilot)
        saved = json.loads((kept / "bare.test.json").read_text())
        assert saved["tlsa"] == {"mx.bare.test": []}
