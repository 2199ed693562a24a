"""Snapshots of every screen at 80x24 and 120x40, Compose at 40x12 too (pytest-textual-snapshot).

Regenerate after an intended change with
``.venv/bin/python -m pytest tests/test_ui_snapshots.py --snapshot-update`` and
look at the SVGs under ``tests/__snapshots__/`` before committing them.

A snapshot must be the same on every machine and every run, so nothing on
screen may depend on the clock, a random port or a temporary path:

* the sandbox is not started where it is not the subject (``start_sandbox=False``:
  its profile then reads "not running");
* sessions are fed in as data: a :class:`SessionRun` whose transcript has fixed
  ``elapsed`` values and a start time built with :func:`time.mktime` from a
  local wall-clock time (so the shown ``HH:MM:SS`` is the same in any zone);
* the sandbox inbox gets a real sandbox whose maildir is a relative path in the
  test's own directory and whose session record is built from fixed values; its
  listening port is the only value overwritten for the picture.
"""

from __future__ import annotations

import base64
import mailbox
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from tests.ui_support import paste, wait_for
from tuimail import paths
from tuimail.profiles import Profile, ProfileStore, Security
from tuimail.sandbox import Sandbox, SandboxConfig, SessionOutcome, SessionRecord, StoredMessage
from tuimail.session import Delivery, SessionFailure, SessionReport, Stage
from tuimail.tlsinfo import TLSInfo
from tuimail.transcript import Direction, Entry, EventKind, Transcript
from tuimail.ui.app import TuimailApp
from tuimail.ui.history import RunKind, SessionRun
from tuimail.ui.screens.dialogs import AccountDialog, HelpScreen
from tuimail.ui.widgets.address_field import AddressField

SnapCompare = Callable[..., bool]

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]

C, S, E = Direction.CLIENT, Direction.SERVER, Direction.EVENT


def at(hour: int, minute: int, second: int) -> float:
    """A fixed local wall-clock time on 2025-03-01, as an epoch timestamp."""
    return time.mktime((2025, 3, 1, hour, minute, second, 0, 0, -1))


@pytest.fixture(autouse=True)
def saved_profiles() -> None:
    store = ProfileStore()
    store.save(
        Profile(
            name="work",
            host="smtp.example.test",
            port=587,
            security=Security.STARTTLS,
            username="alice",
            from_address="alice@example.test",
            display_name="Alice Example",
        )
    )
    store.save(
        Profile(
            name="relay",
            host="relay.example.test",
            port=25,
            security=Security.NONE,
            from_address="alerts@example.test",
        )
    )


# -- deterministic sessions ----------------------------------------------------


def tls_send_transcript() -> Transcript:
    lines: list[tuple[float, Direction, str, bool, EventKind | None]] = [
        (0.000, E, "smtp.example.test:587 security STARTTLS (required)", False, EventKind.INFO),
        (0.011, E, "connected to smtp.example.test:587", False, EventKind.CONNECTED),
        (0.034, S, "220 smtp.example.test ESMTP ready", False, None),
        (0.035, C, "EHLO client.example.test", False, None),
        (0.051, S, "250-smtp.example.test", False, None),
        (0.051, S, "250-PIPELINING", False, None),
        (0.051, S, "250-STARTTLS", False, None),
        (0.051, S, "250 8BITMIME", False, None),
        (0.052, C, "STARTTLS", False, None),
        (0.067, S, "220 2.0.0 Ready to start TLS", False, None),
        (0.112, E, "TLS established: TLSv1.3, TLS_AES_256_GCM_SHA384", True, EventKind.TLS),
        (0.113, C, "EHLO client.example.test", True, None),
        (0.129, S, "250-smtp.example.test", True, None),
        (0.129, S, "250-AUTH PLAIN LOGIN", True, None),
        (0.129, S, "250 8BITMIME", True, None),
        (0.130, C, "AUTH PLAIN ********", True, None),
        (0.171, S, "235 2.7.0 Authentication successful", True, None),
        (0.172, C, "MAIL FROM:<alice@example.test> SIZE=412", True, None),
        (0.188, S, "250 2.1.0 Ok", True, None),
        (0.189, C, "RCPT TO:<bob@example.test>", True, None),
        (0.204, S, "250 2.1.5 Ok", True, None),
        (0.205, C, "DATA", True, None),
        (0.219, S, "354 End data with <CR><LF>.<CR><LF>", True, None),
        (0.221, C, "[message content: 412 bytes, 12 lines] .", True, None),
        (0.262, S, "250 2.0.0 Ok: queued as 4QxY7p1Zt9z", True, None),
        (0.263, C, "QUIT", True, None),
        (0.277, S, "221 2.0.0 Bye", True, None),
        (0.278, E, "connection closed", True, EventKind.CLOSED),
    ]
    return Transcript(
        title="send work",
        entries=[
            Entry(t, direction, text, secure, kind, redacted=text.startswith("AUTH"))
            for t, direction, text, secure, kind in lines
        ],
    )


