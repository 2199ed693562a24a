"""PGP/MIME on send: real gpg keys, real gpg (and Sequoia's sq) reading what tuimail made.

Keys are made by the test in a GNUPGHOME of its own (a short path under
/tmp: gpg-agent's socket path has a length limit): Alice (the sender, no
passphrase, ultimately trusted as her own), Bob (made in another home and
imported, so untrusted), Erin (expired: made two years in the past with a
one-year life), Dave (with a passphrase, for the locked-key path). Every
message is parsed by the email package and checked by ``gpg`` itself; one
signed and encrypted message is also read by ``sq``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.cli_helpers import answer_at_terminal, run_tuimail, send_args
from tests.conftest import require, require_tool
from tests.smtpservers import ServerThread, Sink
from tuimail import pgp_mime
from tuimail.cli import exitcodes
from tuimail.message import Draft, build_message

ALICE = "alice@example.test"
BOB = "bob@example.test"
CAROL = "carol@example.test"  # no key at all
DAVE = "dave@example.test"
ERIN = "erin@example.test"
PASSPHRASE = "correct horse battery staple"


@dataclass(frozen=True)
class Keyring:
    home: Path
    alice: str
    bob: str
    dave: str
    bob_secret: Path  # Bob's secret key, for decrypting as Bob and for sq
    alice_public: Path


def _gpg(home: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["gpg", "--batch", "--no-tty", "--pinentry-mode", "loopback", *args],
        input=input,
        capture_output=True,
        env={**os.environ, "GNUPGHOME": str(home)},
        timeout=120,
        check=False,
    )


def _make_key(home: Path, uid: str, passphrase: str = "", *before: str, expire: str = "2y") -> str:
    made = _gpg(
        home,
        *before,
        "--passphrase",
        passphrase,
        "--quick-gen-key",
        uid,
        "future-default",
        "default",
        expire,
    )
    assert made.returncode == 0, made.stderr
    listed = _gpg(home, "--with-colons", "--list-keys", uid).stdout.decode()
    return next(line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:"))


def _new_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="tm-gpg-", dir="/tmp"))
    home.chmod(0o700)
    return home


def _close_home(home: Path) -> None:
    subprocess.run(
        ["gpgconf", "--kill", "gpg-agent"],
        env={**os.environ, "GNUPGHOME": str(home)},
        capture_output=True,
        timeout=30,
        check=False,
    )
    shutil.rmtree(home, ignore_errors=True)


def forget_passphrases(home: Path) -> None:
    """Empty gpg-agent's passphrase cache (it keeps the one a key was made or used with)."""
    subprocess.run(
        ["gpgconf", "--reload", "gpg-agent"],
        env={**os.environ, "GNUPGHOME": str(home)},
        capture_output=True,
        timeout=30,
        check=False,
    )


@pytest.fixture(scope="module")
def keyring() -> Iterator[Keyring]:
    require_tool("gpg", "gnupg")
    require(shutil.which("gpgconf") is not None, "gpgconf (Debian package gnupg)")
    home, other = _new_home(), _new_home()
    try:
        alice = _make_key(home, f"Alice <{ALICE}>")
        dave = _make_key(home, f"Dave <{DAVE}>", PASSPHRASE)
        _make_key(
            home, f"Erin <{ERIN}>", "", "--faked-system-time", "20200101T000000!", expire="1y"
        )
        bob = _make_key(other, f"Bob <{BOB}>")
        public = _gpg(other, "--armor", "--export", bob).stdout
        assert _gpg(home, "--import", input=public).returncode == 0
        secret = home.parent / f"{home.name}-bob.asc"
        secret.write_bytes(_gpg(other, "--armor", "--export-secret-keys", bob).stdout)
        alice_public = home.parent / f"{home.name}-alice.asc"
        alice_public.write_bytes(_gpg(home, "--armor", "--export", alice).stdout)
        forget_passphrases(home)
        yield Keyring(home, alice, bob, dave, secret, alice_public)
    finally:
        for path in home.parent.glob(f"{home.name}-*.asc"):
            path.unlink()
        _close_home(home)
        _close_home(other)


@pytest.fixture
def gnupghome(keyring: Keyring, monkeypatch: pytest.MonkeyPatch) -> Keyring:
    monkeypatch.setenv("GNUPGHOME", str(keyring.home))
    return keyring


def outgoing(*, to: list[str], bcc: list[str] | None = None, subject: str = "Hello") -> object:
    draft = Draft(
        from_address=f"Alice <{ALICE}>",
        to=to,
        bcc=bcc or [],
        subject=subject,
        body="Dear Bob,\nthe plans are inside.\n-- \nAlice\n",
    )
    return build_message(draft)


