"""F5 as an inbox: search as you type, mailboxes, and a message shown several ways.

The app's own sandbox receives from Python's smtplib (a client nobody here
wrote); F5 reads the inbox index over its Maildir in workers.
"""

from __future__ import annotations

import asyncio
import mailbox
import smtplib
import stat
import webbrowser
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, TextArea

from tests.smtpservers import ServerThread, Sink
from tests.test_sandbox_port import free_port, write_config
from tests.test_sandbox_shared import open_f5, row_texts, until_app_serves
from tests.test_ui_loop_io import file_calls_on_this_thread
from tests.ui_support import save_profile, static_text, wait_for
from tuimail import paths
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.dialogs import ConfirmDialog
from tuimail.ui.screens.forward_dialog import ForwardDialog
from tuimail.ui.screens.inbox_dialogs import ReleaseDialog, SaveAttachmentsDialog


def send(port: int, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(message)


def plain(sender: str, to: str, subject: str, body: str = "Hello") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(body)
    return message


def rich_message() -> EmailMessage:
    message = plain("Shop <shop@example.test>", "dana@example.test", "Your receipt", "Plain thanks")
    message.add_alternative(
        "<html><body><h1>Thanks</h1><p>Paid <b>12 EUR</b></p>"
        '<img src="https://tracker.example.test/p.gif"></body></html>',
        subtype="html",
    )
    message.add_attachment(
        b"%PDF-1.4 not really", maintype="application", subtype="pdf",
        filename="../../receipt\x1b[31m.pdf",
    )  # fmt: skip
    return message


async def started(pilot: Pilot[Any]) -> int:
    app = pilot.app
    assert isinstance(app, TuimailApp)
    await until_app_serves(pilot)
    assert app.model.sandbox is not None
    return app.model.sandbox.port


async def type_search(pilot: Pilot[Any], text: str) -> None:
    search = pilot.app.screen.query_one("#inbox-search", Input)
    search.focus()
    search.value = ""
    for key in text:
        await pilot.press(key if key != " " else "space")


async def test_search_as_you_type_narrows_the_list(isolated_dirs: Path) -> None:
    write_config(f"[sandbox]\nport = {free_port()}\n")
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        port = await started(pilot)
        for sender, subject in [
            ("alice@example.test", "Invoice 7"),
            ("carol@example.test", "Lunch"),
            ("alice@example.test", "Holiday photos"),
        ]:
            await asyncio.to_thread(send, port, plain(sender, "bob@example.test", subject))
        table = await open_f5(pilot, 3)
        await type_search(pilot, "subject:invoice")
        await wait_for(pilot, lambda: table.row_count == 1, "one match")
        assert "Invoice 7" in row_texts(table)[0]
        assert "1 message match." in static_text(app, "#sandbox-status")
        await type_search(pilot, "from:alice")
        await wait_for(pilot, lambda: table.row_count == 2, "alice's two")
        await type_search(pilot, "photos")  # free text
        await wait_for(pilot, lambda: table.row_count == 1, "the body and subject search")
        assert "Holiday photos" in row_texts(table)[0]
        await type_search(pilot, "")
        pilot.app.screen.query_one("#inbox-search", Input).value = ""
        await wait_for(pilot, lambda: table.row_count == 3, "all again")
        # A message arriving while a search is shown appears if it matches.
        await type_search(pilot, "subject:invoice")
        await wait_for(pilot, lambda: table.row_count == 1, "one match")
        await asyncio.to_thread(send, port, plain("erin@example.test", "bob@x.test", "Invoice 8"))
        await wait_for(pilot, lambda: table.row_count == 2, "the new invoice")
        assert "Invoice 8" in row_texts(table)[0]  # newest first


async def test_mailboxes_from_config_get_a_selector_and_a_column(isolated_dirs: Path) -> None:
    write_config(
        f"[sandbox]\nport = {free_port()}\n"
        '[[sandbox.mailboxes]]\nname = "billing"\nrecipient = "billing@example.test"\n'
    )
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        port = await started(pilot)
        await asyncio.to_thread(send, port, plain("a@example.test", "billing@example.test", "Due"))
        await asyncio.to_thread(send, port, plain("a@example.test", "bob+news@example.test", "Hi"))
        table = await open_f5(pilot, 2)
        labels = [str(column.label) for column in table.columns.values()]
        assert labels[-2:] == ["Mailbox", "Tags"]
        rows = row_texts(table)
        assert "billing" in rows[1] and "news" in rows[0]
        selector = app.screen.query_one("#inbox-mailbox", Select)
        assert selector.display
        await wait_for(
            pilot,
            lambda: any("billing" in str(label) for label, _v in selector._options),
            "the billing mailbox offered",
        )
        selector.value = "billing"
        await wait_for(pilot, lambda: table.row_count == 1, "the billing mailbox alone")
        assert "Due" in row_texts(table)[0]


async def test_a_message_as_text_html_source_and_mime_tree(isolated_dirs: Path) -> None:
    write_config(f"[sandbox]\nport = {free_port()}\n")
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        port = await started(pilot)
        await asyncio.to_thread(send, port, rich_message())
        table = await open_f5(pilot, 1)
        table.focus()
        table.move_cursor(row=0)

        def view() -> str:
            return static_text(app, "#message-view")

        await wait_for(pilot, lambda: "Plain thanks" in view(), "the text part")
        assert "Attachments: receipt\\x1b[31m.pdf" in view() or "receipt" in view()
        assert "\x1b" not in view()  # a name from the message is escaped
        await pilot.press("h")
        await wait_for(pilot, lambda: "Paid 12 EUR" in view(), "the HTML as text")
        assert "<b>" not in view()
        await pilot.press("u")
        await wait_for(pilot, lambda: "Content-Type: multipart/mixed" in view(), "the source")
        await pilot.press("m")
        await wait_for(pilot, lambda: "application/pdf" in view(), "the MIME tree")
        assert "multipart/alternative" in view() and "(attachment)" in view()
        await pilot.press("t")
        await wait_for(pilot, lambda: "Plain thanks" in view(), "the text again")


async def test_f5_reads_the_index_and_messages_off_the_ui_loop(isolated_dirs: Path) -> None:
    maildir = paths.data_dir() / "sandbox" / "maildir"
    maildir.parent.mkdir(parents=True)
    box = mailbox.Maildir(maildir, create=True)
    box.add(rich_message().as_bytes())
    box.add(plain("a@example.test", "b@example.test", "Second").as_bytes())
    app = TuimailApp(start_sandbox=False)  # reads profiles and config: before the loop
    with file_calls_on_this_thread(isolated_dirs) as log:
        async with app.run_test(size=(120, 40)) as pilot:
            table = await open_f5(pilot, 2)
            table.focus()
            table.move_cursor(row=1)
            await wait_for(
                pilot, lambda: "Plain thanks" in static_text(app, "#message-view"), "the text"
            )
            for key in "humt":
                await pilot.press(key)
            await type_search(pilot, "subject:second")
            await wait_for(pilot, lambda: table.row_count == 1, "the search")
    assert log.calls == []


def subject_is(app: TuimailApp, subject: str) -> Callable[[], bool]:
    return lambda: app.screen.query_one("#subject", Input).value == subject


async def open_first(pilot: Pilot[Any], rows: int) -> DataTable[Any]:
    table = await open_f5(pilot, rows)
    table.focus()
    table.move_cursor(row=0)
    app = pilot.app
    assert isinstance(app, TuimailApp)
    await wait_for(pilot, lambda: static_text(app, "#message-view").startswith("From:"), "")
    return table


def notes(app: TuimailApp) -> str:
    return "\n".join(n.message for n in app._notifications)


async def test_the_html_opens_in_the_browser_from_a_private_file_with_remote_content_blocked(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def browser(uri: str) -> bool:
        opened.append(uri)
        return True

    monkeypatch.setattr(webbrowser, "open", browser)
    write_config(f"[sandbox]\nport = {free_port()}\n")
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        port = await started(pilot)
        await asyncio.to_thread(send, port, rich_message())
        await open_first(pilot, 1)
        await pilot.press("o")
        await wait_for(pilot, lambda: opened, "the browser to be asked")
        page = Path(opened[0].removeprefix("file://"))
        try:
            assert stat.S_IMODE(page.stat().st_mode) == 0o600
            text = page.read_text(encoding="utf-8")
            assert text.index("Content-Security-Policy") < text.index("tracker.example.test")
            assert "default-src 'none'" in text
            await wait_for(pilot, lambda: "remote content" in notes(app), "the warning")
        finally:
            page.unlink()


async def test_attachments_are_saved_under_safe_names_and_never_over_a_file(
    isolated_dirs: Path, tmp_path: Path
) -> None:
    write_config(f"[sandbox]\nport = {free_port()}\n")
    target = tmp_path / "saved"
    target.mkdir()
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        port = await started(pilot)
        await asyncio.to_thread(send, port, rich_message())
        await open_first(pilot, 1)
        for _ in range(2):
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, SaveAttachmentsDialog), "ask")
            app.screen.query_one("#save-directory", Input).value = str(target)
            await pilot.click("#save")
            await wait_for(pilot, lambda: not isinstance(app.screen, SaveAttachmentsDialog), "")
        await wait_for(pilot, lambda: len(list(target.iterdir())) == 2, "two files")
    names = sorted(p.name for p in target.iterdir())
    assert names == ["receipt[31m-2.pdf", "receipt[31m.pdf"]  # no ../, no ESC
    assert (target / names[1]).read_bytes() == b"%PDF-1.4 not really"


