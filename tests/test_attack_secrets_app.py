"""Attacks on the app's OpenPGP passphrase dialog: a wrong passphrase, then the right one.

Compose sends with a locked key (tests/test_pgp_mime.py's Dave); the masked
dialog is answered wrongly once, then rightly. Afterwards neither passphrase,
in any form (tests/cli_helpers.py ``leak_patterns``), is in gpg's argv or
environment (a ``gpg`` first on PATH records them), on any screen the app
shows, or in any file under the config, data and state dirs (the outbox,
sent/, the transcripts, the history).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from textual.widgets import Input

from tests import test_pgp_mime
from tests.cli_helpers import files_under, leak_patterns
from tests.smtpservers import ServerThread, Sink
from tests.test_pgp_mime import PASSPHRASE, Keyring, forget_passphrases
from tests.ui_support import fill_draft, save_profile, wait_for, wait_for_run
from tuimail.ui.app import TuimailApp
from tuimail.ui.widgets.pgp_controls import PassphraseDialog

keyring = test_pgp_mime.keyring
gnupghome = test_pgp_mime.gnupghome

WRONG = "wrong-Passphrase-typed-first-4242"


async def test_passphrases_typed_in_the_app_reach_nothing_but_gpg_stdin(
    gnupghome: Keyring,
    servers: ServerThread,
    isolated_dirs: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
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
    forget_passphrases(gnupghome.home)
    sink = Sink()
    port = servers.smtp(sink)
    save_profile(name="local", host="127.0.0.1", port=port, security="none",
                 from_address="alice@example.test", pgp_sign=True,
                 pgp_key=gnupghome.dave)  # fmt: skip
    screens: list[str] = []
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Signed", body="Hello")
        await pilot.press("ctrl+s")
        for typed in (WRONG, PASSPHRASE):
            await wait_for(pilot, lambda: isinstance(app.screen, PassphraseDialog), "the dialog")
            field = app.screen.query_one("#passphrase", Input)
            assert field.password
            field.value = typed
            await pilot.press("enter")
            await pilot.pause(0.5)
            screens.append(app.export_screenshot())
        await wait_for_run(pilot)
        screens.append(app.export_screenshot())
        notes = " ".join(str(n.message) for n in app._notifications)
    (received,) = sink.messages
    assert b"BEGIN PGP SIGNATURE" in received.content
    blobs = {
        "gpg's argv and environment": log.read_bytes(),
        "the screens": "\n".join(screens).encode(),
        "the notifications": notes.encode(),
        "the message": received.content,
        **files_under(isolated_dirs),
    }
    for secret in (WRONG, PASSPHRASE):
        found = [n for n, b in blobs.items() if any(p in b for p in leak_patterns(secret))]
        assert found == [], f"{secret!r} is in {found}"
