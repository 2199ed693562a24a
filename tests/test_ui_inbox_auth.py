"""F5's authentication check (``a``): DKIM, SPF and DMARC of a captured message, as a receiver sees them.

The keys and records are served by the real test DNS of tests/dns_support.py,
named in config.toml's ``[dns] servers`` as a user would; messages are
signed here with dkimpy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Label

from tests.dns_support import DnsServer, started_dns
from tests.spamd_support import GTUBE, Spamd, started_spamd
from tests.test_inbox_authcheck import OTHER_KEY, Key, signed
from tests.test_sandbox_port import write_config
from tests.test_ui_loop_io import file_calls_on_this_thread
from tests.test_ui_snapshots import SIZES, at, quiet_app, show_sandbox_with_a_message
from tests.ui_support import static_text, wait_for
from tuimail.ui.app import TuimailApp

SnapCompare = Any

KEY = Key()


def _zones(server: DnsServer) -> None:
    server.add_zone(
        "sandbox.test",
        [
            '@ TXT "v=spf1 ip4:192.0.2.0/24 -all"',
            '_dmarc TXT "v=DMARC1; p=quarantine"',
            KEY.zone_line("app._domainkey"),
        ],
    )


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    server = started_dns(tmp_path_factory.mktemp("dns"), _zones)
    yield server
    server.stop()


#: A message another program put in the Maildir: no session file, so its Return-Path counts.
ORDER = (
    b"From: Shop <orders@sandbox.test>\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: Your order has shipped\r\n"
    b"Date: Sat, 01 Mar 2025 09:21:00 +0000\r\n"
    b"Message-ID: <20250301092100.9@sandbox.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"It is on its way.\r\n"
)


def put_in_maildir(maildir: Path, raw: bytes, minute: int, tag: str) -> None:
    name = f"{int(at(9, minute, 0))}.M{minute}P{minute}Q{minute}.{tag}"
    (maildir / "new" / name).write_bytes(raw)


def configure(dns_server: DnsServer, extra: str = "") -> None:
    write_config(
        f'[dns]\nservers = ["{dns_server.address}:{dns_server.port}"]\n'
        f'[inbox.check]\nspf_ip = "192.0.2.25"\n{extra}'
    )


async def choose(pilot: Pilot[Any], subject: str) -> None:
    table = pilot.app.screen.query_one("#captured", DataTable)
    for row in range(table.row_count):
        if subject in str(table.get_row_at(row)[3]):
            table.move_cursor(row=row)
            return
    raise AssertionError(f"no row {subject!r}")


async def auth_view(pilot: Pilot[Any], words: str) -> str:
    app = pilot.app
    assert isinstance(app, TuimailApp)
    try:
        await wait_for(pilot, lambda: words in static_text(app, "#message-view"), words)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; shown: {static_text(app, '#message-view')!r}") from None
    return static_text(app, "#message-view")


async def test_a_checks_the_selected_message(
    dns_server: DnsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_dirs: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    key_file = isolated_dirs / "test-dkim.pem"
    key_file.write_bytes(OTHER_KEY.private_pem)
    configure(dns_server, f'dkim_keys = ["filekey._domainkey.sandbox.test={key_file}"]\n')
    app = quiet_app()  # reads config.toml before the loop runs
    with file_calls_on_this_thread(isolated_dirs) as log:
        async with app.run_test(size=(120, 40)) as pilot:
            await show_sandbox_with_a_message(pilot)
            await pilot.press("a")
            title = app.screen.query_one("#message-title", Label)
            assert "authentication check" in str(title.content)
            # Unsigned, sent by this app's sandbox session: its MAIL FROM is known.
            text = await auth_view(pilot, "Authentication-Results:")
            assert "DKIM none: the message carries no DKIM-Signature" in text
            assert "SPF pass: MAIL FROM you@sandbox.test, simulated from IP 192.0.2.25" in text
            assert "DMARC pass: From sandbox.test, policy p=quarantine" in text
            maildir = tmp_path / "maildir"
            good = signed(
                b"Return-Path: <bounce@sandbox.test>\r\n" + ORDER, "sandbox.test", "app", key=KEY
            )
            put_in_maildir(maildir, good, 21, "signed")
            tampered = good.replace(b"on its way", b"lost")
            put_in_maildir(maildir, tampered.replace(b"shipped", b"gone"), 22, "tampered")
            by_file = signed(ORDER, "sandbox.test", "filekey", key=OTHER_KEY)
            put_in_maildir(maildir, by_file.replace(b"shipped", b"left"), 23, "keyfile")
            table = app.screen.query_one("#captured", DataTable)
            await wait_for(pilot, lambda: table.row_count == 4, "the three new messages")
            # Another message chosen while the view is shown: it is checked too.
            await choose(pilot, "Your order has shipped")
            text = await auth_view(pilot, "DKIM pass: d=sandbox.test s=app, key from DNS")
            assert "MAIL FROM bounce@sandbox.test" in text
            assert "Return-Path" in text  # no session file: said so
            assert "dmarc=pass (p=quarantine) header.from=sandbox.test" in text
            await choose(pilot, "Your order has gone")
            text = await auth_view(pilot, "DKIM fail:")
            assert "the body hash does not match" in text
            await choose(pilot, "Your order has left")
            text = await auth_view(pilot, f"key from {key_file}")
            assert "DKIM fail:" in text  # a signed header was changed
            # t leaves the check, a comes back to it: kept, not asked again.
            await pilot.press("t")
            await auth_view(pilot, "It is on its way")
            await pilot.press("a")
            await auth_view(pilot, "Authentication-Results:")
    assert log.calls == []


async def test_a_bad_setting_is_said_not_raised(
    dns_server: DnsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    configure(dns_server, 'dkim_keys = ["/nowhere/key.pem"]\n')
    app = quiet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await show_sandbox_with_a_message(pilot)
        await pilot.press("a")
        text = await auth_view(pilot, "Not checked:")
        assert "[inbox.check] dkim_keys" in text and "/nowhere/key.pem" in text


@pytest.fixture(scope="module")
def spamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spamd]:
    server = started_spamd(tmp_path_factory.mktemp("spamd"))
    yield server
    server.stop()


async def test_spamd_scores_the_message_in_the_view(
    dns_server: DnsServer, spamd: Spamd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    configure(dns_server, f'spamd = "{spamd.address}"\n')
    app = quiet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await show_sandbox_with_a_message(pilot)
        await pilot.press("a")
        text = await auth_view(pilot, "Spam ham: not spam, score")
        assert f"spamd at {spamd.address}" in text
        put_in_maildir(tmp_path / "maildir", ORDER.replace(b"on its way", GTUBE.encode()), 21, "g")
        table = app.screen.query_one("#captured", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, "the GTUBE message")
        await choose(pilot, "Your order has shipped")
        text = await auth_view(pilot, "Spam spam: SPAM, score 1")
        assert "GTUBE" in text


@pytest.mark.parametrize("size", SIZES)
def test_sandbox_inbox_authentication_check(
    snap_compare: SnapCompare,
    size: tuple[int, int],
    dns_server: DnsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """F5's authentication view of a signed message: every verdict, then Authentication-Results."""
    monkeypatch.chdir(tmp_path)
    configure(dns_server)

    async def check(pilot: Pilot[Any]) -> None:
        await show_sandbox_with_a_message(pilot)
        good = signed(
            b"Return-Path: <bounce@sandbox.test>\r\n" + ORDER, "sandbox.test", "app", key=KEY
        )
        put_in_maildir(tmp_path / "maildir", good, 21, "signed")
        table = pilot.app.screen.query_one("#captured", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, "the signed message")
        await choose(pilot, "Your order has shipped")
        await auth_view(pilot, "It is on its way")
        await pilot.press("a")
        await auth_view(pilot, "Authentication-Results:")

    assert snap_compare(quiet_app(), terminal_size=size, run_before=check)
