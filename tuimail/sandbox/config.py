"""What a sandbox is started with: its settings, checked, and the auth file.

:class:`SandboxConfig` is plain data; :func:`sandbox_config_from` checks
values a person typed and raises :class:`SandboxError` subclasses that carry
the offending value, so the face that asked (``tuimail serve``, the app)
words the problem in its own terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuimail import paths
from tuimail.errors import TuimailError
from tuimail.profiles import Security
from tuimail.sandbox.bearer_check import Introspection

DEFAULT_PORT = 2525
DEFAULT_SIZE_LIMIT = 32 * 1024 * 1024
#: File descriptors kept free for what is not a connection: the listening
#: sockets, the Maildir files made ahead, session files, TLS files, stdio.
FD_RESERVE = 64
#: However high the open-file limit, no more connections than this at once.
MAX_CONNECTIONS_CEILING = 4096
#: Recipients per message by default, as Postfix's ``smtpd_recipient_limit``.
DEFAULT_MAX_RECIPIENTS = 1000
#: The largest throttle (bytes per second) and recipient limit taken: beyond
#: them the setting would change nothing a client can notice.
MAX_THROTTLE = 1024 * 1024 * 1024
MAX_RECIPIENTS_CEILING = 1_000_000


class SandboxError(TuimailError):
    """The sandbox cannot start; the message says why in plain words."""


class SettingRefused(SandboxError):
    """A setting the sandbox cannot run with.

    ``setting`` names the :class:`SandboxConfig` field, ``value`` is what was
    given and ``requirement`` what the setting must be; a face that took the
    value under another name (a command-line option) words it with that name.
    """

    def __init__(self, setting: str, value: object, requirement: str) -> None:
        self.setting = setting
        self.value = value
        self.requirement = requirement
        super().__init__(f"{setting} {value!r}: {requirement}")


class PortUnavailable(SandboxError):
    """The port cannot be listened on: taken by another program (``in_use``), or privileged.

    ``host`` and ``port`` are where the sandbox was to listen; the face that
    started it says what might hold the port and how to choose another.
    """

    def __init__(self, host: str, port: int, *, in_use: bool) -> None:
        self.host = host
        self.port = port
        self.in_use = in_use
        if in_use:
            text = f"port {port} on {host} is already in use"
        else:
            text = f"not allowed to listen on port {port}; ports below 1024 need privileges"
        super().__init__(text)


@dataclass
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    maildir: Path | None = None
    security: Security = Security.NONE
    #: ``None``: no AUTH; empty dict: any credentials accepted; else user -> password.
    auth_users: dict[str, str] | None = None
    auth_required: bool = False
    size_limit: int = DEFAULT_SIZE_LIMIT
    idle_timeout: float = 60.0
    hostname: str = "localhost"
    sessions_dir: Path | None = None
    certificate_dir: Path | None = None
    #: Connections served at once; ``None``: derived from the open-file limit.
    max_connections: int | None = None
    #: How the person running the sandbox turns AUTH on, quoted in the reply
    #: to an AUTH it does not offer; each face says it in its own terms.
    auth_hint: str = ""
    #: Where each OAuth token is checked (RFC 7662); ``None``: with AUTH for
    #: any credentials, any well-formed token is accepted.
    oauth_introspect: Introspection | None = None
    #: Bytes per second the sandbox reads from each client (client to
    #: server), and writes to it (server to client); 0: as fast as it can.
    throttle_up: int = 0
    throttle_down: int = 0
    #: RCPT commands accepted per transaction; more are answered ``452``
    #: (RFC 5321 4.5.3.1.10) and the session goes on.
    max_recipients: int = DEFAULT_MAX_RECIPIENTS

    @property
    def takes_tokens(self) -> bool:
        """XOAUTH2 and OAUTHBEARER are offered: AUTH for anyone, or tokens checked by introspection.

        An auth file lists passwords only: its users' tokens could not be
        checked, so without introspection it offers no token mechanism.
        """
        return self.auth_users == {} or (
            self.auth_users is not None and self.oauth_introspect is not None
        )

    def resolved_max_connections(self) -> int:
        return self.max_connections or default_max_connections()

    def resolved_maildir(self) -> Path:
        return self.maildir or paths.data_dir() / "sandbox" / "maildir"

    def resolved_sessions_dir(self) -> Path:
        return self.sessions_dir or paths.data_dir() / "sandbox" / "sessions"


def sandbox_config_from(
    *,
    host: str,
    port: int,
    maildir: Path | None,
    security: Security,
    auth_users: dict[str, str] | None,
    auth_required: bool,
    size_limit: int,
    idle_timeout: float,
    max_connections: int | None = None,
    auth_hint: str = "",
    oauth_introspect: Introspection | None = None,
    throttle_up: int = 0,
    throttle_down: int = 0,
    max_recipients: int = DEFAULT_MAX_RECIPIENTS,
) -> SandboxConfig:
    """Check values a person gave into a :class:`SandboxConfig`, else :class:`SettingRefused`."""
    if not 0 <= port <= 65535:
        raise SettingRefused("port", port, "is not a port number (0-65535)")
    if size_limit < 0:
        raise SettingRefused("size_limit", size_limit, "must be 0 (no limit) or more")
    if not 0 < idle_timeout <= 3600:
        raise SettingRefused(
            "idle_timeout", idle_timeout, "must be more than 0 and at most 3600 seconds"
        )
    if auth_required and auth_users is None:
        raise SettingRefused("auth_required", auth_required, "needs AUTH to be offered")
    if max_connections is not None and max_connections < 1:
        raise SettingRefused("max_connections", max_connections, "must be 1 or more")
    if oauth_introspect is not None:
        _check_introspection(oauth_introspect, auth_users)
    for setting, rate in (("throttle_up", throttle_up), ("throttle_down", throttle_down)):
        if not 0 <= rate <= MAX_THROTTLE:
            raise SettingRefused(
                setting, rate, f"must be 0 (no throttle) or up to {MAX_THROTTLE:,} bytes per second"
            )
    if not 1 <= max_recipients <= MAX_RECIPIENTS_CEILING:
        raise SettingRefused(
            "max_recipients", max_recipients, f"must be from 1 to {MAX_RECIPIENTS_CEILING:,}"
        )
    return SandboxConfig(
        host=host,
        port=port,
        maildir=maildir,
        security=security,
        auth_users=auth_users,
        auth_required=auth_required,
        size_limit=size_limit,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        auth_hint=auth_hint,
        oauth_introspect=oauth_introspect,
        throttle_up=throttle_up,
        throttle_down=throttle_down,
        max_recipients=max_recipients,
    )


def _check_introspection(introspection: Introspection, auth_users: dict[str, str] | None) -> None:
    """Tokens are checked only where AUTH is offered, and the client secret goes only over https."""
    from tuimail.oauth.errors import EndpointRefused
    from tuimail.oauth.transport import check_endpoint

    url = introspection.url
    if auth_users is None:
        raise SettingRefused("oauth_introspect", url, "needs AUTH to be offered")
    try:
        check_endpoint(url)
    except EndpointRefused:
        raise SettingRefused(
            "oauth_introspect",
            url,
            "must be an https:// address (plain http:// only to this machine, for testing)",
        ) from None


def default_max_connections() -> int:
    """Connections to serve at once: half of what the open-file limit leaves free.

    Each connection holds one descriptor, and storing a message or writing a
    session file needs more for a moment; at half, the sandbox always has a
    descriptor to accept one more connection and answer it ``421``, instead
    of leaving it unanswered in the kernel's queue.
    """
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 2 * (MAX_CONNECTIONS_CEILING + FD_RESERVE)
    return max(1, min(MAX_CONNECTIONS_CEILING, (soft - FD_RESERVE) // 2))


#: Largest auth file read; a password list is a few lines.
MAX_AUTH_FILE = 1024 * 1024


def _read_small_text(path: Path, what: str, limit: int) -> str:
    """A regular UTF-8 file of at most ``limit`` bytes, else a :class:`SandboxError`.

    Read through :func:`tuimail.small_files.read_small_file`, which checks the
    open descriptor itself: ``/dev/zero`` is never read without end, and a
    FIFO (even one swapped in after a look at the path) never blocks the start.
    """
    from tuimail.small_files import NotReadable, read_small_file

    try:
        data = read_small_file(path, limit)
    except NotReadable as exc:
        raise SandboxError(f"{what} {path} {exc.strerror}") from None
    except OSError as exc:
        raise SandboxError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SandboxError(f"{what} {path} is not UTF-8 text") from None


def load_auth_file(path: Path) -> dict[str, str]:
    """``user:password`` per line; ``#`` comments and blank lines are ignored."""
    users: dict[str, str] = {}
    text = _read_small_text(path, "the auth file", MAX_AUTH_FILE)
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        user, sep, password = stripped.partition(":")
        if not sep or not user:
            raise SandboxError(f"{path}:{number}: expected 'user:password'")
        users[user] = password
    if not users:
        raise SandboxError(f"{path}: no 'user:password' lines")
    return users


