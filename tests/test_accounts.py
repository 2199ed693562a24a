"""Accounts and secrets against a real Secret Service (gnome-keyring in dbus-run-session)."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import keyring
import pytest

from tests.cli_helpers import files_under, find_leaks, run_tuimail
from tests.conftest import Certs, SecretService
from tests.smtpservers import ServerThread, Sink, password_checker
from tuimail.credentials import (
    SERVICE,
    CredentialStore,
    KeyringError,
    Secret,
    UnsafeKeyringError,
    judge_backend,
)
from tuimail.message import Draft, build_message
from tuimail.profiles import ProfileStore
from tuimail.session import send

PASSWORD = "Tr0ub4dor&3-ünïcode"


def add_account(port: int, certs: Certs, name: str = "work") -> None:
    result = run_tuimail(
        "accounts", "add", name,
        "--host", "127.0.0.1", "--port", str(port), "--security", "starttls",
        "--user", "alice", "--from", "alice@example.test", "--display-name", "Alice Example",
        "--ca-file", str(certs.ca_file), "--password-stdin",
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_secret_service_round_trip(secret_service: SecretService) -> None:
    store = CredentialStore()
    assert judge_backend(store.backend).safe
    store.set("p1", Secret(PASSWORD))
    assert store.get("p1") == Secret(PASSWORD)
    assert keyring.get_password(SERVICE, "p1") == PASSWORD
    assert store.delete("p1") is True
    assert store.get("p1") is None
    assert store.delete("p1") is False


def test_secret_never_prints() -> None:
    secret = Secret(PASSWORD)
    assert PASSWORD not in repr(secret) + str(secret) + f"{secret}" + f"{secret!r}"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)


@pytest.mark.parametrize(
    ("backend", "named"),
    [
        ("keyring.backends.fail.Keyring", "keyring.backends.fail.Keyring"),
        ("keyring.backends.null.Keyring", "keyring.backends.null.Keyring"),
    ],
)
def test_unsafe_backends_are_refused_by_name(backend: str, named: str) -> None:
    env = {"PYTHON_KEYRING_BACKEND": backend}
    result = run_tuimail(
        "accounts", "add", "x", "--host", "mail.example.test", "--user", "u", "--password-stdin",
        input="pw\n", env=env,
    )  # fmt: skip
    assert result.returncode == 4
    assert named in result.stderr
    assert "Secret Service" in result.stderr
    # The opt-in lets a plain-file backend be used; it cannot help one that stores nothing.
    assert "TUIMAIL_ALLOW_UNSAFE_KEYRING" not in result.stderr
    # Ways that work without a keyring, in this command's words.
    assert "--password-command" in result.stderr and "--password-stdin" in result.stderr
    # Nothing half-done: the profile was not saved without its password.
    assert "x" not in ProfileStore().load()

    doctor = run_tuimail("doctor", env=env)
    assert doctor.returncode == 1
    assert named in doctor.stdout and "fix:" in doctor.stdout
    assert "TUIMAIL_ALLOW_UNSAFE_KEYRING" not in doctor.stdout


def test_unsafe_backend_only_with_explicit_opt_in() -> None:
    from keyring.backends import null

    with pytest.raises(UnsafeKeyringError):
        CredentialStore(null.Keyring()).set("x", Secret("pw"))
    CredentialStore(null.Keyring(), allow_unsafe=True).set("x", Secret("pw"))
    result = run_tuimail(
        "accounts", "add", "x", "--host", "mail.example.test", "--user", "u", "--password-stdin",
        input="pw\n",
        env={"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
             "TUIMAIL_ALLOW_UNSAFE_KEYRING": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_locked_or_broken_keyring_gives_a_fix() -> None:
    class Broken(keyring.backend.KeyringBackend):
        priority = 1

        def get_password(self, service: str, username: str) -> str | None:
            from keyring.errors import KeyringLocked

            raise KeyringLocked("Failed to unlock the collection!")

        def set_password(self, service: str, username: str, password: str) -> None:
            raise RuntimeError(f"dbus said no to {password}")

        def delete_password(self, service: str, username: str) -> None:
            raise RuntimeError("no")

    store = CredentialStore(Broken())  # type: ignore[no-untyped-call]  # keyring's __init__
    with pytest.raises(KeyringError, match="is locked") as locked:
        store.get("x")
    assert "Unlock your login keyring" in str(locked.value)
    with pytest.raises(KeyringError) as failed:
        store.set("x", Secret(PASSWORD))
    assert PASSWORD not in str(failed.value)


def test_accounts_lifecycle_keeps_the_password_in_the_keyring(
    secret_service: SecretService, servers: ServerThread, certs: Certs, isolated_dirs: Path
) -> None:
    sink = Sink()
    port = servers.smtp(
        sink, tls_context=certs.good, authenticator=password_checker({"alice": PASSWORD})
    )
    add_account(port, certs)
    assert keyring.get_password(SERVICE, "work") == PASSWORD
    toml = (isolated_dirs / "config" / "tuimail" / "profiles.toml").read_text()
    assert "alice" in toml and "password" not in toml.lower()

    listing = run_tuimail("accounts", "list")
    assert listing.returncode == 0
    assert "work" in listing.stdout and "STARTTLS" in listing.stdout
    as_json = json.loads(run_tuimail("accounts", "list", "--json").stdout)
    assert as_json[0]["name"] == "work" and as_json[0]["username"] == "alice"

    tested = run_tuimail("accounts", "test", "work")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "AUTH PLAIN ********" in tested.stdout and "no mail was sent" in tested.stderr
    assert not sink.messages

    sent = run_tuimail(
        "send", "--profile", "work", "--to", "bob@example.test", "--subject", "s", "--body", "b"
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert b"From: Alice Example <alice@example.test>" in sink.messages[0].content

    renamed = run_tuimail("accounts", "edit", "work", "--rename", "job", "--timeout", "12")
    assert renamed.returncode == 0, renamed.stderr
    assert keyring.get_password(SERVICE, "job") == PASSWORD
    assert keyring.get_password(SERVICE, "work") is None
    assert ProfileStore().get("job").timeout == 12.0

    changed = run_tuimail("accounts", "edit", "job", "--password-stdin", input="new-pass\n")
    assert changed.returncode == 0, changed.stderr
    assert keyring.get_password(SERVICE, "job") == "new-pass"

    removed = run_tuimail("accounts", "remove", "job")
    assert removed.returncode == 0 and "and its password" in removed.stdout
    assert keyring.get_password(SERVICE, "job") is None
    assert ProfileStore().load() == {}


def test_no_secret_reaches_any_file_output_or_export(
    secret_service: SecretService, servers: ServerThread, certs: Certs, isolated_dirs: Path
) -> None:
    """Search everything written for the password and its base64 forms."""
    sink = Sink()
    port = servers.smtp(
        sink,
        tls_context=certs.good,
        authenticator=password_checker({"alice": PASSWORD}),
    )
    add_account(port, certs)
    outputs: dict[str, bytes] = {}
    for mechanism in ("plain", "login"):
        run_tuimail("accounts", "edit", "work", "--auth", mechanism)
        for extra in ([], ["--json"]):
            result = run_tuimail(
                "send", "--profile", "work", "--to", "bob@example.test",
                "--subject", "s", "--body", "b", *extra,
            )  # fmt: skip
            assert result.returncode == 0, result.stdout + result.stderr
            outputs[f"{mechanism}{extra} stdout"] = result.stdout.encode()
            outputs[f"{mechanism}{extra} stderr"] = result.stderr.encode()
    tested = run_tuimail("accounts", "test", "work")
    outputs["test stdout"] = tested.stdout.encode()
    doctor = run_tuimail("doctor")
    outputs["doctor"] = doctor.stdout.encode()

    # In-process exports of the transcript, as the app would write them.
    profile = ProfileStore().get("work")
    secret = CredentialStore().get("work")
    outgoing = build_message(Draft(from_address="a@example.test", to=["b@example.test"]))
    report = asyncio.run(send(profile, outgoing, secret))
    assert report.ok
    outputs["export.txt"] = report.transcript.to_text().encode()
    outputs["export.jsonl"] = report.transcript.to_jsonl().encode()
    outputs["report.json"] = json.dumps(report.to_json()).encode()

    # The scanner itself must see a leak where there is one.
    plain_blob = base64.b64encode(b"\0alice\0" + PASSWORD.encode())
    assert find_leaks(PASSWORD, {"auth plain": plain_blob}) == ["auth plain"]

    written = files_under(isolated_dirs)
    assert written, "expected profiles.toml at least"
    assert find_leaks(PASSWORD, {**written, **outputs}) == []
    # The server saw the real password, so the check itself can see one.
    assert any(b"AUTH" in blob for blob in outputs.values())


def test_doctor_reports_keyring_paths_and_trust_store(secret_service: SecretService) -> None:
    result = run_tuimail("doctor")
    assert result.returncode == 0, result.stdout
    assert "SecretService" in result.stdout
    assert "keyring round trip: a test secret was stored, read back and deleted" in result.stdout
    assert "config dir" in result.stdout and "TLS trust store" in result.stdout
    checks = json.loads(run_tuimail("doctor", "--json").stdout)
    assert {c["name"] for c in checks} >= {"keyring backend", "keyring round trip", "profiles"}
