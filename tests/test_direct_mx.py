"""``tuimail send --direct``: a real process, real DNS (unbound before nsd), MX servers on loopback.

Each MX host is an aiosmtpd listener on its own loopback address
(127.0.0.2, 127.0.0.3, ...), all on one port (``--mx-port``); every name,
the MX hosts' addresses included, is answered by the unbound fixture.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from tests.cli_helpers import run_tuimail
from tests.conftest import Certs
from tests.dns_support import DnsServer, started_dns
from tests.smtpservers import BusyGreetingSMTP, ServerThread, Sink
from tuimail.cli import exitcodes
from tuimail.stages import Stage

EHLO = "client.example.test"


def _zones(server: DnsServer) -> None:
    server.add_zone(
        "pref.test",
        ["@ MX 20 mx2", "@ MX 10 mx1", "mx1 A 127.0.0.2", "mx2 A 127.0.0.3"],
    )
    server.add_zone("nomx.test", ["@ A 127.0.0.4"])
    server.add_zone("nullmx.test", ["@ MX 0 .", "@ A 127.0.0.4"])
    server.add_zone("tls.test", ["@ MX 10 mx", "mx A 127.0.0.5"])
    server.add_zone("tie.test", ["@ MX 10 a", "@ MX 10 b", "@ MX 5 first", "@ MX 20 last"])
    server.add_zone(
        "three.test",
        ["@ MX 10 mx1", "@ MX 20 mx2", "@ MX 30 mx3"]
        + [f"mx{n} A 127.0.0.{n + 1}" for n in (1, 2, 3)],
    )


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    server = started_dns(tmp_path_factory.mktemp("dns"), _zones)
    yield server
    server.stop()


@pytest.fixture
def mx_port() -> int:
    return free_mx_port()


def free_mx_port() -> int:
    """A port free on every test address (the MX hosts share it, as port 25 is shared)."""
    for _ in range(20):
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
            port = int(probe.getsockname()[1])
        if all(
            _free(address, port) for address in ("127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6")
        ):
            return port
    raise RuntimeError("no port free on the test addresses")


def _free(address: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def listen(
    servers: ServerThread,
    address: str,
    port: int,
    handler: Sink,
    server_class: type[SMTP] = SMTP,
    **smtp_kwargs: Any,
) -> None:
    """An aiosmtpd MX on ``address``:``port`` in the server thread."""

    def factory() -> SMTP:
        return server_class(handler, loop=servers.loop, hostname="mx.test", **smtp_kwargs)

    async def create() -> asyncio.Server:
        return await servers.loop.create_server(factory, address, port)

    server = asyncio.run_coroutine_threadsafe(create(), servers.loop).result(5)
    servers._servers.append(server)


def send_direct(dns_server: DnsServer, port: int, to: str, *extra: str) -> Any:
    return run_tuimail(
        "send",
        "--direct",
        "--dns-server",
        dns_server.server,
        "--mx-port",
        str(port),
        "--from",
        "alice@example.test",
        "--to",
        to,
        "--subject",
        "Hello",
        "--body",
        "Hi",
        *extra,
        timeout=60,
    )


def test_mx_in_preference_order(dns_server: DnsServer, servers: ServerThread, mx_port: int) -> None:
    first, second = Sink(), Sink()
    listen(servers, "127.0.0.2", mx_port, first)
    listen(servers, "127.0.0.3", mx_port, second)
    done = send_direct(dns_server, mx_port, "bob@pref.test", "--ehlo", EHLO)
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr
    assert [m.rcpt_tos for m in first.messages] == [["bob@pref.test"]]
    assert second.messages == []
    out = done.stdout
    assert "=== direct: MX of pref.test: 10 mx1.pref.test, 20 mx2.pref.test" in out
    assert f"=== direct: trying mx1.pref.test [127.0.0.2] port {mx_port} (preference 10)" in out
    assert f"EHLO {EHLO}" in out


def test_4xx_greeting_moves_to_next_mx(
    dns_server: DnsServer, servers: ServerThread, mx_port: int
) -> None:
    busy, second = Sink(), Sink()
    listen(servers, "127.0.0.2", mx_port, busy, BusyGreetingSMTP)
    listen(servers, "127.0.0.3", mx_port, second)
    done = send_direct(dns_server, mx_port, "bob@pref.test", "--ehlo", EHLO)
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr
    assert busy.messages == []
    assert [m.rcpt_tos for m in second.messages] == [["bob@pref.test"]]
    assert "=== direct: mx1.pref.test [127.0.0.2] failed for now" in done.stdout
    assert "=== direct: pref.test done through mx2.pref.test" in done.stdout


def test_4xx_to_the_recipient_moves_to_next_mx(
    dns_server: DnsServer, servers: ServerThread, mx_port: int
) -> None:
    greylisting = Sink(rcpt_replies={"bob@pref.test": "450 4.2.0 greylisted, try later"})
    second = Sink()
    listen(servers, "127.0.0.2", mx_port, greylisting)
    listen(servers, "127.0.0.3", mx_port, second)
    done = send_direct(dns_server, mx_port, "bob@pref.test", "--ehlo", EHLO)
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr
    assert greylisting.messages == []
    assert len(second.messages) == 1


def test_two_sessions_that_defer_end_the_attempt(
    dns_server: DnsServer, servers: ServerThread, mx_port: int
) -> None:
    # tuimail/routing.py MX_SESSION_LIMIT: as Postfix's smtp_mx_session_limit, two MX
    # that answer and defer the message mean a retry later, not the third MX now.
    deferring = {"bob@three.test": "450 4.2.0 greylisted, try later"}
    first, second, third = Sink(rcpt_replies=deferring), Sink(rcpt_replies=deferring), Sink()
    for n, sink in enumerate((first, second, third), start=2):
        listen(servers, f"127.0.0.{n}", mx_port, sink)
    done = send_direct(dns_server, mx_port, "bob@three.test", "--ehlo", EHLO)
    assert done.returncode == exitcodes.QUEUED, done.stdout + done.stderr
    assert third.messages == []
    assert "trying mx3.three.test" not in done.stdout
    assert "1 MX host of three.test skipped (2 sessions" in done.stdout


def test_refused_connection_moves_to_next_mx_and_none_left_queues(
    dns_server: DnsServer, servers: ServerThread, mx_port: int, isolated_dirs: Path
) -> None:
    # Nothing listens on either MX: the message stays queued, once.
    done = send_direct(dns_server, mx_port, "bob@pref.test", "--ehlo", EHLO)
    assert done.returncode == exitcodes.QUEUED, done.stdout + done.stderr
    assert "=== direct: mx1.pref.test [127.0.0.2] failed for now" in done.stdout
    assert "=== direct: mx2.pref.test [127.0.0.3] failed for now" in done.stdout
    assert "no MX host of pref.test took the message" in done.stdout
    # The second MX comes up; mx1 still refuses: the flush delivers through mx2, once.
    second = Sink()
    listen(servers, "127.0.0.3", mx_port, second)
    flushed = run_tuimail("outbox", "flush", "--all", "--verbose", timeout=60)
    assert len(second.messages) == 1, flushed.stdout + flushed.stderr
    # The retry keeps the MX order: mx1 (still refusing) first, then mx2.
    text = flushed.stdout
    assert text.index("trying mx1.pref.test") < text.index("trying mx2.pref.test"), text
    again = run_tuimail("outbox", "flush", timeout=60)
    assert again.returncode == exitcodes.OK, again.stdout + again.stderr
    assert len(second.messages) == 1


def test_no_mx_falls_back_to_the_address(
    dns_server: DnsServer, servers: ServerThread, mx_port: int
) -> None:
    sink = Sink()
    listen(servers, "127.0.0.4", mx_port, sink)
    done = send_direct(dns_server, mx_port, "carol@nomx.test", "--ehlo", EHLO)
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr
    assert [m.rcpt_tos for m in sink.messages] == [["carol@nomx.test"]]
    assert "nomx.test has no MX record; using its own address (RFC 5321 5.1)" in done.stdout
    assert f"=== direct: trying nomx.test [127.0.0.4] port {mx_port}\n" in done.stdout


def test_null_mx_is_a_permanent_failure(
    dns_server: DnsServer, servers: ServerThread, mx_port: int
) -> None:
    sink = Sink()  # listening on the domain's A record: never to be used
    listen(servers, "127.0.0.4", mx_port, sink)
    done = send_direct(dns_server, mx_port, "dave@nullmx.test", "--ehlo", EHLO)
    assert done.returncode == exitcodes.for_stage(Stage.CONNECT), done.stdout
    assert "nullmx.test accepts no mail: it publishes a null MX (RFC 7505)" in done.stdout
    assert "(permanent)" in done.stdout + done.stderr
    assert sink.messages == []


def test_opportunistic_tls_is_labelled_not_secure(
    dns_server: DnsServer, servers: ServerThread, mx_port: int, certs: Certs
) -> None:
    sink = Sink()
    listen(servers, "127.0.0.5", mx_port, sink, tls_context=certs.good)
    done = send_direct(dns_server, mx_port, "erin@tls.test", "--ehlo", EHLO)
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr
    assert len(sink.messages) == 1
    assert (
        "=== opportunistic TLS: STARTTLS with mx.tls.test, certificate not verified, "
        "not presented as secure" in done.stdout
    )
    assert "NOT VERIFIED" in done.stdout


def test_plaintext_mx_is_labelled(
    dns_server: DnsServer, servers: ServerThread, mx_port: int
) -> None:
    sink = Sink()
    listen(servers, "127.0.0.5", mx_port, sink)
    done = send_direct(dns_server, mx_port, "erin@tls.test", "--ehlo", EHLO)
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr
    assert "opportunistic TLS: mx.tls.test does not offer STARTTLS" in done.stdout


def test_ehlo_localhost_is_refused(
    dns_server: DnsServer, servers: ServerThread, mx_port: int
) -> None:
    sink = Sink()
    listen(servers, "127.0.0.2", mx_port, sink)
    done = send_direct(dns_server, mx_port, "bob@pref.test", "--ehlo", "localhost")
    assert done.returncode == exitcodes.USAGE, done.stdout + done.stderr
    assert "--ehlo: the EHLO name 'localhost' is not a fully qualified domain name" in done.stderr
    assert sink.messages == []


def test_equal_preferences_come_in_random_order(dns_server: DnsServer) -> None:
    from tuimail.mx import make_resolver
    from tuimail.routing import mail_hosts

    async def orders() -> set[tuple[str, ...]]:
        resolver = make_resolver([dns_server.server])
        seen = set()
        for _ in range(40):
            hosts = await mail_hosts("tie.test", resolver)
            seen.add(tuple(h.host for h in hosts))
        return seen

    seen = asyncio.run(orders())
    assert seen == {
        ("first.tie.test", "a.tie.test", "b.tie.test", "last.tie.test"),
        ("first.tie.test", "b.tie.test", "a.tie.test", "last.tie.test"),
    }


def test_config_names_the_dns_server(
    dns_server: DnsServer, servers: ServerThread, mx_port: int, isolated_dirs: Path
) -> None:
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(f'[dns]\nservers = ["{dns_server.server}"]\n')
    sink = Sink()
    listen(servers, "127.0.0.4", mx_port, sink)
    done = run_tuimail(
        "send", "--direct", "--mx-port", str(mx_port), "--ehlo", EHLO,
        "--from", "alice@example.test", "--to", "carol@nomx.test", "--body", "Hi",
    )  # fmt: skip
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr
    assert f"DNS from {dns_server.server}" in done.stdout
    assert len(sink.messages) == 1


def test_a_domain_that_failed_is_retried_alone(
    dns_server: DnsServer, servers: ServerThread, mx_port: int
) -> None:
    # nomx.test takes it now; pref.test is down: only pref.test is tried again, and once.
    up = Sink()
    listen(servers, "127.0.0.4", mx_port, up)
    done = send_direct(
        dns_server, mx_port, "bob@pref.test", "--to", "carol@nomx.test", "--ehlo", EHLO
    )
    assert done.returncode == exitcodes.QUEUED, done.stdout + done.stderr
    assert [m.rcpt_tos for m in up.messages] == [["carol@nomx.test"]]
    assert "refused (temporary) bob@pref.test: 451 pref.test: " in done.stderr
    later = Sink()
    listen(servers, "127.0.0.2", mx_port, later)
    flushed = run_tuimail("outbox", "flush", "--all", "--verbose", timeout=60)
    assert [m.rcpt_tos for m in later.messages] == [["bob@pref.test"]], (
        flushed.stdout + flushed.stderr
    )
    assert len(up.messages) == 1
    # Both domains got the same message.
    assert later.messages[0].content == up.messages[0].content


def test_config_names_the_ehlo_name(
    dns_server: DnsServer, servers: ServerThread, mx_port: int, isolated_dirs: Path
) -> None:
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        f'[dns]\nservers = ["{dns_server.server}"]\n[direct]\nehlo_name = "out.example.test"\n'
    )
    sink = Sink()
    listen(servers, "127.0.0.4", mx_port, sink)
    done = run_tuimail(
        "send", "--direct", "--mx-port", str(mx_port),
        "--from", "alice@example.test", "--to", "carol@nomx.test", "--body", "Hi",
    )  # fmt: skip
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr
    assert "EHLO out.example.test" in done.stdout
    # --ehlo still wins over the config.
    again = send_direct(dns_server, mx_port, "carol@nomx.test", "--ehlo", EHLO)
    assert f"EHLO {EHLO}" in again.stdout
    assert len(sink.messages) == 2


@pytest.mark.parametrize("name", ["localhost", "mailhost"])
def test_config_ehlo_name_that_servers_refuse_is_refused(
    dns_server: DnsServer, isolated_dirs: Path, name: str
) -> None:
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(f'[direct]\nehlo_name = "{name}"\n')
    done = send_direct(dns_server, 25, "carol@nomx.test")
    assert done.returncode == exitcodes.USAGE, done.stdout + done.stderr
    assert (
        f"config.toml [direct] ehlo_name: the EHLO name {name!r} is not a fully qualified "
        "domain name"
    ) in done.stderr
    assert "give one with --ehlo NAME or [direct] ehlo_name in config.toml" in done.stderr


def test_ehlo_without_a_dot_is_refused(dns_server: DnsServer) -> None:
    done = send_direct(dns_server, 25, "carol@nomx.test", "--ehlo", "mailhost")
    assert done.returncode == exitcodes.USAGE, done.stdout + done.stderr
    assert "--ehlo: the EHLO name 'mailhost' is not a fully qualified domain name" in done.stderr
