"""``tuimail send`` warns on standard error when the message is larger than the profile's
server took when last seen; real processes, aiosmtpd on 127.0.0.1 announcing a SIZE."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.smtpservers import ServerThread, Sink
from tests.ui_support import save_profile
from tuimail.cli import exitcodes
from tuimail.size_limits import last_seen, remember, server_key


def send(port: int, attachment: Path) -> list[str]:
    return [
        "send", "--profile", "local", "--to", "bob@example.test", "--subject", "Photo",
        "--body", "Attached.", "--attach", str(attachment), "--no-queue",
    ]  # fmt: skip


def test_a_message_past_the_limit_last_seen_is_warned_about_and_still_sent(
    servers: ServerThread, tmp_path: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink, data_size_limit=1_000_000)
    save_profile(name="local", host="127.0.0.1", port=port, security="none")
    photo = tmp_path / "photo.bin"
    photo.write_bytes(os.urandom(5000))

    # Nothing seen yet: no warning; the send itself keeps what the server announced.
    first = run_tuimail(*send(port, photo))
    assert first.returncode == exitcodes.OK, first.stderr
    assert "warning" not in first.stderr
    seen = last_seen("local", server_key("127.0.0.1", port))
    assert seen is not None and seen.limit == 1_000_000

    # The server took 3,000 bytes when last seen, two days ago: warned, sent all the same.
    remember("local", server_key("127.0.0.1", port), {"size": "3000"}, now=time.time() - 2 * 86400)
    second = run_tuimail(*send(port, photo))
    assert second.returncode == exitcodes.OK, second.stderr
    [warning] = [line for line in second.stderr.splitlines() if "warning" in line]
    assert warning.startswith("tuimail: warning: the message is 7.")
    assert "the server of profile local accepted at most 3 kB (3,000 bytes)" in warning
    assert "when last seen, 2 days ago; it will probably refuse it" in warning
    assert "warning" not in second.stdout  # the transcript stays clean for scripts
    assert len(sink.messages) == 2


def test_the_live_limit_still_refuses_before_data(servers: ServerThread, tmp_path: Path) -> None:
    sink = Sink()
    port = servers.smtp(sink, data_size_limit=3000)
    save_profile(name="local", host="127.0.0.1", port=port, security="none")
    remember("local", server_key("127.0.0.1", port), {"size": "3000"}, now=time.time() - 600)
    photo = tmp_path / "photo.bin"
    photo.write_bytes(os.urandom(5000))
    result = run_tuimail(*send(port, photo))
    assert "10 minutes ago" in result.stderr
    assert "the server accepts at most 3,000 bytes" in result.stderr + result.stdout
    assert result.returncode == 15  # MAIL FROM refused, or the message is too large
    assert sink.messages == []
