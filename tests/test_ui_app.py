"""The Textual app driven with Pilot: real SMTP servers, a real sandbox, a real keyring.

Each test runs ``TuimailApp`` headless with ``App.run_test()`` in the isolated
config/data/state directories of ``isolated_dirs``. Sends go to aiosmtpd
servers on 127.0.0.1 (``servers``) or to the app's own embedded sandbox.
"""

from __future__ import annotations

import contextlib
import json
import stat
from pathlib import Path
from typing import Any

import keyring
import keyring.errors
import pytest
from textual.command import CommandPalette
from textual.widgets import Button, DataTable, Input, Markdown, Select

from tests.conftest import SecretService
from tests.smtpservers import ServerThread, Sink
from tests.ui_support import (
    GatedSink,
    draft_values,
    fill_draft,
    paste,
    save_profile,
    screen_text,
    static_text,
    type_text,
    view_lines,
    wait_for,
    wait_for_run,
    wait_for_sandbox,
)
from tuimail import paths
from tuimail.credentials import FIX_TEXT_NO_STORE
from tuimail.profiles import ProfileStore
from tuimail.ui import settings
from tuimail.ui.app import TuimailApp
from tuimail.ui.commands import TuimailCommands
from tuimail.ui.history import SessionRun
from tuimail.ui.screens.accounts import AccountsScreen
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.screens.dialogs import AccountDialog, ConfirmDialog, ExportDialog, HelpScreen
from tuimail.ui.screens.sandbox import SandboxScreen
from tuimail.ui.screens.transcript import TranscriptScreen
from tuimail.ui.widgets.address_field import AddressField
from tuimail.ui.widgets.transcript_view import TranscriptView

WIDE = (120, 40)
NARROW = (80, 24)


