"""Signing in to mail providers with OAuth 2.0, using only the standard library.

``providers`` holds the presets (Google, Microsoft) and the custom provider;
``flows`` the two ways to sign in (the browser with a loopback redirect and
PKCE, RFC 8252 and RFC 7636; the device authorization grant, RFC 8628);
``tokens`` keeps an access token fresh from a refresh token. Every request
goes through ``transport`` (a timeout on each, a cap on every answer read),
and every error derives from ``errors.OAuthError``. The calls block: a face
runs them in a worker thread (``asyncio.to_thread``), never on its loop.
"""
