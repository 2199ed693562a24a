"""Attacks on the order of protection (tuimail/protection.py) through ``tuimail send --eml``.

A prepared message that is already signed or encrypted (OpenPGP or S/MIME)
must not be wrapped a second time by the profile's or the options' scheme,
whichever schemes they are; a prepared message with Bcc is never encrypted
(``-t`` reads the Bcc from the file); a queued message is sent again as it
was stored, never signed again. Real gpg (tests/test_pgp_mime.py's keyring),
a real SMTP sink on loopback (tests/smtpservers.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import test_pgp_mime
from tests.cli_helpers import run_tuimail
from tests.smtpservers import ServerThread, Sink
from tests.test_pgp_mime import ALICE, BOB, Keyring
from tuimail.cli import exitcodes

keyring = test_pgp_mime.keyring
gnupghome = test_pgp_mime.gnupghome


def _prepared(*, sign: bool = False, encrypt: bool = False, bcc: str = "") -> bytes:
    from tuimail import pgp_mime
    from tuimail.message import Draft, build_message

    draft = Draft(from_address=f"Alice <{ALICE}>", to=[BOB], subject="Prepared", body="Hi\n")
    built = build_message(draft)
    if sign or encrypt:
        built = pgp_mime.protect(built, pgp_mime.PgpSettings(sign=sign, encrypt=encrypt))
    wire = built.to_bytes()
    return (f"Bcc: {bcc}\r\n".encode() + wire) if bcc else wire


def _send_eml(port: int, path: Path, *extra: str) -> object:
    return run_tuimail(
        "send", "--server", f"127.0.0.1:{port}", "--security", "none",
        "--eml", str(path), "-t", *extra,
    )  # fmt: skip


@pytest.mark.parametrize("flag", ["--pgp-sign", "--pgp-encrypt"])
def test_an_already_openpgp_message_is_not_wrapped_again(
    gnupghome: Keyring, servers: ServerThread, isolated_dirs: Path, tmp_path: Path, flag: str
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    path = tmp_path / "signed.eml"
    path.write_bytes(_prepared(sign=True))
    result = _send_eml(port, path, flag, "--no-queue")
    assert sink.messages == [], "an OpenPGP-signed message was wrapped in OpenPGP again"
    assert result.returncode != 0  # type: ignore[attr-defined]
    assert "already OpenPGP-signed or encrypted" in result.stderr  # type: ignore[attr-defined]


def test_an_already_smime_message_is_not_wrapped_in_openpgp(
    gnupghome: Keyring, servers: ServerThread, isolated_dirs: Path, tmp_path: Path
) -> None:
    from tests.smime_support import TestCA
    from tuimail import smime

    ca = TestCA(tmp_path / "ca")
    alice = ca.issue(ALICE)
    signer = smime.load_signer(
        smime.SmimeSettings(sign=True, encrypt=False, cert=str(alice.cert_path),
                            key=str(alice.key_path), passphrase_command="", profile_name="p")
    )  # fmt: skip
    wire = _prepared()
    signed = smime.protect_bytes(wire, needs_smtputf8=False, signer=signer, recipients=[])
    path = tmp_path / "smime.eml"
    path.write_bytes(signed)
    sink = Sink()
    port = servers.smtp(sink)
    result = _send_eml(port, path, "--pgp-sign", "--no-queue")
    assert sink.messages == [], "an S/MIME-signed message was wrapped in OpenPGP"
    assert "already S/MIME-signed or encrypted" in result.stderr  # type: ignore[attr-defined]


def test_bcc_in_a_prepared_message_is_never_encrypted(
    gnupghome: Keyring, servers: ServerThread, isolated_dirs: Path, tmp_path: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    path = tmp_path / "bcc.eml"
    path.write_bytes(_prepared(bcc=ALICE))
    result = _send_eml(port, path, "--pgp-encrypt")
    assert result.returncode == exitcodes.INVALID_MESSAGE, result.stderr  # type: ignore[attr-defined]
    assert "cannot have Bcc recipients" in result.stderr  # type: ignore[attr-defined]
    assert sink.messages == []


def test_a_retry_from_the_outbox_is_not_signed_again(
    gnupghome: Keyring, servers: ServerThread, isolated_dirs: Path
) -> None:
    """The first attempt is refused for now (451) after signing; ``outbox retry`` sends
    the stored bytes: one OpenPGP signature, the same bytes as queued."""
    import json

    from tests.cli_helpers import send_args

    sink = Sink(data_reply="451 4.3.0 try again later")
    port = servers.smtp(sink)
    first = run_tuimail(*send_args(port, "--body", "Once.\n", "--pgp-sign"))
    assert first.returncode != 0, first.stdout
    (queued,) = json.loads(run_tuimail("outbox", "list", "--json").stdout)
    stored = [
        p.read_bytes()
        for p in (isolated_dirs / "data" / "tuimail" / "outbox").rglob("*")
        if p.is_file() and b"BEGIN PGP SIGNATURE" in p.read_bytes()
    ]
    assert len(stored) == 1, "the signed message is stored once"
    sink.data_reply = None
    retried = run_tuimail("outbox", "retry", queued["key"])
    assert retried.returncode == 0, retried.stderr
    (received,) = sink.messages
    assert received.content.count(b"BEGIN PGP SIGNATURE") == 1
    assert (
        received.content.replace(b"\r\n", b"\n").rstrip()
        == stored[0].replace(b"\r\n", b"\n").rstrip()
    )


def test_a_prepared_dkim_signature_is_never_sent_broken_by_wrapping(
    gnupghome: Keyring, servers: ServerThread, isolated_dirs: Path, tmp_path: Path
) -> None:
    """A prepared message that carries a valid DKIM-Signature: wrapping it in OpenPGP
    changes the body that signature covers, so it would arrive failing. Refused in words."""
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    wire = _prepared()
    signed = dkim.sign(wire, b"sel", b"example.test", pem) + wire
    path = tmp_path / "dkim.eml"
    path.write_bytes(signed)
    sink = Sink()
    port = servers.smtp(sink)
    result = _send_eml(port, path, "--pgp-sign", "--no-queue")
    assert sink.messages == [], "a DKIM-signed message was wrapped: its signature arrives broken"
    assert result.returncode != 0  # type: ignore[attr-defined]
    assert "DKIM-Signature" in result.stderr  # type: ignore[attr-defined]
    # Without wrapping it goes as prepared, its signature intact.
    plain = _send_eml(port, path, "--no-queue")
    assert plain.returncode == 0, plain.stderr  # type: ignore[attr-defined]
    (received,) = sink.messages
    assert received.content.count(b"DKIM-Signature:") == 1


def test_bcc_in_a_prepared_message_is_never_smime_encrypted(
    servers: ServerThread, isolated_dirs: Path, tmp_path: Path
) -> None:
    import shutil

    from tests.smime_support import TestCA

    ca = TestCA(tmp_path / "ca")
    people = {a: ca.issue(a) for a in (ALICE, BOB)}
    directory = tmp_path / "recipients"
    directory.mkdir()
    for address, identity in people.items():
        shutil.copy(identity.cert_path, directory / f"{address}.pem")
    path = tmp_path / "bcc.eml"
    path.write_bytes(_prepared(bcc=ALICE))
    sink = Sink()
    port = servers.smtp(sink)
    result = _send_eml(
        port, path, "--smime-encrypt", "--smime-cert", str(people[ALICE].cert_path),
        "--smime-key", str(people[ALICE].key_path), "--smime-recipient-certs", str(directory),
    )  # fmt: skip
    assert result.returncode == exitcodes.INVALID_MESSAGE, result.stderr  # type: ignore[attr-defined]
    assert "refused with Bcc recipients" in result.stderr  # type: ignore[attr-defined]
    assert sink.messages == []
