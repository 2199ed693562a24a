"""Server health probe: what check_smtp and CheckTLS tell an admin, per stage.

One probe of one target: TCP connect, banner, EHLO, TLS (STARTTLS or
implicit), optionally AUTH, QUIT, each timed, recorded with the same
transcript as a send, and judged OK, WARNING, CRITICAL or UNKNOWN with the
reasons. The first TLS handshake verifies the chain; when it is refused, a
second connection looks at the certificate without verifying, only to report
on it (:mod:`tuimail.trust`). No mail is ever sent, and the password goes only
over a connection whose certificate and host name were verified, or one the
profile explicitly says not to verify
(:func:`tuimail.smtp_stepper.auth_refusal`).

A stage that fails, by a timeout or otherwise, still counts the time it spent
waiting: a silent server shows as slow in the timings, never as fast.
"""

from __future__ import annotations

import asyncio
import enum
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiosmtplib.errors import (
    SMTPAuthenticationError,
    SMTPConnectResponseError,
    SMTPException,
    SMTPNotSupported,
    SMTPResponseException,
)

from tuimail.credentials import Secret
from tuimail.errors import TuimailError
from tuimail.profiles import Profile, Security
from tuimail.smtp_stepper import AuthNotAttempted, AuthRefusal, StageError, Stepper
from tuimail.stages import Stage
from tuimail.tlsinfo import (
    CertificateInfo,
    explain_verification_error,
    find_verification_error,
    verifying_context,
)
from tuimail.transcript import Entry, EventKind, Transcript
from tuimail.trust import TrustResult, describe_chain, hostname_matches, peer_chain
from tuimail.wire import Endpoint, WireCapture, default_ehlo_name


