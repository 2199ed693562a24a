"""A profile's OAuth 2.0 sign-in: what it keeps in the keyring, and a token for each send.

A profile with ``oauth_provider`` set (tuimail/profiles.py) signs in with
``tuimail accounts login NAME``; what that sign-in leaves behind is the
refresh token alone, in the OS keyring under the profile (and the client
secret, for a provider that wants it at each refresh). Access tokens are
never stored: :func:`account_token` builds a
:class:`~tuimail.oauth.tokens.TokenKeeper` from the stored refresh token at
each session, so every attempt of the outbox gets a fresh token, and a
refresh token the provider rotates is stored back at once.

The keyring entries sit beside the profile's password entry (service
``tuimail``), under names no profile can take (profile names have no ``/``).
Some keyrings cap a value at :data:`KEYRING_VALUE_LIMIT` bytes (Windows'
Credential Manager); a value over it is refused in words before the keyring
is asked, on every system, so a profile never depends on which keyring
happens to be installed.

Everything here blocks (keyring calls, token requests): run it in a worker
thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tuimail.credentials import CredentialStore, KeyringError, Secret
from tuimail.errors import TuimailError

if TYPE_CHECKING:
    from tuimail.bearer import BearerToken
    from tuimail.oauth.providers import ClientApp, Provider
    from tuimail.oauth.tokens import TokenKeeper, Tokens
    from tuimail.profiles import Profile

#: The most bytes a keyring value may have here: Windows' Credential Manager
#: holds at most 2,560 bytes (CRED_MAX_CREDENTIAL_BLOB_SIZE).
KEYRING_VALUE_LIMIT = 2560

_REFRESH_TOKEN = "oauth-refresh-token"
_CLIENT_SECRET = "oauth-client-secret"


def refresh_token_entry(profile_name: str) -> str:
    """The keyring entry that holds ``profile_name``'s refresh token."""
    return f"{profile_name}/{_REFRESH_TOKEN}"


def client_secret_entry(profile_name: str) -> str:
    """The keyring entry that holds ``profile_name``'s OAuth client secret."""
    return f"{profile_name}/{_CLIENT_SECRET}"


class NotSignedIn(TuimailError):
    """An OAuth profile with no refresh token stored: the user has not signed in yet.

    ``temporary``: a queued message waits for the sign-in rather than fail.
    """

    temporary = True

    def __init__(self, account: str) -> None:
        self.account = account
        super().__init__(
            f"the profile {account!r} signs in with OAuth and has no sign-in stored: "
            f"sign in first: tuimail accounts login {account}"
        )


#: The backend that stores values as UTF-16 (two bytes per ASCII character).
_UTF16_BACKEND = "WinVaultKeyring"


def stored_encoding(backend: object) -> str:
    """The encoding ``backend`` stores a value in, so its size can be checked.

    keyring's Windows backend (``keyring.backends.Windows.WinVaultKeyring``)
    writes UTF-16-LE; every other backend here is counted as UTF-8. A chain
    of backends counts as UTF-16 if any of them is the Windows one.
    """
    backends = [backend, *getattr(backend, "backends", [])]
    for each in backends:
        if any(klass.__name__ == _UTF16_BACKEND for klass in type(each).__mro__):
            return "utf-16-le"
    return "utf-8"


class ValueTooLong(KeyringError):
    """A token or secret longer than some keyrings can hold: refused before storing."""

    def __init__(self, what: str, size: int, encoding: str = "utf-8") -> None:
        stored = (
            f"stored as UTF-16 by the Windows Credential Manager, the {what} takes "
            f"{size:,} bytes, and it holds at most {KEYRING_VALUE_LIMIT:,} bytes in one "
            "entry, so tuimail does not store it"
            if encoding == "utf-16-le"
            else f"the {what} is {size:,} bytes long, and some keyrings (Windows' Credential "
            f"Manager) hold at most {KEYRING_VALUE_LIMIT:,} bytes in one entry, so tuimail "
            "does not store it"
        )
        super().__init__(
            stored,
            "Nothing was stored. If the provider lets you choose, use a client that gives "
            "shorter tokens, or give the token by a command instead (--token-command)",
        )
        self.what = what
        self.size = size
        self.encoding = encoding


def _worded(exc: KeyringError, what: str) -> KeyringError:
    """``exc`` speaking of the ``what`` it was about, not of a password."""
    if isinstance(exc, ValueTooLong):
        return exc
    message = exc.message.replace("the password", f"the {what}")
    words = type(exc)(message, exc.fix)
    words.__cause__ = exc.__cause__
    return words


