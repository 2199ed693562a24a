"""Attacks on ``tuimail dkim keygen`` (tuimail/cli/dkim.py, tuimail/dkim_signing.py):
two keygens racing for one file, a symlink planted where the key goes, and the key's
text in any output or other file. All held."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.cli_helpers import TUIMAIL, files_under


def _keygen(out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [TUIMAIL, "dkim", "keygen", "example.test", "race", "--type", "ed25519", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_racing_keygens_write_one_private_key_and_leak_it_nowhere(tmp_path: Path) -> None:
    out = tmp_path / "keys"
    runs = [_keygen(out) for _ in range(4)]
    results = [(run.wait(timeout=60), *run.communicate(timeout=60)) for run in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 4, 4, 4], results
    key_file = out / "example.test_race.pem"
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    pem = key_file.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    forms = [seed, base64.b64encode(seed), body, seed.hex().encode()]
    written = {name: data for name, data in files_under(tmp_path).items() if name != str(key_file)}
    written |= {f"output {n}": (o + e).encode() for n, (_, o, e) in enumerate(results)}
    leaks = [name for name, data in written.items() if any(form in data for form in forms)]
    assert not leaks


def test_a_planted_symlink_is_never_written_through(tmp_path: Path) -> None:
    out = tmp_path / "keys"
    out.mkdir(mode=0o700)
    target = tmp_path / "elsewhere"
    (out / "example.test_race.pem").symlink_to(target)
    run = _keygen(out)
    assert run.wait(timeout=60) == 4
    assert not target.exists()
