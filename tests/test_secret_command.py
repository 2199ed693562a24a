"""Secrets from a command: ``password_command`` and ``token_command`` (tuimail/secret_command.py).

Real commands run as real processes: what they print, how they fail, how
long they take. Then the same through profiles.toml, a session against a
real server, and the ``tuimail`` command line, where the outbox's retry runs
the command again and no secret lands in any file.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.cli_helpers import files_under, leak_patterns, run_tuimail, send_args
from tests.oauth_smtp import OAuthSink, RawSMTP, offered_auth, sign_in
from tests.oauth_support import OAuthProviderServer
from tests.smtpservers import ServerThread, Sink, password_checker
from tuimail.bearer import BearerToken
from tuimail.cli.exitcodes import for_stage
from tuimail.message import Draft, build_message
from tuimail.profiles import Profile, ProfileError, ProfileStore, Security
from tuimail.secret_command import CommandProblem, SecretCommandError, run_secret_command
from tuimail.session import Stage, send

PASSWORD = "cmd-passw0rd-Ünïcode-42"


def python(code: str) -> str:
    """A command line running ``code`` with this Python (no shell involved)."""
    return shlex.join([sys.executable, "-c", code])


def test_the_first_line_printed_is_the_secret() -> None:
    secret = run_secret_command(python(f"print({PASSWORD!r}); print('second line')"))
    assert secret.reveal() == PASSWORD


@pytest.mark.parametrize("ending", ["\n", "\r\n", ""])
def test_the_trailing_newline_is_not_part_of_the_secret(ending: str) -> None:
    code = f"import sys; sys.stdout.write({PASSWORD + ending!r})"
    assert run_secret_command(python(code)).reveal() == PASSWORD


def test_no_shell_unless_the_user_writes_one(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    # Without a shell, ';' and '>' are words given to echo, not shell syntax.
    said = run_secret_command(f"echo one; touch {marker} > /dev/null")
    assert said.reveal() == f"one; touch {marker} > /dev/null"
    assert not marker.exists()
    assert run_secret_command("sh -c 'echo $((6 * 7))'").reveal() == "42"


def test_a_failing_command_names_itself_its_status_and_its_stderr() -> None:
    command = python("import sys; sys.stderr.write('gpg: decryption failed\\x1b[31m\\n'); exit(3)")
    with pytest.raises(SecretCommandError) as failed:
        run_secret_command(command, setting="password_command")
    error = failed.value
    assert error.problem is CommandProblem.FAILED and error.status == 3
    words = str(error)
    assert words.startswith(f"password_command {command!r} exited with status 3")
    assert "it said: gpg: decryption failed\\x1b[31m" in words
    assert "\x1b" not in words
    assert error.temporary


def test_a_command_that_cannot_run_is_an_error() -> None:
    with pytest.raises(SecretCommandError) as failed:
        run_secret_command("/nonexistent/secret-helper --get")
    assert failed.value.problem is CommandProblem.NOT_STARTED
    assert "could not be run: No such file or directory" in str(failed.value)
    assert not failed.value.temporary


def test_a_command_that_takes_too_long_is_stopped() -> None:
    with pytest.raises(SecretCommandError) as failed:
        run_secret_command(python("import time; time.sleep(60)"), timeout=0.5)
    assert failed.value.problem is CommandProblem.TIMEOUT
    assert "did not finish within 0.5 seconds and was stopped" in str(failed.value)


def test_a_stopped_command_takes_what_it_started_with_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = f"sleep 100 & echo $! > {shlex.quote(str(pid_file))}; exec sleep 100"
    with pytest.raises(SecretCommandError) as failed:
        run_secret_command(shlex.join(["sh", "-c", script]), timeout=1)
    assert failed.value.problem is CommandProblem.TIMEOUT
    grandchild = int(pid_file.read_text())
    # Killed, then reaped by whoever inherited it: give that a moment (a
    # zombie waiting for its reaper has already stopped running).
    for _ in range(50):
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        with contextlib.suppress(OSError):
            if Path(f"/proc/{grandchild}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.1)
    else:
        os.kill(grandchild, signal.SIGKILL)
        pytest.fail("the command's background job outlived the timeout")


@pytest.mark.parametrize("code", ["pass", "print()", "print(); print('later line')"])
def test_a_command_printing_nothing_is_an_error(code: str) -> None:
    with pytest.raises(SecretCommandError) as failed:
        run_secret_command(python(code), setting="token_command")
    assert failed.value.problem is CommandProblem.EMPTY
    assert "printed nothing" in str(failed.value)


def test_endless_output_is_cut_off() -> None:
    with pytest.raises(SecretCommandError) as failed:
        run_secret_command("yes")
    assert failed.value.problem is CommandProblem.UNUSABLE


def test_the_commands_are_kept_in_profiles_toml(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "profiles.toml")
    store.save(Profile(name="a", host="mx.test", username="u", password_command="pass show mail"))
    store.save(Profile(name="b", host="mx.test", username="u", token_command="oama access u"))
    loaded = store.load()
    assert loaded["a"].password_command == "pass show mail" and not loaded["a"].needs_password
    assert loaded["b"].token_command == "oama access u"
    assert 'password_command = "pass show mail"' in store.path.read_text()
    with pytest.raises(ProfileError, match="token_command"):
        Profile(name="c", host="mx.test", password_command="a", token_command="b")
    with pytest.raises(ProfileError, match="password_command: is not a command line"):
        Profile(name="d", host="mx.test", password_command="pass 'show")


async def test_a_session_runs_the_password_command(servers: ServerThread, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(PASSWORD + "\n")
    port = servers.smtp(
        Sink(), auth_require_tls=False, authenticator=password_checker({"alice": PASSWORD})
    )
    profile = Profile(
        name="cmd",
        host="127.0.0.1",
        port=port,
        security=Security.NONE,
        allow_plaintext_auth=True,
        username="alice",
        password_command=f"cat {secret_file}",
    )
    outgoing = build_message(
        Draft(from_address="alice@example.test", to=["bob@example.test"], subject="s", body="b")
    )
    report = await send(profile, outgoing)
    assert report.ok, report.failure
    for pattern in leak_patterns(PASSWORD):
        assert pattern.decode() not in report.transcript.to_jsonl()
    secret_file.write_text("")
    report = await send(profile, outgoing)
    assert report.failure is not None and report.failure.stage is Stage.AUTH
    assert f"password_command 'cat {secret_file}' printed nothing" in report.failure.explanation


def test_send_with_a_failing_command_says_why(servers: ServerThread) -> None:
    port = servers.smtp(Sink(), auth_require_tls=False)
    command = "sh -c 'echo the vault is locked >&2; exit 2'"
    result = run_tuimail(
        *send_args(port, "--body", "b", "--no-queue"),
        "--allow-plaintext-auth",
        "--user",
        "alice",
        "--password-command",
        command,
    )
    assert result.returncode == for_stage(Stage.AUTH), result.stderr
    assert f"password_command {command!r} exited with status 2" in result.stdout + result.stderr
    assert "it said: the vault is locked" in result.stdout + result.stderr


def test_accounts_add_with_a_password_command_then_send(
    servers: ServerThread, tmp_path: Path, isolated_dirs: Path
) -> None:
    secret_file = tmp_path / "outside" / "secret"
    secret_file.parent.mkdir()
    secret_file.write_text(PASSWORD + "\n")
    sink = Sink()
    port = servers.smtp(
        sink, auth_require_tls=False, authenticator=password_checker({"alice": PASSWORD})
    )
    added = run_tuimail(
        "accounts", "add", "work", "--host", "127.0.0.1", "--port", str(port),
        "--security", "none", "--allow-plaintext-auth", "--user", "alice",
        "--from", "alice@example.test", "--password-command", f"cat {secret_file}",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    sent = run_tuimail(
        "send", "--profile", "work", "--to", "bob@example.test", "--subject", "s", "--body", "b"
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert len(sink.messages) == 1
    edited = run_tuimail("accounts", "edit", "work", "--token-command", "oama access alice")
    assert edited.returncode == 0, edited.stderr
    saved = ProfileStore().get("work")
    assert (saved.token_command, saved.password_command) == ("oama access alice", "")
    written = files_under(isolated_dirs)
    outputs = {"send": (sent.stdout + sent.stderr).encode()}
    for name, blob in {**written, **outputs}.items():
        assert not any(p in blob for p in leak_patterns(PASSWORD)), name


def test_the_outbox_retry_runs_the_token_command_again(
    servers: ServerThread,
    oauth_provider: OAuthProviderServer,
    tmp_path: Path,
    isolated_dirs: Path,
) -> None:
    """A queued message is retried with the token the command prints then, never a stored one."""
    sink = OAuthSink(provider=oauth_provider, rcpt_replies={"bob@example.test": "451 4.7.1 Later"})
    port = servers.smtp(sink, server_class=RawSMTP, **offered_auth("OAUTHBEARER"))
    first, second = sign_in(oauth_provider), sign_in(oauth_provider)
    token_file = tmp_path / "outside" / "token"
    token_file.parent.mkdir()
    token_file.write_text(first.access_token.reveal() + "\n")
    user = oauth_provider.login
    queued = run_tuimail(
        *send_args(port, "--body", "b"), "--allow-plaintext-auth", "--user", user,
        "--token-command", f"cat {token_file}",
    )  # fmt: skip
    assert queued.returncode == 75, queued.stdout + queued.stderr
    token_file.write_text(second.access_token.reveal() + "\n")
    sink.rcpt_replies.clear()
    flushed = run_tuimail("outbox", "flush", "--all")
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert [(x.token, x.accepted) for x in sink.logins] == [
        (first.access_token.reveal(), True),
        (second.access_token.reveal(), True),
    ]
    assert len(sink.messages) == 1
    written = files_under(isolated_dirs)
    assert any("outbox" in name for name in written)
    outputs = {"send": (queued.stdout + queued.stderr + flushed.stdout + flushed.stderr).encode()}
    for tokens in (first, second):
        for name, blob in {**written, **outputs}.items():
            assert not any(p in blob for p in leak_patterns(tokens.access_token.reveal())), name


def test_a_token_command_gives_a_renewable_token(tmp_path: Path) -> None:
    from tuimail.secret_command import command_secret

    counter = tmp_path / "count"
    code = (
        f"import pathlib; p = pathlib.Path({str(counter)!r}); "
        "n = int(p.read_text()) + 1 if p.exists() else 1; "
        "p.write_text(str(n)); print(f'token-{n}')"
    )
    profile = Profile(name="t", host="mx.test", username="u", token_command=python(code))
    token = command_secret(profile)
    assert isinstance(token, BearerToken) and token.reveal() == "token-1"
    assert token.renew is not None and token.renew().reveal() == "token-2"