class Status(enum.IntEnum):
    """Nagios plugin states; the number is the exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass(frozen=True)
class Thresholds:
    warn_days: int = 21
    crit_days: int = 7
    warn_seconds: float = 5.0
    crit_seconds: float = 15.0

    def to_json(self) -> dict[str, Any]:
        return {
            "warn_days": self.warn_days,
            "crit_days": self.crit_days,
            "warn_seconds": self.warn_seconds,
            "crit_seconds": self.crit_seconds,
        }


@dataclass(frozen=True)
class ProbeTarget:
    """What to probe: a server, how to secure it, and what counts as healthy."""

    host: str
    port: int = 0
    security: Security = Security.STARTTLS
    ca_file: str = ""
    thresholds: Thresholds = field(default_factory=Thresholds)
    timeout: float = 10.0
    ehlo_name: str = ""
    name: str = ""
    profile: Profile | None = None  # for the optional AUTH check
    #: ``host`` is a mail domain: probe each of its MX hosts (see :func:`expand_mx`).
    mx: bool = False
    #: Whose target this is: ``profile:NAME`` (:meth:`from_profile`) or ``target:NAME``
    #: (``targets.toml``, :mod:`tuimail.targets`); "" for an address probed on its own.
    #: Two profiles on one server differ in what they trust and send (a CA file, the
    #: security, AUTH), so each is a target of its own, with its own history.
    owner: str = ""
    #: The IP address to connect to, already resolved through dnspython (``tuimail check``
    #: resolves each MX host itself); empty: resolve ``host``. TLS still names ``host``.
    address: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.security, Security):
            object.__setattr__(self, "security", Security(str(self.security).lower()))

    @property
    def effective_port(self) -> int:
        return self.port or self.security.default_port

    @property
    def address_key(self) -> str:
        """The server alone: its address and security (every target's key until the
        owner was part of it, so older history files are keyed by this)."""
        return f"{self.host}:{self.effective_port}/{self.security.value}"

    @property
    def key(self) -> str:
        """Identity in the monitor and the history: the owner (a profile, an extra
        target) and the server it watches; an address probed on its own is its address."""
        return f"{self.owner}@{self.address_key}" if self.owner else self.address_key

    @property
    def label(self) -> str:
        return self.name or f"{self.host}:{self.effective_port}"

    @classmethod
    def from_profile(cls, profile: Profile, thresholds: Thresholds | None = None) -> ProbeTarget:
        return cls(
            host=profile.host,
            port=profile.effective_port,
            security=profile.security,
            ca_file=profile.ca_file,
            thresholds=thresholds or Thresholds(),
            timeout=profile.timeout,
            ehlo_name=profile.ehlo_name,
            name=profile.name,
            profile=profile if profile.username else None,
            owner=f"profile:{profile.name}",
        )


@dataclass(frozen=True)
class TLSReport:
    version: str
    cipher: str
    bits: int
    chain: tuple[CertificateInfo, ...]
    trust: TrustResult
    #: The chain as the server sent it, leaf first, in DER: what DANE's TLSA records
    #: are compared with (tuimail/dane.py); not part of the JSON.
    der_chain: tuple[bytes, ...] = ()

    @property
    def days_left(self) -> int | None:
        return self.chain[0].days_left() if self.chain else None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "cipher": self.cipher,
            "bits": self.bits,
            "chain": [c.to_json() for c in self.chain],
            "days_left": self.days_left,
            **self.trust.to_json(),
        }


@dataclass
class ProbeReport:
    target: ProbeTarget
    transcript: Transcript
    started: float = field(default_factory=time.time)
    status: Status = Status.UNKNOWN
    reasons: list[str] = field(default_factory=list)
    timings: dict[Stage, float] = field(default_factory=dict)
    #: Seconds QUIT took, once sent: the goodbye, timed apart from the stages.
    quit_seconds: float | None = None
    banner: str = ""
    capabilities: dict[str, str] = field(default_factory=dict)
    capabilities_before_tls: dict[str, str] = field(default_factory=dict)
    tls: TLSReport | None = None
    auth: str = ""  # "", "ok", or the failure
    reached: bool = False

    @property
    def total(self) -> float:
        return sum(self.timings.values()) + (self.quit_seconds or 0.0)

    def labelled_timings(self) -> dict[str, float]:
        """The timings under the probe's words for them (:data:`PERF_LABELS`), QUIT last."""
        labelled = {PERF_LABELS[stage]: seconds for stage, seconds in self.timings.items()}
        if self.quit_seconds is not None:
            labelled[QUIT_LABEL] = self.quit_seconds
        return labelled

    def raise_status(self, status: Status, reason: str) -> None:
        """Add a reason; the status is the worst seen (UNKNOWN only when nothing else)."""
        self.reasons.append(reason)
        if self.status is Status.UNKNOWN or (status is not Status.UNKNOWN and status > self.status):
            self.status = status

    def summary(self) -> str:
        target = self.target
        parts = [f"{target.host}:{target.effective_port}"]
        if self.tls is not None:
            parts.append(f"{target.security.label} {self.tls.version}")
            if self.tls.days_left is not None:
                parts.append(f"cert {self.tls.days_left} days")
        elif self.reached:
            parts.append("no TLS")
        if self.reached:
            parts.append(f"{self.total:.3f}s")
        text = ", ".join(parts)
        if self.reasons:
            text += ": " + "; ".join(self.reasons)
        return text

    def nagios(self) -> str:
        """One Nagios plugin line: ``SMTP STATUS - text | perfdata``."""
        t = self.target.thresholds
        perf = [f"time={self.total:.6f}s;{t.warn_seconds:g};{t.crit_seconds:g};0"]
        for stage, label in PERF_LABELS.items():
            if stage in self.timings:
                perf.append(f"{label}={self.timings[stage]:.6f}s;;;0")
        if self.quit_seconds is not None:
            perf.append(f"{QUIT_LABEL}={self.quit_seconds:.6f}s;;;0")
        if self.tls is not None and self.tls.days_left is not None:
            perf.append(f"cert_days={self.tls.days_left};{t.warn_days};{t.crit_days}")
        text = self.summary().replace("|", "/")
        return f"SMTP {self.status.name} - {text} | {' '.join(perf)}"

    def to_json(self) -> dict[str, Any]:
        target = self.target
        described: dict[str, Any] = {
            "name": target.label,
            "host": target.host,
            "port": target.effective_port,
            "security": target.security.value,
            "thresholds": target.thresholds.to_json(),
        }
        if target.address:  # connected to an address found in DNS (tuimail check)
            described["address"] = target.address
        return {
            "target": described,
            "status": self.status.name,
            "exit_code": int(self.status),
            "reasons": self.reasons,
            "started": self.started,
            "timings": {k: round(v, 6) for k, v in self.labelled_timings().items()},
            "total": round(self.total, 6),
            "banner": self.banner,
            "capabilities": self.capabilities,
            "capabilities_before_tls": self.capabilities_before_tls,
            "tls": self.tls.to_json() if self.tls else None,
            "auth": self.auth,
            "transcript": [e.to_json() for e in self.transcript],
        }


