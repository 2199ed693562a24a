"""Attacks on the inbox's authentication check (tuimail/inbox/authcheck.py) with
hostile DKIM keys and signatures, through ``tuimail inbox show`` as a real process.

dkimpy checks RSA signatures in pure Python (``pow``): a key record whose
modulus and public exponent are each tens of thousands of bits costs minutes
of CPU for one signature, in a thread the check's deadline cannot stop, and
``inbox show`` would wait for it before exiting. Such a key is refused in
words before dkimpy computes anything with it.
"""

from __future__ import annotations

import base64
import secrets
import socket
import subprocess
import time
from pathlib import Path

import dkim

from tests.cli_helpers import TUIMAIL
from tests.test_inbox_authcheck import KEY, message
from tests.test_protection_view import _captured, _ids
from tuimail.inbox import authcheck


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def _integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def hostile_record(modulus_bits: int, exponent_bits: int) -> str:
    """A DKIM RSA key record with a huge modulus and public exponent (both odd)."""
    n = secrets.randbits(modulus_bits) | 1 | (1 << (modulus_bits - 1))
    e = secrets.randbits(exponent_bits) | 1 | (1 << (exponent_bits - 1))
    rsa_oid = bytes.fromhex("06092a864886f70d0101010500")
    spki = _der(
        0x30,
        _der(0x30, rsa_oid) + _der(0x03, b"\0" + _der(0x30, _integer(n) + _integer(e))),
    )
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()


