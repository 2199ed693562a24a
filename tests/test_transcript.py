"""The transcript sees the wire exactly, redacts credentials, and stays bounded."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from tests.conftest import Certs
from tests.smtpservers import ServerThread, Sink, password_checker
from tuimail import transcript as transcript_module
from tuimail.credentials import Secret
from tuimail.message import Draft, build_message
from tuimail.profiles import AuthMechanism, Profile, Security
from tuimail.session import send
from tuimail.transcript import (
    REDACTED,
    ConversationRedactor,
    Direction,
    EventKind,
    Transcript,
    secret_forms,
)
from tuimail.wire import CaptureLost, TranscribingProtocol

PASSWORD = "pa55-word-for-wire"


class RecordingProxy:
    """A TCP relay on loopback that keeps every byte in each direction."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.upstream = bytearray()  # client -> server
        self.downstream = bytearray()  # server -> client
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pump(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, record: bytearray
        ) -> None:
            while data := await source.read(65536):
                record.extend(data)
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(
            pump(reader, up_writer, self.upstream), pump(up_reader, writer, self.downstream)
        )

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def lines(data: bytes) -> list[str]:
    return [line.decode() for line in data.split(b"\r\n") if line]


async def test_capture_matches_the_bytes_on_the_wire(servers: ServerThread) -> None:
    """If aiosmtplib changes so the capture misses lines, this fails loudly."""
    port = servers.smtp(
        Sink(), auth_require_tls=False, authenticator=password_checker({"u": PASSWORD})
    )
    proxy = RecordingProxy(port)
    proxy_port = await proxy.start()
    try:
        profile = Profile(
            name="wire", host="127.0.0.1", port=proxy_port, security=Security.NONE, username="u",
            allow_plaintext_auth=True, auth_mechanism=AuthMechanism.LOGIN, timeout=5,
        )  # fmt: skip
        outgoing = build_message(Draft(from_address="a@example.test", to=["b@example.test"]))
        report = await send(profile, outgoing, Secret(PASSWORD))
    finally:
        proxy.close()
    assert report.ok, report.failure
    server_seen = [e.text for e in report.transcript if e.direction is Direction.SERVER]
    assert server_seen == lines(bytes(proxy.downstream))

    client_seen = [e.text for e in report.transcript if e.direction is Direction.CLIENT]
    on_wire = lines(bytes(proxy.upstream))
    data_start = on_wire.index("DATA") + 1
    data_end = len(on_wire) - 1 - on_wire[::-1].index(".")
    expected = [*on_wire[:data_start], "<content>", *on_wire[data_end + 1 :]]
    recorded = [("<content>" if t.startswith("[message content:") else t) for t in client_seen]
    # Same lines in the same order; AUTH data masked where the wire had credentials.
    assert len(recorded) == len(expected)
    for seen, real in zip(recorded, expected, strict=True):
        assert seen == real or (REDACTED in seen and seen != real)
    assert recorded.count(REDACTED) == 1 and "AUTH LOGIN " + REDACTED in recorded


