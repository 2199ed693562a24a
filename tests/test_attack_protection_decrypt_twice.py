"""Pressing F5's ``x`` (or F7's ``v``) again while a decryption asks or runs starts no second one.

Real gpg in a keyring of its own (tests/test_pgp_mime.py's Dave, whose locked
key gpg-agent is made to forget). Two quick presses used to start two
workers: each brought up its own passphrase dialog, so after the first was
answered (and the message shown decrypted) a second dialog still asked for
the same passphrase.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Input

from tests import test_pgp_mime
from tests.test_attack_protection_decrypt_words import _encrypted
from tests.test_pgp_mime import DAVE, PASSPHRASE, Keyring, forget_passphrases
from tests.test_protection_decrypt_passphrase import (
    f5_showing,
    f7_showing_the_sealed,
    send_sealed_from_dave,
)
from tests.test_protection_view import _captured
from tests.ui_support import wait_for
from tuimail.ui.app import TuimailApp
from tuimail.ui.widgets.pgp_controls import PassphraseDialog

keyring = test_pgp_mime.keyring
gnupghome = test_pgp_mime.gnupghome


def _dialogs(app: TuimailApp) -> int:
    return sum(isinstance(screen, PassphraseDialog) for screen in app.screen_stack)


async def _answer_once(app: TuimailApp, pilot: object) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, PassphraseDialog), "the dialog")  # type: ignore[arg-type]
    await asyncio.sleep(0.5)  # time for a second worker's dialog, if one was started
    assert _dialogs(app) == 1, "a second passphrase dialog was pushed"
    app.screen.query_one("#passphrase", Input).value = PASSPHRASE
    await pilot.press("enter")  # type: ignore[attr-defined]


async def test_x_twice_fast_asks_once(gnupghome: Keyring, isolated_dirs: Path) -> None:
    _captured(_encrypted(f"Dave <{DAVE}>", DAVE, gnupghome.dave))
    forget_passphrases(gnupghome.home)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        view = await f5_showing(pilot, "Plans")
        # Both before gpg's first answer (a key is read at the next idle moment).
        app.screen.action_decrypt()  # type: ignore[attr-defined]
        app.screen.action_decrypt()  # type: ignore[attr-defined]
        await _answer_once(app, pilot)
        await wait_for(pilot, lambda: "Inside." in view(), "the decrypted text")
        await asyncio.sleep(0.5)
        assert _dialogs(app) == 0


async def test_f7_v_twice_fast_asks_once(gnupghome: Keyring, isolated_dirs: Path) -> None:
    await send_sealed_from_dave()
    forget_passphrases(gnupghome.home)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, view = await f7_showing_the_sealed(pilot)
        screen.action_decrypt()
        screen.action_decrypt()
        await _answer_once(app, pilot)
        await wait_for(pilot, lambda: "Sent-sealed-text" in view(), "the decrypted text")
        await asyncio.sleep(0.5)
        assert _dialogs(app) == 0
