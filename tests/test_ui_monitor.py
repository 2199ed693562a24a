"""The monitor screen: probing on a schedule, history, state changes, targets."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from tests.conftest import Certs
from tests.dns_support import DnsServer, started_dns
from tests.smtpservers import ServerThread, Sink
from tests.test_direct_mx import free_mx_port, listen
from tests.ui_support import open_monitor, wait_for
from tuimail.probe import ProbeReport, ProbeTarget, Status, Thresholds
from tuimail.profiles import Profile, ProfileStore, Security
from tuimail.stages import Stage
from tuimail.targets import TargetStore
from tuimail.transcript import Direction, Entry, EventKind, Transcript
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.monitor import LatencyHistory
from tuimail.ui.widgets.transcript_view import TranscriptView

SnapCompare = Callable[..., bool]


class Changing(Sink):
    """Offers CHUNKING once ``grow`` is set: a server whose capabilities changed."""

    grow = False

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-CHUNKING", responses[-1]] if self.grow else responses


def manual_monitor(isolated_dirs: Path) -> None:
    """Probe only on request, so tests decide when a round runs."""
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text("[monitor]\ninterval = 0\nconcurrency = 5\n")


async def test_probes_show_status_history_and_state_changes(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    manual_monitor(isolated_dirs)
    handler = Changing()
    port = servers.smtp(handler)
    ProfileStore().save(Profile(name="local", host="127.0.0.1", port=port, security=Security.NONE))
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        key = f"profile:local@127.0.0.1:{port}/none"
        assert [t.key for t in screen.targets] == [key]
        await pilot.press("r")
        await wait_for(pilot, lambda: key in screen.latest, "the first probe")
        table = screen.query_one("#targets", DataTable)
        assert str(table.get_row(key)[0]) == "OK"
        view = screen.query_one("#probe-view", TranscriptView)
        assert view.transcript is screen.latest[key].transcript
        assert any(e.text.startswith("EHLO") for e in view.transcript.entries)

        handler.grow = True
        await pilot.press("r")
        await wait_for(
            pilot, lambda: screen.latest[key].status is Status.WARNING, "the second probe"
        )
        assert str(table.get_row(key)[0]) == "WARNING"
        notices = [n.message for n in app._notifications if n.title == "Monitor"]
        assert any("OK → WARNING" in n and "+CHUNKING" in n for n in notices), notices
        assert len(screen.query_one("#latency", LatencyHistory).samples) == 2

    history = json.loads((isolated_dirs / "state" / "tuimail" / "probe-history.json").read_text())
    assert [r["status"] for r in history["targets"][key]] == ["OK", "WARNING"]

    # The history survives a restart: the chart and the last status are there at once.
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        assert str(screen.query_one("#targets", DataTable).get_row(key)[0]) == "WARNING"
        assert len(screen.query_one("#latency", LatencyHistory).samples) == 2


async def test_unreachable_target_is_critical(isolated_dirs: Path) -> None:
    import socket

    manual_monitor(isolated_dirs)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    TargetStore().save(
        ProbeTarget(host="127.0.0.1", port=port, security=Security.NONE, name="gone")
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        await pilot.press("r")
        key = f"target:gone@127.0.0.1:{port}/none"
        await wait_for(pilot, lambda: key in screen.latest, "the probe")
        assert screen.latest[key].status is Status.CRITICAL
        detail = str(screen.query_one("#monitor-detail").render())
        assert "unreachable" in detail


async def test_targets_are_added_and_removed_from_the_screen(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    manual_monitor(isolated_dirs)
    port = servers.smtp(Sink())
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        assert screen.targets == []
        await pilot.press("a")
        await wait_for(pilot, lambda: pilot.app.screen.query("#target-host"), "the dialog")
        dialog = pilot.app.screen
        dialog.query_one("#target-name", Input).value = "relay"
        dialog.query_one("#target-host", Input).value = "127.0.0.1"
        dialog.query_one("#target-port", Input).value = str(port)
        from textual.widgets import Select

        dialog.query_one("#target-security", Select).value = "none"
        await pilot.click("#target-save")
        await wait_for(pilot, lambda: len(screen.targets) == 1, "the new target")
        key = f"target:relay@127.0.0.1:{port}/none"
        await wait_for(pilot, lambda: key in screen.latest, "the new target's first probe")
        assert screen.latest[key].status is Status.OK
        assert list(TargetStore().load()) == ["relay"]
        await pilot.press("d")
        await wait_for(pilot, lambda: screen.targets == [], "the target to go")
        assert TargetStore().load() == {}


def fixed_report(
    target: ProbeTarget, status: Status, total: float, reasons: list[str]
) -> ProbeReport:
    transcript = Transcript()
    for elapsed, direction, text, kind in [
        (0.000, Direction.EVENT, "probing relay.example.test:25 (STARTTLS)", EventKind.INFO),
        (0.012, Direction.SERVER, "220 relay.example.test ESMTP", None),
        (0.013, Direction.CLIENT, "EHLO monitor", None),
        (0.020, Direction.SERVER, "250 relay.example.test", None),
        (0.021, Direction.CLIENT, "QUIT", None),
        (0.025, Direction.SERVER, "221 Bye", None),
    ]:
        transcript.entries.append(Entry(elapsed, direction, text, kind=kind))
    report = ProbeReport(target, transcript, started=time.mktime((2025, 3, 1, 9, 30, 0, 0, 0, -1)))
    report.status, report.reasons, report.reached = status, reasons, True
    report.timings = {Stage.CONNECT: total / 4, Stage.GREETING: total / 4, Stage.EHLO: total / 4}
    report.quit_seconds = total / 4
    return report


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_monitor_snapshot(
    snap_compare: SnapCompare, isolated_dirs: Path, size: tuple[int, int]
) -> None:
    manual_monitor(isolated_dirs)
    store = TargetStore()
    relay = ProbeTarget(host="relay.example.test", port=25, name="relay")
    backup = ProbeTarget(
        host="backup.example.test", port=465, security=Security.TLS, name="backup",
        thresholds=Thresholds(warn_seconds=0.05, crit_seconds=1),
    )  # fmt: skip
    store.save(relay)
    store.save(backup)
    relay, backup = store.load()["relay"], store.load()["backup"]  # as the monitor has them

    async def feed(pilot: Pilot[Any]) -> None:
        screen = await open_monitor(pilot)
        screen._record(fixed_report(relay, Status.OK, 0.04, []))
        screen._record(
            fixed_report(backup, Status.WARNING, 0.08, ["slow: 0.080s (warning at 0.05s)"])
        )
        screen.query_one("#targets", DataTable).move_cursor(row=0)
        await pilot.pause()

    app = TuimailApp(start_sandbox=False)
    assert snap_compare(app, terminal_size=size, run_before=feed)


@pytest.fixture(scope="module")
def watched_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    """A domain whose MX names exist only in the test DNS (unbound before nsd)."""

    def zones(server: DnsServer) -> None:
        server.add_zone(
            "watched.test",
            [
                "@ MX 20 mx2",
                "@ MX 10 mx1",
                "@ MX 30 gone",
                "mx1 A 127.0.0.2",
                "mx2 A 127.0.0.3",
            ],
        )

    server = started_dns(tmp_path_factory.mktemp("dns"), zones)
    yield server
    server.stop()


async def test_a_mail_domain_is_watched_through_its_mx_hosts(
    watched_dns: DnsServer, servers: ServerThread, certs: Certs, isolated_dirs: Path
) -> None:
    """The MX hosts and their addresses come from config.toml's ``[dns] servers``, not
    the system's resolver: each host is probed at that address, its name kept for TLS."""
    port = free_mx_port()
    for address, host in (("127.0.0.2", "mx1.watched.test"), ("127.0.0.3", "mx2.watched.test")):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certs.ca.issue_cert(host).configure_cert(context)
        listen(servers, address, port, Sink(), tls_context=context)
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(
        f'[monitor]\ninterval = 0\n\n[dns]\nservers = ["{watched_dns.server}"]\n'
    )
    (config / "targets.toml").write_text(
        f'[targets.domain]\nmx = "watched.test"\nport = {port}\nsecurity = "starttls"\n'
        f'ca_file = "{certs.ca_file}"\n'
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        await pilot.press("r")
        keys = [f"target:domain@{h}.watched.test:{port}/starttls" for h in ("mx1", "mx2", "gone")]
        await wait_for(pilot, lambda: all(k in screen.latest for k in keys), "the MX hosts")
        mx1, mx2, gone = (screen.latest[k] for k in keys)
        for report, address in ((mx1, "127.0.0.2"), (mx2, "127.0.0.3")):
            assert report.status is Status.OK, report.reasons
            assert report.target.address == address
            assert report.tls is not None and report.tls.trust.hostname_matches
        assert gone.status is Status.CRITICAL
        assert gone.reasons == ["gone.watched.test has no address record (A or AAAA)"]
        table = screen.query_one("#targets", DataTable)
        labels = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert labels == [
            "domain",
            "domain MX 10 mx1.watched.test",
            "domain MX 20 mx2.watched.test",
            "domain MX 30 gone.watched.test",
        ]
        assert str(table.get_row(keys[2])[0]) == "CRITICAL"
