"""The core runs headless: nothing outside tuimail/ui imports textual."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import tuimail

CORE_MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(tuimail.__path__, "tuimail.")
    if not info.name.startswith("tuimail.ui") and info.name != "tuimail.__main__"
)


def test_core_modules_exist() -> None:
    assert {"tuimail.session", "tuimail.cli", "tuimail.transcript"} <= set(CORE_MODULES)


def test_core_imports_without_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(leaked))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "", f"core imported textual: {result.stdout}"


def test_send_command_does_not_import_textual_or_keyring() -> None:
    """`tuimail send --server` pays only for what it uses (start-up time vs swaks)."""
    code = (
        "import sys\n"
        "from tuimail import cli\n"
        "try:\n"
        "    cli.main(['send', '--server', '127.0.0.1:1', '--security', 'none', '--from',"
        " 'a@example.test', '--to', 'b@example.test', '--body', 'x', '--quiet', '--timeout', '1'])\n"
        "finally:\n"
        "    print('\\n' + ','.join(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('textual', 'keyring', 'cryptography'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.splitlines()[-1] == ""


def test_app_start_up_leaves_the_smtp_client_and_server_for_later() -> None:
    """The first screen does not wait for aiosmtplib, aiosmtpd or the outbox.

    They are imported by the first send and by the worker that starts the
    sandbox (start-up time against a minimal Textual app: docs/performance.md).
    """
    code = (
        "import sys\n"
        "import tuimail.ui.app\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('aiosmtplib', 'aiosmtpd', 'keyring', 'cryptography')"
        " or m in ('tuimail.session', 'tuimail.outbox', 'tuimail.sandbox'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""


def test_exit_codes_cover_every_stage() -> None:
    from tuimail import exitcodes
    from tuimail.session import Stage

    assert set(exitcodes.STAGE_CODES) == {stage.value for stage in Stage}
    assert all(exitcodes.for_stage(stage) == exitcodes.STAGE_CODES[stage.value] for stage in Stage)


def test_every_package_is_in_the_wheel() -> None:
    """pyproject.toml names packages one by one: a new one left out installs broken."""
    root = Path(tuimail.__file__).parent
    pyproject = tomllib.loads((root.parent / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(("tuimail", *init.parent.relative_to(root).parts))
        for init in root.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
