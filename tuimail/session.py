"""The SMTP client session: aiosmtplib, a live transcript, and a security policy.

This is where tuimail keeps the promises of a trusted client (docs/security.md):

* the connection is opened by :class:`~tuimail.smtp_stepper.Stepper`, the same
  opening the probe uses, which holds its rules once: ``tls`` is implicit TLS;
  ``starttls`` *requires* STARTTLS and stops before AUTH or MAIL when it is
  missing or refused (aiosmtplib's own default is opportunistic, so its
  ``start_tls`` option is never used); EHLO is sent again after STARTTLS and
  only those capabilities count; the password is never sent in plaintext
  unless the profile allows it, and a failed AUTH is not retried with every
  other mechanism;
* certificates and host names are verified unless the profile says otherwise;
* SIZE and SMTPUTF8 are checked before MAIL FROM; recipient refusals are kept
  per recipient, and a 421 ends the session; every command has a timeout and
  the session a deadline;
* DATA is sent on its own, so the session knows whether the server ever
  answered 354: only a loss after the message data went out is "possibly
  delivered"; once the final dot has its 250 the message is delivered,
  whatever happens during QUIT;
* every failure is a :class:`SessionFailure` naming its stage, whether it is
  temporary, and a sentence a person understands; each stage runs inside the
  stepper's stage context, which times it and hands its errors to
  :meth:`SMTPSession._classify` (pure: it never opens a connection).

The caller gets progress through the transcript's subscribers only; this
module knows nothing of screens or terminals.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from aiosmtplib import SMTPResponse
from aiosmtplib.errors import (
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPConnectResponseError,
    SMTPConnectTimeoutError,
    SMTPException,
    SMTPNotSupported,
    SMTPRecipientRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from tuimail.bearer import TokenRefused, TokenRenewalFailed, refusal_words
from tuimail.credentials import Secret
from tuimail.dkim_signing import signature_summary
from tuimail.errors import TuimailError
from tuimail.message import OutgoingMessage
from tuimail.pgp_mime import summary as pgp_summary
from tuimail.profiles import AuthMechanism, Profile, Security
from tuimail.secret_command import SecretCommandError, command_secret
from tuimail.smime import smime_summary
from tuimail.smtp_stepper import AuthNotAttempted, AuthRefusal, StageError, Stepper

# Re-exported: callers name a failure's stage from the session they ran.
from tuimail.stages import Stage as Stage
from tuimail.tlsinfo import PROFILE_CA_FILE_REMEDY, find_verification_error, verification_problem
from tuimail.transcript import Entry, EventKind, Transcript
from tuimail.wire import ConnectFailed, Endpoint, TranscribingSMTP, WireCapture, default_ehlo_name

if TYPE_CHECKING:
    # Imported where used: only TLS sessions need certificate parsing.
    from tuimail.tlsinfo import TLSInfo

#: Overall limit for one session, on top of each command's own timeout.
DEFAULT_DEADLINE = 300.0

#: OpenSSL's reasons for a handshake that met something other than TLS: a
#: server that speaks plain SMTP first (its greeting is no TLS record).
_NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL", "PACKET_LENGTH_TOO_LONG"}
)


class Remedy(enum.Enum):
    """A setting that would let the next attempt go further, as data.

    Each face names it in its own terms: the command line as a flag for a
    ``--server`` send, a profile's setting for a profile (the words in
    :data:`PROFILE_REMEDIES`, which :attr:`SessionFailure.explanation` ends
    with, for the app and the outbox's records).
    """

    #: Trust the server's certificate through a CA file (self-signed, private CA).
    CA_FILE = "ca-file"
    #: TLS from the first byte (a server that waits silently for a TLS handshake).
    IMPLICIT_TLS = "implicit-tls"
    #: Plain SMTP upgraded with STARTTLS (a server that is not TLS from the first byte).
    STARTTLS = "starttls"
    #: TLS, or explicitly allowing the password without it.
    ENCRYPT_OR_ALLOW_PLAINTEXT = "encrypt-or-allow-plaintext"
    #: An AUTH mechanism the server offers (or ``auto``).
    AUTH_MECHANISM = "auth-mechanism"


#: Each remedy in a profile's terms.
PROFILE_REMEDIES = {
    Remedy.CA_FILE: PROFILE_CA_FILE_REMEDY,
    Remedy.IMPLICIT_TLS: "set the profile's security to tls",
    Remedy.STARTTLS: "set the profile's security to starttls",
    Remedy.ENCRYPT_OR_ALLOW_PLAINTEXT: (
        "use security tls or starttls, or allow plaintext authentication in the profile"
    ),
    Remedy.AUTH_MECHANISM: "set the profile's auth mechanism to auto, or to one the server offers",
}


class SessionFailure(TuimailError):
    """A session that stopped: at which stage, why, and whether to try again later.

    ``problem`` says what went wrong; ``remedy``, when there is one, the
    setting that would help, as data. ``explanation`` is the problem with
    the remedy in a profile's terms (:data:`PROFILE_REMEDIES`); a face that
    names settings differently words ``problem`` and ``remedy`` itself.
    """

    def __init__(
        self,
        stage: Stage,
        explanation: str,
        *,
        temporary: bool,
        code: int | None = None,
        reply: str = "",
        possibly_delivered: bool = False,
        refused: tuple[RecipientRefusal, ...] = (),
        remedy: Remedy | None = None,
        needs_sign_in: bool = False,
    ) -> None:
        problem = explanation
        if remedy is not None:
            explanation = f"{problem}; {PROFILE_REMEDIES[remedy]}"
        super().__init__(explanation)
        self.stage = stage
        self.problem = problem
        self.remedy = remedy
        self.explanation = explanation
        self.temporary = temporary
        self.code = code
        self.reply = reply
        self.possibly_delivered = possibly_delivered
        #: Every recipient's refusal, when the server refused them all: some
        #: may be for now (4xx) and others for good (5xx).
        self.refused = refused
        #: The profile's OAuth sign-in is missing or no longer works: the
        #: explanation names the command that signs in again.
        self.needs_sign_in = needs_sign_in

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage.value,
            "explanation": self.explanation,
            "problem": self.problem,
            "remedy": self.remedy.value if self.remedy else None,
            "temporary": self.temporary,
            "code": self.code,
            "reply": self.reply,
            "possibly_delivered": self.possibly_delivered,
            "refused": [dataclasses.asdict(r) for r in self.refused],
            "needs_sign_in": self.needs_sign_in,
        }


@dataclass(frozen=True)
class RecipientRefusal:
    address: str
    code: int
    reply: str

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500


@dataclass
class Delivery:
    """What the server said about one message."""

    message_id: str
    size: int
    accepted: list[str]
    refused: list[RecipientRefusal]
    reply: str
    #: What the sender's own policy checks say about this delivery, beside the
    #: server's reply (tuimail/routing.py: an MTA-STS policy in testing mode
    #: that would have refused the MX), shown with the outcome and kept.
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "size": self.size,
            "accepted": self.accepted,
            "refused": [dataclasses.asdict(r) for r in self.refused],
            "reply": self.reply,
            "notes": list(self.notes),
        }


@dataclass
class SessionReport:
    """Everything a caller shows after a session: outcome, security, timings."""

    transcript: Transcript
    delivery: Delivery | None = None
    failure: SessionFailure | None = None
    tls: TLSInfo | None = None
    capabilities: dict[str, str] = field(default_factory=dict)
    timings: dict[Stage, float] = field(default_factory=dict)
    authenticated_as: str = ""

    @property
    def ok(self) -> bool:
        return self.failure is None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failure": self.failure.to_json() if self.failure else None,
            "delivery": self.delivery.to_json() if self.delivery else None,
            "tls": self.tls.to_json() if self.tls else None,
            "capabilities": self.capabilities,
            "timings": {stage.value: round(v, 6) for stage, v in self.timings.items()},
            "authenticated_as": self.authenticated_as,
        }


def build_tls_context(profile: Profile) -> ssl.SSLContext:
    """Verifying by default; a CA file replaces the system trust store.

    The CA file is read as a bounded regular file (a FIFO or ``/dev/zero``
    there would block OpenSSL's own read for good).
    """
    from tuimail.tlsinfo import verifying_context

    context = verifying_context(profile.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not profile.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(frozen=True)
class PeerCheck:
    """A check of the TLS server in place of the CA system's (DANE: tuimail/routing.py).

    With one, STARTTLS is required, the handshake itself verifies nothing,
    and ``check`` judges the chain the server sent (DER, leaf first) as soon
    as the handshake is done, before anything is said over TLS: it returns
    ``(True, words)`` to accept, ``(False, reason)`` to refuse, and a refusal
    is a TLS failure of this server (the connection is dropped, not QUIT).
    ``label`` names the check in the transcript ("DANE").
    """

    label: str
    check: Callable[[list[bytes]], tuple[bool, str]]


class SMTPSession:
    """One connection: open (connect, TLS, EHLO, AUTH), deliver messages, close.

    Use as ``async with SMTPSession(...) as session: await session.deliver(m)``.
    Failures raise :class:`SessionFailure`; the transcript records everything.
    """

    def __init__(
        self,
        profile: Profile,
        password: Secret | None = None,
        *,
        transcript: Transcript | None = None,
        on_entry: Callable[[Entry], None] | None = None,
        address: str = "",
        opportunistic_tls: bool = False,
        peer_check: PeerCheck | None = None,
    ) -> None:
        self.profile = profile
        #: Checks the server's chain in place of verification (see :class:`PeerCheck`).
        self._peer_check = peer_check
        #: The check's verdict once the handshake is done: (accepted, words).
        self._peer_verdict: tuple[bool, str] | None = None
        #: The resolved address to connect to (see ``wire.Endpoint.address``).
        self._address = address
        #: Direct delivery to an MX (tuimail/routing.py): with a profile whose
        #: security is ``none``, STARTTLS is used when offered, unverified,
        #: and the transcript says it is not to be taken as secure.
        self._opportunistic = opportunistic_tls and profile.security is Security.NONE
        self._password = password
        self.transcript = (
            transcript
            if transcript is not None
            else Transcript(title=f"{profile.name} {profile.address}")
        )
        if on_entry is not None:
            self.transcript.subscribe(on_entry)
        if password:
            self.transcript.forbid(password.reveal())
        self.report = SessionReport(self.transcript)
        #: The connection's opening and its timed stages, once :meth:`open` has begun.
        self._stepper: Stepper | None = None
        self._stage_before_connection = Stage.CONNECT
        #: True from the moment the message data is written until its reply.
        self.awaiting_final_reply = False
        #: The server's refusal, once given, while the session tidies up (RSET).
        self.decided: SessionFailure | None = None
        #: Why tuimail itself ends the connection, when it does (a refused
        #: certificate): said when it closes, instead of a bare "closed".
        self._hang_up = ""
        #: The capabilities that count (after STARTTLS, if any), once read: their
        #: SIZE is kept as the profile's last seen limit (tuimail/size_limits.py).
        self.final_capabilities: dict[str, str] | None = None

    async def __aenter__(self) -> SMTPSession:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- stages -------------------------------------------------------------

    @property
    def stage(self) -> Stage:
        """The stage running now, or the one the session stopped in."""
        if self._stepper is None:
            return self._stage_before_connection
        return self._stepper.stage

    def _finish_timings(self) -> None:
        stepper = self._stepper
        if stepper is not None:
            stepper.stop_clock()
            self.report.timings = dict(stepper.timings)

    async def open(self) -> None:
        """Connect, secure, greet and authenticate, as the profile demands."""
        profile = self.profile
        transcript = self.transcript
        tls_context = None
        if profile.security is not Security.NONE:
            tls_context = await self._tls_context_for(profile)
        if self._opportunistic:
            # Not "plain": STARTTLS is used if offered (said once it is known).
            transcript.event(EventKind.INFO, f"{profile.address} security opportunistic STARTTLS")
        elif self._peer_check is not None:
            transcript.event(
                EventKind.INFO,
                f"{profile.address} security STARTTLS, required; the certificate is checked "
                f"by {self._peer_check.label}",
            )
        else:
            transcript.event(
                EventKind.INFO,
                f"{profile.address} security {profile.security.label}"
                + (
                    ""
                    if profile.verify_tls or profile.security is Security.NONE
                    else ", certificate NOT verified"
                ),
            )
            for warning in profile.warnings():
                transcript.event(EventKind.WARNING, warning.words())
        endpoint = Endpoint(
            profile.host,
            profile.effective_port,
            implicit_tls=profile.security is Security.TLS,
            tls_context=tls_context,
            timeout=profile.timeout,
            ehlo_name=profile.ehlo_name or default_ehlo_name(),
            address=self._address,
        )
        if self._opportunistic:
            endpoint = dataclasses.replace(endpoint, tls_context=_unverified_context())
        self._stepper = stepper = Stepper(
            WireCapture(transcript),
            endpoint,
            on_tls=self._record_tls,
            translate=self._failed,
            inspect_refused_certificate=True,
        )
        await stepper.connect()
        await self._ehlo()
        if profile.security is Security.STARTTLS:
            await stepper.starttls()
            if self._peer_check is not None:
                await self._peer_checked(stepper)
            # RFC 3207: forget what was learnt before TLS and ask again.
            await self._ehlo()
        elif self._opportunistic:
            await self._opportunistic_starttls(stepper)
        elif profile.security is Security.NONE and stepper.smtp.supports_extension("starttls"):
            transcript.event(
                EventKind.INFO, "the server offers STARTTLS; this profile does not use it"
            )
        if not self._address:  # a direct delivery's MX is no profile's server
            self.final_capabilities = dict(self.report.capabilities)
        if profile.username:
            password = self._password
            if password is None and profile.secret_command:
                password = await self._run_secret_command(stepper)
            elif password is None and profile.uses_oauth:
                password = await self._oauth_token(stepper)
            await stepper.authenticate(
                profile.username,
                password,
                wanted=profile.auth_mechanism,
                plaintext_allowed=profile.security is Security.NONE
                and profile.allow_plaintext_auth,
                verify_tls=profile.verify_tls,
                # The session's handshake checks the chain and the host name
                # (build_tls_context), so TLS that is up was verified.
                verified=True,
            )
            self.report.authenticated_as = profile.username

    async def _peer_checked(self, stepper: Stepper) -> None:
        """The :class:`PeerCheck`'s verdict, reached at the handshake: said, and a refusal ends it."""
        check = self._peer_check
        assert check is not None
        accepted, words = self._peer_verdict or (False, "the TLS connection showed no certificate")
        if accepted:
            self.transcript.event(EventKind.INFO, f"{check.label}: {words}", secure=True)
            return
        self.transcript.event(EventKind.ERROR, f"{check.label}: {words}")
        host = self.profile.host
        stepper.stage = Stage.TLS
        stepper.close(
            f"tuimail refused the certificate of {host} ({check.label}) and closed the connection"
        )
        raise SessionFailure(Stage.TLS, f"{check.label} refused {host}: {words}", temporary=False)

    async def _opportunistic_starttls(self, stepper: Stepper) -> None:
        """STARTTLS if the MX offers it, certificate unchecked: against a passive listener only.

        Nothing (no MTA-STS or DANE policy) says which certificate is the
        right one, so none is verified and the connection is never shown as
        secure; a failed handshake is a failure of this MX (the router tries
        the next one).
        """
        host = self.profile.host
        if not stepper.smtp.supports_extension("starttls"):
            self.transcript.event(
                EventKind.WARNING,
                f"opportunistic TLS: {host} does not offer STARTTLS; the message goes unencrypted",
            )
            return
        self.transcript.event(
            EventKind.INFO,
            f"opportunistic TLS: STARTTLS with {host}, certificate not verified, "
            "not presented as secure (no MTA-STS or DANE policy asks for more)",
        )
        await stepper.starttls()
        await self._ehlo()

    async def _run_secret_command(self, stepper: Stepper) -> Secret:
        """The profile's password or token from its command, run now (in a worker thread).

        Run at each session, so a retry gets a fresh token; what it printed
        is forbidden in the transcript before anything can show it. The time
        it takes is no stage's: the clock stops while it runs.
        """
        stepper.stop_clock()
        try:
            secret = await asyncio.to_thread(command_secret, self.profile)
        except SecretCommandError as exc:
            raise await stepper.decided_before(Stage.AUTH, exc) from None
        assert secret is not None  # the profile names a command
        self.transcript.forbid(secret.reveal())
        return secret

    async def _oauth_token(self, stepper: Stepper) -> Secret:
        """A fresh access token from the profile's stored OAuth sign-in (in a worker thread).

        Fetched at each session from the refresh token in the keyring
        (tuimail/oauth_account.py), so a retry never reuses a token; the
        token is forbidden in the transcript before anything can show it.
        Like a secret command, the time it takes is no stage's.
        """
        from tuimail.credentials import KeyringError
        from tuimail.oauth.errors import OAuthError
        from tuimail.oauth_account import NotSignedIn, account_token

        transcript = self.transcript
        loop = asyncio.get_running_loop()

        def store_failed(exc: KeyringError) -> None:
            loop.call_soon_threadsafe(
                transcript.event,
                EventKind.WARNING,
                f"the provider gave a new refresh token and it could not be stored: {exc} "
                f"The next send may need a new sign-in (tuimail accounts login "
                f"{self.profile.name}).",
            )

        stepper.stop_clock()
        try:
            token = await asyncio.to_thread(
                account_token, self.profile, on_store_failed=store_failed
            )
        except (NotSignedIn, OAuthError, KeyringError) as exc:
            raise await stepper.decided_before(Stage.AUTH, exc) from None
        transcript.forbid(token.reveal())
        return token

    async def _tls_context_for(self, profile: Profile) -> ssl.SSLContext:
        """The TLS context, or a permanent TLS failure naming the unusable CA file."""
        try:
            return await asyncio.to_thread(build_tls_context, profile)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._stage_before_connection = Stage.TLS
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
            raise SessionFailure(
                Stage.TLS,
                f"cannot use the CA file {profile.ca_file!r}: {reason} "
                "(it must be a readable file of PEM certificates)",
                temporary=False,
            ) from None

    async def _ehlo(self) -> None:
        """EHLO; HELO when EHLO is refused for good on a connection without TLS."""
        self.report.capabilities = await self._require_stepper().greet(
            helo_fallback=self.profile.security is Security.NONE
        )

    async def deliver(
        self,
        outgoing: OutgoingMessage,
        *,
        before_data: Callable[[], Awaitable[None] | None] | None = None,
        on_delivered: Callable[[Delivery], Awaitable[None] | None] | None = None,
    ) -> Delivery:
        """MAIL, RCPT for each recipient, DATA. Raises :class:`SessionFailure`.

        ``before_data`` runs after the server's 354 and before the message
        data goes out (the outbox records there that the message may arrive
        from now on); if it raises, the data is not sent, the connection is
        dropped and the failure is temporary. ``on_delivered`` runs as soon as the final dot has its 250,
        before QUIT, so a later problem cannot undo the delivery. Either may
        return an awaitable, awaited there (the outbox writes its files in a
        thread, never on the caller's loop).
        """
        stepper = self._require_stepper()
        smtp = stepper.smtp
        payload = outgoing.to_bytes()
        signature = signature_summary(payload)  # tuimail/dkim_signing.py put it there
        if signature is not None:
            self.transcript.event(EventKind.INFO, signature.words(), dkim=signature.to_json())
        pgp = pgp_summary(payload)  # tuimail/pgp_mime.py made it PGP/MIME
        if pgp is not None:
            self.transcript.event(EventKind.INFO, pgp.words(), pgp=pgp.to_json())
        wrapping = smime_summary(payload)  # tuimail/smime.py put it there
        if wrapping is not None:
            self.transcript.event(EventKind.INFO, wrapping.words(), smime=wrapping.to_json())
        options = self._mail_options(outgoing, len(payload))
        encoding = "utf-8" if outgoing.needs_smtputf8 else "ascii"
        async with stepper.running(Stage.MAIL):
            try:
                await smtp.mail(outgoing.envelope_sender, options=options, encoding=encoding)
            except SMTPSenderRefused as exc:
                await self._refuse(
                    self._reply_failure(
                        Stage.MAIL, exc, f"the server refused the sender {outgoing.envelope_sender}"
                    )
                )

        async with stepper.running(Stage.RCPT):
            accepted, refused = await self._recipients(outgoing.envelope_recipients, encoding)
        if not accepted:
            scrub = self.transcript.scrub
            refused = [dataclasses.replace(r, reply=scrub(r.reply)[0]) for r in refused]
            details = "; ".join(f"{r.address}: {r.code} {r.reply}" for r in refused)
            await self._refuse(
                SessionFailure(
                    Stage.RCPT,
                    f"the server refused every recipient ({details})",
                    temporary=any(r.temporary for r in refused),
                    code=refused[-1].code,
                    reply=refused[-1].reply,
                    refused=tuple(refused),
                )
            )

        async with stepper.running(Stage.DATA):
            response = await self._data(payload, before_data)
        # Server text is masked for known secrets before the outbox records it.
        scrub = self.transcript.scrub
        delivery = Delivery(
            outgoing.message_id,
            len(payload),
            accepted,
            [dataclasses.replace(r, reply=scrub(r.reply)[0]) for r in refused],
            scrub(_reply_text(response))[0],
        )
        self.report.delivery = delivery
        if on_delivered is not None:
            settling = on_delivered(delivery)
            if settling is not None:
                await settling
        # Until the next message, the connection idles: no stage's time.
        stepper.stop_clock()
        return delivery

    async def _recipients(
        self, recipients: list[str], encoding: str
    ) -> tuple[list[str], list[RecipientRefusal]]:
        """RCPT TO for each; a 421 (or a dropped connection) ends the session at once."""
        smtp = self._require_smtp()
        accepted: list[str] = []
        refused: list[RecipientRefusal] = []
        for recipient in recipients:
            try:
                await smtp.rcpt(recipient, encoding=encoding)
            except SMTPRecipientRefused as exc:
                if exc.code == 421 or not smtp.is_connected:
                    # RFC 5321 4.2.2: 421 closes the transmission channel; the
                    # transaction is over, not this one recipient.
                    raise self._closing_failure(Stage.RCPT, exc.code, exc.message) from None
                refused.append(RecipientRefusal(recipient, exc.code, exc.message))
            else:
                accepted.append(recipient)
        return accepted, refused

    def _closing_failure(self, stage: Stage, code: int, message: str) -> SessionFailure:
        return SessionFailure(
            stage,
            f"the server ended the session during {stage.value}: {code} {message}",
            temporary=True,
            code=code,
            reply=message,
        )

    async def _data(
        self, payload: bytes, before_data: Callable[[], Awaitable[None] | None] | None
    ) -> SMTPResponse:
        """DATA, then (after its 354 only) the payload and the final dot.

        aiosmtplib's ``data()`` sends both in one call, so a caller cannot
        tell a loss before the 354 (the server never had the message: retry)
        from one after the data went out (it may have arrived). Here the two
        steps are apart, through aiosmtplib's public ``execute_command`` and
        its protocol's ``write`` and ``read_response``.
        """
        smtp = self._require_smtp()
        start = await smtp.execute_command(b"DATA")
        if start.code != 354:
            if start.code == 421 or not smtp.is_connected:
                raise self._closing_failure(Stage.DATA, start.code, start.message)
            await self._refuse(
                self._refusal(Stage.DATA, start.code, start.message, "the server refused DATA")
            )
        protocol = smtp.protocol
        if protocol is None:
            raise SMTPServerDisconnected("Connection lost")
        if before_data is not None:
            try:
                recording = before_data()
                if recording is not None:
                    await recording
            except Exception as exc:
                smtp.close()
                raise SessionFailure(
                    Stage.DATA,
                    f"could not record that the message is being sent ({exc}); "
                    "the message data was not sent",
                    temporary=True,
                ) from None
        # Stays set if the task is cancelled here: the deadline's report needs it.
        self.awaiting_final_reply = True
        try:
            protocol.write(dot_stuffed(payload))
            response = await protocol.read_response(timeout=self.profile.timeout)
        except Exception as exc:
            # Whatever went wrong once the data was out (a lost connection, a
            # timeout, a reply too long or malformed to read), the server may
            # have the message: never a plain failure that would be retried.
            smtp.close()
            why = (
                f"the connection was lost ({exc})"
                if isinstance(exc, (SMTPServerDisconnected, SMTPTimeoutError, OSError))
                else f"its reply could not be read ({exc})"
            )
            raise SessionFailure(
                Stage.DATA,
                f"the message was sent, but {why} before the server confirmed it; "
                "it may or may not have been delivered",
                temporary=True,
                possibly_delivered=True,
            ) from None
        self.awaiting_final_reply = False
        if 200 <= response.code < 300:
            # RFC 5321 4.2.1: the first digit decides; a 2xx other than 250
            # is still the server taking responsibility for the message.
            return response
        if not (400 <= response.code < 600):
            # Neither yes nor no: the server may have kept it.
            smtp.close()
            raise self._no_answer(f"{response.code} {response.message}")
        if response.code != 250:
            refusal = self._refusal(
                Stage.DATA, response.code, response.message, "the server refused the message"
            )
            if response.code == 421 or not smtp.is_connected:
                smtp.close()
                raise refusal
            await self._refuse(refusal)
        return response

    @staticmethod
    def _no_answer(reply: str) -> SessionFailure:
        """The message data went out and the reply is neither success nor refusal."""
        return SessionFailure(
            Stage.DATA,
            "the server's reply to the message is neither an acceptance nor a refusal "
            f"({reply}); it may or may not have been delivered",
            temporary=True,
            reply=reply,
            possibly_delivered=True,
        )

    def _mail_options(self, outgoing: OutgoingMessage, size: int) -> list[str]:
        smtp = self._require_smtp()
        options: list[str] = []
        if smtp.supports_extension("size"):
            limit_text = smtp.esmtp_extensions.get("size", "").strip()
            limit = int(limit_text) if limit_text.isdigit() else 0
            if limit and size > limit:
                raise SessionFailure(
                    Stage.MAIL,
                    f"the message is {size:,} bytes; the server accepts at most {limit:,} bytes",
                    temporary=False,
                )
            options.append(f"SIZE={size}")
        if outgoing.needs_smtputf8:
            if not smtp.supports_extension("smtputf8"):
                raise SessionFailure(Stage.MAIL, _needs_smtputf8_words(outgoing), temporary=False)
            options.append("SMTPUTF8")
            if smtp.supports_extension("8bitmime"):
                options.append("BODY=8BITMIME")
        elif not outgoing.to_bytes().isascii():
            # An attached message (message/rfc822, which MIME never lets be
            # re-encoded: tuimail/message.py) or a prepared message's body
            # (tuimail/eml.py sends it as written) is 8-bit without SMTPUTF8.
            if not smtp.supports_extension("8bitmime"):
                raise SessionFailure(Stage.MAIL, _needs_8bitmime_words(outgoing), temporary=False)
            options.append("BODY=8BITMIME")
        return options

    async def _refuse(self, failure: SessionFailure) -> NoReturn:
        """RSET after a refusal, then raise it.

        The server's answer is decided before the RSET: a deadline running out
        during the RSET must not turn a refusal for good into a "try later".
        """
        self.decided = failure
        await self._reset()
        raise failure

    async def _reset(self) -> None:
        """RSET after a refused transaction, so the connection can be reused."""
        stepper = self._stepper
        if stepper is not None and stepper.smtp.is_connected:
            with contextlib.suppress(SMTPException, OSError, TimeoutError):
                await stepper.smtp.rset()

    async def close(self) -> None:
        """QUIT politely when the connection is still healthy; always drop it."""
        stepper = self._stepper
        self._finish_timings()
        if stepper is None:
            return
        smtp = stepper.smtp
        try:
            if smtp.is_connected:
                with contextlib.suppress(SMTPException, OSError, TimeoutError):
                    await smtp.quit(timeout=min(self.profile.timeout, 10.0))
        finally:
            # Also when cancelled (a deadline running out during QUIT).
            smtp.close()
            smtp.capture.mark_closed(self._hang_up or "connection closed")

    def abort(self) -> None:
        """Drop the connection at once, without QUIT."""
        if self._stepper is not None:
            self._stepper.close("connection dropped")

    # -- failures -----------------------------------------------------------

    def _record_tls(self, ssl_object: ssl.SSLObject) -> None:
        from tuimail.tlsinfo import tls_info

        verified = self.profile.verify_tls
        if self._peer_check is not None:
            self._peer_verdict = _run_peer_check(self._peer_check, ssl_object)
            verified = self._peer_verdict[0]
        info = tls_info(ssl_object, verified=verified)
        self.report.tls = info
        self.transcript.event(EventKind.TLS, info.summary(), secure=True, **info.to_json())
        if self._opportunistic or self._peer_check is not None:
            # Opportunistic: said before the handshake. Checked: the verdict is said next.
            return
        if not info.verified:
            # Neutral words: the setting is a profile's verify_tls or the command line's --no-verify.
            self.transcript.event(
                EventKind.WARNING,
                "the certificate was not verified (verification is turned off for this connection)",
                secure=True,
            )

    def _reply_failure(self, stage: Stage, exc: SMTPResponseException, what: str) -> SessionFailure:
        return self._refusal(stage, exc.code, exc.message, what)

    @staticmethod
    def _refusal(stage: Stage, code: int, message: str, what: str) -> SessionFailure:
        return SessionFailure(
            stage,
            f"{what}: {code} {message}",
            temporary=400 <= code < 500,
            code=code,
            reply=message,
        )

    def _failed(self, failed: StageError) -> SessionFailure:
        """The stepper's ``translate``: the failure, and who ends the connection because of it.

        When the TLS handshake failed in tuimail (it refused the
        certificate, or met something that is not TLS), tuimail drops the
        connection: the transcript says that, not that the server closed it.
        """
        failure = self._classify(failed)
        if find_verification_error(failed.error) is not None:
            self._hang_up = (
                f"tuimail refused the certificate of {self.profile.host} and closed the connection"
            )
        elif isinstance(failed.error, ssl.SSLError) and failure.stage is Stage.TLS:
            self._hang_up = "the TLS handshake failed; tuimail closed the connection"
        return failure

    def _classify(self, failed: StageError) -> SessionFailure:
        """A stage's error as a :class:`SessionFailure`: pure, it never touches the network."""
        exc, stage = failed.error, failed.stage
        host = self.profile.host
        port = self.profile.effective_port
        implicit_tls = self.profile.security is Security.TLS
        if isinstance(exc, AuthNotAttempted):
            return self._auth_not_attempted(exc)
        if isinstance(exc, TokenRenewalFailed) and _needs_sign_in(exc.cause):
            return SessionFailure(Stage.AUTH, str(exc), temporary=True, needs_sign_in=True)
        if isinstance(exc, (SecretCommandError, TokenRenewalFailed)):
            return SessionFailure(Stage.AUTH, str(exc), temporary=exc.temporary)
        oauth_failure = _oauth_failure(exc)
        if oauth_failure is not None:
            return oauth_failure
        if isinstance(exc, SMTPAuthenticationError) and stage is Stage.AUTH:
            return self._auth_refused(exc)
        if stage is Stage.TLS and isinstance(exc, SMTPNotSupported):
            return SessionFailure(
                Stage.TLS,
                "the server did not offer STARTTLS; refusing to continue in plaintext",
                temporary=False,
            )
        if stage is Stage.TLS and isinstance(exc, SMTPResponseException):
            return SessionFailure(
                Stage.TLS,
                f"the server refused STARTTLS ({exc.code} {exc.message}); "
                "refusing to continue in plaintext",
                temporary=400 <= exc.code < 500,
                code=exc.code,
                reply=exc.message,
            )
        verification = find_verification_error(exc)
        if verification is not None:
            problem = verification_problem(verification, host, failed.certificate)
            return SessionFailure(
                Stage.TLS,
                problem.words,
                temporary=False,
                remedy=Remedy.CA_FILE if problem.ca_file_helps else None,
            )
        if isinstance(exc, SMTPConnectResponseError):
            return SessionFailure(
                Stage.GREETING,
                f"{host} is not accepting mail now: {exc.code} {exc.message}"
                if exc.code < 500
                else f"{host} refused the session: {exc.code} {exc.message}",
                temporary=exc.code < 500,
                code=exc.code,
                reply=exc.message,
            )
        if isinstance(exc, SMTPResponseException):
            return self._reply_failure(stage, exc, f"the server refused {stage.value.upper()}")
        if isinstance(exc, ssl.SSLError):
            reason = exc.reason or str(exc)
            if implicit_tls and reason in _NOT_TLS_REASONS:
                return SessionFailure(
                    Stage.TLS,
                    f"{host} port {port} does not speak TLS from the first byte ({reason}): "
                    "it may expect plain SMTP and STARTTLS (usually port 587) rather than "
                    "implicit TLS (usually port 465)",
                    temporary=False,
                    remedy=Remedy.STARTTLS,
                )
            return SessionFailure(
                Stage.TLS, f"the TLS handshake with {host} failed: {reason}", temporary=False
            )
        if (
            isinstance(exc, SMTPConnectTimeoutError)
            and stage is Stage.GREETING
            and not implicit_tls
        ):
            return SessionFailure(
                stage,
                f"{exc}; a server that waits silently may expect implicit TLS, TLS from the "
                "first byte (usually port 465), rather than STARTTLS (usually port 587)",
                temporary=True,
                remedy=Remedy.IMPLICIT_TLS,
            )
        if isinstance(exc, SMTPConnectTimeoutError):
            # Its own words say what did not come in time.
            return SessionFailure(stage, str(exc), temporary=True)
        if isinstance(exc, TimeoutError):
            return SessionFailure(
                stage,
                f"{host} did not answer within {self.profile.timeout:g} seconds ({stage.value}): "
                f"{exc}".rstrip(": "),
                temporary=True,
            )
        if isinstance(exc, ConnectFailed) and exc.refused:
            # Nothing was opened, so nothing was closed: the port refused.
            return SessionFailure(
                stage,
                f"{host} refused the connection on port {port} "
                "(no server listens there, or a firewall turns it away)",
                temporary=True,
            )
        if isinstance(exc, SMTPConnectError):
            # Its own words are exact: the name did not resolve, no address took the
            # connection (and why), or the server hung up before its greeting.
            return SessionFailure(stage, str(exc), temporary=True)
        if isinstance(exc, (SMTPServerDisconnected, ConnectionError)):
            return SessionFailure(
                stage, f"{host} closed the connection during {stage.value}: {exc}", temporary=True
            )
        if isinstance(exc, (SMTPException, OSError)):
            return SessionFailure(stage, str(exc) or type(exc).__name__, temporary=True)
        return SessionFailure(
            stage, f"unexpected error: {type(exc).__name__}: {exc}", temporary=False
        )

    def _auth_not_attempted(self, exc: AuthNotAttempted) -> SessionFailure:
        """Why the password was not sent, in the session's words."""
        offered = ", ".join(m.upper() for m in exc.offered)
        wanted = self.profile.auth_mechanism
        remedy = None
        if exc.reason is AuthRefusal.NOT_ENCRYPTED:
            text = "refusing to send the password over an unencrypted connection"
            remedy = Remedy.ENCRYPT_OR_ALLOW_PLAINTEXT
        elif exc.reason is AuthRefusal.NOT_OFFERED:
            secure = self._require_smtp().capture.secure
            text = "the server does not offer authentication (no AUTH in its EHLO reply)" + (
                "" if secure else "; many servers offer it only after STARTTLS"
            )
        elif exc.reason is AuthRefusal.NO_MECHANISM and wanted is not AuthMechanism.AUTO:
            text = (
                f"AUTH {wanted.value.upper()} was asked for, but the server offers "
                f"only {offered or 'nothing'}"
            )
            remedy = Remedy.AUTH_MECHANISM
        elif exc.reason is AuthRefusal.NO_MECHANISM and exc.token:
            text = (
                "the credential is an OAuth access token, and the server offers no mechanism "
                f"for one, XOAUTH2 or OAUTHBEARER (offered: {offered or 'none'})"
            )
        elif exc.reason is AuthRefusal.NO_MECHANISM:
            text = (
                "the server offers no password mechanism tuimail supports "
                f"(offered: {offered or 'none'})"
            )
        elif exc.reason is AuthRefusal.NO_PASSWORD:
            text = "no password is available for this profile"
        else:
            text = "the certificate was not verified, so the password was not sent"
        return SessionFailure(Stage.AUTH, text, temporary=False, remedy=remedy)

    def _auth_refused(self, exc: SMTPAuthenticationError) -> SessionFailure:
        """The server's answer to the one AUTH attempt (a token's: with its challenge read)."""
        temporary = 400 <= exc.code < 500
        if temporary:
            what = "the server could not check the credentials right now"
        elif isinstance(exc, TokenRefused):
            what = refusal_words(exc, self.profile.username)
        else:
            what = f"the server rejected the user name or password for {self.profile.username}"
        mechanism = self._require_stepper().mechanism
        used = f" using {mechanism.value.upper()}" if mechanism is not None else ""
        return SessionFailure(
            Stage.AUTH,
            f"{what} ({exc.code} {exc.message}){used}",
            temporary=temporary,
            code=exc.code,
            reply=exc.message,
        )

    def _require_stepper(self) -> Stepper:
        if self._stepper is None:
            raise RuntimeError("the session is not open")
        return self._stepper

    def _require_smtp(self) -> TranscribingSMTP:
        return self._require_stepper().smtp


def _needs_sign_in(exc: BaseException) -> bool:
    """``exc`` says the profile's OAuth sign-in is missing or no longer works."""
    from tuimail.oauth.errors import SignInAgain
    from tuimail.oauth_account import NotSignedIn

    return isinstance(exc, (SignInAgain, NotSignedIn))


def _oauth_failure(exc: BaseException) -> SessionFailure | None:
    """Getting the profile's OAuth token failed: when it needs the user, and when it may pass.

    A missing or revoked sign-in keeps a queued message queued (it is sent
    once the user signed in again); a provider out of reach, or a keyring
    that cannot be read now, may answer later; any other refusal of the
    provider (a wrong client id) waits for the user.
    """
    from tuimail.credentials import KeyringError
    from tuimail.oauth.errors import OAuthError, ProviderUnreachable

    if _needs_sign_in(exc):
        return SessionFailure(Stage.AUTH, str(exc), temporary=True, needs_sign_in=True)
    if isinstance(exc, KeyringError):
        return SessionFailure(Stage.AUTH, str(exc), temporary=True)
    if isinstance(exc, OAuthError):
        return SessionFailure(
            Stage.AUTH,
            f"no access token from the provider: {exc}",
            temporary=isinstance(exc, ProviderUnreachable),
        )
    return None


def _run_peer_check(check: PeerCheck, ssl_object: ssl.SSLObject) -> tuple[bool, str]:
    """The check's verdict on the chain the server sent; a check that breaks refuses."""
    from tuimail.trust import peer_chain

    try:
        return check.check(peer_chain(ssl_object))
    except (ValueError, TypeError, ssl.SSLError) as exc:
        return False, f"the certificate chain could not be checked: {exc}"


def _unverified_context() -> ssl.SSLContext:
    """Opportunistic STARTTLS: encryption against a passive listener, no certificate check."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _reply_text(response: SMTPResponse) -> str:
    return f"{response.code} {response.message}"


_LINE_ENDINGS = re.compile(rb"\r\n|\n|\r(?!\n)")
_LEADING_DOT = re.compile(rb"(?m)^\.")


def _needs_smtputf8_words(outgoing: OutgoingMessage) -> str:
    """Why the message needs SMTPUTF8, for a server that does not offer it."""
    if any(a.needs_smtputf8 for a in (outgoing.sender, *outgoing.recipients)):
        return (
            "an address has non-ASCII characters before the '@', and the server "
            "does not offer SMTPUTF8 to carry them"
        )
    # Only a prepared message (tuimail/eml.py) is sent with 8-bit header text as written.
    return (
        "a header of the message has 8-bit (UTF-8) text, and the server does not "
        "offer SMTPUTF8 to carry it; encode it as RFC 2047 encoded words instead"
    )


def _needs_8bitmime_words(outgoing: OutgoingMessage) -> str:
    """Why the message needs 8BITMIME, for a server that does not offer it."""
    if any(part.get_content_type() == "message/rfc822" for part in outgoing.message.walk()):
        return (
            "an attached message has 8-bit text, which must go as it is, and the "
            "server does not offer 8BITMIME to carry it; forward it inline instead"
        )
    return (
        "the message's body has 8-bit text, and the server does not offer 8BITMIME "
        "to carry it; encode the body as quoted-printable or base64 instead"
    )


def dot_stuffed(payload: bytes) -> bytes:
    """The message as it goes after 354: CRLF line ends, leading dots doubled, final dot."""
    data = _LINE_ENDINGS.sub(b"\r\n", payload)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return _LEADING_DOT.sub(b"..", data) + b".\r\n"


async def send(
    profile: Profile,
    outgoing: OutgoingMessage,
    password: Secret | None = None,
    *,
    on_entry: Callable[[Entry], None] | None = None,
    deadline: float = DEFAULT_DEADLINE,
    transcript: Transcript | None = None,
    before_data: Callable[[], Awaitable[None] | None] | None = None,
    on_delivered: Callable[[Delivery], Awaitable[None] | None] | None = None,
    address: str = "",
    opportunistic_tls: bool = False,
    peer_check: PeerCheck | None = None,
) -> SessionReport:
    """Send one message in one session. Never raises for SMTP problems: see ``report.failure``.

    ``before_data`` and ``on_delivered``: see :meth:`SMTPSession.deliver`;
    ``address``, ``opportunistic_tls`` and ``peer_check``: see :class:`SMTPSession`.
    """
    session = SMTPSession(
        profile,
        password,
        on_entry=on_entry,
        transcript=transcript,
        address=address,
        opportunistic_tls=opportunistic_tls,
        peer_check=peer_check,
    )
    await _run(
        session,
        deadline,
        lambda: session.deliver(outgoing, before_data=before_data, on_delivered=on_delivered),
    )
    return session.report


async def check_account(
    profile: Profile,
    password: Secret | None = None,
    *,
    on_entry: Callable[[Entry], None] | None = None,
    deadline: float = DEFAULT_DEADLINE,
    transcript: Transcript | None = None,
) -> SessionReport:
    """Connect, TLS, AUTH, QUIT: no mail is sent (``tuimail accounts test``)."""
    session = SMTPSession(profile, password, on_entry=on_entry, transcript=transcript)
    await _run(session, deadline, None)
    return session.report


async def _run(session: SMTPSession, deadline: float, work: Callable[[], Any] | None) -> None:
    """Open, work, close within ``deadline``; the outcome goes to ``session.report``.

    The deadline counts against the work, not the goodbye: once the work is
    done (for a send, the final dot has its 250), a deadline running out
    during QUIT only cuts QUIT short.
    """
    done = False
    try:
        async with asyncio.timeout(deadline):
            try:
                await session.open()
                if work is not None:
                    await work()
                done = True
            except asyncio.CancelledError:
                # Stopped mid-command (the deadline, or the caller): a reply may
                # still come, so QUIT would be paired with it. Just hang up.
                session.abort()
                raise
            finally:
                await session.close()
    except SessionFailure as stopped:
        session.report.failure = stopped
    except TimeoutError:
        if done or session.report.delivery is not None:  # the 250 came: the work is done
            session.transcript.event(
                EventKind.WARNING,
                f"the session deadline ({deadline:g} s) ran out while closing; "
                "the work was already done",
            )
        else:
            session.report.failure = session.decided or _deadline_failure(session, deadline)
    _scrub_report(session)
    if session.final_capabilities is not None:
        from tuimail.size_limits import remember_off_loop, server_key

        profile = session.profile
        server = server_key(profile.host, profile.effective_port)
        await remember_off_loop(profile.name, server, session.final_capabilities)
    if session.report.failure is not None:
        failure = session.report.failure
        # What happened, not what to change: the face that shows the outcome
        # words the remedy in its own terms (a flag, a profile setting).
        data: dict[str, Any] = {"remedy": failure.remedy.value} if failure.remedy else {}
        session.transcript.event(
            EventKind.ERROR, f"{failure.stage.value} failed: {failure.problem}", **data
        )


def _scrub_report(session: SMTPSession) -> None:
    """Mask every known secret in the failure the report quotes from the server.

    A server may echo the password in a refusal (``535 bad credentials for
    alice/hunter2``). The transcript masks it in its lines; the failure's
    explanation and reply are quoted to the screen, to JSON and to the
    outbox's records, so they are masked too (a delivery's replies are
    masked when it is made, before the outbox records them).
    """
    scrub = session.transcript.scrub
    failure = session.report.failure
    if failure is not None:
        failure.explanation = scrub(failure.explanation)[0]
        failure.problem = scrub(failure.problem)[0]
        failure.reply = scrub(failure.reply)[0]
        failure.args = (failure.explanation,)


def _deadline_failure(session: SMTPSession, deadline: float) -> SessionFailure:
    """Only a deadline hit while the message data was out can mean "possibly delivered"."""
    possibly = session.awaiting_final_reply
    return SessionFailure(
        session.stage,
        f"the session did not finish within {deadline:g} seconds "
        f"(stopped during {session.stage.value})"
        + ("; the message may or may not have been delivered" if possibly else ""),
        temporary=True,
        possibly_delivered=possibly,
    )
