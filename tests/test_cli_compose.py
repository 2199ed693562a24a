"""``tuimail compose`` and ``tuimail 'mailto:...'`` as a desktop runs them (real processes),
and the app opening on the message they began (Pilot)."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

from textual.widgets import Input, TextArea

from tests.cli_helpers import run_tuimail
from tests.ui_support import static_text, wait_for
from tuimail.cli import exitcodes
from tuimail.cli.parser import with_mailto
from tuimail.drafts import DraftStore, SavedDraft
from tuimail.message import Draft
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen

DESKTOP_FILE = Path(__file__).parent.parent / "share" / "tuimail.desktop"


def test_a_mailto_link_in_place_of_a_command() -> None:
    link = "mailto:joe@example.com,ann@example.org?cc=bob@example.com&subject=caf%C3%A9&body=a%0D%0Ab&from=x@evil.test"
    result = run_tuimail(link, "--print")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "from": "",
        "reply_to": [],
        "to": ["joe@example.com", "ann@example.org"],
        "cc": ["bob@example.com"],
        "bcc": [],
        "subject": "café",
        "body": "a\nb",
        "headers": [],
        "attachments": [],
        "ignored": ["from"],
    }
    assert "the link's fields from are ignored" in result.stderr
    # The scheme in any case, after --profile as well; an option-looking link stays a link.
    assert with_mailto(["--profile", "work", "MAILTO:a@b.org"]) == [
        "--profile",
        "work",
        "compose",
        "MAILTO:a@b.org",
    ]
    assert with_mailto(["send", "--to", "mailto:a@b.org"]) == ["send", "--to", "mailto:a@b.org"]


def test_compose_options_add_to_the_link_and_replace_its_text() -> None:
    result = run_tuimail(
        "compose", "mailto:joe@example.com?subject=old", "--to", "Ann <ann@example.org>",
        "--bcc", "b@example.org", "--subject", "new", "--body", "text", "--print",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["to"] == ["joe@example.com", "Ann <ann@example.org>"]
    assert (document["bcc"], document["subject"], document["body"]) == (
        ["b@example.org"],
        "new",
        "text",
    )


def test_a_hostile_link_is_refused_with_exit_3() -> None:
    result = run_tuimail("mailto:a@example.org?subject=hi%0D%0ABcc:%20x@evil.test", "--print")
    assert result.returncode == exitcodes.INVALID_MESSAGE, result.stdout
    assert "subject" in result.stderr and "carriage return" in result.stderr
    escape = run_tuimail("mailto:a%1B%5D52@example.org", "--print")
    assert escape.returncode == exitcodes.INVALID_MESSAGE
    assert "\x1b" not in escape.stderr
    wrong = run_tuimail("compose", "http://example.org/", "--print")
    assert wrong.returncode == exitcodes.USAGE and "not a mailto: link" in wrong.stderr


def test_the_desktop_file_registers_the_mailto_scheme() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(DESKTOP_FILE, encoding="utf-8")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application"
    assert desktop["Exec"] == "tuimail %u"
    assert desktop["Terminal"] == "true"
    assert desktop["MimeType"] == "x-scheme-handler/mailto;"


async def test_the_app_opens_on_the_message_begun_on_the_command_line() -> None:
    # A draft left open last time stays in F7's list; the command line's message is shown.
    DraftStore().save(SavedDraft(DraftStore.new_id(), "", Draft(subject="older")))
    draft = Draft(to=["joe@example.com"], subject="From a link", body="Hello")
    app = TuimailApp(start_sandbox=False, initial_draft=draft)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(
            pilot,
            lambda: app.screen.query_one("#subject", Input).value == "From a link",
            "the command line's draft",
        )
        assert isinstance(app.screen, ComposeScreen)
        assert app.screen.query_one("#body", TextArea).text == "Hello"
        assert app.screen.query_one("#input-to", Input).value == "joe@example.com"
        assert static_text(app, "#send-status").startswith("Opened from the command line")