def _context(target: ProbeTarget, verify: bool) -> ssl.SSLContext:
    """Trust as a client would (host name checked separately), or look without trusting."""
    context = verifying_context(target.ca_file)
    context.check_hostname = False
    if not verify:
        context.verify_mode = ssl.CERT_NONE
    return context


class _CertificateRefused(TuimailError):
    """The verifying handshake failed; the probe looks again without verification."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def probe(
    target: ProbeTarget,
    password: Secret | None = None,
    *,
    on_entry: Callable[[Entry], None] | None = None,
    previous_capabilities: dict[str, str] | None = None,
) -> ProbeReport:
    """Probe ``target`` once. Never raises for network or server problems."""
    transcript = Transcript(title=f"probe {target.label}")
    if on_entry is not None:
        transcript.subscribe(on_entry)
    if password:
        transcript.forbid(password.reveal())
    report = ProbeReport(target, transcript)
    deadline = target.timeout * 4 + 5
    try:
        async with asyncio.timeout(deadline):
            try:
                await _run(report, password, verify=True)
            except _CertificateRefused as refused:
                transcript.event(
                    EventKind.WARNING,
                    f"certificate refused ({refused.reason}); connecting again, without "
                    "verification, only to inspect it",
                )
                report.timings.clear()
                report.quit_seconds = None
                await _run(report, password, verify=False, refused=refused.reason)
    except TimeoutError:
        report.raise_status(
            Status.CRITICAL, f"the probe did not finish within {deadline:g} seconds"
        )
    except Exception as exc:  # a bug or an unforeseen library error: say so, do not crash
        report.raise_status(Status.UNKNOWN, f"probe error: {type(exc).__name__}: {exc}")
    _judge(report, previous_capabilities)
    _scrub(report)
    await _remember_size_limit(report)
    transcript.event(
        EventKind.ERROR if report.status >= Status.CRITICAL else EventKind.INFO,
        f"status {report.status.name}"
        + (f": {'; '.join(report.reasons)}" if report.reasons else ""),
    )
    return report


async def _remember_size_limit(report: ProbeReport) -> None:
    """A profile's server: keep its SIZE as last seen (tuimail/size_limits.py), when
    the capabilities that count were read (after TLS, when the profile uses it)."""
    target = report.target
    profile_name = target.owner.removeprefix("profile:")
    if profile_name == target.owner or not report.capabilities:
        return
    if target.security is not Security.NONE and report.tls is None:
        return  # TLS failed: what was said before it does not count
    if target.security is Security.STARTTLS and not report.capabilities_before_tls:
        return  # STARTTLS was not offered
    from tuimail.size_limits import remember_off_loop, server_key

    server = server_key(target.host, target.effective_port)
    await remember_off_loop(profile_name, server, report.capabilities)


def _why(exc: BaseException, timeout: float) -> str:
    """An exception in words; a timeout's own text is empty ("the TLS handshake failed: ")."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {timeout:g} seconds"
    return str(exc) or type(exc).__name__


def _scrub(report: ProbeReport) -> None:
    """Mask the password in the text the report quotes from the server.

    The transcript masks it in every line, but a reply is also quoted in the
    reasons, the AUTH result and the banner, which go to the Nagios line,
    the JSON and the probe history file. A server may echo what it was sent
    (``535 bad credentials for user/password``): that text must not carry
    the password out of the transcript's reach.
    """
    scrub = report.transcript.scrub
    report.reasons[:] = [scrub(reason)[0] for reason in report.reasons]
    report.auth = scrub(report.auth)[0]
    report.banner = scrub(report.banner)[0]


