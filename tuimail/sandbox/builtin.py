"""Starting the built-in sandbox on its fixed port, or on another with a note saying why.

The app and ``tuimail send --profile sandbox`` both start it here, so both
try the same port first (config.toml's ``[sandbox] port``, else 2525: see
tuimail/user_config.py) and word a fallback alike. It lives in the sandbox
package, not in tuimail/sandbox_profile.py, because it starts a server: the
profile module is what a client reads without importing one.
"""

from __future__ import annotations

from collections.abc import Callable

from tuimail.sandbox.config import PortUnavailable
from tuimail.sandbox.server import Sandbox


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
