"""Compose's preview says what a profile's opportunistic OpenPGP and protected headers will do.

A profile with ``pgp_encrypt_opportunistic`` encrypts whenever every
recipient has a usable key; its preview said "not signed, not encrypted",
and the message then left encrypted (or, with one key missing, in clear,
unannounced either way). The preview now says both outcomes and when each
happens, and that the Subject goes out as "..." with protected headers.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_pgp_mime import ALICE, BOB
from tuimail.inbox.protection_view import planned
from tuimail.profiles import Profile


def test_planned_names_opportunistic_encryption_and_the_hidden_subject() -> None:
    profile = Profile(
        name="opportunist",
        host="127.0.0.1",
        from_address=ALICE,
        pgp_encrypt_opportunistic=True,
        pgp_protected_headers=True,
    )
    assert planned(profile, [BOB]) == [
        f"OpenPGP encrypted to {BOB} (and to you) if each has a usable key in your keyring "
        "and there is no Bcc; else sent unencrypted",
        'Subject shown outside as "..." when encrypted (protected headers: the real one is inside)',
    ]


async def test_compose_preview_says_opportunistic_encryption(isolated_dirs: Path) -> None:
    from textual.widgets import Label

    from tests.ui_support import fill_draft, save_profile, wait_for
    from tuimail.ui.app import TuimailApp
    from tuimail.ui.screens.markdown_preview import MarkdownPreview

    save_profile(
        name="opportunist",
        host="127.0.0.1",
        port=2525,
        security="none",
        from_address=ALICE,
        pgp_encrypt_opportunistic=True,
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to=BOB, subject="Plans", body="Hi")
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, MarkdownPreview), "the preview")
        words = str(app.screen.query_one("#preview-protection", Label).content)
    assert "not encrypted" not in words.replace("sent unencrypted", "")
    assert f"OpenPGP encrypted to {BOB} (and to you) if each has a usable key" in words
