"""Every private name of another package that tuimail touches, in one list.

tuimail watches the wire under aiosmtplib (:mod:`tuimail.wire`) and replaces
parts of aiosmtpd's server (:mod:`tuimail.sandbox`). Both reach past the
libraries' public API, so a release that renames one of these names breaks a
send or the sandbox without any public change. Describing a certificate
reaches past two more (:data:`OTHER_PACKAGES`: the stdlib's ``ssl`` and
``cryptography``), one name each. This list is what guards against that:

* ``pyproject.toml`` pins both libraries to the range these names were checked
  in, and ``make test-min`` runs the SMTP tests with the lowest of that range;
* ``tests/test_private_api.py`` checks that each name below exists in the
  installed versions, and scans tuimail's source for private names of the two
  libraries that are missing here, so the list stays complete.

Anyone raising a pin reads this list first: each entry says where the name is
used and why nothing public does the job.
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass
from typing import Any

#: The SMTP libraries whose private names are listed here: pinned in pyproject.toml,
#: their versions shown by ``tuimail doctor``.
LIBRARIES = ("aiosmtplib", "aiosmtpd")
#: Other packages tuimail takes one private name each from: listed and checked for
#: presence like the rest, but left out of the test's scan for unlisted names, which
#: matches by name alone (cryptography's ``_value`` is also tuimail's own Secret's).
OTHER_PACKAGES: tuple[str, ...] = ("ssl", "cryptography")
OTHER_PACKAGES += ("gnupg",)  # python-gnupg: tuimail/pgp_mime.py's timeout


class Kind(enum.StrEnum):
    """How the name is found, which decides how its presence is checked."""

    #: Defined on the class (method, property or class attribute).
    CLASS_ATTRIBUTE = "class attribute"
    #: Set on each instance (in ``__init__`` or when a connection is made).
    INSTANCE_ATTRIBUTE = "instance attribute"
    #: Set on a function object by a library decorator.
    FUNCTION_ATTRIBUTE = "function attribute"
    #: A public name of a submodule that the package leaves out of its ``__all__``.
    UNEXPORTED = "unexported name"


@dataclass(frozen=True)
class PrivateName:
    """One private name: where it lives, where tuimail uses it, and why."""

    owner: str  # dotted path of the module, class or function that holds the name
    name: str
    kind: Kind
    used_in: str  # file and function, inside this repository
    why: str

    @property
    def library(self) -> str:
        return self.owner.split(".", 1)[0]

    @property
    def qualified(self) -> str:
        return f"{self.owner}.{self.name}"

    def resolve_owner(self) -> Any:
        """The module, class or function named by ``owner``."""
        parts = self.owner.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                found: Any = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attribute in parts[cut:]:
                found = getattr(found, attribute)
            return found
        raise ImportError(f"cannot import {self.owner}")


_CLIENT = "aiosmtplib.smtp.SMTP"
_SERVER = "aiosmtpd.smtp.SMTP"
_WIRE = "tuimail/wire.py, TranscribingSMTP._create_connection"
_WIRE_PROTOCOL = "tuimail/wire.py, TranscribingProtocol"
_SANDBOX = "tuimail/sandbox/protocol.py, SandboxSMTP"

PRIVATE_NAMES: tuple[PrivateName, ...] = (
    # -- aiosmtplib: the client under the wire capture --------------------------
    # tuimail opens and times the TCP connection itself and hands aiosmtplib the
    # socket through its public connect(sock=...); what remains has no public way.
    PrivateName(
        _CLIENT, "_create_connection", Kind.CLASS_ATTRIBUTE, _WIRE,
        "overridden: the only place aiosmtplib builds its protocol object; tuimail puts "
        "its transcribing protocol there (both directions of the wire recorded) and "
        "times the implicit TLS handshake apart from the greeting, which aiosmtplib "
        "does in one call (docs/upstream.md proposes a public protocol factory)",
    ),
    PrivateName(
        "aiosmtplib.protocol", "SMTPProtocol", Kind.UNEXPORTED, _WIRE_PROTOCOL,
        "subclassed: data_received and write are the two doors of the connection "
        "the transcript watches; aiosmtplib does not export the class",
    ),
    # -- aiosmtpd: the sandbox's server ----------------------------------------
    # What can be done through aiosmtpd's documented handler hooks is done there
    # (tuimail/sandbox/handler.py: EHLO keywords, MAIL, RCPT, storing, QUIT). These
    # remain because aiosmtpd has no public way to do the same:
    PrivateName(
        _SERVER, "_timeout_cb", Kind.CLASS_ATTRIBUTE, f"{_SANDBOX}._timeout_cb",
        "overridden and called: the idle timeout is recorded in the session and "
        "answered with 421 before aiosmtpd closes the connection; aiosmtpd has no "
        "timeout hook and closes without a word",
    ),
    PrivateName(
        _SERVER, "_timeout_duration", Kind.INSTANCE_ATTRIBUTE, f"{_SANDBOX}._timeout_cb",
        "read: the idle timeout, for the words recorded when it fires (the constructor's "
        "timeout argument is not kept under a public name)",
    ),
    PrivateName(
        _SERVER, "_getaddr", Kind.CLASS_ATTRIBUTE, f"{_SANDBOX}._getaddr",
        "overridden and called: MAIL FROM and RCPT TO paths are parsed by "
        "tuimail/envelope_path.py first, falling back to aiosmtpd's parser; the "
        "parser is the largest CPU cost per message and has no public seam",
    ),
    PrivateName(
        _SERVER, "_reader", Kind.INSTANCE_ATTRIBUTE, f"{_SANDBOX}.smtp_DATA",
        "read from: the sandbox reads message data in blocks (tuimail/smtp_data.py) "
        "instead of aiosmtpd's line loop; aiosmtpd has no hook for reading the data "
        "(docs/upstream.md proposes a public block reader)",
    ),
    PrivateName(
        _SERVER, "_writer", Kind.INSTANCE_ATTRIBUTE, f"{_SANDBOX}.smtp_DATA and _timeout_cb",
        "written to and closed: the 421 on timeout (push() cannot run from the "
        "timeout callback), and closing when the client vanishes during DATA",
    ),
    *(
        PrivateName(
            f"{_SERVER}.smtp_{command}", "__smtp_syntax__", Kind.FUNCTION_ATTRIBUTE,
            f"tuimail/sandbox/protocol.py, _help_of (on SandboxSMTP.smtp_{command})",
            "copied onto the override: aiosmtpd's HELP lists only commands whose method "
            "carries what its @syntax decorator set; these commands stay overridden "
            "because their fault must answer before aiosmtpd's own checks (greeting, "
            "HELO/EHLO, AUTH, DATA), or DATA's data is read in blocks, or STARTTLS "
            "must always end its session",
        )
        for command in ("HELO", "EHLO", "AUTH", "DATA", "STARTTLS")
    ),
    # -- ssl and cryptography: describing a server's certificate -----------------
    PrivateName(
        "ssl.SSLObject", "_sslobj", Kind.INSTANCE_ATTRIBUTE, "tuimail/trust.py, peer_chain",
        "read on Python before 3.13: the whole chain the server sent, unverified, for "
        "the probe's report (the public SSLObject.get_unverified_chain arrives in 3.13; "
        "getpeercert gives the leaf only); without it the probe shows the leaf alone",
    ),
    PrivateName(
        "cryptography.x509.ObjectIdentifier", "_name", Kind.CLASS_ATTRIBUTE,
        "tuimail/tlsinfo.py, certificate_from_der",
        "read: the long name of a subject attribute (countryName, localityName), as the "
        "stdlib's getpeercert names it for verified certificates; cryptography makes "
        "public only the dotted number and the RFC 4514 short names (C, L)",
    ),
    # -- python-gnupg: a timeout on every gpg call ---------------------------------
    PrivateName(
        "gnupg.GPG", "_open_subprocess", Kind.CLASS_ATTRIBUTE,
        "tuimail/pgp_mime.py, gpg",
        "overridden to start a timer that kills gpg after GPG_TIMEOUT: python-gnupg "
        "has no timeout and hands out no process, and a gpg waiting on a smartcard or "
        "a stuck agent would otherwise hold a send forever",
    ),
)  # fmt: skip


def missing_names(instances: dict[str, Any] | None = None) -> list[str]:
    """Listed names the installed libraries lack, each as ``owner.name``.

    Instance attributes are checked on ``instances`` (owner to a live object),
    when given; without one they cannot be seen and are skipped.
    """
    instances = instances or {}
    missing = []
    for entry in PRIVATE_NAMES:
        try:
            owner = entry.resolve_owner()
        except (ImportError, AttributeError):
            missing.append(entry.qualified)
            continue
        if entry.kind is Kind.INSTANCE_ATTRIBUTE:
            live = instances.get(entry.owner)
            if live is not None and not hasattr(live, entry.name):
                missing.append(entry.qualified)
        elif entry.kind is Kind.FUNCTION_ATTRIBUTE:
            if entry.name not in vars(owner):
                missing.append(entry.qualified)
        elif not hasattr(owner, entry.name):
            missing.append(entry.qualified)
    return missing
