"""What travels between the app, its model and the screens: small typed records.

Screens ask for work with a :data:`SessionRequest` (through
:meth:`tuimail.ui.model.AppModel.start`); the model's signals carry the
others to whoever subscribed. None of them is a Textual message: nothing
bubbles, and no screen receives a copy it did not ask for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuimail.message import Draft
    from tuimail.profiles import Profile


@dataclass(frozen=True)
class ProfilesChanged:
    """Profiles were added, edited or removed (or the sandbox's port is known); ``select`` one."""

    select: str | None = None


@dataclass(frozen=True)
class SendRequest:
    """Compose asks for ``draft`` to be sent through ``profile``."""

    profile: Profile
    draft: Draft


@dataclass(frozen=True)
class ConnectionTestRequest:
    """Accounts asks for a connection test of ``profile`` (no mail is sent)."""

    profile: Profile


@dataclass(frozen=True)
class RetryRequest:
    """The outbox asks for its message ``key`` to be sent now."""

    key: str


SessionRequest = SendRequest | ConnectionTestRequest | RetryRequest


@dataclass(frozen=True)
class SendStopped:
    """A session stopped without an outcome to show: Compose unlocks its form and says why.

    ``status`` is for the status line ("" leaves it); ``field_errors`` are
    ``(field, message)`` pairs from the core's validation; ``kept_in_outbox``
    means the outbox holds the message now, so Compose lets go of its copy.
    """

    status: str = ""
    field_errors: tuple[tuple[str, str], ...] = ()
    kept_in_outbox: bool = False
