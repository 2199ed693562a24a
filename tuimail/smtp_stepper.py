"""Connect, greet, secure and authenticate: the opening of every SMTP client connection.

The session (tuimail/session.py) and the probe (tuimail/probe.py) open a
connection the same way, through :class:`Stepper`, so the rules of that
opening hold in one place:

* each step runs as a :class:`~tuimail.stages.Stage`, timed from the moment
  it starts until the next one starts (a failed or silent step still counts
  the time it waited), and any error it raises becomes a :class:`StageError`
  naming the stage, handed to the caller's ``translate``;
* when the TLS handshake refuses the certificate, the stage that ran the
  handshake looks at that certificate (on a second connection, opened by a
  non-verifying :class:`Stepper` of its own, untimed) so the failure can say
  what was wrong; classifying an error never touches the network;
* STARTTLS is required where asked for: a missing or refused STARTTLS is a
  failure, never a silent fall back to plaintext, and EHLO is asked again
  once TLS is up (RFC 3207);
* the password goes only over a connection whose certificate and host name
  were verified, or one whose profile says not to verify, or in clear where
  the profile has no TLS and explicitly allows it; never over a STARTTLS
  stripped on the way, never on a connection opened to inspect a refused
  certificate (:func:`auth_refusal`);
* without TLS the mechanism that does not reveal the password (CRAM-MD5)
  comes first, a bearer token goes only by a mechanism made for tokens
  (OAUTHBEARER, else XOAUTH2), and a refused AUTH is never retried with
  another mechanism (:func:`choose_mechanism`);
* a token the server refused as expired (its error challenge says so) is
  renewed once and tried once more; never a loop (:meth:`Stepper.authenticate`).

Words are not chosen here: the session and the probe each say a
:class:`StageError` in their own terms (a failure to send, a Nagios state).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import ssl
import time
from collections.abc import AsyncIterator, Callable

from aiosmtplib import SMTPResponse
from aiosmtplib.errors import SMTPHeloError, SMTPNotSupported

from tuimail.bearer import BearerToken, TokenRefused, TokenRenewalFailed
from tuimail.credentials import Secret
from tuimail.errors import TuimailError
from tuimail.profiles import AuthMechanism
from tuimail.stages import Stage
from tuimail.tlsinfo import CertificateInfo, certificate_from_der, find_verification_error
from tuimail.transcript import EventKind, Transcript
from tuimail.wire import Endpoint, TranscribingSMTP, WireCapture

#: The look at a refused certificate takes at most this, or the endpoint's timeout if shorter.
LOOK_TIMEOUT = 10.0

#: With TLS: the simplest mechanism first, the connection already hides the password.
_ORDER_SECURE = (AuthMechanism.PLAIN, AuthMechanism.LOGIN, AuthMechanism.CRAM_MD5)
#: Without TLS: the mechanism that does not reveal the password first.
_ORDER_PLAIN = (AuthMechanism.CRAM_MD5, AuthMechanism.PLAIN, AuthMechanism.LOGIN)
#: A bearer token: the standard mechanism first, Google's and Microsoft's where it is all there is.
_ORDER_TOKEN = (AuthMechanism.OAUTHBEARER, AuthMechanism.XOAUTH2)


class StageError(TuimailError):
    """A stage stopped: which one, the error that stopped it, and the refused certificate.

    ``certificate`` is set only when the TLS handshake refused the server's
    certificate and the stepper was asked to look at it.
    """

    def __init__(
        self, stage: Stage, error: BaseException, certificate: CertificateInfo | None = None
    ) -> None:
        super().__init__(f"{stage.value}: {error}")
        self.stage = stage
        self.error = error
        self.certificate = certificate


class AuthRefusal(enum.Enum):
    """Why the password was not sent."""

    #: The connection is not encrypted and the profile does not allow that.
    NOT_ENCRYPTED = "not encrypted"
    #: This connection was opened only to inspect a refused certificate.
    CERTIFICATE_REFUSED = "certificate refused"
    #: TLS is up but its certificate or host name was not verified.
    CERTIFICATE_UNVERIFIED = "certificate not verified"
    #: The server's EHLO offers no AUTH at all.
    NOT_OFFERED = "not offered"
    #: The server offers no mechanism the profile allows.
    NO_MECHANISM = "no mechanism"
    #: The profile names a user but no password is available.
    NO_PASSWORD = "no password"


class AuthNotAttempted(TuimailError):
    """The password was not sent, for ``reason``; ``offered`` is what the server listed.

    ``token``: the credential was a bearer token, for the words of
    :attr:`AuthRefusal.NO_MECHANISM` (no token mechanism, not no password one).
    """

    def __init__(
        self, reason: AuthRefusal, offered: tuple[str, ...] = (), *, token: bool = False
    ) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.offered = offered
        self.token = token


def auth_refusal(
    *, secure: bool, plaintext_allowed: bool, verify_tls: bool, verified: bool, inspecting: bool
) -> AuthRefusal | None:
    """Why the password must not go over this connection, or ``None`` when it may.

    ``secure``: TLS is up on this connection (a STARTTLS stripped on the way
    leaves it ``False``). ``plaintext_allowed``: the profile has no TLS and
    says so explicitly. ``verified``: the chain and the host name were
    checked. ``inspecting``: the connection was opened to look at a
    certificate that a verifying handshake refused; on its other end may be
    whoever made the verification fail, so only a profile that says not to
    verify (for which it is exactly the kind of connection it sends mail
    over) authenticates there.
    """
    if not secure:
        return None if plaintext_allowed else AuthRefusal.NOT_ENCRYPTED
    if not verify_tls:
        return None
    if inspecting:
        return AuthRefusal.CERTIFICATE_REFUSED
    if not verified:
        return AuthRefusal.CERTIFICATE_UNVERIFIED
    return None


def choose_mechanism(
    wanted: AuthMechanism, offered: list[str], *, secure: bool, token: bool = False
) -> AuthMechanism | None:
    """The mechanism to use, or ``None`` when the server offers none that fits.

    A mechanism the profile names is used only if offered. ``auto`` chooses
    by the credential: a ``token`` goes by OAUTHBEARER when offered, else
    XOAUTH2 (never as a password); a password prefers CRAM-MD5 without TLS,
    so the password itself does not cross the wire, and never goes by a
    token mechanism.
    """
    if wanted is not AuthMechanism.AUTO:
        return wanted if wanted.value in offered else None
    if token:
        return next((m for m in _ORDER_TOKEN if m.value in offered), None)
    order = _ORDER_SECURE if secure else _ORDER_PLAIN
    return next((m for m in order if m.value in offered), None)


class Stepper:
    """One transcribed connection, opened step by step; each step a timed stage.

    ``translate`` turns a :class:`StageError` into what the caller raises (the
    session's :class:`~tuimail.session.SessionFailure`); by default the
    :class:`StageError` itself is raised. ``inspect_refused_certificate``: on
    a refused certificate, look at it before translating (the session does;
    the probe inspects on a connection of its own).
    """

    def __init__(
        self,
        capture: WireCapture,
        endpoint: Endpoint,
        *,
        on_tls: Callable[[ssl.SSLObject], None] | None = None,
        translate: Callable[[StageError], BaseException] | None = None,
        inspect_refused_certificate: bool = False,
    ) -> None:
        self.smtp = TranscribingSMTP(capture, endpoint, on_tls, on_part=self.enter)
        self.endpoint = endpoint
        self._translate = translate
        self._inspect = inspect_refused_certificate
        #: Seconds spent in each stage; a stage entered twice (EHLO) adds up.
        self.timings: dict[Stage, float] = {}
        #: The stage running now, or the last one when the clock is stopped.
        self.stage = Stage.CONNECT
        self._since: float | None = None
        #: The AUTH mechanism chosen, once :meth:`authenticate` has chosen one.
        self.mechanism: AuthMechanism | None = None

    # -- the clock and the stage context -------------------------------------

    def enter(self, stage: Stage) -> None:
        """Charge the time so far to the running stage and start ``stage``."""
        self.stop_clock()
        self.stage, self._since = stage, time.monotonic()

    def stop_clock(self) -> None:
        """Charge the time so far to the running stage; nothing runs until the next one."""
        if self._since is not None:
            now = time.monotonic()
            self.timings[self.stage] = self.timings.get(self.stage, 0.0) + now - self._since
            self._since = None

    @contextlib.asynccontextmanager
    async def running(self, stage: Stage) -> AsyncIterator[None]:
        """Run the block as ``stage``: timed, and any error it raises said as a stage error.

        Cancellation and tuimail's own errors (already said: a
        :class:`StageError`, what ``translate`` made of one, a lost capture)
        pass as they are.
        """
        self.enter(stage)
        try:
            yield
        except TuimailError:
            raise
        except Exception as exc:
            raise await self.failed(stage, exc) from None

    async def failed(self, stage: Stage, exc: BaseException) -> BaseException:
        """``exc``, raised during ``stage``, as the caller raises it.

        A refused certificate is looked at here, where the handshake ran,
        so that translating it needs no network; the stage's clock stops
        first, so the look is not charged to the handshake.
        """
        certificate = None
        if self._inspect and find_verification_error(exc) is not None:
            self.stop_clock()
            certificate = await look_at_certificate(self.endpoint)
        failure = StageError(stage, exc, certificate)
        return failure if self._translate is None else self._translate(failure)

    async def decided_before(self, stage: Stage, error: BaseException) -> BaseException:
        """``error`` decided before ``stage`` began: the stage fails with no exchange and no time."""
        self.stop_clock()
        self.stage = stage
        return await self.failed(stage, error)

    # -- the steps -------------------------------------------------------------

    async def connect(self) -> SMTPResponse:
        """TCP connect, implicit TLS if asked, and the greeting, each timed apart.

        A failure names the stage it stopped in (connect, tls or greeting).
        The wire tells when each part starts (:meth:`enter`); a part that
        fails keeps its clock running until here, so a greeting that never
        came still shows as a slow greeting, never as a fast probe.
        """
        try:
            greeting = await self.smtp.open()
        except TuimailError:
            raise
        except Exception as exc:
            raise await self.failed(self.stage, exc) from None
        self.stop_clock()
        return greeting

    async def greet(self, *, helo_fallback: bool = False) -> dict[str, str]:
        """EHLO; with ``helo_fallback``, HELO when EHLO is refused for good. Returns the capabilities."""
        smtp = self.smtp
        async with self.running(Stage.EHLO):
            try:
                await smtp.ehlo()
            except SMTPHeloError as exc:
                if not (helo_fallback and exc.code >= 500 and smtp.is_connected):
                    raise
                await smtp.helo()
        return dict(smtp.esmtp_extensions)

    async def starttls(self) -> None:
        """STARTTLS, required: not offered or refused is a TLS stage error.

        The caller greets again afterwards: what the server said before TLS
        no longer counts.
        """
        smtp = self.smtp
        if not smtp.supports_extension("starttls"):
            raise await self.decided_before(Stage.TLS, SMTPNotSupported("STARTTLS is not offered"))
        async with self.running(Stage.TLS):
            await smtp.starttls(
                server_hostname=self.endpoint.host, tls_context=self.endpoint.tls_context
            )
            smtp.mark_secure()

    async def authenticate(
        self,
        username: str,
        password: Secret | None,
        *,
        wanted: AuthMechanism,
        plaintext_allowed: bool,
        verify_tls: bool,
        verified: bool,
        inspecting: bool = False,
    ) -> AuthMechanism:
        """AUTH once with the chosen mechanism, if this connection may carry the password.

        Raises a stage error whose error is :class:`AuthNotAttempted` when the
        password was not sent, or the server's refusal
        (:class:`~aiosmtplib.errors.SMTPAuthenticationError`; for a token,
        :class:`~tuimail.bearer.TokenRefused` with the server's challenge).
        A :class:`~tuimail.bearer.BearerToken` is a token (``auto`` picks a
        token mechanism for it); a token refused as expired is renewed once
        and sent once more (:meth:`_authenticate_bearer`). Returns the
        mechanism used; :attr:`mechanism` names it once chosen, for the words
        of a refusal.
        """
        smtp = self.smtp
        secure = smtp.capture.secure
        offered = tuple(m.lower() for m in smtp.server_auth_methods)
        refusal = auth_refusal(
            secure=secure,
            plaintext_allowed=plaintext_allowed,
            verify_tls=verify_tls,
            verified=verified,
            inspecting=inspecting,
        )
        # A plaintext server that offers no AUTH is said so rather than advising
        # to allow plaintext AUTH, which would only lead to "not offered" once
        # followed. A refused certificate is still said first: it is the
        # problem to fix whatever the server offers.
        not_offered = not smtp.supports_extension("auth")
        if not_offered and refusal in (None, AuthRefusal.NOT_ENCRYPTED):
            refusal = AuthRefusal.NOT_OFFERED
        mechanism = None
        token = isinstance(password, BearerToken)
        if refusal is None:
            mechanism = choose_mechanism(wanted, list(offered), secure=secure, token=token)
            if mechanism is None:
                refusal = AuthRefusal.NO_MECHANISM
        if refusal is None and password is None:
            refusal = AuthRefusal.NO_PASSWORD
        if refusal is not None or mechanism is None or password is None:
            not_attempted = AuthNotAttempted(
                refusal or AuthRefusal.NO_MECHANISM, offered, token=token
            )
            raise await self.decided_before(Stage.AUTH, not_attempted)
        self.mechanism = mechanism
        if mechanism.takes_token:
            await self._authenticate_bearer(mechanism, username, password)
            return mechanism
        async with self.running(Stage.AUTH):
            await smtp.authenticate(mechanism, username, password.reveal())
        return mechanism

    async def _authenticate_bearer(
        self, mechanism: AuthMechanism, username: str, token: Secret
    ) -> None:
        """AUTH with a bearer token; once more with a fresh token if the first had expired.

        Only a refusal whose error challenge says the token expired (or was
        revoked: ``401``, ``invalid_token``), of a token that can be renewed,
        on a connection still open, leads to the second attempt; whatever the
        second answer, there is no third. The fresh token is forbidden in the
        transcript before it goes out.
        """
        smtp = self.smtp
        async with self.running(Stage.AUTH):
            try:
                await smtp.authenticate_bearer(mechanism, username, token)
                return
            except TokenRefused as refused:
                renew = token.renew if isinstance(token, BearerToken) else None
                challenge = refused.challenge
                if renew is None or challenge is None or not challenge.expired:
                    raise
                if not smtp.is_connected:
                    raise
            transcript = smtp.capture.transcript
            transcript.event(
                EventKind.INFO,
                "the server says the access token has expired: fetching a fresh one, "
                "to try once more",
            )
            try:
                fresh = await asyncio.to_thread(renew)
            except Exception as exc:  # the provider, or the token command: said in words
                raise await self.failed(Stage.AUTH, TokenRenewalFailed(exc)) from None
            transcript.forbid(fresh.reveal())
            try:
                await smtp.authenticate_bearer(mechanism, username, fresh)
            except TokenRefused as again:
                raise TokenRefused(
                    again.code, again.message, again.challenge, renewed=True
                ) from None

    def close(self, text: str = "connection closed") -> None:
        """Drop the connection (without QUIT) and say so in the transcript, once."""
        self.stop_clock()
        self.smtp.close()
        self.smtp.capture.mark_closed(text)


async def look_at_certificate(endpoint: Endpoint) -> CertificateInfo | None:
    """The server's certificate, seen without trusting it, only to explain a refusal.

    A non-verifying :class:`Stepper` opens a second connection the way the
    refused one was opened (implicit TLS, or EHLO and STARTTLS), recorded in
    a transcript of its own that nobody shows; nothing from it is trusted or
    used to send. ``None`` when the server cannot be reached again within
    :data:`LOOK_TIMEOUT`.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    timeout = min(endpoint.timeout, LOOK_TIMEOUT)
    seen: list[ssl.SSLObject] = []
    look = Stepper(
        WireCapture(Transcript(title=f"certificate of {endpoint.host}")),
        dataclasses.replace(endpoint, tls_context=context, timeout=timeout),
        on_tls=seen.append,
    )
    try:
        async with asyncio.timeout(timeout):
            await look.connect()
            if not endpoint.implicit_tls:
                await look.greet()
                await look.starttls()
    except (TuimailError, TimeoutError):
        pass
    finally:
        look.close()
    der = seen[-1].getpeercert(binary_form=True) if seen else None
    return certificate_from_der(der) if der else None