class RecordingApp(TuimailApp):
    """The app, noting each live transcript announcement as the model publishes it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.live: list[tuple[str, bool]] = []  # (latest entry's text, session still running)

    async def on_mount(self) -> None:
        # No super() call: Textual runs the handler of every class in the MRO.
        self.model.transcript_grew.subscribe(self, self._grew, immediate=True)

    def _grew(self, run: SessionRun) -> None:
        self.live.append((run.transcript.entries[-1].text, not run.finished))


# -- sending ------------------------------------------------------------------


async def test_send_to_a_local_server_shows_the_conversation_live(servers: ServerThread) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    save_profile(name="local", host="127.0.0.1", port=port, security="none")
    app = RecordingApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        assert isinstance(app.screen, ComposeScreen)
        assert app.screen.query_one("#profile", Select).value == "local"
        await fill_draft(pilot, to="bob@example.test", subject="Hello", body="Hi Bob,\nsee you.")
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)

        # The message arrived, as typed.
        assert len(sink.messages) == 1
        received = sink.messages[0]
        assert received.mail_from == "me@example.test"
        assert received.rcpt_tos == ["bob@example.test"]
        assert b"Subject: Hello" in received.content
        assert b"Hi Bob," in received.content

        # Lines reach the app as messages, a burst coalesced into one (a flooding
        # server must not starve the keys); the last one carries the last line.
        texts = [entry.text for entry in run.transcript]
        assert app.live and len(app.live) <= len(texts)
        assert app.live[-1][0] == texts[-1]
        assert "250 Message accepted for delivery" in texts

        # The live view beside the form shows each line once, the 250 among them.
        live_view = app.screen.query_one("#live-view", TranscriptView)
        await wait_for(
            pilot,
            lambda: any(texts[-1] in line for line in view_lines(live_view)),
            "the live view to catch up",
        )
        live = "\n".join(view_lines(live_view))
        assert "250 Message accepted for delivery" in live
        assert live.count("security plain") == 1  # once shown, never appended again
        assert live.count("EHLO") == 1
        assert live.count("RCPT TO:<bob@example.test>") == 1
        status = static_text(app, "#send-status")
        assert status.startswith("✓ sent <") and status.endswith(">")
        assert draft_values(app) == ("", "", "")  # a sent draft is cleared

        # The transcript screen has the session, finished, with the same lines.
        await pilot.press("f3")
        assert isinstance(app.screen, TranscriptScreen)
        view = app.screen.query_one("#transcript-view", TranscriptView)
        await wait_for(pilot, lambda: view_lines(view), "the transcript view to render")
        shown = "\n".join(view_lines(view))
        assert "250 Message accepted for delivery" in shown
        assert shown.count("RCPT TO:<bob@example.test>") == 1
        assert static_text(app, "#tls-summary") == "plain connection: no TLS"


async def test_first_run_sends_to_the_embedded_sandbox() -> None:
    assert ProfileStore().load() == {}
    app = TuimailApp()
    async with app.run_test(size=NARROW) as pilot:
        await wait_for_sandbox(pilot)
        assert app.model.sandbox is not None
        select = app.screen.query_one("#profile", Select)
        assert select.value == "sandbox"
        assert app.model.all_profiles()["sandbox"].port == app.model.sandbox.port
        assert f"127.0.0.1:{app.model.sandbox.port}" in screen_text(app)
        # Square brackets are text, not markup, on every screen they reach.
        await fill_draft(
            pilot, to="new.user@example.test", subject="First [run]", body="It works. [/]"
        )
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        assert run.report is not None and run.report.ok
        sandbox = app.model.sandbox
        await wait_for(
            pilot, lambda: sandbox.sessions and sandbox.sessions[-1].ended, "the sandbox session"
        )

        # One message stored, and both sides of the conversation recorded.
        stored = sandbox.messages()
        assert len(stored) == 1
        assert stored[0].rcpt_tos == ("new.user@example.test",)
        assert stored[0].mail_from == "you@sandbox.test"
        client_side = [entry.text for entry in run.transcript]
        server_side = [entry.text for entry in sandbox.sessions[-1].transcript]
        assert any(text.startswith("250 2.0.0 Ok: queued as") for text in client_side)
        assert "RCPT TO:<new.user@example.test>" in client_side
        assert "RCPT TO:<new.user@example.test>" in server_side
        assert any(text.startswith("stored message") for text in server_side)
        assert b"It works. [/]" in sandbox.read_message(stored[0].key)

        # The sandbox inbox lists it and shows it with the server's side.
        await pilot.press("f5")
        assert isinstance(app.screen, SandboxScreen)
        table = app.screen.query_one("#captured", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, "the captured message row")
        await wait_for(
            pilot, lambda: "Subject:" in static_text(app, "#message-view"), "the message read"
        )
        message_view = static_text(app, "#message-view")
        assert "Subject: First [run]" in message_view
        assert "It works. [/]" in message_view
        assert "It works. [/]" in screen_text(app)
        server_view = "\n".join(view_lines(app.screen.query_one("#server-view", TranscriptView)))
        assert "stored message" in server_view


async def test_bad_address_is_shown_inline_and_send_is_refused(servers: ServerThread) -> None:
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        field = app.screen.query_one("#field-to", AddressField)
        await pilot.click("#input-to")
        await type_text(pilot, "bob")
        assert not field.has_class("-invalid")  # not while typing
        await pilot.press("tab")  # leaving the field checks it
        await pilot.pause()
        assert field.has_class("-invalid")
        assert field.error == "'bob': an address needs exactly one '@', as in name@example.com"
        error_label = field.query_one(".error")
        assert error_label.display and error_label.region.height >= 1

        await fill_draft(pilot, subject="Hello", body="Body text")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "fix the fields marked in red" in static_text(app, "#send-status")
        assert app.model.history.runs == []
        assert not app.model.busy
        assert draft_values(app) == ("bob", "Hello", "Body text")
        assert sink.messages == []

        # Correcting the address clears the error as it is typed.
        await pilot.click("#input-to")
        await pilot.press("end")
        await type_text(pilot, "@x.test")
        assert not field.has_class("-invalid")
        assert field.error == ""


async def test_no_recipient_is_refused_by_the_core_and_shown_at_to(servers: ServerThread) -> None:
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await fill_draft(pilot, subject="Nobody", body="to no one")
        await pilot.press("ctrl+s")
        field = app.screen.query_one("#field-to", AddressField)
        await wait_for(pilot, lambda: field.has_class("-invalid"), "the error at To")
        await wait_for(pilot, lambda: not app.model.busy, "the send worker to end")
        assert field.error
        assert static_text(app, "#send-status") == "fix the fields marked in red"
        assert app.model.history.runs == []
        assert not app.screen.query_one("#send", Button).disabled
        assert draft_values(app) == ("", "Nobody", "to no one")
        assert sink.messages == []


async def test_markup_in_what_is_typed_is_shown_as_text() -> None:
    """Square brackets are text: '[/]' once crashed the app through the error label."""
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        field = app.screen.query_one("#field-to", AddressField)
        await pilot.click("#input-to")
        await type_text(pilot, "[/]")
        await pilot.press("tab")
        await pilot.pause()
        assert field.has_class("-invalid")
        assert field.error.startswith("'[/]'")
        assert "'[/]'" in screen_text(app)


@pytest.mark.parametrize(
    ("security", "sink", "stage"),
    [
        pytest.param("starttls", Sink(), "tls", id="starttls-not-offered"),
        pytest.param("none", Sink(data_reply="554 5.7.1 rejected"), "data", id="554-after-data"),
        pytest.param(
            "none",
            Sink(data_reply="554 5.7.1 [/] looks like [b]markup"),
            "data",
            id="554-with-brackets",
        ),
    ],
)
async def test_failed_send_explains_itself_and_keeps_the_draft(
    servers: ServerThread, security: str, sink: Sink, stage: str
) -> None:
    port = servers.smtp(sink)
    save_profile(name="local", host="127.0.0.1", port=port, security=security)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Hello", body="Hi Bob")
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        assert run.report is not None and run.report.failure is not None
        failure = run.report.failure
        assert failure.stage.value == stage
        assert not failure.temporary
        assert failure.explanation

        status = static_text(app, "#send-status")
        assert status.startswith(f"✗ {stage} failed (permanent)")
        assert failure.explanation in status
        assert app.screen.query_one("#send-status").region.height >= 1
        assert app.screen.query_one("#send", Button).disabled is False
        assert draft_values(app) == ("bob@example.test", "Hello", "Hi Bob")
        assert sink.messages == []

        await pilot.press("f3")
        await pilot.pause()
        failure_box = app.screen.query_one("#failure")
        assert failure_box.has_class("-shown") and failure_box.display
        shown = static_text(app, "#failure")
        assert shown.startswith(f"✗ {stage} failed (permanent)")
        assert failure.explanation in shown

        await pilot.press("f2")
        assert draft_values(app) == ("bob@example.test", "Hello", "Hi Bob")


async def test_second_send_is_refused_while_one_runs_and_the_ui_responds(
    servers: ServerThread,
) -> None:
    sink = GatedSink()
    save_profile(name="slow", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    try:
        async with app.run_test(size=NARROW) as pilot:
            await fill_draft(pilot, to="bob@example.test", subject="One", body="first")
            await pilot.press("ctrl+s")
            await wait_for(pilot, sink.waiting.is_set, "the server to hold the DATA reply")
            assert app.model.busy
            assert app.screen.query_one("#send", Button).disabled

            # A second send is refused, and says so.
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert static_text(app, "#send-status") == "a send is already running"
            assert len(app.model.history.runs) == 1

            # The app still answers keys; the form is locked, so nothing typed is
            # lost when it clears after the send (what went out is what was there).
            await pilot.click("#subject")
            await pilot.press("end", "!")
            assert app.screen.query_one("#subject", Input).value == "One"
            assert app.screen.query_one("#subject", Input).is_disabled
            await pilot.press("f3")
            assert isinstance(app.screen, TranscriptScreen)
            assert "running…" in static_text(app, "#tls-summary")
            assert not app.model.history.runs[0].finished
            # Live: the lines so far are on screen while the session still runs.
            view = app.screen.query_one("#transcript-view", TranscriptView)
            await wait_for(
                pilot, lambda: any("354" in line for line in view_lines(view)), "the 354 live"
            )
            assert not app.model.history.runs[0].finished

            sink.gate.set()
            run = await wait_for_run(pilot)
            assert run.report is not None and run.report.ok
            assert len(sink.messages) == 1
            assert "plain connection" in static_text(app, "#tls-summary")
            await pilot.press("f2")
            assert not app.screen.query_one("#send", Button).disabled
            assert not app.screen.query_one("#subject", Input).is_disabled
            assert draft_values(app) == ("", "", "")
    finally:
        sink.gate.set()


@pytest.mark.parametrize(
    ("subject", "body", "question"),
    [
        pytest.param("", "Hello there", "The subject is empty", id="empty-subject"),
        pytest.param("Report", "The report is attached.", "mentions an attachment", id="attach"),
    ],
)
async def test_confirmation_before_a_doubtful_send(
    servers: ServerThread, subject: str, body: str, question: str
) -> None:
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject=subject, body=body)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        assert question in static_text(app, ".question")

        # Escape cancels: nothing is sent and nothing is lost.
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "the dialog to close")
        assert app.model.history.runs == []
        assert draft_values(app) == ("bob@example.test", subject, body)

        # Asked again, "Send anyway" sends.
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.click("#confirm")
        run = await wait_for_run(pilot)
        assert run.report is not None and run.report.ok
        assert len(sink.messages) == 1


# -- accounts and the keyring ---------------------------------------------------


async def fill_account_dialog(pilot: Any, values: dict[str, str]) -> None:
    """Replace the text of the dialog's fields, pasting into each."""
    dialog = pilot.app.screen
    assert isinstance(dialog, AccountDialog)
    for widget_id, value in values.items():
        field = dialog.query_one(f"#{widget_id}", Input)
        field.focus()
        field.value = ""
        await paste(pilot, value)
        assert field.value == value
    await pilot.pause()


