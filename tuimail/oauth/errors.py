"""What can go wrong while signing in or refreshing, each said in words.

Text that came from the provider (an ``error`` code, its description, a
non-JSON answer) is escaped and cut to a bounded length before it becomes
part of a message: a provider, or whoever answers in its place, chooses it.
No message ever carries a token, a code or a secret.
"""

from __future__ import annotations

from tuimail.errors import TuimailError
from tuimail.terminal_text import escape_controls

#: The most characters of provider text a message quotes.
QUOTE_LIMIT = 300


def quote_outside(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` from the provider, escaped and cut to ``limit`` characters."""
    shown = escape_controls(text)
    if len(shown) > limit:
        return shown[:limit] + "…"
    return shown


class OAuthError(TuimailError):
    """Signing in or refreshing a token did not work."""


class EndpointRefused(OAuthError):
    """An endpoint address tuimail will not send secrets to (not https, not loopback)."""

    def __init__(self, url: str, why: str) -> None:
        self.url = url
        self.why = why
        super().__init__(f"will not use {quote_outside(url)!r}: {why}")


class ProviderUnreachable(OAuthError):
    """No answer from the provider: the network, DNS, TLS or a timeout."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"could not reach {quote_outside(url)}: {quote_outside(reason)}")


class BadAnswer(OAuthError):
    """The provider answered, but not with what the protocol says it must."""

    def __init__(self, url: str, what: str) -> None:
        self.url = url
        self.what = what
        super().__init__(f"{quote_outside(url)} gave an answer tuimail cannot use: {what}")


class ProviderRefused(OAuthError):
    """The provider answered with an OAuth error (RFC 6749 section 5.2).

    ``error`` is the code (``invalid_grant``, ``invalid_client``...) and
    ``description`` its ``error_description``, both as sent (escape them
    before showing; ``str()`` of this error already does).
    """

    def __init__(self, url: str, status: int, error: str, description: str = "") -> None:
        self.url = url
        self.status = status
        self.error = error
        self.description = description
        said = quote_outside(error, 80)
        if description:
            said += f": {quote_outside(description)}"
        super().__init__(f"the provider refused ({said})")


class SignInAgain(OAuthError):
    """The saved sign-in no longer works (revoked, expired or never valid).

    The only way on is a new sign-in: the message names the command for it.
    """

    def __init__(self, account: str, refused: ProviderRefused) -> None:
        self.account = account
        self.refused = refused
        super().__init__(
            f"{refused}; the saved sign-in for {account!r} no longer works: "
            f"sign in again with `tuimail accounts login {account}`"
        )


class SignInCancelled(OAuthError):
    """The user (or tuimail on their behalf) stopped the sign-in."""

    def __init__(self) -> None:
        super().__init__("sign-in cancelled")


class SignInTimedOut(OAuthError):
    """Nobody finished the sign-in in time (the browser or the device code)."""

    def __init__(self, waited: float, where: str) -> None:
        self.waited = waited
        self.where = where
        super().__init__(f"no sign-in {where} within {waited:.0f} seconds: start again")


class SignInDenied(OAuthError):
    """The user (or the provider) said no at the consent step."""

    def __init__(self, error: str, description: str = "") -> None:
        self.error = error
        self.description = description
        said = quote_outside(error, 80)
        if description:
            said += f": {quote_outside(description)}"
        super().__init__(f"the sign-in was not allowed ({said})")


class StateMismatch(OAuthError):
    """The browser came back with a ``state`` that is not the one tuimail sent.

    Either an old tab, or someone trying to slip their own authorization code
    into this sign-in (RFC 6749 section 10.12): the answer is refused.
    """

    def __init__(self) -> None:
        super().__init__(
            "refused the sign-in answer: its state does not match the one tuimail sent "
            "(an old browser tab, or a forged request); start the sign-in again"
        )
