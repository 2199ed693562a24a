"""Saving and removing an account: its profile in the TOML file, its password in the keyring.

The two stores cannot change in one step, so the order is chosen for the
failures: everything is checked first (the profile, the name it takes, the
password it carries over), the profile file is written next, and the keyring
last. When the keyring write fails, the profile file is put back as it was.
So a refused rename never leaves one profile's password under another
profile's name, and a saved profile never ends up pointing at a password that
is not its own. The command line (``tuimail accounts``) and the app's account
dialog both save through here.
"""

from __future__ import annotations

import contextlib

from tuimail.credentials import CredentialStore, KeyringError, Secret, UnsafeKeyringError
from tuimail.errors import NotFound
from tuimail.profiles import Profile, ProfileError, ProfileStore, ProfileStoreError


def save_account(
    profile: Profile,
    *,
    original_name: str | None = None,
    password: Secret | None = None,
    client_secret: Secret | None = None,
    store: ProfileStore | None = None,
    credentials: CredentialStore | None = None,
) -> list[str]:
    """Add ``profile`` (``original_name`` None) or replace the profile ``original_name``.

    ``password`` is the new password, or None to keep the one it has (a
    renamed profile takes its old entry along). Raises :class:`ProfileError`,
    :class:`ProfileStoreError`, :class:`NotFound` (no such profile) or
    :class:`KeyringError`, each before anything changed or after the change was
    undone. Returns warnings about leftovers that do not undo the save.

    ``client_secret`` is an OAuth client secret to store with the profile
    (tuimail/oauth_account.py). A renamed profile takes its OAuth sign-in
    along; a new one never inherits a sign-in left under its name; one whose
    provider or client changed drops the sign-in made with the old one (a
    save without OAuth settings keeps it, for when they come back).
    """
    store = store or ProfileStore()
    credentials = credentials or CredentialStore()
    old = _check_name(store, profile, original_name)
    renamed = old is not None and old.name != profile.name
    carried = password
    if carried is None and old is not None and renamed:
        carried = credentials.get(old.name)  # read only: nothing written yet
    before = store.snapshot()
    store.save(profile, replace_name=original_name)
    warnings: list[str] = []
    if carried is not None:
        try:
            credentials.set(profile.name, carried)
        except KeyringError as exc:
            _restore(store, before, exc)
            raise
    elif profile.username and (old is None or renamed):
        # An entry under the new name belongs to no saved profile (a removal
        # whose keyring delete failed): it must not become this one's password.
        try:
            credentials.delete(profile.name)
        except UnsafeKeyringError:
            pass  # no usable keyring: nothing can be read from it either
        except KeyringError as exc:
            warnings.append(
                f"could not check the keyring for an old password under {profile.name!r}: "
                f"{exc.message}"
            )
    warnings += _save_oauth(profile, old, client_secret, store, before, credentials)
    if renamed and old is not None:
        try:
            credentials.delete(old.name)
        except KeyringError as exc:
            warnings.append(
                f"the password also stays in the keyring under the old name {old.name!r}: "
                f"{exc.message}"
            )
    return warnings


def remove_account(
    name: str, *, store: ProfileStore | None = None, credentials: CredentialStore | None = None
) -> tuple[Profile, bool]:
    """Remove the profile first, then its password: a failed file write keeps both.

    Returns the profile and whether a password was deleted. A keyring failure
    after the profile is gone raises :class:`KeyringError`; the caller says
    that the password is left behind (it can no longer be used by a profile:
    :func:`save_account` clears it if the name is taken again).
    """
    store = store or ProfileStore()
    profile = store.get(name)
    store.remove(profile.name)
    if not profile.username:
        return profile, False
    credentials = credentials or CredentialStore()
    from tuimail.oauth_account import OAuthSecrets

    # Also when the profile no longer names a provider: a sign-in kept from
    # when it did (see _save_oauth) goes with it.
    removed = credentials.delete(profile.name)
    return profile, OAuthSecrets(credentials).forget(profile.name) or removed


def _check_name(store: ProfileStore, profile: Profile, original_name: str | None) -> Profile | None:
    """The profile being replaced (None for a new one); refuses a name already taken."""
    profiles = store.load()
    old = None
    if original_name is not None:
        if original_name not in profiles:
            raise NotFound("profile", original_name, tuple(sorted(profiles)))
        old = profiles[original_name]
    if profile.name in profiles and profile.name != original_name:
        raise ProfileError("name", f"a profile named {profile.name!r} already exists")
    return old


def _restore(store: ProfileStore, before: bytes | None, cause: KeyringError) -> None:
    """Put the profile file back as it was before :func:`save_account` wrote it."""
    try:
        store.restore(before)
    except ProfileStoreError as exc:
        cause.add_note(f"the profile file could not be put back either: {exc}")


def _oauth_client(profile: Profile) -> tuple[str, ...]:
    """What a refresh token is bound to: the provider, its token endpoint and the client."""
    return (profile.oauth_provider, profile.oauth_token_url, profile.oauth_client_id)


def _save_oauth(
    profile: Profile,
    old: Profile | None,
    client_secret: Secret | None,
    store: ProfileStore,
    before: bytes | None,
    credentials: CredentialStore,
) -> list[str]:
    """The OAuth entries after the profile file was written (see :func:`save_account`).

    A client secret that cannot be stored undoes the save, as a password
    does; clearing what is left over only warns.
    """
    from tuimail.oauth_account import OAuthSecrets

    secrets = OAuthSecrets(credentials)
    renamed = old is not None and old.name != profile.name
    had_oauth = old is not None and old.uses_oauth
    warnings: list[str] = []
    if not profile.uses_oauth and not had_oauth and client_secret is None:
        return warnings
    try:
        if renamed and old is not None and had_oauth:
            secrets.move(old.name, profile.name)
        elif old is None and profile.uses_oauth:
            with contextlib.suppress(UnsafeKeyringError):  # nothing can be read from it either
                secrets.forget(profile.name)  # left by a removal that could not delete it
        if client_secret is not None:
            secrets.store_client_secret(profile.name, client_secret)
    except KeyringError as exc:
        _restore(store, before, exc)
        raise
    # A save without OAuth settings keeps the sign-in: a form that does not
    # show them (the app's account dialog) must not cost the user a sign-in.
    if not had_oauth or old is None or not profile.uses_oauth:
        return warnings
    try:
        if _oauth_client(old) != _oauth_client(profile):
            # The sign-in was given to another app: it cannot refresh this one's tokens.
            if client_secret is None:
                secrets.forget_client_secret(profile.name)
            if secrets.forget_refresh_token(profile.name):
                warnings.append(
                    f"the OAuth sign-in of {profile.name!r} was for another provider or "
                    f"client and is removed: sign in again with "
                    f"`tuimail accounts login {profile.name}`"
                )
    except KeyringError as exc:
        warnings.append(f"could not clear the old OAuth sign-in of {profile.name!r}: {exc.message}")
    return warnings
