"""Typed values that look valid to one check and not to the next, and typed secrets.

``"²".isdigit()`` is true and ``int("²")`` raises: a port checked with
``isdigit`` alone crashed ``tuimail send --server host:²`` with a traceback
and the account dialog with it. And what the account dialog returns holds the
typed password: its repr must not show it.
"""

from __future__ import annotations

import pytest
from textual.widgets import Label

from tests.cli_helpers import run_tuimail
from tests.test_ui_app import WIDE, fill_account_dialog
from tests.ui_support import wait_for
from tuimail.cli import exitcodes
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.dialogs import AccountDialog, AccountForm
from tuimail.ui.screens.monitor import monitor_settings

ODD_PORTS = ["²", "٣٤", "99999"]


@pytest.mark.parametrize("port", ODD_PORTS)
def test_an_odd_port_on_the_command_line_is_a_usage_error(port: str) -> None:
    result = run_tuimail(
        "send", "--server", f"127.0.0.1:{port}", "--security", "none", "--no-queue",
        "--from", "a@example.com", "--to", "b@example.com", "--body", "b",
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    assert result.returncode == exitcodes.USAGE, result.stderr
    assert "is not a port number" in result.stderr


@pytest.mark.parametrize("port", ODD_PORTS)
def test_an_odd_port_to_probe_is_unknown_without_a_traceback(port: str) -> None:
    result = run_tuimail("probe", f"127.0.0.1:{port}", "--nagios", "--no-history")
    assert "Traceback" not in result.stderr
    assert result.returncode == 3
    assert result.stdout.startswith("SMTP UNKNOWN") and "is not a port number" in result.stdout


def test_an_odd_dns_server_port_in_config_is_reported_not_raised() -> None:
    found = monitor_settings({"monitor": {"dns_server": "127.0.0.1:²"}})
    assert found.dns_server == ""
    assert any("dns_server" in problem for problem in found.problems)


async def test_an_odd_port_in_the_account_dialog_is_an_error_in_words() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("f4")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the dialog")
        await fill_account_dialog(pilot, {"name": "odd", "host": "smtp.test", "port": "²"})
        await pilot.click("#save")
        await pilot.pause()
        assert app.is_running
        assert isinstance(app.screen, AccountDialog)
        error = app.screen.query_one("#error", Label)
        assert "port" in str(error.render())


async def test_the_account_dialogs_answer_does_not_show_the_password() -> None:
    answers: list[AccountForm | None] = []
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        app.push_screen(AccountDialog(), answers.append)
        await wait_for(pilot, lambda: bool(app.screen.query("#name")), "the dialog")
        typed = {"name": "p", "host": "smtp.test", "username": "u", "password": "typed-Secret-42"}
        await fill_account_dialog(pilot, typed)
        await pilot.click("#save")
        await wait_for(pilot, lambda: bool(answers), "the dialog's answer")
    (form,) = answers
    assert form is not None and form.password is not None
    assert form.password.reveal() == "typed-Secret-42"
    assert "typed-Secret-42" not in repr(form)


@pytest.mark.parametrize(
    "command",
    [
        ["send", "--server", "127.0.0.1:1", "--security", "none", "--user", "u", "--no-queue",
         "--from", "a@example.com", "--to", "b@example.com", "--body", "b"],
        ["accounts", "add", "x", "--host", "127.0.0.1", "--user", "u"],
    ],
    ids=["send", "accounts-add"],
)  # fmt: skip
def test_a_password_on_stdin_that_is_not_utf8_is_refused_in_words(command: list[str]) -> None:
    import subprocess

    from tests.cli_helpers import TUIMAIL

    result = subprocess.run(
        [TUIMAIL, *command, "--password-stdin"],
        input=b"se\xffcret-Pass-9\n",
        capture_output=True,
        timeout=60,
    )
    stderr = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr
    assert b"cret-Pass-9" not in result.stdout + result.stderr
    assert result.returncode == exitcodes.CONFIG, stderr
    assert "not valid UTF-8" in stderr


def test_a_dns_server_given_by_name_is_an_error_in_words() -> None:
    result = run_tuimail(
        "probe", "--mx", "example.test", "--dns-server", "dns.example.test",
        "--timeout", "1", "--no-history", "--nagios",
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    assert result.returncode == 3
    assert "is not an IP address" in result.stdout + result.stderr


async def test_the_monitors_lookup_with_a_named_dns_server_raises_its_own_error() -> None:
    """The monitor reports MXLookupError; dnspython's ValueError stopped its worker."""
    from tuimail.mx import MXLookupError, lookup_mx

    for server in ("dns.example.test", ":"):  # ":" is what "::1" splits to at its last colon
        with pytest.raises(MXLookupError, match="not an IP address"):
            await lookup_mx("example.test", nameservers=[server], timeout=1)


@pytest.mark.parametrize("value", ["nan", "inf", "1e308", "-1", "0"])
def test_a_timeout_that_is_not_a_sane_number_of_seconds_is_refused(value: str) -> None:
    """``--timeout inf`` (or 1e308) made a probe of a silent server wait for ever."""
    result = run_tuimail("probe", "127.0.0.1:1", "--timeout", value, "--nagios", "--no-history")
    assert result.returncode == exitcodes.USAGE
    assert "argument --timeout" in result.stderr, result.stderr
    sent = run_tuimail(
        "send", "--server", "127.0.0.1:1", "--security", "none", "--no-queue",
        "--from", "a@example.com", "--to", "b@example.com", "--body", "b", "--deadline", value,
    )  # fmt: skip
    assert sent.returncode == exitcodes.USAGE
    assert "argument --deadline" in sent.stderr, sent.stderr


def test_a_nan_threshold_is_refused() -> None:
    result = run_tuimail("probe", "127.0.0.1:1", "--warn-seconds", "nan", "--no-history")
    assert result.returncode == exitcodes.USAGE
    assert "argument --warn-seconds" in result.stderr


def test_the_password_prompt_escapes_the_user_and_host() -> None:
    """getpass writes its prompt to the terminal as is; the user name may come from a file."""
    import os
    import pty
    import select
    import subprocess

    from tests.cli_helpers import TUIMAIL

    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [TUIMAIL, "send", "--server", "127.0.0.1:1", "--security", "none",
         "--allow-plaintext-auth", "--user", "u\x1b]0;pwned\x07\x1b[2J", "--no-queue",
         "--from", "a@example.com", "--to", "b@example.com", "--body", "b"],
        stdin=secondary, stdout=secondary, stderr=secondary, start_new_session=True,
    )  # fmt: skip
    os.close(secondary)
    seen = b""
    try:
        while not seen.rstrip().endswith(b":"):
            ready, _, _ = select.select([primary], [], [], 30)
            assert ready, f"no prompt within 30 s: {seen!r}"
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the process ended and closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    finally:
        process.kill()
        process.wait(timeout=30)
        os.close(primary)
    assert b"Password for" in seen, seen
    assert b"\x1b" not in seen, seen
    assert b"\\x1b]0;pwned" in seen
