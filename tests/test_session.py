"""The SMTP session against real aiosmtpd servers, well-behaved and hostile."""

from __future__ import annotations

import re
import ssl
from typing import Any

import pytest

from tests.conftest import Certs
from tests.smtpservers import (
    BusyGreetingSMTP,
    ByteAtATimeSMTP,
    RefuseStartTLSSMTP,
    ServerThread,
    Sink,
    password_checker,
)
from tuimail.credentials import Secret
from tuimail.message import Draft, OutgoingMessage, build_message
from tuimail.profiles import Profile
from tuimail.session import SessionReport, SMTPSession, Stage, check_account, send
from tuimail.transcript import Direction, Entry, EventKind

PASSWORD = "correct horse battery staple"
USERS = {"alice": PASSWORD}


def profile(port: int, **changes: Any) -> Profile:
    settings: dict[str, Any] = {"security": "none", "timeout": 5.0}
    settings.update(changes)
    return Profile(name="test", host="127.0.0.1", port=port, **settings)


def message(**changes: Any) -> OutgoingMessage:
    fields: dict[str, Any] = {
        "from_address": "Alice <alice@example.test>",
        "to": ["bob@example.test"],
        "subject": "Hello",
        "body": "Hi Bob,\n.leading dot\n",
    }
    fields.update(changes)
    return build_message(Draft(**fields))


def client_lines(report: SessionReport) -> list[str]:
    return [e.text for e in report.transcript if e.direction is Direction.CLIENT]


def server_lines(report: SessionReport) -> list[str]:
    return [e.text for e in report.transcript if e.direction is Direction.SERVER]


async def test_plain_delivery_records_every_line(servers: ServerThread) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    seen: list[Entry] = []
    report = await send(profile(port), message(), on_entry=seen.append)
    assert report.ok, report.failure
    assert len(sink.messages) == 1
    assert sink.messages[0].rcpt_tos == ["bob@example.test"]
    assert b"\r\n.leading dot\r\n" in sink.messages[0].content  # dot-unstuffed by the server
    # The capture must see the wire: every command and every reply, live.
    assert seen == report.transcript.entries
    verbs = [line.split()[0] for line in client_lines(report)]
    assert verbs == ["EHLO", "MAIL", "RCPT", "DATA", "[message", "QUIT"]
    assert server_lines(report)[0].startswith("220 ")
    assert any(line.startswith("250 Message accepted") for line in server_lines(report))
    assert server_lines(report)[-1].startswith("221")
    summary = next(line for line in client_lines(report) if line.startswith("[message"))
    assert re.fullmatch(r"\[message content: [\d,]+ bytes, \d+ lines\] \.", summary)
    assert not any("Hi Bob" in e.text for e in report.transcript)  # summarised, not dumped
    times = [e.elapsed for e in report.transcript]
    assert times == sorted(times)
    kinds = [e.kind for e in report.transcript if e.direction is Direction.EVENT]
    assert EventKind.CONNECTED in kinds and EventKind.CLOSED in kinds
    assert report.delivery is not None and report.delivery.accepted == ["bob@example.test"]


async def test_starttls_is_verified_and_ehlo_repeated(servers: ServerThread, certs: Certs) -> None:
    sink = Sink()
    port = servers.smtp(sink, tls_context=certs.good, authenticator=password_checker(USERS))
    report = await send(
        profile(port, security="starttls", ca_file=str(certs.ca_file), username="alice"),
        message(),
        Secret(PASSWORD),
    )
    assert report.ok, report.failure
    assert report.tls is not None and report.tls.verified
    assert report.tls.version.startswith("TLSv1.")
    assert report.tls.certificate is not None and "127.0.0.1" in report.tls.certificate.names
    lines = client_lines(report)
    assert lines[:3] == [lines[0], "STARTTLS", lines[0]]  # EHLO, STARTTLS, EHLO again
    # Capabilities are the ones after TLS (AUTH is only offered there).
    assert "auth" in report.capabilities and "starttls" not in report.capabilities
    secure_flags = [e.secure for e in report.transcript if e.direction is Direction.CLIENT]
    assert secure_flags[:2] == [False, False] and all(secure_flags[2:])
    tls_events = [e for e in report.transcript if e.kind is EventKind.TLS]
    assert tls_events and tls_events[0].data and tls_events[0].data["verified"] is True
    assert sink.messages


