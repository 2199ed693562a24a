"""The monitor's targets are profiles and extra targets, not addresses; its latency history
draws one mark per probe.

Real servers on 127.0.0.1 with trustme certificates (tests/conftest.py), a real DNS
server on loopback for MX lookups (tests/smtpservers.py), the real command line.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Input, Select, Static

from tests.cli_helpers import run_tuimail
from tests.conftest import Certs
from tests.smtpservers import ServerThread, Sink
from tests.ui_support import open_monitor, wait_for
from tuimail.probe import ProbeTarget
from tuimail.profiles import Profile, ProfileStore, Security
from tuimail.targets import TargetStore
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.monitor import MonitorScreen


def config_dir(isolated_dirs: Path) -> Path:
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True, exist_ok=True)
    return config


def manual_monitor(isolated_dirs: Path, extra: str = "") -> None:
    """Probe only on request, so the test decides when a round runs."""
    (config_dir(isolated_dirs) / "config.toml").write_text(f"[monitor]\ninterval = 0\n{extra}")


def history_file(isolated_dirs: Path) -> Path:
    return isolated_dirs / "state" / "tuimail" / "probe-history.json"


def two_profiles_on_one_server(port: int, certs: Certs) -> None:
    """One profile trusts the server's CA, the other knows only the system's store."""
    store = ProfileStore()
    store.save(Profile(name="trusting", host="127.0.0.1", port=port, ca_file=str(certs.ca_file)))
    store.save(Profile(name="untrusting", host="127.0.0.1", port=port))


def rows(screen: MonitorScreen) -> dict[str, str]:
    """Each row's label and status, as shown."""
    table = screen.query_one("#targets", DataTable)
    cells = [table.get_row_at(i) for i in range(table.row_count)]
    return {str(row[1]): str(row[0]) for row in cells}


def shown_line(pilot: Pilot[Any], widget: Widget) -> str:
    """What the terminal shows on ``widget``'s first line, inside its region."""
    region = widget.region
    strips = pilot.app.screen._compositor.render_strips()
    line = "".join(segment.text for segment in strips[region.y])
    return line[region.x : region.right]


async def probe_all(pilot: Pilot[Any], screen: MonitorScreen) -> None:
    """Press r and wait until every target has a report of this round."""
    before = dict(screen.latest)
    keys = [t.key for t in screen.targets if not t.mx]
    await pilot.press("r")
    await wait_for(
        pilot,
        lambda: all(k in screen.latest and screen.latest[k] is not before.get(k) for k in keys),
        "a probe of every target",
    )
    await pilot.pause()


async def test_two_profiles_on_one_server_are_two_rows_each_with_its_own_state(
    servers: ServerThread, certs: Certs, isolated_dirs: Path
) -> None:
    manual_monitor(isolated_dirs)
    port = servers.smtp(Sink(), tls_context=certs.good)
    two_profiles_on_one_server(port, certs)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        assert list(rows(screen)) == ["trusting", "untrusting"]
        await probe_all(pilot, screen)
        assert rows(screen) == {"trusting": "OK", "untrusting": "CRITICAL"}
        # Each row shows its own probe: the untrusting one says why it is CRITICAL.
        table = screen.query_one("#targets", DataTable)
        table.move_cursor(row=1)
        await pilot.pause()
        detail = str(screen.query_one("#monitor-detail", Static).render())
        assert "certificate" in detail, detail

    history = json.loads(history_file(isolated_dirs).read_text())["targets"]
    statuses = {key: [r["status"] for r in records] for key, records in history.items()}
    assert statuses == {
        f"profile:trusting@127.0.0.1:{port}/starttls": ["OK"],
        f"profile:untrusting@127.0.0.1:{port}/starttls": ["CRITICAL"],
    }

    # After a restart each row shows its own last state, before any probe.
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        assert rows(screen) == {"trusting": "OK", "untrusting": "CRITICAL"}


