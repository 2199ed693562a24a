"""A secret the server echoes back, or that lies across a cut, is masked everywhere.

A server may quote the password in its refusal (``535 bad credentials for
alice/PASSWORD``): the transcript masked its line, but the failure's words
went raw to stderr, ``--json`` and the outbox's records. And a line longer
than the transcript keeps is cut: a secret lying across the cut must not
leave its first half behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from tests.cli_helpers import files_under, find_leaks, run_tuimail
from tests.smtpservers import ServerThread, Sink
from tuimail.transcript import MAX_LINE_CHARS, Direction, Transcript

PASSWORD = "echoed-s3cret-Pa55"


def echoing_refusal(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    """Refuses every login, quoting the credentials it was given, as some servers do."""
    password = getattr(data, "password", b"").decode()
    return AuthResult(
        success=False, handled=False, message=f"535 5.7.8 bad credentials for alice/{password}"
    )


def test_a_password_the_server_echoes_is_masked_in_every_output(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    port = servers.smtp(Sink(), authenticator=echoing_refusal, auth_require_tls=False)
    outputs: dict[str, bytes] = {}
    for extra in ([], ["--json"], ["--no-queue", "--json"]):
        result = run_tuimail(
            "send", "--server", f"127.0.0.1:{port}", "--security", "none",
            "--allow-plaintext-auth", "--user", "alice", "--password-stdin",
            "--from", "alice@example.test", "--to", "bob@example.test",
            "--subject", "s", "--body", "b", *extra, input=PASSWORD + "\n",
        )  # fmt: skip
        assert result.returncode == 14, result.stdout + result.stderr
        assert "bad credentials for alice/" in result.stdout + result.stderr
        outputs[f"{extra} stdout"] = result.stdout.encode()
        outputs[f"{extra} stderr"] = result.stderr.encode()
    assert find_leaks(PASSWORD, {**files_under(isolated_dirs), **outputs}) == []


def test_a_secret_across_the_line_cut_leaves_no_half_behind() -> None:
    transcript = Transcript()
    transcript.forbid(PASSWORD)
    for offset in range(len(PASSWORD)):
        line = "x" * (MAX_LINE_CHARS - offset) + PASSWORD + "y" * 50
        entry = transcript.add(Direction.SERVER, line)
        assert entry is not None and entry.redacted
        assert PASSWORD[: max(offset, 4)] not in entry.text.replace("x", ""), offset


def test_a_fifo_as_ca_file_is_a_tls_failure_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "ca.pem"
    os.mkfifo(fifo)  # nobody writes: OpenSSL's own read of it would never end
    result = run_tuimail(
        "send", "--server", "127.0.0.1:1", "--security", "starttls", "--ca-file", str(fifo),
        "--from", "a@example.test", "--to", "b@example.test", "--subject", "s", "--body", "b",
        "--no-queue", timeout=30,
    )  # fmt: skip
    assert result.returncode == 11, result.stdout + result.stderr
    assert "cannot use the CA file" in result.stderr + result.stdout
