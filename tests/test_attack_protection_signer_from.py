"""A valid signature by someone who is not the From address is said to be so in the views.

Anyone can sign validly with their own key: Mallory signs a message whose
From says Alice, and the view said "OpenPGP signature valid, signed by
Mallory <mallory@evil.test>" under "From: Alice" — the word "valid" lent
to the name in From. Thunderbird and mutt say when the signer is not the
sender; so do tuimail's views now, for OpenPGP (the signing key must name
the From address by a user id someone the user trusts has certified) and
S/MIME (the certificate must name it). The keys and certificates are real
(gpg in a GNUPGHOME of the test's own, a test CA), and ``tuimail inbox
show`` reads the messages captured by a real ``tuimail serve``.
"""

from __future__ import annotations

import json
import shutil
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_helpers import run_tuimail
from tests.conftest import require, require_tool
from tests.smime_support import TestCA, openssl
from tests.test_cli_inbox import serving
from tests.test_pgp_mime import _close_home, _gpg, _make_key, _new_home
from tuimail import pgp_mime, smime
from tuimail.inbox.protection_view import describe
from tuimail.message import Draft, build_message

ALICE = "alice@example.test"
MALLORY = "mallory@evil.test"
FRANK = "frank@home.test"


@dataclass(frozen=True)
class Keys:
    home: Path
    alice: str
    mallory: str
    frank: str


@pytest.fixture(scope="module")
def keys() -> Iterator[Keys]:
    require_tool("gpg", "gnupg")
    require(shutil.which("gpgconf") is not None, "gpgconf (Debian package gnupg)")
    home, other = _new_home(), _new_home()
    try:
        alice = _make_key(home, f"Alice <{ALICE}>")
        mallory = _make_key(home, f"Mallory <{MALLORY}>")
        # Frank's key comes from elsewhere: in the keyring, but certified by nobody.
        frank = _make_key(other, f"Frank <{FRANK}>")
        exported = _gpg(other, "--armor", "--export", frank).stdout
        secret = _gpg(other, "--armor", "--export-secret-keys", frank).stdout
        assert _gpg(home, "--import", input=exported + secret).returncode == 0
        yield Keys(home, alice, mallory, frank)
    finally:
        _close_home(home)
        _close_home(other)


@pytest.fixture
def gnupghome(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> Keys:
    monkeypatch.setenv("GNUPGHOME", str(keys.home))
    return keys


def _signed(author: str, key: str) -> bytes:
    draft = Draft(
        from_address=author, to=["bob@example.test"], subject="Pay", body="Pay Mallory.\n"
    )
    settings = pgp_mime.PgpSettings(sign=True, key=key)
    return pgp_mime.protect(build_message(draft), settings).to_bytes()


def test_a_valid_signature_by_another_key_says_it_is_not_the_from_address(
    gnupghome: Keys,
) -> None:
    report = describe(_signed(f"Alice <{ALICE}>", gnupghome.mallory))
    (line,) = report.lines()
    assert line.startswith(f"OpenPGP signature valid, signed by Mallory <{MALLORY}>")
    assert line.endswith(f"but that key does not name the From address {ALICE}")
    assert report.to_json()["signer_vs_from"] == (
        f"that key does not name the From address {ALICE}"
    )
    honest = describe(_signed(f"Alice <{ALICE}>", gnupghome.alice))
    assert honest.lines() == [f"OpenPGP signature valid, signed by Alice <{ALICE}>"]
    assert honest.to_json()["signer_vs_from"] == ""


def test_a_key_that_names_the_from_address_uncertified_is_said_so(gnupghome: Keys) -> None:
    (line,) = describe(_signed(f"Frank <{FRANK}>", gnupghome.frank)).lines()
    assert line.startswith(f"OpenPGP signature valid, signed by Frank <{FRANK}>")
    assert line.endswith(
        f"user id for the From address {FRANK} is not certified by anyone you trust"
    )


def test_inbox_show_says_it_of_a_captured_message(gnupghome: Keys, isolated_dirs: Path) -> None:
    wire = _signed(f"Alice <{ALICE}>", gnupghome.mallory)
    with serving() as port, smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(ALICE, ["bob@example.test"], wire)
    (entry,) = json.loads(run_tuimail("inbox", "list", "--json").stdout)
    shown = run_tuimail("inbox", "show", entry["id"], "--no-check")
    assert shown.returncode == 0, shown.stderr
    assert f"does not name the From address {ALICE}" in shown.stdout


def test_an_smime_certificate_for_another_address_is_said_so(tmp_path: Path) -> None:
    openssl()
    ca = TestCA(tmp_path / "ca")
    mallory = ca.issue(MALLORY)
    signer = smime.load_signer(
        smime.SmimeSettings(
            sign=True, encrypt=False, cert=str(mallory.cert_path), key=str(mallory.key_path)
        )
    )
    for author, caveat in (
        (f"Alice <{ALICE}>", f"; the certificate does not name the From address {ALICE}"),
        (f"Mallory <{MALLORY}>", ""),
    ):
        draft = Draft(from_address=author, to=["bob@example.test"], subject="Pay", body="Pay.\n")
        message = build_message(draft)
        wire = smime.protect_bytes(
            message.to_bytes(), needs_smtputf8=False, signer=signer, recipients=[]
        )
        (line,) = describe(wire, smime_ca=ca.ca_file).lines()
        assert line == f"S/MIME signature valid by mallory <{MALLORY}>{caveat}"


def test_a_from_address_with_escapes_is_named_escaped(gnupghome: Keys) -> None:
    wire = _signed(f"Alice <{ALICE}>", gnupghome.mallory)
    hostile = b'From: "\x1b]0;owned\x07\xe2\x80\xae"@evil.test'
    wire = wire.replace(f"From: Alice <{ALICE}>".encode(), hostile, 1)
    (line,) = describe(wire).lines()
    assert "does not name the From address" in line
    assert "\x1b" not in line and "\x07" not in line and "\u202e" not in line
    assert "\\x1b]0;owned" in line
