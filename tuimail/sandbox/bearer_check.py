"""OAuth 2.0 bearer tokens on the sandbox's side: each AUTH response read strictly, each token checked.

The client side of XOAUTH2 and OAUTHBEARER is tuimail/bearer.py; this is the
server's half, so an application's whole OAuth mail path can be tested
against the sandbox:

* :func:`parse_response` reads an initial response exactly as each mechanism
  defines it (XOAUTH2: ``user=U^Aauth=Bearer T^A^A``; OAUTHBEARER, RFC 7628
  section 3.1: a GS2 header naming the user, key/value pairs, ``^A^A``) and
  raises :class:`MalformedResponse`, saying what is wrong in words, for
  anything else. A sandbox that took a sloppy response would pass a client
  that production servers refuse.
* :func:`check_token` asks an authorization server about the token (RFC 7662
  token introspection), with the sandbox's own client credentials, through
  tuimail/oauth/transport.py (a timeout, a bounded answer, no redirects,
  secrets only over https or to loopback). It blocks: the protocol runs it in
  a thread, under a timeout of its own.
* :func:`error_challenge` is the JSON object a refused token is answered
  with, in a ``334``, before the ``535`` (RFC 7628 section 3.2.2, and Gmail's
  XOAUTH2, whose statuses are HTTP codes).
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from pathlib import Path

from tuimail.credentials import Secret
from tuimail.errors import TuimailError
from tuimail.terminal_text import escape_controls

#: The most bytes a decoded response may hold: RFC 4954 section 4's limit for
#: the AUTH line that carries it (real tokens are a few kilobytes at most).
MAX_RESPONSE = 12288
#: Seconds an introspection request may take before the client is told to try later.
INTROSPECT_TIMEOUT = 10.0
#: Largest introspection client file read: one line.
MAX_CLIENT_FILE = 4096
#: The most characters of what the authorization server says that a transcript quotes.
_QUOTED = 200

XOAUTH2 = "XOAUTH2"
OAUTHBEARER = "OAUTHBEARER"
MECHANISMS = (XOAUTH2, OAUTHBEARER)

#: RFC 6750's b64token: the characters an access token may have.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: The HTTP credentials in ``auth=``: the scheme (any case), one space, the token.
_AUTH_VALUE = re.compile(r"(?i:bearer) (?P<token>.*)", re.DOTALL)
#: RFC 7628's key: letters only.
_KEY = re.compile(r"[A-Za-z]+")
#: RFC 7628's value: VCHAR, SP, HTAB, CR, LF.
_VALUE = re.compile(r"[\x21-\x7e \t\r\n]*")
#: RFC 5801's saslname: "=" only as "=2C" or "=3D", no raw ",".
_SASLNAME = re.compile(r"(?:[^=,]|=2C|=3D)+")


class MalformedResponse(TuimailError):
    """An initial response that is not what its mechanism defines; the message says how."""


@dataclass(frozen=True)
class BearerResponse:
    """What a well-formed initial response carries."""

    mechanism: str
    #: The user the client names; "" when an OAUTHBEARER response names none.
    user: str
    token: Secret


def parse_response(mechanism: str, data: bytes) -> BearerResponse:
    """The user and token in ``data`` (the decoded initial response), else :class:`MalformedResponse`."""
    if len(data) > MAX_RESPONSE:
        raise MalformedResponse(f"the response is longer than {MAX_RESPONSE:,} bytes")
    if mechanism == XOAUTH2:
        return _parse_xoauth2(data)
    if mechanism == OAUTHBEARER:
        return _parse_oauthbearer(data)
    raise ValueError(mechanism)


def _text(part: bytes, what: str) -> str:
    try:
        return part.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedResponse(f"{what} is not UTF-8") from None


def _token(auth: str) -> Secret:
    """The token of an ``auth=`` value, ``Bearer T``, checked against RFC 6750's b64token."""
    match = _AUTH_VALUE.fullmatch(auth)
    if match is None:
        raise MalformedResponse("auth= must be 'Bearer ' and the token")
    token = match.group("token")
    if not _TOKEN.fullmatch(token):
        raise MalformedResponse("the token is empty or holds characters a bearer token cannot")
    return Secret(token)


def _user(text: str) -> str:
    if not text:
        raise MalformedResponse("the user name is empty")
    if not text.isprintable():
        raise MalformedResponse("the user name holds control characters")
    return text


