"""Passwords in the OS keyring, and nowhere else.

One keyring entry per profile under the service name ``tuimail``. Backends
that do not protect secrets (keyring's ``fail`` and ``null`` backends and the
keyrings.alt file backends) are refused with a message that names the backend
and the fix, unless the user opts in with ``TUIMAIL_ALLOW_UNSAFE_KEYRING=1``.
There is never a silent fallback to a weaker store.

``keyring`` is imported lazily: loading its backends costs start-up time that
``tuimail send --password-stdin`` should not pay.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, TypeVar

from tuimail.errors import TuimailError

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

_T = TypeVar("_T")

SERVICE = "tuimail"
UNSAFE_OPT_IN_ENV = "TUIMAIL_ALLOW_UNSAFE_KEYRING"

_UNSAFE_MODULE_PREFIXES = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")

_INSTALL_TEXT = (
    "Install and unlock a Secret Service (GNOME Keyring or KWallet) on Linux, "
    "or choose a secure backend with PYTHON_KEYRING_BACKEND or keyringrc.cfg"
)
FIX_TEXT = f"{_INSTALL_TEXT}; to accept an unsafe backend anyway, set {UNSAFE_OPT_IN_ENV}=1."
#: The fix for a backend that stores nothing (keyring's ``fail`` and ``null``): the opt-in
#: only lets a backend that stores passwords unprotected (a plain file) be used, so it
#: is not offered. Each face adds its own way around a keyring (the command line:
#: ``--password-stdin``, in ``cli/common.py``).
FIX_TEXT_NO_STORE = (
    "Install and start a Secret Service (GNOME Keyring or KWallet) on Linux, or choose a "
    "secure backend with PYTHON_KEYRING_BACKEND or keyringrc.cfg. Or keep the password out "
    "of the keyring: a profile's password command (password_command, e.g. 'pass show mail') "
    "gives it at each send."
)
#: The fix once the opt-in is set: it cannot help, there is no backend to allow.
FIX_TEXT_OPTED_IN = (
    f"{_INSTALL_TEXT}. {UNSAFE_OPT_IN_ENV} is already set, but it only lets an unsafe "
    "backend be used: it cannot make up for a backend that stores nothing."
)


def keyring_fix(opted_in: bool, verdict: BackendVerdict | None = None) -> str:
    """What to do when the keyring cannot keep a password; never advice already taken,
    nor advice that cannot help (the opt-in, for a ``verdict`` that stores nothing)."""
    if opted_in:
        return FIX_TEXT_OPTED_IN
    if verdict is not None and not verdict.stores:
        return FIX_TEXT_NO_STORE
    return FIX_TEXT


class Secret:
    """A password that does not print itself.

    Textual and rich can render tracebacks with local variables; wrapping the
    password keeps it out of every repr, str and f-string. Only
    :meth:`reveal` gives the value, at the one place it goes on the wire.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        import hmac

        return isinstance(other, Secret) and hmac.compare_digest(
            self._value.encode(), other._value.encode()
        )

    def __hash__(self) -> int:
        return hash(Secret)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


class KeyringError(TuimailError):
    """The keyring cannot be used; the message says what to do about it."""

    def __init__(self, message: str, fix: str = FIX_TEXT) -> None:
        super().__init__(f"{message}. {fix}")
        self.message = message
        self.fix = fix


class UnsafeKeyringError(KeyringError):
    """The active backend would store passwords unprotected, or not at all."""


@dataclass(frozen=True)
class BackendVerdict:
    """What ``tuimail doctor`` says about the keyring backend."""

    name: str
    safe: bool
    reason: str
    #: False for a backend that keeps nothing (``fail``, ``null``), which no opt-in can help.
    stores: bool = True


