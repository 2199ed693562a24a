"""F5 as an inbox: search as you type, mailboxes, and a message shown several ways.

The app's own sandbox receives from Python's smtplib (a client nobody here
wrote); F5 reads the inbox index over its Maildir in workers.
"""

from __future__ import annotations

import asyncio
import mailbox
import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, Select

from tests.test_sandbox_port import free_port, write_config
from tests.test_sandbox_shared import open_f5, row_texts, until_app_serves
from tests.test_ui_loop_io import file_calls_on_this_thread
from tests.ui_support import static_text, wait_for
from tuimail import paths
from tuimail.ui.app import TuimailApp


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
