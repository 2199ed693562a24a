"""A config.toml that cannot be read is one error, in the same words, in both faces.

The command line runs as a real process (``tests/cli_helpers.py``); the app
runs headless with Pilot and sends to an aiosmtpd server on 127.0.0.1.
"""

from __future__ import annotations

from tests.cli_helpers import run_tuimail, send_args
from tests.smtpservers import ServerThread, Sink
from tests.ui_support import save_profile, send_refused_by_config
from tuimail import paths
from tuimail.cli import exitcodes
from tuimail.outbox import Outbox
from tuimail.ui.app import TuimailApp

#: config.toml with a syntax error after a good [outbox] table.
BROKEN = '[outbox]\nfirst_delay = 60\n\n[keymap\n"compose.send" = "ctrl+t"\n'


def write_broken_config() -> str:
    """Write the broken file; returns the words both faces must use (the file and why)."""
    path = paths.config_dir() / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BROKEN)
    return f"{path} cannot be read: "


def test_the_command_line_stops_on_a_broken_config_as_on_a_bad_outbox_table() -> None:
    words = write_broken_config()
    listed = run_tuimail("outbox", "list")
    assert listed.returncode == exitcodes.CONFIG, listed.stderr
    assert listed.stderr.startswith(f"tuimail: {words}"), listed.stderr
    assert "Traceback" not in listed.stderr

    queued = run_tuimail(*send_args(1, "--body", "Hi"))  # queued: the retry timing is read
    assert queued.returncode == exitcodes.CONFIG, queued.stderr
    assert queued.stderr == listed.stderr
    assert Outbox().entries() == []


async def test_the_app_says_the_same_words_and_refuses_to_queue(servers: ServerThread) -> None:
    words = write_broken_config()
    cli_said = run_tuimail("outbox", "list").stderr.removeprefix("tuimail: ").strip()
    assert cli_said.startswith(words)
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        said = [str(n.message) for n in app._notifications if n.title == "config.toml"]
        assert said == [f"{cli_said}. Sends through the outbox are refused until it is fixed."]
        await send_refused_by_config(pilot, cli_said)
    assert sink.messages == []
    assert Outbox().entries() == []
