"""The account dialog when the keyring refuses, F7 Sent (sandbox sends, its layout and
footer) and where exports land: as a new user meets them, with real keyrings and servers."""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keyring
import keyring.errors
import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, TabbedContent

from tests.conftest import SecretService
from tests.test_ui_app import fill_account_dialog
from tests.ui_support import (
    fill_draft,
    open_mailboxes,
    screen_text,
    static_text,
    wait_for,
    wait_for_mailboxes,
    wait_for_run,
    wait_for_sandbox,
)
from tuimail import paths
from tuimail.credentials import CredentialStore
from tuimail.profiles import ProfileStore
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.accounts import AccountsScreen
from tuimail.ui.screens.dialogs import AccountDialog, ExportDialog
from tuimail.ui.widgets.transcript_view import TranscriptView

WIDE = (120, 40)
PASSWORD = "typed-Once-Secret-73"
TYPED = {
    "name": "work",
    "host": "smtp.example.test",
    "port": "587",
    "username": "alice",
    "password": PASSWORD,
    "from_address": "alice@example.test",
    "display_name": "Alice Example",
    "ehlo_name": "laptop.example.test",
}


# -- the account dialog when the keyring refuses ----------------------------------


async def refused_save(pilot: Any) -> AccountDialog:
    """F4, ``a``, every field typed, Save: refused by the keyring (the fail backend)."""
    app = pilot.app
    await pilot.press("f4")
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the dialog")
    await fill_account_dialog(pilot, TYPED)
    await pilot.click("#save")
    await wait_for(
        pilot,
        lambda: static_text(app, "#error").startswith("Keyring: "),
        "the keyring's refusal in the dialog",
    )
    dialog = app.screen
    assert isinstance(dialog, AccountDialog)
    return dialog


def typed_values(dialog: AccountDialog) -> dict[str, str]:
    return {name: dialog.query_one(f"#{name}", Input).value for name in TYPED}


