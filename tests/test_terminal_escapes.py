"""A hostile server's escape sequences never reach the user's terminal raw.

The server below greets, answers EHLO and refuses the message with text that
would retitle the window (``ESC ] 0 ; ... BEL``), clear the screen
(``ESC [ 2 J``). The real
``tuimail`` commands run as processes against it; whatever they print, as
text or JSON, must hold none of those bytes, and the JSON must still read
back to what the server said.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from tests.cli_helpers import run_tuimail, send_args
from tests.smtpservers import ServerThread, Sink

#: Retitle the window, clear the screen (aiosmtpd answers in ASCII only).
EVIL = "\x1b]0;pwned\x07\x1b[2J"
RAW = ("\x1b", "\x07", "\x9b")


def hostile_server(servers: ServerThread) -> int:
    """Greeting, EHLO and the reply to the message all carry ``EVIL``."""
    sink = Sink(data_reply=f"554 5.7.1 refused{EVIL} here")
    return servers.smtp(sink, hostname=f"mx{EVIL}.test", ident=f"ESMTP{EVIL}")


class RefusingGreetingSMTP(SMTP):
    """Greets with a 554 carrying ``EVIL`` and hangs up: the probe's reason quotes it."""

    async def push(self, status: Any) -> None:
        text = status.decode() if isinstance(status, bytes) else status
        if text.startswith("220"):
            await super().push(f"554 5.3.2 go away{EVIL}")
            assert self.transport is not None
            self.transport.close()
            return
        await super().push(status)


def assert_no_raw_controls(*outputs: str) -> None:
    for output in outputs:
        for control in RAW:
            assert control not in output, f"{control!r} reached the terminal in {output!r}"


def test_send_and_outbox_list_print_server_text_escaped(servers: ServerThread) -> None:
    port = hostile_server(servers)
    sent = run_tuimail(*send_args(port, "--body", "Hi"))
    assert sent.returncode != 0
    assert_no_raw_controls(sent.stdout, sent.stderr)
    # The outcome line and the event line still say what the server said, visibly.
    assert "554 5.7.1 refused\\x1b]0;pwned\\x07\\x1b[2J here" in sent.stderr
    assert "*** data failed" in sent.stdout and "\\x1b[2J" in sent.stdout

    listed = run_tuimail("outbox", "list")
    assert listed.returncode == 0
    assert_no_raw_controls(listed.stdout, listed.stderr)
    assert "last error: data: " in listed.stdout and "\\x1b]0;pwned" in listed.stdout

    as_json = run_tuimail("outbox", "list", "--json")
    assert_no_raw_controls(as_json.stdout, as_json.stderr)
    (entry,) = json.loads(as_json.stdout)
    assert EVIL in entry["last_error"]  # the same text, escaped only as JSON escapes it

    flushed = run_tuimail("outbox", "flush", "--all", "--verbose")
    assert_no_raw_controls(flushed.stdout, flushed.stderr)


def test_send_json_lines_stay_json_and_safe(servers: ServerThread) -> None:
    port = hostile_server(servers)
    sent = run_tuimail(*send_args(port, "--body", "Hi", "--json", "--no-queue"))
    assert_no_raw_controls(sent.stdout, sent.stderr)
    records = [json.loads(line) for line in sent.stdout.splitlines()]
    assert EVIL in records[-1]["result"]["failure"]["explanation"]


@pytest.mark.parametrize("output", [[], ["--nagios"], ["--json"]], ids=["text", "nagios", "json"])
def test_probe_prints_the_banner_escaped(servers: ServerThread, output: list[str]) -> None:
    port = hostile_server(servers)
    probed = run_tuimail("probe", f"127.0.0.1:{port}", "--security", "none", *output)
    assert probed.returncode == 0, probed.stdout + probed.stderr
    assert_no_raw_controls(probed.stdout, probed.stderr)
    if not output:
        assert "  banner        mx\\x1b]0;pwned" in probed.stdout
    if output == ["--json"]:
        assert EVIL in json.loads(probed.stdout)["banner"]


@pytest.mark.parametrize("output", [[], ["--nagios"], ["--json"]], ids=["text", "nagios", "json"])
def test_probe_reasons_quote_a_refusing_greeting_escaped(
    servers: ServerThread, output: list[str]
) -> None:
    port = servers.smtp(Sink(), server_class=RefusingGreetingSMTP)
    probed = run_tuimail("probe", f"127.0.0.1:{port}", "--security", "none", *output)
    assert probed.returncode == 2, probed.stdout + probed.stderr  # CRITICAL
    assert_no_raw_controls(probed.stdout, probed.stderr)
    assert "go away" in probed.stdout


def test_terminal_json_escapes_what_json_dumps_leaves_raw() -> None:
    from tuimail.console import terminal_json

    document = {"text": "a\x7fb\x9bc\u202ed\U000e0001é", "list": ["\x1b[2J"]}
    line = terminal_json(document)
    assert line.isprintable()
    assert json.loads(line) == document
    assert "é" in line  # printable text stays as it is
    indented = terminal_json(document, indent=2)
    assert json.loads(indented) == document
    assert all(part.isprintable() for part in indented.splitlines())


def test_accounts_list_escapes_a_hand_edited_profiles_file(isolated_dirs: Any) -> None:
    """profiles.toml is a file anyone may have edited: its text is escaped when printed."""
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True)
    evil = json.dumps(EVIL)  # a TOML basic string takes JSON's escapes
    (config / "profiles.toml").write_text(
        f'[profiles.evil]\nhost = "127.0.0.1"\nusername = {evil}\n'
        f'from_address = "a@example.test"\ndisplay_name = {evil}\n'
    )
    text = run_tuimail("accounts", "list")
    as_json = run_tuimail("accounts", "list", "--json")
    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    assert_no_raw_controls(text.stdout, text.stderr, as_json.stdout, as_json.stderr)
    assert "\\x1b]0;pwned" in text.stdout
    [record] = [r for r in json.loads(as_json.stdout) if not r["builtin"]]
    assert record["username"] == EVIL


def test_doctor_escapes_the_paths_and_errors_it_quotes(tmp_path: Any) -> None:
    """A data dir whose name holds escape sequences is reported, not obeyed."""
    odd = tmp_path / f"data{EVIL}"
    odd.mkdir()
    for extra in ([], ["--json"]):
        result = run_tuimail("doctor", *extra, env={"XDG_DATA_HOME": str(odd)})
        assert_no_raw_controls(result.stdout, result.stderr)
    assert "\\x1b]0;pwned" in run_tuimail("doctor", env={"XDG_DATA_HOME": str(odd)}).stdout