async def test_implicit_tls_with_auth_login(servers: ServerThread, certs: Certs) -> None:
    sink = Sink()
    port = servers.smtp(
        sink,
        implicit_tls=certs.good,
        authenticator=password_checker(USERS),
        auth_require_tls=False,
    )
    report = await send(
        profile(
            port,
            security="tls",
            ca_file=str(certs.ca_file),
            username="alice",
            auth_mechanism="login",
        ),
        message(),
        Secret(PASSWORD),
    )
    assert report.ok, report.failure
    lines = client_lines(report)
    assert "AUTH LOGIN ********" in lines
    assert lines[lines.index("AUTH LOGIN ********") + 1] == "********"
    assert all(e.secure for e in report.transcript if e.direction is not Direction.EVENT)
    assert report.authenticated_as == "alice"


async def test_wrong_password_is_tried_once(servers: ServerThread, certs: Certs) -> None:
    port = servers.smtp(Sink(), tls_context=certs.good, authenticator=password_checker(USERS))
    report = await send(
        profile(port, security="starttls", ca_file=str(certs.ca_file), username="alice"),
        message(),
        Secret("wrong"),
    )
    assert report.failure is not None
    assert report.failure.stage is Stage.AUTH and not report.failure.temporary
    assert "rejected the user name or password" in report.failure.explanation
    assert sum(1 for line in client_lines(report) if line.startswith("AUTH")) == 1


async def test_starttls_not_offered_stops_before_auth_and_mail(servers: ServerThread) -> None:
    sink = Sink()
    port = servers.smtp(sink, auth_require_tls=False, authenticator=password_checker(USERS))
    report = await send(
        profile(port, security="starttls", username="alice"), message(), Secret(PASSWORD)
    )
    assert report.failure is not None and report.failure.stage is Stage.TLS
    assert "did not offer STARTTLS; refusing to continue in plaintext" in report.failure.explanation
    assert not any(line.startswith(("AUTH", "MAIL")) for line in client_lines(report))
    assert not sink.messages


async def test_starttls_refused(servers: ServerThread, certs: Certs) -> None:
    sink = Sink()
    port = servers.smtp(sink, server_class=RefuseStartTLSSMTP, tls_context=certs.good)
    report = await send(profile(port, security="starttls"), message())
    assert report.failure is not None and report.failure.stage is Stage.TLS
    assert report.failure.code == 454 and report.failure.temporary
    assert "refusing to continue in plaintext" in report.failure.explanation
    assert not any(line.startswith("MAIL") for line in client_lines(report))
    assert not sink.messages


@pytest.mark.parametrize(
    ("cert_name", "expected"),
    [
        ("self_signed", "is self-signed and not trusted"),
        ("expired", "the certificate for 127.0.0.1 expired on"),
        ("wrong_host", "does not match the host name 127.0.0.1 (it is for mail.example.test)"),
    ],
)
@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_bad_certificates_are_refused_with_reason(
    servers: ServerThread, certs: Certs, cert_name: str, expected: str, security: str
) -> None:
    context: ssl.SSLContext = getattr(certs, cert_name)
    sink = Sink()
    if security == "tls":
        port = servers.smtp(sink, implicit_tls=context)
    else:
        port = servers.smtp(sink, tls_context=context)
    ca_file = "" if cert_name == "self_signed" else str(certs.ca_file)
    report = await send(profile(port, security=security, ca_file=ca_file), message())
    assert report.failure is not None, report.transcript.to_text()
    assert report.failure.stage is Stage.TLS and not report.failure.temporary
    assert expected in report.failure.explanation
    assert not sink.messages
    # The look that found what was wrong ran on a connection of its own, outside this
    # session's transcript: the transcript shows the one connection that was refused.
    connected = [e for e in report.transcript if e.kind is EventKind.CONNECTED]
    assert len(connected) == 1, report.transcript.to_text()


