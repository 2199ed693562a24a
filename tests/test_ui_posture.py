"""F6: a mail domain's posture panel, and a notification when its MTA-STS id, TLSA
records or MX certificate changed since the last check (real DNS, a real MX)."""

from __future__ import annotations

import hashlib
import json
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from tests.conftest import Certs
from tests.dns_support import DnsServer, started_dns
from tests.smtpservers import ServerThread, Sink
from tests.test_check import _spki
from tests.test_direct_mx import free_mx_port, listen
from tests.ui_support import open_monitor, wait_for, wait_for_saves
from tuimail.posture.report import Item, PostureReport
from tuimail.probe import Status
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.monitor import PostureChecked, PosturePanel


@pytest.fixture(scope="module")
def mx_cert(certs: Certs) -> trustme.LeafCert:
    return certs.ca.issue_cert("mx.watch.test")


@pytest.fixture(scope="module")
def tlsa(mx_cert: trustme.LeafCert) -> str:
    return f"3 1 1 {hashlib.sha256(_spki(mx_cert)).hexdigest()}"


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory, tlsa: str) -> Iterator[DnsServer]:

    def zones(server: DnsServer) -> None:
        server.add_zone(
            "watch.test",
            [
                "@ MX 10 mx",
                "mx A 127.0.0.2",
                '@ TXT "v=spf1 mx -all"',
                '_mta-sts TXT "v=STSv1; id=2026new"',
                f"_25._tcp.mx TLSA {tlsa}",
            ],
            signed=True,
        )

    server = started_dns(tmp_path_factory.mktemp("dns"), zones)
    yield server
    server.stop()


async def test_posture_panel_and_changes_since_the_last_check(
    dns_server: DnsServer,
    servers: ServerThread,
    certs: Certs,
    mx_cert: trustme.LeafCert,
    tlsa: str,
    isolated_dirs: Path,
) -> None:
    port = free_mx_port()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    mx_cert.configure_cert(context)
    listen(servers, "127.0.0.2", port, Sink(), tls_context=context)
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(
        f'[monitor]\ninterval = 0\ndns_server = "{dns_server.server}"\n'
    )
    (config / "targets.toml").write_text(
        f'[targets.watch]\nmx = "watch.test"\nport = {port}\nsecurity = "starttls"\n'
        f'ca_file = "{certs.ca_file}"\n'
    )
    # What the last check saw: another policy id, another TLSA record, another certificate.
    kept = isolated_dirs / "state" / "tuimail" / "posture"
    kept.mkdir(parents=True)
    (kept / "watch.test.json").write_text(
        json.dumps({
            "mta_sts_id": "2025old",
            "tlsa": {"mx.watch.test": ["3 1 1 " + "00" * 32]},
            "certificates": {"mx.watch.test [127.0.0.2]": "ab" * 32},
        })
    )  # fmt: skip
    key = f"target:watch@watch.test:{port}/starttls"
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 50)) as pilot:
        screen = await open_monitor(pilot)
        table = screen.query_one("#targets", DataTable)
        table.move_cursor(row=0)
        await pilot.pause()
        panel = screen.query_one("#posture", PosturePanel)
        assert panel.display
        await pilot.press("r")
        await wait_for(pilot, lambda: key in screen.posture, "the posture check", timeout=30)
        report = screen.posture[key]
        assert report.item("mta-sts").details["id"] == "2026new"
        assert report.item("dane").details["matches"] == {"mx.watch.test [127.0.0.2]": True}
        notices = [n.message for n in app._notifications if n.title == "Posture"]
        assert len(notices) == 3, notices
        assert any("the mta-sts id of the policy changed (2025old → 2026new)" in n for n in notices)
        assert any("the tlsa of mx.watch.test changed" in n for n in notices)
        assert any("the certificate of mx.watch.test [127.0.0.2] changed" in n for n in notices)
        await pilot.pause()
        shown = str(panel.query_one("#posture-text", Static).render())
        assert "watch.test: " in shown
        assert "smtp mx.watch.test [127.0.0.2]" in shown
        assert "dane" in shown
        # The new fingerprint is kept; the next round finds nothing changed.
        await wait_for_saves(pilot)
        saved = json.loads((kept / "watch.test.json").read_text())
        assert saved["mta_sts_id"] == "2026new"
        assert saved["tlsa"] == {"mx.watch.test": [tlsa]}
        checked_first = report
        await pilot.press("r")
        await wait_for(
            pilot, lambda: screen.posture[key] is not checked_first, "the second check", timeout=30
        )
        notices = [n.message for n in app._notifications if n.title == "Posture"]
        assert len(notices) == 3, notices
        # An MX host's row (below the domain's) hides the panel.
        assert table.row_count == 2
        table.move_cursor(row=1)
        await pilot.pause()
        assert not panel.display


def _fixed_report() -> PostureReport:
    """A domain's posture as data, fixed for the picture (no DNS, no clock)."""
    report = PostureReport("shop.example", started=0.0, seconds=1.25)
    mx = Item("mx", details={"dnssec": False, "hosts": [
        {"preference": 10, "host": "mx.shop.example",
         "addresses": [{"address": "192.0.2.25", "ptr": ["mx.shop.example"], "fcrdns": True}]},
    ]})  # fmt: skip
    smtp = Item(
        "smtp mx.shop.example [192.0.2.25]",
        details={"reached": True, "tls_version": "TLSv1.3", "certificate_days_left": 12},
    )
    smtp.problem(Status.WARNING, "the certificate expires in 12 days")
    spf = Item("spf", details={"lookups": 4, "void_lookups": 0})
    dmarc = Item(
        "dmarc",
        details={"policy": "none", "subdomain_policy": "none", "pct": 100, "rua": [], "ruf": []},
    )
    dmarc.problem(Status.WARNING, "p=none: mail failing DMARC is only reported, not refused")
    sts = Item("mta-sts")
    sts.problem(Status.WARNING, "no MTA-STS record: senders may deliver without verified TLS")
    dane = Item("dane", notes=["no MX host publishes TLSA records (no DANE)"])
    report.items = [mx, smtp, spf, dmarc, Item("tls-rpt"), sts, dane]
    return report


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_posture_panel_snapshot(
    snap_compare: Callable[..., bool], isolated_dirs: Path, size: tuple[int, int]
) -> None:
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text("[monitor]\ninterval = 0\n")
    (config / "targets.toml").write_text('[targets.shop]\nmx = "shop.example"\n')

    async def feed(pilot: Pilot[Any]) -> None:
        screen = await open_monitor(pilot)
        key = "target:shop@shop.example:25/starttls"
        screen._posture_checked(PostureChecked(key, _fixed_report(), []))
        screen.query_one("#targets", DataTable).move_cursor(row=0)
        await pilot.pause()

    assert snap_compare(TuimailApp(start_sandbox=False), terminal_size=size, run_before=feed)
