"""The stages of an SMTP conversation, one name for each, shared by every part of tuimail.

The client session (tuimail/session.py), the probe (tuimail/probe.py), the
wire capture (tuimail/wire.py), the sandbox's fault rules
(tuimail/faults.py) and the exit codes (tuimail/cli/exitcodes.py) all speak of
the same stages, so a stage named in a failure, a fault rule or a timing is
the same value everywhere. The values are the words users see (``failed at
auth``, ``--fault rcpt:550``) and script against: never rename one.

This module imports nothing, so the command line can name stages (in its
help text) without loading the SMTP stack.
"""

from __future__ import annotations

import enum


class Stage(enum.StrEnum):
    """Where in an SMTP conversation something happens, in the order it happens."""

    #: Resolving the host and opening the TCP connection.
    CONNECT = "connect"
    #: The TLS handshake: implicit TLS right after connecting, or STARTTLS after EHLO.
    TLS = "tls"
    #: The server's first reply (the banner).
    GREETING = "greeting"
    #: EHLO (or HELO), before and again after STARTTLS.
    EHLO = "ehlo"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    #: The DATA command and, for a client, the message data up to the reply to its final dot.
    DATA = "data"
    #: The final dot alone, as a server sees it: after the message data, before its reply.
    DOT = "dot"
