"""The sandbox's SMTP protocol: aiosmtpd's, with a server-side transcript and faults.

aiosmtpd's documented handler hooks run after its own syntax, sequence and
AUTH checks, and there is none for the greeting, the connection or the wire;
everything that can wait for those checks is in
:mod:`tuimail.sandbox.handler`. What :class:`SandboxSMTP` still overrides,
and why no hook does it:

* ``connection_made``: a connection beyond the cap is answered ``421`` and
  closed before aiosmtpd starts a session for it; an admitted one opens its
  session record (and notes TLS when it is implicit).
* ``data_received``: the client's raw bytes go to the tap
  (:mod:`tuimail.sandbox.tap`) before aiosmtpd reads them; no hook sees the
  wire. With a throttle (:mod:`tuimail.sandbox.throttle`) they are handed
  over at its rate, the socket's reading paused meanwhile.
* ``eof_received`` and ``connection_lost``: a refused connection stays
  silent, and every other one gives back its place and ends its session once.
* ``push``: every reply is recorded as sent, and the greeting's fault fires
  here, before the first reply (aiosmtpd has no greeting hook), as does the
  accept probability's ``421``; with a throttle, the reply goes out at its rate.
* ``smtp_HELO``, ``smtp_EHLO``: their fault must answer before aiosmtpd's
  own reply; the client's name is noted for the session's summary.
* ``smtp_AUTH``: AUTH on a sandbox that does not offer it is answered ``502``
  with the hint its face gave, its fault answers before aiosmtpd's checks,
  and the authenticated name and mechanism are noted. XOAUTH2 and
  OAUTHBEARER are ``auth_`` methods of the protocol (aiosmtpd's way of adding
  a mechanism): their responses are read by :mod:`tuimail.sandbox.bearer_check`,
  and a token is checked there by introspection, in a thread.
* ``smtp_DATA``: its fault answers before aiosmtpd's checks, and the data is
  read in blocks (:mod:`tuimail.smtp_data`) instead of aiosmtpd's line loop;
  the checks, replies and handler call are aiosmtpd's, in its order.
* ``smtp_STARTTLS``: a handshake that does not complete must still end its
  session and give back its place.
* ``_getaddr``: MAIL and RCPT paths go through a fast path for a plain
  ``<local@domain>`` (:mod:`tuimail.envelope_path`), with aiosmtpd's answer
  for every argument; the parser is the largest CPU cost per message.
* ``_timeout_cb``: the idle timeout is recorded and answered ``421`` before
  aiosmtpd closes the connection without a word.
* ``handle_exception``: a command that raised is noted in the session and
  answered without a traceback on stderr or this machine's paths in the reply.

Each private name of aiosmtpd used here is listed, with its reason, in
tuimail/private_api.py.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, TLSSetupException

from tuimail.envelope_path import plain_path
from tuimail.faults import NOT_ACCEPTED_REPLY, FaultAction
from tuimail.sandbox.bearer_check import (
    CHALLENGE_ANSWER,
    INTROSPECT_TIMEOUT,
    OAUTHBEARER,
    XOAUTH2,
    BearerResponse,
    Introspection,
    MalformedResponse,
    Refusal,
    TokenCheck,
    Verdict,
    check_token,
    error_challenge,
    parse_response,
)
from tuimail.sandbox.host import SandboxHost
from tuimail.sandbox.record import SessionOutcome, SessionRecord
from tuimail.sandbox.tap import ClientTap
from tuimail.sandbox.throttle import Pace, describe
from tuimail.smtp_data import DataState, MessageData, read_message_data
from tuimail.stages import Stage
from tuimail.terminal_text import escape_controls
from tuimail.transcript import ConversationRedactor, Direction, EventKind, secret_forms

#: The answer to a connection beyond the cap; it is closed straight after.
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections, try again later"
#: Seconds a connection being closed may take to hand its last bytes to the client
#: before it is cut: a client that never reads would otherwise hold it open forever.
CLOSE_GRACE = 2.0


#: The longest AUTH line (RFC 4954 section 4): an OAuth token's initial
#: response runs to kilobytes. Other commands keep aiosmtpd's limits.
AUTH_LINE_LIMIT = 12288
#: Message data's longest line, as aiosmtpd's (RFC 5321 4.5.3.1.6).
DATA_LINE_LIMIT = SMTP.line_length_limit
#: The answer when a token could not be checked: try later, never an accept.
UNCHECKED_TOKEN = "454 4.7.0 Temporary authentication failure: the token could not be checked"
TOKEN_REFUSED = "535 5.7.8 Authentication credentials invalid"
#: Tokens shorter than this are not masked wherever they occur (a one-letter
#: token would mask that letter in every later line); the protocol's own
#: redaction masks the AUTH lines that carry them all the same.
_MIN_FORBIDDEN = 8
#: Tokens masked wherever they occur, per session: each adds forms every
#: later line is searched for, so a client repeating AUTH cannot make a
#: session's memory and time grow without end (later ones are still masked
#: in the AUTH lines that carry them).
_MAX_FORBIDDEN_TOKENS = 8

_Command = TypeVar("_Command", bound=Callable[..., Any])
_DATA_REFUSALS = {
    DataState.TOO_LONG: "500 Line too long (see RFC5321 4.5.3.1.6)",
    DataState.TOO_MUCH: "552 Error: Too much mail data",
}


def _help_of(replaced: Callable[..., Any]) -> Callable[[_Command], _Command]:
    """Give an override the HELP text of the aiosmtpd command it replaces.

    aiosmtpd lists a command in HELP only when its method carries what its
    ``@syntax`` decorator set; an override without it drops out of HELP.
    """

    def carry(override: _Command) -> _Command:
        override.__dict__.update(vars(replaced))
        return override

    return carry


@dataclass(frozen=True)
class TokenLogin:
    """Who authenticated with a bearer token: the session's ``auth_data``."""

    user: str
    mechanism: str


