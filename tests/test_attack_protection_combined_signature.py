"""A message signed and encrypted in one OpenPGP message (RFC 3156 section 6.2) says who signed.

RFC 3156 allows two ways to sign and encrypt: a multipart/signed inside
the encryption (section 6.1, what tuimail sends), or one OpenPGP message
that is both signed and encrypted (section 6.2, the "combined method", what
``gpg --sign --encrypt`` makes and other mail programs send). gpg checks
the signature of the second while decrypting; the views threw that away
and showed such a message, decrypted, as not signed at all. They now say
gpg's verdict, as for the first way.
"""

from __future__ import annotations

import secrets

from tests import test_pgp_mime
from tests.test_pgp_mime import ALICE, BOB, Keyring, _gpg
from tuimail import pgp_mime
from tuimail.inbox.protection_view import describe

keyring = test_pgp_mime.keyring
gnupghome = test_pgp_mime.gnupghome

ENTITY = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nSigned and sealed at once.\r\n"


def _combined(home: Keyring, *how: str) -> bytes:
    armored = _gpg(home.home, "--armor", "--always-trust", *how, "-r", home.alice, input=ENTITY)
    assert armored.returncode == 0, armored.stderr
    boundary = f"b{secrets.token_hex(8)}"
    return (
        (
            f"From: Alice <{ALICE}>\r\nTo: {BOB}\r\nSubject: Combined\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\r\n'
            f' boundary="{boundary}"\r\n\r\n--{boundary}\r\n'
            "Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n"
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + armored.stdout.replace(b"\n", b"\r\n")
        + f"\r\n--{boundary}--\r\n".encode()
    )


def test_the_signature_inside_the_encryption_is_shown(gnupghome: Keyring) -> None:
    wire = _combined(gnupghome, "--sign", "--local-user", gnupghome.alice, "--encrypt")
    report = describe(wire, decrypt=True)
    assert report.cleartext is not None and b"Signed and sealed at once." in report.cleartext
    assert report.pgp is not None and report.pgp.signature is not None
    assert report.pgp.signature.verdict is pgp_mime.SignatureVerdict.VALID
    assert f"OpenPGP signature valid, signed by Alice <{ALICE}>" in report.lines()
    assert report.signed


def test_encrypted_without_a_signature_says_none(gnupghome: Keyring) -> None:
    report = describe(_combined(gnupghome, "--encrypt"), decrypt=True)
    assert report.cleartext is not None
    assert report.pgp is not None and report.pgp.signature is None
    assert not report.signed
