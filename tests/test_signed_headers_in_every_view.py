"""The signed value of a protected header in every view's header block, not only F5's.

A signed-only message (real gpg, protected headers as RFC 9788 has them) whose
outer Subject was changed after signing, to a value with an escape sequence:
``tuimail inbox show`` (a real process) and F7's sent preview must show the
signed Subject in their header block, as F5 does, never the unsigned outer
one, and nothing a terminal would obey.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests import test_pgp_mime
from tests.test_pgp_mime import Keyring
from tests.test_protection_signed_headers import _changed_after_signing
from tests.test_protection_view import _captured, _ids

keyring = test_pgp_mime.keyring
gnupghome = test_pgp_mime.gnupghome


def _header_block(text: str) -> str:
    return text.split("\n\n", 1)[0]


def test_inbox_show_heads_with_the_signed_subject(gnupghome: Keyring, isolated_dirs: Path) -> None:
    from tests.cli_helpers import TUIMAIL

    _captured(_changed_after_signing(gnupghome))
    (key,) = _ids().values()
    shown = subprocess.run(
        [TUIMAIL, "inbox", "show", key, "--no-check"],
        capture_output=True, timeout=60, check=True,
    ).stdout.decode()  # fmt: skip
    head = _header_block(shown)
    assert "\nSubject: Plans\n" in head, shown
    assert "Subject: Changed" not in head, shown
    assert "\x1b" not in shown, shown
    assert 'Signed Subject: "Plans"' in head, shown  # and the Protection line says so


def test_the_sent_preview_heads_with_the_signed_subject(
    gnupghome: Keyring, isolated_dirs: Path
) -> None:
    from tuimail.outbox import Outbox
    from tuimail.ui.screens.mailboxes import sent_preview

    text, _ = sent_preview(Outbox(), _changed_after_signing(gnupghome), "no-such-key")
    assert "\nSubject: Plans\n" in text, text
    assert "Subject: Changed" not in text, text
    assert "\x1b" not in text, text
    assert "differs" in " ".join(text.split()), text


async def test_f7_shows_the_signed_subject(gnupghome: Keyring, isolated_dirs: Path) -> None:
    """The same through the screen: the message stored in the outbox's sent mailbox."""
    import mailbox

    from textual.widgets import DataTable, Static

    from tests.ui_support import open_mailboxes, wait_for
    from tuimail.outbox import Outbox
    from tuimail.ui.app import TuimailApp

    sent = Outbox().sent_dir
    sent.parent.mkdir(parents=True, exist_ok=True)
    mailbox.Maildir(sent, create=True).add(_changed_after_signing(gnupghome))
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await open_mailboxes(pilot, "tab-sent")
        table = screen.query_one("#sent-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, "the sent message")
        table.focus()
        table.move_cursor(row=0)

        def view() -> str:
            return str(screen.query_one("#sent-view", Static).content)

        await wait_for(pilot, lambda: "signature valid" in view().lower(), "its preview")
        text = view()
        assert "\nSubject: Plans\n" in text, text
        assert "Subject: Changed" not in text, text