def failed_send_transcript() -> Transcript:
    lines: list[tuple[float, Direction, str, EventKind | None]] = [
        (0.000, E, "relay.example.test:25 security plain", EventKind.INFO),
        (0.008, E, "connected to relay.example.test:25", EventKind.CONNECTED),
        (0.020, S, "220 relay.example.test ESMTP", None),
        (0.021, C, "EHLO client.example.test", None),
        (0.033, S, "250-relay.example.test", None),
        (0.033, S, "250 8BITMIME", None),
        (0.034, C, "MAIL FROM:<alerts@example.test> SIZE=388", None),
        (0.046, S, "250 2.1.0 Ok", None),
        (0.047, C, "RCPT TO:<ops@example.test>", None),
        (0.058, S, "250 2.1.5 Ok", None),
        (0.059, C, "DATA", None),
        (0.070, S, "354 End data with <CR><LF>.<CR><LF>", None),
        (0.072, C, "[message content: 388 bytes, 11 lines] .", None),
        (0.090, S, "554 5.7.1 Message rejected by policy", None),
        (0.091, C, "RSET", None),
        (0.101, S, "250 2.0.0 Ok", None),
        (0.102, E, "data failed: the server refused the message: 554", EventKind.ERROR),
        (0.103, C, "QUIT", None),
        (0.112, S, "221 2.0.0 Bye", None),
        (0.113, E, "connection closed", EventKind.CLOSED),
    ]
    return Transcript(
        title="send relay",
        entries=[Entry(t, direction, text, False, kind) for t, direction, text, kind in lines],
    )


def finished_runs() -> list[SessionRun]:
    ok = SessionRun(RunKind.SEND, "work", "bob@example.test", tls_send_transcript(), id=1)
    ok.started = at(9, 15, 0)
    ok.report = SessionReport(
        ok.transcript,
        delivery=Delivery(
            "<20250301091500.1@client.example.test>",
            412,
            ["bob@example.test"],
            [],
            "2.0.0 Ok: queued as 4QxY7p1Zt9z",
        ),
        tls=TLSInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, True, None),
    )
    failed = SessionRun(RunKind.SEND, "relay", "ops@example.test", failed_send_transcript(), id=2)
    failed.started = at(9, 17, 30)
    failed.report = SessionReport(
        failed.transcript,
        failure=SessionFailure(
            Stage.DATA,
            "the server refused the message: 554 5.7.1 Message rejected by policy",
            temporary=False,
            code=554,
            reply="5.7.1 Message rejected by policy",
        ),
    )
    return [ok, failed]


# -- a sandbox with one captured message ------------------------------------------

RAW_MESSAGE = (
    b"From: tuimail sandbox <you@sandbox.test>\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: Lunch on Friday?\r\n"
    b"Date: Sat, 01 Mar 2025 09:20:00 +0000\r\n"
    b"Message-ID: <20250301092000.7@sandbox.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hi Bob,\r\n"
    b"\r\n"
    b"shall we try the new place on Friday?\r\n"
    b"\r\n"
    b"Alice\r\n"
)


