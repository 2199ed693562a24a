"""The inbox's authentication check against a real DNS (unbound in front of nsd).

Messages are signed here with dkimpy; their keys, SPF and DMARC records are
served by the test DNS of tests/dns_support.py, asked through dnspython as
the user's resolver would be (``--dns-server``), never a patched resolver.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import smtplib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.cli_helpers import run_tuimail
from tests.dns_support import DnsServer, started_dns
from tests.spamd_support import GTUBE, Spamd, started_spamd
from tests.test_cli_inbox import serving
from tuimail.inbox import authcheck, spamc
from tuimail.inbox.authcheck import Checked, CheckSettings


class Key:
    """An RSA key pair: the private half for dkimpy, the public half as a DKIM record."""

    def __init__(self) -> None:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.record = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()

    def zone_line(self, owner: str) -> str:
        """The record as a zone-file TXT line, in strings of at most 200 characters."""
        pieces = [self.record[i : i + 200] for i in range(0, len(self.record), 200)]
        return f"{owner} TXT " + " ".join(f'"{piece}"' for piece in pieces)


KEY = Key()
OTHER_KEY = Key()  # in no DNS: only ever given as a key file


def _zones(server: DnsServer) -> None:
    server.add_zone(
        "example.test",
        [
            '@ TXT "v=spf1 ip4:192.0.2.0/24 include:_spf.other.test -all"',
            '_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.test"',
            KEY.zone_line("sel._domainkey"),
            KEY.zone_line("sel._domainkey.mail"),
        ],
    )
    server.add_zone(
        "other.test",
        [
            '@ TXT "v=spf1 redirect=_spf.other.test"',
            '_spf TXT "v=spf1 a:relay.other.test ~all"',
            "relay A 203.0.113.9",
            KEY.zone_line("sel._domainkey"),
        ],
    )
    server.add_zone(
        "strict.test",
        [
            '@ TXT "v=spf1 mx -all"',
            "@ MX 10 mx",
            "mx A 192.0.2.50",
            '_dmarc TXT "v=DMARC1; p=quarantine; adkim=s; aspf=s"',
            KEY.zone_line("sel._domainkey.mail"),
        ],
    )
    server.add_zone(
        "macro.test",
        ['@ TXT "v=spf1 exists:%{ir}._spf.%{d} -all"', "7.2.0.192._spf A 127.0.0.2"],
    )
    server.add_zone(
        "broken.test",
        [
            '@ TXT "v=spf1 ip4:300.1.1.1 -all"',
            '_dmarc TXT "v=DMARC1; p=maybe"',
            '_two TXT "v=spf1 -all"',
            '_two TXT "v=spf1 +all"',
            '_unknown TXT "v=spf1 frobnicate:example.test -all"',
            '_macro TXT "v=spf1 exists:%{z}.broken.test -all"',
            '_void TXT "v=spf1 a:n1.broken.test a:n2.broken.test a:n3.broken.test -all"',
        ],
    )
    server.add_zone(
        "loop.test",
        ['@ TXT "v=spf1 include:loop.test -all"', '_dmarc TXT "v=DMARC1; p=none"'],
    )


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    server = started_dns(tmp_path_factory.mktemp("dns"), _zones)
    yield server
    server.stop()


def message(
    sender: str = "Alice <alice@example.test>",
    body: str = "Your order has shipped.\r\n",
    subject: str = "Your order",
) -> bytes:
    return (
        f"From: {sender}\r\nTo: bob@receiver.test\r\nSubject: {subject}\r\n"
        "Date: Fri, 04 Dec 2026 12:00:00 +0000\r\nMessage-ID: <order.1@example.test>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


def signed(raw: bytes, domain: str, selector: str = "sel", key: Key = KEY) -> bytes:
    signature = dkim.sign(raw, selector.encode(), domain.encode(), key.private_pem)
    return bytes(signature) + raw


def settings(dns: DnsServer, **changes: object) -> CheckSettings:
    base = CheckSettings(dns_servers=(f"{dns.address}:{dns.port}",), dns_timeout=3.0)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def check(dns: DnsServer, raw: bytes, mail_from: str | None, **changes: object) -> Checked:
    return authcheck.check_blocking(raw, mail_from, settings(dns, **changes))


def test_aligned_signature_and_spf_pass(dns_server: DnsServer) -> None:
    raw = signed(message(), "example.test")
    checked = check(dns_server, raw, "bounces@example.test", spf_ip="192.0.2.7")
    (dkim_result,) = checked.dkim
    assert (dkim_result.result, dkim_result.domain, dkim_result.key_from) == (
        "pass",
        "example.test",
        "DNS",
    )
    assert dkim_result.alignment.strict and dkim_result.alignment.relaxed
    assert checked.spf.result == "pass"
    assert "ip4:192.0.2.0/24" in checked.spf.reason
    assert checked.dmarc.result == "pass"
    assert checked.dmarc.policy == "reject" and checked.dmarc.record_at == "_dmarc.example.test"
    assert checked.dmarc.dkim_aligned and checked.dmarc.spf_aligned
    assert checked.authentication_results() == (
        "tuimail; dkim=pass header.d=example.test header.s=sel header.a=rsa-sha256; "
        "spf=pass (simulated from IP 192.0.2.7) smtp.mailfrom=example.test; "
        "dmarc=pass (p=reject) header.from=example.test"
    )


def test_altered_after_signing_fails(dns_server: DnsServer) -> None:
    raw = signed(message(), "example.test")
    altered = raw.replace(b"has shipped", b"was lost!!")
    (result,) = check(dns_server, altered, "alice@example.test").dkim
    assert result.result == "fail"
    assert "body" in result.reason
    checked = check(dns_server, altered, "alice@example.test")
    # SPF was not simulated: nothing aligned passed, so DMARC fails under p=reject.
    assert checked.spf.result == "none" and "not evaluated" in checked.spf.reason
    assert checked.dmarc.result == "fail"
    assert "a receiver applies p=reject" in checked.dmarc.reason
    # A signed header changed: the signature itself no longer verifies.
    retitled = raw.replace(b"Subject: Your order", b"Subject: Your refund")
    (result,) = check(dns_server, retitled, "alice@example.test").dkim
    assert result.result == "fail" and "does not verify" in result.reason


def test_relaxed_alignment_passes_unless_the_policy_is_strict(dns_server: DnsServer) -> None:
    relaxed = check(dns_server, signed(message(), "mail.example.test"), "alice@example.test")
    (result,) = relaxed.dkim
    assert result.result == "pass"
    assert (result.alignment.strict, result.alignment.relaxed) == (False, True)
    assert relaxed.dmarc.result == "pass" and relaxed.dmarc.adkim == "r"
    # strict.test asks for strict alignment: the same pair fails there.
    raw = signed(message("Carol <carol@strict.test>"), "mail.strict.test")
    strict = check(dns_server, raw, "carol@strict.test", spf_ip="192.0.2.50")
    (result,) = strict.dkim
    assert result.result == "pass" and not result.alignment.strict and result.alignment.relaxed
    assert strict.spf.result == "pass"  # the mx mechanism; aligned strictly with From
    assert strict.dmarc.result == "pass" and strict.dmarc.spf_aligned
    assert not strict.dmarc.dkim_aligned
    unaligned = check(dns_server, raw, "bounce@mail.strict.test", spf_ip="192.0.2.50")
    assert unaligned.dmarc.result == "fail" and unaligned.dmarc.policy == "quarantine"
    assert (unaligned.dmarc.adkim, unaligned.dmarc.aspf) == ("s", "s")


def test_misaligned_signature_fails_dmarc(dns_server: DnsServer) -> None:
    checked = check(
        dns_server, signed(message(), "other.test"), "app@other.test", spf_ip="198.51.100.1"
    )
    (result,) = checked.dkim
    assert result.result == "pass" and not result.alignment.relaxed
    assert checked.spf.result == "softfail"  # other.test redirects to ~all
    assert checked.dmarc.result == "fail"
    assert "not aligned with example.test" in checked.dmarc.reason


def test_spf_mechanisms(dns_server: DnsServer) -> None:
    def spf(mail_from: str, ip: str) -> tuple[str, str]:
        result = check(dns_server, message(), mail_from, spf_ip=ip).spf
        return result.result, result.reason

    assert spf("alice@example.test", "203.0.113.9")[0] == "pass"  # include: then a:
    assert spf("alice@example.test", "198.51.100.1")[0] == "fail"
    assert spf("alice@example.test", "2001:db8::1")[0] == "fail"
    assert spf("x@other.test", "198.51.100.1")[0] == "softfail"  # redirect=
    assert spf("alice@macro.test", "192.0.2.7")[0] == "pass"  # exists: with %{ir}.%{d}
    assert spf("alice@macro.test", "192.0.2.8")[0] == "fail"
    result, reason = spf("alice@loop.test", "192.0.2.7")
    assert result == "permerror" and "more than 10 DNS lookups" in reason
    assert spf("alice@nohost.example.test", "192.0.2.7")[0] == "none"
    # Broken records are permerror, in words.
    for sender, words in [
        ("a@broken.test", "is not a valid ip4 network"),
        ("a@_two.broken.test", "publishes 2 SPF records"),
        ("a@_unknown.broken.test", "is not an SPF mechanism or modifier"),
        ("a@_macro.broken.test", "has a malformed macro"),
        ("a@_void.broken.test", "more than 2 lookups found nothing"),
    ]:
        result, reason = spf(sender, "192.0.2.7")
        assert (result, words in reason) == ("permerror", True), (sender, reason)
    assert spf("", "192.0.2.7")[0] == "none"  # null sender, HELO unknown


def test_key_from_a_file_instead_of_dns(dns_server: DnsServer, tmp_path: Path) -> None:
    raw = signed(message(), "example.test", selector="filekey", key=OTHER_KEY)
    (missing,) = check(dns_server, raw, "alice@example.test").dkim
    assert missing.result == "permerror" and "no key at filekey._domainkey.example.test" in (
        missing.reason
    )
    private = tmp_path / "dkim.key"
    private.write_bytes(OTHER_KEY.private_pem)
    record = tmp_path / "dkim.txt"
    record.write_text(OTHER_KEY.zone_line("filekey._domainkey IN") + "  ; made by a test\n")
    for spec in (str(private), f"filekey._domainkey.example.test={record}"):
        keys = (authcheck.load_key_file(spec),)
        (result,) = check(dns_server, raw, "alice@example.test", dkim_keys=keys).dkim
        assert (result.result, result.key_from) == ("pass", str(spec.rpartition("=")[2]))
    # A key file for another selector leaves this one to DNS; the wrong key fails.
    elsewhere = (authcheck.load_key_file(f"other._domainkey.example.test={record}"),)
    (result,) = check(dns_server, raw, "alice@example.test", dkim_keys=elsewhere).dkim
    assert result.result == "permerror"
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(KEY.record)
    (result,) = check(
        dns_server, raw, "a@example.test", dkim_keys=(authcheck.load_key_file(str(wrong)),)
    ).dkim
    assert result.result == "fail"
    not_a_key = tmp_path / "notes.txt"
    not_a_key.write_text("hello\n")
    with pytest.raises(ValueError, match="no p= tag"):
        authcheck.load_key_file(str(not_a_key))


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_tuimails_own_signatures_verify(kind: str, dns_server: DnsServer, tmp_path: Path) -> None:
    """What tuimail/dkim_signing.py signs (RSA, and Ed25519 of RFC 8463) the check verifies,
    with the key record 'tuimail dkim keygen' prints, from a key file."""
    from tuimail import dkim_signing

    new = dkim_signing.generate_key(dkim_signing.KeyType(kind))
    key = dkim_signing.parse_key(new.private_pem.reveal(), "the test key")
    settings_ = dkim_signing.DkimSettings("example.test", "app2026", "unused")
    raw = dkim_signing.sign_bytes(message(), settings_, key)
    record = tmp_path / "app2026.txt"
    record.write_text(dkim_signing.zone_line("example.test", "app2026", new.record) + "\n")
    keys = (authcheck.load_key_file(str(record)),)
    (result,) = check(dns_server, raw, "alice@example.test", dkim_keys=keys).dkim
    assert (result.result, result.algorithm) == ("pass", f"{kind}-sha256"), result.reason
    (result,) = check(dns_server, raw + b"PS.\r\n", "alice@example.test", dkim_keys=keys).dkim
    assert result.result == "fail"


def test_unanswering_dns_is_temperror_in_time() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # takes the questions, never answers
        port = silent.getsockname()[1]
        started = time.monotonic()
        checked = authcheck.check_blocking(
            signed(message(), "example.test"),
            "alice@example.test",
            CheckSettings(dns_servers=(f"127.0.0.1:{port}",), dns_timeout=0.5, spf_ip="192.0.2.7"),
        )
        elapsed = time.monotonic() - started
    assert [d.result for d in checked.dkim] == ["temperror"]
    assert checked.spf.result == "temperror"
    assert checked.dmarc.result == "temperror"
    assert elapsed < 10, elapsed  # a resolver's own timeouts would take far longer


def test_from_header_problems_are_permerror(dns_server: DnsServer) -> None:
    raw = message("a@example.test, b@example.test")
    assert check(dns_server, raw, "a@example.test").dmarc.result == "permerror"
    no_from = b"Subject: x\r\n\r\nbody\r\n"
    checked = check(dns_server, no_from, "a@example.test")
    assert checked.dmarc.result == "permerror" and "no From" in checked.dmarc.reason
    assert checked.dkim == () and "dkim=none" in checked.authentication_results()
    broken = check(dns_server, message("a@broken.test"), "a@broken.test").dmarc
    assert broken.result == "permerror" and "p=maybe is not none" in broken.reason


# -- the command line, over a real sandbox -------------------------------------


def _capture(port: int, raw: bytes, mail_from: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(mail_from, ["bob@receiver.test"], raw)


def test_inbox_show_checks_the_message(dns_server: DnsServer, tmp_path: Path) -> None:
    raw = signed(message(subject="signed"), "example.test")
    with serving() as port:
        _capture(port, raw, "bounces@example.test")
        _capture(port, raw.replace(b"has shipped", b"was lost"), "bounces@example.test")
    listed = json.loads(run_tuimail("inbox", "list", "--json").stdout)
    tampered, intact = listed[0]["id"], listed[1]["id"]
    server = f"{dns_server.address}:{dns_server.port}"
    shown = run_tuimail(
        "inbox", "show", intact, "--json", "--dns-server", server, "--spf-ip", "192.0.2.7"
    )
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    auth = document["authentication"]
    assert auth["dkim"][0]["result"] == "pass"
    assert auth["spf"] == {
        "result": "pass",
        "reason": "ip4:192.0.2.0/24 in the record of example.test",
        "simulated_ip": "192.0.2.7",
        "mail_from": "bounces@example.test",
        "domain": "example.test",
        "aligned": {"strict": True, "relaxed": True},
    }
    assert auth["dmarc"]["result"] == "pass"
    assert auth["authentication_results"].startswith("tuimail; dkim=pass header.d=example.test")
    assert document["spam"] is None
    # Plain: one Authentication-Results line; the altered copy fails.
    plain = run_tuimail("inbox", "show", tampered, "--dns-server", server)
    assert plain.returncode == 0, plain.stderr
    (line,) = [x for x in plain.stdout.splitlines() if x.startswith("Authentication-Results:")]
    assert "dkim=fail (the body hash does not match" in line
    assert "dmarc=fail (p=reject)" in line
    assert "spf=none (not evaluated" in line
    # config.toml names the IP and the resolver; a key file in a flag; --no-check skips.
    config = tmp_path / "home" / "config" / "tuimail"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(
        f'[dns]\nservers = ["{server}"]\n[inbox.check]\nspf_ip = "198.51.100.1"\n'
    )
    configured = json.loads(run_tuimail("inbox", "show", intact, "--json").stdout)
    assert configured["authentication"]["spf"]["result"] == "fail"
    assert configured["authentication"]["spf"]["simulated_ip"] == "198.51.100.1"
    skipped = json.loads(run_tuimail("inbox", "show", intact, "--json", "--no-check").stdout)
    assert skipped["authentication"] is None
    bad = run_tuimail("inbox", "show", intact, "--spf-ip", "not-an-ip")
    assert bad.returncode == 2 and "--spf-ip" in bad.stderr
    bad = run_tuimail("inbox", "show", intact, "--dkim-key", str(tmp_path / "absent.pem"))
    assert bad.returncode == 2 and "--dkim-key" in bad.stderr
    (config / "config.toml").write_text('[inbox.check]\nspf_ip = "nope"\n')
    bad = run_tuimail("inbox", "show", intact)
    assert bad.returncode == 4 and "[inbox.check] spf_ip" in bad.stderr


# -- spamd ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def spamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spamd]:
    server = started_spamd(tmp_path_factory.mktemp("spamd"))
    yield server
    server.stop()


def test_spamd_scores_gtube_as_spam_and_a_plain_message_as_ham(spamd: Spamd) -> None:
    async def ask(raw: bytes) -> spamc.SpamVerdict:
        return await spamc.symbols(raw, spamd.host, spamd.port, timeout=30)

    spam = asyncio.run(ask(message(body=f"{GTUBE}\r\n")))
    assert spam.spam and spam.score >= 1000 and "GTUBE" in spam.rules
    ham = asyncio.run(ask(message()))
    assert not ham.spam and ham.score < ham.threshold
    # Nothing listens: an error in words, in time.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        free = closed.getsockname()[1]
    with pytest.raises(spamc.SpamdError, match="cannot be reached"):
        asyncio.run(spamc.symbols(message(), "127.0.0.1", free, timeout=5))
    with pytest.raises(spamc.SpamdError, match="not scanned"):
        asyncio.run(spamc.symbols(b"x" * (spamc.MAX_MESSAGE + 1), spamd.host, spamd.port))


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\n", "something else than SPAMD"),
        (b"SPAMD/1.0 76 Bad header line: x\r\n\r\n", "refused the check"),
        (b"SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n", "no verdict"),
        (b"SPAMD/1.1 0 EX_OK\r\n" + b"X" * 20_000, "longer than"),
        (
            b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; 1.0 / 5.0\r\nContent-length: 99999999\r\n\r\n",
            "announced a body",
        ),
        (b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 9.0 / 5.0\r\nContent-length: 40\r\n\r\nA,B", "closed"),
    ],
)
def test_spamd_answers_that_are_not_verdicts(answer: bytes, words: str) -> None:
    """A server that is not spamd, or a broken one: an error in words, never a hang or a crash."""

    async def scenario() -> str:
        async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(reply, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            try:
                await spamc.symbols(message(), "127.0.0.1", port, timeout=5)
            except spamc.SpamdError as exc:
                return str(exc)
        raise AssertionError("a verdict from a broken answer")

    assert words in asyncio.run(scenario())


def test_spamd_that_never_answers_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(spamc.SpamdError, match="did not answer within 1 s"):
            asyncio.run(spamc.symbols(message(), "127.0.0.1", port, timeout=1))
        assert time.monotonic() - started < 15  # without the timeout: never


def test_inbox_show_with_spamd(spamd: Spamd) -> None:
    with serving() as port:
        _capture(port, message(subject="gtube", body=f"{GTUBE}\r\n"), "a@example.test")
        _capture(port, message(subject="plain"), "a@example.test")
    listed = {
        m["subject"]: m["id"] for m in json.loads(run_tuimail("inbox", "list", "--json").stdout)
    }
    # A resolver that answers nothing at once keeps the DNS part quick and offline.
    options = ["--spamd", spamd.address, "--dns-server", "127.0.0.1:9", "--dns-timeout", "1"]
    gtube = json.loads(run_tuimail("inbox", "show", listed["gtube"], "--json", *options).stdout)
    assert gtube["spam"]["spam"] is True and "GTUBE" in gtube["spam"]["rules"]
    assert gtube["spam"]["spamd"] == spamd.address
    plain = run_tuimail("inbox", "show", listed["plain"], *options)
    assert plain.returncode == 0, plain.stderr
    (line,) = [x for x in plain.stdout.splitlines() if x.startswith("Spam:")]
    assert line.startswith("Spam: not spam, score ")
