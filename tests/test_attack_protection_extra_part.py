"""A part added to a signed message after signing is never shown under "signature valid".

RFC 3156 and RFC 8551 give ``multipart/signed`` exactly two parts: the
content and the signature. Anyone holding a message Alice signed can add a
third part ("Also: wire 10,000 EUR to Mallory.") before the closing
boundary; the signature over the first part still checks, and the views
said "OpenPGP signature valid, signed by Alice" over a message whose text
now ends with Mallory's line. Such a message is said INVALID, by its
signer, with the reason; the real signature still checks in gpg and openssl
(the test shows that too, so the attack is the real one).
"""

from __future__ import annotations

import json
import re
import shutil
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import run_tuimail
from tests.conftest import require, require_tool
from tests.smime_support import TestCA, openssl
from tests.test_cli_inbox import serving
from tests.test_pgp_mime import _close_home, _make_key, _new_home
from tuimail import pgp_mime, smime
from tuimail.inbox.protection_view import describe
from tuimail.message import Draft, build_message

ALICE = "alice@example.test"
INJECTED = b"Also: wire 10,000 EUR to Mallory."


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    require_tool("gpg", "gnupg")
    require(shutil.which("gpgconf") is not None, "gpgconf (Debian package gnupg)")
    made = _new_home()
    try:
        _make_key(made, f"Alice <{ALICE}>")
        yield made
    finally:
        _close_home(made)


@pytest.fixture
def gnupghome(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GNUPGHOME", str(home))
    return home


def _message() -> object:
    draft = Draft(
        from_address=f"Alice <{ALICE}>",
        to=["bob@example.test"],
        subject="Lunch",
        body="Lunch at noon.\n",
    )
    return build_message(draft)


def _with_a_third_part(wire: bytes) -> bytes:
    match = re.search(rb'boundary="([^"]+)"', wire)
    assert match is not None
    boundary = match.group(1)
    closing = b"\r\n--" + boundary + b"--"
    at = wire.rindex(closing)
    extra = b"\r\n--" + boundary + b"\r\nContent-Type: text/plain\r\n\r\n" + INJECTED
    return wire[:at] + extra + wire[at:]


def test_an_openpgp_signed_message_with_a_third_part_is_invalid(gnupghome: Path) -> None:
    settings = pgp_mime.PgpSettings(sign=True)
    wire = pgp_mime.protect(_message(), settings).to_bytes()  # type: ignore[arg-type]
    forged = _with_a_third_part(wire)
    result = pgp_mime.verify(forged)
    assert result is not None
    assert result.verdict is pgp_mime.SignatureVerdict.INVALID
    assert result.signer == f"Alice <{ALICE}>"
    assert "3 parts" in result.detail
    (line,) = describe(forged).lines()
    assert line.startswith("OpenPGP signature INVALID")
    assert "valid," not in line
    honest = pgp_mime.verify(wire)
    assert honest is not None and honest.verdict is pgp_mime.SignatureVerdict.VALID


def test_inbox_show_of_the_captured_forgery_says_invalid(
    gnupghome: Path, isolated_dirs: Path
) -> None:
    settings = pgp_mime.PgpSettings(sign=True)
    wire = pgp_mime.protect(_message(), settings).to_bytes()  # type: ignore[arg-type]
    with serving() as port, smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(ALICE, ["bob@example.test"], _with_a_third_part(wire))
    (entry,) = json.loads(run_tuimail("inbox", "list", "--json").stdout)
    shown = run_tuimail("inbox", "show", entry["id"], "--no-check")
    assert shown.returncode == 0, shown.stderr
    assert "text/plain  33 bytes" in shown.stdout  # Mallory's part is there with the rest
    assert "Protection: OpenPGP signature INVALID" in shown.stdout
    assert "signature valid" not in shown.stdout


def test_an_smime_signed_message_with_a_third_part_is_not_valid(tmp_path: Path) -> None:
    """openssl refuses to read it (held): never valid."""
    openssl()
    ca = TestCA(tmp_path / "ca")
    alice = ca.issue(ALICE)
    signer = smime.load_signer(
        smime.SmimeSettings(
            sign=True, encrypt=False, cert=str(alice.cert_path), key=str(alice.key_path)
        )
    )
    wire = smime.protect_bytes(
        _message().to_bytes(),  # type: ignore[attr-defined]
        needs_smtputf8=False,
        signer=signer,
        recipients=[],
    )
    assert smime.verify_smime(wire, ca.ca_file).verdict is smime.Verdict.VALID
    forged = smime.verify_smime(_with_a_third_part(wire), ca.ca_file)
    assert forged.verdict not in (smime.Verdict.VALID, smime.Verdict.UNTRUSTED), forged
