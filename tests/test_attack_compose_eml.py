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
from tuimail.eml import draft_as_eml, draft_from_eml
from tuimail.message import Draft
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
    b"Bcc: a.<?=?utf-8?q?]=)B\n",
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


def test_trace_and_receivers_fields_are_not_copied_into_the_new_message(tmp_path: Path) -> None:
    """A received message opened in Compose is a new message: its transport's record (Received,
    Return-Path, Resent-*, a DKIM signature of other bytes, a receiver's verdicts) stays out,
    and a Resent-Bcc in particular never becomes a header every recipient reads."""
    eml = tmp_path / "received.eml"
    eml.write_bytes(
        b"Return-Path: <ann@example.test>\n"
        b"Delivered-To: me@example.test\n"
        b"Received: from mx.example.test by mx; Fri, 04 Dec 2026 12:00:00 +0000\n"
        b"DKIM-Signature: v=1; a=rsa-sha256; d=example.test; s=s; h=from; bh=YQ==; b=Yg==\n"
        b"ARC-Seal: i=1; a=rsa-sha256; d=example.test; s=s; cv=none; b=Yg==\n"
        b"Authentication-Results: mx.example.test; dkim=pass\n"
        b"Received-SPF: pass\n"
        b"Resent-From: carol@example.test\n"
        b"Resent-Bcc: hidden@example.test\n"
        b"From: Ann <ann@example.test>\n"
        b"To: me@example.test\n"
        b"Subject: Printer\n"
        b"In-Reply-To: <first@example.test>\n"
        b"X-Ticket: 4711\n"
        b"\n"
        b"hi\n"
    )
    result = run_tuimail("compose", "--eml", str(eml), "--print")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["headers"] == [["In-Reply-To", "<first@example.test>"], ["X-Ticket", "4711"]]
    assert "hidden@example.test" not in result.stdout


FOREIGN_ALTERNATIVE = (
    b"From: Ann <ann@example.test>\nTo: me@example.test\nSubject: Rich\nMIME-Version: 1.0\n"
    b'Content-Type: multipart/alternative; boundary="alt"\n\n'
    b"--alt\nContent-Type: text/plain; charset=utf-8\n\n#1 on the list\nsecond line\n"
    b"--alt\nContent-Type: text/html; charset=utf-8\n\n"
    b'<p style="color:red"><b>#1</b> on the list<br>second line</p>\n'
    b"--alt--\n"
)


def test_another_clients_html_is_kept_and_markdown_stays_off(tmp_path: Path) -> None:
    """Only tuimail's own rendering of the text is taken for Markdown: another client's
    HTML is attached (nothing lost), and the text is not rendered as Markdown on send
    (``#1 on the list`` would become a heading, the two lines one paragraph)."""
    eml = tmp_path / "rich.eml"
    eml.write_bytes(FOREIGN_ALTERNATIVE)
    result = run_tuimail("compose", "--eml", str(eml), "--print")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["body"] == "#1 on the list\nsecond line"
    [html] = document["attachments"]
    assert b'<p style="color:red"><b>#1</b>' in Path(html).read_bytes()
    assert not draft_from_eml(FOREIGN_ALTERNATIVE, tmp_path / "again").markdown


def test_tuimails_own_markdown_message_opens_with_markdown_on(tmp_path: Path) -> None:
    typed = "# Plans\n\n* soup\n* bread\n"
    draft = Draft(from_address="me@example.test", to=["b@example.test"], body=typed, markdown=True)
    opened = draft_from_eml(draft_as_eml(draft), tmp_path / "parts")
    assert opened.markdown and opened.body == typed and opened.attachments == []


def test_a_date_or_message_id_that_cannot_be_read_is_dropped_as_any_is(tmp_path: Path) -> None:
    """A new message gets its own Date and Message-ID: the opened one's are never read."""
    eml = tmp_path / "broken-ids.eml"
    eml.write_bytes(HEAD + b"Message-ID: <>\nDate: <<<>>>\nX-Ticket: 4711\n\nhi\n")
    result = run_tuimail("compose", "--eml", str(eml), "--print")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["headers"] == [["X-Ticket", "4711"]]
