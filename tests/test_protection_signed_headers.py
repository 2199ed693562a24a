"""A signed-only message whose protected headers (RFC 9788) differ from its outer ones.

tuimail signs with real gpg (tests/test_pgp_mime.py's keyring) and protected
headers, so the signed part carries From, To and Subject; the outer Subject
is then changed, as a relay or the sender's own software could. The
signature still holds (the outer headers are covered by nothing), so the
views must show the signed Subject and say the outer one differs, not the
outer one under "signature valid".
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests import test_pgp_mime
from tests.test_pgp_mime import ALICE, BOB, Keyring
from tests.test_protection_view import _captured
from tests.test_sandbox_shared import open_f5
from tests.ui_support import static_text, wait_for
from tuimail import pgp_mime
from tuimail.inbox.protection_view import describe
from tuimail.message import Draft, build_message
from tuimail.ui.app import TuimailApp

keyring = test_pgp_mime.keyring
gnupghome = test_pgp_mime.gnupghome

CHANGED = "Changed \x1b[31min transit"


def _changed_after_signing(keys: Keyring) -> bytes:
    draft = Draft(from_address=f"Alice <{ALICE}>", to=[BOB], subject="Plans", body="Hi.\n")
    settings = pgp_mime.PgpSettings(sign=True, key=keys.alice, protected_headers=True)
    wire = pgp_mime.protect(build_message(draft), settings).to_bytes()
    head_end = wire.find(b"\r\n\r\n")
    head = wire[:head_end].replace(b"Subject: Plans", f"Subject: {CHANGED}".encode())
    return head + wire[head_end:]


def test_the_report_says_the_outer_subject_differs(gnupghome: Keyring) -> None:
    wire = _changed_after_signing(gnupghome)
    # gpg itself still finds the signature good: the outer header is not signed.
    report = describe(wire)
    assert report.pgp is not None and report.pgp.signature is not None
    assert report.pgp.signature.verdict is pgp_mime.SignatureVerdict.VALID
    assert report.signed_value("Subject") == "Plans"
    said = "\n".join(report.lines())
    assert 'Signed Subject: "Plans"' in said, said
    assert "differs" in said and "\x1b" not in said, said
    assert report.signed_value("From") is None and report.signed_value("To") is None
    changes = report.to_json()["signed_headers_differ"]
    assert changes == [
        {"field": "Subject", "signed": "Plans", "outside": "Changed \\x1b[31min transit"}
    ], changes


def test_a_message_without_changes_says_nothing_more(gnupghome: Keyring) -> None:
    draft = Draft(from_address=f"Alice <{ALICE}>", to=[BOB], subject="Plans", body="Hi.\n")
    settings = pgp_mime.PgpSettings(sign=True, key=gnupghome.alice, protected_headers=True)
    wire = pgp_mime.protect(build_message(draft), settings).to_bytes()
    assert describe(wire).header_changes == ()


async def test_f5_shows_the_signed_subject(gnupghome: Keyring, isolated_dirs: Path) -> None:
    _captured(_changed_after_signing(gnupghome))
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(160, 40)) as pilot:

        def view() -> str:
            return static_text(app, "#message-view")

        table = await open_f5(pilot, 1)
        table.focus()
        await wait_for(pilot, lambda: "signature valid" in view().lower(), "the message")
        text = view()
        assert "Subject: Plans\n" in text, text
        assert "Subject: Changed" not in text, text
        assert "differs" in " ".join(text.split()), text


def test_inbox_show_says_it(gnupghome: Keyring, isolated_dirs: Path) -> None:
    from tests.cli_helpers import TUIMAIL
    from tests.test_protection_view import _ids

    _captured(_changed_after_signing(gnupghome))
    (key,) = _ids().values()
    shown = subprocess.run(
        [TUIMAIL, "inbox", "show", key, "--no-check"],
        capture_output=True, timeout=60, check=True,
    ).stdout.decode()  # fmt: skip
    assert 'Signed Subject: "Plans"' in shown, shown


def test_smime_signed_headers_that_differ_are_said(tmp_path: Path) -> None:
    """The same for S/MIME: a signed part carrying Subject, the outer one changed."""
    from tests.smime_support import TestCA, openssl
    from tuimail import smime

    openssl()
    ca = TestCA(tmp_path / "ca")
    me = ca.issue(ALICE)
    signer = smime.load_signer(
        smime.SmimeSettings(True, False, cert=str(me.cert_path), key=str(me.key_path))
    )
    entity = (
        b'Content-Type: text/plain; charset=us-ascii; protected-headers="v1"\r\n'
        b"Subject: Plans\r\n\r\nHi.\r\n"
    )
    wire = (
        f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: Other\r\nMIME-Version: 1.0\r\n".encode()
        + smime.sign_entity(entity, signer)
    )
    report = describe(wire, smime_ca=ca.ca_file)
    assert report.smime is not None and report.smime.verification is not None
    assert report.smime.verification.verdict is smime.Verdict.VALID
    assert report.signed_value("Subject") == "Plans"
    assert any('the unsigned Subject outside, "Other", differs' in x for x in report.lines())


def test_the_same_addresses_quoted_otherwise_are_not_a_change() -> None:
    from tuimail.inbox.protection_view import header_changes

    wire = (
        b'From: "Alice" <Alice@Example.test>\r\nTo: bob@example.test\r\nSubject: S\r\n'
        b'MIME-Version: 1.0\r\nContent-Type: multipart/signed; boundary="b";\r\n'
        b' protocol="application/pgp-signature"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\nFrom: Alice <alice@example.test>\r\n"
        b"To: Mallory <mallory@example.test>\r\n\r\nHi\r\n--b\r\n"
        b"Content-Type: application/pgp-signature\r\n\r\nx\r\n--b--\r\n"
    )
    assert header_changes(wire) == (("To", "Mallory <mallory@example.test>", "bob@example.test"),)