class SandboxSMTP(SMTP):
    """aiosmtpd's SMTP with a server-side transcript and fault injection."""

    #: The reader's line limit, long enough for AUTH's (message data keeps
    #: :data:`DATA_LINE_LIMIT`, other commands aiosmtpd's command limits).
    line_length_limit = AUTH_LINE_LIMIT + 2

    def __init__(self, sandbox: SandboxHost, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        # aiosmtpd's limits are one dict on its class, shared by every
        # connection; this connection's are its own, with AUTH's raised.
        self.command_size_limits = collections.defaultdict(
            lambda: SMTP.command_size_limit, {"AUTH": AUTH_LINE_LIMIT}
        )
        self.sandbox = sandbox
        self.record: SessionRecord | None = None
        self.tap: ClientTap | None = None
        self._redactor = ConversationRedactor()
        self._greeted = False
        #: Why the connection is closing, once that is known: the session's outcome.
        self._ending: tuple[SessionOutcome, str] | None = None
        #: The fault whose answer closes the connection once it is sent, or "".
        self._closing_fault = ""
        self._refused = False
        #: Counted in already, by :class:`ImplicitTLSAdmission` before its handshake.
        self.admitted = False
        #: Its place given back and its session ended (see :meth:`_forget`).
        self._forgotten = False
        #: Tokens (or malformed responses) masked in every later line so far.
        self._tokens_forbidden = 0
        config = sandbox.config
        #: The throttle of each direction, or None: client to server, server to client.
        self._up = Pace(config.throttle_up) if config.throttle_up else None
        self._down = Pace(config.throttle_down) if config.throttle_down else None
        #: The client's bytes received and not yet handed on (throttled).
        self._held = bytearray()
        #: The transport whose reading is paused while bytes are held.
        self._reading_paused_on: asyncio.BaseTransport | None = None
        self._pacer: asyncio.Task[None] | None = None
        #: The client closed its side while bytes were held: told once they are in.
        self._eof_held = False
        #: The transaction whose recipients reached the limit (noted once in the transcript).
        self.over_limit: Envelope | None = None

    # -- connection ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.record is None and not self.admitted and not self.sandbox.admit():
            # Beyond the cap: answered and closed before aiosmtpd sees it, so
            # it costs no session, no task and no descriptor for long.
            self._refused = True
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(TOO_MANY_CONNECTIONS.encode() + b"\r\n")
            transport.close()
            return
        if self.record is None:
            peer = transport.get_extra_info("peername")
            shown = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
            self.record = self.sandbox.open_session(shown)
            self.tap = ClientTap(self.record, self._redactor)
            secure = transport.get_extra_info("sslcontext") is not None
            self.record.transcript.event(EventKind.CONNECTED, f"client connected from {shown}")
            throttled = describe(self.sandbox.config.throttle_up, self.sandbox.config.throttle_down)
            if throttled:
                self.record.transcript.event(EventKind.INFO, throttled)
            if secure:
                self._mark_secure(transport)
        else:
            if self._held and self.tap is not None:
                # Sent after STARTTLS and before TLS: plaintext, which the
                # tap shows as discarded; aiosmtpd never reads it.
                self.tap.feed(bytes(self._held))
                self._held.clear()
            self._mark_secure(transport)
        super().connection_made(transport)

    def _mark_secure(self, transport: asyncio.BaseTransport) -> None:
        assert self.record is not None and self.tap is not None
        self.tap.tls_started()
        self.record.secure = True
        ssl_object = transport.get_extra_info("ssl_object")
        details = ""
        if ssl_object is not None:
            details = f": {ssl_object.version()}, {ssl_object.cipher()[0]}"
        self.record.transcript.event(EventKind.TLS, f"TLS established{details}", secure=True)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._up is None:
            self._hand_on(data)
            return
        # Held, with the socket's reading paused, and handed on at the rate:
        # at most one read's worth waits here.
        self._held.extend(data)
        transport = self.transport
        if isinstance(transport, asyncio.ReadTransport) and self._reading_paused_on is None:
            transport.pause_reading()
            self._reading_paused_on = transport
        if self._pacer is None:
            self._pacer = asyncio.get_running_loop().create_task(self._pace_in(self._up))

    def _hand_on(self, data: bytes) -> None:
        """The client's bytes, to the tap and then to aiosmtpd's reader."""
        if self.tap is not None:
            self.tap.feed(data)
        super().data_received(data)

    async def _pace_in(self, pace: Pace) -> None:
        """Hand the held bytes on at the throttle's rate, then read the socket again."""
        try:
            while self._held:
                count = min(pace.slice, len(self._held))
                await pace.take(count)
                if self._forgotten or self.transport is None or self.transport.is_closing():
                    self._held.clear()
                    return
                chunk = bytes(self._held[:count])
                del self._held[:count]
                self._hand_on(chunk)
            paused, self._reading_paused_on = self._reading_paused_on, None
            if isinstance(paused, asyncio.ReadTransport) and not paused.is_closing():
                with contextlib.suppress(Exception):
                    paused.resume_reading()
            if self._eof_held:
                self._eof_held = False
                if not super().eof_received() and self.transport is not None:
                    self.transport.close()
        finally:
            self._pacer = None

    def eof_received(self) -> bool | None:
        if self._refused:
            return False
        if self._held and (self.session is None or self.session.ssl is None):
            self._eof_held = True  # said once the held bytes are in
            return True
        return super().eof_received()

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        if self._pacer is not None:
            self._pacer.cancel()
        self._held.clear()
        self._forget()
        super().connection_lost(error)

    def _forget(self) -> None:
        """Give back the connection's place and end its session, once."""
        if self._forgotten:
            return
        self._forgotten = True
        self.sandbox.release()
        record = self.record
        if record is not None and record.ended is None:
            if self._ending is not None:
                outcome, detail = self._ending
            elif self._redactor.in_data:
                outcome, detail = SessionOutcome.VANISHED_DURING_DATA, ""
            elif record.outcome is SessionOutcome.IN_PROGRESS:
                outcome, detail = SessionOutcome.CLOSED_WITHOUT_QUIT, ""
            else:
                outcome, detail = record.outcome, record.outcome_detail
            self.sandbox.end_session(record, outcome, detail)

    def _timeout_cb(self) -> None:
        if self._forgotten:
            return  # closed and ended already (a handshake that did not complete)
        self._ending = (SessionOutcome.TIMED_OUT, f"{self._timeout_duration:g}s")
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(Exception):
                line = "421 4.4.2 Timeout, closing connection"
                self._record_reply(line)
                self._writer.write(line.encode() + b"\r\n")
        self._cut_after_grace()
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    def _cut_after_grace(self) -> None:
        """Abort the connection if it is still open :data:`CLOSE_GRACE` seconds from now.

        ``close()`` waits until every buffered byte is written: a client that
        pipelines commands and never reads their replies fills the kernel's
        buffers, and its connection (and its place under the cap) then
        outlived the idle timeout for good, throttled or not.
        """
        transport = self.transport
        if transport is None:
            return

        def cut() -> None:
            if not self._forgotten and isinstance(transport, asyncio.Transport):
                with contextlib.suppress(Exception):
                    transport.abort()

        asyncio.get_running_loop().call_later(CLOSE_GRACE, cut)

    # -- replies ------------------------------------------------------------

    def _record_reply(self, text: str) -> None:
        if self.record is not None and self.tap is not None:
            self.record.transcript.add(
                Direction.SERVER, self._redactor.server_line(text), secure=self.tap.secure
            )
            self.tap.server_reply(text)

    async def push(self, status: Any) -> None:
        if self.transport is None or self.transport.is_closing():
            return  # a fault closed the connection: nothing more reaches the client
        if not self._greeted:
            self._greeted = True
            if not self.sandbox.faults.accepts_connection():
                status = self._not_accepted()
            else:
                reply = await self.fault_reply(Stage.GREETING)
                if self.transport is None or self.transport.is_closing():
                    return
                if reply is not None:
                    status = reply
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else str(status)
        self._record_reply(text)
        if self._down is None:
            await super().push(status)
        else:
            await self._paced_push(self._down, status)
        if self._closing_fault:
            self.close_with(SessionOutcome.CLOSED_AFTER_FAULT, self._closing_fault)
        elif self._ending is not None and self._ending[0] is SessionOutcome.NOT_ACCEPTED:
            self.close_with(*self._ending)

    def _not_accepted(self) -> str:
        """The accept probability turned this connection away: a ``421`` greeting, then closed."""
        chance = f"{self.sandbox.faults.accept_probability:g}"
        assert self.record is not None
        self.record.transcript.event(
            EventKind.WARNING,
            f"connection turned away at random (accept probability {chance}): "
            "greeted 421 and closed",
        )
        self._ending = (SessionOutcome.NOT_ACCEPTED, chance)
        return NOT_ACCEPTED_REPLY

    async def _paced_push(self, pace: Pace, status: Any) -> None:
        """aiosmtpd's push, with the reply written in slices at the throttle's rate."""
        if isinstance(status, str):
            status = status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
        response = bytes(status) + b"\r\n"
        for start in range(0, len(response), pace.slice):
            chunk = response[start : start + pace.slice]
            await pace.take(len(chunk))
            if self.transport is None or self.transport.is_closing():
                return  # closed meanwhile (the idle timeout): nothing more goes
            self._writer.write(chunk)
            await self._writer.drain()

    async def fault_reply(self, stage: Stage, address: str = "", *, lost: str = "") -> str | None:
        """The answer a fault for ``stage`` gives instead of the normal one, or None.

        A delay is waited out here and the normal answer follows (None). A
        disconnect closes the connection at once (``lost`` is added to the
        session's outcome); the answer returned then is never sent. An answer
        to the greeting, or any 421, closes the connection once it is sent.
        """
        rule = self.sandbox.faults.decide(stage, address)
        if rule is None:
            return None
        assert self.record is not None
        self.record.transcript.event(EventKind.WARNING, f"fault injected: {rule.describe()}")
        if rule.action is FaultAction.DELAY:
            await asyncio.sleep(rule.delay)
            return None
        if rule.action is FaultAction.DISCONNECT:
            self.close_with(SessionOutcome.DISCONNECTED_BY_FAULT, f"{rule.describe()}{lost}")
            return "421 4.3.0 closing"  # never sent: the connection is closed
        if rule.stage is Stage.GREETING or rule.reply.startswith("421"):
            self._closing_fault = rule.describe()
        return rule.reply

    async def _apply_fault(self, stage: Stage) -> bool:
        """Answer with the fault for ``stage``, if any; True when it replaced the normal answer."""
        reply = await self.fault_reply(stage)
        if reply is None:
            return False
        await self.push(reply)  # dropped when the fault closed the connection
        return True

    def close_with(self, outcome: SessionOutcome, detail: str = "") -> None:
        """Close the connection now; ``outcome`` (naming ``detail``) becomes the session's."""
        self._ending = (outcome, detail)
        if self.transport is not None:
            self._cut_after_grace()
            self.transport.close()

    # -- commands -----------------------------------------------------------

    @_help_of(SMTP.smtp_HELO)
    async def smtp_HELO(self, hostname: str) -> None:
        if not await self._apply_fault(Stage.EHLO):
            self._note_helo(hostname)
            await super().smtp_HELO(hostname)

    @_help_of(SMTP.smtp_EHLO)
    async def smtp_EHLO(self, hostname: str) -> None:
        if not await self._apply_fault(Stage.EHLO):
            self._note_helo(hostname)
            await super().smtp_EHLO(hostname)

    def _note_helo(self, hostname: str) -> None:
        if self.record is not None and hostname:
            # Printed in the one-line summary: the client's text, escaped.
            self.record.helo = self.record.transcript.scrub(escape_controls(hostname[:255]))[0]

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's path parser, with a fast path for a plain ``<local@domain>``.

        The answer is aiosmtpd's own for every argument (see
        :mod:`tuimail.envelope_path`); only its cost differs.
        """
        parsed = plain_path(arg)
        if parsed is None:
            return super()._getaddr(arg)
        local_part, domain, rest = parsed
        if self.local_part_limit and len(local_part) > self.local_part_limit:
            return None, None
        return f"{local_part}@{domain}", rest

    @_help_of(SMTP.smtp_AUTH)
    async def smtp_AUTH(self, arg: str) -> None:
        if self.sandbox.config.auth_users is None:
            hint = self.sandbox.config.auth_hint
            await self.push(
                "502 5.5.1 AUTH is not enabled on this sandbox" + (f" ({hint})" if hint else "")
            )
            return
        if not await self._apply_fault(Stage.AUTH):
            await super().smtp_AUTH(arg)
            if self.record is not None and self.session is not None and self.session.authenticated:
                login = self.session.auth_data
                if isinstance(login, LoginPassword):
                    name = login.login.decode("utf-8", "replace")
                elif isinstance(login, TokenLogin):
                    name = login.user
                else:
                    return
                shown = escape_controls(name[:255])
                self.record.authenticated_as = self.record.transcript.scrub(shown)[0]
                self.record.auth_mechanism = arg.split()[0][:20].upper() if arg else ""

    # -- OAuth 2.0 bearer tokens (offered when SandboxConfig.takes_tokens) ---

    async def auth_XOAUTH2(self, _: SMTP, args: list[str]) -> AuthResult:
        """Google's XOAUTH2: ``user=U^Aauth=Bearer T^A^A``, refused with a JSON challenge."""
        return await self._bearer_auth(XOAUTH2, args)

    async def auth_OAUTHBEARER(self, _: SMTP, args: list[str]) -> AuthResult:
        """RFC 7628's OAUTHBEARER, refused with a JSON challenge answered by %x01."""
        return await self._bearer_auth(OAUTHBEARER, args)

    async def _bearer_auth(self, mechanism: str, args: list[str]) -> AuthResult:
        """Read the response strictly, check its token, accept or refuse as a real server.

        Malformed: ``501``, saying what is wrong. A token the authorization
        server says is not active, or is another user's: the ``334`` error
        challenge, then ``535`` once the client answered it. A token that
        could not be checked: ``454``, never an accept.
        """
        record = self.record
        assert record is not None
        if len(args) > 1:
            try:
                data = base64.b64decode(args[1], validate=True)
            except (binascii.Error, ValueError):
                await self.push(f"501 5.5.2 The {mechanism} response is not base64")
                return AuthResult(success=False, handled=True)
            blob = args[1]
        else:
            said = await self.challenge_auth("")
            if said is MISSING or not isinstance(said, bytes):
                return AuthResult(success=False, handled=True)  # aiosmtpd answered 501
            data, blob = said, base64.b64encode(said).decode("ascii")
        try:
            response = parse_response(mechanism, data)
        except MalformedResponse as exc:
            self._forbid(record, [blob])
            record.transcript.event(EventKind.WARNING, f"malformed {mechanism} response: {exc}")
            await self.push(f"501 5.5.2 Malformed {mechanism} response: {exc}")
            return AuthResult(success=False, handled=True)
        self._forbid(record, secret_forms(response.token.reveal()))
        shown_user = escape_controls(response.user[:255]) or "(no user named)"
        introspection = self.sandbox.config.oauth_introspect
        if introspection is None:
            record.transcript.event(
                EventKind.INFO,
                f"{mechanism} token for {shown_user} accepted without a check: "
                "no introspection endpoint is set, so any well-formed token is",
            )
            return AuthResult(success=True, auth_data=TokenLogin(response.user, mechanism))
        check = await self._introspect(introspection, response)
        where = escape_controls(introspection.url)
        if check.verdict is Verdict.UNCHECKED:
            record.transcript.event(
                EventKind.ERROR,
                f"the {mechanism} token for {shown_user} could not be checked at {where}: "
                f"{escape_controls(check.detail)}; answered with a temporary failure",
            )
            return AuthResult(success=False, handled=False, message=UNCHECKED_TOKEN)
        if check.verdict is Verdict.ACCEPTED:
            user = response.user or check.owner
            record.transcript.event(
                EventKind.INFO,
                f"{mechanism} token for {escape_controls(user[:255])} checked at {where}: "
                f"active, issued to {check.owner}",
            )
            return AuthResult(success=True, auth_data=TokenLogin(user, mechanism))
        if check.verdict is Verdict.INACTIVE:
            refusal = Refusal.INVALID_TOKEN
            why = "not active (expired, revoked or never issued)"
        else:
            refusal = Refusal.OTHER_USER
            why = f"issued to {check.owner}" if check.owner else "issued to no user it names"
        record.transcript.event(
            EventKind.WARNING,
            f"{mechanism} token for {shown_user} refused: {where} says it is {why}",
        )
        return await self._refuse_token(mechanism, error_challenge(mechanism, refusal, check.scope))

    def _forbid(self, record: SessionRecord, forms: list[str]) -> None:
        """Mask ``forms`` of a token in every later line, up to :data:`_MAX_FORBIDDEN_TOKENS`."""
        forms = [form for form in forms if len(form) >= _MIN_FORBIDDEN]
        if forms and self._tokens_forbidden < _MAX_FORBIDDEN_TOKENS:
            self._tokens_forbidden += 1
            record.transcript.forbid_forms(forms)

    async def _introspect(
        self, introspection: Introspection, response: BearerResponse
    ) -> TokenCheck:
        """:func:`check_token` in a thread, given up after :data:`INTROSPECT_TIMEOUT`.

        Or sooner when the idle timeout is shorter: the client, waiting for
        its answer, must get the ``454`` before the sandbox closes on it.
        """
        wait = min(INTROSPECT_TIMEOUT, 0.8 * self.sandbox.config.idle_timeout)
        try:
            async with asyncio.timeout(wait):
                return await asyncio.to_thread(
                    check_token, introspection, response.token, response.user
                )
        except TimeoutError:
            return TokenCheck(Verdict.UNCHECKED, detail=f"no answer within {wait:g} seconds")

    async def _refuse_token(self, mechanism: str, challenge: bytes) -> AuthResult:
        """The ``334`` error challenge, then ``535`` once the client has answered it."""
        answer = await self.challenge_auth(challenge)
        if answer is MISSING or not isinstance(answer, bytes):
            return AuthResult(success=False, handled=True)  # aiosmtpd answered 501
        wanted = CHALLENGE_ANSWER[mechanism]
        if answer != wanted and self.record is not None:
            said = "%x01 (RFC 7628 section 3.2.3)" if wanted else "an empty line, as Gmail's"
            self.record.transcript.event(
                EventKind.WARNING,
                f"the client answered the error challenge with {len(answer):,} bytes; "
                f"{mechanism} wants {said}",
            )
        return AuthResult(success=False, handled=False, message=TOKEN_REFUSED)

    @_help_of(SMTP.smtp_DATA)
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, with the message read in blocks (:mod:`tuimail.smtp_data`).

        The checks, replies and handler call are aiosmtpd's, in its order.
        """
        if await self._apply_fault(Stage.DATA):
            return
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        envelope = self.envelope
        assert envelope is not None
        if not envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = MessageData(DATA_LINE_LIMIT, self.data_size_limit)
        try:
            await read_message_data(self._reader, data)
        except asyncio.CancelledError:
            self._writer.close()  # the connection was lost during DATA
            raise
        if data.state is not DataState.NOMINAL:
            await self.push(_DATA_REFUSALS[data.state])
            self.envelope = Envelope()
            return
        # The sandbox never asks aiosmtpd to decode: content stays bytes.
        envelope.original_content = envelope.content = data.content()
        status = await self.event_handler.handle_DATA(self, self.session, envelope)
        self.envelope = Envelope()
        await self.push(status)

    async def handle_exception(self, error: Exception) -> str:
        """A command that raised: noted in the session, answered as a local error.

        aiosmtpd's own logs a traceback (on stderr when nothing is configured:
        over the app's screen) and answers ``500`` with the exception's text,
        which may name this machine's paths. A failed STARTTLS handshake is
        the client's doing and is common; its reason is what the session needs.
        """
        if isinstance(error, TLSSetupException):
            cause = error.__cause__
            reason = getattr(cause, "reason", None) or str(cause or "") or type(cause).__name__
            text = f"the TLS handshake after STARTTLS failed: {reason}"
            status = "454 4.7.0 TLS handshake failed"  # the connection is closed after it
        else:
            text = f"internal error while handling a command: {type(error).__name__}: {error}"
            status = "451 4.3.0 Local error in processing"
        if self.record is not None:
            self.record.transcript.event(EventKind.ERROR, escape_controls(text))
        return status

    @_help_of(SMTP.smtp_STARTTLS)
    async def smtp_STARTTLS(self, arg: str) -> None:
        """aiosmtpd's STARTTLS, made sure to end: a handshake that does not
        complete must still give back the connection's place.

        aiosmtpd hands the socket to an SSLProtocol that tells the SMTP
        protocol nothing if the connection ends before the handshake does: a
        client that says STARTTLS and then nothing (the idle timeout aborts
        it, which even wakes the handshake's waiter as if it had succeeded),
        or a STARTTLS pipelined after QUIT, left a session that never ended
        and a place under the cap that was never given back; enough of them
        and every client was refused.
        """
        plain = self.transport
        if plain is None or plain.is_closing():
            return  # QUIT or a fault closed the connection: nothing more begins
        try:
            await super().smtp_STARTTLS(arg)
        except BaseException:
            self._handshake_abandoned(plain)
            raise
        if self._handshake_abandoned(plain):
            # aiosmtpd's command loop runs while there is a transport: it ends
            # here, quietly (an exception would be logged as never retrieved).
            self.transport = None

    def _handshake_abandoned(self, plain: asyncio.BaseTransport) -> bool:
        """After STARTTLS: if its handshake began (aiosmtpd replaced the plain
        transport) and did not complete, close the socket and forget the session."""
        if self.transport is plain or (self.record is not None and self.record.secure):
            return False
        if self._ending is None:
            self._ending = (SessionOutcome.HANDSHAKE_INCOMPLETE, "")
        if isinstance(plain, asyncio.Transport):
            plain.abort()
        else:
            plain.close()
        self._forget()
        return True
