"""Attack review of the SIZE warning of ``tuimail send``: with ``--server`` (no profile)
the warning names that server, not the profile the command line makes of it."""

from __future__ import annotations

import os
from pathlib import Path

from tests.cli_helpers import run_tuimail, send_args
from tests.smtpservers import ServerThread, Sink
from tuimail.cli import exitcodes
from tuimail.stages import Stage


def test_the_warning_names_the_server_given_with_server(
    servers: ServerThread, tmp_path: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink, data_size_limit=3000)
    photo = tmp_path / "photo.bin"
    photo.write_bytes(os.urandom(5000))
    args = send_args(port, "--body", "Attached.", "--attach", str(photo), "--no-queue")
    first = run_tuimail(*args)  # refused before MAIL; the limit it announced is kept
    assert first.returncode == exitcodes.for_stage(Stage.MAIL), first.stderr
    assert "warning" not in first.stderr
    second = run_tuimail(*args)
    [warning] = [line for line in second.stderr.splitlines() if "warning" in line]
    assert f"the server 127.0.0.1:{port} accepted at most 3 kB (3,000 bytes)" in warning
    assert "command-line" not in second.stderr
    assert not sink.messages
