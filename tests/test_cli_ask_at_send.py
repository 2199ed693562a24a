"""``tuimail accounts add/edit --ask-at-send``: a profile that keeps no secret, from the command line.

The app could already make one (its account dialog); the command line now
can too, with the app's checks: not together with a password or token
command, nor with an OAuth sign-in. The keyring here refuses every call, so
a profile that asks at send time is seen to need none.
"""

from __future__ import annotations

from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.smtpservers import ServerThread, Sink, password_checker
from tuimail.profiles import ProfileStore

PASSWORD = "asked-each-time-7781"


def add(name: str, port: int, *extra: str, input: str | None = None) -> tuple[int, str]:
    result = run_tuimail(
        "accounts", "add", name, "--host", "127.0.0.1", "--port", str(port),
        "--security", "none", "--allow-plaintext-auth", "--user", "alice",
        "--from", "alice@example.test", *extra, input=input,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def test_a_profile_that_asks_at_send_keeps_no_password_and_sends(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    sink = Sink()
    port = servers.smtp(
        sink, authenticator=password_checker({"alice": PASSWORD}), auth_require_tls=False
    )
    code, said = add("asks", port, "--ask-at-send")
    assert code == 0, said
    assert ProfileStore().get("asks").ask_at_send is True
    sent = run_tuimail(
        "send", "--profile", "asks", "--to", "bob@example.test", "--subject", "Hi",
        "--body", "Asked.", "--password-stdin", input=PASSWORD + "\n",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert len(sink.messages) == 1


def test_ask_at_send_is_refused_with_a_command_or_oauth(isolated_dirs: Path) -> None:
    for extra in (
        ["--password-command", "pass show mail"],
        ["--token-command", "oama access alice"],
        ["--oauth-provider", "microsoft", "--oauth-client-id", "app"],
    ):
        code, said = add("mixed", 2525, "--ask-at-send", *extra)
        assert code != 0, extra
        assert "not asked for one" in said, said
    code, said = add("stdin", 2525, "--ask-at-send", "--password-stdin", input="pw\n")
    assert code != 0 and "keeps no password" in said
    assert "mixed" not in ProfileStore().load() and "stdin" not in ProfileStore().load()


def test_edit_turns_asking_on_and_off(isolated_dirs: Path) -> None:
    code, said = add("mail", 2525, "--password-command", "pass show mail")
    assert code == 0, said
    edited = run_tuimail("accounts", "edit", "mail", "--ask-at-send")
    assert edited.returncode != 0 and "not asked for one" in edited.stdout + edited.stderr
    edited = run_tuimail("accounts", "edit", "mail", "--password-command", "", "--ask-at-send")
    assert edited.returncode == 0, edited.stdout + edited.stderr
    profile = ProfileStore().get("mail")
    assert profile.ask_at_send and not profile.password_command
    # Choosing a command again stops the asking, as the app's dialog does.
    edited = run_tuimail("accounts", "edit", "mail", "--token-command", "oama access alice")
    assert edited.returncode == 0, edited.stdout + edited.stderr
    assert not ProfileStore().get("mail").ask_at_send
    edited = run_tuimail("accounts", "edit", "mail", "--token-command", "", "--ask-at-send")
    assert edited.returncode == 0, edited.stdout + edited.stderr
    edited = run_tuimail("accounts", "edit", "mail", "--no-ask-at-send")
    assert edited.returncode == 0, edited.stdout + edited.stderr
    assert not ProfileStore().get("mail").ask_at_send