async def test_open_marks_read_delete_removes_one_and_delete_all_asks_first(
    isolated_dirs: Path,
) -> None:
    write_config(f"[sandbox]\nport = {free_port()}\n")
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        port = await started(pilot)
        for subject in ("One", "Two", "Three"):
            await asyncio.to_thread(send, port, plain("a@example.test", "b@example.test", subject))
        table = await open_first(pilot, 3)
        box = paths.data_dir() / "sandbox" / "maildir"
        await wait_for(
            pilot, lambda: any(p.name.endswith(":2,S") for p in (box / "cur").iterdir()), "read"
        )
        await pilot.press("d")
        await wait_for(pilot, lambda: table.row_count == 2, "one deleted")
        assert not any("Three" in row for row in row_texts(table))
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.press("escape")  # no: nothing goes
        await wait_for(pilot, lambda: "Nothing deleted." in notes(app), "the answer")
        assert table.row_count == 2
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.click("#confirm")
        await wait_for(pilot, lambda: table.row_count == 0, "all deleted")
        assert [p for sub in ("new", "cur") for p in (box / sub).iterdir()] == []


async def test_reply_reply_all_and_forward_open_compose_on_the_draft(isolated_dirs: Path) -> None:
    write_config(f"[sandbox]\nport = {free_port()}\n")
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        port = await started(pilot)
        message = plain("Alice <alice@example.test>", "bob@example.test", "Plans", "See you")
        message["Cc"] = "carol@example.test"
        await asyncio.to_thread(send, port, message)
        for key, subject, to in [
            ("r", "Re: Plans", "alice@example.test"),
            ("R", "Re: Plans", "carol@example.test"),
            ("f", "Fwd: Plans", ""),
        ]:
            await pilot.press("f5")
            await open_first(pilot, 1)
            await pilot.press(key)
            if key == "f":  # inline or attached: Inline has the focus
                await wait_for(pilot, lambda: isinstance(app.screen, ForwardDialog), "the choice")
                await pilot.press("enter")
            await wait_for(pilot, lambda: app.current_mode == "compose", "Compose")
            await wait_for(pilot, subject_is(app, subject), subject)
            if to:
                everything = " ".join(str(i.value) for i in app.screen.query(Input))
                assert to in everything
            if key == "f":
                body = app.screen.query_one("#body", TextArea).text
                assert "---------- Forwarded message ----------" in body and "See you" in body


