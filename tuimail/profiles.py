"""Account profiles: the server settings of each account, kept in ``profiles.toml``.

The file is read with :mod:`tomllib` and written with ``tomli_w`` by atomic
replace, mode 0600 in a 0700 directory. Passwords are never stored here: they
live in the OS keyring (:mod:`tuimail.credentials`).

Every change is a read-modify-write of the file as it is on disk, and a file
that fails to load is never written: a typo in one profile must not cost the
user every other profile. Keys this version does not know are kept as they
are, so an older tuimail does not strip settings a newer one wrote.
"""

from __future__ import annotations

import datetime
import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tuimail import paths
from tuimail.atomic import atomic_write_bytes
from tuimail.errors import NotFound, TuimailError
from tuimail.small_files import parse_toml, read_small_file, read_small_text

PROFILES_FILE = "profiles.toml"
PROFILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # used with fullmatch


class Security(enum.StrEnum):
    """How the connection is protected.

    ``starttls`` means STARTTLS is *required*: unlike aiosmtplib's default, a
    server that does not offer it is an error, never a silent plaintext session.
    """

    TLS = "tls"
    STARTTLS = "starttls"
    NONE = "none"

    @property
    def default_port(self) -> int:
        return {Security.TLS: 465, Security.STARTTLS: 587, Security.NONE: 25}[self]

    @property
    def label(self) -> str:
        """The word the UI and CLI show for this level."""
        return {Security.TLS: "TLS", Security.STARTTLS: "STARTTLS", Security.NONE: "plain"}[self]


class AuthMechanism(enum.StrEnum):
    """SASL mechanism; ``auto`` picks by the credential and what the server offers.

    XOAUTH2 and OAUTHBEARER (RFC 7628) carry an OAuth 2.0 access token, the
    others a password (tuimail/smtp_stepper.py's ``choose_mechanism``).
    """

    AUTO = "auto"
    PLAIN = "plain"
    LOGIN = "login"
    CRAM_MD5 = "cram-md5"
    XOAUTH2 = "xoauth2"
    OAUTHBEARER = "oauthbearer"

    @property
    def takes_token(self) -> bool:
        """The mechanism carries a bearer token, not a password."""
        return self in (AuthMechanism.XOAUTH2, AuthMechanism.OAUTHBEARER)


class ProfileError(TuimailError, ValueError):
    """A profile value is invalid; names the field so the user can fix it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field_name = field_name
        self.message = message


class ProfileStoreError(TuimailError):
    """``profiles.toml`` cannot be used; says which file and line, and why."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.message = message


class Risk(enum.StrEnum):
    """What a profile's settings put at risk; :meth:`Profile.warnings` lists them."""

    #: profiles.toml holds a password-like key that tuimail never uses.
    SECRET_IN_FILE = "secret-in-file"
    #: TLS without checking the certificate: anyone on the path can read along.
    UNVERIFIED_CERTIFICATE = "unverified-certificate"
    #: No TLS to a server off this machine.
    UNENCRYPTED = "unencrypted"
    #: No TLS, and a password allowed over it.
    PLAINTEXT_PASSWORD = "plaintext-password"


#: The words for a risk whose remedy is the same on every face.
_RISK_WORDS = {
    Risk.UNVERIFIED_CERTIFICATE: (
        "certificate verification is off: anyone on the network path can "
        "read and change this connection"
    ),
    Risk.UNENCRYPTED: "the connection is not encrypted",
    Risk.PLAINTEXT_PASSWORD: "the password is sent without encryption",
}


@dataclass(frozen=True)
class ProfileWarning:
    """One setting that weakens security: which profile, what is wrong, which keys.

    The core says what is wrong; how to fix it is a face's business (the
    command line names a command, the app a key), so :meth:`words` takes the
    remedy for a secret in the file and otherwise says only where it belongs.
    """

    risk: Risk
    profile: str
    #: For :attr:`Risk.SECRET_IN_FILE`: the keys (``oauth.access_token``), never their values.
    keys: tuple[str, ...] = ()

    def words(self, keyring_remedy: str = "") -> str:
        """The warning as a sentence; ``keyring_remedy`` says how this face stores a password."""
        if self.risk is Risk.SECRET_IN_FILE:
            remedy = f" ({keyring_remedy})" if keyring_remedy else ""
            return (
                f"profiles.toml holds {', '.join(self.keys)} for this profile, which tuimail "
                f"never uses: passwords belong in the keyring{remedy}; remove it from the file"
            )
        return _RISK_WORDS[self.risk]


