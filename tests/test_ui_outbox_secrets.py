"""The app's outbox uses a stored password only for a message queued through its profile.

A message queued with ``--server`` keeps its own settings and never borrows a
saved profile's password, even one whose name matches ("command-line"); a
message queued through a profile follows it, password included. The keyring
is the real Secret Service of tests/conftest.py and is read off the UI loop.
"""

from __future__ import annotations

from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.conftest import SecretService
from tests.smtpservers import ServerThread, Sink
from tests.ui_support import open_mailboxes, save_profile, wait_for, wait_for_run
from tuimail.credentials import CredentialStore, Secret
from tuimail.message import Draft, build_message
from tuimail.outbox import Outbox
from tuimail.profiles import Profile, Security
from tuimail.ui.app import TuimailApp

STORED = "stored-profile-secret-9"


class RecordingLogins:
    """An aiosmtpd authenticator that records every password it is offered."""

    def __init__(self) -> None:
        self.offered: list[str] = []

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            self.offered.append(data.password.decode())
            if data.password.decode() == STORED:
                return AuthResult(success=True)
        # Not handled: aiosmtpd answers the refusal (535) itself.
        return AuthResult(success=False, handled=False)


def queue(profile: Profile, *, follows_profile: bool) -> str:
    draft = Draft(from_address="me@example.test", to=["bob@example.test"], subject="q", body="b")
    return Outbox().enqueue(profile, build_message(draft), follows_profile=follows_profile).key


async def test_retry_never_lends_a_profiles_password_to_a_server_message(
    secret_service: SecretService, servers: ServerThread
) -> None:
    logins = RecordingLogins()
    sink = Sink()
    port = servers.smtp(sink, authenticator=logins, auth_require_tls=False)
    settings: dict[str, Any] = dict(
        host="127.0.0.1", port=port, security=Security.NONE, username="alice",
        allow_plaintext_auth=True,
    )  # fmt: skip
    saved = save_profile(name="command-line", **settings)
    CredentialStore().set(saved.name, Secret(STORED))
    server_message = queue(Profile(name="command-line", **settings), follows_profile=False)

    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_mailboxes(pilot, "tab-outbox")
        await pilot.press("r")
        run = await wait_for_run(pilot)
        assert run.outbox_key == server_message
        assert logins.offered == [], "a --server message was sent with a profile's password"
        assert sink.messages == []
        [entry] = Outbox().entries()
        assert entry.key == server_message and entry.attempts == []

        # The same settings queued through the profile do use its password.
        Outbox().drop(server_message)
        through_profile = queue(saved, follows_profile=True)
        await wait_for(pilot, lambda: Outbox().entries() != [], "the queued message")
        app.run_retry(through_profile)
        second = await wait_for_run(pilot, 2)
        assert second.outbox_state == "sent", second.report
        assert logins.offered == [STORED] and len(sink.messages) == 1


async def test_a_send_with_no_stored_password_is_refused_before_it_is_queued(
    secret_service: SecretService, servers: ServerThread
) -> None:
    """One home: the draft stays in Compose, and no copy waits in the outbox."""
    from tests.ui_support import draft_values, fill_draft, static_text

    sink = Sink()
    port = servers.smtp(sink, authenticator=RecordingLogins(), auth_require_tls=False)
    save_profile(
        name="no-password", host="127.0.0.1", port=port, security=Security.NONE,
        username="alice", allow_plaintext_auth=True,
    )  # fmt: skip
    CredentialStore().delete("no-password")  # the Secret Service lives for the whole run
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="No password", body="Hi")
        await pilot.press("ctrl+s")
        await wait_for_run(pilot)
        assert "no password is stored for the profile 'no-password'" in static_text(
            app, "#send-status"
        )
        assert draft_values(app) == ("bob@example.test", "No password", "Hi")
        assert Outbox().entries() == [] and sink.messages == []
