"""App-wide messages: small dataclasses that carry core events to the screens.

Workers post them to the app, which hands a copy to each listening screen.
They do not bubble: a screen's copy must not travel back up to the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # the server (aiosmtpd) is imported when the sandbox starts, not before
    from tuimail.sandbox import SessionRecord
    from tuimail.transcript import Entry
    from tuimail.ui.history import SessionRun


@dataclass
class SessionStarted(Message, bubble=False):
    """A send or connection test began; its transcript will follow entry by entry."""

    run: SessionRun


@dataclass
class TranscriptEntry(Message, bubble=False):
    """New entries are in ``run.transcript`` (``entry`` is the latest): catch up.

    Sent at most every few milliseconds per session, not once per line.
    """

    run: SessionRun
    entry: Entry


@dataclass
class SessionFinished(Message, bubble=False):
    """The session ended; ``run.report`` says how."""

    run: SessionRun


@dataclass
class SandboxSessionEnded(Message, bubble=False):
    """The embedded sandbox finished serving a client (new mail may be there)."""

    record: SessionRecord


@dataclass
class ProfilesChanged(Message, bubble=False):
    """Profiles were added, edited or removed; selectors reload."""
