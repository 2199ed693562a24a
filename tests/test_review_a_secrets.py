"""A server that echoes the password back must not get it written anywhere.

A hostile or merely careless server may quote what it was sent in its
refusal (``535 bad credentials for user/password``). The transcript masks
the password in every line; the probe also quotes replies in its reasons,
its AUTH result, its Nagios line, its JSON and the probe history file.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_helpers import find_leaks
from tests.smtpservers import Reply, ScriptedServer, ServerThread
from tuimail.credentials import Secret
from tuimail.probe import ProbeTarget, Status, probe
from tuimail.probe_history import ProbeHistory
from tuimail.profiles import Profile, Security

PASSWORD = "S3cret-Echo-77"
ECHO_EHLO = Reply("250-mx.test\r\n250-AUTH PLAIN LOGIN\r\n250 PIPELINING")


async def test_a_probe_refused_with_the_password_quoted_keeps_it_out_of_every_output(
    servers: ServerThread, tmp_path: Path
) -> None:
    server = ScriptedServer(
        {"EHLO": ECHO_EHLO, "AUTH": Reply(f"535 5.7.8 bad credentials for u/{PASSWORD}")}
    )
    port = servers.scripted(server)
    profile = Profile(
        name="echo", host="127.0.0.1", port=port, security=Security.NONE,
        username="u", allow_plaintext_auth=True, timeout=10,
    )  # fmt: skip
    report = await probe(ProbeTarget.from_profile(profile), Secret(PASSWORD))
    assert any(verb == "AUTH" for verb in server.verbs())  # the password was tried
    assert report.status is Status.CRITICAL
    history = ProbeHistory(tmp_path / "history.json")
    history.add(report)
    history.save()
    outputs = {
        "json": json.dumps(report.to_json()).encode(),
        "nagios": report.nagios().encode(),
        "summary": report.summary().encode(),
        "auth": report.auth.encode(),
        "history": (tmp_path / "history.json").read_bytes(),
    }
    assert find_leaks(PASSWORD, outputs) == []
    assert "bad credentials" in report.auth


async def test_a_temporary_auth_refusal_quoting_the_password_is_masked_in_the_json(
    servers: ServerThread,
) -> None:
    server = ScriptedServer({"EHLO": ECHO_EHLO, "AUTH": Reply(f"454 4.7.0 later, {PASSWORD}")})
    port = servers.scripted(server)
    profile = Profile(
        name="echo", host="127.0.0.1", port=port, security=Security.NONE,
        username="u", allow_plaintext_auth=True, timeout=10,
    )  # fmt: skip
    report = await probe(ProbeTarget.from_profile(profile), Secret(PASSWORD))
    assert find_leaks(PASSWORD, {"json": json.dumps(report.to_json()).encode()}) == []


async def test_a_tls_handshake_that_times_out_says_so() -> None:
    """A timeout's own text is empty: the reason once read "the TLS handshake failed: "."""
    import asyncio

    held: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept, then say nothing: no TLS ServerHello ever comes

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        target = ProbeTarget(host="127.0.0.1", port=port, security=Security.TLS, timeout=0.5)
        report = await probe(target)
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    assert report.status is Status.CRITICAL
    assert "the TLS handshake failed: no answer within 0.5 seconds" in report.reasons


def test_the_probes_host_name_check_is_no_looser_than_openssls() -> None:
    """The probe sends the password on this answer: it must not match where a client would not."""
    from datetime import UTC, datetime

    from tuimail.tlsinfo import CertificateInfo
    from tuimail.trust import hostname_matches

    def cert(*names: str) -> CertificateInfo:
        now = datetime.now(UTC)
        return CertificateInfo("CN=x", "CN=ca", names, now, now)

    assert not hostname_matches(cert("*.0.0.1"), "127.0.0.1")
    assert not hostname_matches(cert("*.com"), "example.com")
    assert hostname_matches(cert("127.0.0.1"), "127.0.0.1")
    assert hostname_matches(cert("::1"), "0:0::1")
    assert hostname_matches(cert("*.example.com"), "mail.example.com")
    assert not hostname_matches(cert("*.example.com"), "example.com")
    assert hostname_matches(cert("MAIL.example.com."), "mail.EXAMPLE.com")
