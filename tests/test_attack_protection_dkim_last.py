"""The DKIM signature is the last change, also over OpenPGP and S/MIME: verifiers not dkimpy.

A message signed and encrypted with OpenPGP, or signed with S/MIME, and
DKIM-signed by the same send must pass Mail::DKIM (rsa-sha256) and OpenDKIM
(ed25519-sha256) with the records served by the test DNS, the
``Content-Type`` of the wrapping among the signed headers, and must fail
when the wrapped body changes afterwards. The transcript names the
headers signed, and what gpg and openssl read inside is still intact.
"""

from __future__ import annotations

from pathlib import Path

from tests import test_dkim_signing, test_pgp_mime, test_smime
from tests.dns_support import DnsServer
from tests.smime_support import Identity, openssl_verify
from tests.smtpservers import ServerThread, Sink
from tests.test_dkim_signing import DOMAIN, Key, mail_dkim, opendkim, send_signed
from tests.test_pgp_mime import Keyring, verify_signed

keys = test_dkim_signing.keys
dns = test_dkim_signing.dns
keyring = test_pgp_mime.keyring
gnupghome = test_pgp_mime.gnupghome
ca = test_smime.ca
people = test_smime.people


def _headers_signed(stdout: str) -> list[str]:
    (line,) = [x for x in stdout.splitlines() if "=== DKIM signature" in x]
    return line.split("signs the headers: ", 1)[1].split(", ")


def _body_changed(message: bytes) -> bytes:
    """One character of the wrapped body's armour or base64 changed."""
    end = message.index(b"\r\n\r\n")
    at = message.index(b"\r\n\r\n", message.index(b"\r\n--", end)) + 10
    flipped = b"A" if message[at : at + 1] != b"A" else b"B"
    return message[:at] + flipped + message[at + 1 :]


def test_openpgp_signed_and_encrypted_then_dkim_rsa_passes_mail_dkim(
    servers: ServerThread,
    keys: dict[str, Key],
    dns: DnsServer,
    gnupghome: Keyring,
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    result = send_signed(
        port, keys["rsa"], "--pgp-sign", "--pgp-encrypt", "--pgp-key", gnupghome.alice
    )
    assert result.returncode == 0, result.stderr
    signed = _headers_signed(result.stdout)
    assert "content-type" in signed and signed[0] == signed[-1] == "from"
    (received,) = sink.messages
    wire = received.content
    assert wire.startswith(b"DKIM-Signature: ")
    assert b"Content-Type: multipart/encrypted" in wire
    verdict = mail_dkim(wire, dns)
    assert verdict.splitlines()[-1] == "result: pass", verdict
    broken = mail_dkim(_body_changed(wire), dns)
    assert broken.splitlines()[-1] == "result: fail", broken
    clear = test_pgp_mime.decrypt(gnupghome.home, wire)
    _, status = verify_signed(gnupghome.home, clear)
    assert f"VALIDSIG {gnupghome.alice}" in status


def test_smime_signed_then_dkim_ed25519_passes_opendkim(
    servers: ServerThread,
    keys: dict[str, Key],
    dns: DnsServer,
    people: dict[str, Identity],
    ca: object,
    tmp_path: Path,
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    alice = people[test_smime.ALICE]
    key = keys["ed25519"]
    result = send_signed(
        port,
        key,
        "--smime-sign",
        "--smime-cert",
        str(alice.cert_path),
        "--smime-key",
        str(alice.key_path),
    )
    assert result.returncode == 0, result.stderr
    assert "content-type" in _headers_signed(result.stdout)
    (received,) = sink.messages
    wire = received.content
    assert f"d={DOMAIN}".encode() in wire and b"a=ed25519-sha256;" in wire
    good = opendkim(wire, dns, tmp_path)
    assert good.returncode == 0 and good.stderr == b"", good.stderr
    bad = opendkim(_body_changed(wire), dns, tmp_path)
    assert bad.returncode != 0, bad.stderr
    # openssl still finds the S/MIME signature intact under the DKIM-Signature.
    assert b"Signed by tuimail." in openssl_verify(wire, ca, tmp_path)  # type: ignore[arg-type]
