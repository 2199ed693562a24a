"""``tuimail compose --eml PATH`` (``-``: standard input): an .eml opened in Compose, as the
palette's "Open an .eml file" opens one: its headers and text in the fields, its other
parts as attachments. Real processes for the command line, Pilot for the app, and tmux
for a message piped in while the app still reads its keys from the terminal."""

from __future__ import annotations

import json
import shlex
from email import policy
from email.message import EmailMessage
from pathlib import Path

from textual.widgets import Input, TextArea

from tests.cli_helpers import run_tuimail
from tests.conftest import require_tool
from tests.test_ui_tmux import Tmux, tuimail_command
from tests.ui_support import wait_for
from tuimail import paths
from tuimail.cli import exitcodes
from tuimail.cli.compose import draft_from_args
from tuimail.cli.parser import build_parser
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.widgets.address_field import AddressField


def prepared(tmp_path: Path) -> Path:
    message = EmailMessage()
    message["From"] = "Help Desk <help@example.test>"
    message["To"] = "Bob <bob@example.test>"
    message["Cc"] = "carol@example.test"
    message["Reply-To"] = "desk@example.test"
    message["Subject"] = "Prepared elsewhere"
    message["X-Ticket"] = "4711"
    message.set_content("Written elsewhere.\nSecond line.\n")
    message.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="data.csv")
    message.add_attachment(
        b"\x89PNG\r\n\x1a\n", maintype="image", subtype="png", filename="logo.png"
    )
    path = tmp_path / "prepared.eml"
    path.write_bytes(message.as_bytes(policy=policy.SMTP))
    return path


def test_an_eml_file_as_json(tmp_path: Path) -> None:
    eml = prepared(tmp_path)
    result = run_tuimail("compose", "--eml", str(eml), "--bcc", "audit@example.test", "--print")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert "help@example.test" in document["from"]
    assert document["reply_to"] == ["desk@example.test"]
    assert document["to"] == ["Bob <bob@example.test>"]
    assert document["cc"] == ["carol@example.test"]
    assert document["bcc"] == ["audit@example.test"]  # added by the option
    assert document["subject"] == "Prepared elsewhere"
    assert document["body"] == "Written elsewhere.\nSecond line.\n"
    assert ["X-Ticket", "4711"] in document["headers"]
    attached = [Path(p) for p in document["attachments"]]
    assert [p.name for p in attached] == ["data.csv", "logo.png"]
    assert all(p.is_relative_to(paths.data_dir() / "opened") for p in attached)
    assert attached[0].read_bytes().replace(b"\r\n", b"\n") == b"a,b\n1,2\n"
    assert attached[1].read_bytes() == b"\x89PNG\r\n\x1a\n"


def test_an_eml_on_standard_input_and_its_refusals(tmp_path: Path) -> None:
    eml = prepared(tmp_path)
    piped = run_tuimail(
        "compose", "--eml", "-", "--subject", "Replaced", "--print", input=eml.read_text()
    )
    assert piped.returncode == 0, piped.stderr
    document = json.loads(piped.stdout)
    assert document["subject"] == "Replaced"
    assert document["to"] == ["Bob <bob@example.test>"]

    both = run_tuimail("compose", "mailto:a@example.test", "--eml", str(eml), "--print")
    assert both.returncode == exitcodes.USAGE and "not both" in both.stderr
    missing = run_tuimail("compose", "--eml", str(tmp_path / "none.eml"), "--print")
    assert missing.returncode == exitcodes.INVALID_MESSAGE and "does not exist" in missing.stderr
    mixed = tmp_path / "mixed.eml"
    mixed.write_bytes(b"From: a@example.test\r\nSubject: x\n\r\nbody\r\n")
    refused = run_tuimail("compose", "--eml", str(mixed), "--print")
    assert refused.returncode == exitcodes.INVALID_MESSAGE and "bare LF" in refused.stderr
    injected = run_tuimail(
        "compose", "--eml", str(eml), "--subject", "a\rBcc: x@evil.test", "--print"
    )
    assert injected.returncode == exitcodes.INVALID_MESSAGE


async def test_the_app_opens_the_eml_given_on_the_command_line(tmp_path: Path) -> None:
    eml = prepared(tmp_path)
    args = build_parser(define=["compose"]).parse_args(["compose", "--eml", str(eml)])
    draft, ignored = draft_from_args(args)
    assert ignored == ()
    app = TuimailApp(start_sandbox=False, initial_draft=draft)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(
            pilot,
            lambda: app.screen.query_one("#subject", Input).value == "Prepared elsewhere",
            "the .eml in Compose",
        )
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        assert "bob@example.test" in screen.query_one("#field-to", AddressField).value
        assert "carol@example.test" in screen.query_one("#field-cc", AddressField).value
        assert "help@example.test" in screen.query_one("#field-from", AddressField).value
        assert screen.query_one("#body", TextArea).text == "Written elsewhere.\nSecond line.\n"
        assert [p.name for p in screen.attachments] == ["data.csv", "logo.png"]


def test_a_piped_eml_opens_in_the_app_in_a_real_terminal(
    isolated_dirs: Path, tmp_path: Path
) -> None:
    """The message comes on a pipe; the app then reads its keys from the terminal."""
    eml = prepared(tmp_path)
    tmux = Tmux(require_tool("tmux", "tmux"))
    try:
        command = f"cat {shlex.quote(str(eml))} | {tuimail_command()} compose --eml -"
        tmux.start(f"sh -c {shlex.quote(command)}", width=120, height=40)
        tmux.wait_for_text("Prepared elsewhere")
        tmux.wait_for_text("data.csv")
        tmux.quit_app()
    finally:
        tmux.kill()