@dataclass(frozen=True)
class Profile:
    """One account's server settings (never its password)."""

    name: str
    host: str
    port: int = 0  # 0 = the default port of ``security``
    security: Security = Security.STARTTLS
    username: str = ""
    from_address: str = ""
    display_name: str = ""
    auth_mechanism: AuthMechanism = AuthMechanism.AUTO
    verify_tls: bool = True
    ca_file: str = ""
    allow_plaintext_auth: bool = False
    #: No stored secret: each face asks for it when it sends (kept in memory for that run).
    ask_at_send: bool = False
    timeout: float = 30.0
    ehlo_name: str = ""
    #: A command printing the password (tuimail/secret_command.py), instead of the keyring.
    password_command: str = ""
    #: A command printing an OAuth 2.0 access token, run again for each send.
    token_command: str = ""
    #: Signing in with OAuth 2.0 (docs/oauth.md): ``google``, ``microsoft`` or
    #: ``custom``; empty for none. The refresh token tuimail gets by signing in
    #: (and the client secret, where there is one) is kept in the keyring
    #: (tuimail/oauth_account.py), never here.
    oauth_provider: str = ""
    #: The client id of the app the user registered at the provider.
    oauth_client_id: str = ""
    #: A custom provider's endpoints and the scope that allows sending mail.
    oauth_authorize_url: str = ""
    oauth_token_url: str = ""
    oauth_device_url: str = ""
    oauth_scope: str = ""
    #: Send new messages' text as Markdown with an HTML rendering (tuimail/markdown_body.py).
    markdown: bool = False
    #: A signature added below ``-- `` when a new message starts (tuimail/signatures.py);
    #: ``signature_file`` names a file holding it instead.
    signature: str = ""
    signature_file: str = ""
    #: Other From addresses of this account, comma-separated, offered in Compose's From.
    aliases: str = ""
    #: DKIM signing (tuimail/dkim_signing.py): the signing domain (d=), the
    #: selector (s=), the private key (a PEM file only its owner can read, or
    #: "keyring"), and the headers to sign (comma-separated; empty: the defaults).
    dkim_domain: str = ""
    dkim_selector: str = ""
    dkim_key: str = ""
    dkim_headers: str = ""
    #: OpenPGP (tuimail/pgp_mime.py, docs/pgp.md): the key to sign with (id,
    #: fingerprint or address; "": the From address's key), sign every message,
    #: encrypt every message (refused when a recipient has no usable key),
    #: encrypt whenever every recipient has one, the Subject inside only.
    pgp_key: str = ""
    pgp_sign: bool = False
    pgp_encrypt: bool = False
    pgp_encrypt_opportunistic: bool = False
    pgp_protected_headers: bool = False
    #: S/MIME (tuimail/smime.py): the user's certificate and private key (PEM
    #: files), the directory of recipients' certificates (PEM files), whether
    #: every message is signed and/or encrypted, and a command printing the
    #: key's passphrase (else the keyring entry ``<profile>/smime-key-passphrase``).
    smime_cert: str = ""
    smime_key: str = ""
    smime_recipient_certs: str = ""
    smime_sign: bool = False
    smime_encrypt: bool = False
    smime_passphrase_command: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Accept "starttls" as well as Security.STARTTLS from library callers, and
        # refuse port="587" with a ProfileError rather than a TypeError later on.
        typed = {name: getattr(self, name) for name in (*_TYPES, "security", "auth_mechanism")}
        for name, value in _coerce(typed).items():
            object.__setattr__(self, name, value)
        validate_profile(self)

    @property
    def effective_port(self) -> int:
        return self.port or self.security.default_port

    @property
    def address(self) -> str:
        """``host:port`` as a user would type it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.effective_port}"

    @property
    def is_loopback(self) -> bool:
        """A server on this machine: plaintext cannot be read off a network."""
        import ipaddress

        if self.host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def needs_password(self) -> bool:
        """A password must be given to this profile (keyring, prompt, stdin).

        A profile whose secret comes from a command does not need one: the
        session runs the command each time it authenticates.
        """
        return bool(self.username) and not self.secret_command and not self.uses_oauth

    @property
    def uses_oauth(self) -> bool:
        """The profile signs in with OAuth 2.0: its token comes from the stored sign-in."""
        return bool(self.oauth_provider)

    @property
    def secret_in_keyring(self) -> bool:
        """The password is read from the keyring: not given by a command, nor asked each time.

        A keyring entry left from before a profile switched to a command or to
        asking must never win over them: only a profile for which this holds
        reads the keyring.
        """
        return self.needs_password and not self.ask_at_send

    @property
    def secret_command(self) -> str:
        """The command that prints this profile's secret (password or token), if any."""
        return self.token_command or self.password_command

    def warnings(self) -> list[ProfileWarning]:
        """Settings that weaken security, as data: each face words them its own way."""
        found = []
        secret_keys = _secret_looking_keys(self.extra)
        if secret_keys:
            found.append(ProfileWarning(Risk.SECRET_IN_FILE, self.name, tuple(secret_keys)))
        if self.security is not Security.NONE and not self.verify_tls:
            found.append(ProfileWarning(Risk.UNVERIFIED_CERTIFICATE, self.name))
        if self.security is Security.NONE and not self.is_loopback:
            found.append(ProfileWarning(Risk.UNENCRYPTED, self.name))
        if self.security is Security.NONE and self.allow_plaintext_auth and self.username:
            found.append(ProfileWarning(Risk.PLAINTEXT_PASSWORD, self.name))
        return found

    def to_toml_table(self) -> dict[str, Any]:
        """The TOML table for this profile: only non-default values, plus unknown keys."""
        table: dict[str, Any] = dict(self.extra)
        defaults = Profile.__dataclass_fields__
        for f in fields(self):
            if f.name in ("name", "extra"):
                continue
            value = getattr(self, f.name)
            default = defaults[f.name].default
            if f.name == "host" or value != default:
                table[f.name] = value.value if isinstance(value, enum.Enum) else value
        return table

    def to_json(self) -> dict[str, Any]:
        """The TOML table as JSON can hold it, with the name: for exports and the outbox.

        Keys this version does not know stay in the file with their TOML types,
        but TOML has dates and times and JSON has not: here they become their
        ISO 8601 text (``2026-01-02``, ``1979-05-27T07:32:00+00:00``). Reading
        such a table back keeps them as text, which only unknown keys can be.
        """
        table = self.to_toml_table()
        for key in _secret_looking_keys(self.extra):
            table.pop(key.partition(".")[0], None)
        return {"name": self.name, **_json_safe(table)}

    @classmethod
    def from_toml_table(cls, name: str, table: Mapping[str, Any]) -> Profile:
        """Build a profile from its TOML table; raises :class:`ProfileError`."""
        known = {f.name for f in fields(cls)} - {"name", "extra"}
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key in known:
                values[key] = value
        extra = {k: v for k, v in table.items() if k not in known}
        if "host" not in values:
            raise ProfileError("host", "is missing")
        return cls(name=name, extra=extra, **_coerce(values))