def _parse_xoauth2(data: bytes) -> BearerResponse:
    parts = data.split(b"\x01")
    if len(parts) != 4 or parts[2:] != [b"", b""]:
        raise MalformedResponse(
            "expected user=NAME^Aauth=Bearer TOKEN^A^A (two fields, each ended by ^A, then ^A)"
        )
    user_field, auth_field = parts[0], _text(parts[1], "auth=")
    if not user_field.startswith(b"user="):
        raise MalformedResponse("the first field must be user=NAME")
    if not auth_field.startswith("auth="):
        raise MalformedResponse("the second field must be auth=Bearer TOKEN")
    user = _user(_text(user_field.removeprefix(b"user="), "the user name"))
    return BearerResponse(XOAUTH2, user, _token(auth_field.removeprefix("auth=")))


def _parse_oauthbearer(data: bytes) -> BearerResponse:
    if not data.endswith(b"\x01\x01"):
        raise MalformedResponse("an OAUTHBEARER response ends with ^A^A (RFC 7628 section 3.1)")
    header, *pairs = data[:-2].split(b"\x01")
    user = _gs2_user(_text(header, "the GS2 header"))
    values: dict[str, str] = {}
    for pair in pairs:
        text = _text(pair, "a key/value pair")
        key, sep, value = text.partition("=")
        if not pair:
            raise MalformedResponse("an empty field before the closing ^A^A")
        if not sep or not _KEY.fullmatch(key) or not _VALUE.fullmatch(value):
            raise MalformedResponse(
                "each field after the GS2 header must be key=value (key: letters; value: "
                "printable ASCII), ended by ^A"
            )
        if key in values:
            raise MalformedResponse(f"the key {key!r} is given twice")
        values[key] = value
    if "auth" not in values:
        raise MalformedResponse("there is no auth=Bearer TOKEN field")
    if "port" in values and not values["port"].isdigit():
        raise MalformedResponse("port= must be a number")
    return BearerResponse(OAUTHBEARER, user, _token(values["auth"]))


def _gs2_user(header: str) -> str:
    """The user in a GS2 header (RFC 5801: ``n,a=NAME,``, or ``n,,`` naming none)."""
    flag, sep, rest = header.partition(",")
    if not sep or not rest.endswith(","):
        raise MalformedResponse("the response must begin with a GS2 header such as n,a=NAME,")
    if flag.startswith("p="):
        raise MalformedResponse(
            "OAUTHBEARER has no channel binding: the GS2 header's p= is refused"
        )
    if flag not in ("n", "y"):
        raise MalformedResponse("the GS2 header must begin with n, (or y,)")
    authzid = rest[:-1]
    if not authzid:
        return ""
    if not authzid.startswith("a=") or not _SASLNAME.fullmatch(authzid[2:]):
        raise MalformedResponse(
            "the GS2 header's user must be a=NAME, with ',' written =2C and '=' written =3D"
        )
    return _user(authzid[2:].replace("=2C", ",").replace("=3D", "="))


# -- the refusal ------------------------------------------------------------------


class Refusal(enum.Enum):
    """Why a token is refused, as each mechanism's error challenge says it."""

    #: Not active: expired, revoked or never issued.
    INVALID_TOKEN = ("401", "invalid_token")
    #: Active, but issued to another user than the one the client named.
    OTHER_USER = ("400", "invalid_request")

    def status(self, mechanism: str) -> str:
        """Gmail's XOAUTH2 says an HTTP status; RFC 7628's OAUTHBEARER an OAuth error code."""
        return self.value[0] if mechanism == XOAUTH2 else self.value[1]


def error_challenge(mechanism: str, refusal: Refusal, scope: str = "") -> bytes:
    """The JSON object of the ``334`` error challenge (aiosmtpd encodes it in base64)."""
    document = {"status": refusal.status(mechanism), "schemes": "bearer"}
    if scope:
        document["scope"] = scope
    return json.dumps(document, separators=(",", ":")).encode()


#: What the client must answer an error challenge with, decoded: RFC 7628
#: section 3.2.3's %x01 for OAUTHBEARER, an empty response for XOAUTH2.
CHALLENGE_ANSWER = {OAUTHBEARER: b"\x01", XOAUTH2: b""}


# -- introspection ----------------------------------------------------------------


