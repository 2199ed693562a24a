"""F5's ``x`` on a message for a locked key asks for the passphrase, masked, and decrypts.

Real gpg in a keyring of its own (tests/test_pgp_mime.py's Dave, whose key has
a passphrase that gpg-agent is made to forget) and a real S/MIME key file
encrypted with a passphrase (tests/smime_support.py), with neither a
passphrase command nor a keyring entry. The dialog is the one Compose signs
with; a wrong passphrase is said and asked again; Escape leaves the message
encrypted; what was typed is on no screen and in no file.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, Label, Static

from tests import test_pgp_mime
from tests.cli_helpers import files_under, find_leaks, run_tuimail, send_args
from tests.smtpservers import ServerThread, Sink
from tests.test_attack_protection_decrypt_words import _encrypted
from tests.test_pgp_mime import ALICE, DAVE, PASSPHRASE, Keyring, forget_passphrases
from tests.test_protection_view import _captured
from tests.test_sandbox_shared import open_f5
from tests.ui_support import (
    open_mailboxes,
    save_profile,
    static_text,
    wait_for,
    wait_for_mailboxes,
)
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.mailboxes import MailboxesScreen
from tuimail.ui.widgets.pgp_controls import PassphraseDialog

keyring = test_pgp_mime.keyring
gnupghome = test_pgp_mime.gnupghome

WRONG = "wrong-Passphrase-typed-first-4242"
SMIME_PASSPHRASE = "s/mime key passphrase 9f2e"


def _dialog_words(app: TuimailApp) -> str:
    return " ".join(str(label.render()) for label in app.screen.query(Label))


async def _answer(app: TuimailApp, pilot: object, typed: str, screens: list[str]) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, PassphraseDialog), "the dialog")  # type: ignore[arg-type]
    field = app.screen.query_one("#passphrase", Input)
    assert field.password
    field.value = typed
    screens.append(app.export_screenshot())
    await pilot.press("enter")  # type: ignore[attr-defined]


async def f5_showing(pilot: Any, subject: str) -> Callable[[], str]:
    """F5 on the one captured message, shown; its view's text, as a function."""
    app = pilot.app

    def view() -> str:
        return static_text(app, "#message-view")

    table = await open_f5(pilot, 1)
    table.focus()
    await wait_for(pilot, lambda: f"Subject: {subject}" in view(), "the message")
    return view


async def send_sealed_from_dave() -> None:
    """Dave sends "Sent-sealed-text" encrypted (so to his own locked key too) through
    a real server; the sent copy is what F7 shows."""
    sink = Sink()
    with ServerThread() as servers:
        args = send_args(servers.smtp(sink), "--body", "Sent-sealed-text\n", "--pgp-encrypt")
        args[args.index("Alice <alice@example.test>")] = f"Dave <{DAVE}>"
        result = await asyncio.to_thread(run_tuimail, *args)
        assert result.returncode == 0, result.stderr


async def f7_showing_the_sealed(pilot: Any) -> tuple[MailboxesScreen, Callable[[], str]]:
    """F7's Sent tab on that message, shown still encrypted; its preview, as a function."""
    screen = await open_mailboxes(pilot, "tab-sent")
    table = screen.query_one("#sent-table", DataTable)
    await wait_for(pilot, lambda: table.row_count == 1, "the sent message")
    await wait_for_mailboxes(pilot)

    def view() -> str:
        return str(screen.query_one("#sent-view", Static).content)

    await wait_for(pilot, lambda: "encrypted to" in view(), "the preview")
    assert "Sent-sealed-text" not in view()
    return screen, view


async def _wrong_then_right(
    app: TuimailApp, pilot: object, passphrase: str, screens: list[str]
) -> None:
    """A wrong passphrase first: said, and asked again; then ``passphrase``."""
    await _answer(app, pilot, WRONG, screens)
    await wait_for(
        pilot,  # type: ignore[arg-type]
        lambda: isinstance(app.screen, PassphraseDialog) and "wrong" in _dialog_words(app),
        "the dialog again, saying the passphrase was wrong",
    )
    await _answer(app, pilot, passphrase, screens)


