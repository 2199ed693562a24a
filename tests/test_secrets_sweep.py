"""The secrets sweep: every secret, in every form, is absent from everything written.

One run through the ways a secret travels: profiles with passwords in a real
Secret Service, sends with PLAIN, LOGIN and XOAUTH2 (a token is a secret
exactly as a password is), a ``token_command`` whose first token has expired
(OAUTHBEARER, the server's challenge, one renewal), a ``--server`` send with
``--password-stdin``, a probe, a queued message flushed later, ``accounts test``, ``doctor``, and a
sandbox with ``--auth-file`` that sees pipelined SASL from a raw client. Then
every file under the config, data and state dirs and every byte any process
printed is searched for each secret: raw, its base64 at each of the three byte
alignments (inside a SASL blob the secret's base64 depends on its offset), and
the whole SASL blobs. The only places a secret may live are the keyring and
the auth file the user wrote, both outside the searched dirs.

A second run does the same for an OAuth profile signed in at the real test
provider (oidc-provider, tests/oauth_support.py) with a client that has a
secret: its refresh tokens, client secret and access tokens.
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult

from tests.cli_helpers import TUIMAIL, answer_at_terminal, files_under, leak_patterns, run_tuimail
from tests.conftest import Certs, SecretService
from tests.oauth_smtp import OAuthSink, RawSMTP, offered_auth
from tests.oauth_support import BrowserUser, OAuthProviderServer
from tests.smtpservers import ServerThread, Sink
from tests.test_cli_oauth_login import Running
from tuimail.credentials import SERVICE
from tuimail.oauth_account import refresh_token_entry

ALICE = ("alice", "pl41n-Secret-ÄLICE-7")
BOB = ("bob", "b0b's-stdin-passw0rd!")
CAROL = ("carol", "c4r0l-queued-secret")
TOKEN = ("dana", "ya29.a0Af-oauth-TOKEN-d4n4-0123456789")
#: A token_command's tokens: the first has expired by the time it is sent.
STALE = ("erin", "ya29.a0Af-stale-TOKEN-3r1n-5550123")
FRESH = ("erin", "ya29.a0Af-fresh-TOKEN-3r1n-5550199")
SECRETS = (ALICE, BOB, CAROL, TOKEN, STALE, FRESH)


def sasl_blobs(user: str, secret: str) -> list[bytes]:
    """Whole SASL responses a client sends for ``user`` with ``secret``."""
    raw, login = secret.encode(), user.encode()
    return [
        base64.b64encode(b"\0" + login + b"\0" + raw),  # PLAIN
        base64.b64encode(login + b"\0" + login + b"\0" + raw),  # PLAIN with authzid
        base64.b64encode(raw),  # LOGIN's password line
        base64.b64encode(b"user=" + login + b"\x01auth=Bearer " + raw + b"\x01\x01"),  # XOAUTH2
        base64.b64encode(b"n,a=" + login + b",\x01auth=Bearer " + raw + b"\x01\x01"),  # OAUTHBEARER
    ]


def needles(user: str, secret: str) -> list[bytes]:
    return sorted(set(leak_patterns(secret)) | set(sasl_blobs(user, secret)))


def leaks(blobs: dict[str, bytes]) -> list[str]:
    found = []
    for user, secret in SECRETS:
        for name, blob in blobs.items():
            if any(needle in blob for needle in needles(user, secret)):
                found.append(f"{user}'s secret in {name}")
    return found


class XOAuth2Handler(Sink):
    """A sink that also takes XOAUTH2, checking the bearer token it is given."""

    def __init__(self, user: str, token: str) -> None:
        super().__init__()
        self.expected = f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
        self.logins: list[bool] = []

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) > 1:
            response = base64.b64decode(args[1])
        else:
            challenge = await server.challenge_auth("", encode_to_b64=False)
            response = challenge if isinstance(challenge, bytes) else b""
        ok = response == self.expected
        self.logins.append(ok)
        return AuthResult(success=ok, handled=False)


class ExpiringTokenHandler(Sink):
    """Takes OAUTHBEARER and XOAUTH2 with ``FRESH`` only; any other token gets the
    standard 334 challenge saying it expired, then 535."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[tuple[str, bool]] = []

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._check(server, base64.b64decode(args[1]), b"n,a=")

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._check(server, base64.b64decode(args[1]), b"user=")

    async def _check(self, server: SMTP, response: bytes, start: bytes) -> AuthResult:
        token = response.split(b"auth=Bearer ")[1].split(b"\x01")[0].decode()
        ok = response.startswith(start + FRESH[0].encode()) and token == FRESH[1]
        self.tokens.append((token, ok))
        if ok:
            return AuthResult(success=True)
        await server.challenge_auth(b'{"status":"invalid_token","scope":"mail"}')
        return AuthResult(success=False, handled=False)


