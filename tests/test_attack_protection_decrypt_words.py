"""Why a captured OpenPGP message was not decrypted, in words a person acts on.

The views decrypt with the user's gpg, which never prompts there (loopback
pinentry, no passphrase): a key whose passphrase gpg-agent does not hold
was reported as "gpg could not decrypt it: need passphrase", and a message
encrypted to others only as "... no secret key". Both now say what it
means and what to do. Read from gpg's status tokens, which do not change
with the user's language.
"""

from __future__ import annotations

from tests import test_pgp_mime
from tests.test_pgp_mime import BOB, DAVE, Keyring, forget_passphrases
from tuimail import pgp_mime
from tuimail.inbox.protection_view import describe
from tuimail.message import Draft, build_message

keyring = test_pgp_mime.keyring
gnupghome = test_pgp_mime.gnupghome


def _encrypted(sender: str, to: str, key: str) -> bytes:
    draft = Draft(from_address=sender, to=[to], subject="Plans", body="Inside.\n")
    settings = pgp_mime.PgpSettings(encrypt=True, key=key)
    return pgp_mime.protect(build_message(draft), settings).to_bytes()


def test_a_locked_key_is_named_as_locked(gnupghome: Keyring) -> None:
    wire = _encrypted(f"Dave <{DAVE}>", DAVE, gnupghome.dave)
    forget_passphrases(gnupghome.home)
    report = describe(wire, decrypt=True)
    assert report.cleartext is None
    problem = report.to_json()["pgp"]["decrypt_problem"]  # type: ignore[index]
    assert "locked" in problem and "gpg-agent" in problem, problem
    assert "need passphrase" not in problem


def test_a_message_for_others_says_so(gnupghome: Keyring) -> None:
    # Bob's key alone (the sender's "own" key is Bob's here): Alice holds no key for it.
    wire = _encrypted(f"Bob <{BOB}>", BOB, gnupghome.bob)
    report = describe(wire, decrypt=True)
    problem = report.to_json()["pgp"]["decrypt_problem"]  # type: ignore[index]
    assert "not encrypted to any secret key in your keyring" in problem, problem
