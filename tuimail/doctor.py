"""``tuimail doctor``: is this machine ready to send mail safely?

Each check says what it found and, when it fails, what to do. The app's
accounts screen shows the same sentences when the keyring misbehaves.
"""

from __future__ import annotations

import os
import ssl
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tuimail import paths
from tuimail.credentials import CredentialStore, KeyringError, keyring_fix, unsafe_allowed
from tuimail.profiles import ProfileStore, ProfileStoreError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(store: CredentialStore | None = None) -> list[Check]:
    return [
        *_path_checks(),
        _profiles_check(),
        *_keyring_checks(store or CredentialStore()),
        _trust_store_check(),
        _smtp_libraries_check(),
    ]


def _path_checks() -> list[Check]:
    checks = []
    for label, path in (
        ("config dir", paths.config_dir()),
        ("data dir", paths.data_dir()),
        ("state dir", paths.state_dir()),
    ):
        checks.append(_dir_check(label, path))
    return checks


def _dir_check(label: str, path: Path) -> Check:
    if not path.exists():
        return Check(label, True, f"{path} (not created yet; tuimail creates it with mode 0700)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check(
            label, False, f"{path} is readable by others (mode {mode:04o})", f"chmod 700 {path}"
        )
    if not os.access(path, os.W_OK):
        return Check(label, False, f"{path} is not writable", f"check the owner of {path}")
    return Check(label, True, f"{path} (mode {mode:04o})")


def _profiles_check() -> Check:
    store = ProfileStore()
    try:
        profiles = store.load()
    except ProfileStoreError as exc:
        return Check("profiles", False, str(exc), f"fix the line named above in {store.path}")
    if store.path.exists():
        mode = stat.S_IMODE(store.path.stat().st_mode)
        if mode & 0o077:
            return Check(
                "profiles", False, f"{store.path} has mode {mode:04o}", f"chmod 600 {store.path}"
            )
    return Check("profiles", True, f"{store.path}: {len(profiles)} profile(s)")


def _keyring_checks(store: CredentialStore) -> list[Check]:
    opted_in = unsafe_allowed()
    try:
        verdict = store.verdict()
    except Exception as exc:  # keyring's own start-up can fail in many ways
        return [
            Check("keyring backend", False, f"keyring failed to load: {exc}", keyring_fix(opted_in))
        ]
    allowed = verdict.safe or opted_in
    detail = f"{verdict.name}: {verdict.reason}"
    if not verdict.safe and allowed:
        detail += " (allowed by TUIMAIL_ALLOW_UNSAFE_KEYRING)"
    fix = "" if allowed else keyring_fix(False, verdict)
    checks = [Check("keyring backend", allowed, detail, fix)]
    if allowed:
        try:
            checks.append(Check("keyring round trip", True, store.round_trip()))
        except KeyringError as exc:
            checks.append(Check("keyring round trip", False, exc.message, exc.fix))
    return checks


def _trust_store_check() -> Check:
    verify_paths = ssl.get_default_verify_paths()
    context = ssl.create_default_context()
    count = context.cert_store_stats().get("x509_ca", 0)
    where = verify_paths.cafile or verify_paths.capath or verify_paths.openssl_cafile
    if count == 0 and not (verify_paths.capath and Path(verify_paths.capath).is_dir()):
        return Check(
            "TLS trust store",
            False,
            f"no CA certificates found ({ssl.OPENSSL_VERSION}; looked in {where})",
            "install the ca-certificates package, or set SSL_CERT_FILE",
        )
    loaded = f"{count} CA certificates loaded" if count else "CA directory available"
    return Check("TLS trust store", True, f"{loaded} from {where} ({ssl.OPENSSL_VERSION})")


def _smtp_libraries_check() -> Check:
    """The installed aiosmtplib and aiosmtpd still have the private names tuimail uses.

    pyproject.toml pins them, but a distribution package or a hand-made
    install can bring other versions; this says so before a send fails.
    Names set per connection are checked by the test suite, not here.
    """
    from importlib.metadata import PackageNotFoundError, version

    from tuimail.private_api import LIBRARIES, missing_names

    try:
        versions = ", ".join(f"{name} {version(name)}" for name in LIBRARIES)
    except PackageNotFoundError as exc:
        return Check("SMTP libraries", False, f"{exc} is not installed", "pip install tuimail")
    missing = missing_names()
    if missing:
        return Check(
            "SMTP libraries",
            False,
            f"{versions} lack names tuimail relies on: {', '.join(missing)}",
            "install the versions pyproject.toml allows (pip install --force-reinstall tuimail)",
        )
    return Check("SMTP libraries", True, f"{versions}: every name tuimail relies on is there")
