"""Compose's OpenPGP controls: sign and encrypt toggles, and each recipient's key status.

The toggles start from the profile's ``pgp_sign`` and ``pgp_encrypt`` and
are per message from then on; Compose applies them to the profile it sends
with (:meth:`PgpControls.applied`), and tuimail/pgp_mime.py does the work.
While "encrypt" is on, a line under the recipients says for each address
whether the keyring holds a usable key (looked up with gpg in a thread,
never on the loop), and Compose refuses to send while any is missing,
naming them, rather than sending in plaintext. A profile that encrypts
opportunistically shows the line too, saying which way the message will
go, and refuses nothing. Hidden until More is open
or a toggle is on, so the first screen keeps its rows.

:class:`PassphraseDialog` asks, masked, for a locked signing key's
passphrase (gpg runs with loopback pinentry: no terminal pinentry fights
the app for the screen).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import replace as _replace
from typing import TYPE_CHECKING, Any, TypeVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Input, Label, Static

from tuimail.ui.outside import shown
from tuimail.ui.widgets.form_checkbox import FormCheckbox

if TYPE_CHECKING:
    from tuimail.pgp_mime import RecipientKey
    from tuimail.profiles import Profile

#: Seconds of quiet typing before the keys are looked up again.
LOOKUP_DELAY = 0.4
#: How each status is marked on the line: the mark, then the word.
MARKS = {
    "trusted": "✓",
    "untrusted": "~",
}


def key_line(keys: Sequence[RecipientKey], bcc: Sequence[str] = ()) -> str:
    """``bob@x ✓ trusted · carol@y ✗ missing``; Bcc recipients flagged (refused when encrypting)."""
    hidden = {b.lower() for b in bcc}
    items = []
    for key in keys:
        mark = MARKS.get(key.status.value, "✗")
        bcc_note = " (Bcc: cannot be encrypted)" if key.address.lower() in hidden else ""
        items.append(f"{key.address} {mark} {key.status.value}{bcc_note}")
    return "Keys: " + (" · ".join(items) if items else "no recipients yet")


def refusal(keys: Sequence[RecipientKey], bcc: Sequence[str] = ()) -> str:
    """Why encryption cannot go ahead, naming the addresses ("" when it can)."""
    missing = [f"{k.address} ({k.status.value})" for k in keys if not k.status.usable]
    if missing:
        return "Not sent: no usable OpenPGP key for " + ", ".join(missing)
    if bcc:
        return "Not sent: an encrypted message cannot have Bcc recipients (" + ", ".join(bcc) + ")"
    return ""


class PgpControls(Vertical):
    """The toggles and the key line; see the module's words."""

    DEFAULT_CSS = """
    PgpControls { display: none; height: auto; }
    ComposeScreen.-more PgpControls, PgpControls.-active { display: block; }
    PgpControls #pgp-row { height: auto; }
    PgpControls FormCheckbox { margin-right: 2; }
    PgpControls #pgp-keys { display: none; padding-left: 10; }
    PgpControls.-encrypt #pgp-keys { display: block; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._recipients: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
        self._keys: list[RecipientKey] | None = None
        self._bcc: list[str] = []
        self._timer: Timer | None = None
        #: The profile encrypts when every recipient has a usable key (the key line shows
        #: which way this message goes; nothing is refused).
        self._opportunistic = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="pgp-row"):
            yield Label("OpenPGP", classes="field-label")
            yield FormCheckbox("Sign", id="pgp-sign", compact=True)
            yield FormCheckbox("Encrypt", id="pgp-encrypt", compact=True)
        yield Static("", id="pgp-keys", markup=False)

    @property
    def sign(self) -> bool:
        return self.query_one("#pgp-sign", FormCheckbox).value

    @property
    def encrypt(self) -> bool:
        return self.query_one("#pgp-encrypt", FormCheckbox).value

    def follow_profile(self, profile: Profile) -> None:
        """The toggles as the profile's defaults say (a new profile chosen)."""
        self._opportunistic = profile.pgp_encrypt_opportunistic
        self.query_one("#pgp-sign", FormCheckbox).value = profile.pgp_sign
        self.query_one("#pgp-encrypt", FormCheckbox).value = profile.pgp_encrypt
        self._toggled()

    def applied(self, profile: Profile) -> Profile:
        """The profile to send with: its OpenPGP fields as the toggles are."""
        if (profile.pgp_sign, profile.pgp_encrypt) == (self.sign, self.encrypt):
            return profile
        return _replace(profile, pgp_sign=self.sign, pgp_encrypt=self.encrypt)

    def refusal(self) -> str:
        """Why Compose must not send as the toggles are ("" when it may, or when not yet known)."""
        if not self.encrypt or self._keys is None:
            return ""
        return refusal(self._keys, self._bcc)

    @property
    def _wants_keys(self) -> bool:
        """The key line is shown: "Encrypt" is on, or the profile encrypts when it can."""
        return self.encrypt or self._opportunistic

    @on(FormCheckbox.Changed)
    def _toggled(self) -> None:
        self.set_class(self.sign or self._wants_keys, "-active")
        self.set_class(self._wants_keys, "-encrypt")
        if self._wants_keys:
            self._look_up()

    def recipients_changed(self, shown_fields: Sequence[str], bcc_fields: Sequence[str]) -> None:
        """To and Cc (``shown_fields``) and Bcc as typed: looked up again after a pause."""
        wanted = (tuple(shown_fields), tuple(bcc_fields))
        if wanted == self._recipients:
            return
        self._recipients = wanted
        self._keys = None
        if self._timer is not None:
            self._timer.stop()
        if self._wants_keys:
            self._timer = self.set_timer(LOOKUP_DELAY, self._look_up)

    def _look_up(self) -> None:
        self.query_one("#pgp-keys", Static).update("Keys: looking them up…")
        self._lookup(*self._recipients)

    @work(thread=True, exclusive=True, group="pgp-keys", exit_on_error=False)
    def _lookup(self, shown_fields: tuple[str, ...], bcc_fields: tuple[str, ...]) -> None:
        """The recipients' keys, with gpg (a process: never on the loop)."""
        from textual.worker import get_current_worker

        from tuimail.message import DraftInvalid, validate_address_field
        from tuimail.pgp_mime import PgpError, recipient_keys

        try:
            addresses = [a.addr_spec for a in validate_address_field("to", list(shown_fields))]
            bcc = [a.addr_spec for a in validate_address_field("bcc", list(bcc_fields))]
        except DraftInvalid:
            self.app.call_from_thread(self._show, "Keys: fix the addresses first", None, [])
            return
        try:
            keys = recipient_keys(list(dict.fromkeys(addresses + bcc)))
        except PgpError as exc:
            self.app.call_from_thread(self._show, f"Keys: {exc}", None, [])
            return
        if not get_current_worker().is_cancelled:
            line = key_line(keys, bcc)
            if self._opportunistic and not self.encrypt and keys:
                sealed = not bcc and all(k.status.usable for k in keys)
                line += " — will go encrypted" if sealed else " — will go unencrypted"
            self.app.call_from_thread(self._show, line, keys, bcc)

    def _show(self, line: str, keys: list[RecipientKey] | None, bcc: list[str]) -> None:
        self._keys = keys
        self._bcc = bcc
        self.query_one("#pgp-keys", Static).update(shown(line))


