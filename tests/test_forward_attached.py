"""A message forwarded as an attachment (and any attached .eml) goes as message/rfc822,
byte for byte, in 7bit or 8bit (RFC 2046 5.2.1: never base64): through real servers
and the installed command, parsed back with the email package; F5 and F7 ask inline or
attached, and Compose sends what they made."""

from __future__ import annotations

import asyncio
import email
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from textual.geometry import Region
from textual.pilot import Pilot
from textual.widgets import TextArea

from tests.cli_helpers import run_tuimail
from tests.smtpservers import Reply, ScriptedServer, ServerThread, Sink
from tests.test_sandbox_port import free_port, write_config
from tests.test_ui_inbox import open_first, send, started
from tests.ui_support import fill_draft, open_mailboxes, save_profile, wait_for, wait_for_run
from tuimail import paths
from tuimail.cli import exitcodes
from tuimail.message import Draft, build_message
from tuimail.replies import forward, forwards_dir, read_original, write_forward_attachment
from tuimail.stages import Stage
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.screens.forward_dialog import ForwardDialog
from tuimail.ui.widgets.address_field import AddressField

#: A captured message with 8-bit text (UTF-8 in a header and the body), a signature
#: line that starts with "--", and a part of its own.
CAPTURED = (
    b"Return-Path: <ann@example.test>\r\n"
    b"From: Ann <ann@example.test>\r\n"
    b"To: me@example.test\r\n"
    b"Subject: Caf\xc3\xa9 plans\r\n"
    b"Message-ID: <orig-1@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="inner"\r\n'
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Na\xc3\xafve r\xc3\xa9sum\xc3\xa9 at noon.\r\n"
    b"-- \r\n"
    b"Ann\r\n"
    b"--inner\r\n"
    b'Content-Type: text/csv; name="menu.csv"\r\n'
    b'Content-Disposition: attachment; filename="menu.csv"\r\n'
    b"\r\n"
    b"dish,price\r\n"
    b"soup,4\r\n"
    b"--inner--\r\n"
)


def parsed(wire: bytes) -> EmailMessage:
    message = email.message_from_bytes(wire, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def carried(wire: bytes) -> tuple[EmailMessage, bytes]:
    """The message/rfc822 part, and the bytes it carries as they are on the wire."""
    message = parsed(wire)
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "message/rfc822"]
    boundary = message.get_boundary()
    assert boundary is not None
    start = wire.index(b"\r\n\r\n", wire.index(b"Content-Type: message/rfc822")) + 4
    end = wire.index(b"\r\n--" + boundary.encode(), start)
    return part, wire[start:end]


def assert_intact(wire: bytes, original: bytes, encoding: str) -> None:
    part, inner = carried(wire)
    assert part["Content-Transfer-Encoding"] == encoding
    assert inner == original  # the CRLF before the boundary is the boundary's (RFC 2046)
    message = part.get_content()
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "Café plans" and message["Message-ID"] == "<orig-1@example.test>"
    body = message.get_body(("plain",))
    assert body is not None and body.get_content().startswith("Naïve résumé at noon.")
    [menu] = list(message.iter_attachments())
    assert menu.get_filename() == "menu.csv"


def forwarded_draft(tmp_path: Path, raw: bytes = CAPTURED) -> Draft:
    original = read_original(raw)
    draft = forward(original, attachment=write_forward_attachment(original, tmp_path / "fwd"))
    draft.from_address = "Me <me@example.test>"
    draft.to = ["erin@example.org"]
    draft.body = "See below.\n"
    return draft


def test_forwarded_as_8bit_message_rfc822_with_8bitmime(
    servers: ServerThread, tmp_path: Path
) -> None:
    """The installed command sends the attached .eml; the server offers 8BITMIME."""
    draft = forwarded_draft(tmp_path)
    [eml] = draft.attachments
    assert eml.name == "Café plans.eml"
    server = ScriptedServer()
    port = servers.scripted(server)
    result = run_tuimail(
        "send", "--server", f"127.0.0.1:{port}", "--security", "none",
        "--from", "me@example.test", "--to", "erin@example.org", "--subject", "Fwd: plans",
        "--body", "See below.", "--attach", str(eml),
    )  # fmt: skip
    assert result.returncode == exitcodes.OK, result.stderr
    [mail_from] = [c for c in server.commands if c.upper().startswith("MAIL FROM")]
    assert mail_from.endswith("BODY=8BITMIME") and "SMTPUTF8" not in mail_from
    [wire] = server.messages
    assert_intact(wire, CAPTURED, "8bit")
    outer = parsed(wire)
    assert outer["Subject"] == "Fwd: plans" and outer.get_content_type() == "multipart/mixed"


def test_without_8bitmime_it_is_refused_in_words(servers: ServerThread, tmp_path: Path) -> None:
    [eml] = forwarded_draft(tmp_path).attachments
    server = ScriptedServer({"EHLO": Reply("250-mx.test\r\n250 PIPELINING")})
    port = servers.scripted(server)
    result = run_tuimail(
        "send", "--server", f"127.0.0.1:{port}", "--security", "none",
        "--from", "me@example.test", "--to", "erin@example.org", "--subject", "Fwd",
        "--body", "x", "--attach", str(eml),
    )  # fmt: skip
    assert result.returncode == exitcodes.for_stage(Stage.MAIL), result.stderr
    assert "does not offer 8BITMIME" in result.stderr
    assert "forward it inline instead" in result.stderr
    assert not server.messages and not any(c.upper().startswith("MAIL") for c in server.commands)


