"""The sandbox: a local capture SMTP server with server-side transcripts and faults.

What Mailpit and smtp4dev give a developer (every message kept, nothing
delivered), plus what none of them shows: the conversation as the server saw
it, recorded with the same :class:`~tuimail.transcript.Transcript` model and
the same redaction as the client side. Built on aiosmtpd. Mail is kept in a Maildir
exactly as received after dot-unstuffing, written before the 250.

One module per job:

* :mod:`~tuimail.sandbox.config`: the settings, checked, and the auth file;
* :mod:`~tuimail.sandbox.server`: :class:`Sandbox`, which listens, admits
  connections, keeps sessions and stores messages;
* :mod:`~tuimail.sandbox.host`: what a connection needs from the sandbox,
  an interface :class:`Sandbox` satisfies (the server imports the parts below,
  they do not import it back);
* :mod:`~tuimail.sandbox.protocol`: aiosmtpd's SMTP protocol with the
  transcript and the faults that must fire before aiosmtpd's own checks;
* :mod:`~tuimail.sandbox.handler`: aiosmtpd's documented handler hooks;
* :mod:`~tuimail.sandbox.tap`: the client's raw bytes as transcript lines;
* :mod:`~tuimail.sandbox.admission`: implicit-TLS connections up to their handshake;
* :mod:`~tuimail.sandbox.record`: what a session keeps (record, stored messages);
* :mod:`~tuimail.sandbox.store`: the Maildir, written before each 250;
* :mod:`~tuimail.sandbox.session_files`: the session files on disk;
* :mod:`~tuimail.sandbox.discovery`: telling other processes where the
  built-in sandbox listens and who serves it (who may serve it is decided in
  :mod:`tuimail.sandbox_profile`);
* :mod:`~tuimail.sandbox.builtin`: starting the built-in sandbox on its fixed
  port, and the settings ``tuimail serve`` compares with the running one's.

What the Maildir holds, whoever received it (the list F5 shows and
``tuimail inbox`` reads), is the inbox's index: :mod:`tuimail.inbox`.
"""

from __future__ import annotations

from tuimail.sandbox.config import (
    DEFAULT_PORT,
    DEFAULT_SIZE_LIMIT,
    MAX_AUTH_FILE,
    PortUnavailable,
    SandboxConfig,
    SandboxError,
    SettingRefused,
    default_max_connections,
    load_auth_file,
    sandbox_config_from,
)
from tuimail.sandbox.discovery import announce, withdraw
from tuimail.sandbox.handler import MAX_RECIPIENTS, NEEDS_SMTPUTF8, TOO_MANY_RECIPIENTS
from tuimail.sandbox.protocol import TOO_MANY_CONNECTIONS, SandboxSMTP
from tuimail.sandbox.record import (
    MAX_MESSAGE_ID_CHARS,
    MESSAGE_MAX_LISTED_RECIPIENTS,
    SESSION_MAX_CHARS,
    SESSION_MAX_ENTRIES,
    SESSION_MAX_MESSAGES,
    SessionOutcome,
    SessionRecord,
    StoredMessage,
)
from tuimail.sandbox.server import Sandbox
from tuimail.sandbox.tap import ClientTap

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_SIZE_LIMIT",
    "MAX_AUTH_FILE",
    "MAX_MESSAGE_ID_CHARS",
    "MAX_RECIPIENTS",
    "MESSAGE_MAX_LISTED_RECIPIENTS",
    "NEEDS_SMTPUTF8",
    "SESSION_MAX_CHARS",
    "SESSION_MAX_ENTRIES",
    "SESSION_MAX_MESSAGES",
    "TOO_MANY_CONNECTIONS",
    "TOO_MANY_RECIPIENTS",
    "ClientTap",
    "PortUnavailable",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "SandboxSMTP",
    "SessionOutcome",
    "SessionRecord",
    "SettingRefused",
    "StoredMessage",
    "announce",
    "default_max_connections",
    "load_auth_file",
    "sandbox_config_from",
    "withdraw",
]