async def test_account_added_and_edited_keeps_the_password_in_the_keyring(
    secret_service: SecretService, isolated_dirs: Path
) -> None:
    name = "ui-work"
    first, second = "first-Secret-81", "second-Secret-82"
    profiles_file = paths.config_dir() / "profiles.toml"
    app = TuimailApp(start_sandbox=False)
    try:
        async with app.run_test(size=WIDE) as pilot:
            await pilot.press("f4")
            assert isinstance(app.screen, AccountsScreen)
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the dialog")
            await fill_account_dialog(
                pilot,
                {
                    "name": name,
                    "host": "smtp.example.test",
                    "username": "alice",
                    "password": first,
                    "from_address": "alice@example.test",
                },
            )
            password_input = app.screen.query_one("#password", Input)
            assert password_input.password
            assert first not in screen_text(app)  # masked on screen
            await pilot.click("#save")
            await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "the dialog")
            await wait_for(
                pilot,
                lambda: name in app.model.saved_profiles,
                "the profile to be saved and listed",
            )
            assert keyring.get_password("tuimail", name) == first
            text = profiles_file.read_text()
            assert "smtp.example.test" in text and "alice" in text
            assert first not in text and "password" not in text
            table = app.screen.query_one("#profiles", DataTable)
            assert name in [str(key.value) for key in table.rows]

            # Edit it: a new host and a new password.
            row = [str(key.value) for key in table.rows].index(name)
            table.move_cursor(row=row)
            await pilot.press("e")
            await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the dialog")
            assert app.screen.query_one("#name", Input).value == name
            assert app.screen.query_one("#password", Input).value == ""  # never shown back
            await fill_account_dialog(pilot, {"host": "mail.example.test", "password": second})
            await pilot.click("#save")
            await wait_for(
                pilot,
                lambda: (
                    name in app.model.saved_profiles
                    and app.model.saved_profiles[name].host == "mail.example.test"
                ),
                "the edited profile",
            )
            assert keyring.get_password("tuimail", name) == second
            text = profiles_file.read_text()
            assert "mail.example.test" in text
            assert first not in text and second not in text
            assert static_text(app, "#account-problem") == ""
    finally:
        with contextlib.suppress(keyring.errors.PasswordDeleteError):
            keyring.delete_password("tuimail", name)