class PassphraseDialog(ModalScreen[str | None]):
    """Ask, masked, for the passphrase of a locked key; None when cancelled.

    Signing (Compose) and decrypting for display (F5's ``x``, OpenPGP or an
    S/MIME key file) share it. The text goes to gpg's stdin
    (tuimail/pgp_mime.py) or to cryptography in memory (tuimail/smime.py) for
    this one use and is kept nowhere: the field is emptied as the dialog closes.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        why: str,
        confirm: str = "Sign",
        note: str = "Used for this message only; never saved. Escape: not sent.",
    ) -> None:
        super().__init__()
        self.why = why
        self.confirm = confirm
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog secret"):
            yield Label(shown(self.why), markup=False)
            yield Input("", id="passphrase", password=True)
            yield Label(self.note, markup=False)
            with Horizontal(classes="buttons"):
                yield Button(self.confirm, variant="primary", id="confirm")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#passphrase", Input).focus()

    @on(Input.Submitted, "#passphrase")
    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        field = self.query_one("#passphrase", Input)
        value = field.value
        field.value = ""
        self.dismiss(value or None)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.query_one("#passphrase", Input).value = ""
        self.dismiss(None)


R = TypeVar("R")


@dataclass(frozen=True)
class Locked:
    """A key must be unlocked first: ``which`` ("pgp" or "smime") and the words to ask with."""

    which: str
    why: str


async def asking_for_passphrases(
    app: App[Any], attempt: Callable[[dict[str, str]], R | Locked]
) -> R | None:
    """``attempt(typed)`` in a thread until it needs no passphrase; None when Escape.

    Each :class:`Locked` answer brings up :class:`PassphraseDialog` (masked),
    and what is typed goes to the next attempt under its ``which``: for a
    wrong one the attempt says so in its words and is asked again. The
    passphrases live in this call only and are dropped as it ends.
    """
    import asyncio

    typed: dict[str, str] = {}
    note = "Used to decrypt this message only; never saved. Escape: not decrypted."
    try:
        while True:
            result = await asyncio.to_thread(attempt, typed)
            if not isinstance(result, Locked):
                return result
            dialog = PassphraseDialog(result.why, "Decrypt", note)
            answer = await app.push_screen(dialog, wait_for_dismiss=True)
            if answer is None:
                return None
            typed[result.which] = answer
    finally:
        typed.clear()