def server_transcript(key: str) -> Transcript:
    lines: list[tuple[float, Direction, str, EventKind | None]] = [
        (0.000, E, "client connected from 127.0.0.1:50412", EventKind.CONNECTED),
        (0.001, S, "220 localhost tuimail sandbox", None),
        (0.003, C, "EHLO client.example.test", None),
        (0.004, S, "250-localhost", None),
        (0.004, S, "250-SIZE 33554432", None),
        (0.004, S, "250-8BITMIME", None),
        (0.004, S, "250-PIPELINING", None),
        (0.004, S, "250 HELP", None),
        (0.006, C, "MAIL FROM:<you@sandbox.test> SIZE=322", None),
        (0.007, S, "250 OK", None),
        (0.008, C, "RCPT TO:<bob@example.test>", None),
        (0.008, S, "250 OK", None),
        (0.009, C, "DATA", None),
        (0.009, S, "354 End data with <CR><LF>.<CR><LF>", None),
        (0.010, C, "[message content: 322 bytes, 13 lines] .", None),
        (0.012, E, f"stored message {key}", EventKind.INFO),
        (0.012, S, f"250 2.0.0 Ok: queued as {key}", None),
        (0.013, C, "QUIT", None),
        (0.013, S, "221 Bye", None),
        (0.014, E, "session ended: completed", EventKind.CLOSED),
    ]
    return Transcript(
        title="sandbox session",
        entries=[Entry(t, direction, text, False, kind) for t, direction, text, kind in lines],
    )


async def show_sandbox_with_a_message(pilot: Pilot[Any]) -> None:
    await show_sandbox_with(pilot, RAW_MESSAGE, "Lunch on Friday?")


async def show_sandbox_with(pilot: Pilot[Any], raw: bytes, subject: str) -> None:
    app = pilot.app
    assert isinstance(app, TuimailApp)
    sandbox = Sandbox(SandboxConfig(port=0, maildir=Path("maildir"), sessions_dir=Path("sessions")))
    await sandbox.start()
    sandbox.port = 2525  # the real port is random; the picture shows this one
    # The key Maildir gives a message holds the time and host; the record names a fixed one.
    real_key = mailbox.Maildir("maildir", create=False).add(raw)
    received = at(9, 20, 0)
    record = SessionRecord(
        id="20250301T092000-1",
        peer="127.0.0.1:50412",
        started=received,
        ended=received + 0.014,
        helo="client.example.test",
        outcome=SessionOutcome.COMPLETED,
        transcript=server_transcript("1740820800.M1P1Q1.sandbox"),
    )
    record.messages.append(
        StoredMessage(
            key=real_key,
            message_id="<20250301092000.7@sandbox.test>",
            mail_from="you@sandbox.test",
            rcpt_tos=("bob@example.test",),
            size=len(raw),
            session_id=record.id,
            received_at=received,
        )
    )
    sandbox.sessions.append(record)
    app.model.sandbox = sandbox  # stopped by the app when it exits
    app.model.sandbox_profile = sandbox.client_profile()
    await pilot.press("f5")
    table = app.screen.query_one("#captured", DataTable)
    await wait_for(pilot, lambda: table.row_count == 1, "the captured message")
    table.move_cursor(row=0)
    await wait_for(
        pilot,
        lambda: subject in str(app.screen.query_one("#message-view", Static).content),
        "the message to be shown",
    )


#: An OpenPGP public-key encrypted session key packet (RFC 4880 5.1) to key 0123456789ABCDEF:
#: enough for the view to say whom the message is encrypted to (nobody can decrypt it).
_PKESK = bytes([0xC1, 12, 3]) + bytes.fromhex("0123456789ABCDEF") + bytes([1, 0, 1, 1])
RAW_ENCRYPTED = (
    b"DKIM-Signature: v=1; a=rsa-sha256; d=example.test; s=mail; h=from; bh=x; b=x\r\n"
    + RAW_MESSAGE.split(b"MIME-Version")[0].replace(b"Lunch on Friday?", b"Sealed plans")
    + b"MIME-Version: 1.0\r\n"
    + b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"\r\n'
    + b"\r\n--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
    + b"\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n"
    + b"-----BEGIN PGP MESSAGE-----\r\n\r\n"
    + base64.b64encode(_PKESK)
    + b"\r\n-----END PGP MESSAGE-----\r\n--b--\r\n"
)


async def show_sandbox_with_an_encrypted_message(pilot: Pilot[Any]) -> None:
    await show_sandbox_with(pilot, RAW_ENCRYPTED, "Protection: OpenPGP encrypted to")


# -- the snapshots ----------------------------------------------------------------


