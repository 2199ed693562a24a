"""The one opening of a client connection (tuimail/smtp_stepper.py): its rules and its stages.

The session and the probe both open connections through the stepper, so the
rules below hold for both: the tests run each rule once as a pure function,
then against real servers on 127.0.0.1 through both callers.
"""

from __future__ import annotations

import inspect
import ssl

import pytest

from tests.conftest import Certs
from tests.smtpservers import Reply, ScriptedServer, ServerThread, Sink
from tuimail import smtp_stepper
from tuimail.credentials import Secret
from tuimail.probe import ProbeTarget, probe
from tuimail.profiles import AuthMechanism, Profile, Security
from tuimail.session import SMTPSession, check_account
from tuimail.smtp_stepper import AuthRefusal, StageError, Stepper, auth_refusal, choose_mechanism
from tuimail.stages import Stage
from tuimail.tlsinfo import CertificateInfo, verifying_context
from tuimail.transcript import Direction, Transcript
from tuimail.wire import Endpoint, WireCapture

PASSWORD = "correct horse battery staple"
OFFERS_ALL = Reply("250-mx.test\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n250 8BITMIME")
CHALLENGE = Reply("334 PDEyMzQ1LjY3ODkwQG14LnRlc3Q+")


def _refusal(**changes: bool) -> AuthRefusal | None:
    settings = {
        "secure": True,
        "plaintext_allowed": False,
        "verify_tls": True,
        "verified": True,
        "inspecting": False,
    }
    settings.update(changes)
    return auth_refusal(**settings)


def test_the_password_goes_only_where_it_is_safe() -> None:
    assert _refusal() is None
    # Stripped STARTTLS (or no TLS) without the profile's explicit consent: never.
    assert _refusal(secure=False) is AuthRefusal.NOT_ENCRYPTED
    assert _refusal(secure=False, plaintext_allowed=True) is None
    # A connection opened to inspect a refused certificate: never, unless not verifying.
    assert _refusal(inspecting=True) is AuthRefusal.CERTIFICATE_REFUSED
    assert _refusal(inspecting=True, verify_tls=False) is None
    assert _refusal(verified=False) is AuthRefusal.CERTIFICATE_UNVERIFIED
    assert _refusal(verified=False, verify_tls=False) is None


def test_without_tls_the_mechanism_that_hides_the_password_comes_first() -> None:
    offered = ["plain", "login", "cram-md5"]
    assert choose_mechanism(AuthMechanism.AUTO, offered, secure=False) is AuthMechanism.CRAM_MD5
    assert choose_mechanism(AuthMechanism.AUTO, offered, secure=True) is AuthMechanism.PLAIN
    assert choose_mechanism(AuthMechanism.AUTO, ["login"], secure=False) is AuthMechanism.LOGIN
    assert choose_mechanism(AuthMechanism.LOGIN, ["plain"], secure=True) is None
    assert choose_mechanism(AuthMechanism.AUTO, ["xoauth2"], secure=True) is None


def _plaintext_profile(port: int) -> Profile:
    return Profile(
        name="t",
        host="127.0.0.1",
        port=port,
        security=Security.NONE,
        timeout=5.0,
        username="alice",
        allow_plaintext_auth=True,
    )


def _auth_lines(server: ScriptedServer) -> list[str]:
    return [line for line in server.commands if line.upper().startswith("AUTH")]


async def test_session_and_probe_pick_the_same_mechanism_without_tls(
    servers: ServerThread,
) -> None:
    """Without TLS both prefer CRAM-MD5 (the probe used to try PLAIN first)."""
    server = ScriptedServer({"EHLO": OFFERS_ALL, "AUTH": CHALLENGE})
    port = servers.scripted(server)
    profile = _plaintext_profile(port)
    await check_account(profile, Secret(PASSWORD))
    await probe(ProbeTarget.from_profile(profile), Secret(PASSWORD))
    assert _auth_lines(server) == ["AUTH CRAM-MD5", "AUTH CRAM-MD5"]
    assert not any(PASSWORD in line for line in server.commands)


async def test_each_stage_is_timed_and_a_failure_names_its_stage(servers: ServerThread) -> None:
    """EHLO refused: the stage error says ehlo, and connect and greeting were timed apart."""
    server = ScriptedServer({"EHLO": Reply("554 5.5.1 no"), "HELO": Reply("554 5.5.1 no")})
    port = servers.scripted(server)
    stepper = Stepper(WireCapture(Transcript()), _plain_endpoint(port))
    try:
        greeting = await stepper.connect()
        assert greeting.code == 220
        with pytest.raises(StageError) as caught:
            await stepper.greet(helo_fallback=True)
    finally:
        stepper.close()
    assert caught.value.stage is Stage.EHLO
    assert set(stepper.timings) == {Stage.CONNECT, Stage.GREETING, Stage.EHLO}
    assert [line.split()[0] for line in server.commands] == ["EHLO", "HELO"]


