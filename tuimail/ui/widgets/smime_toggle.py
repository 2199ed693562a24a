"""Compose's per-message S/MIME choice: sign, encrypt (tuimail/smime.py does the work).

Shown only for a profile that names S/MIME files (its certificate and key
for signing, a recipients' certificate directory for encrypting), so
Compose looks as before for everyone else. Each box starts from the
profile's ``smime_sign`` / ``smime_encrypt``; what is ticked when Send is
pressed becomes those fields of the profile the message is sent with.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal

from tuimail.profiles import Profile, with_changes
from tuimail.ui.widgets.form_checkbox import FormCheckbox


class SmimeToggle(Horizontal):
    """Two boxes, "S/MIME sign" and "S/MIME encrypt", each shown when the profile can."""

    DEFAULT_CSS = """
    SmimeToggle { display: none; width: auto; height: auto; }
    SmimeToggle.-available { display: block; }
    """

    def compose(self) -> ComposeResult:
        yield FormCheckbox("S/MIME sign", id="smime-sign", compact=True)
        yield FormCheckbox("S/MIME encrypt", id="smime-encrypt", compact=True)

    def show_for(self, profile: Profile | None) -> None:
        """Offer what ``profile`` can do, ticked as it does by default."""
        can_sign = profile is not None and bool(profile.smime_cert and profile.smime_key)
        can_encrypt = profile is not None and bool(profile.smime_recipient_certs)
        self.set_class(can_sign or can_encrypt, "-available")
        sign = self.query_one("#smime-sign", FormCheckbox)
        encrypt = self.query_one("#smime-encrypt", FormCheckbox)
        sign.display, encrypt.display = can_sign, can_encrypt
        sign.value = can_sign and profile is not None and profile.smime_sign
        encrypt.value = can_encrypt and profile is not None and profile.smime_encrypt

    def applied(self, profile: Profile) -> Profile:
        """``profile`` as this message asks: signing and encrypting as ticked."""
        if not self.has_class("-available"):
            return profile
        sign = self.query_one("#smime-sign", FormCheckbox)
        encrypt = self.query_one("#smime-encrypt", FormCheckbox)
        return with_changes(
            profile,
            smime_sign=bool(sign.display and sign.value),
            smime_encrypt=bool(encrypt.display and encrypt.value),
        )
