"""The keyring's size cap, counted in the bytes the active backend will write.

keyring's Windows backend stores a value as UTF-16 (two bytes per ASCII
character), so a refresh token of 1,500 characters is 3,000 bytes there,
over the Credential Manager's 2,560; elsewhere it is 1,500 bytes of UTF-8.
The backends here are stand-ins named as keyring names them: no Windows needed.
"""

from __future__ import annotations

import pytest
from keyring.backend import KeyringBackend

from tuimail.credentials import CredentialStore, Secret
from tuimail.oauth_account import KEYRING_VALUE_LIMIT, OAuthSecrets, ValueTooLong


class MemoryKeyring(KeyringBackend):
    """A keyring in a dict."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.values: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.values.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.values[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.values[(service, username)]


class WinVaultKeyring(MemoryKeyring):
    """Named as keyring.backends.Windows.WinVaultKeyring, which writes UTF-16-LE."""


WinVaultKeyring.__module__ = "keyring.backends.Windows"


def secrets_in(backend: KeyringBackend) -> OAuthSecrets:
    return OAuthSecrets(CredentialStore(backend, allow_unsafe=True))


def test_on_windows_a_token_counts_two_bytes_a_character() -> None:
    backend = WinVaultKeyring()
    token = "t" * 1500
    with pytest.raises(ValueTooLong) as refused:
        secrets_in(backend).store_refresh_token("mail", Secret(token))
    assert refused.value.size == 3000
    said = str(refused.value)
    assert "UTF-16" in said and "3,000 bytes" in said and f"{KEYRING_VALUE_LIMIT:,} bytes" in said
    assert token not in said
    assert backend.values == {}
    # Half the limit in characters fits.
    secrets_in(backend).store_refresh_token("mail", Secret("t" * (KEYRING_VALUE_LIMIT // 2)))


def test_elsewhere_a_token_counts_its_utf8_bytes() -> None:
    backend = MemoryKeyring()
    secrets_in(backend).store_refresh_token("mail", Secret("t" * 1500))
    assert len(backend.values) == 1
    with pytest.raises(ValueTooLong) as refused:
        secrets_in(backend).store_client_secret("mail", Secret("é" * 1300))
    assert refused.value.size == 2600
    assert f"at most {KEYRING_VALUE_LIMIT:,} bytes" in str(refused.value)
