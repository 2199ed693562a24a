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


def _encrypted_to_alice(entity: bytes, subject: str) -> bytes:
    """A PGP/MIME encrypted message (to Alice, whose secret key is in the keyring) of ``entity``."""
    import subprocess

    armored = subprocess.run(
        ["gpg", "--batch", "--yes", "--trust-model", "always", "-a", "-e", "-r", ALICE, "-o", "-"],
        input=entity, capture_output=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    boundary = f"enc-{subject}"
    return (
        (
            f"From: {BOB}\r\nTo: {ALICE}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\r\n'
            f' boundary="{boundary}"\r\n\r\n--{boundary}\r\n'
            "Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n"
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + armored.replace(b"\n", b"\r\n")
        + f"\r\n--{boundary}--\r\n".encode()
    )


async def test_f5_decrypted_escapes_and_a_second_layer_stay_inert(
    gnupghome: Keyring, isolated_dirs: Path
) -> None:
    """Decrypting (``x``) a message whose clear text holds terminal escapes and bidi
    controls, and whose inside is itself encrypted: the escapes are shown escaped, the
    second layer is shown as the encrypted message it is (never decrypted on its own)."""
    from tests.test_protection_view import _captured
    from tests.test_sandbox_shared import open_f5
    from tests.ui_support import static_text, wait_for
    from tuimail.ui.app import TuimailApp

    hostile = (
        b"From: The CEO <ceo@bank.example>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Visible-start \x1b]0;pwned\x07\x1b[2J \xe2\x80\xaeevil\r\n"
    )
    inner_secret = b"Content-Type: text/plain\r\n\r\nSecond-layer-text\r\n"
    nested = _encrypted_to_alice(_encrypted_to_alice(inner_secret, "inner"), "Nested")
    # The nested message's own From/Subject are headers of the inner entity.
    _captured(_encrypted_to_alice(hostile, "Hostile"), nested)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:

        def view() -> str:
            return static_text(app, "#message-view")

        table = await open_f5(pilot, 2)
        table.focus()
        at = {str(table.get_row_at(i)[3]): i for i in range(2)}
        table.move_cursor(row=at["Hostile"])
        await wait_for(pilot, lambda: "Subject: Hostile" in view(), "the hostile message")
        await pilot.press("x")
        await wait_for(pilot, lambda: "Visible-start" in view(), "the decrypted text")
        text = view()
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        assert "ceo@bank.example" not in text, "a From chosen inside shown as the sender"
        assert "\\x1b" in text or "\\u001b" in text.lower() or "^[" in text, text
        table.move_cursor(row=at["Nested"])
        await wait_for(pilot, lambda: "Subject: Nested" in view(), "the nested message")
        await pilot.press("x")
        await wait_for(pilot, lambda: "decrypted for display" in view(), "the outer layer")
        assert "Second-layer-text" not in view()
        # What the sender put inside never stands next to the message's own fields.
        assert "Subject: Nested\n" in view() and "inner" not in view(), view()
        assert f"From: {BOB}\n" in view(), view()