async def _run(
    report: ProbeReport, password: Secret | None, *, verify: bool, refused: str = ""
) -> None:
    target = report.target
    transcript = report.transcript
    implicit = target.security is Security.TLS
    uses_tls = target.security is not Security.NONE
    try:
        context = _context(target, verify) if uses_tls else None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        report.raise_status(
            Status.UNKNOWN,
            f"cannot use the CA file {target.ca_file!r}: {reason} "
            "(it must be a readable file of PEM certificates)",
        )
        return
    tls_seen: list[ssl.SSLObject] = []
    endpoint = Endpoint(
        target.host,
        target.effective_port,
        implicit_tls=implicit,
        tls_context=context,
        timeout=target.timeout,
        ehlo_name=target.ehlo_name or default_ehlo_name(),
        address=target.address,
    )
    stepper = Stepper(WireCapture(transcript), endpoint, on_tls=tls_seen.append)
    smtp = stepper.smtp
    transcript.event(
        EventKind.INFO, f"probing {target.host}:{target.effective_port} ({target.security.label})"
    )
    try:
        try:
            greeting = await stepper.connect()
            report.banner = greeting.message
        except StageError as failed:
            error = _smtp_error(failed)
            if isinstance(error, SMTPConnectResponseError):
                report.reached = True
                report.banner = f"{error.code} {error.message}"
                status = Status.WARNING if 400 <= error.code < 500 else Status.CRITICAL
                report.raise_status(status, f"the banner is {error.code} {error.message}, not 220")
                return
            _raise_if_refused(error, report, verify)
            if failed.stage is Stage.GREETING:
                report.reached = True
                report.raise_status(Status.CRITICAL, f"no banner: {_why(error, target.timeout)}")
            elif failed.stage is Stage.TLS:
                report.reached = True
                report.raise_status(
                    Status.CRITICAL, f"the TLS handshake failed: {_why(error, target.timeout)}"
                )
            else:
                report.raise_status(Status.CRITICAL, f"unreachable: {_why(error, target.timeout)}")
            return
        report.reached = True
        if tls_seen:
            _record_tls(report, tls_seen[-1], refused)

        report.capabilities = await stepper.greet()

        if target.security is Security.STARTTLS:
            before_tls = report.capabilities
            try:
                await stepper.starttls()
            except StageError as failed:
                error = _smtp_error(failed)
                if isinstance(error, SMTPNotSupported):
                    # The stepper checked the EHLO reply; the probe goes on to report the rest.
                    report.raise_status(Status.CRITICAL, "STARTTLS is not offered")
                else:
                    report.capabilities_before_tls = before_tls
                    if isinstance(error, SMTPResponseException):
                        report.raise_status(
                            Status.CRITICAL, f"STARTTLS refused: {error.code} {error.message}"
                        )
                        return
                    _raise_if_refused(error, report, verify)
                    report.raise_status(
                        Status.CRITICAL, f"the TLS handshake failed: {_why(error, target.timeout)}"
                    )
                    return
            else:
                report.capabilities_before_tls = before_tls
                if tls_seen:
                    _record_tls(report, tls_seen[-1], refused)
                report.capabilities = await stepper.greet()

        if target.profile is not None and password is not None:
            await _check_auth(report, stepper, password, inspecting=bool(refused))

        stepper.stop_clock()
        started = time.monotonic()
        try:
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except (SMTPException, OSError) as exc:
                    report.reasons.append(f"QUIT failed: {_why(exc, target.timeout)}")
        finally:
            report.quit_seconds = time.monotonic() - started
    except StageError as failed:
        error = _smtp_error(failed)
        report.raise_status(
            Status.CRITICAL, f"{failed.stage.value} failed: {_why(error, target.timeout)}"
        )
    finally:
        stepper.close()
        report.timings.update(stepper.timings)


#: The probe's name for each stage it times, in the order of its Nagios perfdata, as its
#: perfdata, JSON and history have always said (users' monitoring matches these words).
PERF_LABELS: dict[Stage, str] = {
    Stage.CONNECT: "connect",
    Stage.GREETING: "banner",
    Stage.EHLO: "ehlo",
    Stage.TLS: "tls",
    Stage.AUTH: "auth",
}
#: QUIT, no stage of the conversation, under its own word, last.
QUIT_LABEL = "quit"


def _smtp_error(failed: StageError) -> BaseException:
    """The error that stopped a stage, if it is the network's or the server's.

    Anything else is a bug or an unforeseen library error: it is raised again,
    for :func:`probe` to report as such.
    """
    if isinstance(failed.error, (SMTPException, OSError)):
        return failed.error
    raise failed.error