class Sandbox:
    """A real ``tuimail serve`` process; its output is kept for the sweep."""

    def __init__(self, auth_file: Path, *extra: str, port: int = 0) -> None:
        self.process = subprocess.Popen(
            [TUIMAIL, "serve", "--port", str(port), "--tls", "--auth-file", str(auth_file),
             "--auth-required", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stderr is not None
        self.first_line = self.process.stderr.readline()
        assert "listening on 127.0.0.1:" in self.first_line, self.first_line
        self.port = int(self.first_line.split("127.0.0.1:")[1].split()[0])

    def stop(self) -> tuple[str, str]:
        self.process.send_signal(signal.SIGINT)
        stdout, stderr = self.process.communicate(timeout=20)
        return stdout, self.first_line + stderr


def pipelined_sasl(port: int) -> bytes:
    """A raw client that sends AUTH and its responses in one packet, before any reply."""
    user, secret = ALICE
    login = (
        b"EHLO raw.test\r\nAUTH LOGIN\r\n"
        + base64.b64encode(user.encode()) + b"\r\n"
        + base64.b64encode(secret.encode()) + b"\r\nRSET\r\n"
        + b"AUTH PLAIN\r\n"
        + base64.b64encode(b"\0" + user.encode() + b"\0" + secret.encode())
        + b"\r\nQUIT\r\n"
    )  # fmt: skip
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.settimeout(10)
        received += sock.recv(4096)  # the banner
        sock.sendall(login)
        while not received.rstrip().endswith(b"Bye") and b"221" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    return received


def sandbox_ca(isolated_dirs: Path) -> str:
    record = json.loads((isolated_dirs / "state" / "tuimail" / "sandbox.json").read_text())
    return str(record["ca_file"])


def test_no_secret_in_any_form_reaches_a_file_or_an_output(
    secret_service: SecretService,
    servers: ServerThread,
    certs: Certs,
    isolated_dirs: Path,
    tmp_path: Path,
) -> None:
    auth_file = tmp_path / "outside" / "users.txt"
    auth_file.parent.mkdir()
    auth_file.write_text("".join(f"{u}:{p}\n" for u, p in (ALICE, BOB, CAROL)))
    outputs: dict[str, bytes] = {}

    def run(label: str, *args: str, input: str | None = None, ok: tuple[int, ...] = (0,)) -> Any:
        result = run_tuimail(*args, input=input)
        outputs[f"{label} stdout"] = result.stdout.encode()
        outputs[f"{label} stderr"] = result.stderr.encode()
        assert result.returncode in ok, (
            f"{label}: {result.returncode}\n{result.stdout}{result.stderr}"
        )
        return result

    sandbox = Sandbox(auth_file)
    try:
        ca_file = sandbox_ca(isolated_dirs)
        server = ["--host", "127.0.0.1", "--port", str(sandbox.port), "--security", "starttls",
                  "--ca-file", ca_file]  # fmt: skip
        run("add work", "accounts", "add", "work", *server, "--user", ALICE[0],
            "--from", "alice@example.test", "--password-stdin", input=ALICE[1] + "\n")  # fmt: skip
        for mechanism in ("plain", "login"):
            run(f"edit {mechanism}", "accounts", "edit", "work", "--auth", mechanism)
            for extra in ([], ["--json"], ["--no-queue"]):
                run(f"send {mechanism} {extra}", "send", "--profile", "work",
                    "--to", "rcpt@example.test", "--subject", "s", "--body", "b", *extra)  # fmt: skip
        run("send --server", "send", "--server", f"127.0.0.1:{sandbox.port}",
            "--security", "starttls", "--ca-file", ca_file, "--user", BOB[0], "--password-stdin",
            "--from", "bob@example.test", "--to", "rcpt@example.test", "--subject", "s",
            "--body", "b", input=BOB[1] + "\n")  # fmt: skip
        run("accounts test", "accounts", "test", "work")
        for extra in ([], ["--json"], ["--nagios"]):
            run(f"probe {extra}", "probe", "--profile", "work", *extra)
        outputs["raw pipelined client"] = pipelined_sasl(sandbox.port)
    finally:
        stdout, stderr = sandbox.stop()
        outputs["sandbox stdout"], outputs["sandbox stderr"] = stdout.encode(), stderr.encode()

    # A message queued by a temporary refusal, flushed once the server takes it.
    greylisting = Sandbox(auth_file, "--fault", "rcpt:451 4.7.1 Try again later")
    queued_port = greylisting.port
    try:
        run("add queued", "accounts", "add", "queued", "--host", "127.0.0.1",
            "--port", str(queued_port), "--security", "starttls", "--ca-file", ca_file,
            "--user", CAROL[0], "--from", "carol@example.test", "--password-stdin",
            input=CAROL[1] + "\n")  # fmt: skip
        run("send queued", "send", "--profile", "queued", "--to", "rcpt@example.test",
            "--subject", "later", "--body", "b", ok=(75,))  # fmt: skip
        run("outbox list", "outbox", "list", "--json")
    finally:
        stdout, stderr = greylisting.stop()
        outputs["greylisting stdout"], outputs["greylisting stderr"] = (
            stdout.encode(),
            stderr.encode(),
        )
    accepting = Sandbox(auth_file, port=queued_port)
    try:
        flushed = run("outbox flush", "outbox", "flush", "--all", "--verbose")
        assert "sent" in flushed.stdout.lower()
    finally:
        stdout, stderr = accepting.stop()
        outputs["accepting stdout"], outputs["accepting stderr"] = stdout.encode(), stderr.encode()

    # A bearer token through XOAUTH2, to a server that checks it.
    handler = XOAuth2Handler(*TOKEN)
    port = servers.smtp(handler, tls_context=certs.good)
    run("add oauth", "accounts", "add", "oauth", "--host", "127.0.0.1", "--port", str(port),
        "--security", "starttls", "--ca-file", str(certs.ca_file), "--user", TOKEN[0],
        "--auth", "xoauth2", "--from", "dana@example.test", "--password-stdin",
        input=TOKEN[1] + "\n")  # fmt: skip
    run("send oauth", "send", "--profile", "oauth", "--to", "rcpt@example.test",
        "--subject", "s", "--body", "b", "--json")  # fmt: skip
    run("probe oauth", "probe", "--profile", "oauth", "--json", ok=(0, 1, 2))
    assert handler.logins and all(handler.logins), "the server never saw the right token"

    # A token command whose first token has expired: OAUTHBEARER, the challenge, one renewal.
    outside = tmp_path / "outside"
    script = outside / "token.py"
    script.write_text(
        "import pathlib\n"
        f"runs = pathlib.Path({str(outside / 'runs')!r})\n"
        "first = not runs.exists()\n"
        "runs.write_text('ran')\n"
        f"print({STALE[1]!r} if first else {FRESH[1]!r})\n"
    )
    expiring = ExpiringTokenHandler()
    port = servers.smtp(expiring, tls_context=certs.good)
    run("add token command", "accounts", "add", "cmd", "--host", "127.0.0.1",
        "--port", str(port), "--security", "starttls", "--ca-file", str(certs.ca_file),
        "--user", FRESH[0], "--from", "erin@example.test",
        "--token-command", f"{sys.executable} {script}")  # fmt: skip
    run("send token command", "send", "--profile", "cmd", "--to", "rcpt@example.test",
        "--subject", "s", "--body", "b")  # fmt: skip
    run("send token command json", "send", "--profile", "cmd", "--to", "rcpt@example.test",
        "--subject", "s", "--body", "b", "--json")  # fmt: skip
    assert expiring.tokens == [(STALE[1], False), (FRESH[1], True), (FRESH[1], True)]
    run("doctor", "doctor", ok=(0, 1))
    run("accounts list", "accounts", "list", "--json")

    # The secrets did travel: the sandbox stored the authenticated messages.
    stored = list((isolated_dirs / "data" / "tuimail" / "sandbox" / "maildir" / "new").iterdir())
    assert len(stored) >= 8
    # The sweep can see a leak where there is one, in every form it looks for.
    for user, secret in SECRETS:
        for blob in sasl_blobs(user, secret):
            assert leaks({"probe": b"x" + blob + b"y"}), blob
        for pad in range(3):
            embedded = base64.b64encode(b"\0" * pad + secret.encode() + b"!")
            assert leaks({"aligned": embedded}), pad

    written = files_under(isolated_dirs)
    assert any("sessions" in name for name in written), "expected the sandbox's session files"
    assert leaks({**written, **outputs}) == []


def test_no_oauth_secret_reaches_a_file_or_an_output(
    secret_service: SecretService,
    servers: ServerThread,
    oauth_provider: OAuthProviderServer,
    isolated_dirs: Path,
) -> None:
    import keyring

    info = oauth_provider.info
    client = info["clients"]["secretApp"]
    client_secret = str(client["client_secret"])
    user = oauth_provider.login
    sink = OAuthSink(provider=oauth_provider)
    port = servers.smtp(sink, server_class=RawSMTP, **offered_auth("XOAUTH2", "OAUTHBEARER"))
    outputs: dict[str, bytes] = {}

    def run(label: str, *args: str, input: str | None = None, ok: tuple[int, ...] = (0,)) -> Any:
        result = run_tuimail(*args, input=input)
        outputs[f"{label} stdout"] = result.stdout.encode()
        outputs[f"{label} stderr"] = result.stderr.encode()
        assert result.returncode in ok, (
            f"{label}: {result.returncode}\n{result.stdout}{result.stderr}"
        )
        return result

    def refresh_token() -> str:
        token = keyring.get_password(SERVICE, refresh_token_entry("oauth"))
        assert token is not None
        return token

    run("add", "accounts", "add", "oauth", "--host", "127.0.0.1", "--port", str(port),
        "--security", "none", "--allow-plaintext-auth", "--user", user,
        "--from", "alice@example.test", "--oauth-provider", "custom",
        "--oauth-client-id", client["client_id"], "--oauth-client-secret-stdin",
        "--oauth-authorize-url", info["authorization_endpoint"],
        "--oauth-token-url", info["token_endpoint"], "--oauth-scope", oauth_provider.scope,
        input=client_secret + "\n")  # fmt: skip
    login = Running("accounts", "login", "oauth", "--no-browser")
    browser = BrowserUser(oauth_provider)
    status, page = browser.visit(browser.sign_in(login.line_matching(r"(http\S+)").group(1)))
    assert status == 200 and "Signed in" in page
    code, stdout, stderr = login.finish()
    assert code == 0, stdout + stderr
    outputs.update(login_stdout=stdout.encode(), login_stderr=stderr.encode())
    refresh_tokens = {refresh_token()}
    for extra in ([], ["--json"], ["--no-queue", "--json"]):
        run(f"send {extra}", "send", "--profile", "oauth", "--to", "rcpt@example.test",
            "--subject", "s", "--body", "b", *extra)  # fmt: skip
        refresh_tokens.add(refresh_token())
    run("accounts test", "accounts", "test", "oauth")
    run("probe", "probe", "--profile", "oauth", "--json", ok=(0, 1, 2))
    run("outbox list", "outbox", "list", "--json")
    run("accounts list", "accounts", "list", "--json")
    run("doctor", "doctor", ok=(0, 1))
    assert len(sink.messages) == 3 and all(login.accepted for login in sink.logins[:3])

    secrets = [(user, token) for token in refresh_tokens]
    secrets += [(user, client_secret)]
    secrets += [(user, login.token) for login in sink.logins]
    written = files_under(isolated_dirs)
    assert any(name.endswith("profiles.toml") for name in written)
    found = [
        f"{secret[:6]}... in {name}"
        for who, secret in secrets
        for name, blob in {**written, **outputs}.items()
        if any(needle in blob for needle in needles(who, secret))
    ]
    assert found == []
    # The sweep sees them where they do belong: the access tokens on the wire.
    assert all(
        any(needle in bytes(sink.raw) for needle in needles(user, login.token))
        for login in sink.logins
    )


@pytest.mark.parametrize("secret", [s for _, s in SECRETS])
def test_secret_forms_cover_every_alignment(secret: str) -> None:
    """The sweep's patterns catch the secret's base64 wherever it sits in a blob."""
    for prefix in (b"", b"\0", b"\0u", b"\0us", b"user\0user\0"):
        blob = base64.b64encode(prefix + secret.encode() + b"\x01\x01")
        assert any(p in blob for p in leak_patterns(secret)), prefix


def dkim_key_needles(pem: bytes) -> list[bytes]:
    """A DKIM private key in every form it could leak in: the PEM, its base64 body, the
    DER, and each private number (RSA's d, p, q and the CRT values; Ed25519's seed) raw
    and as base64 at each alignment, whole and in 20-character windows every 4, so a
    single leaked line of any PEM or base64 form of the key is found (even one that
    spans two numbers). The modulus is
    left out: it is public (the DNS record holds it)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    text = pem.decode()
    body = "".join(line for line in text.splitlines() if line and not line.startswith("-----"))
    key = serialization.load_pem_private_key(pem, None)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    if isinstance(key, ed25519.Ed25519PrivateKey):
        parts = [
            key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        ]
    else:
        assert isinstance(key, rsa.RSAPrivateKey)
        numbers = key.private_numbers()
        values = (numbers.d, numbers.p, numbers.q, numbers.dmp1, numbers.dmq1, numbers.iqmp)
        parts = [value.to_bytes((value.bit_length() + 7) // 8, "big") for value in values]
    needles = {text.encode(), body.encode(), der}
    for part in parts:
        needles.add(part)
        for pad in range(3):
            encoded = base64.b64encode(b"\0" * pad + part)
            core = encoded[(pad * 4 + 2) // 3 : (4 * (pad + len(part))) // 3]
            needles.add(core)
            needles.update(core[i : i + 20] for i in range(0, len(core) - 19, 4))
    return sorted(needles)


def test_no_dkim_key_reaches_a_file_or_an_output(
    secret_service: SecretService, servers: ServerThread, isolated_dirs: Path, tmp_path: Path
) -> None:
    """DKIM keys, in a file and in the keyring, signing sends that succeed, wait in the
    outbox and fail: the keys are nowhere but their file and the keyring."""
    import keyring

    from tuimail.dkim_signing import key_entry
    from tuimail.profiles import Profile, ProfileStore, Security

    outside = tmp_path / "outside"
    outputs: dict[str, bytes] = {}

    def run(label: str, *args: str, input: str | None = None, ok: tuple[int, ...] = (0,)) -> Any:
        result = run_tuimail(*args, input=input)
        outputs[f"{label} stdout"] = result.stdout.encode()
        outputs[f"{label} stderr"] = result.stderr.encode()
        assert result.returncode in ok, (
            f"{label}: {result.returncode}\n{result.stdout}{result.stderr}"
        )
        return result

    sink = Sink()
    port = servers.smtp(sink)
    greylisting = Sink(rcpt_replies={"rcpt@example.test": "451 4.7.1 try again later"})
    greylisting_port = servers.smtp(greylisting)
    run("keygen rsa", "dkim", "keygen", "dkim.test", "rsa", "--out", str(outside))
    key_file = outside / "dkim.test_rsa.pem"
    store = ProfileStore()
    for name, at in (("filekey", port), ("keyringkey", port), ("later", greylisting_port)):
        store.add(
            Profile(
                name=name,
                host="127.0.0.1",
                port=at,
                security=Security.NONE,
                from_address="alice@dkim.test",
                dkim_domain="dkim.test",
                dkim_selector="rsa",
                dkim_key=str(key_file),
            )
        )
    run("keygen ed25519 keyring", "dkim", "keygen", "dkim.test", "ed", "--type", "ed25519",
        "--keyring", "keyringkey")  # fmt: skip
    store.save(
        Profile(
            name="keyringkey",
            host="127.0.0.1",
            port=port,
            security=Security.NONE,
            from_address="alice@dkim.test",
            dkim_domain="dkim.test",
            dkim_selector="ed",
            dkim_key="keyring",
        )
    )
    stored = keyring.get_password(SERVICE, key_entry("keyringkey"))
    assert stored is not None and stored.startswith("-----BEGIN PRIVATE KEY-----")
    run("import-key", "dkim", "import-key", "later", str(key_file))
    assert keyring.get_password(SERVICE, key_entry("later")) == key_file.read_text()

    message = ["--to", "rcpt@example.test", "--subject", "s", "--body", "b"]
    for extra in ([], ["--json"], ["--no-queue"]):
        run(f"send file key {extra}", "send", "--profile", "filekey", *message, *extra)
        run(f"send keyring key {extra}", "send", "--profile", "keyringkey", *message, *extra)
    run("send --server --dkim-key", "send", "--server", f"127.0.0.1:{port}", "--security",
        "none", "--from", "bob@dkim.test", *message, "--dkim-domain", "dkim.test",
        "--dkim-selector", "rsa", "--dkim-key", str(key_file))  # fmt: skip
    run("send queued", "send", "--profile", "later", *message, ok=(75,))
    greylisting.rcpt_replies.clear()
    run("outbox flush", "outbox", "flush", "--all", "--verbose")
    # Refused keys: readable by others, and a copy cut short.
    open_copy = outside / "open.pem"
    open_copy.write_bytes(key_file.read_bytes())
    open_copy.chmod(0o644)
    cut = outside / "cut.pem"
    cut.write_bytes(key_file.read_bytes()[:-200])
    cut.chmod(0o600)
    for label, path in (("open key", open_copy), ("cut key", cut)):
        run(label, "send", "--profile", "filekey", *message, "--dkim-key", str(path), ok=(4,))
    run("outbox list", "outbox", "list", "--json")
    run("accounts list", "accounts", "list", "--json")
    assert len(sink.messages) == 7 and len(greylisting.messages) == 1
    assert all(m.content.startswith(b"DKIM-Signature:") for m in sink.messages)

    keys = {"the file key": key_file.read_bytes(), "the keyring key": stored.encode()}
    # The sweep sees one leaked line of the private part, in the PEM and in dkimpy's form.
    for pem in (key_file.read_bytes(), _pkcs1(key_file.read_bytes())):
        lines = pem.splitlines()[1:-1]
        for line in lines[len(lines) // 2 : -1]:
            assert any(needle in b"x" + line + b"y" for needle in dkim_key_needles(pem)), line
    written = files_under(isolated_dirs)
    assert any("outbox" in name or "sent" in name for name in written)
    found = [
        f"{what} in {where}"
        for what, pem in keys.items()
        for where, blob in {**written, **outputs}.items()
        if any(needle in blob for needle in dkim_key_needles(pem))
    ]
    assert found == []


def _pkcs1(pem: bytes) -> bytes:
    """The RSA key as PKCS#1 PEM, the form dkimpy signs with."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pem, None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def test_no_openpgp_passphrase_reaches_argv_a_file_or_an_output(
    servers: ServerThread, isolated_dirs: Path, tmp_path: Path
) -> None:
    """A locked OpenPGP key's passphrase typed at the terminal (a pty) reaches gpg on a pipe
    only: an ``gpg`` first on PATH records each run's argv and environment (what
    /proc/PID/cmdline and environ show) before running the real one; then gpg's argv, every
    output and every file under the config, data and state dirs (the outbox, sent/, the
    transcript) are searched for the passphrase in each of its forms."""
    import os
    import shutil

    from tests import test_pgp_mime
    from tests.cli_helpers import send_args

    real = shutil.which("gpg")
    if real is None:
        pytest.skip("gpg is not installed")
    passphrase = test_pgp_mime.PASSPHRASE
    home = test_pgp_mime._new_home()
    try:
        dave = test_pgp_mime._make_key(home, f"Dave <{test_pgp_mime.DAVE}>", passphrase)
        test_pgp_mime.forget_passphrases(home)
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        log = tmp_path / "gpg-runs.log"
        wrapper = bin_dir / "gpg"
        wrapper.write_text(
            f'#!/bin/sh\nprintf "argv: %s\\n" "$@" >> "{log}"\nenv >> "{log}"\nexec "{real}" "$@"\n'
        )
        wrapper.chmod(0o755)
        env = {**os.environ, "GNUPGHOME": str(home), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        sink = Sink()
        port = servers.smtp(sink)
        args = send_args(port, "--body", "Hi\n", "--pgp-sign", "--pgp-key", dave)
        run = answer_at_terminal(args, b"passphrase (not shown)", passphrase, env)
        assert run.returncode == 0, run.err
        (received,) = sink.messages
        assert b"BEGIN PGP SIGNATURE" in received.content
        runs = log.read_bytes()
        assert b"--passphrase-fd" in runs or b"--pinentry-mode" in runs, runs[:2000]
        blobs = {
            "gpg's argv and environment": runs,
            "stdout": run.out,
            "stderr": run.err + run.seen,
            "the terminal's echo": run.echoed,
            "the message sent": received.content,
            **files_under(isolated_dirs),
        }
        found = [
            name
            for name, blob in blobs.items()
            if any(n in blob for n in leak_patterns(passphrase))
        ]
        assert found == [], f"the passphrase is in {found}"
    finally:
        test_pgp_mime._close_home(home)
