"""No S/MIME private key, nor its passphrase, in any form reaches a file or an output (held).

A locked key (its passphrase from a command, the way a password manager
gives it), signing and encrypting sends that go, wait in the outbox and are
flushed later, one with a wrong passphrase, and ``inbox show`` of what the
sandbox captured: then every file tuimail wrote and every byte it printed is
searched for the passphrase (raw, and its base64 at each alignment) and for
each line of the key's PEM, and for the key's DER and its base64.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from tests.cli_helpers import files_under, leak_patterns, run_tuimail
from tests.smime_support import TestCA, openssl
from tests.smtpservers import ServerThread, Sink
from tests.test_cli_inbox import serving
from tests.ui_support import save_profile

ALICE = "alice@example.test"
BOB = "bob@example.test"
PASSPHRASE = "s/mime-Passphrase-ÄÖÜ-0815"


def _key_needles(pem: bytes, passphrase: str) -> list[bytes]:
    """The key as it could leak: each PEM line, its DER (unlocked) and that DER's base64."""
    key = serialization.load_pem_private_key(pem, password=passphrase.encode())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    lines = [line for line in pem.splitlines() if line and not line.startswith(b"-----")]
    middle = der[len(der) // 3 : len(der) // 3 + 48]
    return [*lines, middle, base64.b64encode(der)[40:100], *leak_patterns(passphrase)]


def test_no_smime_key_or_passphrase_anywhere(
    servers: ServerThread, tmp_path: Path, isolated_dirs: Path
) -> None:
    openssl()
    ca = TestCA(tmp_path / "ca")
    alice = ca.issue(ALICE, passphrase=PASSPHRASE.encode())
    bob = ca.issue(BOB)
    directory = tmp_path / "recipients"
    directory.mkdir()
    shutil.copy(bob.cert_path, directory / "bob.pem")
    command = tmp_path / "passphrase.sh"
    command.write_text(f"#!/bin/sh\nprintf '%s' '{PASSPHRASE}'\n")
    command.chmod(0o700)
    sink = Sink()
    port = servers.smtp(sink)
    later = Sink(rcpt_replies={BOB: "451 4.7.1 try again later"})
    later_port = servers.smtp(later)
    common = dict(security="none", from_address=ALICE, smime_cert=str(alice.cert_path),
                  smime_key=str(alice.key_path), smime_recipient_certs=str(directory),
                  smime_sign=True, smime_encrypt=True)  # fmt: skip
    save_profile(name="now", host="127.0.0.1", port=port,
                 smime_passphrase_command=str(command), **common)  # fmt: skip
    save_profile(name="later", host="127.0.0.1", port=later_port,
                 smime_passphrase_command=str(command), **common)  # fmt: skip
    save_profile(name="wrong", host="127.0.0.1", port=port,
                 smime_passphrase_command="printf 'not it'", **common)  # fmt: skip
    outputs: dict[str, bytes] = {}

    def run(label: str, *args: str, ok: tuple[int, ...] = (0,)) -> None:
        result = run_tuimail(*args)
        outputs[f"{label} out"] = result.stdout.encode()
        outputs[f"{label} err"] = result.stderr.encode()
        assert result.returncode in ok, f"{label}: {result.stderr}"

    message = ("--to", BOB, "--subject", "Sealed", "--body", "Signed and sealed.\n")
    run("send", "send", "--profile", "now", *message)
    run("send json", "send", "--profile", "now", *message, "--json")
    run("queued", "send", "--profile", "later", *message, ok=(75,))
    later.rcpt_replies.clear()
    run("flush", "outbox", "flush", "--all", "--verbose")
    run("wrong", "send", "--profile", "wrong", *message, ok=(4,))
    assert len(sink.messages) == 2 and len(later.messages) == 1
    with serving() as sandbox:
        save_profile(name="sandbox", host="127.0.0.1", port=sandbox,
                     smime_passphrase_command=str(command), **common)  # fmt: skip
        run("into sandbox", "send", "--profile", "sandbox", *message)
        (entry,) = json.loads(run_tuimail("inbox", "list", "--json").stdout)
        run("show", "inbox", "show", entry["id"], "--json")
    needles = _key_needles(alice.key_path.read_bytes(), PASSPHRASE)
    # The search would see them: the key file and the command hold them.
    assert any(n in alice.key_path.read_bytes() for n in needles)
    assert any(n in command.read_bytes() for n in needles)
    written = files_under(isolated_dirs)
    assert written
    found = [
        f"{where}: {needle[:12]!r}"
        for where, blob in {**written, **outputs}.items()
        for needle in needles
        if needle in blob
    ]
    assert found == []
