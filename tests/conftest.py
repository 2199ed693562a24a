"""Shared fixtures: isolated directories, real certificates, real servers, a real keyring.

The suite runs on pytest-xdist workers (``make test``: ``-n`` cores + 1;
``PYTEST_WORKERS=0`` for one process). Each worker is its own process
running whole test files (``--dist loadfile`` in pyproject.toml), and other
workers run other files at the same moment, so a fixture or test must:

- listen on port 0 and read the port back (a server started with
  ``--port=0`` prints it; ``ServerThread`` returns it). Never a fixed port,
  not even "the default": a port found free by binding port 0 and closing it
  can be taken by the next process before a daemon binds it, so a daemon
  that must be told its port ahead checks that it started and says why not.
- keep files, sockets and daemons' state under ``tmp_path`` or
  ``tmp_path_factory`` (each worker has its own base temp dir) or a
  ``tempfile.mkdtemp`` of its own; never a fixed name in /tmp or the
  repository. ``isolated_dirs`` gives every test its own XDG config, data
  and state dirs (the sandbox lock lives there), so a subprocess started by
  a test inherits them through the environment.
- give every named thing a unique name: a tmux server is ``tmux -L
  <uuid>`` with its own ``TMUX_TMPDIR`` (tests/test_ui_tmux.py); a D-Bus
  session and its gnome-keyring are per worker (``secret_service_session``:
  ``dbus-run-session`` makes a private bus, and the keyring's HOME and XDG
  dirs are a fresh temp dir, so no worker sees another's collection).
- scope shared servers ``session`` (once per worker) or ``module`` (once per
  file, as each file stays on one worker), and stop them at teardown, killing
  a process group it started; never kill processes by name.
- wait with a deadline for a condition, never for a fixed time, and assert
  on outcomes, never on how long something took: a worker shares the cores.
- under CI=true, fail when a system tool is missing (``require``) rather
  than skip, the same in every worker.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keyring
import pytest
import trustme
from keyring.backends import fail

from tests.sandbox_support import RunningSandbox
from tests.smtpservers import ServerThread
from tuimail.faults import FaultPlan
from tuimail.sandbox import Sandbox, SandboxConfig

# The OAuth test provider's fixtures (oauth_provider, make_oauth_provider), and
# syrupy's unused-snapshot check on xdist workers.
pytest_plugins = ["tests.oauth_support", "tests.xdist_support"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, what: str) -> None:
    """Skip when a component is missing on a developer machine; fail under CI=true."""
    if condition:
        return
    message = f"missing test component: {what}"
    if IN_CI:
        pytest.fail(message + " (CI=true: .ci/run must install it)")
    pytest.skip(message)


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} (Debian package {package})")
    assert path is not None
    return path


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own config, data and state dirs, and no real keyring."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("TUIMAIL_ALLOW_UNSAFE_KEYRING", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield home
    keyring.set_keyring(previous)


@dataclass
class Certs:
    ca: trustme.CA
    ca_file: Path
    good: ssl.SSLContext
    expired: ssl.SSLContext
    soon: ssl.SSLContext
    wrong_host: ssl.SSLContext
    self_signed: ssl.SSLContext


def _server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


def _self_signed_context(directory: Path) -> ssl.SSLContext:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "self-signed.pem"
    key_path = directory / "self-signed.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    directory = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    now = datetime.datetime.now(datetime.UTC)
    return Certs(
        ca=ca,
        ca_file=ca_file,
        good=_server_context(ca.issue_cert("localhost", "127.0.0.1")),
        expired=_server_context(
            ca.issue_cert(
                "localhost",
                "127.0.0.1",
                not_before=now - datetime.timedelta(days=60),
                not_after=now - datetime.timedelta(days=2),
            )
        ),
        soon=_server_context(
            ca.issue_cert("localhost", "127.0.0.1", not_after=now + datetime.timedelta(days=5))
        ),
        wrong_host=_server_context(ca.issue_cert("mail.example.test")),
        self_signed=_self_signed_context(directory),
    )


@pytest.fixture
def servers() -> Iterator[ServerThread]:
    with ServerThread() as thread:
        yield thread


@pytest.fixture
def make_sandbox(servers: ServerThread, tmp_path: Path) -> Iterator[Callable[..., RunningSandbox]]:
    """Start sandboxes on the server thread: ``make_sandbox(faults, seed, **config)``.

    Each has its own Maildir and session files under ``tmp_path``; all are
    stopped after the test.
    """
    started: list[RunningSandbox] = []

    def make(
        faults: list[str] | None = None, seed: int | None = None, **config: Any
    ) -> RunningSandbox:
        config.setdefault("port", 0)
        config.setdefault("maildir", tmp_path / f"maildir{len(started)}")
        config.setdefault("sessions_dir", tmp_path / f"sessions{len(started)}")
        sandbox = Sandbox(SandboxConfig(**config), faults=FaultPlan.from_specs(faults or [], seed))
        running = RunningSandbox(servers, sandbox)
        running.call(sandbox.start())
        started.append(running)
        return running

    yield make
    for running in started:
        running.call(running.sandbox.stop(grace=1))


@pytest.fixture
def sandbox(make_sandbox: Callable[..., RunningSandbox]) -> Sandbox:
    """One sandbox with the default settings, no faults yet, on the server thread."""
    return make_sandbox().sandbox


@dataclass
class SecretService:
    """A private D-Bus session with an unlocked gnome-keyring, for keyring tests."""

    env: dict[str, str]

    def backend(self) -> keyring.backend.KeyringBackend:
        from keyring.backends import SecretService as secret_service

        return secret_service.Keyring()


@pytest.fixture(scope="session")
def secret_service_session() -> Iterator[SecretService]:
    require_tool("dbus-run-session", "dbus")
    require_tool("gnome-keyring-daemon", "gnome-keyring")
    workdir = Path(tempfile.mkdtemp(prefix="tuimail-keyring-"))
    runtime = workdir / "run"
    runtime.mkdir(mode=0o700)
    script = workdir / "start.sh"
    # The bus address goes into a file of its own, renamed into place: on the
    # shared log, dbus-daemon's own warnings could split the line it was on.
    address_file = workdir / "address"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s" "$DBUS_SESSION_BUS_ADDRESS" > "{address_file}.new"\n'
        f'mv "{address_file}.new" "{address_file}"\n'
        "printf '%s' 'unlock-for-tests' | gnome-keyring-daemon --unlock --components=secrets --foreground\n"
    )
    script.chmod(0o700)
    env = dict(os.environ)
    env.update(
        HOME=str(workdir),
        XDG_RUNTIME_DIR=str(runtime),
        XDG_DATA_HOME=str(workdir / "data"),
        XDG_CONFIG_HOME=str(workdir / "config"),
    )
    log = (workdir / "out.txt").open("w+")
    process = subprocess.Popen(
        ["dbus-run-session", "--", str(script)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    address = ""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not address:
        with contextlib.suppress(FileNotFoundError):
            address = address_file.read_text().strip()
        time.sleep(0.05)
    require(bool(address), "a D-Bus session from dbus-run-session")
    service_env = {
        "DBUS_SESSION_BUS_ADDRESS": address,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring",
    }
    # Wait until the Secret Service answers (gnome-keyring starts asynchronously).
    previous = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
    service = SecretService(service_env)
    ready = False
    while time.monotonic() < deadline and not ready:
        try:
            backend = service.backend()
            backend.set_password("tuimail-test", "ready", "x")
            backend.delete_password("tuimail-test", "ready")
            ready = True
        except Exception:
            time.sleep(0.1)
    require(ready, "an unlocked gnome-keyring Secret Service")
    try:
        yield service
    finally:
        if previous is None:
            os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = previous
        os.killpg(process.pid, 15)
        process.wait(10)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def secret_service(
    secret_service_session: SecretService, monkeypatch: pytest.MonkeyPatch
) -> SecretService:
    """The keyring for this test: in-process calls and child processes both use it."""
    for key, value in secret_service_session.env.items():
        monkeypatch.setenv(key, value)
    keyring.set_keyring(secret_service_session.backend())
    return secret_service_session


@pytest.fixture(autouse=True)
def steady_cursors(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In snapshot tests, a focused Input's or TextArea's cursor stays drawn: no blinking.

    A cursor blinks off 0.5 s after its widget was focused or typed into, so a
    screenshot taken later than that on a busy machine (two xdist workers on
    two cores) missed the cursor the stored SVG has. Stopping the blink timer's
    toggle keeps the state every snapshot was recorded in.
    """
    if "snap_compare" not in request.fixturenames:
        return
    from textual.widgets import Input, TextArea

    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    monkeypatch.setattr(TextArea, "_toggle_cursor_blink_visible", lambda self: None)