async def test_a_capture_that_goes_blind_is_an_error(
    servers: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulate an aiosmtplib that bypasses our hook: the session must not pretend."""
    from aiosmtplib.protocol import SMTPProtocol

    monkeypatch.setattr(TranscribingProtocol, "data_received", SMTPProtocol.data_received)
    port = servers.smtp(Sink())
    profile = Profile(name="blind", host="127.0.0.1", port=port, security=Security.NONE, timeout=5)
    outgoing = build_message(Draft(from_address="a@example.test", to=["b@example.test"]))
    with pytest.raises(CaptureLost):
        await send(profile, outgoing)


async def test_starttls_transcript_marks_secure_lines(servers: ServerThread, certs: Certs) -> None:
    port = servers.smtp(Sink(), tls_context=certs.good)
    profile = Profile(
        name="t",
        host="127.0.0.1",
        port=port,
        security=Security.STARTTLS,
        ca_file=str(certs.ca_file),
    )
    outgoing = build_message(Draft(from_address="a@example.test", to=["b@example.test"]))
    report = await send(profile, outgoing)
    text = report.transcript.to_text()
    assert " -> STARTTLS" in text and " ~> MAIL FROM:<a@example.test>" in text
    assert "<~  250" in text and "<-  220" in text
    assert "=== TLS established: TLSv1." in text


@pytest.mark.parametrize(
    ("exchange", "expected"),
    [
        # (direction, line) pairs; expected client lines as recorded
        ([("c", "AUTH PLAIN AGFsaWNlAHNlY3JldA=="), ("s", "235 ok")], ["AUTH PLAIN " + REDACTED]),
        (
            [("c", "AUTH PLAIN"), ("s", "334 "), ("c", "AGFsaWNlAHNlY3JldA=="), ("s", "235 ok")],
            ["AUTH PLAIN", REDACTED],
        ),
        (
            [
                ("c", "AUTH LOGIN YWxpY2U="),
                ("s", "334 UGFzc3dvcmQ6"),
                ("c", "c2VjcmV0"),
                ("s", "235 ok"),
            ],
            ["AUTH LOGIN " + REDACTED, REDACTED],
        ),
        (
            [
                ("c", "AUTH CRAM-MD5"),
                ("s", "334 PDEyMzQ1QGV4YW1wbGU+"),
                ("c", "YWxpY2UgOWQ="),
                ("s", "535 no"),
            ],
            ["AUTH CRAM-MD5", REDACTED],
        ),
        (
            [
                ("c", "AUTH XOAUTH2 dXNlcj1h"),
                ("s", "334 eyJzdGF0dXMiOiI0MDEifQ=="),
                ("c", ""),
                ("s", "535 no"),
            ],
            ["AUTH XOAUTH2 " + REDACTED, REDACTED],
        ),
        (
            [("c", "AUTH LOGIN"), ("s", "334 VXNlcm5hbWU6"), ("c", "*"), ("s", "501 cancelled")],
            ["AUTH LOGIN", "*"],
        ),
        (
            [("c", "MAIL FROM:<a@b>"), ("s", "250 ok"), ("c", "RCPT TO:<c@d>")],
            ["MAIL FROM:<a@b>", "RCPT TO:<c@d>"],
        ),
    ],
)
def test_redactor_masks_sasl(exchange: list[tuple[str, str]], expected: list[str]) -> None:
    redactor = ConversationRedactor()
    recorded = []
    for direction, line in exchange:
        if direction == "s":
            redactor.server_line(line)
        else:
            result = redactor.client_line(line)
            assert result is not None
            recorded.append(result[0])
    assert recorded == expected


def test_redactor_summarises_data_line_by_line() -> None:
    """The sandbox sees DATA as lines; it summarises them the same way."""
    redactor = ConversationRedactor()
    redactor.server_line("354 go ahead")
    assert redactor.client_line("Subject: secret plans") is None
    assert redactor.client_line("") is None
    assert redactor.client_line("..dot-stuffed") is None
    summary = redactor.client_line(".")
    assert summary == ("[message content: 40 bytes, 3 lines] .", False)
    assert redactor.client_line("QUIT") == ("QUIT", False)


def test_forbidden_secrets_are_scrubbed_from_any_line() -> None:
    transcript = Transcript()
    transcript.forbid("hunter2")
    import base64

    plain = base64.b64encode(b"\0bob\0hunter2").decode()
    entry = transcript.add(Direction.CLIENT, f"XYZZY {plain} and hunter2")
    assert entry is not None and entry.redacted
    assert "hunter2" not in entry.text and plain not in entry.text
    assert all(form not in entry.text for form in secret_forms("hunter2"))


def test_transcript_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transcript_module, "MAX_ENTRIES", 10)
    seen: list[Any] = []
    transcript = Transcript()
    transcript.subscribe(seen.append)
    for i in range(50):
        transcript.add(Direction.SERVER, f"250-line {i}")
    assert len(transcript) == 11
    assert transcript.entries[-1].kind is EventKind.TRIMMED
    assert seen == transcript.entries
    long = Transcript().add(Direction.SERVER, "x" * 10_000)
    assert long is not None and len(long.text) < 2100 and "more characters" in long.text


def test_exports_text_and_json_lines() -> None:
    transcript = Transcript()
    transcript.event(EventKind.CONNECTED, "connected to 127.0.0.1:25", address="127.0.0.1")
    transcript.add(Direction.SERVER, "220 hi")
    transcript.add(Direction.CLIENT, "EHLO me")
    transcript.add(Direction.CLIENT, "MAIL FROM:<a@b>", secure=True)
    transcript.add(Direction.SERVER, "250 ok", secure=True)
    text = transcript.to_text().splitlines()
    assert text[0].endswith("=== connected to 127.0.0.1:25")
    assert text[1].endswith("<-  220 hi") and text[2].endswith(" -> EHLO me")
    assert text[3].endswith(" ~> MAIL FROM:<a@b>") and text[4].endswith("<~  250 ok")
    records = [json.loads(line) for line in transcript.to_jsonl().splitlines()]
    assert [r["dir"] for r in records] == ["event", "server", "client", "client", "server"]
    assert records[0]["data"] == {"address": "127.0.0.1"} and records[3]["tls"] is True
    assert transcript.entries[1].reply_code == 220


async def test_hostile_control_characters_are_escaped() -> None:
    async def evil(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 hi \x1b[2J\x1b]0;pwned\x07 there\r\n")
        await reader.readline()
        writer.write(b"250 ok\r\n")
        await reader.readline()
        writer.close()

    server = await asyncio.start_server(evil, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        profile = Profile(
            name="evil", host="127.0.0.1", port=port, security=Security.NONE, timeout=2
        )
        report = await send(profile, build_message(Draft(from_address="a@x.test", to=["b@x.test"])))
    finally:
        server.close()
    greeting = next(e.text for e in report.transcript if e.direction is Direction.SERVER)
    assert "\x1b" not in greeting and "\\x1b[2J" in greeting


def test_jsonl_round_trip() -> None:
    transcript = Transcript()
    transcript.event(EventKind.TLS, "TLS established", secure=True, version="TLSv1.3")
    transcript.add(Direction.CLIENT, "AUTH PLAIN ********", secure=True, redacted=True)
    transcript.add(Direction.SERVER, "235 ok", secure=True)
    again = Transcript.from_jsonl(transcript.to_jsonl())
    assert again.entries == [
        type(e)(round(e.elapsed, 6), e.direction, e.text, e.secure, e.kind, e.redacted, e.data)
        for e in transcript.entries
    ]


class InjectingStartTLSSMTP(SMTP):
    """Answers STARTTLS with its 220 and, in the same write, plaintext a MITM added."""

    injected = b"250-injected in plaintext"

    async def push(self, status: Any) -> None:
        text = status.decode() if isinstance(status, bytes) else status
        if text.startswith("220 Ready to start TLS"):
            self._writer.write(text.encode() + b"\r\n" + self.injected)
            await self._writer.drain()
            return
        await super().push(status)


class InjectingLineStartTLSSMTP(InjectingStartTLSSMTP):
    injected = b"250-injected in plaintext\r\n"


@pytest.mark.parametrize(
    "server_class", [InjectingStartTLSSMTP, InjectingLineStartTLSSMTP], ids=["no CRLF", "CRLF"]
)
async def test_plaintext_after_the_starttls_220_is_not_shown_inside_tls(
    servers: ServerThread, certs: Certs, server_class: type[SMTP]
) -> None:
    """aiosmtplib discards it; the transcript shows it as plaintext and says so."""
    port = servers.smtp(Sink(), server_class=server_class, tls_context=certs.good)
    profile = Profile(
        name="t", host="127.0.0.1", port=port, security=Security.STARTTLS,
        ca_file=str(certs.ca_file),
    )  # fmt: skip
    outgoing = build_message(Draft(from_address="a@example.test", to=["b@example.test"]))
    report = await send(profile, outgoing)
    entries = [e for e in report.transcript if "injected" in e.text]
    assert [e.secure for e in entries] == [False], entries
    assert entries[0].text == "250-injected in plaintext"
    assert any(e.kind is EventKind.WARNING and "discarded" in e.text for e in report.transcript)
    secure_replies = [e for e in report.transcript if e.direction is Direction.SERVER and e.secure]
    assert secure_replies and all(e.text[:3].isdigit() for e in secure_replies)


@pytest.mark.parametrize(
    ("in_order", "expected"),
    [(True, ["AUTH CRAM-MD5", "QUIT"]), (False, ["AUTH CRAM-MD5", REDACTED])],
    ids=["client side", "server side"],
)
def test_an_auth_refused_at_once_ends_the_exchange_only_when_replies_are_in_order(
    in_order: bool, expected: list[str]
) -> None:
    """A client's own recorder knows the 504 answers the AUTH; a server-side one cannot
    tell it from the answer to an earlier pipelined command, and masks on the safe side."""
    redactor = ConversationRedactor(replies_in_order=in_order)
    recorded = [redactor.client_line("AUTH CRAM-MD5")]
    redactor.server_line("504 5.5.4 Unrecognized authentication type")
    recorded.append(redactor.client_line("QUIT"))
    assert [r[0] for r in recorded if r is not None] == expected


def test_pipelined_sasl_responses_are_masked_before_any_334() -> None:
    """The sandbox sees a pipelining client's responses before it has answered the AUTH."""
    redactor = ConversationRedactor()
    lines = ["EHLO a", "AUTH LOGIN", "dXNlcg==", "cGFzcw==", "MAIL FROM:<a@b>"]
    recorded = [redactor.client_line(line) for line in lines]
    for reply in ("250 ok", "334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "235 ok", "250 ok"):
        redactor.server_line(reply)
    assert [r[0] for r in recorded if r is not None] == [
        "EHLO a", "AUTH LOGIN", REDACTED, REDACTED, "MAIL FROM:<a@b>",
    ]  # fmt: skip
    assert redactor.client_line("RCPT TO:<c@d>") == ("RCPT TO:<c@d>", False)
    # "=" is an empty initial response: the response itself may still follow.
    assert redactor.client_line("AUTH PLAIN =") == (f"AUTH PLAIN {REDACTED}", True)
    assert redactor.client_line("AGFsaWNlAHNlY3JldA==") == (REDACTED, True)
