"""``tuimail accounts login`` end to end: a real provider, a real keyring, a real send.

The provider is oidc-provider (tests/oauth_support.py); the test plays the
user at the browser with :class:`~tests.oauth_support.BrowserUser`, reading
the sign-in address (or the device code) from the running command's output
as a person would. The refresh token lands in gnome-keyring in a private
D-Bus session (tests/conftest.py's ``secret_service``), and then ``tuimail
send --profile`` authenticates to an aiosmtpd server (tests/oauth_smtp.py)
that asks the provider about every token it is given.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
import urllib.parse
from pathlib import Path

import keyring
import pytest

from tests.cli_helpers import TUIMAIL, files_under, find_leaks, run_tuimail
from tests.conftest import SecretService
from tests.oauth_smtp import OAuthSink, RawSMTP, offered_auth
from tests.oauth_support import BrowserUser, OAuthProviderServer
from tests.smtpservers import ServerThread
from tuimail.cli import exitcodes
from tuimail.credentials import SERVICE, Secret
from tuimail.oauth_account import KEYRING_VALUE_LIMIT, OAuthSecrets, refresh_token_entry

#: Seconds any step of a sign-in may take before it counts as a hang.
WAIT = 60.0
NAME = "mail"


class Running:
    """A ``tuimail`` process whose output the test reads line by line, as it comes."""

    def __init__(self, *args: str) -> None:
        environment = dict(os.environ)
        # No browser window in a test: the command must print the address.
        for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
            environment.pop(name, None)
        self.process = subprocess.Popen(
            [TUIMAIL, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line_matching(self, pattern: str) -> re.Match[str]:
        """The first line of standard output that matches ``pattern`` (waits for it)."""
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                self.process.kill()
                raise AssertionError(f"no line matching {pattern!r} in {self.seen}") from None
            if line is None:
                raise AssertionError(f"the command ended without {pattern!r}: {self.seen}")
            self.seen.append(line)
            found = re.fullmatch(pattern, line)
            if found:
                return found

    def finish(self) -> tuple[int, str, str]:
        """Exit code, all of standard output and standard error."""
        try:
            self.process.wait(timeout=WAIT)  # stderr is a few lines: the pipe cannot fill
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        assert self.process.stderr is not None
        with self.process.stderr:
            stderr = self.process.stderr.read()
        while (line := self.lines.get(timeout=WAIT)) is not None:
            self.seen.append(line)
        return self.process.returncode, "\n".join(self.seen), stderr


def add_profile(server: OAuthProviderServer, smtp_port: int, *extra: str) -> None:
    """A profile for the test SMTP server that signs in at the test provider."""
    info = server.info
    result = run_tuimail(
        "accounts", "add", NAME, "--host", "127.0.0.1", "--port", str(smtp_port),
        "--security", "none", "--allow-plaintext-auth", "--user", server.login,
        "--from", "alice@example.test",
        "--oauth-provider", "custom",
        "--oauth-client-id", info["clients"]["app"]["client_id"],
        "--oauth-authorize-url", info["authorization_endpoint"],
        "--oauth-token-url", info["token_endpoint"],
        "--oauth-device-url", info["device_authorization_endpoint"],
        "--oauth-scope", server.scope,
        *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"tuimail accounts login {NAME}" in result.stdout


def stored_refresh_token() -> str | None:
    return keyring.get_password(SERVICE, refresh_token_entry(NAME))


def sign_in_in_browser(server: OAuthProviderServer) -> tuple[int, str, str]:
    """``accounts login --no-browser``, the user signing in at the printed address."""
    login = Running("accounts", "login", NAME, "--no-browser")
    url = login.line_matching(r"(http\S+)").group(1)
    assert url.startswith(server.info["authorization_endpoint"] + "?")
    user = BrowserUser(server)
    status, page = user.visit(user.sign_in(url))
    assert status == 200 and "Signed in" in page
    return login.finish()


def send(*extra: str) -> subprocess.CompletedProcess[str]:
    return run_tuimail(
        "send", "--profile", NAME, "--to", "bob@example.test", "--subject", "Hello",
        "--body", "Signed in with OAuth.", *extra,
    )  # fmt: skip


@pytest.fixture
def smtp_sink(servers: ServerThread, oauth_provider: OAuthProviderServer) -> tuple[OAuthSink, int]:
    sink = OAuthSink(provider=oauth_provider)
    port = servers.smtp(sink, server_class=RawSMTP, **offered_auth("XOAUTH2", "OAUTHBEARER"))
    return sink, port


def test_browser_sign_in_keeps_only_the_refresh_token_and_the_send_uses_it(
    secret_service: SecretService,
    oauth_provider: OAuthProviderServer,
    smtp_sink: tuple[OAuthSink, int],
    isolated_dirs: Path,
) -> None:
    sink, port = smtp_sink
    add_profile(oauth_provider, port)
    outputs: dict[str, bytes] = {}

    # Before any sign-in, a send says what to do and keeps the message queued.
    early = send()
    assert early.returncode == exitcodes.SIGN_IN_NEEDED, early.stdout + early.stderr
    assert f"sign in first: tuimail accounts login {NAME}" in early.stdout + early.stderr
    assert not sink.logins and not sink.messages

    code, stdout, stderr = sign_in_in_browser(oauth_provider)
    assert code == exitcodes.OK, stdout + stderr
    assert "Signed in" in stdout
    outputs.update(login_stdout=stdout.encode(), login_stderr=stderr.encode())
    first = stored_refresh_token()
    assert first is not None
    assert oauth_provider.introspect(Secret(first))["active"] is True

    sent = send()
    assert sent.returncode == exitcodes.OK, sent.stdout + sent.stderr
    outputs.update(send_stdout=sent.stdout.encode(), send_stderr=sent.stderr.encode())
    assert [(login.user, login.accepted) for login in sink.logins] == [(oauth_provider.login, True)]
    assert sink.logins[0].mechanism == "OAUTHBEARER"  # auto prefers it when offered
    assert len(sink.messages) == 1 and b"Subject: Hello" in sink.messages[0].content
    # oidc-provider rotates a public client's refresh token: the new one is stored back.
    rotated = stored_refresh_token()
    assert rotated is not None and rotated != first
    assert oauth_provider.introspect(Secret(rotated))["active"] is True
    access_token = sink.logins[0].token

    # The queued message from before the sign-in goes out with a fresh token of its own.
    flushed = run_tuimail("outbox", "flush", "--all")
    assert flushed.returncode == exitcodes.OK, flushed.stdout + flushed.stderr
    outputs.update(flush_stdout=flushed.stdout.encode(), flush_stderr=flushed.stderr.encode())
    assert len(sink.messages) == 2 and sink.logins[1].accepted
    assert sink.logins[1].token != access_token

    listed = run_tuimail("accounts", "list", "--json")
    outputs["list"] = listed.stdout.encode()
    # The refresh tokens, the access tokens: in the keyring and on the wire, nowhere else.
    written = files_under(isolated_dirs)
    assert any(name.endswith("profiles.toml") for name in written)
    for token in (first, rotated, access_token, sink.logins[1].token):
        assert find_leaks(token, {**written, **outputs}) == []
    assert find_leaks(rotated, {"the keyring": rotated.encode()}) == ["the keyring"]


def test_a_revoked_sign_in_says_sign_in_again_and_the_message_stays_queued(
    secret_service: SecretService,
    oauth_provider: OAuthProviderServer,
    smtp_sink: tuple[OAuthSink, int],
) -> None:
    sink, port = smtp_sink
    add_profile(oauth_provider, port)
    code, stdout, stderr = sign_in_in_browser(oauth_provider)
    assert code == exitcodes.OK, stdout + stderr
    token = stored_refresh_token()
    assert token is not None
    oauth_provider.revoke(Secret(token))

    sent = send()
    said = sent.stdout + sent.stderr
    assert sent.returncode == exitcodes.SIGN_IN_NEEDED, said
    assert f"sign in again with `tuimail accounts login {NAME}`" in said
    assert "queued for retry" in sent.stderr
    assert not sink.logins and not sink.messages
    listed = run_tuimail("outbox", "list")
    assert "queued" in listed.stdout and "sign in again" in listed.stdout

    retried = run_tuimail("outbox", "flush", "--all")
    assert retried.returncode == exitcodes.SIGN_IN_NEEDED, retried.stdout + retried.stderr
    assert not sink.messages

    # Signing in again sends it.
    code, stdout, stderr = sign_in_in_browser(oauth_provider)
    assert code == exitcodes.OK, stdout + stderr
    flushed = run_tuimail("outbox", "flush", "--all")
    assert flushed.returncode == exitcodes.OK, flushed.stdout + flushed.stderr
    assert len(sink.messages) == 1


def test_device_sign_in_polls_until_approved(
    secret_service: SecretService,
    oauth_provider: OAuthProviderServer,
    smtp_sink: tuple[OAuthSink, int],
) -> None:
    sink, port = smtp_sink
    add_profile(oauth_provider, port)
    login = Running("accounts", "login", NAME, "--device")
    url = login.line_matching(r"Open (\S+) on any device").group(1)
    user_code = login.line_matching(r"and enter the code: (\S+)").group(1)
    page = BrowserUser(oauth_provider).approve_device(url, user_code)
    assert "Success" in page.title + page.body
    code, stdout, stderr = login.finish()
    assert code == exitcodes.OK, stdout + stderr
    token = stored_refresh_token()
    assert token is not None and find_leaks(token, {"out": (stdout + stderr).encode()}) == []

    tested = run_tuimail("accounts", "test", NAME)
    assert tested.returncode == exitcodes.OK, tested.stdout + tested.stderr
    assert len(sink.logins) == 1 and sink.logins[0].accepted and not sink.messages

    probed = run_tuimail("probe", "--profile", NAME, "--no-history", "--json")
    assert len(sink.logins) == 2 and sink.logins[1].accepted, probed.stdout + probed.stderr
    assert sink.logins[1].token != sink.logins[0].token
    for said in (tested.stdout, tested.stderr, probed.stdout, probed.stderr):
        assert find_leaks(sink.logins[1].token, {"out": said.encode()}) == []


def test_an_answer_with_the_wrong_state_is_refused(
    secret_service: SecretService,
    oauth_provider: OAuthProviderServer,
    smtp_sink: tuple[OAuthSink, int],
) -> None:
    _sink, port = smtp_sink
    add_profile(oauth_provider, port)
    login = Running("accounts", "login", NAME, "--no-browser")
    url = login.line_matching(r"(http\S+)").group(1)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    redirect = query["redirect_uri"][0]
    # A real code, brought back with another state: a forged or stale answer.
    user = BrowserUser(oauth_provider)
    real = urllib.parse.urlsplit(user.sign_in(url))
    answer = urllib.parse.parse_qs(real.query)
    forged = redirect + "?" + urllib.parse.urlencode({"code": answer["code"][0], "state": "x"})
    status, page = user.visit(forged)
    assert status == 400 and "refused" in page
    code, stdout, stderr = login.finish()
    assert code == exitcodes.SIGN_IN_WRONG_STATE, stdout + stderr
    assert "state does not match" in stderr
    assert stored_refresh_token() is None


def test_a_refused_consent_is_said_and_stores_nothing(
    secret_service: SecretService,
    oauth_provider: OAuthProviderServer,
    smtp_sink: tuple[OAuthSink, int],
) -> None:
    _sink, port = smtp_sink
    add_profile(oauth_provider, port)
    login = Running("accounts", "login", NAME, "--no-browser")
    url = login.line_matching(r"(http\S+)").group(1)
    user = BrowserUser(oauth_provider)
    status, page = user.visit(user.sign_in(url, approve=False))
    assert status == 200 and "not allowed" in page
    code, stdout, stderr = login.finish()
    assert code == exitcodes.SIGN_IN_DENIED, stdout + stderr
    assert "the sign-in was not allowed (access_denied" in stderr
    assert stored_refresh_token() is None


def test_google_device_sign_in_points_to_the_forwarded_port(
    secret_service: SecretService,
) -> None:
    added = run_tuimail(
        "accounts", "add", "gmail", "--host", "smtp.gmail.com", "--user", "a@gmail.com",
        "--oauth-provider", "google", "--oauth-client-id", "id.apps.googleusercontent.com",
        "--oauth-client-secret-stdin", input="not-really-a-secret\n",
    )  # fmt: skip
    assert added.returncode == exitcodes.OK, added.stderr
    assert keyring.get_password(SERVICE, "gmail/oauth-client-secret") == "not-really-a-secret"
    refused = run_tuimail("accounts", "login", "gmail", "--device")
    assert refused.returncode == exitcodes.USAGE
    assert "--no-browser --port 8765" in refused.stderr and "ssh -L" in refused.stderr
    removed = run_tuimail("accounts", "remove", "gmail")
    assert removed.returncode == exitcodes.OK, removed.stderr
    assert keyring.get_password(SERVICE, "gmail/oauth-client-secret") is None


def test_a_token_too_long_for_some_keyrings_is_refused_in_words(
    secret_service: SecretService,
) -> None:
    from tuimail.credentials import KeyringError

    with pytest.raises(KeyringError) as refused:
        OAuthSecrets().store_refresh_token(NAME, Secret("t" * (KEYRING_VALUE_LIMIT + 1)))
    assert "2,560 bytes" in str(refused.value) and "does not store it" in str(refused.value)
    assert stored_refresh_token() is None
    OAuthSecrets().store_refresh_token(NAME, Secret("t" * KEYRING_VALUE_LIMIT))
    assert stored_refresh_token() == "t" * KEYRING_VALUE_LIMIT


def test_oauth_settings_are_checked_in_words() -> None:
    base = ["accounts", "add", "x", "--host", "smtp.example.test", "--user", "a@example.test"]
    cases = {
        ("--oauth-provider", "google"): "oauth_client_id: is needed",
        ("--oauth-provider", "custom", "--oauth-client-id", "c"): "oauth_authorize_url: is needed",
        (
            "--oauth-provider", "custom", "--oauth-client-id", "c",
            "--oauth-authorize-url", "http://auth.example.test/a",
            "--oauth-token-url", "https://auth.example.test/t", "--oauth-scope", "smtp",
        ): "is not an https:// address",
        (
            "--oauth-provider", "microsoft", "--oauth-client-id", "c",
            "--oauth-token-url", "https://auth.example.test/t",
        ): "is for a custom provider only",
        ("--oauth-client-id", "c"): "is used only with oauth_provider",
        (
            "--oauth-provider", "microsoft", "--oauth-client-id", "c", "--auth", "plain",
        ): "sends a token, never a password",
    }  # fmt: skip
    for extra, words in cases.items():
        result = run_tuimail(*base, *extra)
        assert result.returncode == exitcodes.CONFIG, (extra, result.stderr)
        assert words in result.stderr, (extra, result.stderr)