class OAuthSecrets:
    """A profile's refresh token and client secret in the keyring.

    Every failure is a :class:`~tuimail.credentials.KeyringError` that names
    what it was about (the refresh token, the client secret).
    """

    def __init__(self, credentials: CredentialStore | None = None) -> None:
        self.credentials = credentials or CredentialStore()

    def refresh_token(self, profile_name: str) -> Secret | None:
        return self._get(refresh_token_entry(profile_name), "refresh token")

    def client_secret(self, profile_name: str) -> Secret | None:
        return self._get(client_secret_entry(profile_name), "client secret")

    def store_refresh_token(self, profile_name: str, token: Secret) -> None:
        self._set(refresh_token_entry(profile_name), token, "refresh token")

    def store_client_secret(self, profile_name: str, secret: Secret) -> None:
        self._set(client_secret_entry(profile_name), secret, "client secret")

    def forget_refresh_token(self, profile_name: str) -> bool:
        return self._delete(refresh_token_entry(profile_name), "refresh token")

    def forget_client_secret(self, profile_name: str) -> bool:
        return self._delete(client_secret_entry(profile_name), "client secret")

    def forget(self, profile_name: str) -> bool:
        """Delete both entries; whether there was either."""
        token = self.forget_refresh_token(profile_name)
        secret = self.forget_client_secret(profile_name)
        return token or secret

    def move(self, old_name: str, new_name: str) -> None:
        """Carry both entries from ``old_name`` to ``new_name`` (a renamed profile).

        Written under the new name first, deleted under the old one last: a
        failure in between leaves a copy, never no sign-in at all.
        """
        for entry, what in (
            (refresh_token_entry, "refresh token"),
            (client_secret_entry, "client secret"),
        ):
            value = self._get(entry(old_name), what)
            if value is None:
                self._delete(entry(new_name), what)
            else:
                self._set(entry(new_name), value, what)
        self.forget(old_name)

    def _get(self, entry: str, what: str) -> Secret | None:
        try:
            return self.credentials.get(entry)
        except KeyringError as exc:
            raise _worded(exc, what) from None

    def _set(self, entry: str, value: Secret, what: str) -> None:
        # Counted in the bytes the active backend will write (UTF-16 on Windows).
        try:
            encoding = stored_encoding(self.credentials.backend)
        except Exception:  # no usable keyring: the store below says so in words
            encoding = "utf-8"
        size = len(value.reveal().encode(encoding))
        if size > KEYRING_VALUE_LIMIT:
            raise ValueTooLong(what, size, encoding)
        try:
            self.credentials.set(entry, value)
        except KeyringError as exc:
            raise _worded(exc, what) from None

    def _delete(self, entry: str, what: str) -> bool:
        try:
            return self.credentials.delete(entry)
        except KeyringError as exc:
            raise _worded(exc, what) from None


def provider_for(profile: Profile) -> Provider:
    """The authorization server the profile names: a preset, or its custom endpoints."""
    from tuimail.oauth.providers import PRESETS, custom_provider

    if profile.oauth_provider in PRESETS:
        return PRESETS[profile.oauth_provider]
    return custom_provider(
        authorize_url=profile.oauth_authorize_url,
        token_url=profile.oauth_token_url,
        device_url=profile.oauth_device_url or None,
        scope=profile.oauth_scope,
    )


def client_for(profile: Profile, secrets: OAuthSecrets) -> ClientApp:
    """The app the user registered, with its client secret from the keyring if it has one."""
    from tuimail.oauth.providers import ClientApp

    return ClientApp(profile.oauth_client_id, secrets.client_secret(profile.name))


def keeper_for(
    profile: Profile,
    secrets: OAuthSecrets | None = None,
    *,
    on_store_failed: Callable[[KeyringError], None] | None = None,
) -> TokenKeeper:
    """A token keeper for the profile from its stored refresh token.

    Raises :class:`NotSignedIn` when none is stored. A refresh token the
    provider rotates is stored in place of the old one (which stops working).
    When that store fails, the access token in hand is still good for this
    send: ``on_store_failed`` is told (the session warns), and only without
    it does the failure end the refresh.
    """
    from tuimail.oauth.tokens import TokenKeeper

    secrets = secrets or OAuthSecrets()
    refresh_token = secrets.refresh_token(profile.name)
    if refresh_token is None:
        raise NotSignedIn(profile.name)

    def store_rotated(token: Secret) -> None:
        try:
            secrets.store_refresh_token(profile.name, token)
        except KeyringError as exc:
            if on_store_failed is None:
                raise
            on_store_failed(exc)

    return TokenKeeper(
        profile.name,
        provider_for(profile),
        client_for(profile, secrets),
        refresh_token,
        on_new_refresh_token=store_rotated,
        timeout=min(profile.timeout, 60.0),
    )


def account_token(
    profile: Profile,
    secrets: OAuthSecrets | None = None,
    *,
    on_store_failed: Callable[[KeyringError], None] | None = None,
) -> BearerToken:
    """A fresh access token for one session, renewable once from the same keeper.

    Raises :class:`NotSignedIn`, :class:`~tuimail.oauth.errors.SignInAgain`
    (the provider no longer takes the refresh token), another
    :class:`~tuimail.oauth.errors.OAuthError` or a
    :class:`~tuimail.credentials.KeyringError`. Blocks.
    """
    from tuimail.bearer import keeper_token

    return keeper_token(keeper_for(profile, secrets, on_store_failed=on_store_failed))


class NoRefreshToken(TuimailError):
    """The provider signed the user in but gave no refresh token: nothing to keep."""

    def __init__(self) -> None:
        super().__init__(
            "the provider signed you in but gave no refresh token, so tuimail cannot send "
            "later without a new sign-in; for a custom provider, the scope usually needs "
            "offline_access (docs/oauth.md)"
        )


def keep_sign_in(profile_name: str, tokens: Tokens, secrets: OAuthSecrets | None = None) -> None:
    """Store what a finished sign-in leaves behind: the refresh token, in the keyring.

    The access token in ``tokens`` is dropped: each session gets a fresh one
    (:func:`account_token`). Raises :class:`NoRefreshToken` or a
    :class:`~tuimail.credentials.KeyringError`. Blocks.
    """
    if tokens.refresh_token is None:
        raise NoRefreshToken()
    (secrets or OAuthSecrets()).store_refresh_token(profile_name, tokens.refresh_token)


def has_display() -> bool:
    """Whether a browser can open a window here: never a text browser in this terminal."""
    import os
    import sys

    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
