"""``tuimail send --eml``: a prepared message sent as given, through a real server.

As ``sendmail -t`` does, ``-t`` reads the recipients from the message's To,
Cc and Bcc and removes Bcc from the bytes; every header is still checked as
a typed one is, so an injected header, a bare LF or an overlong line is
refused with exit 3 before anything is sent.
"""

from __future__ import annotations

from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

import pytest

from tests.cli_helpers import run_tuimail
from tests.smtpservers import ServerThread, Sink, password_checker
from tuimail.cli import exitcodes
from tuimail.eml import build_prepared, draft_as_eml, draft_from_eml
from tuimail.message import Draft, DraftInvalid

PREPARED = (
    b"X-Mailer: a script\r\n"
    b"From: Alice <alice@example.test>\r\n"
    b"Subject: Quarterly\r\n"
    b"To: Bob <bob@example.test>\r\n"
    b"Bcc: Hidden Person <hidden@example.test>,\r\n"
    b" other-hidden@example.test\r\n"
    b"Cc: carol@example.test\r\n"
    b"X-Custom: folded\r\n"
    b"  across two lines\r\n"
    b"\r\n"
    b"The body, as given.\r\n"
)


def eml_args(port: int, *extra: str) -> list[str]:
    return ["send", "--server", f"127.0.0.1:{port}", "--security", "none", *extra]


def header_names(content: bytes) -> list[str]:
    head = content.split(b"\r\n\r\n", 1)[0]
    return [
        line.split(b":", 1)[0].decode()
        for line in head.split(b"\r\n")
        if line and line[:1] not in (b" ", b"\t")
    ]


