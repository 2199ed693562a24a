"""Attacks on the views through a signer's name: an S/MIME certificate whose subject
common name and e-mail address hold terminal escapes, bidi controls and 10 kB.

A signed message is put in the sandbox's maildir and read back by ``tuimail
inbox show`` (text and ``--json``) as a real process: no escape byte, no bidi
control reaches the output, and the name is cut to a line a person can read.
"""

from __future__ import annotations

import datetime
import json
import warnings
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.cli_helpers import run_tuimail
from tests.test_protection_view import _captured, _ids

HOSTILE = "\x1b]0;pwned\x07\x1b[31m\u202eevil\u202c" + "N" * 10_000


def _hostile_signer() -> object:
    from tuimail import smime

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    with warnings.catch_warnings():
        # Longer than X.509 allows, on purpose: cryptography warns as it builds it.
        warnings.simplefilter("ignore", UserWarning)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTILE, _validate=False)])
    email = "a\x1b[2J" + "m" * 10_000 + "@example.test"
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return smime.Signer(cert, [], key)


def _bounded_and_escaped(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text
    assert "\u202e" not in text and "\u202c" not in text
    assert "N" * 1000 not in text, "a 10 kB signer name reached the output whole"
    assert "m" * 1000 not in text, "a 10 kB e-mail address reached the output whole"


def test_hostile_smime_signer_is_escaped_and_cut_in_inbox_show(isolated_dirs: Path) -> None:
    from tuimail import smime

    signer = _hostile_signer()
    assert isinstance(signer, smime.Signer)
    entity = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nhello\r\n"
    wire = (
        b"From: a@example.test\r\nTo: b@example.test\r\nSubject: hostile\r\n"
        b"MIME-Version: 1.0\r\n" + smime.sign_entity(entity, signer)
    )
    _captured(wire)
    message_id = _ids()["hostile"]
    text = run_tuimail("inbox", "show", message_id, "--no-check")
    assert text.returncode == 0, text.stderr
    assert "S/MIME signature" in text.stdout
    _bounded_and_escaped(text.stdout)
    shown = run_tuimail("inbox", "show", message_id, "--no-check", "--json")
    assert shown.returncode == 0, shown.stderr
    _bounded_and_escaped(shown.stdout)
    document = json.loads(shown.stdout)
    assert document["protection"]["smime"]["verification"]["verdict"] == "untrusted"


def test_hostile_openpgp_user_id_is_escaped_and_cut(isolated_dirs: Path, tmp_path: Path) -> None:
    """A gpg key whose user id holds an escape sequence, a bidi override and 1.8 kB signs a
    message; ``inbox show`` (text and --json) says the signer escaped and cut."""
    import os
    import subprocess

    from tests.test_pgp_mime import _close_home, _new_home
    from tuimail import pgp_mime
    from tuimail.message import Draft, build_message

    home = _new_home()
    try:
        env = {**os.environ, "GNUPGHOME": str(home)}
        uid = "Evil \x1b]0;pwned\x07\x1b[31m\u202eredro " + "N" * 1800 + " <evil@example.test>"
        made = subprocess.run(
            ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
             "--quick-gen-key", uid, "ed25519", "sign", "1d"],
            capture_output=True, env=env, timeout=60,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        draft = Draft(from_address="evil@example.test", to=["b@example.test"],
                      subject="hostile", body="hi\n")  # fmt: skip
        os.environ["GNUPGHOME"] = str(home)
        try:
            wire = pgp_mime.protect(
                build_message(draft), pgp_mime.PgpSettings(sign=True, key="evil@example.test")
            ).to_bytes()
        finally:
            del os.environ["GNUPGHOME"]
        _captured(wire)
        message_id = _ids()["hostile"]
        for extra in ((), ("--json",)):
            shown = run_tuimail(
                "inbox", "show", message_id, "--no-check", *extra, env={"GNUPGHOME": str(home)}
            )
            assert shown.returncode == 0, shown.stderr
            assert "Evil" in shown.stdout, shown.stdout[:3000]
            assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
            assert "\u202e" not in shown.stdout
            assert "N" * 300 not in shown.stdout
    finally:
        _close_home(home)
