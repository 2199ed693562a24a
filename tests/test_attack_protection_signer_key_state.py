"""A signature by a revoked or an expired OpenPGP key is named so, not "not checked: valid".

gpg checks such a signature and says it is intact (VALIDSIG) after saying
whose key is revoked (REVKEYSIG) or expired (EXPKEYSIG); the views said
"OpenPGP signature not checked: signature valid" for both: words that
contradict themselves and hide the one fact that matters, that the key was
withdrawn. The real gpg here: Alice signs, then her revocation certificate
is imported; Erin's key lived in 2020 and signed then.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require, require_tool
from tests.test_pgp_mime import _close_home, _gpg, _make_key, _new_home
from tuimail import pgp_mime
from tuimail.inbox.protection_view import describe
from tuimail.message import Draft, build_message

ALICE = "alice@example.test"
ERIN = "erin@example.test"


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    require_tool("gpg", "gnupg")
    require(shutil.which("gpgconf") is not None, "gpgconf (Debian package gnupg)")
    made = _new_home()
    monkeypatch.setenv("GNUPGHOME", str(made))
    try:
        yield made
    finally:
        _close_home(made)


def _signed(author: str, key: str, faked_time: str = "") -> bytes:
    draft = Draft(from_address=author, to=["bob@example.test"], subject="x", body="Hi.\n")
    message = build_message(draft)
    with pytest.MonkeyPatch.context() as patch:
        if faked_time:  # gpg signs as if it were then
            options = (*pgp_mime.GPG_OPTIONS, "--faked-system-time", faked_time)
            patch.setattr(pgp_mime, "GPG_OPTIONS", options)
        return pgp_mime.protect(message, pgp_mime.PgpSettings(sign=True, key=key)).to_bytes()


def test_a_signature_by_a_key_revoked_since_says_revoked(home: Path) -> None:
    alice = _make_key(home, f"Alice <{ALICE}>")
    wire = _signed(f"Alice <{ALICE}>", alice)
    assert pgp_mime.verify(wire).verdict is pgp_mime.SignatureVerdict.VALID  # type: ignore[union-attr]
    revocation = (home / "openpgp-revocs.d" / f"{alice}.rev").read_bytes()
    revoked = _gpg(home, "--import", input=revocation.replace(b":-----BEGIN", b"-----BEGIN"))
    assert revoked.returncode == 0, revoked.stderr
    result = pgp_mime.verify(wire)
    assert result is not None and result.verdict is pgp_mime.SignatureVerdict.REVOKED_KEY
    (as_recipient,) = pgp_mime.recipient_keys([ALICE])  # and never encrypted to (held)
    assert as_recipient.status is pgp_mime.KeyStatus.REVOKED
    (line,) = describe(wire).lines()
    assert line == f"OpenPGP signature by Alice <{ALICE}>, whose key is REVOKED: not to be trusted"
    assert describe(wire).to_json()["pgp"]["signature"]["verdict"] == "revoked-key"  # type: ignore[index]


def test_a_signature_made_while_the_key_lived_says_it_has_expired_since(home: Path) -> None:
    erin = _make_key(
        home, f"Erin <{ERIN}>", "", "--faked-system-time", "20200101T000000!", expire="1y"
    )
    wire = _signed(f"Erin <{ERIN}>", erin, "20200601T000000!")
    result = pgp_mime.verify(wire)
    assert result is not None and result.verdict is pgp_mime.SignatureVerdict.EXPIRED_KEY
    (line,) = describe(wire).lines()
    assert line == (
        f"OpenPGP signature intact, signed by Erin <{ERIN}>, but that key has expired since"
    )