def test_read_recipients_delivers_to_bcc_without_showing_it(
    servers: ServerThread, tmp_path: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    path = tmp_path / "prepared.eml"
    path.write_bytes(PREPARED)
    result = run_tuimail(*eml_args(port, "--eml", str(path), "-t"))
    assert result.returncode == 0, result.stderr
    [received] = sink.messages
    assert received.mail_from == "alice@example.test"
    assert sorted(received.rcpt_tos) == sorted(
        [
            "bob@example.test",
            "carol@example.test",
            "hidden@example.test",
            "other-hidden@example.test",
        ]
    )
    content = received.content
    # The Bcc header and its addresses are gone from the bytes on the wire.
    assert b"hidden" not in content.lower() and b"bcc" not in content.lower()
    # The given headers in their order and folding; Date and Message-ID added after them.
    assert header_names(content) == [
        "X-Mailer",
        "From",
        "Subject",
        "To",
        "Cc",
        "X-Custom",
        "Date",
        "Message-ID",
    ]
    assert b"X-Custom: folded\r\n  across two lines\r\n" in content
    assert content.endswith(b"\r\n\r\nThe body, as given.\r\n")
    # The same message went through the outbox and the transcript as any send.
    assert " -> RCPT TO:<hidden@example.test>" in result.stdout
    sent = list((tmp_path / "home" / "data" / "tuimail" / "sent").rglob("*"))
    assert any(p.is_file() and p.read_bytes() == content for p in sent)


def test_eml_from_standard_input_with_given_recipients_keeps_its_date(
    servers: ServerThread,
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    message = (
        "From: alice@example.test\n"
        "To: bob@example.test\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
        "Message-ID: <given@example.test>\n"
        "Subject: from a pipe\n"
        "\n"
        "LF line ends, as a file on this system has.\n"
    )
    result = run_tuimail(
        *eml_args(port, "--eml", "-", "--to", "bob@example.test", "--bcc", "log@example.test"),
        input=message,
    )
    assert result.returncode == 0, result.stderr
    [received] = sink.messages
    assert received.rcpt_tos == ["bob@example.test", "log@example.test"]
    assert b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n" in received.content
    assert b"Message-ID: <given@example.test>\r\n" in received.content
    assert received.content.count(b"Date:") == 1 and b"log@example.test" not in received.content


@pytest.mark.parametrize(
    ("message", "words"),
    [
        pytest.param(
            b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: a\n"
            b"Bcc: x@example.test\r\n\r\nbody\r\n",
            "line 3 ends with a bare LF",
            id="bare-lf-in-headers",
        ),
        pytest.param(
            b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: a\r\n\r\n"
            b"one\nRCPT TO:<evil@example.test>\r\n",
            "line 5 ends with a bare LF",
            id="bare-lf-in-body",
        ),
        pytest.param(
            b"From: alice@example.test\nTo: bob@example.test\n"
            b"Subject: =?utf-8?q?hi=0D=0AX-Injected:_yes?=\n\nbody\n",
            "could inject extra headers",
            id="encoded-crlf-in-subject",
        ),
        pytest.param(
            b"From: =?utf-8?q?Al=0Aice?= <alice@example.test>\nTo: bob@example.test\n"
            b"Subject: a\n\nbody\n",
            "could inject extra headers",
            id="encoded-lf-in-a-name",
        ),
        pytest.param(
            b"From: alice@example.test\nTo: bob@example.test\nSubject: a\n"
            b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
            b"Content-Type: text/plain; name==?utf-8?q?a=0D=0AX-Evil:_1?=\n\nx\n--b--\n",
            "decodes to",
            id="encoded-crlf-in-a-part-header",
        ),
        pytest.param(
            b"From: alice@example.test\nTo: bob@example.test\nSubject: a\n\n" + b"x" * 999 + b"\n",
            "longer than 998 octets",
            id="long-line",
        ),
        pytest.param(
            b"From alice@example.test Mon Jan  1 10:00:00 2024\nFrom: alice@example.test\n"
            b"To: bob@example.test\n\nbody\n",
            "line 1 is not a header",
            id="mbox-from-line",
        ),
        pytest.param(
            b"From: alice@example.test\nTo: Bob bob@example.test\nSubject: a\n\nbody\n",
            "header 'To'",
            id="ambiguous-address",
        ),
        pytest.param(
            b"From: alice@example.test\nTo: mallory@example.test\nSubject: a\n\nbody\n",
            "not among its envelope recipients",
            id="to-not-a-recipient",
        ),
    ],
)
def test_an_unsafe_prepared_message_is_refused_before_connecting(
    servers: ServerThread, tmp_path: Path, message: bytes, words: str
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    path = tmp_path / "bad.eml"
    path.write_bytes(message)
    result = run_tuimail(*eml_args(port, "--eml", str(path), "--to", "bob@example.test"))
    assert result.returncode == exitcodes.INVALID_MESSAGE, (result.stdout, result.stderr)
    assert words in result.stderr
    assert sink.messages == [] and " -> EHLO" not in result.stdout


@pytest.mark.parametrize(
    "extra",
    [
        ["--subject", "x"],
        ["--body", "x"],
        ["--from", "a@example.test"],
        ["--markdown"],
    ],
)
def test_options_that_would_change_a_prepared_message_are_usage_errors(
    tmp_path: Path, extra: list[str]
) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(PREPARED)
    result = run_tuimail(*eml_args(1, "--eml", str(path), "-t", *extra))
    assert result.returncode == exitcodes.USAGE, result.stderr
    assert "--eml" in result.stderr


def test_read_recipients_needs_a_prepared_message() -> None:
    result = run_tuimail(*eml_args(1, "-t", "--from", "a@example.test", "--body", "x"))
    assert result.returncode == exitcodes.USAGE
    assert "give --eml" in result.stderr


def test_without_any_recipient_the_message_is_refused() -> None:
    with pytest.raises(DraftInvalid, match="no recipient"):
        build_prepared(b"From: a@example.test\nTo: b@example.test\n\nx\n")


def test_a_draft_saved_as_eml_opens_again_with_its_bcc_and_attachment(tmp_path: Path) -> None:
    attachment = tmp_path / "notes.txt"
    attachment.write_text("plain notes\n")
    draft = Draft(
        from_address="Alice <alice@example.test>",
        to=["Bob <bob@example.test>"],
        bcc=["Bjørn <bjorn@example.test>"],
        subject="Plans",
        body="# Plans\n\n- one\n",
        attachments=[attachment],
        headers=[("X-Project", "tuimail")],
        markdown=True,
    )
    eml = draft_as_eml(draft)
    assert b"\r\nBcc: =?utf-8?" in eml
    opened = draft_from_eml(eml, tmp_path / "parts")
    assert opened.from_address == "Alice <alice@example.test>"
    assert opened.to == ["Bob <bob@example.test>"]
    assert opened.bcc == ["Bjørn <bjorn@example.test>"]
    assert opened.subject == "Plans"
    assert opened.body == draft.body
    assert opened.markdown
    assert opened.headers == [("X-Project", "tuimail")]
    assert [p.name for p in opened.attachments] == ["notes.txt"]
    assert opened.attachments[0].read_text() == "plain notes\n"
    # Sent with -t, the saved file goes to its Bcc too, without the header.
    outgoing = build_prepared(eml, read_recipients=True)
    assert "bjorn@example.test" in outgoing.envelope_recipients
    parsed = message_from_bytes(outgoing.to_bytes(), policy=email_policy.default)
    assert "Bcc" not in parsed


def test_an_opened_eml_keeps_its_parts_inside_the_folder_given(tmp_path: Path) -> None:
    message = (
        b"From: a@example.test\nTo: b@example.test\n"
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhello\n"
        b"--b\nContent-Type: image/png\n"
        b'Content-Disposition: attachment; filename="../../evil.png"\n'
        b"Content-Transfer-Encoding: base64\n\naGVsbG8=\n--b--\n"
    )
    folder = tmp_path / "parts"
    opened = draft_from_eml(message, folder)
    assert opened.body == "hello"
    assert opened.attachments == [folder / "evil.png"]
    assert opened.attachments[0].read_bytes() == b"hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "parts"]


def test_undisclosed_recipients_with_every_address_in_bcc() -> None:
    outgoing = build_prepared(
        b"From: a@example.test\nTo: undisclosed-recipients:;\n"
        b"Bcc: b@example.test, c@example.test\nResent-Bcc: d@example.test\nBcc:\n\nx\n",
        read_recipients=True,
    )
    assert outgoing.envelope_recipients == ["b@example.test", "c@example.test"]
    wire = outgoing.to_bytes()
    assert b"To: undisclosed-recipients:;\r\n" in wire
    assert b"bcc" not in wire.lower() and b"d@example" not in wire


def test_eml_from_a_file_with_the_password_on_standard_input(
    servers: ServerThread, tmp_path: Path
) -> None:
    """--password-stdin takes standard input's first line; the message is the file's."""
    sink = Sink()
    port = servers.smtp(
        sink, authenticator=password_checker({"alice": "pw"}), auth_require_tls=False
    )
    path = tmp_path / "prepared.eml"
    path.write_bytes(PREPARED)
    result = run_tuimail(
        *eml_args(port, "--eml", str(path), "-t", "--user", "alice"),
        "--allow-plaintext-auth", "--password-stdin",
        input="pw\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(sink.messages) == 1


def test_a_message_of_headers_alone_gets_its_own_lines() -> None:
    wire = build_prepared(b"From: a@example.test\nTo: b@example.test", to=["b@example.test"])
    assert header_names(wire.to_bytes()) == ["From", "To", "Date", "Message-ID"]
    assert wire.to_bytes().startswith(b"From: a@example.test\r\nTo: b@example.test\r\nDate: ")
