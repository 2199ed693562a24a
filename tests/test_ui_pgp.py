"""Compose's OpenPGP controls: the recipients' key line, the refusal, a send, the passphrase.

The keys are real (tests/test_pgp_mime.py's keyring: Alice's own, Bob's
imported and untrusted, Dave's locked), looked up by the user's gpg; what
reaches the server (an aiosmtpd Sink on 127.0.0.1) is decrypted by gpg.
The snapshots use an empty keyring, so every recipient reads "missing"
whatever the machine.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests import test_pgp_mime
from tests.conftest import require_tool
from tests.smtpservers import ServerThread, Sink
from tests.test_pgp_mime import (
    PASSPHRASE,
    Keyring,
    _close_home,
    decrypt,
    forget_passphrases,
    verify_signed,
)
from tests.ui_support import fill_draft, save_profile, static_text, wait_for, wait_for_run
from tuimail.outbox import Outbox
from tuimail.ui.app import TuimailApp
from tuimail.ui.widgets.form_checkbox import FormCheckbox
from tuimail.ui.widgets.pgp_controls import PassphraseDialog

#: The keyring and GNUPGHOME fixtures of tests/test_pgp_mime.py, used here by name.
keyring = test_pgp_mime.keyring
gnupghome = test_pgp_mime.gnupghome

SnapCompare = Callable[..., bool]
NARROW = (80, 24)


def keys_text(app: TuimailApp) -> str:
    return static_text(app, "#pgp-keys")


async def encrypt_on(pilot: Pilot[Any]) -> None:
    pilot.app.screen.query_one("#pgp-encrypt", FormCheckbox).value = True
    await pilot.pause()


async def set_to(pilot: Pilot[Any], value: str) -> None:
    pilot.app.screen.query_one("#input-to", Input).value = value
    await pilot.pause()


def stored_nothing() -> None:
    outbox = Outbox()
    assert not [p for p in outbox.root.rglob("*") if p.is_file() and b"Subject" in p.read_bytes()]


async def test_key_line_and_refusal_then_an_encrypted_send(
    gnupghome: Keyring, servers: ServerThread
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    save_profile(
        name="local", host="127.0.0.1", port=port, security="none", from_address=ALICE_ADDR
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        # Hidden until a toggle is on (or More is open): the first screen keeps its rows.
        assert not app.screen.query_one("#pgp").display
        await fill_draft(
            pilot, to="bob@example.test, carol@example.test", subject="Plans", body="x"
        )
        await encrypt_on(pilot)
        assert app.screen.query_one("#pgp").display
        await wait_for(pilot, lambda: "missing" in keys_text(app), "the key line")
        line = keys_text(app)
        assert "bob@example.test ~ untrusted" in line
        assert "carol@example.test ✗ missing" in line
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "Not sent" in static_text(app, "#send-status"), "the refusal")
        assert static_text(app, "#send-status") == (
            "Not sent: no usable OpenPGP key for carol@example.test (missing)"
        )
        assert sink.messages == [] and not app.model.history.runs
        stored_nothing()
        # Carol taken off: the line follows, and the message goes encrypted.
        await set_to(pilot, "bob@example.test")
        await wait_for(
            pilot, lambda: keys_text(app) == "Keys: bob@example.test ~ untrusted", "Bob alone"
        )
        await pilot.press("ctrl+s")
        await wait_for_run(pilot)
    (received,) = sink.messages
    assert b"multipart/encrypted" in received.content
    inner = message_from_bytes(
        decrypt(gnupghome.home, received.content), policy=email_policy.default
    )
    assert inner["Content-Type"].startswith("text/plain")


async def test_locked_key_asks_for_its_passphrase_masked(
    gnupghome: Keyring, servers: ServerThread
) -> None:
    forget_passphrases(gnupghome.home)
    sink = Sink()
    port = servers.smtp(sink)
    save_profile(
        name="local",
        host="127.0.0.1",
        port=port,
        security="none",
        from_address=ALICE_ADDR,
        pgp_sign=True,
        pgp_key=gnupghome.dave,
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        assert app.screen.query_one("#pgp-sign", FormCheckbox).value  # the profile's default
        await fill_draft(pilot, to="bob@example.test", subject="Signed", body="Hello")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, PassphraseDialog), "the dialog")
        field = app.screen.query_one("#passphrase", Input)
        assert field.password  # masked
        field.value = PASSPHRASE
        await pilot.press("enter")
        await wait_for_run(pilot)
    (received,) = sink.messages
    _, status = verify_signed(gnupghome.home, received.content)
    assert f"VALIDSIG {gnupghome.dave}" in status
    assert PASSPHRASE.encode() not in received.content


ALICE_ADDR = "alice@example.test"


@pytest.fixture
def empty_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    require_tool("gpg", "gnupg")
    home = Path(tempfile.mkdtemp(prefix="tm-gpg-", dir="/tmp"))
    home.chmod(0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))
    try:
        yield home
    finally:
        _close_home(home)


@pytest.mark.parametrize(
    "size", [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
)
def test_snapshot_encrypt_on_with_a_missing_key(
    snap_compare: SnapCompare, size: tuple[int, int], empty_keyring: Path
) -> None:
    save_profile(
        name="work",
        host="smtp.example.test",
        port=587,
        security="starttls",
        username="alice",
        from_address=ALICE_ADDR,
    )

    async def refused(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, TuimailApp)
        await fill_draft(pilot, to="Bob Example <bob@example.test>", subject="Plans", body="Hi")
        await encrypt_on(pilot)
        await wait_for(pilot, lambda: "missing" in keys_text(app), "the key line")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "Not sent" in static_text(app, "#send-status"), "refusal")
        await pilot.click("#subject")

    assert os.environ["GNUPGHOME"] == str(empty_keyring)
    assert snap_compare(TuimailApp(start_sandbox=False), terminal_size=size, run_before=refused)
