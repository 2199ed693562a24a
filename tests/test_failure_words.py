"""Failures said truly: who closed what, what was refused, and which setting helps.

Real servers on 127.0.0.1 (aiosmtpd, the sandbox with implicit TLS, trustme
certificates), the real ``tuimail`` command and the app under Pilot.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

import pytest

from tests.cli_helpers import run_tuimail
from tests.conftest import Certs
from tests.sandbox_support import RunningSandbox
from tests.smtpservers import ServerThread, Sink, password_checker
from tests.ui_support import (
    fill_draft,
    save_profile,
    static_text,
    view_lines,
    wait_for,
    wait_for_run,
)
from tuimail.credentials import UNSAFE_OPT_IN_ENV, CredentialStore, KeyringError
from tuimail.message import Draft, OutgoingMessage, build_message
from tuimail.profiles import Profile, Security
from tuimail.session import Remedy, SessionReport, Stage, send
from tuimail.transcript import EventKind
from tuimail.ui.app import TuimailApp
from tuimail.ui.widgets.transcript_view import TranscriptView


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def message() -> OutgoingMessage:
    return build_message(
        Draft(from_address="alice@example.test", to=["bob@example.test"], subject="S", body="B")
    )


def server_send(port: int, security: str, *extra: str) -> list[str]:
    """``tuimail send --server`` to 127.0.0.1:``port``, one attempt, nothing queued."""
    return [
        "send",
        "--server",
        f"127.0.0.1:{port}",
        "--security",
        security,
        "--from",
        "alice@example.test",
        "--to",
        "bob@example.test",
        "--subject",
        "S",
        "--body",
        "B",
        "--no-queue",
        *extra,
    ]


def closed_lines(report: SessionReport) -> list[str]:
    return [e.text for e in report.transcript if e.kind is EventKind.CLOSED]


# -- a refused connection -------------------------------------------------------


async def test_a_refused_connection_says_refused_once_and_closes_nothing() -> None:
    port = closed_port()
    report = await send(
        Profile(name="p", host="127.0.0.1", port=port, security=Security.NONE), message()
    )
    failure = report.failure
    assert failure is not None and failure.stage is Stage.CONNECT and failure.temporary
    assert failure.explanation.count("refused") == 1, failure.explanation
    assert f"port {port}" in failure.explanation
    text = report.transcript.to_text()
    assert "closed" not in text and "Connect call failed" not in text, text
    assert closed_lines(report) == []


@pytest.mark.parametrize("queue", [False, True])
def test_a_refused_connection_on_the_command_line(queue: bool) -> None:
    port = closed_port()
    args = server_send(port, "none")
    if queue:
        args.remove("--no-queue")
    result = run_tuimail(*args)
    assert result.returncode == (75 if queue else 10), result.stderr
    output = result.stdout + result.stderr
    assert "closed" not in output and "Connect call failed" not in output, output
    assert "=== connection" not in result.stdout
    failed = [line for line in output.splitlines() if "failed" in line]
    assert failed and all(line.count("refused") == 1 for line in failed), output


@pytest.mark.parametrize(
    ("case", "status_words", "transcript_words"),
    [
        ("refused", "refused the connection on port", "refused the connection on port"),
        (
            "certificate",
            "issued by an authority this system does not trust",
            "tuimail refused the certificate of 127.0.0.1 and closed the connection",
        ),
        ("mode", "STARTTLS (usually port 587)", "tuimail closed the connection"),
    ],
)
async def test_the_app_says_the_same_true_words(
    servers: ServerThread, certs: Certs, case: str, status_words: str, transcript_words: str
) -> None:
    """Compose's status and the transcript screen word the same failure, truly."""
    if case == "refused":
        save_profile(name="local", host="127.0.0.1", port=closed_port(), security="none")
    elif case == "certificate":
        port = servers.smtp(Sink(), tls_context=certs.good)
        save_profile(name="local", host="127.0.0.1", port=port, security="starttls")
    else:
        save_profile(name="local", host="127.0.0.1", port=servers.smtp(Sink()), security="tls")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Hello", body="Hi")
        await pilot.press("ctrl+s")
        await wait_for_run(pilot)
        await wait_for(
            pilot, lambda: "failed" in static_text(app, "#send-status"), "the failure in Compose"
        )
        status = static_text(app, "#send-status")
        assert status_words in status and "closed" not in status, status
        await pilot.press("f3")
        view = app.screen.query_one("#transcript-view", TranscriptView)
        await wait_for(pilot, lambda: view_lines(view), "the transcript view to render")
        shown = re.sub(r"\s+", " ", " ".join(view_lines(view)))
        assert transcript_words in shown, shown
        assert "server closed" not in shown and "Connect call failed" not in shown, shown
        if case == "refused":
            assert "closed" not in shown, shown


