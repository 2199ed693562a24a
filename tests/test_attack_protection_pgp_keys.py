"""A recipient's OpenPGP key is judged by the user id that names the address, as gpg does.

A key's own validity is the best of its user ids. gpg, asked to encrypt to
``<carol@old.test>``, refuses when that user id is revoked (``skipped: No
name``) even though the key is valid through another one, and warns that
there is no assurance when only another user id of the key is certified.
tuimail encrypts to the key's fingerprint, so it must make the same
judgement itself, or a message goes to an address its owner has withdrawn,
and Compose calls an uncertified address "trusted".

Keys are made by the test in a GNUPGHOME of its own: Alice (the sender,
ultimately trusted), Carol (two user ids, the old one revoked), Frank (made
elsewhere, imported; Alice certifies only his work address), and Bob, whose
user id is written in capitals (gpg matches addresses whatever their case).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_helpers import run_tuimail, send_args
from tests.conftest import require, require_tool
from tests.smtpservers import ServerThread, Sink
from tests.test_pgp_mime import _close_home, _gpg, _make_key, _new_home, outgoing, parsed
from tuimail import pgp_mime
from tuimail.cli import exitcodes

CAROL_OLD = "carol@old.test"
CAROL_NEW = "carol@new.test"
FRANK_WORK = "frank@work.test"
FRANK_HOME = "frank@home.test"
BOB = "bob@example.test"


@dataclass(frozen=True)
class Homes:
    home: Path
    carol: str
    frank: str


@pytest.fixture(scope="module")
def homes() -> Iterator[Homes]:
    require_tool("gpg", "gnupg")
    require(shutil.which("gpgconf") is not None, "gpgconf (Debian package gnupg)")
    home, other = _new_home(), _new_home()
    try:
        alice = _make_key(home, "Alice <alice@example.test>")
        _make_key(home, "Bob <Bob@Example.TEST>")
        carol = _make_key(home, f"Carol <{CAROL_OLD}>")
        assert _gpg(home, "--quick-add-uid", carol, f"Carol <{CAROL_NEW}>").returncode == 0
        revoked = _gpg(home, "--quick-revoke-uid", carol, f"Carol <{CAROL_OLD}>")
        assert revoked.returncode == 0, revoked.stderr
        frank = _make_key(other, f"Frank <{FRANK_WORK}>")
        assert _gpg(other, "--quick-add-uid", frank, f"Frank <{FRANK_HOME}>").returncode == 0
        public = _gpg(other, "--armor", "--export", frank).stdout
        assert _gpg(home, "--import", input=public).returncode == 0
        signed = _gpg(home, "-u", alice, "--quick-lsign-key", frank, f"Frank <{FRANK_WORK}>")
        assert signed.returncode == 0, signed.stderr
        yield Homes(home, carol, frank)
    finally:
        _close_home(home)
        _close_home(other)


@pytest.fixture
def gnupghome(homes: Homes, monkeypatch: pytest.MonkeyPatch) -> Homes:
    monkeypatch.setenv("GNUPGHOME", str(homes.home))
    return homes


def _gpg_refuses(home: Path, address: str) -> bool:
    """What gpg itself does when asked to encrypt to ``<address>`` (trusting every key)."""
    result = _gpg(
        home, "--always-trust", "--no-auto-key-locate", "-e", "-r", f"<{address}>", input=b"x"
    )
    return result.returncode != 0


def test_a_revoked_user_id_is_no_key_for_its_address(gnupghome: Homes) -> None:
    assert _gpg_refuses(gnupghome.home, CAROL_OLD)  # gpg's own judgement
    old, new = pgp_mime.recipient_keys([CAROL_OLD, CAROL_NEW])
    assert old.status is pgp_mime.KeyStatus.REVOKED
    assert not old.status.usable
    assert new.status.usable and new.fingerprint == gnupghome.carol


def test_encrypting_to_a_revoked_user_id_is_refused_and_opportunistic_stays_plain(
    gnupghome: Homes,
) -> None:
    message = outgoing(to=[CAROL_OLD])
    with pytest.raises(pgp_mime.RecipientKeysUnusable) as refused:
        pgp_mime.protect(message, pgp_mime.PgpSettings(encrypt=True))  # type: ignore[arg-type]
    assert f"{CAROL_OLD}: the key is revoked" in str(refused.value)
    opportunistic = pgp_mime.PgpSettings(opportunistic=True)
    assert pgp_mime.protect(message, opportunistic) is message  # type: ignore[arg-type]
    sealed = pgp_mime.protect(outgoing(to=[CAROL_NEW]), opportunistic)  # type: ignore[arg-type]
    assert parsed(sealed.to_bytes()).get_content_type() == "multipart/encrypted"


def test_send_to_a_revoked_user_id_is_refused_and_nothing_sent(
    gnupghome: Homes, servers: ServerThread
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    result = run_tuimail(*send_args(port, "--body", "Hi\n", "--pgp-encrypt", to=CAROL_OLD))
    assert result.returncode == exitcodes.CONFIG, result.stderr
    assert f"{CAROL_OLD}: the key is revoked" in result.stderr
    assert "nothing was sent" in result.stderr
    assert sink.messages == []


def test_trust_is_the_certified_user_ids_not_the_keys(gnupghome: Homes) -> None:
    work, home = pgp_mime.recipient_keys([FRANK_WORK, FRANK_HOME])
    assert work.status is pgp_mime.KeyStatus.TRUSTED
    # Alice certified only the work address: that the key also says "frank@home.test"
    # is the key's own claim, which nobody she trusts has checked.
    assert home.status is pgp_mime.KeyStatus.UNTRUSTED
    assert home.fingerprint == work.fingerprint == gnupghome.frank


def test_an_address_in_other_case_finds_its_key(gnupghome: Homes) -> None:
    (found,) = pgp_mime.recipient_keys([BOB])
    assert found.status is pgp_mime.KeyStatus.TRUSTED