async def test_a_refused_keyring_keeps_the_dialog_with_what_was_typed_until_saved(
    secret_service_session: SecretService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keyring is keyring's fail backend (conftest): it refuses; the user then starts a
    Secret Service (gnome-keyring) and saves again from the same dialog."""
    app = TuimailApp(start_sandbox=False)
    try:
        async with app.run_test(size=WIDE) as pilot:
            dialog = await refused_save(pilot)
            problem = static_text(app, "#error")
            assert "refusing keyring backend keyring.backends.fail.Keyring" in problem
            assert "Secret Service" in problem
            # Everything typed is still there, the password too, masked.
            assert typed_values(dialog) == TYPED
            assert dialog.query_one("#password", Input).password
            assert PASSWORD not in screen_text(app)
            assert not dialog.query_one("#save", Button).disabled
            assert "work" not in ProfileStore().load()

            # The user starts a Secret Service and presses Save again.
            for key, value in secret_service_session.env.items():
                monkeypatch.setenv(key, value)
            keyring.set_keyring(secret_service_session.backend())
            save = dialog.query_one("#save", Button)
            # A button ignores a click while it still shows the last one (-active).
            await wait_for(pilot, lambda: not save.has_class("-active"), "the button to settle")
            await pilot.click("#save")
            await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "the save")
            await wait_for(pilot, lambda: "work" in app.model.saved_profiles, "the profile")
            saved = ProfileStore().load()["work"]
            assert (saved.host, saved.port, saved.username) == ("smtp.example.test", 587, "alice")
            assert saved.ehlo_name == "laptop.example.test"
            secret = CredentialStore().get("work")
            assert secret is not None and secret.reveal() == PASSWORD
            assert static_text(app, "#account-problem") == ""
    finally:
        with contextlib.suppress(keyring.errors.KeyringError):
            secret_service_session.backend().delete_password("tuimail", "work")


async def test_a_refused_save_can_be_cancelled_and_nothing_is_kept() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await refused_save(pilot)
        assert typed_values(dialog) == TYPED
        # The refusal and its whole fix are read at 80 columns, wrapped, not cut.
        assert "or keyringrc.cfg." in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "the dialog to close")
        assert "work" not in app.model.saved_profiles
        assert "work" not in ProfileStore().load()
        assert PASSWORD not in screen_text(app)


# -- F7 Sent: sandbox sends, the layout, the footer ---------------------------------


async def test_a_sandbox_send_is_in_sent_marked_as_the_sandboxs_and_never_queued() -> None:
    app = TuimailApp()
    async with app.run_test(size=WIDE) as pilot:
        await wait_for_sandbox(pilot)
        await fill_draft(pilot, to="new.user@example.test", subject="Trying it", body="Hello")
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        assert run.report is not None and run.report.ok
        sandbox = app.model.sandbox
        assert sandbox is not None and len(sandbox.messages()) == 1

        screen = await open_mailboxes(pilot, "tab-sent")
        table = screen.query_one("#sent-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, "the sandbox send in Sent")
        _sent_at, where, to, subject = (str(value) for value in table.get_row_at(0))
        assert (where, to, subject) == ("sandbox", "new.user@example.test", "Trying it")
        table.move_cursor(row=0)
        await wait_for(
            pilot,
            lambda: "Subject: Trying it" in static_text(app, "#sent-view"),
            "the preview",
        )
        assert static_text(app, "#sent-view").startswith("Sent to the built-in sandbox")
        view = screen.query_one("#sent-transcript", TranscriptView)
        assert view.transcript is not None
        assert any(e.text.startswith("250 2.0.0 Ok: queued as") for e in view.transcript)
        assert "sandbox" in screen_text(app)

        # Not in the outbox: no flush, now or in a later run (on another port), sends it again.
        outbox = app.model.outbox
        assert outbox.entries() == []
        await app.flush_due().wait()
        assert len(sandbox.messages()) == 1
        assert [run.kind for run in app.model.history.runs] == ["send"]

        # F3's export starts in the data dir's exports folder too.
        await pilot.press("f3")
        await pilot.press("ctrl+e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportDialog), "the export dialog")
        default = Path(app.screen.query_one("#path", Input).value)
        assert default.parent == paths.exports_dir() and default.suffix == ".txt"
        await pilot.press("escape")


def _fixed_sent(data_dir: Path) -> None:
    """One message sent through a server and one to the sandbox, with fixed transcripts."""
    import json
    import os
    import time

    from tuimail.maildir import deliver, ensure_maildir

    root = data_dir / "tuimail"
    ensure_maildir(root / "sent")
    (root / "sent-transcripts").mkdir(parents=True, exist_ok=True)
    sent = [
        ("1740821400.M1P1Q1.snapshot", "bob@example.test", "Quarterly numbers", 9),
        ("1740821460.M1P1Q2.snapshot,sandbox", "new.user@example.test", "Trying it", 10),
    ]
    for key, to, subject, hour in sent:
        message = (
            f"From: me@example.test\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{hour}@example.test>\r\n\r\nSee you soon.\r\n"
        ).encode()
        deliver(root / "sent", message, durable=False, key=key)
        when = time.mktime((2025, 3, 1, hour, 30, 0, 0, 0, -1))
        os.utime(root / "sent" / "new" / key, (when, when))
        lines = [
            {"t": 0.001, "dir": "server", "text": "220 mail.example.test ESMTP"},
            {"t": 0.002, "dir": "client", "text": "EHLO laptop.example.test"},
            {"t": 0.003, "dir": "server", "text": "250 mail.example.test"},
            {"t": 0.004, "dir": "client", "text": f"MAIL FROM:<me@example.test> RCPT TO:<{to}>"},
            {"t": 0.005, "dir": "server", "text": "250 2.0.0 Ok: queued"},
        ]
        text = "".join(json.dumps(line) + "\n" for line in lines)
        (root / "sent-transcripts" / f"{key}.jsonl").write_text(text)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_sent_snapshot(snap_compare: Any, isolated_dirs: Path, size: tuple[int, int]) -> None:
    """The table above, the message and its transcript beside each other below."""
    _fixed_sent(isolated_dirs / "data")

    async def show(pilot: Pilot[Any]) -> None:
        screen = await open_mailboxes(pilot, "tab-sent")
        screen.query_one("#sent-table", DataTable).move_cursor(row=0)
        await wait_for_mailboxes(pilot)
        await pilot.pause()

    assert snap_compare(TuimailApp(start_sandbox=False), terminal_size=size, run_before=show)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_sent_table_and_preview_do_not_run_together(
    isolated_dirs: Path, size: tuple[int, int]
) -> None:
    _fixed_sent(isolated_dirs / "data")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=size) as pilot:
        screen = await open_mailboxes(pilot, "tab-sent")
        table = screen.query_one("#sent-table", DataTable)
        table.move_cursor(row=0)
        await wait_for_mailboxes(pilot)
        await wait_for(pilot, lambda: "From:" in static_text(app, "#sent-view"), "the preview")
        await pilot.pause()
        text = screen_text(app)
        header = next(line for line in text.splitlines() if "Subject" in line and "To" in line)
        assert "From:" not in header
        # Every column of the table is whole on screen, and the preview starts under it.
        assert "Sent" in header and "Where" in header and "Subject" in header
        preview = screen.query_one("#sent-message").region
        transcript = screen.query_one("#sent-transcript").region
        assert preview.y >= table.region.bottom and transcript.y >= table.region.bottom
        assert preview.right <= transcript.x
        assert "Quarterly numbers" in text and "Trying it" in text


async def test_the_f7_footer_shows_only_the_current_tabs_actions(isolated_dirs: Path) -> None:
    _fixed_sent(isolated_dirs / "data")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:

        def footer() -> str:
            return screen_text(app).splitlines()[-1]

        def footer_is(shown: set[str], hidden: set[str]) -> Callable[[], bool]:
            return lambda: (
                all(w in footer() for w in shown) and not any(w in footer() for w in hidden)
            )

        expected = {
            "tab-outbox": ({"Retry", "Edit as draft", "Delete"}, {"Export", "Open draft"}),
            "tab-drafts": ({"Delete", "Open draft"}, {"Retry", "Edit as draft", "Export"}),
            "tab-sent": ({"Export"}, {"Retry", "Edit as draft", "Delete", "Open draft"}),
        }
        screen = await open_mailboxes(pilot, "tab-outbox")
        for tab in ("tab-outbox", "tab-sent", "tab-drafts", "tab-outbox"):
            screen.query_one("#boxes", TabbedContent).active = tab
            shown_words, hidden_words = expected[tab]
            try:
                await wait_for(pilot, footer_is(shown_words, hidden_words), f"the footer of {tab}")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; it reads {footer()!r}") from None
            # Setting ``active`` also posts the tab strip's own TabActivated, which
            # TabbedContent answers by setting ``active`` again: drained here, or a
            # late one for this tab would undo the next assignment (seen under load).
            await pilot.pause()
        # An action of another tab does nothing here: x on Outbox opens no export dialog.
        await pilot.press("x")
        await pilot.pause()
        assert app.screen is screen


# -- where exports land --------------------------------------------------------------


async def export_from_sent(pilot: Any, path: str | None = None) -> None:
    """x on the selected sent message; ``path`` typed over the default, or the default kept."""
    app = pilot.app
    await pilot.press("x")
    await wait_for(pilot, lambda: isinstance(app.screen, ExportDialog), "the export dialog")
    if path is not None:
        field = app.screen.query_one("#path", Input)
        field.focus()
        field.value = path
    await pilot.click("#export")
    await wait_for(pilot, lambda: not isinstance(app.screen, ExportDialog), "the dialog to close")


async def test_exports_go_to_the_data_dirs_private_exports_folder_and_replace_nothing(
    isolated_dirs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = tmp_path / "started-here"
    start.mkdir()
    monkeypatch.chdir(start)  # where `make run` starts the app: the repository
    _fixed_sent(isolated_dirs / "data")
    exports = paths.exports_dir()
    assert exports == isolated_dirs / "data" / "tuimail" / "exports"
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_mailboxes(pilot, "tab-sent")
        table = screen.query_one("#sent-table", DataTable)
        table.move_cursor(row=1)  # the message sent through a server
        await wait_for_mailboxes(pilot)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportDialog), "the export dialog")
        default = Path(app.screen.query_one("#path", Input).value)
        assert default.parent == exports and default.stem == "tuimail-1740821400.M1P1Q1"
        assert str(exports) in static_text(app, "#export-where")  # said in the dialog
        await pilot.click("#export")

        first = [
            exports / "tuimail-1740821400.M1P1Q1.eml",
            exports / "tuimail-1740821400.M1P1Q1.txt",
        ]
        await wait_for(pilot, lambda: all(p.exists() for p in first), "the export")
        assert stat.S_IMODE(exports.stat().st_mode) == 0o700
        assert b"Subject: Quarterly numbers" in first[0].read_bytes()
        assert "250 2.0.0 Ok: queued" in first[1].read_text()

        # The same export again keeps the first files and says where the new ones went.
        first[0].write_bytes(b"kept by the user")
        await export_from_sent(pilot)
        second = [p.with_name(p.stem + "-2" + p.suffix) for p in first]
        await wait_for(pilot, lambda: all(p.exists() for p in second), "the second export")
        assert first[0].read_bytes() == b"kept by the user"
        assert any("-2.eml" in n.message and "kept" in n.message for n in app._notifications)

        # A name typed without a folder lands in the exports folder, not where the app started.
        await export_from_sent(pilot, "for-bob.eml")
        await wait_for(pilot, lambda: (exports / "for-bob.eml").exists(), "the named export")
        assert (exports / "for-bob.txt").exists()
        assert list(start.iterdir()) == []