async def test_a_refused_connection_fails_at_connect() -> None:
    """Nothing listens: the stage is connect, and no other stage was entered."""
    stepper = Stepper(WireCapture(Transcript()), _plain_endpoint(_unused_port()))
    with pytest.raises(StageError) as caught:
        await stepper.connect()
    stepper.close()
    assert caught.value.stage is Stage.CONNECT
    assert list(stepper.timings) == [Stage.CONNECT]


def _plain_endpoint(port: int) -> Endpoint:
    return Endpoint(
        "127.0.0.1",
        port,
        implicit_tls=False,
        tls_context=None,
        timeout=5.0,
        ehlo_name="client.test",
    )


def _unused_port() -> int:
    import socket

    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return int(probe_socket.getsockname()[1])


def _tls_endpoint(port: int, context: ssl.SSLContext) -> Endpoint:
    return Endpoint(
        "127.0.0.1", port, implicit_tls=True, tls_context=context, timeout=5.0, ehlo_name="c.test"
    )


async def test_implicit_tls_handshake_and_greeting_are_timed_apart(
    servers: ServerThread, certs: Certs
) -> None:
    port = servers.smtp(Sink(), implicit_tls=certs.good)
    seen: list[ssl.SSLObject] = []
    transcript = Transcript()
    context = verifying_context(str(certs.ca_file))
    stepper = Stepper(WireCapture(transcript), _tls_endpoint(port, context), on_tls=seen.append)
    try:
        await stepper.connect()
    finally:
        stepper.close()
    assert list(stepper.timings) == [Stage.CONNECT, Stage.TLS, Stage.GREETING]
    assert len(seen) == 1  # the TLS session was reported as soon as it was up
    greeting = [e for e in transcript.entries if e.direction is Direction.SERVER]
    assert greeting and greeting[0].text.startswith("220") and greeting[0].secure


@pytest.mark.parametrize("look", [True, False])
async def test_a_refused_certificate_is_looked_at_in_the_tls_stage_only_when_asked(
    servers: ServerThread, certs: Certs, look: bool
) -> None:
    """The look (a second connection) happens in the stage; the translation gets it as data."""
    port = servers.smtp(Sink(), implicit_tls=certs.expired)
    translated: list[StageError] = []

    def translate(failure: StageError) -> StageError:
        translated.append(failure)
        return failure

    context = verifying_context(str(certs.ca_file))
    stepper = Stepper(
        WireCapture(Transcript()),
        _tls_endpoint(port, context),
        translate=translate,
        inspect_refused_certificate=look,
    )
    with pytest.raises(StageError):
        await stepper.connect()
    stepper.close()
    assert [failure.stage for failure in translated] == [Stage.TLS]
    certificate = translated[0].certificate
    if look:
        assert certificate is not None and certificate.days_left() < 0
    else:
        assert certificate is None


def test_the_session_classifier_is_pure() -> None:
    """Classifying a failure never waits on the network: it is not even a coroutine."""
    assert not inspect.iscoroutinefunction(SMTPSession._classify)


async def test_after_starttls_the_look_at_a_refused_certificate_is_not_charged_to_tls(
    servers: ServerThread, certs: Certs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TLS clock stops before the second connection opens: its time is nobody's stage."""
    port = servers.smtp(Sink(), tls_context=certs.expired)
    clocks_at_look: list[dict[Stage, float]] = []
    real_look = smtp_stepper.look_at_certificate

    async def watched_look(endpoint: Endpoint) -> CertificateInfo | None:
        clocks_at_look.append(dict(stepper.timings))
        return await real_look(endpoint)

    # Watched, not replaced: the real look still connects to the real server.
    monkeypatch.setattr(smtp_stepper, "look_at_certificate", watched_look)
    context = verifying_context(str(certs.ca_file))
    endpoint = Endpoint(
        "127.0.0.1", port, implicit_tls=False, tls_context=context, timeout=5.0, ehlo_name="c"
    )
    stepper = Stepper(WireCapture(Transcript()), endpoint, inspect_refused_certificate=True)
    try:
        await stepper.connect()
        await stepper.greet()
        with pytest.raises(StageError) as raised:
            await stepper.starttls()
    finally:
        stepper.close()
    assert raised.value.stage is Stage.TLS
    certificate = raised.value.certificate
    assert certificate is not None and certificate.days_left() < 0  # the look saw it
    # The handshake's time was charged when it failed, before the look began ...
    assert len(clocks_at_look) == 1 and Stage.TLS in clocks_at_look[0]
    # ... and nothing was added to it afterwards.
    assert stepper.timings[Stage.TLS] == clocks_at_look[0][Stage.TLS]
