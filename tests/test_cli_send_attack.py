"""``tuimail send`` as a process against a real server, fed hostile input:
encoded-word header injection, folded recipient lists, file names and files
that are not what they seem."""

from __future__ import annotations

import email
import os
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.cli_helpers import run_tuimail, send_args
from tests.smtpservers import ServerThread, Sink
from tuimail.cli import exitcodes
from tuimail.outbox import Outbox

INJECTED = "=?utf-8?q?Invoice=0D=0AX-Injected:_yes?="


def received(sink: Sink) -> EmailMessage:
    [message] = sink.messages
    parsed = email.message_from_bytes(message.content, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("--subject", INJECTED, "--subject"),
        ("--subject", "Re: " + INJECTED, "--subject"),
        ("--header", f"X-Ref: {INJECTED}", "header 'X-Ref'"),
        ("--to", f'"{INJECTED}" <bob@example.test>', "--to"),
        ("--cc", '"=?utf-8?q?x=0AReply-To:_m@evil.test?=" <c@example.test>', "--cc"),
        ("--from", f'"{INJECTED}" <alice@example.test>', "--from"),
        ("--to", "=?utf-8?q?a=0D=0AX-Injected=3A_yes?=@example.test", "--to"),
    ],
)
def test_encoded_word_injection_never_reaches_the_server(
    servers: ServerThread, option: str, value: str, field: str
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    args = send_args(port, "--body", "x")
    args += [option, value]
    result = run_tuimail(*args)
    assert result.returncode == exitcodes.INVALID_MESSAGE, result.stdout + result.stderr
    assert f"tuimail: {field}: " in result.stderr
    assert sink.messages == []
    assert Outbox().entries() == []  # refused before it was queued


def test_a_harmless_encoded_word_arrives_as_typed_with_no_extra_header(
    servers: ServerThread,
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    subject = "=?utf-8?q?Invoice?= =?utf-8?q?X-Injected:_yes?="
    args = send_args(port, "--body", "x")
    args[args.index("Hello")] = subject
    result = run_tuimail(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    parsed = received(sink)
    assert parsed["Subject"] == subject
    assert [k.lower() for k in parsed] == [
        "from", "to", "subject", "date", "message-id",
        "content-type", "content-transfer-encoding", "mime-version",
    ]  # fmt: skip


def test_every_recipient_of_a_folded_list_is_in_the_header(servers: ServerThread) -> None:
    """The envelope and the header agree, Bcc aside, however the list folds."""
    sink = Sink()
    port = servers.smtp(sink)
    to = ", ".join(
        [f"{'x' * n}@example.test, Zoë Ünïcode {n} <zoe{n}@example.test>" for n in range(1, 30)]
    )
    result = run_tuimail(*send_args(port, "--bcc", "hidden@example.test", "--body", "x", to=to))
    assert result.returncode == 0, result.stdout + result.stderr
    parsed = received(sink)
    in_header = [a.addr_spec for a in parsed["To"].addresses]
    [message] = sink.messages
    assert in_header == [r for r in message.rcpt_tos if r != "hidden@example.test"]
    assert len(in_header) == 58
    assert b"hidden@example.test" not in message.content


def test_an_attachment_name_that_is_not_utf8_is_exit_3(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/r\xe9sum\xe9.pdf"
    with open(raw, "wb") as file:
        file.write(b"%PDF")
    result = run_tuimail(*send_args(1, "--body", "x", "--attach", os.fsdecode(raw)))
    assert result.returncode == exitcodes.INVALID_MESSAGE, result.stderr
    assert "the file name is not valid UTF-8; rename the file" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "directory"])
def test_body_file_must_be_a_regular_file(tmp_path: Path, kind: str) -> None:
    if kind == "dev-zero":
        path = "/dev/zero"
    elif kind == "fifo":
        path = str(tmp_path / "pipe")
        os.mkfifo(path)  # nobody writes: reading it would never end
    else:
        path = str(tmp_path)
    result = run_tuimail(*send_args(1, "--body-file", path), timeout=30)
    assert result.returncode == exitcodes.INVALID_MESSAGE, result.stderr
    assert "--body-file: " in result.stderr
    assert ("is a directory" if kind == "directory" else "is not a regular file") in result.stderr


def test_body_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "body.txt"
    path.write_bytes(b"caf\xe9\n")
    result = run_tuimail(*send_args(1, "--body-file", str(path)))
    assert result.returncode == exitcodes.INVALID_MESSAGE
    assert "is not UTF-8 text" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["send", "--server", "127.0.0.1:1", "--user", "u", "--password-stdin",
         "--from", "a@example.test", "--to", "b@example.test", "--body", "x"],
        ["accounts", "add", "endless", "--host", "127.0.0.1", "--user", "u", "--password-stdin"],
    ],
    ids=["send", "accounts add"],
)  # fmt: skip
def test_password_stdin_from_an_endless_stream_is_an_error(command: list[str]) -> None:
    """``--password-stdin < /dev/zero`` reads a bounded line and says why it stops."""
    import subprocess

    from tests.cli_helpers import TUIMAIL

    with open("/dev/zero", "rb") as zeros:
        result = subprocess.run(
            [TUIMAIL, *command], stdin=zeros, capture_output=True, text=True, timeout=30
        )
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "not a password" in result.stderr or "NUL" in result.stderr, result.stderr