async def test_x_asks_for_a_locked_openpgp_key_and_decrypts(
    gnupghome: Keyring, isolated_dirs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _captured(_encrypted(f"Dave <{DAVE}>", DAVE, gnupghome.dave))
    forget_passphrases(gnupghome.home)
    # A gpg first on PATH records its argv and environment, then runs the real one.
    real = shutil.which("gpg")
    assert real is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "gpg-runs.log"
    wrapper = bin_dir / "gpg"
    wrapper.write_text(
        f'#!/bin/sh\nprintf "argv: %s\\n" "$@" >> "{log}"\nenv >> "{log}"\nexec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    app = TuimailApp(start_sandbox=False)
    screens: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        view = await f5_showing(pilot, "Plans")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, PassphraseDialog), "the dialog")
        assert "locked" in _dialog_words(app)
        await _wrong_then_right(app, pilot, PASSPHRASE, screens)
        await wait_for(pilot, lambda: "Inside." in view(), "the decrypted text")
        assert "decrypted for display" in view()
        screens.append(app.export_screenshot())
        notes = " ".join(str(n.message) for n in app._notifications)
    assert b"--decrypt" in log.read_bytes(), "the wrapper did not run"
    blobs = {
        "the screens": "\n".join(screens).encode(),
        "notes": notes.encode(),
        "gpg's argv and environment": log.read_bytes(),
    }
    blobs.update(files_under(isolated_dirs))
    for secret in (WRONG, PASSPHRASE):
        found = find_leaks(secret, blobs)
        assert found == [], f"{secret!r} is in {found}"


async def test_escape_leaves_it_encrypted(gnupghome: Keyring, isolated_dirs: Path) -> None:
    _captured(_encrypted(f"Dave <{DAVE}>", DAVE, gnupghome.dave))
    forget_passphrases(gnupghome.home)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await f5_showing(pilot, "Plans")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, PassphraseDialog), "the dialog")
        await pilot.press("escape")
        await wait_for(
            pilot,
            lambda: any("Not decrypted" in str(n.message) for n in app._notifications),
            "the words saying it stays encrypted",
        )
        assert not isinstance(app.screen, PassphraseDialog)
        assert "Inside." not in static_text(app, "#message-view")


async def test_x_asks_for_an_smime_key_without_command_or_keyring(
    isolated_dirs: Path, tmp_path: Path
) -> None:
    from tests.smime_support import TestCA
    from tuimail import smime

    ca = TestCA(tmp_path / "ca")
    me = ca.issue(ALICE, passphrase=SMIME_PASSPHRASE.encode())
    entity = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nS/MIME-secret-text\r\n"
    wire = (
        f"From: {DAVE}\r\nTo: {ALICE}\r\nSubject: Sealed\r\nMIME-Version: 1.0\r\n".encode()
        + smime.encrypt_entity(entity, [me.cert])
    )
    _captured(wire)
    save_profile(
        name="mine",
        host="127.0.0.1",
        port=2525,
        security="none",
        from_address=ALICE,
        smime_cert=str(me.cert_path),
        smime_key=str(me.key_path),
    )
    app = TuimailApp(start_sandbox=False)
    screens: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        view = await f5_showing(pilot, "Sealed")
        await pilot.press("x")
        await _wrong_then_right(app, pilot, SMIME_PASSPHRASE, screens)
        await wait_for(pilot, lambda: "S/MIME-secret-text" in view(), "the decrypted text")
        screens.append(app.export_screenshot())
    blobs = {"the screens": "\n".join(screens).encode()}
    blobs.update(files_under(isolated_dirs))
    for secret in (WRONG, SMIME_PASSPHRASE):
        found = find_leaks(secret, blobs)
        assert found == [], f"{secret!r} is in {found}"


async def test_f7_decrypts_a_sent_message_for_a_locked_own_key(
    gnupghome: Keyring, isolated_dirs: Path
) -> None:
    """A message sent encrypted is encrypted to the sender's own key too: F7's ``v`` opens
    it, asking for that key's passphrase as F5 does."""
    await send_sealed_from_dave()
    forget_passphrases(gnupghome.home)
    app = TuimailApp(start_sandbox=False)
    screens: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        _screen, view = await f7_showing_the_sealed(pilot)
        await pilot.press("v")
        await _wrong_then_right(app, pilot, PASSPHRASE, screens)
        await wait_for(pilot, lambda: "Sent-sealed-text" in view(), "the decrypted text")
        assert "decrypted for display" in view()
        screens.append(app.export_screenshot())
    blobs = {"the screens": "\n".join(screens).encode()}
    blobs.update(files_under(isolated_dirs))
    for secret in (WRONG, PASSPHRASE):
        found = find_leaks(secret, blobs)
        assert found == [], f"{secret!r} is in {found}"