async def test_unverified_profile_connects_but_says_so(servers: ServerThread, certs: Certs) -> None:
    port = servers.smtp(Sink(), implicit_tls=certs.self_signed)
    report = await send(profile(port, security="tls", verify_tls=False), message())
    assert report.ok, report.failure
    assert report.tls is not None and not report.tls.verified
    assert (
        report.tls.certificate is not None
        and report.tls.certificate.subject == "commonName=localhost"
    )
    warnings = [e.text for e in report.transcript if e.kind is EventKind.WARNING]
    assert any("not verified" in w for w in warnings)


async def test_password_never_sent_in_plaintext_unless_allowed(servers: ServerThread) -> None:
    sink = Sink()
    port = servers.smtp(sink, auth_require_tls=False, authenticator=password_checker(USERS))
    refused = await send(profile(port, username="alice"), message(), Secret(PASSWORD))
    assert refused.failure is not None and refused.failure.stage is Stage.AUTH
    assert "unencrypted connection" in refused.failure.explanation
    assert not any(line.startswith("AUTH") for line in client_lines(refused))

    allowed = await send(
        profile(port, username="alice", allow_plaintext_auth=True, auth_mechanism="plain"),
        message(),
        Secret(PASSWORD),
    )
    assert allowed.ok, allowed.failure
    assert "AUTH PLAIN ********" in client_lines(allowed)
    assert len(sink.messages) == 1


async def test_a_server_without_auth_is_said_so_before_any_plaintext_advice(
    servers: ServerThread,
) -> None:
    """No AUTH offered: the words say so, not "allow plaintext" (which would lead here)."""
    port = servers.smtp(Sink())  # offers no AUTH on a plain connection
    for allowed in (False, True):
        report = await send(
            profile(port, username="alice", allow_plaintext_auth=allowed),
            message(),
            Secret(PASSWORD),
        )
        assert report.failure is not None and report.failure.stage is Stage.AUTH
        assert "does not offer authentication" in report.failure.explanation
        assert "unencrypted" not in report.failure.explanation
        assert report.failure.remedy is None
        assert not any(line.startswith("AUTH") for line in client_lines(report))


async def test_busy_greeting_is_temporary(servers: ServerThread) -> None:
    port = servers.smtp(Sink(), server_class=BusyGreetingSMTP)
    report = await send(profile(port), message())
    assert report.failure is not None and report.failure.stage is Stage.GREETING
    assert report.failure.code == 421 and report.failure.temporary
    assert "421" in server_lines(report)[0]


async def test_recipient_refusals_are_reported_per_recipient(servers: ServerThread) -> None:
    sink = Sink(
        rcpt_replies={
            "full@example.test": "452 4.2.2 Mailbox full",
            "nobody@example.test": "550 5.1.1 No such user",
        }
    )
    port = servers.smtp(sink)
    report = await send(
        profile(port),
        message(to=["bob@example.test", "full@example.test"], cc=["nobody@example.test"]),
    )
    assert report.ok and report.delivery is not None
    assert report.delivery.accepted == ["bob@example.test"]
    refused = {r.address: (r.code, r.temporary) for r in report.delivery.refused}
    assert refused == {"full@example.test": (452, True), "nobody@example.test": (550, False)}
    assert sink.messages[0].rcpt_tos == ["bob@example.test"]


@pytest.mark.parametrize(
    ("reply", "temporary"), [("450 4.2.0 Try later", True), ("550 5.1.1 Unknown", False)]
)
async def test_all_recipients_refused(servers: ServerThread, reply: str, temporary: bool) -> None:
    sink = Sink(rcpt_replies={"bob@example.test": reply})
    port = servers.smtp(sink)
    report = await send(profile(port), message())
    assert report.failure is not None and report.failure.stage is Stage.RCPT
    assert report.failure.temporary is temporary
    assert "refused every recipient" in report.failure.explanation
    assert "DATA" not in client_lines(report) and "RSET" in client_lines(report)
    assert not sink.messages