# -- a refused certificate ---------------------------------------------------------


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_a_refused_certificate_is_tuimails_doing(
    servers: ServerThread, certs: Certs, security: str
) -> None:
    if security == "tls":
        port = servers.smtp(Sink(), implicit_tls=certs.good)
    else:
        port = servers.smtp(Sink(), tls_context=certs.good)
    profile = Profile(name="p", host="127.0.0.1", port=port, security=Security(security))
    report = await send(profile, message())
    failure = report.failure
    assert failure is not None and failure.stage is Stage.TLS
    assert failure.remedy is Remedy.CA_FILE
    assert "issued by an authority this system does not trust" in failure.problem
    closed = closed_lines(report)
    assert closed == ["tuimail refused the certificate of 127.0.0.1 and closed the connection"]
    assert "server closed" not in report.transcript.to_text()


def test_a_refused_certificate_names_the_flag_for_a_server_send(
    servers: ServerThread, certs: Certs
) -> None:
    port = servers.smtp(Sink(), tls_context=certs.good)
    result = run_tuimail(*server_send(port, "starttls"))
    assert result.returncode == 11, result.stderr
    assert "tuimail refused the certificate of 127.0.0.1" in result.stdout
    assert "server closed" not in result.stdout
    assert "--ca-file" in result.stderr and "profile" not in result.stderr, result.stderr
    # With the flag it names, the same server is trusted.
    trusted = run_tuimail(*server_send(port, "starttls", "--ca-file", str(certs.ca_file)))
    assert trusted.returncode == 0, trusted.stderr


def test_a_profile_send_keeps_the_profiles_words(servers: ServerThread, certs: Certs) -> None:
    port = servers.smtp(Sink(), tls_context=certs.good)
    save_profile(name="work", host="127.0.0.1", port=port, security="starttls")
    result = run_tuimail(
        "send", "--profile", "work", "--to", "bob@example.test", "--subject", "S", "--body", "B"
    )
    assert result.returncode == 11, result.stderr
    assert "the profile's CA file" in result.stderr


# -- the wrong TLS mode --------------------------------------------------------------


async def test_implicit_tls_to_a_plain_port_suggests_starttls(servers: ServerThread) -> None:
    port = servers.smtp(Sink())
    report = await send(
        Profile(name="p", host="127.0.0.1", port=port, security=Security.TLS), message()
    )
    failure = report.failure
    assert failure is not None and failure.stage is Stage.TLS
    assert failure.remedy is Remedy.STARTTLS
    assert "STARTTLS" in failure.problem and "587" in failure.problem
    assert "465" in failure.problem
    assert "server closed" not in report.transcript.to_text()
    result = run_tuimail(*server_send(port, "tls"))
    assert result.returncode == 11
    assert "try --security starttls" in result.stderr, result.stderr


async def test_starttls_to_an_implicit_tls_port_suggests_implicit_tls(
    make_sandbox: Callable[..., RunningSandbox],
) -> None:
    sandbox = make_sandbox(security=Security.TLS)
    profile = Profile(
        name="p",
        host="127.0.0.1",
        port=sandbox.port,
        security=Security.STARTTLS,
        ca_file=str(sandbox.sandbox.ca_file),
        timeout=1,
    )
    report = await send(profile, message())
    failure = report.failure
    assert failure is not None and failure.stage is Stage.GREETING
    assert failure.remedy is Remedy.IMPLICIT_TLS
    assert "implicit TLS" in failure.problem and "465" in failure.problem
    assert "587" in failure.problem
    assert failure.problem.count("within") == 1, failure.problem
    result = run_tuimail(*server_send(sandbox.port, "starttls", "--timeout", "1"))
    assert result.returncode == 12, result.stderr
    assert "try --security tls" in result.stderr, result.stderr


# -- remedies as flags, and keyring advice not already taken ----------------------


def test_a_password_refused_in_plaintext_names_the_flag(servers: ServerThread) -> None:
    # The server offers AUTH without TLS: tuimail, not the server, keeps the password back.
    port = servers.smtp(Sink(), auth_require_tls=False, authenticator=password_checker({}))
    result = run_tuimail(
        *server_send(port, "none", "--user", "alice", "--password-stdin"), input="secret\n"
    )
    assert result.returncode == 14, result.stderr
    assert "--allow-plaintext-auth" in result.stderr and "profile" not in result.stderr


def test_no_keyring_with_the_opt_in_set_does_not_advise_setting_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(UNSAFE_OPT_IN_ENV, "1")
    with pytest.raises(KeyringError) as raised:
        CredentialStore().get("work")
    assert f"set {UNSAFE_OPT_IN_ENV}=1" not in str(raised.value)
    doctor = run_tuimail("doctor", env={UNSAFE_OPT_IN_ENV: "1"})
    assert "keyring round trip" in doctor.stdout
    assert f"set {UNSAFE_OPT_IN_ENV}=1" not in doctor.stdout, doctor.stdout
    # Without the opt-in the advice is the same: the opt-in cannot make a
    # backend that stores nothing store a password.
    monkeypatch.delenv(UNSAFE_OPT_IN_ENV)
    with pytest.raises(KeyringError) as refused:
        CredentialStore().get("work")
    assert f"set {UNSAFE_OPT_IN_ENV}=1" not in str(refused.value)
    assert "Secret Service" in str(refused.value)