def describe_backend(backend: KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def judge_backend(backend: KeyringBackend) -> BackendVerdict:
    """Is ``backend`` fit to hold passwords?"""
    name = describe_backend(backend)
    members = getattr(backend, "backends", None)
    if members is not None and type(backend).__name__ == "ChainerBackend":
        verdicts = [judge_backend(member) for member in members]
        unsafe = [v for v in verdicts if not v.safe]
        if not verdicts:
            return BackendVerdict(name, False, "the chain holds no usable backend", stores=False)
        if unsafe:
            return BackendVerdict(
                name,
                False,
                f"the chain can fall back to {unsafe[0].name}: {unsafe[0].reason}",
                unsafe[0].stores,
            )
        return BackendVerdict(name, True, "every backend in the chain is secure")
    module = type(backend).__module__
    if module.startswith("keyring.backends.fail"):
        return BackendVerdict(name, False, "no keyring backend is available", stores=False)
    if module.startswith("keyring.backends.null"):
        return BackendVerdict(
            name, False, "the null backend silently forgets passwords", stores=False
        )
    if module.startswith("keyrings.alt"):
        return BackendVerdict(name, False, "keyrings.alt stores passwords in a plain file")
    return BackendVerdict(name, True, "the operating system's keyring protects the password")


def unsafe_allowed() -> bool:
    return os.environ.get(UNSAFE_OPT_IN_ENV, "").strip().lower() in ("1", "true", "yes")


class CredentialStore:
    """Profile passwords in the keyring; every failure becomes a :class:`KeyringError`."""

    def __init__(self, backend: KeyringBackend | None = None, allow_unsafe: bool | None = None):
        self._backend = backend
        self._allow_unsafe = unsafe_allowed() if allow_unsafe is None else allow_unsafe

    @property
    def backend(self) -> KeyringBackend:
        if self._backend is None:
            import keyring

            self._backend = keyring.get_keyring()
        return self._backend

    def verdict(self) -> BackendVerdict:
        return judge_backend(self.backend)

    def _checked_backend(self) -> KeyringBackend:
        verdict = self.verdict()
        if not verdict.safe and not self._allow_unsafe:
            raise UnsafeKeyringError(
                f"refusing keyring backend {verdict.name}: {verdict.reason}",
                keyring_fix(False, verdict),
            )
        return self.backend

    def get(self, profile_name: str) -> Secret | None:
        backend = self._checked_backend()
        value = self._call("read the password from", backend.get_password, SERVICE, profile_name)
        return None if value is None else Secret(value)

    def set(self, profile_name: str, secret: Secret) -> None:
        backend = self._checked_backend()
        self._call(
            "store the password in", backend.set_password, SERVICE, profile_name, secret.reveal()
        )

    def delete(self, profile_name: str) -> bool:
        """Remove the entry; ``False`` when there was none."""
        from keyring.errors import PasswordDeleteError

        backend = self._checked_backend()
        try:
            self._call("delete the password from", backend.delete_password, SERVICE, profile_name)
        except KeyringError as exc:
            if isinstance(exc.__cause__, PasswordDeleteError):
                return False
            raise
        return True

    def round_trip(self) -> str:
        """Store, read back and delete a random value; for ``tuimail doctor``."""
        import secrets

        probe_name = f"doctor-check-{secrets.token_hex(4)}"
        probe = Secret(secrets.token_urlsafe(16))
        self.set(probe_name, probe)
        try:
            back = self.get(probe_name)
        finally:
            self.delete(probe_name)
        if back != probe:
            # The null backend, allowed by the opt-in, forgets every value.
            raise KeyringError(
                "the keyring did not return the value just stored", keyring_fix(self._allow_unsafe)
            )
        return "a test secret was stored, read back and deleted"

    def _call(self, verb: str, func: Callable[..., _T], *args: object) -> _T:
        from keyring.errors import KeyringError as BackendError
        from keyring.errors import KeyringLocked, NoKeyringError

        name = describe_backend(self.backend)
        try:
            return func(*args)
        except KeyringLocked:
            raise KeyringError(
                f"could not {verb} the keyring: {name} is locked",
                "Unlock your login keyring (log in to the desktop session, or run "
                "'gnome-keyring-daemon --unlock' in this session) and try again.",
            ) from None
        except NoKeyringError:
            raise UnsafeKeyringError(
                f"could not {verb} the keyring: no backend is available",
                FIX_TEXT_OPTED_IN if self._allow_unsafe else FIX_TEXT_NO_STORE,
            ) from None
        except BackendError as exc:
            raise KeyringError(
                f"could not {verb} the keyring ({name}): {type(exc).__name__}"
            ) from exc
        except Exception as exc:  # D-Bus and OS errors surface as many types
            # The message of an error raised while storing could quote the value: omit it.
            detail = "" if verb.startswith("store") else f": {exc}"
            raise KeyringError(
                f"could not {verb} the keyring ({name}): {type(exc).__name__}{detail}"
            ) from None