async def test_data_refused(servers: ServerThread) -> None:
    port = servers.smtp(Sink(data_reply="554 5.6.0 Message rejected as spam"))
    report = await send(profile(port), message())
    assert report.failure is not None and report.failure.stage is Stage.DATA
    assert report.failure.code == 554 and not report.failure.temporary


async def test_disconnect_after_data_is_possibly_delivered(servers: ServerThread) -> None:
    sink = Sink(disconnect_after_data=True)
    port = servers.smtp(sink)
    report = await send(profile(port), message())
    assert report.failure is not None and report.failure.stage is Stage.DATA
    assert report.failure.temporary and report.failure.possibly_delivered
    assert "may or may not have been delivered" in report.failure.explanation


async def test_replies_one_byte_at_a_time(servers: ServerThread) -> None:
    sink = Sink()
    port = servers.smtp(sink, server_class=ByteAtATimeSMTP)
    report = await send(profile(port), message())
    assert report.ok, report.failure
    assert any(line.startswith("250-") for line in server_lines(report))
    assert server_lines(report)[0].startswith("220 mx.test")
    assert len(sink.messages) == 1


async def test_message_larger_than_size_is_not_sent(servers: ServerThread) -> None:
    sink = Sink()
    port = servers.smtp(sink, data_size_limit=1000)
    report = await send(profile(port), message(body="x" * 5000))
    assert report.failure is not None and report.failure.stage is Stage.MAIL
    assert "the server accepts at most 1,000 bytes" in report.failure.explanation
    assert not any(line.startswith("MAIL") for line in client_lines(report))


async def test_non_ascii_address_needs_smtputf8(servers: ServerThread) -> None:
    plain = servers.smtp(Sink())
    report = await send(profile(plain), message(to=["jösé@example.test"]))
    assert report.failure is not None and report.failure.stage is Stage.MAIL
    assert "SMTPUTF8" in report.failure.explanation

    sink = Sink()
    utf8 = servers.smtp(sink, enable_SMTPUTF8=True)
    report = await send(profile(utf8), message(to=["jösé@example.test"]))
    assert report.ok, report.failure
    assert "SMTPUTF8" in sink.messages[0].mail_options
    assert sink.messages[0].rcpt_tos == ["jösé@example.test"]


async def test_closed_port_is_a_temporary_connect_failure(servers: ServerThread) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = await send(profile(port), message())
    assert report.failure is not None and report.failure.stage is Stage.CONNECT
    assert report.failure.temporary and "refused the connection" in report.failure.explanation


async def test_silent_server_times_out_at_greeting() -> None:
    import asyncio

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        report = await send(profile(port, timeout=0.5), message())
    finally:
        server.close()
    assert report.failure is not None and report.failure.stage is Stage.GREETING
    assert report.failure.temporary and "greeting" in report.failure.explanation


async def test_overall_deadline(servers: ServerThread) -> None:
    import asyncio

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220-slow\r\n")
        for _ in range(100):
            await asyncio.sleep(0.1)
            writer.write(b"220-still here\r\n")

    server = await asyncio.start_server(slow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        report = await send(profile(port, timeout=30), message(), deadline=0.5)
    finally:
        server.close()
    assert report.failure is not None and report.failure.temporary
    assert "did not finish within 0.5 seconds" in report.failure.explanation


async def test_check_account_sends_no_mail(servers: ServerThread, certs: Certs) -> None:
    sink = Sink()
    port = servers.smtp(sink, tls_context=certs.good, authenticator=password_checker(USERS))
    report = await check_account(
        profile(port, security="starttls", ca_file=str(certs.ca_file), username="alice"),
        Secret(PASSWORD),
    )
    assert report.ok, report.failure
    assert report.authenticated_as == "alice"
    assert not any(line.startswith(("MAIL", "DATA")) for line in client_lines(report))
    assert client_lines(report)[-1] == "QUIT"
    assert not sink.messages


async def test_many_messages_over_one_connection(servers: ServerThread) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    async with SMTPSession(profile(port)) as session:
        for i in range(5):
            await session.deliver(message(subject=f"n{i}"))
    assert len(sink.messages) == 5
    assert client_lines(session.report).count("QUIT") == 1
