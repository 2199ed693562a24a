"""Attacks on decrypting for display (tuimail/inbox/protection_view.py, F5's ``x``).

Real gpg in a keyring of its own (tests/test_pgp_mime.py) and real openssl
with certificates from tests/smime_support.py. What is decrypted must stay in
memory: an ``openssl`` wrapper put first on PATH looks in its working
directory, after the real openssl ran, for any file holding the clear text.
A small encrypted message that decompresses to far more than any message may
hold must be refused, not read whole into memory.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from tests import test_pgp_mime
from tests.test_pgp_mime import ALICE, BOB, Keyring

keyring = test_pgp_mime.keyring
gnupghome = test_pgp_mime.gnupghome

SECRET = b"Only-Bob-may-read-this-7f3a9c"


def _wrapped_openssl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``openssl`` on PATH that runs the real one, then lists any file under its
    working directory holding SECRET (in the clear) into the returned log."""
    real = shutil.which("openssl")
    if real is None:
        pytest.skip("openssl is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "seen.log"
    log.touch()
    script = bin_dir / "openssl"
    script.write_text(
        "#!/bin/sh\n"
        f'"{real}" "$@"\n'
        "rc=$?\n"
        f'grep -rl "{SECRET.decode()}" . >> "{log}" 2>/dev/null\n'
        'exit "$rc"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_smime_signed_then_encrypted_is_never_written_in_the_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking the signature inside a decrypted S/MIME message must not put the
    decrypted message in a file (openssl reads it from its stdin)."""
    from tests.smime_support import TestCA
    from tuimail import smime
    from tuimail.inbox.protection_view import describe

    ca = TestCA(tmp_path / "ca")
    people = {a: ca.issue(a) for a in (ALICE, BOB)}

    def signer(address: str) -> smime.Signer:
        return smime.load_signer(
            smime.SmimeSettings(
                sign=True,
                encrypt=False,
                cert=str(people[address].cert_path),
                key=str(people[address].key_path),
                passphrase_command="",
                profile_name="p",
            )
        )

    entity = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + SECRET + b"\r\n"
    sealed = smime.encrypt_entity(smime.sign_entity(entity, signer(ALICE)), [people[BOB].cert])
    wire = f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: s\r\nMIME-Version: 1.0\r\n".encode() + sealed
    log = _wrapped_openssl(tmp_path, monkeypatch)
    opened = describe(wire, decrypt=True, smime_signer=signer(BOB), smime_ca=ca.ca_file)
    assert opened.cleartext is not None and SECRET in opened.cleartext
    assert opened.smime is not None and opened.smime.verification is not None
    assert opened.smime.verification.verdict is smime.Verdict.VALID
    assert log.read_text() == "", f"clear text written to disk: {log.read_text()}"
    # And a plain signed message is still checked (its tampering still seen).
    signed = f"From: {ALICE}\r\nMIME-Version: 1.0\r\n".encode() + smime.sign_entity(
        entity, signer(ALICE)
    )
    assert smime.verify_smime(signed, ca.ca_file).verdict is smime.Verdict.VALID
    forged = signed.replace(SECRET, SECRET.upper())
    assert smime.verify_smime(forged, ca.ca_file).verdict is smime.Verdict.INVALID


def test_pgp_compression_bomb_is_refused_not_read_whole(gnupghome: Keyring) -> None:
    """200 MB of zeros compress to a few hundred kB; decrypting it for display must
    stop at the message size limit instead of holding it all in memory."""
    import resource
    import subprocess

    from tuimail import pgp_mime

    env = {**os.environ, "GNUPGHOME": str(gnupghome.home)}
    size = 200 * 1024 * 1024
    armored = subprocess.run(
        ["gpg", "--batch", "--yes", "--trust-model", "always", "-a", "-z", "9",
         "--compress-algo", "zlib", "-e", "-r", ALICE, "-o", "-"],
        input=bytes(size), capture_output=True, env=env, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert len(armored) < 2 * 1024 * 1024
    boundary = "bomb-boundary"
    wire = (
        (
            f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: bomb\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\r\n'
            f' boundary="{boundary}"\r\n\r\n--{boundary}\r\n'
            "Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n"
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + armored.replace(b"\n", b"\r\n")
        + f"\r\n--{boundary}--\r\n".encode()
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(pgp_mime.PgpError, match=r"more than 64 MiB|could not decrypt"):
        pgp_mime.decrypt(wire, timeout=60)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 150 * 1024, f"decrypting grew memory by {grown_kib} KiB"
