"""A reader that closes tuimail's output early (``tuimail send ... | head``).

The send goes on and delivers once, and no command ends in a traceback.
"""

from __future__ import annotations

import os
import subprocess

from tests.cli_helpers import TUIMAIL, send_args
from tests.smtpservers import ServerThread, Sink


def run_with_closed_stdout(*args: str) -> subprocess.CompletedProcess[str]:
    """Run tuimail with its stdout a pipe whose reader has already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [TUIMAIL, *args],
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)


def test_a_send_whose_reader_left_delivers_once_without_a_traceback(
    servers: ServerThread,
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    result = run_with_closed_stdout(*send_args(port, "--body", "Hi Bob"))
    assert "Traceback" not in result.stderr, result.stderr
    assert "BrokenPipeError" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert len(sink.messages) == 1


def test_a_listing_whose_reader_left_exits_as_sigpipe_would() -> None:
    result = run_with_closed_stdout("accounts", "list")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 141