async def test_release_sends_the_captured_bytes_on_through_a_profile_to_changed_recipients(
    isolated_dirs: Path, servers: ServerThread
) -> None:
    sink = Sink()
    save_profile(name="real", host="127.0.0.1", port=servers.smtp(sink), security="none")
    write_config(f"[sandbox]\nport = {free_port()}\n")
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        port = await started(pilot)
        message = plain("Alice <alice@example.test>", "bob@example.test", "Release me", "Body")
        message["Cc"] = "carol@example.test"
        await asyncio.to_thread(send, port, message)
        await open_first(pilot, 1)
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, ReleaseDialog), "the question")
        to = app.screen.query_one("#release-to", Input)
        assert to.value == "bob@example.test, carol@example.test"  # the envelope's
        to.value = "carol@example.test"  # bob, named in To, left out: sent to carol alone
        await pilot.click("#release")
        await wait_for(pilot, lambda: sink.messages, "the second server to receive it")
        await wait_for(pilot, lambda: not app.model.busy, "the session to end")
        assert sink.messages[0].rcpt_tos == ["carol@example.test"]
        assert b"To: bob@example.test" in sink.messages[0].content  # the bytes as captured
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, ReleaseDialog), "the question")
        app.screen.query_one(
            "#release-to", Input
        ).value = "bob@example.test, carol@example.test, dave@example.test"
        await pilot.click("#release")
        await wait_for(pilot, lambda: len(sink.messages) == 2, "the second release")
        await wait_for(pilot, lambda: not app.model.busy, "the session to end")
    got = sink.messages[1]
    assert got.rcpt_tos == ["bob@example.test", "carol@example.test", "dave@example.test"]
    assert b"Subject: Release me" in got.content and b"Body" in got.content
    assert b"Message-ID:" in got.content
