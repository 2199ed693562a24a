"""Where to sign in: the provider presets, a custom provider, and the app's client id.

A preset is the endpoints and scope a provider documents for SMTP; the user
brings the client id (and, for Google, the client secret) of an app they
registered there (docs/oauth.md walks through it). Google's device flow does
not allow the mail scope, so its preset has no device endpoint: over SSH, the
loopback flow runs through a forwarded port instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from tuimail.credentials import Secret
from tuimail.oauth.transport import check_endpoint


@dataclass(frozen=True)
class Provider:
    """An authorization server's endpoints and the scope that allows sending mail.

    ``device_url`` is None where the device grant cannot give a mail token.
    ``authorize_params`` are extra query parameters the provider needs on the
    authorization request (Google returns a refresh token only when asked
    with ``access_type=offline``, and again on a later sign-in only with
    ``prompt=consent``). ``scope_on_refresh``: whether a refresh request
    names the scope again (Microsoft documents it there; Google's refresh
    request has no such parameter).
    """

    name: str
    authorize_url: str
    token_url: str
    scope: str
    device_url: str | None = None
    authorize_params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    scope_on_refresh: bool = True

    def __post_init__(self) -> None:
        check_endpoint(self.authorize_url)
        check_endpoint(self.token_url)
        if self.device_url is not None:
            check_endpoint(self.device_url)


GOOGLE = Provider(
    name="google",
    authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
    token_url="https://oauth2.googleapis.com/token",
    scope="https://mail.google.com/",
    authorize_params=MappingProxyType({"access_type": "offline", "prompt": "consent"}),
    scope_on_refresh=False,
)

MICROSOFT = Provider(
    name="microsoft",
    authorize_url="https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
    token_url="https://login.microsoftonline.com/common/oauth2/v2.0/token",
    device_url="https://login.microsoftonline.com/common/oauth2/v2.0/devicecode",
    scope="https://outlook.office.com/SMTP.Send offline_access",
)

#: The presets by the name a profile stores (``oauth_provider = "google"``).
PRESETS: Mapping[str, Provider] = MappingProxyType({p.name: p for p in (GOOGLE, MICROSOFT)})


def custom_provider(
    *, authorize_url: str, token_url: str, scope: str, device_url: str | None = None
) -> Provider:
    """A provider that is not a preset: its endpoints and scope, as its documentation gives them.

    Each endpoint must be https (plain http only on loopback, for tests).
    """
    return Provider(
        name="custom",
        authorize_url=authorize_url,
        token_url=token_url,
        scope=scope,
        device_url=device_url or None,
    )


@dataclass(frozen=True)
class ClientApp:
    """The app registered at the provider: its client id, and a secret where it has one.

    Google gives installed apps a secret it nevertheless requires at every
    token request; Microsoft's public clients have none.
    """

    client_id: str
    client_secret: Secret | None = None

    def token_fields(self) -> dict[str, str | Secret]:
        """The client's part of a token request (``client_secret_post``, RFC 6749 2.3.1)."""
        fields: dict[str, str | Secret] = {"client_id": self.client_id}
        if self.client_secret:
            fields["client_secret"] = self.client_secret
        return fields