#: What the probe reports when the password was not sent, and how bad that is.
_AUTH_SKIPPED: dict[AuthRefusal, tuple[Status, str]] = {
    AuthRefusal.NOT_ENCRYPTED: (Status.WARNING, "AUTH skipped: the connection is not encrypted"),
    AuthRefusal.CERTIFICATE_REFUSED: (
        Status.WARNING,
        "AUTH skipped: the certificate was refused, so the password was not sent",
    ),
    AuthRefusal.CERTIFICATE_UNVERIFIED: (
        Status.WARNING,
        "AUTH skipped: the certificate was not verified, so the password was not sent",
    ),
    AuthRefusal.NOT_OFFERED: (Status.CRITICAL, "no supported AUTH mechanism offered"),
    AuthRefusal.NO_MECHANISM: (Status.CRITICAL, "no supported AUTH mechanism offered"),
    AuthRefusal.NO_PASSWORD: (Status.WARNING, "AUTH skipped: no password is available"),
}


async def _check_auth(
    report: ProbeReport, stepper: Stepper, password: Secret, *, inspecting: bool
) -> None:
    """AUTH where the stepper's rules let the password go (tuimail/smtp_stepper.py)."""
    target = report.target
    profile = target.profile
    assert profile is not None
    tls = report.tls
    try:
        await stepper.authenticate(
            profile.username,
            password,
            wanted=profile.auth_mechanism,
            plaintext_allowed=target.security is Security.NONE and profile.allow_plaintext_auth,
            verify_tls=profile.verify_tls,
            # The probe's handshake checks the chain only; the host name is checked
            # by _record_tls, and both must hold.
            verified=tls is not None and tls.trust.trusted and tls.trust.hostname_matches,
            inspecting=inspecting,
        )
        report.auth = "ok"
    except StageError as failed:
        exc = failed.error
        if isinstance(exc, AuthNotAttempted):
            status, report.auth = _AUTH_SKIPPED[exc.reason]
            report.raise_status(status, report.auth)
        elif isinstance(exc, SMTPAuthenticationError) and stepper.mechanism is not None:
            report.auth = f"rejected: {exc.code} {exc.message}"
            mechanism = stepper.mechanism.value.upper()
            report.raise_status(Status.CRITICAL, f"AUTH {mechanism} {report.auth}")
        else:
            raise


def _raise_if_refused(exc: BaseException, report: ProbeReport, verify: bool) -> None:
    verification = find_verification_error(exc)
    if verify and verification is not None:
        reason = explain_verification_error(verification, report.target.host, None)
        raise _CertificateRefused(reason) from None


def _record_tls(report: ProbeReport, ssl_object: ssl.SSLObject, refused: str) -> None:
    chain = peer_chain(ssl_object)
    cipher_name, _protocol, bits = ssl_object.cipher() or ("unknown", "", 0)
    host = report.target.host
    described = describe_chain(chain)
    matches = bool(described) and hostname_matches(described[0], host)
    reasons = [refused] if refused else []
    if refused and described and described[0].not_after < datetime.now(UTC):
        reasons[0] = (
            f"the certificate for {host} expired on {described[0].not_after:%Y-%m-%d %H:%M} UTC"
        )
    if described and not matches:
        leaf = described[0]
        names = ", ".join(leaf.names) or leaf.subject
        reasons.append(f"the certificate does not match {host} (it is for {names})")
    trust = TrustResult(not refused, matches, "; ".join(reasons))
    report.tls = TLSReport(
        ssl_object.version() or "unknown",
        cipher_name,
        bits or 0,
        tuple(described),
        trust,
        tuple(chain),
    )
    first = report.tls.chain[0] if report.tls.chain else None
    report.transcript.event(
        EventKind.TLS,
        f"TLS {report.tls.version}, {cipher_name}"
        + (f"; certificate {first.subject}, expires {first.not_after:%Y-%m-%d}" if first else "")
        + ("; trusted" if trust.trusted and trust.hostname_matches else f"; {trust.reason}"),
        secure=True,
        **report.tls.to_json(),
    )