def _closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _show(message_id: str, *extra: str, timeout: float = 40) -> tuple[str, float]:
    started = time.monotonic()
    try:
        done = subprocess.run(
            [TUIMAIL, "inbox", "show", message_id, "--dns-timeout", "1",
             "--dns-server", f"127.0.0.1:{_closed_udp_port()}", *extra],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise AssertionError(f"inbox show still running after {timeout:g} s") from None
    assert done.returncode == 0, done.stderr
    return done.stdout, time.monotonic() - started


def test_a_costly_dkim_key_is_refused_in_time(isolated_dirs: Path, tmp_path: Path) -> None:
    raw = message()
    signed = dkim.sign(raw, b"sel", b"example.test", KEY.private_pem) + raw
    _captured(signed)
    key_file = tmp_path / "hostile.txt"
    key_file.write_text(hostile_record(120_000, 120_000))  # about 40 kB of record
    stdout, took = _show(_ids()["Your order"], "--dkim-key", str(key_file))
    assert took < 30, f"inbox show took {took:.0f} s"
    dkim_lines = [line for line in stdout.splitlines() if "DKIM" in line]
    assert any("permerror" in line for line in dkim_lines), stdout
    assert "too large" in stdout, stdout


def test_a_thousand_signatures_and_ten_thousand_signed_headers(isolated_dirs: Path) -> None:
    """1,000 DKIM-Signature fields, the first naming 10,000 headers: eight are checked,
    in time, each with a verdict in words."""
    raw = message()
    many = dkim.sign(
        raw, b"sel", b"example.test", KEY.private_pem, include_headers=[b"from"] * 10_000
    )
    more = b"".join(
        b"DKIM-Signature: v=1; a=rsa-sha256; d=example.test; s=sel%d; h=from; bh=AA; b=AA\r\n" % i
        for i in range(1000)
    )
    _captured(many + more + raw)
    (only,) = _ids().values()  # the index reads a bounded head: no subject said
    stdout, took = _show(only, "--dkim-key", str(_key_file(isolated_dirs)))
    assert took < 30, f"inbox show took {took:.0f} s"
    assert "dkim=pass (key from" in stdout, stdout[:2000]
    assert stdout.count("dkim=") == authcheck.MAX_SIGNATURES, stdout[:2000]
    assert "b= value is not valid base64" in stdout


def _key_file(home: Path) -> Path:
    path = home / "key.txt"
    path.write_text(KEY.record)
    return path


# -- a hostile spamd (tuimail/inbox/spamc.py) ---------------------------------------------------


def _hostile_spamd(behaviour: str) -> tuple[int, object]:
    """A spamd on a free loopback port that answers as ``behaviour`` says, in a thread."""
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(30)
                try:
                    connection.recv(65536)
                    if behaviour == "trickle":
                        for byte in b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 9.0 / 5.0\r\n" * 100:
                            connection.sendall(bytes([byte]))
                            time.sleep(0.05)
                    elif behaviour == "flood":  # a gigabyte without a line end, as fast as taken
                        chunk = b"S" * 65536
                        for _ in range(16384):
                            connection.sendall(chunk)
                    elif behaviour == "stall":
                        connection.sendall(
                            b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 9.0 / 5.0\r\n"
                            b"Content-length: 60000\r\n\r\nRULE_A,"
                        )
                        time.sleep(30)
                    elif behaviour == "escapes":
                        rules = b"\x1b]0;pwned\x07,\xe2\x80\xaeEVIL," + b"R" * 60000 + b",A" * 1000
                        connection.sendall(
                            b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 9.0 / 5.0\r\n"
                            b"Content-length: %d\r\n\r\n" % len(rules) + rules
                        )
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


def test_a_trickling_flooding_or_stalling_spamd_ends_in_time_in_words() -> None:
    import asyncio
    import resource

    from tuimail.inbox import spamc

    for behaviour, words in (
        ("trickle", "did not answer within 2 s"),
        ("flood", "sent a line longer than"),
        ("stall", "did not answer within 2 s"),
    ):
        port, _thread = _hostile_spamd(behaviour)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        try:
            asyncio.run(spamc.symbols(b"Subject: x\r\n\r\nhi\r\n", "127.0.0.1", port, timeout=2))
        except spamc.SpamdError as exc:
            assert words in str(exc), (behaviour, str(exc))
        else:
            raise AssertionError(f"{behaviour}: a verdict from a hostile spamd")
        assert time.monotonic() - started < 15, behaviour  # hostile ones take 30 s or more
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024


def test_spamd_rules_with_escapes_never_reach_the_terminal(isolated_dirs: Path) -> None:
    port, _thread = _hostile_spamd("escapes")
    _captured(message())
    stdout, _took = _show(_ids()["Your order"], "--spamd", f"127.0.0.1:{port}")
    assert "\x1b" not in stdout and "\x07" not in stdout and "\u202e" not in stdout
    assert "score 9 (threshold 5" in stdout, stdout[:2000]
    assert "R" * 100 not in stdout, "a 60 kB rule name reached the output whole"
    assert stdout.count(", A") < 200, "a thousand rule names were all shown"


# -- SPF macros (tuimail/inbox/spf.py) -------------------------------------------------------------

#: A sender domain of 120 one-letter labels: each %{d} adds 245 characters and 121 dots.
LONG_DOMAIN = ".".join(["a"] * 120) + ".bomb.test"


def _txt_line(owner: str, record: str) -> str:
    pieces = [record[i : i + 250] for i in range(0, len(record), 250)]
    return f"{owner} TXT " + " ".join(f'"{piece}"' for piece in pieces)


def test_spf_macro_blowup_is_bounded_in_time(isolated_dirs: Path, tmp_path: Path) -> None:
    """``exists:`` followed by 14,000 ``%{d}`` of a 245-character domain (a 56 kB record):
    each label dropped to fit 253 characters copied megabytes (over a minute), on the event loop where
    the check's deadline cannot interrupt it. Now: a permerror in words, at once."""
    from tests.dns_support import DnsServer, started_dns

    record = "v=spf1 exists:" + "%{d}" * 14000 + " -all"
    owner = LONG_DOMAIN.removesuffix(".bomb.test")

    def zones(dns_server: DnsServer) -> None:
        dns_server.add_zone("bomb.test", [_txt_line(owner, record), "@ A 192.0.2.1"])

    server = started_dns(tmp_path / "dns", zones)
    try:
        raw = f"Return-Path: <x@{LONG_DOMAIN}>\r\n".encode() + message()
        _captured(raw)
        done = subprocess.run(
            [TUIMAIL, "inbox", "show", _ids()["Your order"], "--spf-ip", "192.0.2.1",
             "--dns-server", f"{server.address}:{server.port}", "--json"],
            capture_output=True, text=True, timeout=40,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise AssertionError("inbox show still running after 40 s") from None
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    import json

    spf = json.loads(done.stdout)["authentication"]["spf"]
    assert spf["result"] == "permerror", spf
    assert "expands to over 65,536 characters" in spf["reason"], spf
    assert len(spf["reason"]) < 300


def test_junk_signatures_waiting_on_dns_do_not_hide_a_passing_one(isolated_dirs: Path) -> None:
    """A valid signature first (its key from a file), then seven whose keys must be asked of
    a DNS server that never answers: the part's deadline ends the wait, and the verdict
    already found (pass) is still said, with the rest a temperror."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    silent.bind(("127.0.0.1", 0))
    try:
        raw = message()
        good = dkim.sign(raw, b"sel", b"example.test", KEY.private_pem)
        junk = b"".join(
            dkim.sign(raw, b"junk%d" % i, b"example.test", KEY.private_pem) for i in range(7)
        )
        _captured(good + junk + raw)
        key_file = isolated_dirs / "key.txt"
        key_file.write_text(KEY.record)
        started = time.monotonic()
        done = subprocess.run(
            [TUIMAIL, "inbox", "show", _ids()["Your order"], "--dns-timeout", "1",
             "--dns-server", f"127.0.0.1:{silent.getsockname()[1]}",
             "--dkim-key", f"sel._domainkey.example.test={key_file}", "--json"],
            capture_output=True, text=True, timeout=40,
        )  # fmt: skip
    finally:
        silent.close()
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 20
    import json

    verdicts = json.loads(done.stdout)["authentication"]["dkim"]
    assert verdicts[0]["result"] == "pass", verdicts
    assert verdicts[-1]["result"] == "temperror", verdicts
    assert "took longer than" in verdicts[-1]["reason"], verdicts