async def test_connection_test_from_the_accounts_screen(servers: ServerThread) -> None:
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("f4")
        table = app.screen.query_one("#profiles", DataTable)
        table.move_cursor(row=[str(key.value) for key in table.rows].index("local"))
        await pilot.press("t")
        run = await wait_for_run(pilot)
        assert run.kind == "test" and run.report is not None and run.report.ok
        view = app.screen.query_one("#test-view", TranscriptView)
        lines = "\n".join(view_lines(view))
        assert "EHLO" in lines and "221 Bye" in lines
        assert "MAIL FROM" not in lines
        assert sink.messages == []
        assert any("connection test passed" in n.message for n in app._notifications)

        # The built-in sandbox, not running here, is not "tested" on port 0.
        table.move_cursor(row=[str(key.value) for key in table.rows].index("sandbox"))
        await pilot.press("t")
        await pilot.pause()
        assert len(app.model.history.runs) == 1
        assert "not running" in static_text(app, "#account-problem")


async def test_keyring_problem_is_explained_and_nothing_is_saved() -> None:
    """No secret_service fixture: the keyring is the fail backend, which tuimail refuses."""
    profiles_file = paths.config_dir() / "profiles.toml"
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("f4")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the dialog")
        await fill_account_dialog(
            pilot,
            {
                "name": "nokeyring",
                "host": "smtp.example.test",
                "username": "alice",
                "password": "never-Stored-7",
            },
        )
        await pilot.click("#save")
        # The dialog stays open with the problem in it (what was typed is kept).
        await wait_for(
            pilot,
            lambda: static_text(app, "#error").startswith("Keyring: "),
            "the keyring problem to be shown",
        )
        assert isinstance(app.screen, AccountDialog)
        problem = static_text(app, "#error")
        # The fail backend keeps nothing: the unsafe opt-in cannot help, so it is not offered.
        assert f"Fix: {FIX_TEXT_NO_STORE}" in problem
        assert "TUIMAIL_ALLOW_UNSAFE_KEYRING" not in problem
        assert "nokeyring" not in app.model.saved_profiles
        assert not profiles_file.exists() or "nokeyring" not in profiles_file.read_text()