def quiet_app() -> TuimailApp:
    return TuimailApp(start_sandbox=False)


@pytest.mark.parametrize("size", SIZES)
def test_compose(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    async def write_a_draft(pilot: Pilot[Any]) -> None:
        await pilot.click("#input-to")
        await paste(pilot, "Bob Example <bob@example.test>")
        await pilot.click("#subject")
        await paste(pilot, "Lunch on Friday?")
        await pilot.click("#body")
        await paste(pilot, "Hi Bob,\n\nshall we try the new place on Friday?\n\nAlice")
        await pilot.click("#input-cc")

    assert snap_compare(quiet_app(), terminal_size=size, run_before=write_a_draft)


@pytest.mark.parametrize("size", SIZES)
def test_compose_after_a_send(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    """After a send: the form cleared, the status says sent, and (at 120 columns)
    the live transcript beside the form, which had the width until then."""

    async def send_one(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, TuimailApp)
        sent = finished_runs()[0]
        app.model.history.add(sent)
        app.model.session_started.publish(sent)
        app.model.session_finished.publish(sent)
        await pilot.pause()

    assert snap_compare(quiet_app(), terminal_size=size, run_before=send_one)


@pytest.mark.parametrize("size", SIZES)
def test_compose_with_more_fields_and_an_address_error(
    snap_compare: SnapCompare, size: tuple[int, int]
) -> None:
    """From edited, Reply-To and a header shown by "More", and an address error read whole."""

    async def write_more(pilot: Pilot[Any]) -> None:
        await pilot.click("#input-to")
        await paste(pilot, "Bob Example <bob@example.test>, not an address at all ((")
        await pilot.press("ctrl+r")
        await paste(pilot, "Help Desk <help@example.test>")
        await pilot.click("#headers")
        await paste(pilot, "X-Ticket: 42")
        await pilot.click("#input-from")
        pilot.app.screen.query_one("#input-from", Input).value = "Desk <desk@example.test>"
        await pilot.click("#subject")
        await paste(pilot, "Lunch on Friday?")

    assert snap_compare(quiet_app(), terminal_size=size, run_before=write_more)


@pytest.mark.parametrize("size", SIZES)
def test_compose_with_the_completion_list_open(
    snap_compare: SnapCompare, size: tuple[int, int], tmp_path: Path
) -> None:
    """To's suggestions under it: the profiles' own addresses (the built-in sandbox's too), then the
    address book's."""
    book = tmp_path / "book.sh"
    book.write_text(
        "#!/bin/sh\nprintf 'anna@example.test\\tAnna Berg\\narthur@example.test\\tArthur Dent\\n'\n"
    )
    book.chmod(0o700)
    config = paths.config_dir()
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(f'[compose]\naddress_book_cmd = "{book} %s"\n')

    async def type_an_address(pilot: Pilot[Any]) -> None:
        await pilot.click("#input-to")
        await paste(pilot, "Bob Example <bob@example.test>, ")
        await pilot.press("a")
        field = pilot.app.screen.query_one("#field-to", AddressField)
        await wait_for(pilot, lambda: len(field.suggestions) == 5, "five suggestions")

    assert snap_compare(quiet_app(), terminal_size=size, run_before=type_an_address)


@pytest.mark.parametrize("size", SIZES)
def test_compose_markdown_preview(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    """F8: the body as its Markdown renders (a heading, a list, code, a link)."""

    async def preview(pilot: Pilot[Any]) -> None:
        await pilot.click("#body")
        await paste(
            pilot,
            "# Lunch on Friday\n\nShall we try **the new place**?\n\n"
            "- noon\n- `table 4`\n\nMenu: [the site](https://example.test/menu)\n",
        )
        await pilot.press("f9", "f8")
        await pilot.pause()

    assert snap_compare(quiet_app(), terminal_size=size, run_before=preview)


def test_compose_at_40x12(snap_compare: SnapCompare) -> None:
    """The smallest terminal: the form scrolls, an address error wraps to be read whole."""

    async def write_a_draft(pilot: Pilot[Any]) -> None:
        await pilot.click("#input-to")
        await paste(pilot, "bob@example.test, not an address ((")
        await pilot.click("#input-cc")

    assert snap_compare(quiet_app(), terminal_size=(40, 12), run_before=write_a_draft)


@pytest.mark.parametrize("size", SIZES)
def test_transcript_with_finished_sessions(
    snap_compare: SnapCompare, size: tuple[int, int]
) -> None:
    app = quiet_app()
    for run in finished_runs():
        app.model.history.add(run)
    assert snap_compare(app, terminal_size=size, press=["f3"])


@pytest.mark.parametrize("size", SIZES)
def test_accounts(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    assert snap_compare(quiet_app(), terminal_size=size, press=["f4"])


@pytest.mark.parametrize("size", SIZES)
def test_account_dialog(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    async def edit_work(pilot: Pilot[Any]) -> None:
        await pilot.press("f4")
        table = pilot.app.screen.query_one("#profiles", DataTable)
        table.move_cursor(row=[str(k.value) for k in table.rows].index("work"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, AccountDialog), "the dialog")

    assert snap_compare(quiet_app(), terminal_size=size, run_before=edit_work)


@pytest.mark.parametrize("size", SIZES)
def test_account_dialog_settings_read_as_text(
    snap_compare: SnapCompare, size: tuple[int, int]
) -> None:
    """The checkboxes at the foot of the form: on and off differ in text, not in colour only."""

    async def edit_work_settings(pilot: Pilot[Any]) -> None:
        await pilot.press("f4")
        table = pilot.app.screen.query_one("#profiles", DataTable)
        table.move_cursor(row=[str(k.value) for k in table.rows].index("work"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, AccountDialog), "the dialog")
        pilot.app.screen.query_one("#allow_plaintext_auth").focus()
        await pilot.pause()

    assert snap_compare(quiet_app(), terminal_size=size, run_before=edit_work_settings)


@pytest.mark.parametrize("size", SIZES)
def test_sandbox_inbox_with_a_message_selected(
    snap_compare: SnapCompare,
    size: tuple[int, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the maildir's relative path is what the screen shows
    assert snap_compare(quiet_app(), terminal_size=size, run_before=show_sandbox_with_a_message)


@pytest.mark.parametrize("size", SIZES)
def test_sandbox_inbox_protection_line(
    snap_compare: SnapCompare,
    size: tuple[int, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Encrypted to whom (a key id the empty keyring cannot name), DKIM as read, and x."""
    monkeypatch.chdir(tmp_path)
    gnupg = tmp_path / "gnupg"
    gnupg.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(gnupg))
    assert snap_compare(
        quiet_app(), terminal_size=size, run_before=show_sandbox_with_an_encrypted_message
    )


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    async def open_help(pilot: Pilot[Any]) -> None:
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help")

    assert snap_compare(quiet_app(), terminal_size=size, run_before=open_help)


def hostile_run() -> SessionRun:
    """A session with a server whose words are escape sequences and markup."""
    evil = "\x1b]0;pwned\x07\x1b[2J [b]bold[/b] [@click=app.quit]quit[/] [/oops]"
    lines: list[tuple[float, Direction, str, EventKind | None]] = [
        (0.000, E, "mx.evil.test:25 security plain", EventKind.INFO),
        (0.009, S, "220 mx.evil.test ESMTP \\x1b]0;pwned\\x07 [b]x[/b]", None),
        (0.010, C, "EHLO client.example.test", None),
        (0.021, S, "250 mx.evil.test", None),
        (0.022, C, "MAIL FROM:<alerts@example.test> SIZE=388", None),
        (0.031, S, "554 5.7.1 no \\x1b[2J [@click=app.quit]quit[/]", None),
        (0.032, E, "mail failed: the server refused the sender", EventKind.ERROR),
    ]
    transcript = Transcript(
        title="send hostile",
        entries=[Entry(t, direction, text, False, kind) for t, direction, text, kind in lines],
    )
    run = SessionRun(RunKind.SEND, "relay", f"ops{evil}@example.test", transcript, id=3)
    run.started = at(9, 30, 0)
    run.report = SessionReport(
        transcript,
        failure=SessionFailure(
            Stage.MAIL,
            f"the server refused the sender alerts@example.test: 554 5.7.1 no {evil}",
            temporary=False,
            code=554,
            reply=f"5.7.1 no {evil}",
        ),
    )
    return run


@pytest.mark.parametrize("size", SIZES)
def test_transcript_of_a_hostile_server_shows_its_words_as_text(
    snap_compare: SnapCompare, size: tuple[int, int]
) -> None:
    """Escape sequences shown as ``\\x1b``, markup shown as typed; nothing obeyed."""
    app = quiet_app()
    app.model.history.add(hostile_run())
    assert snap_compare(app, terminal_size=size, press=["f3"])


@pytest.mark.parametrize("size", SIZES)
def test_sandbox_inbox_searched(
    snap_compare: SnapCompare,
    size: tuple[int, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """F5 with a search typed: the list narrowed, the status says how many match."""
    monkeypatch.chdir(tmp_path)

    async def search(pilot: Pilot[Any]) -> None:
        await show_sandbox_with_a_message(pilot)
        app = pilot.app
        app.screen.query_one("#inbox-search", Input).focus()
        await paste(pilot, "subject:lunch")
        status = app.screen.query_one("#sandbox-status", Static)
        await wait_for(pilot, lambda: "1 message match." in str(status.content), "the search")

    assert snap_compare(quiet_app(), terminal_size=size, run_before=search)


@pytest.mark.parametrize("size", SIZES)
def test_sandbox_inbox_message_source(
    snap_compare: SnapCompare,
    size: tuple[int, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """F5's message view as its raw source (u)."""
    monkeypatch.chdir(tmp_path)

    async def source(pilot: Pilot[Any]) -> None:
        await show_sandbox_with_a_message(pilot)
        await pilot.press("u")
        view = pilot.app.screen.query_one("#message-view", Static)
        await wait_for(pilot, lambda: "Message-ID:" in str(view.content), "the source")

    assert snap_compare(quiet_app(), terminal_size=size, run_before=source)


RICH_MESSAGE = (
    b"From: Shop <shop@example.test>\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: Your receipt\r\n"
    b"Date: Sat, 01 Mar 2025 09:21:00 +0000\r\n"
    b"Message-ID: <20250301092100.8@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"--outer\r\n"
    b'Content-Type: multipart/alternative; boundary="inner"\r\n'
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Thanks for your order.\r\n"
    b"--inner\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>Thanks for your <b>order</b>.</p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\n"
    b"Content-Type: application/pdf\r\n"
    b'Content-Disposition: attachment; filename="receipt.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQgbm90IHJlYWxseQ==\r\n"
    b"--outer--\r\n"
)


async def _rich_message_shown(pilot: Pilot[Any], key: str, marker: str) -> None:
    """F5 with :data:`RICH_MESSAGE` added by another program and shown in view ``key``."""
    await show_sandbox_with_a_message(pilot)
    # Put there by another program, under a name that holds a fixed time.
    name = f"{int(at(9, 21, 0))}.M2P2Q2.sandbox"
    (Path.cwd() / "maildir" / "new" / name).write_bytes(RICH_MESSAGE)
    table = pilot.app.screen.query_one("#captured", DataTable)
    await wait_for(pilot, lambda: table.row_count == 2, "the second message")
    table.move_cursor(row=1)
    await pilot.press(key)
    view = pilot.app.screen.query_one("#message-view", Static)
    await wait_for(pilot, lambda: marker in str(view.content), f"the view {key!r}")


@pytest.mark.parametrize("size", SIZES)
def test_sandbox_inbox_mime_tree(
    snap_compare: SnapCompare,
    size: tuple[int, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """F5's message view as a MIME tree (m): a text/HTML alternative and a PDF attachment."""
    monkeypatch.chdir(tmp_path)

    async def mime_tree(pilot: Pilot[Any]) -> None:
        await _rich_message_shown(pilot, "m", "application/pdf")

    assert snap_compare(quiet_app(), terminal_size=size, run_before=mime_tree)


@pytest.mark.parametrize("size", SIZES)
def test_sandbox_inbox_html_as_text(
    snap_compare: SnapCompare,
    size: tuple[int, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """F5's message view of the HTML part (h), rendered as text for the terminal."""
    monkeypatch.chdir(tmp_path)

    async def html_view(pilot: Pilot[Any]) -> None:
        await _rich_message_shown(pilot, "h", "order")

    assert snap_compare(quiet_app(), terminal_size=size, run_before=html_view)