async def test_a_history_kept_by_address_is_read_and_carried_over_without_loss(
    servers: ServerThread, certs: Certs, isolated_dirs: Path
) -> None:
    """A history file written when targets were keyed by address still shows, and each
    profile on that server keeps it when it starts its own."""
    manual_monitor(isolated_dirs)
    port = servers.smtp(Sink(), tls_context=certs.good)
    two_profiles_on_one_server(port, certs)
    address = f"127.0.0.1:{port}/starttls"
    old = [{"started": 1_700_000_000.0 + i, "status": "OK", "total": 0.05} for i in range(3)]
    history_file(isolated_dirs).parent.mkdir(parents=True, exist_ok=True)
    history_file(isolated_dirs).write_text(json.dumps({"version": 1, "targets": {address: old}}))
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        assert rows(screen) == {"trusting": "OK", "untrusting": "OK"}  # the server's past
        await probe_all(pilot, screen)
        assert rows(screen) == {"trusting": "OK", "untrusting": "CRITICAL"}

    history = json.loads(history_file(isolated_dirs).read_text())["targets"]
    assert history[address] == old  # kept as it was
    for name, status in [("trusting", "OK"), ("untrusting", "CRITICAL")]:
        records = history[f"profile:{name}@{address}"]
        assert records[:3] == old and [r["status"] for r in records[3:]] == [status]


async def test_the_add_target_dialog_takes_a_mail_domain_and_a_ca_file(
    servers: ServerThread, certs: Certs, isolated_dirs: Path
) -> None:
    port = servers.smtp(Sink(), tls_context=certs.good)
    dns_port = servers.dns({"example.test": ["10 127.0.0.1."]})
    manual_monitor(isolated_dirs, f'dns_server = "127.0.0.1:{dns_port}"\n')
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: pilot.app.screen.query("#target-host"), "the dialog")
        dialog = pilot.app.screen
        forms = dialog.query_one("#target-forms", Static)
        assert "host:port" in str(forms.render())  # the forms the address takes, said
        dialog.query_one("#target-name", Input).value = "domain"
        dialog.query_one("#target-kind", Select).value = "mx"
        await pilot.pause()
        assert "mail domain" in str(forms.render())
        dialog.query_one("#target-host", Input).value = "example.test"
        dialog.query_one("#target-port", Input).value = str(port)
        missing = isolated_dirs / "no-such-ca.pem"
        dialog.query_one("#target-ca-file", Input).value = str(missing)
        await pilot.click("#target-save")
        await pilot.pause()
        error = str(dialog.query_one("#target-error").render())
        assert error == f"CA file: {missing} does not exist"  # the command line's words
        dialog.query_one("#target-ca-file", Input).value = str(certs.ca_file)
        # A button ignores a click while it still shows the last one (Textual's -active).
        save = dialog.query_one("#target-save")
        await wait_for(pilot, lambda: not save.has_class("-active"), "the Save button")
        await pilot.click("#target-save")
        mx_key = f"target:domain@127.0.0.1:{port}/starttls"
        await wait_for(pilot, lambda: mx_key in screen.latest, "the MX host's first probe")
        assert rows(screen) == {"domain": "MX", "domain MX 10 127.0.0.1": "OK"}
        screen.query_one("#targets", DataTable).move_cursor(row=0)
        await pilot.pause()
        title = str(screen.query_one("#latency-title", Static).render())
        assert title == "Latency history: on each MX host's row"
        # An MX host's row is the domain's: removing it says where, and removes nothing.
        screen.query_one("#targets", DataTable).move_cursor(row=1)
        await pilot.press("d")
        await pilot.pause()
        notices = [n.message for n in app._notifications]
        assert any("one of domain's MX hosts: remove the row domain" in n for n in notices)
        assert len(rows(screen)) == 2

    [saved] = TargetStore().load().values()
    assert (saved.host, saved.mx, saved.port, saved.ca_file) == (
        "example.test",
        True,
        port,
        str(certs.ca_file),
    )


