"""Attack review of .eml files opened in Compose (``tuimail compose --eml``, the palette's
"Open an .eml file"): headers the email package cannot parse, and text in a charset Python
cannot decode, give words and an exit code, never a traceback or a silent nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Input, TextArea

from tests.cli_helpers import run_tuimail
from tests.test_ui_compose_eml import palette
from tests.ui_support import paste, save_profile, static_text, wait_for
from tuimail.cli import exitcodes
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen

HEAD = b"From: a@example.test\nTo: b@example.test\nSubject: s\n"

#: Header values on which Python 3.11's email package raises IndexError or AttributeError
#: (not a ValueError) when the header is read.
UNREADABLE_HEADERS = [
    b"To: b<\n",
    b"Cc: b@\n",
    b"Reply-To: <=bBq>,=.:B\n",
    b"Sender: ]\\=>,<\n",
    b'Message-ID: <>==?utf-8?q?=B].B=\t\xc3\xa9"\n',
]


@pytest.mark.parametrize("header", UNREADABLE_HEADERS)
def test_a_header_the_email_package_cannot_read_is_refused_in_words(
    tmp_path: Path, header: bytes
) -> None:
    eml = tmp_path / "hostile.eml"
    eml.write_bytes(b"From: a@example.test\nSubject: s\n" + header + b"\nhi\n")
    result = run_tuimail("compose", "--eml", str(eml), "--print")
    assert result.returncode == exitcodes.INVALID_MESSAGE, result.stderr
    name = header.split(b":")[0].decode()
    assert f"its {name} header cannot be read" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("charset", ["x-bogus", "rot13", "base64", "zlib_codec", "idna"])
def test_text_in_a_charset_python_cannot_decode_is_kept_as_an_attachment(
    tmp_path: Path, charset: str
) -> None:
    eml = tmp_path / "odd.eml"
    text = b"+AGEAYgBj- caf\xe9\n"
    eml.write_bytes(
        HEAD
        + b"MIME-Version: 1.0\n"
        + f"Content-Type: text/plain; charset={charset}\n".encode()
        + b"Content-Transfer-Encoding: 8bit\n\n"
        + text
    )
    result = run_tuimail("compose", "--eml", str(eml), "--print")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["subject"] == "s" and document["body"] == ""
    [kept] = document["attachments"]
    # Nothing is lost: the text's bytes, as they were, in a file the user can open.
    assert Path(kept).read_bytes().replace(b"\r\n", b"\n") == text


async def test_the_palette_says_why_an_unreadable_eml_is_not_opened(tmp_path: Path) -> None:
    save_profile(name="local", host="127.0.0.1", port=2, security="none")
    eml = tmp_path / "hostile.eml"
    eml.write_bytes(b"From: a@example.test\nTo: b<\nSubject: Hostile\n\nhi\n")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await palette(pilot, "open an .eml")
        await wait_for(pilot, lambda: not isinstance(app.screen, ComposeScreen), "the picker")
        await paste(pilot, str(eml))
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: "its To header cannot be read" in static_text(app, "#send-status"),
            "the reason in the status line",
        )
        assert app.screen.query_one("#subject", Input).value == ""  # the form kept as it was


async def test_the_palette_opens_text_in_an_unknown_charset_with_it_attached(
    tmp_path: Path,
) -> None:
    save_profile(name="local", host="127.0.0.1", port=2, security="none")
    eml = tmp_path / "odd.eml"
    eml.write_bytes(
        HEAD.replace(b"Subject: s", b"Subject: Odd")
        + b"MIME-Version: 1.0\nContent-Type: text/plain; charset=x-bogus\n\nhello\n"
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await palette(pilot, "open an .eml")
        await wait_for(pilot, lambda: not isinstance(app.screen, ComposeScreen), "the picker")
        await paste(pilot, str(eml))
        await pilot.press("enter")
        subject = app.screen.query_one("#subject", Input)
        await wait_for(pilot, lambda: subject.value == "Odd", "the message in the form")
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        assert screen.query_one("#body", TextArea).text == ""
        [kept] = screen.attachments
        assert kept.read_bytes().replace(b"\r\n", b"\n") == b"hello\n"