def test_an_ascii_message_goes_7bit_and_lf_files_get_crlf(tmp_path: Path) -> None:
    ascii_message = CAPTURED.replace(b"Caf\xc3\xa9", b"Cafe").replace(b"Na\xc3\xafve", b"Naive")
    ascii_message = ascii_message.replace(b"r\xc3\xa9sum\xc3\xa9", b"resume")
    path = tmp_path / "saved.eml"
    path.write_bytes(ascii_message.replace(b"\r\n", b"\n"))  # a file of this system
    draft = Draft(
        from_address="me@example.test", to=["b@example.org"], body="x", attachments=[path]
    )
    outgoing = build_message(draft)
    assert not outgoing.needs_smtputf8
    wire = outgoing.to_bytes()
    assert wire.isascii()
    part, inner = carried(wire)
    assert part["Content-Transfer-Encoding"] == "7bit"
    assert inner == ascii_message


def test_what_message_rfc822_cannot_carry_goes_as_base64_bytes(tmp_path: Path) -> None:
    """A line over 998 octets, a bare CR, or no header: application/octet-stream, intact."""
    for name, data in [
        ("long.eml", b"From: a@example.test\r\n\r\n" + b"x" * 1200 + b"\r\n"),
        ("cr.eml", b"From: a@example.test\r\n\r\nline\rnext\r\n"),
        ("junk.eml", b"\x00\x01 not a message"),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        draft = Draft(from_address="me@example.test", to=["b@example.org"], attachments=[path])
        wire = build_message(draft).to_bytes()
        [part] = list(parsed(wire).iter_attachments())
        assert part.get_content_type() == "application/octet-stream", name
        assert part["Content-Transfer-Encoding"] == "base64"
        assert part.get_payload(decode=True) == data


async def choose(pilot: Pilot[Any], button: str) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, ForwardDialog), "inline or attached")
    await pilot.click(f"#forward-{button}")


async def test_f5_forwards_a_captured_message_attached_and_compose_sends_it(
    isolated_dirs: Path,
) -> None:
    write_config(f"[sandbox]\nport = {free_port()}\n")
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        port = await started(pilot)
        original = email.message_from_bytes(CAPTURED, policy=policy.SMTPUTF8)
        assert isinstance(original, EmailMessage)
        await asyncio.to_thread(send, port, original)
        await open_first(pilot, 1)
        await pilot.press("f")
        await choose(pilot, "attached")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "Compose")
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        await wait_for(pilot, lambda: bool(screen.attachments), "the attached message")
        [eml] = screen.attachments
        assert eml.parent == forwards_dir() and eml.suffix == ".eml"
        captured = eml.read_bytes()  # what the sandbox stored: the bytes forwarded
        assert b"Na\xc3\xafve r\xc3\xa9sum\xc3\xa9 at noon." in captured
        screen.query_one("#field-to", AddressField).value = "erin@example.org"
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot, 1)
        assert run.report is not None and run.report.delivery is not None
    maildir = paths.data_dir() / "sandbox" / "maildir"
    stored = [p.read_bytes() for sub in ("new", "cur") for p in (maildir / sub).iterdir()]
    [wire] = [m for m in stored if b"message/rfc822" in m]
    part, inner = carried(wire)
    assert part["Content-Transfer-Encoding"] == "8bit"
    assert inner == captured


async def test_f7_asks_inline_or_attached(servers: ServerThread) -> None:
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(Sink()), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Plans", body="Lunch at noon?")
        await pilot.press("ctrl+s")
        await wait_for_run(pilot, 1)
        await open_mailboxes(pilot, "tab-sent")
        await pilot.press("f")
        await choose(pilot, "attached")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "Compose")
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        await wait_for(pilot, lambda: bool(screen.attachments), "the attached message")
        [eml] = screen.attachments
        assert eml.name == "Plans.eml" and b"Lunch at noon?" in eml.read_bytes()
        assert "Lunch at noon?" not in screen.query_one("#body", TextArea).text

        await open_mailboxes(pilot, "tab-sent")
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, ForwardDialog), "the choice")
        await pilot.press("escape")  # cancelled: F7 stays
        await wait_for(pilot, lambda: not isinstance(app.screen, ForwardDialog), "F7 again")
        assert not isinstance(app.screen, ComposeScreen)


async def test_the_question_fits_a_small_terminal() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(40, 12)) as pilot:
        app.push_screen(ForwardDialog())
        await wait_for(pilot, lambda: isinstance(app.screen, ForwardDialog), "the question")
        await pilot.pause()
        width, height = app.size
        for button in ("#forward-inline", "#forward-attached", "#cancel"):
            region = app.screen.query_one(button).region
            assert region.area and Region(0, 0, width, height).contains_region(region), button