#: Unknown keys that look like a password or token (``password``, ``smtp_pass``,
#: ``[profiles.x.auth] token``): other tools keep one in their config file.
_SECRET_KEY_RE = re.compile(r"pass|secret|token|credential|api_?key", re.IGNORECASE)


def _secret_looking_keys(extra: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Unknown keys (dotted, at any depth) whose name says they hold a secret.

    tuimail keeps unknown keys in profiles.toml when it rewrites the file, so
    a newer version's settings survive. But a password typed into the file
    (as msmtp and others take it) must not be copied from there into outbox
    records, ``accounts list --json`` or exports: the top-level unknown key
    holding it is left out of :meth:`Profile.to_json`, and a warning says so.
    """
    found = []
    for key, value in extra.items():
        name = f"{prefix}{key}"
        if _SECRET_KEY_RE.search(str(key)):
            found.append(name)
        elif isinstance(value, Mapping):
            found.extend(_secret_looking_keys(value, f"{name}."))
    return found


def _json_safe(value: Any) -> Any:
    """``value`` with every TOML date, time and datetime (at any depth) as ISO 8601 text."""
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


_TYPE_WORDS = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}

_TYPES: dict[str, type] = {
    "host": str,
    "port": int,
    "username": str,
    "from_address": str,
    "display_name": str,
    "verify_tls": bool,
    "ca_file": str,
    "allow_plaintext_auth": bool,
    "ask_at_send": bool,
    "timeout": float,
    "ehlo_name": str,
    "password_command": str,
    "token_command": str,
    "oauth_provider": str,
    "oauth_client_id": str,
    "oauth_authorize_url": str,
    "oauth_token_url": str,
    "oauth_device_url": str,
    "oauth_scope": str,
    "markdown": bool,
    "signature": str,
    "signature_file": str,
    "aliases": str,
    "dkim_domain": str,
    "dkim_selector": str,
    "dkim_key": str,
    "dkim_headers": str,
    "pgp_key": str,
    "pgp_sign": bool,
    "pgp_encrypt": bool,
    "pgp_encrypt_opportunistic": bool,
    "pgp_protected_headers": bool,
    "smime_cert": str,
    "smime_key": str,
    "smime_recipient_certs": str,
    "smime_sign": bool,
    "smime_encrypt": bool,
    "smime_passphrase_command": str,
}

#: The providers a profile may name (tuimail/oauth/providers.py has their presets).
OAUTH_PROVIDERS = ("google", "microsoft", "custom")
#: A custom provider's settings (a preset has its own).
OAUTH_CUSTOM_FIELDS = ("oauth_authorize_url", "oauth_token_url", "oauth_device_url", "oauth_scope")
OAUTH_FIELDS = ("oauth_provider", "oauth_client_id", *OAUTH_CUSTOM_FIELDS)


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    """Check TOML value types and turn enum strings into enums."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "security":
            try:
                out[key] = Security(str(value).lower())
            except ValueError:
                raise ProfileError(key, f"must be tls, starttls or none, not {value!r}") from None
        elif key == "auth_mechanism":
            try:
                out[key] = AuthMechanism(str(value).lower())
            except ValueError:
                choices = ", ".join(m.value for m in AuthMechanism)
                raise ProfileError(key, f"must be one of {choices}, not {value!r}") from None
        elif key not in _TYPES:
            raise ProfileError(key, "is not a profile setting")
        else:
            expected = _TYPES[key]
            ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value, ok = float(value), True
            if not ok:
                raise ProfileError(key, f"must be {_TYPE_WORDS[expected]}, not {value!r}")
            out[key] = value
    return out


def validate_profile(profile: Profile) -> None:
    """Raise :class:`ProfileError` for the first invalid field."""
    if not isinstance(profile.name, str) or not PROFILE_NAME_RE.fullmatch(profile.name):
        raise ProfileError(
            "name",
            "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    host = profile.host.strip()
    if not host or host != profile.host or any(c.isspace() or ord(c) < 32 for c in host):
        raise ProfileError("host", "must be a host name or address without spaces")
    if not 0 <= profile.port <= 65535:
        raise ProfileError("port", "must be between 1 and 65535 (or 0 for the default)")
    if not 0 < profile.timeout <= 3600:
        raise ProfileError("timeout", "must be more than 0 and at most 3600 seconds")
    text_fields = ("username", "from_address", "display_name", "ehlo_name", "ca_file")
    if "\0" in profile.signature:
        raise ProfileError("signature", "must not contain NUL characters")
    for name in (
        *text_fields,
        "signature_file",
        "password_command",
        "token_command",
        *OAUTH_FIELDS,
    ):
        value = getattr(profile, name)
        if any(ch in value for ch in "\r\n\0"):
            raise ProfileError(name, "must not contain line breaks or NUL characters")
    if profile.aliases:
        problem = aliases_problem(profile.aliases, profile.from_address)
        if problem:
            raise ProfileError("aliases", problem)
    if profile.ask_at_send and (profile.secret_command or profile.oauth_provider):
        raise ProfileError(
            "ask_at_send",
            "a profile whose secret comes from a command or an OAuth sign-in is not asked for one",
        )
    if profile.ehlo_name and not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", profile.ehlo_name):
        raise ProfileError("ehlo_name", "must be a host name or an address literal")
    if profile.password_command and profile.token_command:
        raise ProfileError(
            "token_command",
            "a profile takes its secret from one command: not also password_command",
        )
    for name in ("password_command", "token_command"):
        command = getattr(profile, name)
        if command:
            import shlex

            try:
                words = shlex.split(command)
            except ValueError as exc:
                raise ProfileError(name, f"is not a command line: {exc}") from None
            if not words:
                raise ProfileError(name, "names no command")
    _validate_oauth(profile)
    _validate_dkim(profile)
    _validate_smime(profile)


def aliases_problem(aliases: str, from_address: str = "") -> str:
    """Why ``aliases`` (a profile's other From addresses, comma-separated) cannot be
    used, in words ("" when each can).

    Each must be an address as From takes it (``Name <addr>`` or ``addr``), on
    one line, and none twice nor the profile's own ``from_address`` again:
    Compose offers them in From, and one that is not offered must not look
    saved. Imported here, not at the top: a profile without aliases never
    loads the address parser.
    """
    from tuimail.addresses import AddressError, parse_address_list

    if any(ch in aliases for ch in "\r\n\0"):
        return "must not contain line breaks or NUL characters"
    try:
        parsed = parse_address_list(aliases)
    except AddressError as exc:
        return str(exc)
    seen: set[str] = set()
    own = from_address.strip().casefold()
    for address in (p.addr_spec for p in parsed):
        key = address.casefold()
        if key == own:
            return f"{address} is the profile's From address already"
        if key in seen:
            return f"{address} is listed twice"
        seen.add(key)
    return ""


def _validate_oauth(profile: Profile) -> None:
    """The OAuth settings: a known provider, a client id, and a custom provider's endpoints.

    Endpoints are checked as the sign-in checks them (tuimail/oauth/transport.py):
    https, or plain http only to this machine. Imported here, not at the top,
    so that a profile without OAuth never loads the HTTP code.
    """
    provider = profile.oauth_provider
    if not provider:
        for name in ("oauth_client_id", *OAUTH_CUSTOM_FIELDS):
            if getattr(profile, name):
                raise ProfileError(
                    name, "is used only with oauth_provider (google, microsoft or custom)"
                )
        return
    if provider not in OAUTH_PROVIDERS:
        raise ProfileError(
            "oauth_provider", f"must be google, microsoft or custom, not {provider!r}"
        )
    if not profile.oauth_client_id.strip() or any(c.isspace() for c in profile.oauth_client_id):
        raise ProfileError(
            "oauth_client_id",
            "is needed to sign in with OAuth: the client id of the app you registered at the "
            "provider, without spaces (docs/oauth.md says how to get one)",
        )
    if profile.secret_command:
        raise ProfileError(
            "oauth_provider",
            "a profile takes its secret from one place: the OAuth sign-in or "
            + ("token_command" if profile.token_command else "password_command")
            + ", not both",
        )
    if not profile.username:
        raise ProfileError(
            "username", "an OAuth profile needs the user name: the address you sign in as"
        )
    if not (profile.auth_mechanism is AuthMechanism.AUTO or profile.auth_mechanism.takes_token):
        raise ProfileError(
            "auth_mechanism",
            f"an OAuth profile sends a token, never a password: use auto, xoauth2 or "
            f"oauthbearer, not {profile.auth_mechanism.value}",
        )
    if provider != "custom":
        for name in OAUTH_CUSTOM_FIELDS:
            if getattr(profile, name):
                raise ProfileError(
                    name,
                    f"is for a custom provider only: {provider} has its own endpoints and scope",
                )
        return
    for name in ("oauth_authorize_url", "oauth_token_url", "oauth_scope"):
        if not getattr(profile, name).strip():
            raise ProfileError(
                name,
                "is needed for a custom provider (its documentation gives the authorization "
                "and token endpoints and the scope for sending mail)",
            )
    from tuimail.oauth.errors import EndpointRefused
    from tuimail.oauth.transport import check_endpoint

    for name in ("oauth_authorize_url", "oauth_token_url", "oauth_device_url"):
        url = getattr(profile, name)
        if not url:
            continue
        try:
            check_endpoint(url)
        except EndpointRefused:
            raise ProfileError(
                name,
                f"{url!r} is not an https:// address (plain http:// only for 127.0.0.1, "
                "for testing)",
            ) from None


#: A DKIM domain or selector: dot-separated labels of letters, digits and hyphens.
DKIM_NAME_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")
#: Headers RFC 6376 section 5.4 (and dkimpy) will not sign: they change on the way.
_DKIM_UNSIGNABLE = {"return-path", "received", "comments", "keywords", "bcc", "resent-bcc"}


def _validate_dkim(profile: Profile) -> None:
    """The DKIM fields: all three of domain, selector and key, or none; names DNS can hold."""
    names = ("dkim_domain", "dkim_selector", "dkim_key", "dkim_headers")
    for name in names:
        if any(ch in getattr(profile, name) for ch in "\r\n\0"):
            raise ProfileError(name, "must not contain line breaks or NUL characters")
    given = [name for name in names[:3] if getattr(profile, name)]
    if not given:
        if profile.dkim_headers:
            raise ProfileError("dkim_headers", "needs dkim_domain, dkim_selector and dkim_key")
        return
    for name in names[:3]:
        if not getattr(profile, name):
            raise ProfileError(name, f"is needed to sign with DKIM ({', '.join(given)} given)")
    for name in ("dkim_domain", "dkim_selector"):
        value = getattr(profile, name)
        if len(value) > 253 or not DKIM_NAME_RE.fullmatch(value):
            raise ProfileError(name, "must be a DNS name: letters, digits, '-' and '.'")
    headers = [h.strip() for h in profile.dkim_headers.split(",") if h.strip()]
    for header in headers:
        if not re.fullmatch(r"[!-9;-~]+", header):
            raise ProfileError("dkim_headers", f"{header!r} is not a header name")
        if header.lower() in _DKIM_UNSIGNABLE or header.lower() == "dkim-signature":
            raise ProfileError("dkim_headers", f"{header} changes on the way: it is never signed")
    if headers and "from" not in {h.lower() for h in headers}:
        raise ProfileError("dkim_headers", "must include From (RFC 6376 requires it)")


def _validate_smime(profile: Profile) -> None:
    """The S/MIME fields: signing needs a certificate and its key, encrypting a
    directory of recipients' certificates."""
    names = (
        "smime_cert",
        "smime_key",
        "smime_recipient_certs",
        "smime_passphrase_command",
    )
    for name in names:
        if any(ch in getattr(profile, name) for ch in "\r\n\0"):
            raise ProfileError(name, "must not contain line breaks or NUL characters")
    if profile.smime_sign:
        for name in ("smime_cert", "smime_key"):
            if not getattr(profile, name):
                raise ProfileError(name, "is needed to sign with S/MIME (smime_sign)")
    if profile.smime_encrypt and not profile.smime_recipient_certs:
        raise ProfileError(
            "smime_recipient_certs", "is needed to encrypt with S/MIME (smime_encrypt)"
        )
    if bool(profile.smime_cert) != bool(profile.smime_key):
        missing = "smime_key" if profile.smime_cert else "smime_cert"
        raise ProfileError(missing, "is needed with the other: a certificate and its key")


@dataclass
class ProfileStore:
    """The profiles file. Each change re-reads the file, so edits by hand survive."""

    path: Path = field(default_factory=lambda: paths.config_dir() / PROFILES_FILE)

    def load(self) -> dict[str, Profile]:
        """All profiles by name; raises :class:`ProfileStoreError` naming file and line."""
        document = self._read_document()
        return self._profiles_from(document)

    def __iter__(self) -> Iterator[Profile]:
        return iter(self.load().values())

    def get(self, name: str) -> Profile:
        profiles = self.load()
        try:
            return profiles[name]
        except KeyError:
            raise NotFound("profile", name, tuple(sorted(profiles))) from None

    def save(self, profile: Profile, *, replace_name: str | None = None) -> None:
        """Add or update ``profile``; with ``replace_name``, rename that profile to it."""
        document = self._read_document()
        tables = document.setdefault("profiles", {})
        if replace_name and replace_name != profile.name:
            if profile.name in tables:
                raise ProfileError("name", f"a profile named {profile.name!r} already exists")
            tables.pop(replace_name, None)
        tables[profile.name] = profile.to_toml_table()
        self._write_document(document)

    def add(self, profile: Profile) -> None:
        """Add a new profile; refuses to replace an existing one."""
        if profile.name in self.load():
            raise ProfileError("name", f"a profile named {profile.name!r} already exists")
        self.save(profile)

    def remove(self, name: str) -> None:
        document = self._read_document()
        tables = document.get("profiles", {})
        if name not in tables:
            raise NotFound("profile", name)
        del tables[name]
        self._write_document(document)

    def snapshot(self) -> bytes | None:
        """The file as it is now (None when there is none), for :meth:`restore`."""
        try:
            return read_small_file(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ProfileStoreError(self.path, f"cannot be read: {exc.strerror}") from None

    def restore(self, snapshot: bytes | None) -> None:
        """Put back the file exactly as :meth:`snapshot` saw it: undo of a change."""
        try:
            if snapshot is None:
                self.path.unlink(missing_ok=True)
            else:
                atomic_write_bytes(self.path, snapshot, mode=0o600)
        except OSError as exc:
            raise ProfileStoreError(self.path, f"cannot be written: {exc.strerror}") from None

    def _read_document(self) -> dict[str, Any]:
        try:
            raw = read_small_file(self.path)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ProfileStoreError(self.path, f"cannot be read: {exc.strerror}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_line = raw[: exc.start].count(b"\n") + 1
            raise ProfileStoreError(self.path, "is not valid UTF-8", bad_line) from None
        import tomllib

        try:
            document = parse_toml(text)
        except tomllib.TOMLDecodeError as exc:
            message, line = _split_toml_error(str(exc))
            raise ProfileStoreError(self.path, message, line) from None
        # Validate everything before any write can happen.
        self._profiles_from(document, text)
        return document

    def _profiles_from(
        self, document: dict[str, Any], text: str | None = None
    ) -> dict[str, Profile]:
        tables = document.get("profiles", {})
        if not isinstance(tables, dict):
            raise ProfileStoreError(self.path, "'profiles' must be a table of profiles")
        profiles: dict[str, Profile] = {}
        for name, table in tables.items():
            if not isinstance(table, dict):
                raise ProfileStoreError(
                    self.path, f"profile {name!r} must be a table", self._find_line(text, name)
                )
            try:
                profiles[name] = Profile.from_toml_table(name, table)
            except ProfileError as exc:
                line = self._find_line(text, name, exc.field_name)
                raise ProfileStoreError(self.path, f"profile {name!r}: {exc}", line) from None
        return profiles

    def _find_line(self, text: str | None, name: str, key: str | None = None) -> int | None:
        """Best-effort line of ``[profiles.name]`` (and ``key`` in it), for error messages."""
        if text is None:
            try:
                text = read_small_text(self.path)
            except OSError:
                return None
        header = re.compile(r"^\s*\[\s*profiles\s*\.\s*\"?" + re.escape(name) + r"\"?\s*\]")
        in_table = False
        found: int | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if header.match(line):
                in_table, found = True, number
                continue
            if in_table and line.lstrip().startswith("["):
                break
            if in_table and key and re.match(r"^\s*" + re.escape(key) + r"\s*=", line):
                return number
        return found

    def _write_document(self, document: dict[str, Any]) -> None:
        import tomli_w

        paths.ensure_private_dir(self.path.parent)
        data = tomli_w.dumps(document).encode("utf-8")
        atomic_write_bytes(self.path, data, mode=0o600)


def _split_toml_error(message: str) -> tuple[str, int | None]:
    """tomllib (3.11) puts the position in the message: ``... (at line 3, column 7)``."""
    match = re.search(r"\(at line (\d+), column \d+\)$", message)
    if not match:
        return message, None
    return message[: match.start()].strip(), int(match.group(1))


def with_changes(profile: Profile, **changes: object) -> Profile:
    """A copy of ``profile`` with ``changes``, validated (enum strings accepted).

    The values come from a form or the command line, so any type may arrive:
    a wrong one is a :class:`ProfileError` naming the field.
    """
    return replace(profile, **_coerce_changes(changes))


def _coerce_changes(changes: dict[str, object]) -> dict[str, Any]:
    plain = {k: v for k, v in changes.items() if k not in ("name", "extra")}
    out = _coerce(plain)
    for key in ("name", "extra"):
        if key in changes:
            out[key] = changes[key]
    return out
