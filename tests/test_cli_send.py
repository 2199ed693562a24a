"""``tuimail send`` as a process: live transcript, JSON Lines, exit codes per stage."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.cli_helpers import run_tuimail, send_args
from tests.conftest import Certs
from tests.smtpservers import (
    BusyGreetingSMTP,
    ServerThread,
    Sink,
    password_checker,
)
from tuimail.cli import exitcodes

PASSWORD = "s3cret-Pässword"


def test_send_prints_the_transcript_and_delivers(servers: ServerThread) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    result = run_tuimail(*send_args(port, "--body", "Hi Bob"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(" -> EHLO " in line for line in lines)
    assert any("<-  220 " in line for line in lines)
    assert any(" -> MAIL FROM:<alice@example.test>" in line for line in lines)
    assert any("<-  250 Message accepted" in line for line in lines)
    assert "sent <" in result.stderr
    assert len(sink.messages) == 1
    assert b"Hi Bob" in sink.messages[0].content


def test_body_from_stdin_and_attachment(servers: ServerThread, tmp_path: Path) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    attachment = tmp_path / "report.pdf"
    attachment.write_bytes(b"%PDF-1.4 fake but bytes\x00\xff")
    result = run_tuimail(
        *send_args(port, "--attach", str(attachment), "--cc", "carol@example.test"),
        input="Body from stdin\n",
    )
    assert result.returncode == 0, result.stderr
    content = sink.messages[0].content
    assert b"Body from stdin" in content
    assert b"application/pdf" in content and b'filename="report.pdf"' in content
    assert sink.messages[0].rcpt_tos == ["bob@example.test", "carol@example.test"]


def test_json_lines(servers: ServerThread) -> None:
    port = servers.smtp(Sink())
    result = run_tuimail(*send_args(port, "--body", "x", "--json"))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    entries, final = records[:-1], records[-1]
    assert {"t", "dir", "tls", "text"} <= set(entries[0])
    assert {e["dir"] for e in entries} == {"client", "server", "event"}
    assert final["result"]["ok"] is True
    assert final["result"]["delivery"]["accepted"] == ["bob@example.test"]


def test_starttls_auth_with_password_on_stdin(servers: ServerThread, certs: Certs) -> None:
    sink = Sink()
    port = servers.smtp(
        sink, tls_context=certs.good, authenticator=password_checker({"alice": PASSWORD})
    )
    args = send_args(port, "--body", "x", "--user", "alice", "--password-stdin")
    args[args.index("none")] = "starttls"
    args += ["--ca-file", str(certs.ca_file)]
    result = run_tuimail(*args, input=PASSWORD + "\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " ~> AUTH PLAIN ********" in result.stdout
    assert "TLS established: TLSv1." in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    assert len(sink.messages) == 1


def test_password_is_not_accepted_on_the_command_line() -> None:
    result = run_tuimail("send", "--password", "x")
    assert result.returncode == exitcodes.USAGE
    # Refused either way: no option takes a password (--password-command takes a command).
    assert "ambiguous option: --password could match" in result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("setup", "code", "words"),
    [
        ("closed", 10, "refused the connection"),
        ("no-starttls", 11, "did not offer STARTTLS"),
        ("busy", 12, "421"),
        ("bad-password", 14, "rejected the user name or password"),
        ("too-big", 15, "accepts at most"),
        ("rcpt-refused", 16, "refused every recipient"),
        ("data-refused", 17, "refused the message"),
        ("partial", 18, "refused (permanent) carol@example.test"),
    ],
)
def test_exit_code_says_which_stage_failed(
    servers: ServerThread, certs: Certs, setup: str, code: int, words: str
) -> None:
    extra: list[str] = ["--body", "x" * 2000]
    security = "none"
    if setup == "closed":
        port = _closed_port()
    elif setup == "no-starttls":
        port, security = servers.smtp(Sink()), "starttls"
    elif setup == "busy":
        port = servers.smtp(Sink(), server_class=BusyGreetingSMTP)
    elif setup == "bad-password":
        port = servers.smtp(
            Sink(), tls_context=certs.good, authenticator=password_checker({"alice": PASSWORD})
        )
        security = "starttls"
        extra += ["--user", "alice", "--password-stdin", "--ca-file", str(certs.ca_file)]
    elif setup == "too-big":
        port = servers.smtp(Sink(), data_size_limit=500)
    elif setup == "rcpt-refused":
        port = servers.smtp(Sink(rcpt_replies={"bob@example.test": "550 5.1.1 No such user"}))
    elif setup == "data-refused":
        port = servers.smtp(Sink(data_reply="554 5.7.1 Spam"))
    else:
        port = servers.smtp(Sink(rcpt_replies={"carol@example.test": "550 5.1.1 No such user"}))
        extra += ["--cc", "carol@example.test"]
    args = send_args(port, "--no-queue", *extra)
    args[args.index("none")] = security
    result = run_tuimail(*args, input="wrong-password\n")
    assert result.returncode == code, result.stdout + result.stderr
    assert words in result.stderr


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--subject", "Hi\r\nBcc: victim@example.test", "--subject: contains a carriage return"),
        ("--to", "alice@bank.test <mallory@evil.test>", "--to: "),
        ("--to", "<bob@example.test", "do not match"),
        ("--header", "X-Evil: a\nBcc: x@example.test", "could inject extra headers"),
        (
            "--header",
            "Reply-To: x@example.test",
            "header 'Reply-To': cannot be set as an extra header; use --reply-to instead",
        ),
        ("--header", "MIME-Version: 1.0", "extra header; tuimail sets it from the content"),
        ("--header", "no colon", "--header: 'no colon' is not in the form 'Name: value'"),
    ],
)
def test_bad_input_is_refused_before_connecting(option: str, value: str, message: str) -> None:
    port = _closed_port()  # nothing listens: reaching the network would be exit 10
    result = run_tuimail(*send_args(port, "--body", "x", option, value))
    assert result.returncode == exitcodes.INVALID_MESSAGE, result.stderr
    assert message in result.stderr
    assert result.stdout == ""


def test_missing_attachment_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    result = run_tuimail(*send_args(_closed_port(), "--body", "x", "--attach", str(missing)))
    assert result.returncode == exitcodes.INVALID_MESSAGE
    assert f"attachment '{missing}': does not exist" in result.stderr


def test_help_documents_every_exit_code() -> None:
    result = run_tuimail("send", "--help")
    assert result.returncode == 0
    for code, text in exitcodes.TABLE:
        assert f"{code:>3}  {text}" in result.stdout


def test_the_command_reference_documents_every_exit_code() -> None:
    reference = (Path(__file__).parent.parent / "docs" / "commands.md").read_text()
    for code, text in exitcodes.TABLE:
        assert f"| {code} | {text} |" in reference


@pytest.mark.parametrize(
    ("arguments", "command"),
    [
        (["send", "--to", "a@example.test"], "send"),
        (["--profile", "send", "accounts", "list"], "accounts"),
        (["--prof", "outbox", "doctor"], "doctor"),
        (["--profile=work", "probe", "mx.example.test"], "probe"),
        (["--profile", "work"], None),
        (["--help"], None),
        (["bogus"], None),
        ([], None),
    ],
)
def test_main_defines_only_the_command_it_runs(arguments: list[str], command: str | None) -> None:
    """main() builds one command's options; it must pick the command argparse will see."""
    from tuimail import cli

    assert cli.command_in(arguments) == command
    full = cli.build_parser()
    if command is not None:
        lean = cli.build_parser(define=[command])
        assert vars(lean.parse_args(arguments)) == vars(full.parse_args(arguments))


def test_each_command_help_is_the_same_when_defined_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tuimail import cli

    for name in cli.COMMANDS:
        helps = []
        for parser in (cli.build_parser(define=[name]), cli.build_parser()):
            with pytest.raises(SystemExit):
                parser.parse_args([name, "--help"])
            helps.append(capsys.readouterr().out)
        assert helps[0] == helps[1]
        assert "usage: tuimail " + name in helps[0]
