"""Non-ASCII user ids and passphrases reach gpg and the screen as the UTF-8 gpg uses.

python-gnupg reads and writes gpg's streams as Latin-1 unless told
otherwise, while gpg speaks UTF-8 (user ids in listings and status lines,
the passphrase a key was made with). So "Jörg" was shown as "JÃ¶rg" in
every view, and a passphrase with a non-ASCII letter, typed right, was
refused as wrong (its Latin-1 bytes are not the UTF-8 ones gpg-agent
checks). A key whose user id is not UTF-8 at all (old keys made in
Latin-1) still shows as Latin-1 reads it, and breaks nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require, require_tool
from tests.test_pgp_mime import _close_home, _make_key, _new_home, forget_passphrases
from tuimail import pgp_mime
from tuimail.inbox.protection_view import describe
from tuimail.message import Draft, build_message

JOERG = "jörg@example.test"
PASSPHRASE = "Grüße aus Köln, 日本"


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


def _message(author: str, to: str = "bob@example.test") -> object:
    draft = Draft(from_address=author, to=[to], subject="x", body="Hallo.\n")
    return build_message(draft)


def test_a_utf8_user_id_is_shown_as_written(home: Path) -> None:
    joerg = _make_key(home, f"Jörg Müller <{JOERG}>")
    settings = pgp_mime.PgpSettings(sign=True, key=joerg)
    wire = pgp_mime.protect(_message(f"Jörg <{JOERG}>"), settings).to_bytes()  # type: ignore[arg-type]
    assert describe(wire).lines() == [f"OpenPGP signature valid, signed by Jörg Müller <{JOERG}>"]
    (found,) = pgp_mime.recipient_keys([JOERG])
    assert found.status is pgp_mime.KeyStatus.TRUSTED
    sealed = pgp_mime.protect(
        _message(f"Jörg <{JOERG}>", JOERG),  # type: ignore[arg-type]
        pgp_mime.PgpSettings(encrypt=True, key=joerg),
    )
    summary = pgp_mime.summary(sealed.to_bytes())
    assert summary is not None
    assert pgp_mime.key_names(summary.encrypted_to) == {
        k: f"Jörg Müller <{JOERG}>" for k in summary.encrypted_to
    }


def test_a_non_ascii_passphrase_typed_right_opens_the_key(home: Path) -> None:
    locked = _make_key(home, "Dave <dave@example.test>", PASSPHRASE)
    forget_passphrases(home)
    settings = pgp_mime.PgpSettings(sign=True, key=locked)
    message = _message("Dave <dave@example.test>")
    with pytest.raises(pgp_mime.PassphraseNeeded) as wrong:
        pgp_mime.protect(message, settings, "Grusse aus Koln")  # type: ignore[arg-type]
    assert wrong.value.wrong
    wire = pgp_mime.protect(message, settings, PASSPHRASE).to_bytes()  # type: ignore[arg-type]
    assert describe(wire).lines()[0].startswith("OpenPGP signature valid, signed by Dave")


def test_a_latin1_user_id_still_shows_as_latin1(home: Path) -> None:
    import os
    import subprocess

    made = subprocess.run(
        [b"gpg", b"--batch", b"--no-tty", b"--passphrase", b"", b"--quick-gen-key",
         b"J\xf6rg <joerg@example.test>", b"future-default", b"default", b"2y"],
        capture_output=True, env={**os.environ, "GNUPGHOME": str(home)}, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    settings = pgp_mime.PgpSettings(sign=True, key="joerg@example.test")
    message = _message("Jörg <joerg@example.test>")
    wire = pgp_mime.protect(message, settings).to_bytes()  # type: ignore[arg-type]
    (line,) = describe(wire).lines()
    assert line.startswith("OpenPGP signature valid, signed by Jörg <joerg@example.test>")