async def test_the_add_target_dialog_takes_host_and_port_in_one_field(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    manual_monitor(isolated_dirs)
    port = servers.smtp(Sink())
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: pilot.app.screen.query("#target-host"), "the dialog")
        dialog = pilot.app.screen
        dialog.query_one("#target-name", Input).value = "relay"
        dialog.query_one("#target-host", Input).value = f"127.0.0.1:{port}"
        dialog.query_one("#target-security", Select).value = "none"
        await pilot.click("#target-save")
        await wait_for(pilot, lambda: rows(screen).get("relay") == "OK", "the relay's probe")
    assert TargetStore().load()["relay"].port == port


async def test_one_probe_is_one_mark_and_an_unreachable_probe_is_its_own_mark(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    manual_monitor(isolated_dirs)
    port = servers.smtp(Sink())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    store = TargetStore()
    store.save(ProbeTarget(host="127.0.0.1", port=port, security=Security.NONE, name="up"))
    store.save(ProbeTarget(host="127.0.0.1", port=closed, security=Security.NONE, name="gone"))
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        latency = screen.query_one("#latency")
        assert shown_line(pilot, latency).strip() == ""  # nothing probed: nothing drawn
        await probe_all(pilot, screen)
        table = screen.query_one("#targets", DataTable)
        table.move_cursor(row=0)
        await pilot.pause()
        assert shown_line(pilot, latency).strip() == "█"  # one probe, one mark
        table.move_cursor(row=1)
        await pilot.pause()
        assert shown_line(pilot, latency).strip() == "✗"  # not a latency
        title = str(screen.query_one("#latency-title", Static).render())
        assert "✗: did not reach the server (1)" in title
        table.move_cursor(row=0)
        await probe_all(pilot, screen)
        await probe_all(pilot, screen)
        await pilot.pause()
        marks = shown_line(pilot, latency).strip()
        assert len(marks) == 3 and "✗" not in marks and "█" in marks

    # From the history after a restart: the unreachable target has no latency.
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        table = screen.query_one("#targets", DataTable)
        assert str(table.get_row_at(1)[2]) == "—"
        table.move_cursor(row=1)
        await pilot.pause()
        assert shown_line(pilot, screen.query_one("#latency")).strip() == "✗✗✗"


def test_the_command_line_probes_the_monitors_targets_into_the_same_history(
    servers: ServerThread, certs: Certs, isolated_dirs: Path
) -> None:
    port = servers.smtp(Sink(), tls_context=certs.good)
    dns_port = servers.dns({"example.test": ["10 127.0.0.1."]})
    manual_monitor(isolated_dirs, f'dns_server = "127.0.0.1:{dns_port}"\n')  # as the monitor's
    two_profiles_on_one_server(port, certs)
    store = TargetStore()
    store.save(ProbeTarget(host="127.0.0.1", port=port, ca_file=str(certs.ca_file), name="relay"))
    store.save(ProbeTarget(host="example.test", port=port, mx=True, name="domain"))
    results = {
        name: run_tuimail("probe", option, name, "--nagios")
        for option, name in [
            ("--profile", "trusting"),
            ("--profile", "untrusting"),
            ("--target", "relay"),
            ("--target", "domain"),  # no CA file: its one MX host is not trusted
        ]
    }
    codes = {name: result.returncode for name, result in results.items()}
    assert codes == {"trusting": 0, "untrusting": 2, "relay": 0, "domain": 2}, results
    assert results["domain"].stdout.startswith(f"SMTP CRITICAL - 127.0.0.1:{port}")
    unknown = run_tuimail("probe", "--target", "nosuch")
    assert unknown.returncode == 3 and "relay" in unknown.stderr, unknown.stderr
    history = json.loads(history_file(isolated_dirs).read_text())["targets"]
    assert sorted(history) == sorted(
        f"{owner}@127.0.0.1:{port}/starttls"
        for owner in ["profile:trusting", "profile:untrusting", "target:relay", "target:domain"]
    )