# -- transcript screen ----------------------------------------------------------


async def test_transcript_filter_and_export(servers: ServerThread, tmp_path: Path) -> None:
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(Sink()), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await fill_draft(pilot, to="bob@example.test, carol@example.test", subject="S", body="B")
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        await pilot.press("f3")
        view = app.screen.query_one("#transcript-view", TranscriptView)
        await wait_for(pilot, lambda: view_lines(view), "the transcript view")
        everything = view_lines(view)
        assert len(everything) >= len(run.transcript)

        await pilot.press("ctrl+f")
        assert app.focused is app.screen.query_one("#filter", Input)
        await type_text(pilot, "rcpt")
        await pilot.pause()
        narrowed = view_lines(view)
        assert len(narrowed) == 2
        assert all("RCPT TO:<" in line for line in narrowed)
        await pilot.press("escape")
        await pilot.pause()
        assert view_lines(view) == everything

        # Export as text (ctrl+e works with the cursor in the filter too).
        await pilot.press("ctrl+f", "ctrl+e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportDialog), "the export dialog")
        text_file = tmp_path / "session.txt"
        app.screen.query_one("#path", Input).value = str(text_file)
        await pilot.click("#export")
        await wait_for(pilot, text_file.exists, "the text export")
        assert text_file.read_text("utf-8") == run.transcript.to_text()
        assert " -> RCPT TO:<carol@example.test>" in text_file.read_text("utf-8")
        assert stat.S_IMODE(text_file.stat().st_mode) == 0o600

        # Export as JSON Lines.
        await wait_for(pilot, lambda: isinstance(app.screen, TranscriptScreen), "the dialog")
        await pilot.press("ctrl+e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportDialog), "the export dialog")
        app.screen.query_one("#format", Select).value = "jsonl"
        await pilot.pause()
        assert app.screen.query_one("#path", Input).value.endswith(".jsonl")
        json_file = tmp_path / "session.jsonl"
        app.screen.query_one("#path", Input).value = str(json_file)
        await pilot.click("#export")
        await wait_for(pilot, json_file.exists, "the JSON Lines export")
        records = [json.loads(line) for line in json_file.read_text("utf-8").splitlines()]
        assert len(records) == len(run.transcript)
        assert {"t", "dir", "tls", "text"} <= set(records[0])
        assert {"dir": "client", "text": "RCPT TO:<bob@example.test>"}.items() <= next(
            r for r in records if r["text"].startswith("RCPT TO:<bob")
        ).items()
        assert any(r["dir"] == "server" and r["text"].startswith("250 ") for r in records)


# -- themes, keymap, palette, help, modes ------------------------------------------

USER_THEME = """\
name = "ui-test-theme"
dark = true
primary = "#ff00ff"
background = "#101010"
"""


async def test_themes_shipped_user_and_bad_ones() -> None:
    themes_dir = paths.config_dir() / "themes"
    themes_dir.mkdir(parents=True)
    (themes_dir / "mine.toml").write_text(USER_THEME)
    (themes_dir / "broken.toml").write_text('name = "broken"\nprimary = "not a colour"\n')
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.pause()
        assert {"tuimail-night", "tuimail-paper", "ui-test-theme"} <= set(app.available_themes)
        assert "broken" not in app.available_themes
        assert len(app.theme_problems) == 1
        assert "broken.toml" in app.theme_problems[0]
        notices = [n for n in app._notifications if n.title == "Theme not loaded"]
        assert len(notices) == 1
        assert "broken.toml" in notices[0].message

        app.theme = "tuimail-paper"
        await pilot.pause()
    assert settings.load_state()["theme"] == "tuimail-paper"

    # The next run starts with the remembered theme.
    again = TuimailApp(start_sandbox=False)
    async with again.run_test(size=NARROW) as pilot:
        await pilot.pause()
        assert again.theme == "tuimail-paper"


async def test_keymap_from_config_remaps_send(servers: ServerThread) -> None:
    config = paths.config_dir() / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[keymap]\n"compose.send" = "ctrl+t"\n')
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Keymap", body="via ctrl+t")
        await pilot.press("ctrl+t")
        run = await wait_for_run(pilot)
        assert run.report is not None and run.report.ok
        assert len(sink.messages) == 1
        assert ("ctrl+t", "Send (compose)  [id compose.send]") in app.key_table()


async def test_bad_keymap_is_reported_as_text() -> None:
    config = paths.config_dir() / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('keymap = "ctrl+t"\n')
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.pause()
        notices = [n for n in app._notifications if n.title == "Keymap"]
        assert len(notices) == 1
        assert "[keymap] must be a table" in notices[0].message
        assert not notices[0].markup


async def test_command_palette_offers_tuimail_actions() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        provider = TuimailCommands(app.screen)
        titles = [title for title, _ in provider._available()]
        assert "Send the message" in titles
        assert "Go to Transcript" in titles
        assert "Export the transcript" not in titles  # only on the transcript screen

        # Through the real palette: search, pick, and the action runs.
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await type_text(pilot, "send the message")
        await wait_for(
            pilot,
            lambda: "Send the message" in screen_text(app),
            "the palette to offer 'Send the message'",
        )
        await pilot.press("enter")
        # The action ran: the built-in sandbox is not started in this test, so it says so.
        await wait_for(
            pilot,
            lambda: static_text(app, "#send-status") == "the sandbox is not running",
            "the send action to answer",
        )

        await pilot.press("f4")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await type_text(pilot, "add an")
        await wait_for(
            pilot, lambda: "Add an account" in screen_text(app), "the palette to offer it"
        )
        assert "Send the message" not in screen_text(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the account dialog")


async def test_help_and_every_mode_by_function_key() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.pause()
        await pilot.click("#body")  # the body's TextArea has its own F5-F7 bindings
        expected = {
            "f3": TranscriptScreen,
            "f4": AccountsScreen,
            "f5": SandboxScreen,
            "f2": ComposeScreen,
        }
        for key, screen_type in expected.items():
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, screen_type), key
            assert app.current_mode == screen_type.__name__.removesuffix("Screen").lower()
        await pilot.click("#body")
        await pilot.press("f5")
        assert app.current_mode == "sandbox"

        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        source = app.screen.query_one(Markdown).source
        assert "| `ctrl+s` | Send (compose)  [id compose.send] |" in source
        assert "| `f5` | Sandbox  [id app.sandbox] |" in source
        await wait_for(pilot, lambda: "Write a message on Compose" in screen_text(app), "help")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, SandboxScreen), "help to close")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SandboxScreen), "help to close")