@dataclass(frozen=True)
class Introspection:
    """Where tokens are checked (RFC 7662), and the sandbox's credentials there."""

    url: str
    client_id: str
    client_secret: Secret

    def __repr__(self) -> str:
        return f"Introspection(url={self.url!r}, client_id={self.client_id!r})"


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    #: The authorization server says the token is not active.
    INACTIVE = "inactive"
    #: Active, but for another user.
    OTHER_USER = "other user"
    #: The authorization server could not say: unreachable, or an answer not understood.
    UNCHECKED = "unchecked"


@dataclass(frozen=True)
class TokenCheck:
    """What the authorization server said about a token, and what that means here.

    ``owner`` is the user the token was issued to (``username``, else
    ``sub``), escaped and cut; ``scope`` its scope; ``detail`` why it was
    not checked, in words.
    """

    verdict: Verdict
    owner: str = ""
    scope: str = ""
    detail: str = ""


def _quoted(value: object) -> str:
    text = value if isinstance(value, str) else ""
    return escape_controls(text)[:_QUOTED]


def check_token(introspection: Introspection, token: Secret, user: str) -> TokenCheck:
    """Ask the authorization server whether ``token`` is active and ``user``'s.

    Blocks (a thread runs it). The user matches when it is the token's
    ``username`` or its ``sub``; a response that names no user (OAUTHBEARER's
    ``n,,``) takes the token's. Never raises for what the server does: an
    unreachable server or an answer not understood is :attr:`Verdict.UNCHECKED`.
    """
    from tuimail.oauth.errors import OAuthError
    from tuimail.oauth.transport import post_form

    try:
        said = post_form(
            introspection.url,
            {"token": token, "token_type_hint": "access_token"},
            timeout=INTROSPECT_TIMEOUT,
            basic_auth=(introspection.client_id, introspection.client_secret),
        )
    except OAuthError as exc:
        return TokenCheck(Verdict.UNCHECKED, detail=str(exc))
    active = said.get("active")
    if not isinstance(active, bool):
        return TokenCheck(
            Verdict.UNCHECKED, detail="its answer has no true or false 'active' (RFC 7662 2.2)"
        )
    if not active:
        return TokenCheck(Verdict.INACTIVE)
    names = [n for n in (said.get("username"), said.get("sub")) if isinstance(n, str) and n]
    scope = _quoted(said.get("scope"))
    owner = _quoted(names[0]) if names else ""
    if not names:
        return TokenCheck(Verdict.OTHER_USER, scope=scope)
    if user and user not in names:
        return TokenCheck(Verdict.OTHER_USER, owner=owner, scope=scope)
    return TokenCheck(Verdict.ACCEPTED, owner=owner, scope=scope)


class ClientFileProblem(TuimailError):
    """The introspection client file cannot be used; the message says why."""


@dataclass(frozen=True)
class ClientFile:
    """The sandbox's introspection credentials, and whether other users can read the file."""

    client_id: str
    client_secret: Secret
    #: The file's permission bits when group or others may read it, else None.
    readable_by_others: int | None


def load_client_file(path: Path) -> ClientFile:
    """``client_id:secret`` on one line (a final newline allowed), else :class:`ClientFileProblem`.

    Read through tuimail/small_files.py: a FIFO or a huge file is refused,
    never waited on. The secret never appears in a message.
    """
    import os

    from tuimail.small_files import NotReadable, read_small_file

    what = "the introspection client file"
    try:
        data = read_small_file(path, MAX_CLIENT_FILE)
        mode = os.stat(path).st_mode & 0o777
    except NotReadable as exc:
        raise ClientFileProblem(f"{what} {path} {exc.strerror}") from None
    except OSError as exc:
        raise ClientFileProblem(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ClientFileProblem(f"{what} {path} is not UTF-8 text") from None
    lines = text.removesuffix("\n").removesuffix("\r").split("\n")
    client_id, sep, secret = lines[0].partition(":")
    if len(lines) != 1 or not sep or not client_id.strip() or not secret:
        raise ClientFileProblem(
            f"{what} {path} must hold one line, client_id:secret "
            "(the client the sandbox authenticates with at the introspection endpoint)"
        )
    if not (client_id + secret).isprintable():
        raise ClientFileProblem(f"{what} {path} holds control characters")
    return ClientFile(client_id, Secret(secret), mode if mode & 0o044 else None)
