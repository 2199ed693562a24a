"""The app as a newcomer meets it: every key does what it says, every word is true.

Pilot drives the app as a user would: keys, not widget calls, wherever the
key is what is under test (focus, Enter, space, Escape).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Checkbox, DataTable, Input, Label

from tests.smtpservers import ServerThread, Sink
from tests.ui_support import (
    draft_values,
    fill_draft,
    open_monitor,
    save_profile,
    screen_text,
    static_text,
    type_text,
    wait_for,
    wait_for_run,
)
from tuimail import paths
from tuimail.profiles import ProfileStore
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.accounts import AccountsScreen
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.screens.dialogs import AccountDialog, ConfirmDialog, FilePickerDialog, HelpScreen
from tuimail.ui.screens.transcript import TranscriptScreen

WIDE = (120, 40)
NARROW = (80, 24)


def focused_id(app: TuimailApp) -> str | None:
    return app.focused.id if app.focused is not None else None


# -- the account dialog ------------------------------------------------------------


async def open_account_dialog(pilot: Pilot[None]) -> None:
    """F4, then ``a``: the Add account dialog, once it is up."""
    await pilot.press("f4")
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, AccountDialog), "the dialog")


async def test_the_account_dialog_starts_on_name_and_enter_walks_the_form() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await open_account_dialog(pilot)
        await pilot.pause()
        dialog = app.screen
        assert focused_id(app) == "name"
        await type_text(pilot, "work")  # the first key typed lands in Name
        assert dialog.query_one("#name", Input).value == "work"

        # Enter moves on, field by field; on a choice it moves on too (space opens it).
        order = ["host", "security", "port", "username", "secret_source", "password"]
        order += [
            "from_address",
            "display_name",
            "aliases",
            "auth_mechanism",
            "ca_file",
            "timeout",
            "ehlo_name",
        ]
        for expected in order:
            await pilot.press("enter")
            assert focused_id(app) == expected
            if expected == "host":
                await type_text(pilot, "smtp.example.test")
        assert dialog.query_one("#host", Input).value == "smtp.example.test"

        # On a checkbox Enter moves on and does not toggle it; its state reads as text.
        await pilot.press("enter")
        assert focused_id(app) == "verify_tls"
        text = screen_text(app)
        assert "[x] Verify certificates" in text
        assert "[ ] Allow password without TLS" in text
        await pilot.press("enter")
        assert focused_id(app) == "allow_plaintext_auth"
        assert dialog.query_one("#verify_tls", Checkbox).value is True
        await pilot.press("enter")
        assert dialog.query_one("#allow_plaintext_auth", Checkbox).value is False
        assert focused_id(app) == "save"

        # Enter on Save saves.
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "the dialog")
        await wait_for(pilot, lambda: "work" in app.model.saved_profiles, "the profile")
        saved = app.model.saved_profiles["work"]
        assert saved.host == "smtp.example.test"
        assert saved.verify_tls and not saved.allow_plaintext_auth


async def test_an_unsafe_setting_is_asked_about_once() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await open_account_dialog(pilot)
        dialog = app.screen
        plaintext = dialog.query_one("#allow_plaintext_auth", Checkbox)
        plaintext.focus()
        await pilot.pause()

        # Space turns it on, and that is asked; Escape (or Enter: Cancel has the focus) says no.
        await pilot.press("space")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        assert "without TLS" in static_text(app, ".question")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is dialog, "the question to close")
        assert plaintext.value is False
        assert "[ ] Allow password without TLS" in screen_text(app)

        # Asked again; confirmed, it is on and shown as on.
        await pilot.press("space")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.click("#confirm")
        await wait_for(pilot, lambda: app.screen is dialog, "the question to close")
        assert plaintext.value is True
        assert "[x] Allow password without TLS" in screen_text(app)

        # Once: off and on again in the same dialog is not asked again.
        await pilot.press("space", "space")
        await pilot.pause()
        assert app.screen is dialog and plaintext.value is True

        # Not verifying certificates is asked about too.
        verify = dialog.query_one("#verify_tls", Checkbox)
        verify.focus()
        await pilot.press("space")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        assert "certificate" in static_text(app, ".question")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is dialog, "the question to close")
        assert verify.value is True


async def test_after_an_edit_the_cursor_stays_on_the_edited_account(
    servers: ServerThread,
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    save_profile(name="alpha", host="127.0.0.1", port=port, security="none")
    save_profile(name="beta", host="127.0.0.1", port=port, security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("f4")
        table = app.screen.query_one("#profiles", DataTable)
        rows = [str(key.value) for key in table.rows]
        assert rows[0] == "sandbox"
        table.move_cursor(row=rows.index("beta"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the dialog")
        app.screen.query_one("#ehlo_name", Input).value = "edited.example.test"
        await pilot.click("#save")
        await wait_for(
            pilot,
            lambda: app.model.saved_profiles["beta"].ehlo_name == "edited.example.test",
            "the edited profile",
        )
        await pilot.pause()
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        assert row_key.value == "beta"

        await pilot.press("t")  # tests the profile just edited
        run = await wait_for_run(pilot)
        assert run.profile_name == "beta"


async def test_the_target_dialog_starts_on_name_and_enter_walks_it() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await open_monitor(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: bool(app.screen.query("#target-name")), "the dialog")
        await pilot.pause()
        assert focused_id(app) == "target-name"
        await type_text(pilot, "relay")
        walk = ["target-kind", "target-host", "target-port", "target-security", "target-ca-file"]
        for expected in [*walk, "warn_days"]:
            await pilot.press("enter")
            assert focused_id(app) == expected
        assert app.screen.query_one("#target-name", Input).value == "relay"


# -- the keymap -------------------------------------------------------------------


async def test_keymap_problems_are_said_once_and_those_keys_keep_their_defaults() -> None:
    config = paths.config_dir() / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        "[keymap]\n"
        '"compose.send" = "notakey+++"\n'
        '"app.transcript" = "f2"\n'
        '"compose.sned" = "ctrl+t"\n'
        '"app.help" = "ctrl+t"\n'
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.pause()
        notices = [n.message for n in app._notifications if n.title == "Keymap"]
        assert len(notices) == 3, notices
        [unparsed] = [n for n in notices if "notakey" in n]
        [unknown] = [n for n in notices if "sned" in n]
        [clash] = [n for n in notices if "app.transcript" in n]
        assert '"compose.send" = "notakey+++"' in unparsed and "not a key" in unparsed
        assert "Send keeps ctrl+s" in unparsed
        assert '"compose.sned" is not a binding id' in unknown
        assert 'did you mean "compose.send"' in unknown
        assert '"app.transcript" = "f2"' in clash and "f2 is already the key of" in clash
        assert "Transcript keeps f3" in clash
        assert app.keymap == {"app.help": "ctrl+t"}

        assert "notakey" not in screen_text(app)  # the footer shows the default
        assert "^s Send" in screen_text(app) or "ctrl+s" in app.screen.active_bindings
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, TranscriptScreen), "F3")
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "F2")
        await pilot.press("ctrl+s")  # still Send: the sandbox is not started here
        await wait_for(
            pilot,
            lambda: static_text(app, "#send-status") == "the sandbox is not running",
            "Send to answer",
        )
        await pilot.press("ctrl+t")  # the entry that was right is used
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
    assert len([n for n in app._notifications if n.title == "Keymap"]) == 3


# -- sending ---------------------------------------------------------------------


async def test_an_empty_subject_is_sent_with_enter_and_a_cancel_says_so(
    servers: ServerThread,
) -> None:
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await fill_draft(pilot, to="bob@example.test", body="No subject")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        assert "Send anyway?" in static_text(app, ".question")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "the dialog to close")
        assert "Not sent" in static_text(app, "#send-status")
        assert "cancelled" in static_text(app, "#send-status")
        assert app.model.history.runs == []
        assert draft_values(app) == ("bob@example.test", "", "No subject")

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.press("enter")
        run = await wait_for_run(pilot)
        assert run.report is not None and run.report.ok
        assert len(sink.messages) == 1


async def test_a_forgotten_attachment_is_still_cancelled_by_enter(servers: ServerThread) -> None:
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(Sink()), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Report", body="See attached.")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "the dialog to close")
        assert app.model.history.runs == []
        assert "Not sent" in static_text(app, "#send-status")


async def test_after_a_send_the_cursor_is_in_to_on_an_empty_form(servers: ServerThread) -> None:
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="First", body="Hello")
        assert focused_id(app) == "body"
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        assert run.report is not None and run.report.ok
        await pilot.pause()
        assert draft_values(app) == ("", "", "")
        assert focused_id(app) == "input-to"
        await type_text(pilot, "carol@example.test")
        assert draft_values(app) == ("carol@example.test", "", "")


# -- words that are true ----------------------------------------------------------


async def test_the_file_picker_says_a_missing_file_does_not_exist(tmp_path: Path) -> None:
    answers: list[Path | None] = []
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        app.push_screen(FilePickerDialog(tmp_path), answers.append)
        await wait_for(pilot, lambda: bool(app.screen.query("#path")), "the picker")
        path = app.screen.query_one("#path", Input)
        error = app.screen.query_one("#error", Label)
        path.value = str(tmp_path / "nosuch.txt")
        await pilot.click("#attach")
        await pilot.pause()
        assert str(error.render()) == f"{tmp_path / 'nosuch.txt'} does not exist"
        path.value = str(tmp_path)
        path.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert str(error.render()) == f"{tmp_path} is a directory, not a file"
        assert answers == [] and isinstance(app.screen.query_one("#attach"), Button)


@pytest.mark.parametrize(
    ("setting", "header", "not_said"),
    [
        ("concurrency = 0", "10 at a time (concurrency = 0 in config.toml is not used)", " 0 at"),
        ("concurrency = 1", "one at a time", "1 at a time"),
        ('concurrency = "[b]x"', "(concurrency = '[b]x' in config.toml is not used)", "[b]x'  "),
    ],
)
async def test_the_monitor_header_says_how_many_are_probed_together(
    isolated_dirs: Path, setting: str, header: str, not_said: str
) -> None:
    config = paths.config_dir() / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[monitor]\n{setting}\n")
    ProfileStore()  # the monitor lists saved profiles; none are needed here
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await open_monitor(pilot)
        text = static_text(app, "#monitor-status")
        assert header in text, text
        assert not_said not in text
