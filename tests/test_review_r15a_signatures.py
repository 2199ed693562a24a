"""A profile's signature file that holds what mail cannot carry, through ``tuimail send``
(a real process and server): the signature file is named, not the user's text."""

from __future__ import annotations

from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.smtpservers import ServerThread, Sink
from tests.test_signatures_templates import write_profile
from tuimail.cli import exitcodes


def test_a_signature_file_with_a_nul_is_refused_as_the_signature_file(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    signature = isolated_dirs / "sig.txt"
    signature.write_bytes(b"Alice\x00\n")
    write_profile(isolated_dirs / "config", port, f'signature_file = "{signature}"\n')
    result = run_tuimail("send", "--profile", "work", "--to", "bob@example.test", "--body", "hi")
    # Before: "--body: contains a NUL character", about a text that has none.
    assert result.returncode == exitcodes.CONFIG, result.stderr
    assert "signature file" in result.stderr and "NUL" in result.stderr
    assert "--no-signature" in result.stderr and "--body" not in result.stderr
    assert sink.messages == []
    sent = run_tuimail(
        "send", "--profile", "work", "--to", "bob@example.test", "--body", "hi", "--no-signature"
    )
    assert sent.returncode == exitcodes.OK, sent.stderr
    assert len(sink.messages) == 1