def _judge(report: ProbeReport, previous: dict[str, str] | None) -> None:
    """Thresholds and comparisons that apply once the stages are done."""
    thresholds = report.target.thresholds
    tls = report.tls
    if tls is not None:
        if not tls.trust.trusted or not tls.trust.hostname_matches:
            report.raise_status(Status.CRITICAL, tls.trust.reason)
        days = tls.days_left
        if days is not None and days >= 0 and tls.trust.trusted:
            if days <= thresholds.crit_days:
                report.raise_status(Status.CRITICAL, f"the certificate expires in {days} days")
            elif days <= thresholds.warn_days:
                report.raise_status(Status.WARNING, f"the certificate expires in {days} days")
    if report.reached and report.timings:
        total = report.total
        if total >= thresholds.crit_seconds:
            report.raise_status(
                Status.CRITICAL, f"slow: {total:.3f}s (critical at {thresholds.crit_seconds:g}s)"
            )
        elif total >= thresholds.warn_seconds:
            report.raise_status(
                Status.WARNING, f"slow: {total:.3f}s (warning at {thresholds.warn_seconds:g}s)"
            )
    if previous is not None and report.capabilities:
        changes = capability_changes(previous, report.capabilities)
        if changes:
            report.raise_status(Status.WARNING, "capabilities changed: " + ", ".join(changes))
    if report.status is Status.UNKNOWN and report.reached and not report.reasons:
        report.status = Status.OK


def capability_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What changed, as ``+CHUNKING``, ``-STARTTLS``, ``SIZE 10 -> 20``."""
    changes = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            changes.append(f"+{name.upper()}")
        elif name not in after:
            changes.append(f"-{name.upper()}")
        elif before[name].strip() != after[name].strip():
            changes.append(f"{name.upper()} {before[name].strip()} -> {after[name].strip()}")
    return changes


async def probe_many(
    targets: Iterable[ProbeTarget],
    *,
    concurrency: int = 10,
    passwords: dict[str, Secret] | None = None,
    previous: dict[str, dict[str, str]] | None = None,
    on_report: Callable[[ProbeReport], None] | None = None,
) -> list[ProbeReport]:
    """Probe several targets, at most ``concurrency`` at a time; results in target order.

    ``on_report`` sees each report as soon as its probe ends, so a screen can
    show results one by one instead of all at once at the end of the round.
    """
    limit = asyncio.Semaphore(max(1, concurrency))
    passwords = passwords or {}
    previous = previous or {}

    async def one(target: ProbeTarget) -> ProbeReport:
        async with limit:
            report = await probe(
                target,
                passwords.get(target.key),
                previous_capabilities=previous.get(target.key),
            )
        if on_report is not None:
            on_report(report)
            await asyncio.sleep(0)  # let the caller's loop breathe between reports
        return report

    return list(await asyncio.gather(*(one(t) for t in targets)))


async def expand_mx(
    target: ProbeTarget, lookup: Callable[..., Any] | None = None
) -> list[ProbeTarget]:
    """An MX target's hosts, each a target on the same port with the same thresholds.

    All of them, best first: a caller probes the first
    :data:`tuimail.mx.MX_HOSTS_EXAMINED` and says how many more the domain
    lists (:func:`mx_hosts_left_out`).
    """
    from dataclasses import replace

    from tuimail.mx import lookup_mx

    hosts = await (lookup or lookup_mx)(target.host, timeout=target.timeout)
    return [
        replace(target, host=mx.host, mx=False, name=f"{target.label} MX {mx.preference} {mx.host}")
        for mx in hosts
    ]


def mx_hosts_left_out(domain: str, listed: int) -> str:
    """Words for a domain listing more MX hosts than are probed ("" when it does not)."""
    from tuimail.mx import MX_HOSTS_EXAMINED

    if listed <= MX_HOSTS_EXAMINED:
        return ""
    return (
        f"{domain} lists {listed} MX hosts; the best {MX_HOSTS_EXAMINED} are probed and "
        f"{listed - MX_HOSTS_EXAMINED} are not (senders try only the first few)"
    )


def worst(reports: Iterable[ProbeReport]) -> Status:
    statuses = [r.status for r in reports]
    if not statuses:
        return Status.UNKNOWN
    known = [s for s in statuses if s is not Status.UNKNOWN]
    return max(known) if known else Status.UNKNOWN
