"""Compose shows, for a profile with opportunistic OpenPGP, whether this message will go encrypted.

``pgp_encrypt_opportunistic`` encrypts when every recipient has a usable
key and sends in clear otherwise. Compose showed nothing for it (the key
line appears only with "Encrypt" on), so whether a message would leave
encrypted was learnt only after it had left. The key line now shows for
such a profile too, and says which way the message will go; nothing is
refused, as the mode promises.
"""

from __future__ import annotations

from tests import test_pgp_mime
from tests.test_pgp_mime import Keyring
from tests.test_ui_pgp import keys_text, set_to
from tests.ui_support import fill_draft, save_profile, wait_for
from tuimail.ui.app import TuimailApp

keyring = test_pgp_mime.keyring
gnupghome = test_pgp_mime.gnupghome


async def test_the_key_line_says_which_way_the_message_goes(gnupghome: Keyring) -> None:
    save_profile(
        name="opportunist",
        host="127.0.0.1",
        port=2525,
        security="none",
        from_address="alice@example.test",
        pgp_encrypt_opportunistic=True,
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await fill_draft(pilot, to="bob@example.test, carol@example.test", subject="S", body="x")
        await wait_for(pilot, lambda: "carol@example.test ✗ missing" in keys_text(app), "keys")
        assert app.screen.query_one("#pgp-keys").display
        assert "will go unencrypted" in keys_text(app)
        await set_to(pilot, "bob@example.test")
        await wait_for(pilot, lambda: "will go encrypted" in keys_text(app), "Bob alone")
        assert "bob@example.test ~ untrusted" in keys_text(app)
