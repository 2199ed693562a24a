"""Attacks on ``tuimail send --direct`` (tuimail/routing.py, tuimail/mx.py) from a hostile
DNS server on loopback (tests/test_attack_check.py's HostileDns)."""

from __future__ import annotations

import time

import pytest

from tests.cli_helpers import run_tuimail
from tests.test_attack_check import HostileDns, hostile_dns

__all__ = ["hostile_dns"]  # the fixture, used by name


def direct(server: HostileDns, timeout: float = 300) -> tuple[int, str, float]:
    started = time.monotonic()
    result = run_tuimail(
        "send", "--direct", "--ehlo", "client.example.test",
        "--dns-server", f"127.0.0.1:{server.port}", "--mx-port", "1",
        "--from", "a@example.test", "--to", "b@evil.test", "--subject", "x", "--body", "y",
        timeout=timeout,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


@pytest.mark.parametrize("hostile_dns", ["many"], indirect=True)
def test_an_mx_list_of_1000_hosts_is_bounded(hostile_dns: HostileDns) -> None:
    code, output, spent = direct(hostile_dns)
    assert code == 75, output[-2000:]  # queued for a retry, as any temporary failure
    assert output.count("refused the connection") <= 20
    assert spent < 30, spent
    # tuimail/routing.py MX_ADDRESS_LIMIT: five addresses tried, the other hosts said.
    assert output.count("direct: trying mx") == 5, output[-2000:]
    assert "995 MX hosts of evil.test skipped" in output, output[-2000:]


@pytest.mark.parametrize("hostile_dns", ["silent"], indirect=True)
def test_a_dns_server_that_never_answers_fails_in_time(hostile_dns: HostileDns) -> None:
    code, output, spent = direct(hostile_dns, timeout=120)
    assert code != 0, output
    assert spent < 90, spent
    assert "Traceback" not in output


@pytest.mark.parametrize("hostile_dns", ["escapes"], indirect=True)
def test_an_mx_name_with_escapes_never_reaches_the_terminal(hostile_dns: HostileDns) -> None:
    _code, output, _spent = direct(hostile_dns, timeout=120)
    assert "\x1b" not in output and "\x07" not in output, repr(output)