def parsed(wire: bytes) -> EmailMessage:
    message = message_from_bytes(wire, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    assert not message.defects
    return message


def raw_parts(wire: bytes, boundary: str) -> list[bytes]:
    """The parts between ``boundary`` lines exactly as sent (RFC 3156: what was signed)."""
    body = wire[wire.index(b"\r\n\r\n") + 4 :]
    delimiter = b"\r\n--" + boundary.encode()
    pieces = (b"\r\n" + body).split(delimiter)
    return [p[2:] for p in pieces[1:-1]]


def verify_signed(home: Path, wire: bytes) -> tuple[bytes, str]:
    """gpg's verdict on a multipart/signed message: (the signed part, gpg's status lines)."""
    message = parsed(wire)
    assert message.get_content_type() == "multipart/signed"
    assert message.get_param("protocol") == "application/pgp-signature"
    boundary = message.get_boundary()
    assert boundary is not None
    signed, signature = raw_parts(wire, boundary)
    assert b"Content-Type: application/pgp-signature" in signature
    assert all(b < 0x80 for b in signed)
    assert not any(line.endswith((b" ", b"\t")) for line in signed.split(b"\r\n"))
    directory = Path(tempfile.mkdtemp(prefix="tm-sig-"))
    try:
        (directory / "data").write_bytes(signed)
        sig = signature[signature.index(b"-----BEGIN PGP SIGNATURE-----") :]
        (directory / "data.asc").write_bytes(sig)
        verdict = _gpg(
            home,
            "--status-fd",
            "1",
            "--verify",
            str(directory / "data.asc"),
            str(directory / "data"),
        )
        assert verdict.returncode == 0, verdict.stderr
        return signed, verdict.stdout.decode()
    finally:
        shutil.rmtree(directory)


def decrypt(home: Path, wire: bytes) -> bytes:
    message = parsed(wire)
    assert message.get_content_type() == "multipart/encrypted"
    assert message.get_param("protocol") == "application/pgp-encrypted"
    control, data = list(message.iter_parts())
    assert control.get_content_type() == "application/pgp-encrypted"
    version = control.get_payload(decode=True)
    assert isinstance(version, bytes) and version.strip() == b"Version: 1"
    assert data.get_content_type() == "application/octet-stream"
    armored = data.get_payload(decode=True)
    assert isinstance(armored, bytes) and armored.startswith(b"-----BEGIN PGP MESSAGE-----")
    result = _gpg(home, "--decrypt", input=armored)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_signed_message_verified_by_gpg(gnupghome: Keyring) -> None:
    message = outgoing(to=[BOB])
    settings = pgp_mime.PgpSettings(sign=True)
    wire = pgp_mime.protect(message, settings).to_bytes()  # type: ignore[arg-type]
    signed, status = verify_signed(gnupghome.home, wire)
    assert f"VALIDSIG {gnupghome.alice}" in status
    outer = parsed(wire)
    # micalg names the hash gpg used (the status line's 8th field is its id).
    hash_id = next(line for line in status.splitlines() if "VALIDSIG" in line).split()[9]
    assert outer.get_param("micalg") == "pgp-" + pgp_mime.HASH_NAMES[hash_id]
    assert outer["Subject"] == "Hello" and outer["To"] == BOB
    inner = message_from_bytes(signed, policy=email_policy.default)
    assert isinstance(inner, EmailMessage)
    # The "-- " line's trailing space is encoded, so no transport can strip it.
    assert inner["Content-Transfer-Encoding"] == "quoted-printable"
    assert "-- \nAlice" in inner.get_content().replace("\r\n", "\n")
    summary = pgp_mime.summary(wire)
    assert summary is not None and summary.signed_by == gnupghome.alice


def test_encrypted_to_each_recipient_and_the_sender(gnupghome: Keyring) -> None:
    message = outgoing(to=[BOB, ALICE])
    wire = pgp_mime.protect(message, pgp_mime.PgpSettings(encrypt=True)).to_bytes()  # type: ignore[arg-type]
    assert b"the plans are inside" not in wire
    inner = message_from_bytes(decrypt(gnupghome.home, wire), policy=email_policy.default)
    assert isinstance(inner, EmailMessage)
    assert "the plans are inside" in inner.get_content()
    summary = pgp_mime.summary(wire)
    assert summary is not None and summary.encrypted and len(summary.encrypted_to) == 2
    # Bob reads it with his own key, in a home of his own.
    bob_home = _new_home()
    try:
        assert _gpg(bob_home, "--import", str(gnupghome.bob_secret)).returncode == 0
        assert b"the plans are inside" in decrypt(bob_home, wire)
    finally:
        _close_home(bob_home)


def test_signed_then_encrypted_with_protected_headers(gnupghome: Keyring) -> None:
    message = outgoing(to=[BOB], subject="Secret plans")
    settings = pgp_mime.PgpSettings(sign=True, encrypt=True, protected_headers=True)
    wire = pgp_mime.protect(message, settings).to_bytes()  # type: ignore[arg-type]
    outer = parsed(wire)
    assert outer["Subject"] == "..."
    assert b"Secret plans" not in wire
    clear = decrypt(gnupghome.home, wire)
    signed, status = verify_signed(gnupghome.home, clear)
    assert f"VALIDSIG {gnupghome.alice}" in status
    inner = message_from_bytes(signed, policy=email_policy.default)
    assert inner.get_param("protected-headers") == "v1"
    assert inner["Subject"] == "Secret plans" and inner["To"] == BOB


def test_key_status_per_recipient(gnupghome: Keyring) -> None:
    found = {k.address: k.status for k in pgp_mime.recipient_keys([ALICE, BOB, CAROL, ERIN])}
    assert found == {
        ALICE: pgp_mime.KeyStatus.TRUSTED,
        BOB: pgp_mime.KeyStatus.UNTRUSTED,
        CAROL: pgp_mime.KeyStatus.MISSING,
        ERIN: pgp_mime.KeyStatus.EXPIRED,
    }


def test_opportunistic_encrypts_only_when_every_recipient_has_a_key(gnupghome: Keyring) -> None:
    settings = pgp_mime.PgpSettings(opportunistic=True)
    some = outgoing(to=[BOB, CAROL])
    assert pgp_mime.protect(some, settings) is some  # type: ignore[arg-type]
    every = pgp_mime.protect(outgoing(to=[BOB]), settings)  # type: ignore[arg-type]
    assert parsed(every.to_bytes()).get_content_type() == "multipart/encrypted"


def test_locked_key_needs_its_passphrase(gnupghome: Keyring) -> None:
    forget_passphrases(gnupghome.home)
    message = outgoing(to=[BOB])
    settings = pgp_mime.PgpSettings(sign=True, key=gnupghome.dave)
    with pytest.raises(pgp_mime.PassphraseNeeded) as missing:
        pgp_mime.protect(message, settings)  # type: ignore[arg-type]
    assert not missing.value.wrong
    with pytest.raises(pgp_mime.PassphraseNeeded) as wrong:
        pgp_mime.protect(message, settings, "not it")  # type: ignore[arg-type]
    assert wrong.value.wrong
    wire = pgp_mime.protect(message, settings, PASSPHRASE).to_bytes()  # type: ignore[arg-type]
    _, status = verify_signed(gnupghome.home, wire)
    assert f"VALIDSIG {gnupghome.dave}" in status


def test_an_agent_refusing_loopback_is_named_not_called_a_missing_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ``no-allow-loopback-pinentry`` gpg lists no secret key at all: the refusal
    names the agent's setting, not an absent key the user can see in their keyring."""
    require_tool("gpg", "gnupg")
    home = _new_home()
    try:
        _make_key(home, f"Alice <{ALICE}>", PASSPHRASE)
        (home / "gpg-agent.conf").write_text("no-allow-loopback-pinentry\n")
        _close_home_agent = ["gpgconf", "--kill", "gpg-agent"]
        subprocess.run(_close_home_agent, env={**os.environ, "GNUPGHOME": str(home)},
                       capture_output=True, timeout=30, check=False)  # fmt: skip
        monkeypatch.setenv("GNUPGHOME", str(home))
        with pytest.raises(pgp_mime.SigningKeyUnusable, match="no-allow-loopback-pinentry"):
            pgp_mime.protect(outgoing(to=[BOB]), pgp_mime.PgpSettings(sign=True))  # type: ignore[arg-type]
    finally:
        _close_home(home)


# -- the command line, through a real SMTP server ------------------------------------------------


def _nothing_stored(home: Path) -> None:
    data = home / "data"
    stored = [p for p in data.rglob("*") if p.is_file()] if data.exists() else []
    assert not [p for p in stored if b"Subject:" in p.read_bytes()], stored


def test_send_signed_and_encrypted_read_by_gpg_and_sq(
    gnupghome: Keyring, servers: ServerThread, tmp_path: Path
) -> None:
    sq = require_tool("sq", "sq")
    sink = Sink()
    port = servers.smtp(sink)
    args = send_args(port, "--body", "Signed and sealed.\n", "--pgp-sign", "--pgp-encrypt")
    result = run_tuimail(*args, "--no-queue")
    assert result.returncode == 0, result.stderr
    assert "=== OpenPGP/MIME: encrypted to 2 keys" in result.stdout
    (received,) = sink.messages
    wire = received.content
    assert b"Signed and sealed" not in wire
    clear = decrypt(gnupghome.home, wire)
    _, status = verify_signed(gnupghome.home, clear)
    assert f"VALIDSIG {gnupghome.alice}" in status
    # Sequoia reads the same message: decrypts as Bob, checks Alice's signature.
    data = list(parsed(wire).iter_parts())[1].get_payload(decode=True)
    assert isinstance(data, bytes)
    (tmp_path / "encrypted.asc").write_bytes(data)
    read = subprocess.run(
        [
            sq,
            "decrypt",
            "--recipient-key",
            str(gnupghome.bob_secret),
            str(tmp_path / "encrypted.asc"),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert read.returncode == 0, read.stderr
    inner = message_from_bytes(read.stdout, policy=email_policy.default)
    assert inner.get_content_type() == "multipart/signed"
    boundary = inner.get_boundary()
    assert boundary is not None
    signed, signature = raw_parts(read.stdout, boundary)
    (tmp_path / "signed").write_bytes(signed)
    (tmp_path / "signed.asc").write_bytes(signature[signature.index(b"-----BEGIN") :])
    checked = subprocess.run(
        [
            sq,
            "verify",
            "--signer-cert",
            str(gnupghome.alice_public),
            "--detached",
            str(tmp_path / "signed.asc"),
            str(tmp_path / "signed"),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert b"Signed and sealed" in signed


def test_send_signed_note_names_the_key(gnupghome: Keyring, servers: ServerThread) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    result = run_tuimail(*send_args(port, "--body", "Hi\n", "--pgp-sign", "--pgp-key", ALICE))
    assert result.returncode == 0, result.stderr
    assert f"=== OpenPGP/MIME: signed by key {gnupghome.alice}" in result.stdout
    (received,) = sink.messages
    verify_signed(gnupghome.home, received.content)


@pytest.mark.parametrize(
    ("recipient", "words"),
    [(CAROL, f"{CAROL}: no key in the keyring"), (ERIN, f"{ERIN}: the key has expired")],
)
def test_encrypt_refused_without_a_usable_key(
    gnupghome: Keyring,
    servers: ServerThread,
    isolated_dirs: Path,
    recipient: str,
    words: str,
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    args = send_args(port, "--cc", recipient, "--body", "Hi\n", "--pgp-encrypt")
    result = run_tuimail(*args)
    assert result.returncode == exitcodes.CONFIG, result.stderr
    assert "cannot encrypt: no usable OpenPGP key for" in result.stderr
    assert words in result.stderr and "nothing was sent" in result.stderr
    assert BOB not in result.stderr.split("for", 1)[1]  # Bob's key is usable: not named
    assert sink.messages == []
    _nothing_stored(isolated_dirs)


def test_encrypt_with_bcc_refused(
    gnupghome: Keyring, servers: ServerThread, isolated_dirs: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    args = send_args(port, "--bcc", ALICE, "--body", "Hi\n", "--pgp-encrypt")
    result = run_tuimail(*args)
    assert result.returncode == exitcodes.INVALID_MESSAGE, result.stderr
    assert "cannot have Bcc recipients" in result.stderr and ALICE in result.stderr
    assert sink.messages == []
    _nothing_stored(isolated_dirs)


def test_locked_key_without_a_terminal_refused(
    gnupghome: Keyring, servers: ServerThread, isolated_dirs: Path
) -> None:
    forget_passphrases(gnupghome.home)
    sink = Sink()
    port = servers.smtp(sink)
    args = send_args(port, "--body", "Hi\n", "--pgp-sign", "--pgp-key", gnupghome.dave)
    result = run_tuimail(*args)
    assert result.returncode == exitcodes.CONFIG, result.stderr
    assert "is locked: it needs its passphrase" in result.stderr
    assert "no terminal to ask at" in result.stderr
    assert PASSPHRASE not in result.stderr + result.stdout
    assert sink.messages == []
    _nothing_stored(isolated_dirs)


def test_locked_key_passphrase_asked_at_the_terminal_unechoed(
    gnupghome: Keyring, servers: ServerThread
) -> None:
    """At a terminal (a pty here) ``send`` asks for the passphrase with echo off, then signs."""

    forget_passphrases(gnupghome.home)
    sink = Sink()
    port = servers.smtp(sink)
    args = send_args(port, "--body", "Hi\n", "--pgp-sign", "--pgp-key", gnupghome.dave)
    run = answer_at_terminal([*args, "--no-queue"], b"passphrase (not shown)", PASSPHRASE)
    assert run.returncode == 0, run.err
    assert PASSPHRASE.encode() not in run.echoed + run.out + run.err + run.seen
    (received,) = sink.messages
    _, status = verify_signed(gnupghome.home, received.content)
    assert f"VALIDSIG {gnupghome.dave}" in status