#: config.toml's ``[sandbox]`` keys for a sandbox that behaves like a slow,
#: choosy server; ``throttle`` sets both directions, the others one each.
CHAOS_KEYS = ("throttle", "throttle_up", "throttle_down", "accept_probability", "max_recipients")


def chaos_from_table(table: object) -> tuple[dict[str, Any], list[str]]:
    """The realism settings in config.toml's ``[sandbox]`` table, and what is wrong with any.

    Returns keyword values for :func:`sandbox_config_from` (``throttle_up``,
    ``throttle_down``, ``max_recipients``) and ``accept_probability`` (for the
    fault plan). A value that is not usable is left out (the sandbox then runs
    without it) and a problem in words says so, as for ``[sandbox] port``: a
    sandbox running as it would by default is more use than none.
    """
    found: dict[str, Any] = {}
    problems: list[str] = []
    if not isinstance(table, dict):
        return found, problems

    def whole(key: str, low: int, high: int, what: str) -> int | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        problems.append(f"config.toml [sandbox] {key} = {value!r} is not {what}; not used")
        return None

    rate = f"a number of bytes per second (0 for none, at most {MAX_THROTTLE:,})"
    both = whole("throttle", 0, MAX_THROTTLE, rate)
    for direction in ("throttle_up", "throttle_down"):
        one = whole(direction, 0, MAX_THROTTLE, rate)
        if one is not None or both is not None:
            found[direction] = one if one is not None else both
    limit = whole(
        "max_recipients", 1, MAX_RECIPIENTS_CEILING, f"from 1 to {MAX_RECIPIENTS_CEILING:,}"
    )
    if limit is not None:
        found["max_recipients"] = limit
    chance = table.get("accept_probability")
    if chance is not None:
        if isinstance(chance, int | float) and not isinstance(chance, bool) and 0 <= chance <= 1:
            found["accept_probability"] = float(chance)
        else:
            problems.append(
                f"config.toml [sandbox] accept_probability = {chance!r} is not a number "
                "from 0 to 1; not used"
            )
    return found, problems
