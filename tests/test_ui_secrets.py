"""The app's secrets that are not a keyring password: a password command, and a password
asked for at send time and kept in memory for the run; and the account dialog's way
out when the keyring refuses. Real parts: aiosmtpd servers with AUTH, real commands,
keyring's fail backend (conftest) or a real Secret Service.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from textual.widgets import DataTable, Input, Select

from tests.cli_helpers import files_under, leak_patterns, run_tuimail
from tests.conftest import SecretService
from tests.smtpservers import ServerThread, Sink
from tests.test_ui_dialogs_sent import PASSWORD as REFUSED_PASSWORD
from tests.test_ui_dialogs_sent import refused_save
from tests.ui_support import (
    click_shown,
    draft_values,
    fill_draft,
    open_mailboxes,
    paste,
    save_profile,
    screen_text,
    static_text,
    wait_for,
    wait_for_run,
)
from tuimail import paths
from tuimail.credentials import CredentialStore, Secret
from tuimail.message import Draft, build_message
from tuimail.outbox import Outbox
from tuimail.profiles import ProfileStore, Security
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.dialogs import AccountDialog, SecretDialog

WIDE = (120, 40)
COMMANDS_PASSWORD = "from-the-Command-58"
LEFT_IN_KEYRING = "left-in-Keyring-17"
TYPED = "typed-at-Send-Time-93"


class Logins:
    """An aiosmtpd authenticator: records each password offered, accepts ``good``."""

    def __init__(self, good: str) -> None:
        self.good = good
        self.offered: list[str] = []

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            self.offered.append(data.password.decode())
            if data.login == b"alice" and data.password.decode() == self.good:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


def auth_server(servers: ServerThread, good: str) -> tuple[Logins, Sink, int]:
    logins, sink = Logins(good), Sink()
    port = servers.smtp(sink, authenticator=logins, auth_require_tls=False)
    return logins, sink, port


def account(port: int, **more: Any) -> dict[str, Any]:
    return dict(
        host="127.0.0.1", port=port, security=Security.NONE, username="alice",
        allow_plaintext_auth=True, **more,
    )  # fmt: skip


async def send_draft(pilot: Any, subject: str) -> None:
    await fill_draft(pilot, to="bob@example.test", subject=subject, body="Hi")
    await pilot.press("ctrl+s")


async def answer_secret_dialog(pilot: Any, secret: str) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, SecretDialog), "the password dialog")
    field = app.screen.query_one("#secret", Input)
    assert field.password, "the typed password must be masked"
    await paste(pilot, secret)
    assert field.value == secret
    assert secret not in screen_text(app), "the typed password is on screen"
    await pilot.press("enter")


async def test_a_password_command_wins_over_a_password_left_in_the_keyring(
    secret_service: SecretService, servers: ServerThread, tmp_path: Path
) -> None:
    script = tmp_path / "print-password.py"
    script.write_text(f"print({COMMANDS_PASSWORD!r})\n")
    logins, sink, port = auth_server(servers, COMMANDS_PASSWORD)
    save_profile(name="cmd", **account(port, password_command=f"{sys.executable} {script}"))
    # From before the profile took its password from a command: never to be used.
    CredentialStore().set("cmd", Secret(LEFT_IN_KEYRING))
    app = TuimailApp(profile="cmd", start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await send_draft(pilot, "From a command")
        run = await wait_for_run(pilot)
        assert run.report is not None and run.report.failure is None, run.report
    assert logins.offered == [COMMANDS_PASSWORD]
    assert len(sink.messages) == 1


async def test_ask_at_send_time_asks_once_per_run_and_escape_keeps_the_draft(
    servers: ServerThread,
) -> None:
    """The keyring is keyring's fail backend: a profile that asks never touches it."""
    logins, sink, port = auth_server(servers, TYPED)
    save_profile(name="asks", **account(port, ask_at_send=True))

    app = TuimailApp(profile="asks", start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await send_draft(pilot, "First")
        await answer_secret_dialog(pilot, TYPED)
        first = await wait_for_run(pilot)
        assert first.report is not None and first.report.failure is None, first.report
        # The second send of this run uses the password typed for the first: no dialog
        # (one would hold the send, and the run would never finish).
        await send_draft(pilot, "Second")
        second = await wait_for_run(pilot, 2)
        assert second.report is not None and second.report.failure is None, second.report
    assert logins.offered == [TYPED, TYPED]
    assert len(sink.messages) == 2

    # A new run of the app knows nothing of it: it asks again; Escape sends nothing.
    app = TuimailApp(profile="asks", start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await send_draft(pilot, "Third")
        await wait_for(pilot, lambda: isinstance(app.screen, SecretDialog), "the dialog again")
        await pilot.press("escape")
        await wait_for(
            pilot,
            lambda: (
                "Not sent: no password given. The draft is kept."
                in static_text(app, "#send-status")
            ),
            "the words for a send without a password",
        )
        await wait_for(pilot, lambda: not app.model.busy, "the send to end")
        assert draft_values(app) == ("bob@example.test", "Third", "Hi")
        assert app.model.history.runs == []
        assert Outbox().entries() == []
    assert logins.offered == [TYPED, TYPED] and len(sink.messages) == 2

    # The secrets sweep: the typed password is in no file tuimail wrote (profiles,
    # outbox, sent mail and its transcripts, state).
    written = files_under(paths.config_dir(), paths.data_dir(), paths.state_dir())
    assert any("sent-transcripts" in name for name in written), sorted(written)
    patterns = leak_patterns(TYPED)
    assert [name for name, blob in written.items() if any(p in blob for p in patterns)] == []


async def test_the_outbox_retry_asks_for_a_profile_that_keeps_no_password(
    servers: ServerThread,
) -> None:
    logins, sink, port = auth_server(servers, TYPED)
    profile = save_profile(name="asks", **account(port, ask_at_send=True))
    draft = Draft(from_address="me@example.test", to=["bob@example.test"], subject="q", body="b")
    key = Outbox().enqueue(profile, build_message(draft), follows_profile=True).key

    app = TuimailApp(profile="asks", start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await open_mailboxes(pilot, "tab-outbox")
        await pilot.press("r")
        await answer_secret_dialog(pilot, TYPED)
        run = await wait_for_run(pilot)
        assert run.outbox_key == key and run.outbox_state == "sent", run.report
    assert logins.offered == [TYPED] and len(sink.messages) == 1


async def test_a_refused_keyring_offers_asking_at_send_time_and_saves_no_secret() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        dialog = await refused_save(pilot)
        alternatives = dialog.query_one("#keyring-alternatives")
        assert alternatives.display
        assert "neither needs the keyring" in static_text(app, "#error")
        await click_shown(pilot, "#use-ask")
        await wait_for(pilot, lambda: not isinstance(app.screen, AccountDialog), "the save")
    saved = ProfileStore().get("work")
    assert saved.ask_at_send and not saved.password_command and saved.username == "alice"
    written = files_under(paths.config_dir(), paths.data_dir(), paths.state_dir())
    patterns = leak_patterns(REFUSED_PASSWORD)
    assert [name for name, blob in written.items() if any(p in blob for p in patterns)] == []


async def test_a_refused_keyring_offers_a_password_command() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        dialog = await refused_save(pilot)
        await click_shown(pilot, "#use-command")
        await pilot.pause()
        assert dialog.query_one("#secret_source", Select).value == "password_command"
        assert app.focused is dialog.query_one("#secret_command", Input)
        assert not dialog.query_one("#password", Input).display
        await paste(pilot, "pass show mail/work")
        await pilot.click("#save")
        await wait_for(pilot, lambda: not isinstance(app.screen, AccountDialog), "the save")
    saved = ProfileStore().get("work")
    assert saved.password_command == "pass show mail/work" and not saved.ask_at_send


async def test_the_dialog_refuses_a_token_command_with_a_password_mechanism() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("f4")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the dialog")
        dialog = app.screen
        for widget_id, value in {
            "name": "tok",
            "host": "smtp.example.test",
            "username": "a",
        }.items():
            dialog.query_one(f"#{widget_id}", Input).value = value
        dialog.query_one("#secret_source", Select).value = "token_command"
        dialog.query_one("#auth_mechanism", Select).value = "plain"
        await pilot.pause()
        dialog.query_one("#secret_command", Input).value = "oama access a@example.test"
        await pilot.click("#save")
        await wait_for(pilot, lambda: "AUTH: plain" in static_text(app, "#error"), "a refusal")
        assert "choose auto, xoauth2 or oauthbearer" in static_text(app, "#error")
        dialog.query_one("#auth_mechanism", Select).value = "oauthbearer"
        await pilot.pause()
        await pilot.pause(0.6)  # a second click sooner would be a double click
        await pilot.click("#save")
        await wait_for(pilot, lambda: not isinstance(app.screen, AccountDialog), "the save")
    saved = ProfileStore().get("tok")
    assert saved.token_command == "oama access a@example.test"
    assert saved.auth_mechanism == "oauthbearer"


def test_the_command_line_asks_for_such_a_profiles_password_never_the_keyring(
    secret_service: SecretService, servers: ServerThread
) -> None:
    """The command line agrees with the app: a profile that asks at send time is asked
    (the terminal, or --password-stdin), even when the keyring holds a password for it."""
    logins, sink, port = auth_server(servers, TYPED)
    save_profile(name="asks", **account(port, ask_at_send=True))
    CredentialStore().set("asks", Secret(LEFT_IN_KEYRING))
    message = ["send", "--profile", "asks", "--no-queue", "--to", "bob@example.test"]
    message += ["--subject", "Hello", "--body", "Hi"]

    no_terminal = run_tuimail(*message)
    assert no_terminal.returncode != 0
    assert "a password is needed: use --password-stdin" in no_terminal.stderr
    assert logins.offered == [] and sink.messages == []

    given = run_tuimail(*message, "--password-stdin", input=TYPED + "\n")
    assert given.returncode == 0, given.stderr
    assert logins.offered == [TYPED] and len(sink.messages) == 1


async def test_editing_an_oauth_profile_keeps_its_sign_in_settings() -> None:
    """The dialog shows no OAuth endpoints, and an edit must not drop them: it starts
    from the profile as saved ("Secret from" says the sign-in)."""
    save_profile(
        name="gmail", host="smtp.gmail.com", username="me@gmail.example",
        oauth_provider="google", oauth_client_id="client-123.apps.example",
    )  # fmt: skip
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: "gmail" in screen_text(app), "the profile")
        table = app.screen.query_one("#profiles", DataTable)
        table.move_cursor(row=[str(k.value) for k in table.rows].index("gmail"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the dialog")
        dialog = app.screen
        assert dialog.query_one("#secret_source", Select).value == "oauth"
        assert not dialog.query_one("#password", Input).display
        dialog.query_one("#display_name", Input).value = "Me"
        await pilot.click("#save")
        await wait_for(pilot, lambda: not isinstance(app.screen, AccountDialog), "the save")
    saved = ProfileStore().get("gmail")
    assert saved.display_name == "Me"
    assert (saved.oauth_provider, saved.oauth_client_id) == ("google", "client-123.apps.example")


async def test_a_typed_password_the_server_refuses_is_asked_for_again(
    servers: ServerThread,
) -> None:
    logins, sink, port = auth_server(servers, TYPED)
    save_profile(name="asks", **account(port, ask_at_send=True))
    app = TuimailApp(profile="asks", start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await send_draft(pilot, "Mistyped")
        await answer_secret_dialog(pilot, "mistyped-Password-1")
        first = await wait_for_run(pilot)
        assert first.report is not None and first.report.failure is not None
        assert first.report.failure.stage == "auth"
        await pilot.click("#send")
        await answer_secret_dialog(pilot, TYPED)
        second = await wait_for_run(pilot, 2)
        assert second.report is not None and second.report.failure is None, second.report
    assert logins.offered == ["mistyped-Password-1", TYPED] and len(sink.messages) == 1
