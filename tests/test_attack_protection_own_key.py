"""The sender's own key, added so the sent copy stays readable, is a key the sender holds.

An encrypted message is also encrypted to the sender's own key. That key
was looked up among the *public* keys with the profile's ``pgp_key`` as gpg
pattern; ``pgp_key = "alice@example.test"`` (an address, as docs/pgp.md
allows) is a substring search, which also matches a stranger's imported
key "Mallory <malice@example.test>": the first one listed became "own",
and every message Alice encrypted to Bob could be read by Mallory. The own
key is now one whose secret key is in the keyring.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require, require_tool
from tests.test_pgp_mime import _close_home, _gpg, _make_key, _new_home, outgoing
from tuimail import pgp_mime

ALICE = "alice@example.test"
BOB = "bob@example.test"


@dataclass(frozen=True)
class Homes:
    alice: Path
    mallory: Path
    bob: Path


@pytest.fixture(scope="module")
def homes() -> Iterator[Homes]:
    require_tool("gpg", "gnupg")
    require(shutil.which("gpgconf") is not None, "gpgconf (Debian package gnupg)")
    alice, mallory, bob = _new_home(), _new_home(), _new_home()
    try:
        for home, uid in ((mallory, "Mallory <malice@example.test>"), (bob, f"Bob <{BOB}>")):
            made = _make_key(home, uid)
            public = _gpg(home, "--armor", "--export", made).stdout
            assert _gpg(alice, "--import", input=public).returncode == 0  # before Alice's own
        _make_key(alice, f"Alice <{ALICE}>")
        yield Homes(alice, mallory, bob)
    finally:
        for home in (alice, mallory, bob):
            _close_home(home)


def _can_read(home: Path, wire: bytes) -> bool:
    start = wire.index(b"-----BEGIN PGP MESSAGE-----")
    end = wire.index(b"-----END PGP MESSAGE-----") + len(b"-----END PGP MESSAGE-----")
    return _gpg(home, "--decrypt", input=wire[start:end]).returncode == 0


def test_encrypted_to_bob_is_readable_by_bob_and_alice_never_by_a_lookalike(
    homes: Homes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GNUPGHOME", str(homes.alice))
    settings = pgp_mime.PgpSettings(sign=True, encrypt=True, key=ALICE)
    wire = pgp_mime.protect(outgoing(to=[BOB]), settings).to_bytes()  # type: ignore[arg-type]
    assert _can_read(homes.bob, wire)
    assert _can_read(homes.alice, wire)  # the sent copy
    assert not _can_read(homes.mallory, wire)
    summary = pgp_mime.summary(wire)
    assert summary is not None and len(summary.encrypted_to) == 2
