"""Whom an S/MIME message is encrypted to, named in F5 and ``tuimail inbox show``.

Real certificates from a test CA (tests/smime_support.py), the message made by
tuimail's own S/MIME encryption to three certificates: the user's own (the
profile's ``smime_cert``), one in the profile's ``smime_recipient_certs``
directory, and one tuimail has never seen, issued by a CA whose name carries
terminal escapes. The view names the first two by subject and address and the
third by issuer and serial number, escaped; openssl agrees on the serial.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from tests.smime_support import TestCA, openssl
from tests.test_protection_view import _captured
from tests.test_sandbox_shared import open_f5
from tests.ui_support import save_profile, static_text, wait_for
from tuimail import smime
from tuimail.inbox.protection_view import describe
from tuimail.ui.app import TuimailApp

ALICE, BOB, CAROL = "alice@example.test", "bob@example.test", "carol@example.test"
HOSTILE_CA = "Evil \x1b]0;pwned\x07 CA"


def _hostile_ca(directory: Path) -> TestCA:
    ca = TestCA(directory)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTILE_CA)])
    now = datetime.datetime.now(datetime.UTC)
    ca.cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    return ca


def _setup(tmp_path: Path) -> tuple[bytes, x509.Certificate]:
    openssl()
    ca = TestCA(tmp_path / "ca")
    alice, bob = ca.issue(ALICE), ca.issue(BOB)
    carol = _hostile_ca(tmp_path / "evil").issue(CAROL)
    directory = tmp_path / "recipients"
    directory.mkdir()
    shutil.copy(bob.cert_path, directory / "bob.pem")
    entity = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nsealed\r\n"
    wire = (
        f"From: {BOB}\r\nTo: {ALICE}, {CAROL}\r\nSubject: Sealed\r\nMIME-Version: 1.0\r\n".encode()
        + smime.encrypt_entity(entity, [alice.cert, bob.cert, carol.cert])
    )
    save_profile(
        name="mine",
        host="127.0.0.1",
        port=2525,
        security="none",
        from_address=ALICE,
        smime_cert=str(alice.cert_path),
        smime_key=str(alice.key_path),
        smime_recipient_certs=str(directory),
    )
    return wire, carol.cert


def test_the_report_names_each_recipient(isolated_dirs: Path, tmp_path: Path) -> None:
    wire, carol = _setup(tmp_path)
    report = describe(wire)
    line = report.lines()[0]
    assert line.startswith("S/MIME encrypted to 3 certificates: "), line
    assert f"alice <{ALICE}> (your certificate)" in line, line
    assert f"bob <{BOB}>" in line and f"bob <{BOB}> (your" not in line, line
    serial = f"{carol.serial_number:X}"
    assert f"an unknown certificate (issuer CN=Evil \\x1b]0;pwned\\x07 CA, serial {serial})" in (
        line
    ), line
    assert "\x1b" not in line and "\x07" not in line
    # openssl reads the same serial numbers from the message.
    printed = subprocess.run(
        ["openssl", "cms", "-cmsout", "-print", "-inform", "SMIME"],
        input=wire, capture_output=True, timeout=30, check=True,
    ).stdout.decode()  # fmt: skip
    assert f"{carol.serial_number:x}".lstrip("0")[:8] in printed.replace(":", "").lower()
    named = report.to_json()["smime"]["encrypted_to"]  # type: ignore[index]
    assert sorted(named)[0] == f"alice <{ALICE}> (your certificate)", named


async def test_f5_names_each_recipient(isolated_dirs: Path, tmp_path: Path) -> None:
    wire, carol = _setup(tmp_path)
    _captured(wire)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(200, 40)) as pilot:

        def view() -> str:
            return static_text(app, "#message-view")

        table = await open_f5(pilot, 1)
        table.focus()
        await wait_for(pilot, lambda: "Subject: Sealed" in view(), "the message")
        text = " ".join(view().split())
        assert f"alice <{ALICE}> (your certificate)" in text, text
        assert f"bob <{BOB}>" in text, text
        assert f"serial {carol.serial_number:X}" in text, text
        assert "\x1b" not in text and "\x07" not in text


def test_inbox_show_json_names_them(isolated_dirs: Path, tmp_path: Path) -> None:
    from tests.test_protection_view import _ids, _protection

    wire, _carol = _setup(tmp_path)
    _captured(wire)
    protection = _protection(_ids()["Sealed"])
    summary = " ".join(protection["summary"])
    assert f"alice <{ALICE}> (your certificate)" in summary, summary
    assert f"bob <{BOB}>" in protection["smime"]["encrypted_to"]
