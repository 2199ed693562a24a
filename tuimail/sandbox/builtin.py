"""Starting the built-in sandbox on its fixed port, or on another with a note saying why.

The app and ``tuimail send --profile sandbox`` both start it here, so both
try the same port first (config.toml's ``[sandbox] port``, else 2525: see
tuimail/user_config.py) and word a fallback alike. It lives in the sandbox
package, not in tuimail/sandbox_profile.py, because it starts a server: the
profile module is what a client reads without importing one (and decides
who serves: :func:`~tuimail.sandbox_profile.claim_or_find`).

:func:`settings_of` and :func:`differences` let ``tuimail serve`` tell whether
its options are those of the sandbox already running (nothing to start) or
not (it runs as a server of its own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuimail.faults import FaultPlan
from tuimail.sandbox.config import PortUnavailable, SandboxConfig
from tuimail.sandbox.server import Sandbox
from tuimail.sandbox_profile import RUNTIME_TLS_WORDS, RunningSandbox


def fallback_note(wanted: int, port: int, *, in_use: bool) -> str:
    """Why the built-in sandbox is not on the port it was to use, and where it is instead."""
    if in_use:
        why = f"port {wanted} is in use (by another program, or another sandbox?)"
    else:
        why = f"port {wanted} needs privileges (ports below 1024 do)"
    return f"{why}; the sandbox listens on {port} this time"


async def start_builtin(port: int, make: Callable[[int], Sandbox]) -> tuple[Sandbox, str]:
    """Start the built-in sandbox on ``port``, else on any free port with a note saying why.

    ``make`` builds the sandbox for a port (each face adds its own settings).
    The app and ``tuimail send --profile sandbox`` both start it here, so both
    try the same fixed port first and word a fallback alike. Other
    :class:`~tuimail.sandbox.SandboxError` (a Maildir that cannot be made)
    propagate: another port would not help.
    """
    sandbox = make(port)
    try:
        await sandbox.start()
    except PortUnavailable as exc:
        if port == 0:
            raise
        sandbox = make(0)
        await sandbox.start()
        return sandbox, fallback_note(port, sandbox.client_profile().port, in_use=exc.in_use)
    return sandbox, ""


def settings_of(config: SandboxConfig, faults: FaultPlan | None = None) -> dict[str, Any]:
    """What a client of the sandbox meets, as the runtime file keeps it (never a password).

    The port is not among them: the built-in one may have fallen back to
    another, and ``tuimail serve`` compares a port only when one was given.
    """
    auth = "none" if config.auth_users is None else "any" if not config.auth_users else "file"
    if config.oauth_introspect is not None:
        auth += "+introspect"
    plan = faults or FaultPlan()
    return {
        "host": config.host,
        "tls": RUNTIME_TLS_WORDS[config.security],
        "auth": auth,
        "auth_required": config.auth_required,
        "size_limit": config.size_limit,
        "idle_timeout": config.idle_timeout,
        "max_connections": config.max_connections,
        "throttle_up": config.throttle_up,
        "throttle_down": config.throttle_down,
        "max_recipients": config.max_recipients,
        "faults": plan.describe() + ([f"seed {plan.seed}"] if plan.seed is not None else []),
        "maildir": str(config.resolved_maildir()),
    }


#: Each setting of :func:`settings_of` in a person's words.
SETTING_WORDS = {
    "host": "address",
    "tls": "TLS",
    "auth": "AUTH",
    "auth_required": "AUTH",
    "size_limit": "size limit",
    "idle_timeout": "idle timeout",
    "max_connections": "connection cap",
    "throttle_up": "throttle",
    "throttle_down": "throttle",
    "max_recipients": "recipient limit",
    "faults": "faults",
    "maildir": "Maildir",
}


#: Settings a sandbox of an earlier version did not write: it ran with these.
_UNSAID: dict[str, Any] = {"throttle_up": 0, "throttle_down": 0, "max_recipients": 1000}


def differences(running: RunningSandbox, settings: dict[str, Any], port: int | None) -> list[str]:
    """The settings (in words) in which ``settings`` differ from the running sandbox's.

    ``port`` is the one asked for, if one was (0, any free port, always
    differs: it asks for a server of its own). Two AUTH files (or two
    introspection clients) are never taken for the same: the runtime file
    keeps no secret to compare.
    """
    words: list[str] = []
    if port is not None and port != running.port:
        words.append("port")
    theirs = {**_UNSAID, **running.settings}
    for key, word in SETTING_WORDS.items():
        mine = settings.get(key)
        differ = theirs.get(key) != mine
        if key == "auth" and mine not in ("none", "any"):
            differ = True
        if key == "faults":
            differ = list(theirs.get(key) or []) != list(mine or [])
        if differ and word not in words:
            words.append(word)
    return words
