"""Protected headers of an internationalised message say the addresses it was sent to.

With ``pgp_protected_headers`` the From, To, Cc, Subject, Date and
Message-ID are copied into the signed (and encrypted) part, where a reader
such as Thunderbird shows them. A message to ``jörg@exämple.test`` goes
with SMTPUTF8 and UTF-8 headers; the copy inside was written
``To: =?unknown-8bit?q?j=C3=B6rg?=@xn--exmple-cua.test``, an encoded word
inside an address, which no reader decodes to Jörg's address. The copy now
says what the outside says; the body stays 7-bit (RFC 3156 section 5), and
gpg verifies it.
"""

from __future__ import annotations

from email import message_from_bytes
from email import policy as email_policy

from tests import test_pgp_mime
from tests.test_pgp_mime import ALICE, BOB, Keyring
from tuimail import pgp_mime
from tuimail.message import Draft, build_message

keyring = test_pgp_mime.keyring
gnupghome = test_pgp_mime.gnupghome

JOERG = "jörg@exämple.test"


def test_an_smtputf8_address_is_copied_inside_as_it_is_outside(gnupghome: Keyring) -> None:
    draft = Draft(
        from_address=f"Alice <{ALICE}>", to=[JOERG], cc=[BOB], subject="Grüße", body="Hallo\n"
    )
    message = build_message(draft)
    assert message.needs_smtputf8
    settings = pgp_mime.PgpSettings(sign=True, protected_headers=True)
    wire = pgp_mime.protect(message, settings).to_bytes()
    signed, status = _verify(gnupghome, wire)
    assert f"VALIDSIG {gnupghome.alice}" in status
    outside = message_from_bytes(wire, policy=email_policy.SMTPUTF8)
    inside = message_from_bytes(signed, policy=email_policy.SMTPUTF8)
    assert inside.get_param("protected-headers") == "v1"
    for name in ("From", "To", "Cc", "Subject", "Message-ID"):
        assert str(inside[name]) == str(outside[name]), name
    assert "jörg@" in str(inside["To"]) and "unknown-8bit" not in signed.decode()
    body = signed.split(b"\r\n\r\n", 1)[1]
    assert all(b < 0x80 for b in body)


def _verify(keys: Keyring, wire: bytes) -> tuple[bytes, str]:
    """gpg's verdict on the signed part (tests/test_pgp_mime.py's verify_signed also
    demands a 7-bit part; the headers inside are UTF-8 here, as the message's own are)."""
    import shutil
    import tempfile
    from pathlib import Path

    from tests.test_pgp_mime import _gpg, raw_parts

    message = message_from_bytes(wire, policy=email_policy.SMTPUTF8)
    boundary = message.get_boundary()
    assert boundary is not None
    signed, signature = raw_parts(wire, boundary)
    directory = Path(tempfile.mkdtemp(prefix="tm-sig-"))
    try:
        (directory / "data").write_bytes(signed)
        sig = signature[signature.index(b"-----BEGIN PGP SIGNATURE-----") :]
        (directory / "data.asc").write_bytes(sig)
        result = _gpg(
            keys.home, "--status-fd", "1", "--verify",
            str(directory / "data.asc"), str(directory / "data"),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return signed, result.stdout.decode()
    finally:
        shutil.rmtree(directory)
