"""DKIM signing on send: real processes, a real SMTP server, verifiers that are not dkimpy.

Keys are made by ``tuimail dkim keygen`` and their records, exactly as it
prints them, are served by the test DNS (unbound before nsd,
tests/dns_support.py). rsa-sha256 signatures are verified by Perl's
Mail::DKIM (tests/dkim_verify.pl); ed25519-sha256 ones by OpenDKIM's
``opendkim-testmsg``, which asks the system resolver: it runs in a mount
namespace of its own whose /etc/resolv.conf names a relay on port 53 of a
loopback address, relaying to the test unbound (nothing outside that one
process sees the change). A message changed after signing must fail both.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_helpers import run_tuimail, send_args
from tests.conftest import require, require_tool
from tests.dns_support import DnsServer, started_dns
from tests.smtpservers import ServerThread, Sink
from tuimail.cli import exitcodes

DOMAIN = "dkim.test"
VERIFY_PL = Path(__file__).with_name("dkim_verify.pl")


@dataclass(frozen=True)
class Key:
    selector: str
    path: Path
    zone_line: str


def keygen(directory: Path, selector: str, *extra: str) -> Key:
    result = run_tuimail("dkim", "keygen", DOMAIN, selector, "--out", str(directory), *extra)
    assert result.returncode == 0, result.stderr
    path = directory / f"{DOMAIN}_{selector}.pem"
    return Key(selector, path, result.stdout.strip())


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Key]:
    directory = tmp_path_factory.mktemp("keys")
    return {
        "rsa": keygen(directory, "rsa2048"),
        "ed25519": keygen(directory, "ed1", "--type", "ed25519"),
    }


@pytest.fixture(scope="module")
def dns(keys: dict[str, Key], tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    def zones(server: DnsServer) -> None:
        server.add_zone(DOMAIN, [key.zone_line for key in keys.values()])

    server = started_dns(tmp_path_factory.mktemp("dns"), zones)
    try:
        yield server
    finally:
        server.stop()


def mail_dkim(message: bytes, dns: DnsServer) -> str:
    """Mail::DKIM's verdict on ``message``: its output, last line ``result: ...``."""
    require_tool("perl", "perl")
    probe = subprocess.run(["perl", "-MMail::DKIM::Verifier", "-e", "1"], capture_output=True)
    require(probe.returncode == 0, "Perl's Mail::DKIM (Debian package libmail-dkim-perl)")
    result = subprocess.run(
        ["perl", str(VERIFY_PL)],
        input=message,
        capture_output=True,
        timeout=30,
        env={**os.environ, "DKIM_DNS_SERVER": dns.address, "DKIM_DNS_PORT": str(dns.port)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.decode()


class Port53Relay:
    """UDP DNS on port 53 of a loopback address of its own, relayed to the test unbound.

    The system resolver (libresolv, which OpenDKIM uses) takes no port: this
    gives it one to ask. Each query is relayed as it is, and the answer
    comes back from unbound.
    """

    def __init__(self, dns: DnsServer) -> None:
        self.upstream = (dns.address, dns.port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for last in range(2, 250):
            address = f"127.53.{os.getpid() % 250}.{last}"
            try:
                self.sock.bind((address, 53))
            except OSError:
                continue
            self.address = address
            break
        else:
            raise RuntimeError("no loopback address with port 53 free")
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, client = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as upstream:
                upstream.settimeout(5)
                upstream.sendto(query, self.upstream)
                try:
                    answer = upstream.recv(65535)
                except TimeoutError:
                    continue
            self.sock.sendto(answer, client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def opendkim(message: bytes, dns: DnsServer, tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    """``opendkim-testmsg`` verifying ``message`` (exit 0, no output: a valid signature)."""
    testmsg = shutil.which("opendkim-testmsg") or shutil.which(
        "opendkim-testmsg", path="/usr/sbin:/usr/bin"
    )
    require(testmsg is not None, "opendkim-testmsg (Debian package opendkim-tools)")
    assert testmsg is not None
    unshare = require_tool("unshare", "util-linux")
    namespaces = subprocess.run([unshare, "--mount", "true"], capture_output=True)
    require(
        os.geteuid() == 0 and namespaces.returncode == 0,
        "root with mount namespaces (unshare --mount), for opendkim-testmsg's resolver",
    )
    relay = Port53Relay(dns)
    try:
        resolv = tmp_path / "resolv.conf"
        resolv.write_text(f"nameserver {relay.address}\noptions timeout:5 attempts:2\n")
        script = 'mount --bind "$1" /etc/resolv.conf && exec "$2"'
        return subprocess.run(
            [unshare, "--mount", "sh", "-c", script, "sh", str(resolv), testmsg],
            input=message,
            capture_output=True,
            timeout=60,
        )
    finally:
        relay.close()


def send_signed(port: int, key: Key, *extra: str) -> subprocess.CompletedProcess[str]:
    args = send_args(port, "--body", "Signed by tuimail.\n.leading dot\n", *extra)
    args[args.index("Alice <alice@example.test>")] = f"Alice <alice@{DOMAIN}>"
    return run_tuimail(
        *args,
        "--dkim-domain",
        DOMAIN,
        "--dkim-selector",
        key.selector,
        "--dkim-key",
        str(key.path),
    )


def altered(message: bytes) -> bytes:
    """The message with its Subject changed after signing."""
    changed = message.replace(b"Subject: Hello", b"Subject: Hullo", 1)
    assert changed != message
    return changed


def test_keygen_writes_a_private_key_and_prints_the_record(tmp_path: Path) -> None:
    key = keygen(tmp_path, "s2048")
    assert stat.S_IMODE(key.path.stat().st_mode) == 0o600
    assert key.path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert key.zone_line.startswith(f"s2048._domainkey.{DOMAIN}. IN TXT ( ")
    strings = re.findall(r'"([^"]*)"', key.zone_line)
    assert len(strings) == 2 and all(len(s.encode()) <= 255 for s in strings)
    assert "".join(strings).startswith("v=DKIM1; k=rsa; p=MIIBIjAN")
    before = key.path.read_bytes()
    again = run_tuimail("dkim", "keygen", DOMAIN, "s2048", "--out", str(tmp_path))
    assert again.returncode == exitcodes.CONFIG
    assert "never replaced" in again.stderr and again.stdout == ""
    assert key.path.read_bytes() == before
    ed = keygen(tmp_path, "ed", "--type", "ed25519")
    assert re.fullmatch(
        rf'ed\._domainkey\.{re.escape(DOMAIN)}\. IN TXT \( "v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{{43}}=" \)',
        ed.zone_line,
    )
    refused = run_tuimail("dkim", "keygen", "bad domain", "s", "--out", str(tmp_path))
    assert refused.returncode == exitcodes.USAGE and "not a DNS name" in refused.stderr


def test_rsa_signature_verified_by_mail_dkim(
    servers: ServerThread, keys: dict[str, Key], dns: DnsServer
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    result = send_signed(port, keys["rsa"], "--cc", "carol@example.test", "--no-queue")
    assert result.returncode == 0, result.stderr
    note = (
        f"=== DKIM signature d={DOMAIN} s=rsa2048 (rsa-sha256, relaxed/relaxed) signs the "
        "headers: from, to, cc, subject, date, message-id, mime-version, content-type, from"
    )
    assert note in result.stdout
    (received,) = sink.messages
    assert received.content.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    verdict = mail_dkim(received.content, dns)
    assert verdict.splitlines()[-1] == "result: pass", verdict
    assert f"pass d={DOMAIN} a=rsa-sha256" in verdict
    changed = mail_dkim(altered(received.content), dns)
    assert changed.splitlines()[-1] == "result: fail", changed
    body_changed = mail_dkim(received.content.replace(b"Signed by", b"Signed for"), dns)
    assert body_changed.splitlines()[-1] == "result: fail", body_changed


def test_ed25519_signature_verified_by_opendkim(
    servers: ServerThread, keys: dict[str, Key], dns: DnsServer, tmp_path: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    result = send_signed(port, keys["ed25519"], "--json")
    assert result.returncode == 0, result.stderr
    assert '"algorithm": "ed25519-sha256"' in result.stdout
    (received,) = sink.messages
    assert b"a=ed25519-sha256;" in received.content
    good = opendkim(received.content, dns, tmp_path)
    assert good.returncode == 0 and good.stderr == b"", good.stderr
    bad = opendkim(altered(received.content), dns, tmp_path)
    assert bad.returncode != 0 and b"dkim_eom(): Bad signature" in bad.stderr, bad.stderr


def test_a_retry_sends_the_bytes_signed_when_queued(
    servers: ServerThread, keys: dict[str, Key], dns: DnsServer, isolated_dirs: Path
) -> None:
    sink = Sink(rcpt_replies={"bob@example.test": "451 4.7.1 greylisted, try again later"})
    port = servers.smtp(sink)
    first = send_signed(port, keys["rsa"])
    assert first.returncode == exitcodes.QUEUED, first.stderr
    assert "=== DKIM signature" in first.stdout
    queued = list((isolated_dirs / "data" / "tuimail" / "outbox").rglob("*"))
    stored = [p.read_bytes() for p in queued if p.is_file()]
    assert len(stored) == 1 and stored[0].startswith(b"DKIM-Signature: ")
    sink.rcpt_replies.clear()
    # A different key on the command line now changes nothing: the stored bytes are final.
    flushed = run_tuimail("outbox", "flush", "--all", "--verbose")
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert "=== DKIM signature" in flushed.stdout
    (received,) = sink.messages
    assert received.content == stored[0]
    assert received.content.count(b"DKIM-Signature:") == 1
    verdict = mail_dkim(received.content, dns)
    assert verdict.splitlines()[-1] == "result: pass", verdict


def test_an_unusable_key_sends_nothing(
    servers: ServerThread, keys: dict[str, Key], tmp_path: Path, isolated_dirs: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    open_key = tmp_path / "open.pem"
    open_key.write_bytes(keys["rsa"].path.read_bytes())
    open_key.chmod(0o644)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    garbage.chmod(0o600)
    for path, words in (
        (open_key, "can be read or changed by other users (mode 0644)"),
        (garbage, "is not a PEM private key"),
        (tmp_path / "missing.pem", "does not exist"),
        (tmp_path, "is a directory"),
    ):
        result = send_signed(port, Key("rsa2048", path, ""))
        assert result.returncode == exitcodes.CONFIG, (path, result.stderr)
        assert words.lower() in result.stderr.lower() and "nothing was sent" in result.stderr, (
            result.stderr
        )
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
    partial = run_tuimail(*send_args(port, "--body", "x"), "--dkim-domain", DOMAIN)
    assert partial.returncode == exitcodes.USAGE
    assert "--dkim-selector: is needed to sign with DKIM" in partial.stderr
    assert sink.messages == []
    outbox = isolated_dirs / "data" / "tuimail" / "outbox"
    assert not outbox.exists() or not [p for p in outbox.rglob("*") if p.is_file()]


async def test_the_app_signs_with_the_profiles_key(
    servers: ServerThread, keys: dict[str, Key], dns: DnsServer
) -> None:
    from tests.ui_support import fill_draft, save_profile, wait_for_run
    from tuimail.transcript import EventKind
    from tuimail.ui.app import TuimailApp

    sink = Sink()
    port = servers.smtp(sink)
    key = keys["rsa"]
    save_profile(name="signer", host="127.0.0.1", port=port, security="none",
                 from_address=f"alice@{DOMAIN}", dkim_domain=DOMAIN,
                 dkim_selector=key.selector, dkim_key=str(key.path))  # fmt: skip
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Hello", body="From the app")
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot, 1)
    (received,) = sink.messages
    verdict = mail_dkim(received.content, dns)
    assert verdict.splitlines()[-1] == "result: pass", verdict
    notes = [e.text for e in run.transcript if e.kind is EventKind.INFO and "DKIM" in e.text]
    assert notes == [
        f"DKIM signature d={DOMAIN} s={key.selector} (rsa-sha256, relaxed/relaxed) signs the "
        "headers: from, to, subject, date, message-id, mime-version, content-type, from"
    ]


def test_a_profile_signs_with_a_key_under_the_config_dir(
    servers: ServerThread, dns: DnsServer, isolated_dirs: Path
) -> None:
    """keygen's default place, named in the profile relative to the config dir."""
    from tests.ui_support import save_profile

    made = run_tuimail("dkim", "keygen", DOMAIN, "rsa2048")  # its record is not this key's
    assert made.returncode == 0, made.stderr
    key_dir = isolated_dirs / "config" / "tuimail" / "dkim"
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert (key_dir / f"{DOMAIN}_rsa2048.pem").is_file()
    sink = Sink()
    port = servers.smtp(sink)
    save_profile(name="signer", host="127.0.0.1", port=port, security="none",
                 from_address=f"alice@{DOMAIN}", dkim_domain=DOMAIN, dkim_selector="rsa2048",
                 dkim_key=f"dkim/{DOMAIN}_rsa2048.pem", dkim_headers="From, Subject")  # fmt: skip
    sent = run_tuimail("send", "--profile", "signer", "--to", "bob@example.test",
                       "--subject", "Hello", "--body", "b")  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert "signs the headers: from, subject, from" in sent.stdout
    (received,) = sink.messages
    # Signed with a new key that DNS does not publish: Mail::DKIM reads the signature
    # and finds the published key does not match.
    verdict = mail_dkim(received.content, dns)
    assert verdict.splitlines()[-1] == "result: fail", verdict


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"dkim_domain": DOMAIN}, "dkim_selector: is needed to sign with DKIM"),
        ({"dkim_domain": "a b", "dkim_selector": "s", "dkim_key": "k"}, "must be a DNS name"),
        (
            {"dkim_domain": DOMAIN, "dkim_selector": "s", "dkim_key": "k", "dkim_headers": "To"},
            "must include From",
        ),
        (
            {
                "dkim_domain": DOMAIN,
                "dkim_selector": "s",
                "dkim_key": "k",
                "dkim_headers": "From, Received",
            },
            "Received changes on the way",
        ),
        ({"dkim_headers": "From"}, "needs dkim_domain, dkim_selector and dkim_key"),
    ],
)
def test_dkim_settings_are_checked_with_the_profile(fields: dict[str, str], words: str) -> None:
    from tuimail.profiles import Profile, ProfileError

    with pytest.raises(ProfileError, match=words):
        Profile(name="p", host="h", **fields)  # type: ignore[arg-type]
