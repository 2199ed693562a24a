"""Attack review of ``tuimail send --eml``: a prepared message whose body is 8-bit (its
headers ASCII) needs 8BITMIME (RFC 6152), not SMTPUTF8 (RFC 6531), and a server that
lacks what the message needs is named in words about the message, not its addresses.
Real processes and real servers on 127.0.0.1."""

from __future__ import annotations

import smtplib
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.smtpservers import Reply, ScriptedServer, ServerThread, Sink
from tests.test_cli_inbox import serving
from tuimail.cli import exitcodes
from tuimail.stages import Stage

#: A message as an editor writes it: ASCII headers, UTF-8 text (LF line ends).
EIGHT_BIT_BODY = (
    "From: Ann <ann@example.test>\n"
    "To: bob@example.test\n"
    "Subject: Menu\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "Naïve résumé at noon.\n"
).encode()
#: The same with a Subject of raw UTF-8 (RFC 6532): that needs SMTPUTF8.
EIGHT_BIT_SUBJECT = EIGHT_BIT_BODY.replace(b"Subject: Menu", "Subject: Café".encode())


def send_eml(port: int, raw: bytes) -> tuple[int, str]:
    result = run_tuimail(
        "send", "--server", f"127.0.0.1:{port}", "--security", "none", "--eml", "-", "-t",
        input=raw.decode("utf-8"),
    )  # fmt: skip
    return result.returncode, result.stderr


def test_an_8bit_body_goes_with_8bitmime_to_a_server_without_smtputf8(
    servers: ServerThread,
) -> None:
    sink = Sink()
    port = servers.smtp(sink)  # aiosmtpd: 8BITMIME offered, SMTPUTF8 not
    code, stderr = send_eml(port, EIGHT_BIT_BODY)
    assert code == exitcodes.OK, stderr
    [received] = sink.messages
    assert "BODY=8BITMIME" in received.mail_options
    assert "SMTPUTF8" not in received.mail_options
    message = message_from_bytes(received.content, policy=policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == "Naïve résumé at noon.\n"


def test_without_8bitmime_an_8bit_body_is_refused_in_words_about_the_body(
    servers: ServerThread,
) -> None:
    server = ScriptedServer({"EHLO": Reply("250-mx.test\r\n250 PIPELINING")})
    port = servers.scripted(server)
    code, stderr = send_eml(port, EIGHT_BIT_BODY)
    assert code == exitcodes.for_stage(Stage.MAIL), stderr
    assert "8-bit" in stderr and "does not offer 8BITMIME" in stderr
    assert "address" not in stderr and "attached message" not in stderr
    assert not server.messages and not any(c.upper().startswith("MAIL") for c in server.commands)


def test_utf8_in_a_header_needs_smtputf8_and_the_words_say_it_is_a_header(
    servers: ServerThread,
) -> None:
    sink = Sink()
    code, stderr = send_eml(servers.smtp(sink), EIGHT_BIT_SUBJECT)
    assert code == exitcodes.for_stage(Stage.MAIL), stderr
    assert "does not offer SMTPUTF8" in stderr and "header" in stderr
    assert "address" not in stderr
    assert not sink.messages

    offered = Sink()
    code, stderr = send_eml(servers.smtp(offered, enable_SMTPUTF8=True), EIGHT_BIT_SUBJECT)
    assert code == exitcodes.OK, stderr
    [received] = offered.messages
    assert "SMTPUTF8" in received.mail_options
    assert "Subject: Café".encode() in received.content


def test_a_captured_8bit_body_is_released_with_8bitmime(
    isolated_dirs: Path, servers: ServerThread
) -> None:
    """``tuimail inbox release`` sends a captured message through the same checks."""
    sink = Sink()
    other = servers.smtp(sink)  # 8BITMIME offered, SMTPUTF8 not
    raw = EIGHT_BIT_BODY.replace(b"\n", b"\r\n").replace(
        b"Subject: Menu", b"Subject: Menu\r\nDate: Fri, 04 Dec 2026 12:00:00 +0000"
    )
    with serving() as port, smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        client.sendmail("ann@example.test", ["bob@example.test"], raw, ["BODY=8BITMIME"])
        found = run_tuimail("inbox", "wait", "--subject", "Menu", "--timeout", "10")
    key = found.stdout.split()[0]
    released = run_tuimail(
        "inbox", "release", key, "--server", f"127.0.0.1:{other}", "--security", "none"
    )
    assert released.returncode == exitcodes.OK, released.stdout + released.stderr
    [received] = sink.messages
    assert "BODY=8BITMIME" in received.mail_options
    assert "SMTPUTF8" not in received.mail_options
    assert "Naïve résumé".encode() in received.content


def test_space_before_a_header_colon_is_refused_naming_the_line(servers: ServerThread) -> None:
    sink = Sink()
    raw = b"From: ann@example.test\nTo: bob@example.test\nSubject : Menu\n\nSoup.\n"
    code, stderr = send_eml(servers.smtp(sink), raw)
    assert code == exitcodes.INVALID_MESSAGE, stderr
    assert "line 3 has space between the header name 'Subject' and its colon" in stderr
    assert "no date header" not in stderr
    assert not sink.messages


def test_a_bom_or_an_mbox_from_line_at_the_top_is_named(servers: ServerThread) -> None:
    """What an editor or an mbox export puts before the headers is named, not 'line 1'."""
    sink = Sink()
    port = servers.smtp(sink)
    message = b"From: ann@example.test\nTo: bob@example.test\nSubject: Menu\n\nSoup.\n"
    code, stderr = send_eml(port, b"\xef\xbb\xbf" + message)
    assert code == exitcodes.INVALID_MESSAGE and "byte order mark (BOM)" in stderr, stderr
    code, stderr = send_eml(port, b"From ann@example.test Fri Dec  4 12:00:00 2026\n" + message)
    assert code == exitcodes.INVALID_MESSAGE and "mbox 'From ' separator" in stderr, stderr
    assert not sink.messages
