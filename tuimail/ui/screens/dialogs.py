"""Dialogs: modal screens that return a value with ``dismiss``."""

from __future__ import annotations

import contextlib
import enum
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    Checkbox,
    Input,
    Label,
    Select,
    Static,
)

from tuimail.credentials import Secret
from tuimail.errors import TuimailError
from tuimail.profiles import (
    OAUTH_CUSTOM_FIELDS,
    OAUTH_FIELDS,
    AuthMechanism,
    Profile,
    ProfileError,
    with_changes,
)
from tuimail.ui.outside import shown
from tuimail.ui.widgets.form_checkbox import FormCheckbox
from tuimail.ui.words import no_device_sign_in

if TYPE_CHECKING:
    from textual.widgets import DirectoryTree

    from tuimail.oauth.tokens import Tokens


class ConfirmDialog(ModalScreen[bool]):
    """Ask a yes/no question; Escape cancels.

    Cancel has the focus at first, so Enter alone never confirms a delete or
    a risky setting: Tab to the confirm button, or click it. A question whose
    answer is usually yes ("The subject is empty. Send anyway?") is asked with
    ``enter_confirms``: the confirm button has the focus and Enter answers it.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(
        self, question: str, confirm: str = "Send anyway", *, enter_confirms: bool = False
    ) -> None:
        super().__init__()
        self.question = question
        self.confirm = confirm
        self.enter_confirms = enter_confirms

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(shown(self.question, keep_newlines=True), classes="question", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(self.confirm, variant="warning", id="confirm")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#confirm" if self.enter_confirms else "#cancel", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        self.dismiss(False)


def typed_path(text: str) -> tuple[Path | None, str]:
    """A path the user typed, or why it cannot be one, in words.

    ``Path("~nobody/x").expanduser()`` raises RuntimeError and a NUL makes
    every later file call raise ValueError: typed text must not stop the app.
    """
    text = text.strip()
    if not text:
        return None, "type a path"
    if "\0" in text:
        return None, "a path cannot contain a NUL character"
    try:
        return Path(text).expanduser(), ""
    except RuntimeError:  # "~name" of a user this system does not know
        return None, shown(f"{text.split('/')[0]} is not a user's home directory here")


def not_a_file(path: Path) -> str:
    """Why ``path`` cannot be attached, in the words the command line uses for
    ``--attach`` (:func:`tuimail.message.read_regular_file`); "" when it is a file.

    A stat only: the file is read when the message is built, in a thread.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "does not exist"
    except PermissionError:
        return "cannot be read (permission denied)"
    except OSError as exc:  # a name too long, a loop of links, a directory not searchable
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    return ""


class FilePickerDialog(ModalScreen[Path | None]):
    """Pick a file from a tree, or type its path."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, start: Path | None = None) -> None:
        super().__init__()
        self.start = start or Path.home()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide picker"):
            yield Label("Attach a file: choose it below or type its path")
            yield Input(placeholder="/path/to/file", id="path")
            # Imported here: DirectoryTree and Markdown are heavy, and only
            # these dialogs need them (start-up time).
            from textual.widgets import DirectoryTree

            yield DirectoryTree(self.start, id="tree")
            yield Label("", id="error", classes="error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Attach", variant="primary", id="attach")
                yield Button("Cancel", id="cancel")

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#path", Input).value = str(event.path)

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#attach")
    def _attach_chosen_file(self) -> None:
        path, problem = typed_path(self.query_one("#path", Input).value)
        error = self.query_one("#error", Label)
        if path is None:
            error.update(problem if problem != "type a path" else "type a path or choose a file")
            return
        problem = not_a_file(path)
        if problem:
            error.update(shown(f"{path} {problem}"))
        else:
            self.dismiss(path)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class ExportRequest:
    path: Path
    format: str  # "text" or "jsonl"


def write_export(path: Path, files: list[tuple[str, bytes]]) -> list[Path]:
    """Write each ``(suffix, data)`` as ``path`` with that suffix; the paths written.

    Never replaces a file: when one of the names is taken, all of them get the
    next free ``-2``, ``-3``... (each file is linked into place, which fails on
    a name taken meanwhile, so a race cannot overwrite either). The folder is
    made if missing, private (0700); the exports folder of the data dir is
    kept private. File I/O: call it in a thread. Raises :class:`OSError`.
    """
    import os
    import tempfile

    from tuimail import paths

    directory = path.parent
    paths.ensure_private_dir(directory, tighten=directory == paths.exports_dir())
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    for number in range(1, 1000):
        name = stem if number == 1 else f"{stem}-{number}"
        targets = [directory / f"{name}{suffix}" for suffix, _data in files]
        if any(os.path.lexists(target) for target in targets):
            continue
        written: list[Path] = []
        try:
            for target, (_suffix, data) in zip(targets, files, strict=True):
                fd, temporary = tempfile.mkstemp(prefix=".tuimail-export-", dir=directory)
                try:
                    with os.fdopen(fd, "wb") as file:
                        file.write(data)
                    os.link(temporary, target)  # refuses a name that exists
                finally:
                    os.unlink(temporary)
                written.append(target)
        except FileExistsError:  # taken meanwhile: take back ours, try the next name
            for target in written:
                os.unlink(target)
            continue
        return written
    raise FileExistsError(17, "no free name for the export", str(path))


class ExportDialog(ModalScreen[ExportRequest | None]):
    """Where to write an export, and as what.

    The path starts in the data dir's ``exports/`` folder (shown, and
    editable); a relative path is taken inside it, not in whatever directory
    the app was started from. An existing file is never replaced
    (:func:`write_export`).
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(
        self, default_path: Path, what: str = "the transcript (the whole session, redacted)"
    ) -> None:
        super().__init__()
        self.default_path = default_path
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Export {self.what}")
            yield Label(
                shown(
                    f"Into {self.default_path.parent} unless you edit the path; "
                    "an existing file is kept (a free name is chosen)."
                ),
                id="export-where",
                classes="note",
                markup=False,
            )
            yield Input(str(self.default_path), id="path")
            yield Select(
                [("Text (swaks-style arrows)", "text"), ("JSON Lines", "jsonl")],
                value="text",
                allow_blank=False,
                id="format",
            )
            yield Label("", id="error", classes="error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Export", variant="primary", id="export")
                yield Button("Cancel", id="cancel")

    @on(Select.Changed, "#format")
    def _format_changed(self, event: Select.Changed) -> None:
        path_input = self.query_one("#path", Input)
        path, _problem = typed_path(path_input.value)
        if path is None or not path.name:
            return  # nothing to put a suffix on yet: the user is still typing
        with contextlib.suppress(ValueError):  # a name such as "x." takes no suffix
            path_input.value = str(path.with_suffix(".jsonl" if event.value == "jsonl" else ".txt"))

    @on(Button.Pressed, "#export")
    @on(Input.Submitted, "#path")
    def _export(self) -> None:
        value = self.query_one("#format", Select).value
        path, problem = typed_path(self.query_one("#path", Input).value)
        if path is None:
            self.query_one("#error", Label).update(problem)
            return
        if not path.name or path.name in (".", ".."):
            self.query_one("#error", Label).update("type a file name at the end of the path")
            return
        if not path.is_absolute():  # inside the folder shown, not the app's start directory
            path = self.default_path.parent / path
        self.dismiss(ExportRequest(path, str(value)))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class AccountForm:
    """What the account dialog returns: the profile and, if typed, a new password.

    The password is a :class:`~tuimail.credentials.Secret`: this object is
    passed to a worker and a callback, and a traceback drawn with its locals
    (as Textual draws one) or a log of its repr must not show what was typed.
    """

    profile: Profile
    password: Secret | None
    original_name: str | None
    #: An OAuth client secret typed in the dialog, for the keyring (as
    #: ``accounts add --oauth-client-secret-stdin`` stores it); None keeps the stored one.
    client_secret: Secret | None = None


class AccountFields(TypedDict):
    """The account dialog's fields besides the name, as :func:`with_changes` takes them."""

    host: str
    port: int
    security: str
    username: str
    from_address: str
    display_name: str
    auth_mechanism: str
    ca_file: str
    timeout: float
    ehlo_name: str
    verify_tls: bool
    allow_plaintext_auth: bool
    password_command: str
    token_command: str
    ask_at_send: bool
    oauth_provider: str
    oauth_client_id: str
    oauth_authorize_url: str
    oauth_token_url: str
    oauth_device_url: str
    oauth_scope: str
    aliases: str


class SecretSource(enum.StrEnum):
    """Where the account dialog's "Secret from" says a profile's secret comes from."""

    KEYRING = "keyring"
    PASSWORD_COMMAND = "password_command"
    TOKEN_COMMAND = "token_command"
    ASK = "ask"
    #: An OAuth 2.0 sign-in at a provider (docs/oauth.md): its settings on the form, the
    #: sign-in itself from the dialog's Sign in buttons (or ``tuimail accounts login``).
    OAUTH = "oauth"

    @classmethod
    def of(cls, profile: Profile | None) -> SecretSource:
        if profile is None:
            return cls.KEYRING
        if profile.uses_oauth:
            return cls.OAUTH
        if profile.token_command:
            return cls.TOKEN_COMMAND
        if profile.password_command:
            return cls.PASSWORD_COMMAND
        return cls.ASK if profile.ask_at_send else cls.KEYRING


#: The choices of "Secret from", in the order shown.
SECRET_SOURCES = [
    ("OS keyring (the password below)", SecretSource.KEYRING.value),
    ("a password command", SecretSource.PASSWORD_COMMAND.value),
    ("OAuth sign-in (Gmail, Microsoft 365...)", SecretSource.OAUTH.value),
    ("a token command (OAuth 2.0)", SecretSource.TOKEN_COMMAND.value),
    ("ask at send time", SecretSource.ASK.value),
]

#: The choices of "Provider" for an OAuth sign-in (tuimail/oauth/providers.py's presets).
OAUTH_PROVIDER_CHOICES = [
    ("Google (Gmail, Workspace)", "google"),
    ("Microsoft (365, Outlook.com)", "microsoft"),
    ("custom: the endpoints below", "custom"),
]


def secret_sources(profile: Profile | None) -> list[tuple[str, str]]:
    """The choices of "Secret from" (the same for every profile)."""
    return SECRET_SOURCES


def secret_source_problem(source: SecretSource, values: AccountFields, command: str) -> str:
    """Why the dialog's secret settings do not go together ("" when they do), as
    ``field: words``; the core checks the rest when the profile is made."""
    mechanism = AuthMechanism(values["auth_mechanism"])
    if source in (SecretSource.KEYRING, SecretSource.OAUTH):
        return ""  # the core's checks say what is wrong with an OAuth profile
    if not values["username"]:
        needs = "asking at send time" if source is SecretSource.ASK else "a secret command"
        return f"user: {needs} is for a profile that signs in: type the user name"
    if source is SecretSource.ASK:
        return ""
    if not command.strip():
        what = "password" if source is SecretSource.PASSWORD_COMMAND else "access token"
        return f"command: type the command that prints the {what} (its first line is used)"
    if source is SecretSource.PASSWORD_COMMAND and mechanism.takes_token:
        return (
            f"AUTH: {mechanism.value} carries an OAuth 2.0 token, and a password command "
            "gives a password: choose a token command, or another AUTH"
        )
    if source is SecretSource.TOKEN_COMMAND and mechanism not in (
        AuthMechanism.AUTO,
        *(m for m in AuthMechanism if m.takes_token),
    ):
        return (
            f"AUTH: {mechanism.value} sends a password, and a token command gives a token: "
            "choose auto, xoauth2 or oauthbearer"
        )
    return ""


@dataclass(frozen=True)
class SaveRefused:
    """Why the account dialog's save was refused, in words; ``keyring``: the keyring
    refused to keep the password, so the dialog offers what needs no keyring."""

    words: str
    keyring: bool = False


class FormSelect(Select[str]):
    """A choice in a form: Enter moves on, as in the text fields; space or an arrow
    key opens the list (Enter then picks from it).

    Enter opening the list again after a choice kept the user on one field.
    """

    BINDINGS = [
        Binding("down,space,up", "show_overlay", "Show menu", show=False),
        Binding("enter", "app.focus_next", "Next field", show=False),
    ]


#: The account dialog's settings that weaken a connection's safety, with what turning
#: one of them to its risky value (the second item) is asked first.
UNSAFE_SETTINGS = {
    "allow_plaintext_auth": (
        True,
        "Allow the password to be sent without TLS? Anyone on the network path "
        "can read it. Use this only with a test server.",
        "Allow",
    ),
    "verify_tls": (
        False,
        "Stop verifying the server's certificate? Anyone on the network path can "
        "pretend to be the server and read the password and the mail. Use this only "
        "with a test server; a CA file is the safe way for a private certificate.",
        "Stop verifying",
    ),
}


#: Saves what the account dialog holds (in a worker thread): None when saved, else why not.
AccountSaver = Callable[[AccountForm], SaveRefused | None]


class AccountDialog(ModalScreen[AccountForm | None]):
    """Add or edit a profile. The password field is masked and goes to the keyring.

    It opens with the focus on the first field. Enter in a field moves to the
    next one and saves from the last; a setting that makes the connection
    unsafe is asked about once when it is turned on.

    Given ``save``, the dialog saves before it closes, in a worker thread, and
    closes only once saved: when the keyring (or the profile file) refuses,
    it stays open with the reason under the form and every field as typed,
    the password still in its masked field, to be fixed and saved again or
    cancelled. Closing on a refusal threw away all that was typed.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, profile: Profile | None = None, save: AccountSaver | None = None) -> None:
        super().__init__()
        self.profile = profile
        self._save_with = save
        #: The unsafe settings the user has confirmed in this dialog (or that were already set).
        self._unsafe_confirmed: set[str] = set()
        #: The OAuth sign-in made from this dialog has been stored.
        self._signed_in = False
        if profile is not None:
            self._unsafe_confirmed = {
                name
                for name, (risky, _question, _confirm) in UNSAFE_SETTINGS.items()
                if getattr(profile, name) == risky
            }

    def on_mount(self) -> None:
        self._show_secret_fields()
        self._offer_alternatives(False)
        # Focused here: the scroll container would take it first, and the first key
        # typed would be lost with every field shifted by one.
        self.query_one("#name", Input).focus()
        if self.profile is not None and self.profile.uses_oauth:
            self._look_for_sign_in(self.profile.name)

    @work(thread=True, exclusive=True, group="sign-in-look", exit_on_error=False)
    def _look_for_sign_in(self, name: str) -> None:
        """Whether the profile has a sign-in stored (the keyring, off the UI loop)."""
        from tuimail.credentials import KeyringError
        from tuimail.oauth_account import OAuthSecrets

        try:
            stored = OAuthSecrets().refresh_token(name) is not None
        except KeyringError:
            return  # said when it matters: at the sign-in or the send
        with contextlib.suppress(RuntimeError):  # the app has stopped meanwhile
            self.app.call_from_thread(self._sign_in_known, stored)

    def _sign_in_known(self, stored: bool) -> None:
        if not self.is_attached or self._signed_in:
            return
        if stored:
            self._signed_in = True
            self.query_one("#oauth-status", Label).update(
                "Signed in (the refresh token is in the OS keyring); Sign in again replaces it."
            )

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        """Enter moves on through the form, as Tab does."""
        event.stop()
        self.focus_next()

    @on(Checkbox.Changed)
    def _unsafe_changed(self, event: Checkbox.Changed) -> None:
        """Turning on an unsafe setting is asked about, once per dialog."""
        name = event.checkbox.id or ""
        if name not in UNSAFE_SETTINGS or name in self._unsafe_confirmed:
            return
        risky, question, confirm = UNSAFE_SETTINGS[name]
        if event.value != risky:
            return
        checkbox = event.checkbox

        def answered(yes: bool | None) -> None:
            if yes:
                self._unsafe_confirmed.add(name)
            else:
                checkbox.value = not risky
            checkbox.focus()

        self.app.push_screen(ConfirmDialog(question, confirm), answered)

    def compose(self) -> ComposeResult:
        p = self.profile
        with Vertical(classes="dialog wide account"):
            yield Label("Edit account" if p else "Add account", classes="title")
            with VerticalScroll(), Grid(classes="form"):
                yield Label("Name")
                yield Input(p.name if p else "", id="name", placeholder="work")
                yield Label("Host")
                yield Input(p.host if p else "", id="host", placeholder="smtp.example.com")
                yield Label("Security")
                yield FormSelect(
                    [("STARTTLS (required)", "starttls"), ("TLS", "tls"), ("none (plain)", "none")],
                    value=(p.security.value if p else "starttls"),
                    allow_blank=False,
                    id="security",
                )
                yield Label("Port")
                yield Input(str(p.port) if p and p.port else "", id="port", placeholder="default")
                yield Label("User")
                yield Input(p.username if p else "", id="username")
                source = SecretSource.of(p)
                yield Label("Secret from")
                yield FormSelect(
                    secret_sources(p), value=source.value, allow_blank=False, id="secret_source"
                )
                yield Label("Password", id="password-label")
                yield Input(
                    "",
                    id="password",
                    password=True,
                    placeholder=(
                        "unchanged" if p and p.secret_in_keyring else "stored in the OS keyring"
                    ),
                )
                yield Label("Command", id="command-label")
                yield Input(p.secret_command if p else "", id="secret_command")
                yield from self._oauth_fields(p)
                yield Label("From")
                yield Input(p.from_address if p else "", id="from_address")
                yield Label("Name shown")
                yield Input(p.display_name if p else "", id="display_name")
                yield Label("Aliases")
                with Vertical(id="aliases-cell"):
                    yield Input(
                        p.aliases if p else "",
                        id="aliases",
                        placeholder="other From addresses: Help <help@example.org>, ...",
                    )
                    # Why they cannot be saved, beside them; typed text: never markup.
                    yield Label("", id="aliases-error", classes="error", markup=False)
                yield Label("AUTH")
                yield FormSelect(
                    [(m.value, m.value) for m in AuthMechanism],
                    value=(p.auth_mechanism.value if p else "auto"),
                    allow_blank=False,
                    id="auth_mechanism",
                )
                yield Label("CA file")
                yield Input(p.ca_file if p else "", id="ca_file", placeholder="system trust store")
                yield Label("Timeout")
                yield Input(str(p.timeout if p else 30.0), id="timeout")
                yield Label("EHLO name")
                yield Input(p.ehlo_name if p else "", id="ehlo_name", placeholder="this host")
                yield Label("")
                yield FormCheckbox(
                    "Verify certificates", p.verify_tls if p else True, id="verify_tls"
                )
                yield Label("")
                yield FormCheckbox(
                    "Allow password without TLS",
                    p.allow_plaintext_auth if p else False,
                    id="allow_plaintext_auth",
                )
            yield Label("", id="error", classes="error", markup=False)
            # Offered when the keyring refuses: what needs no keyring, one button each.
            with Horizontal(id="keyring-alternatives", classes="buttons"):
                yield Button("Use a password command", id="use-command", compact=True)
                yield Button("Ask at send time", id="use-ask", compact=True)
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def _oauth_fields(self, p: Profile | None) -> ComposeResult:
        """The OAuth sign-in's settings (shown for "Secret from: OAuth sign-in"), checked
        by the core as ``tuimail accounts add --oauth-...`` is, and its two Sign in buttons."""
        oauth = p is not None and p.uses_oauth
        yield Label("Provider", classes="oauth")
        yield FormSelect(
            OAUTH_PROVIDER_CHOICES,
            value=(p.oauth_provider if p and oauth else "google"),
            allow_blank=False,
            id="oauth_provider",
            classes="oauth",
        )
        yield Label("Client id", classes="oauth")
        yield Input(
            p.oauth_client_id if p else "",
            id="oauth_client_id",
            classes="oauth",
            placeholder="of the app you registered (docs/oauth.md)",
        )
        yield Label("Client secret", classes="oauth")
        yield Input(
            "",
            id="oauth_client_secret",
            classes="oauth",
            password=True,
            placeholder=(
                "empty: keep the stored one, if any"
                if oauth
                else "only if the provider gave one (Google); to the OS keyring"
            ),
        )
        for field_id, label, placeholder in (
            ("oauth_authorize_url", "Authorize URL", "https://auth.example.com/authorize"),
            ("oauth_token_url", "Token URL", "https://auth.example.com/token"),
            ("oauth_device_url", "Device URL", "optional: for a sign-in on another device"),
            ("oauth_scope", "Scope", "the scope for sending mail (and offline_access)"),
        ):
            yield Label(label, classes="oauth oauth-custom")
            yield Input(
                getattr(p, field_id) if p else "",
                id=field_id,
                classes="oauth oauth-custom",
                placeholder=placeholder,
            )
        yield Label("", classes="oauth")
        with Horizontal(id="sign-in-row", classes="oauth"):
            yield Button("Sign in", id="sign-in", variant="primary", compact=True)
            yield Button("Sign in on another device", id="sign-in-device", compact=True)
        yield Label("", classes="oauth")
        yield Label("", id="oauth-status", classes="oauth note", markup=False)

    def _secret_source(self) -> SecretSource:
        return SecretSource(str(self.query_one("#secret_source", Select).value))

    @on(Select.Changed, "#oauth_provider")
    @on(Input.Changed, "#oauth_device_url")
    def _show_oauth_fields(self) -> None:
        """A custom provider's endpoints only for a custom provider; the device sign-in
        only where the provider has one, and the reason where it has not."""
        oauth = self._secret_source() is SecretSource.OAUTH
        provider = str(self.query_one("#oauth_provider", Select).value)
        for widget in self.query(".oauth-custom"):
            widget.display = oauth and provider == "custom"
        reason = no_device_sign_in(provider, self._text("oauth_device_url"))
        self.query_one("#sign-in-device", Button).disabled = bool(reason)
        status = self.query_one("#oauth-status", Label)
        if not self._signed_in:
            status.update(reason)

    @on(Select.Changed, "#secret_source")
    def _show_secret_fields(self) -> None:
        """The password field for the keyring, the command field for a command, neither
        for asking at send time: only what the chosen source uses is on the form."""
        source = self._secret_source()
        keyring = source is SecretSource.KEYRING
        command = source in (SecretSource.PASSWORD_COMMAND, SecretSource.TOKEN_COMMAND)
        for widget_id in ("#password-label", "#password"):
            self.query_one(widget_id).display = keyring
        for widget_id in ("#command-label", "#secret_command"):
            self.query_one(widget_id).display = command
        for widget in self.query(".oauth"):
            widget.display = source is SecretSource.OAUTH
        self._show_oauth_fields()
        if command:
            label = "Password cmd" if source is SecretSource.PASSWORD_COMMAND else "Token cmd"
            self.query_one("#command-label", Label).update(label)
            self.query_one("#secret_command", Input).placeholder = (
                "pass show mail"
                if source is SecretSource.PASSWORD_COMMAND
                else "oama access you@example.com"
            )

    def _offer_alternatives(self, shown_now: bool) -> None:
        self.query_one("#keyring-alternatives").display = shown_now

    @on(Button.Pressed, "#use-command")
    def _use_command(self) -> None:
        """The keyring refused: take the password from a command; the user types it next."""
        self._offer_alternatives(False)
        self.query_one("#secret_source", Select).value = SecretSource.PASSWORD_COMMAND.value
        self._show_secret_fields()
        error = self.query_one("#error", Label)
        error.remove_class("error")
        error.update("Type the command that prints the password (pass, gpg -d...), then Save.")
        self.query_one("#secret_command", Input).focus()

    @on(Button.Pressed, "#use-ask")
    def _use_ask(self) -> None:
        """The keyring refused: keep no password anywhere, ask for it at each send."""
        self._offer_alternatives(False)
        self.query_one("#secret_source", Select).value = SecretSource.ASK.value
        self._show_secret_fields()
        self._save()

    def _text(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def _form_values(self) -> AccountFields:
        text = self._text

        port = text("port")
        timeout = text("timeout")
        if port and not (port.isascii() and port.isdigit()):  # "²" is a digit to isdigit()
            raise ProfileError("port", "must be a whole number")
        try:
            timeout_value = float(timeout or 30)
        except ValueError:
            raise ProfileError("timeout", "must be a number of seconds") from None
        source = self._secret_source()
        command = text("secret_command")
        oauth = self._oauth_values(source)
        return {
            "host": text("host"),
            "port": int(port or 0),
            "security": str(self.query_one("#security", Select).value),
            "username": text("username"),
            "from_address": text("from_address"),
            "display_name": text("display_name"),
            "auth_mechanism": str(self.query_one("#auth_mechanism", Select).value),
            "ca_file": text("ca_file"),
            "timeout": timeout_value,
            "ehlo_name": text("ehlo_name"),
            "verify_tls": self.query_one("#verify_tls", Checkbox).value,
            "allow_plaintext_auth": self.query_one("#allow_plaintext_auth", Checkbox).value,
            "password_command": command if source is SecretSource.PASSWORD_COMMAND else "",
            "token_command": command if source is SecretSource.TOKEN_COMMAND else "",
            "ask_at_send": source is SecretSource.ASK,
            "oauth_provider": oauth["oauth_provider"],
            "oauth_client_id": oauth["oauth_client_id"],
            "oauth_authorize_url": oauth["oauth_authorize_url"],
            "oauth_token_url": oauth["oauth_token_url"],
            "oauth_device_url": oauth["oauth_device_url"],
            "oauth_scope": oauth["oauth_scope"],
            "aliases": text("aliases"),
        }

    def _oauth_values(self, source: SecretSource) -> dict[str, str]:
        """The OAuth settings as typed; all empty for another source (it replaces them), and
        a preset's endpoints and scope empty (it has its own), as the command line does."""
        values = dict.fromkeys(OAUTH_FIELDS, "")
        if source is not SecretSource.OAUTH:
            return values
        provider = str(self.query_one("#oauth_provider", Select).value)
        values["oauth_provider"] = provider
        values["oauth_client_id"] = self._text("oauth_client_id")
        if provider == "custom":
            for name in OAUTH_CUSTOM_FIELDS:
                values[name] = self._text(name)
        return values

    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        self._save_then(None)

    @on(Button.Pressed, "#sign-in")
    def _sign_in(self) -> None:
        self._save_then(SignInWay.BROWSER)

    @on(Button.Pressed, "#sign-in-device")
    def _sign_in_device(self) -> None:
        self._save_then(SignInWay.DEVICE)

    def _form(self) -> AccountForm | None:
        """What the form holds as a checked profile, or None with the problem shown."""
        error = self.query_one("#error", Label)
        name = self.query_one("#name", Input).value.strip()
        error.add_class("error")
        source = self._secret_source()
        try:
            values = self._form_values()
            problem = secret_source_problem(source, values, self._text("secret_command"))
            if problem:
                error.update(problem)
                return None
            changes: dict[str, object] = {k: v for k, v in values.items() if k != "host"}
            # An edit starts from the profile as saved: the settings this form does not
            # show (keys a newer tuimail wrote) stay as they were.
            base = self.profile or Profile(name=name, host=values["host"])
            profile = with_changes(base, name=name, host=values["host"], **changes)
        except ProfileError as exc:
            error.update(f"{exc.field_name}: {exc.message}")
            self._show_aliases_error(exc.message if exc.field_name == "aliases" else "")
            return None
        self._show_aliases_error("")
        # Only the keyring takes the typed password; with any other source it is not kept.
        password = self.query_one("#password", Input).value if profile.secret_in_keyring else ""
        if (
            profile.secret_in_keyring
            and not password
            and (self.profile is None or not self.profile.secret_in_keyring)
        ):
            error.update(
                "password: needed for a profile with a user name (or choose where else "
                "it comes from: Secret from)"
            )
            return None
        client_secret = self.query_one("#oauth_client_secret", Input).value
        return AccountForm(
            profile,
            Secret(password) if password else None,
            self.profile.name if self.profile else None,
            Secret(client_secret) if client_secret and profile.uses_oauth else None,
        )

    def _show_aliases_error(self, message: str) -> None:
        """The aliases' problem under their field ("" hides it), and the field in view."""
        label = self.query_one("#aliases-error", Label)
        label.update(shown(message))
        label.set_class(bool(message), "-shown")
        if message:
            self.query_one("#aliases", Input).scroll_visible()

    def _save_then(self, sign_in: SignInWay | None) -> None:
        """Save, then close (``sign_in`` None) or sign in with the profile as saved.

        A sign-in is stored under the saved profile's name (and a new profile's
        first save clears whatever an old one left there), so it comes after the save.
        """
        form = self._form()
        if form is None:
            return
        error = self.query_one("#error", Label)
        if self._save_with is None:
            if sign_in is None:
                self.dismiss(form)
            return
        save_button = self.query_one("#save", Button)
        if save_button.disabled:
            return  # a save is under way: Enter pressed twice saves once
        save_button.disabled = True
        self._offer_alternatives(False)
        error.remove_class("error")
        error.update("Saving…")
        self._save_in_thread(self._save_with, form, sign_in)

    @work(thread=True, exclusive=True, group="account-save", exit_on_error=False)
    def _save_in_thread(
        self, save: AccountSaver, form: AccountForm, sign_in: SignInWay | None
    ) -> None:
        """The keyring and the profile file are used off the UI loop."""
        try:
            problem = save(form)
        except Exception as exc:  # whatever it is, the dialog says so and keeps the fields
            # Its type only: an error raised while storing could quote the password.
            problem = SaveRefused(f"The account could not be saved ({type(exc).__name__}).")
        with contextlib.suppress(RuntimeError):  # the app has stopped meanwhile
            self.app.call_from_thread(self._save_ended, form, problem, sign_in)

    def _save_ended(
        self, form: AccountForm, problem: SaveRefused | None, sign_in: SignInWay | None = None
    ) -> None:
        if not self.is_current:
            return  # cancelled while saving: the saver has told the app what happened
        if problem is None and sign_in is None:
            self.dismiss(form)
            return
        self.query_one("#save", Button).disabled = False
        error = self.query_one("#error", Label)
        if problem is None:
            # Saved: from now on the dialog edits the profile as saved.
            self.profile = form.profile
            secret_field = self.query_one("#oauth_client_secret", Input)
            secret_field.value = ""
            secret_field.placeholder = "empty: keep the stored one, if any"
            error.update("")
            assert sign_in is not None
            self.app.push_screen(SignInDialog(form.profile, sign_in), self._signed_in_or_not)
            return
        error.add_class("error")
        words = problem.words
        if problem.keyring:
            words += "\nOr choose one of these below; neither needs the keyring."
        error.update(shown(words, keep_newlines=True))
        self._offer_alternatives(problem.keyring)

    def _signed_in_or_not(self, signed_in: bool | None) -> None:
        status = self.query_one("#oauth-status", Label)
        if signed_in:
            self._signed_in = True
            status.update("Signed in: the refresh token is in the OS keyring. Save closes.")
        else:
            self._show_oauth_fields()
        self.query_one("#save", Button).focus()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class SignInWay(enum.Enum):
    """How the account dialog signs in: the browser on this machine, or another device."""

    BROWSER = "browser"
    DEVICE = "device"


class SignInDialog(ModalScreen[bool]):
    """A profile's OAuth sign-in, run in a worker thread: True once it is stored.

    The browser way (PKCE, a one-shot listener on 127.0.0.1) shows the
    sign-in address in full, to copy or open by hand, and opens it in the
    browser when there is a display; the device way shows the verification
    address and the user code while it polls. Either waits at most as long as
    the flow allows (five minutes for the browser, the code's own lifetime),
    and Escape or Cancel stops it. What the provider sends is shown escaped;
    the refresh token goes to the keyring through
    :func:`tuimail.oauth_account.keep_sign_in` and is never shown.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, profile: Profile, way: SignInWay) -> None:
        super().__init__()
        self.profile = profile
        self.way = way
        #: Set to stop the wait (Cancel, Escape, the dialog closing).
        self.cancel = threading.Event()
        #: The address shown: what a user would open (a test reads it from here).
        self.address = ""
        self.user_code = ""

    def compose(self) -> ComposeResult:
        p = self.profile
        where = "on another device" if self.way is SignInWay.DEVICE else "in the browser"
        with Vertical(classes="dialog wide sign-in"):
            yield Label(
                shown(f"Sign in {where}: {p.username} at {p.oauth_provider} (profile {p.name})"),
                classes="title",
                markup=False,
            )
            with VerticalScroll():
                yield Label("Asking the provider…", id="sign-in-step", markup=False)
                yield Static("", id="sign-in-address", markup=False)
                yield Static("", id="sign-in-code", markup=False)
                yield Label("", id="sign-in-wait", classes="note", markup=False)
            yield Label("", id="error", classes="error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Copy address", id="copy", disabled=True)
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()
        self.start()

    def start(self) -> None:
        """Begin the sign-in (in a worker thread)."""
        self._run_sign_in()

    @work(thread=True, exclusive=True, group="sign-in", exit_on_error=False)
    def _run_sign_in(self) -> None:
        """Network, keyring and the browser, all off the UI loop."""
        from tuimail.credentials import KeyringError
        from tuimail.oauth.errors import OAuthError
        from tuimail.oauth_account import keep_sign_in

        try:
            tokens = self._device() if self.way is SignInWay.DEVICE else self._browser()
            keep_sign_in(self.profile.name, tokens)
        except KeyringError as exc:
            self._from_thread(self._failed, f"Keyring: {exc.message}. {exc.fix}")
        except (OAuthError, TuimailError) as exc:
            self._from_thread(self._failed, str(exc))
        except OSError as exc:  # the loopback listener could not listen
            self._from_thread(self._failed, f"cannot listen for the browser: {exc.strerror or exc}")
        else:
            self._from_thread(self._signed_in)

    def _from_thread(self, callback: Callable[..., object], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # the app has stopped meanwhile
            self.app.call_from_thread(callback, *args)

    def _browser(self) -> Tokens:
        from tuimail.oauth.flows import BROWSER_TIMEOUT, BrowserSignIn
        from tuimail.oauth_account import OAuthSecrets, client_for, has_display, provider_for

        secrets = OAuthSecrets()
        provider = provider_for(self.profile)
        client = client_for(self.profile, secrets)
        with BrowserSignIn(provider, client, login_hint=self.profile.username) as signing_in:
            opened = False
            if has_display():
                import webbrowser

                try:
                    opened = webbrowser.open(signing_in.url)
                except webbrowser.Error:
                    opened = False
            self._from_thread(
                self.show_address, signing_in.url, opened, BROWSER_TIMEOUT, signing_in.redirect_uri
            )
            return signing_in.finish(BROWSER_TIMEOUT, self.cancel)

    def _device(self) -> Tokens:
        from tuimail.oauth.flows import finish_device_sign_in, start_device_sign_in
        from tuimail.oauth_account import OAuthSecrets, client_for, provider_for

        provider = provider_for(self.profile)
        client = client_for(self.profile, OAuthSecrets())
        code = start_device_sign_in(provider, client)
        self._from_thread(
            self.show_device_code, code.verification_uri, code.user_code, code.expires_in
        )
        return finish_device_sign_in(provider, client, code, cancel=self.cancel)

    def show_address(self, url: str, opened: bool, wait: float, redirect_uri: str) -> None:
        """The browser way: the address to open, whole (it wraps), and how long it waits."""
        if not self.is_attached:
            return  # closed (Escape) while the flow started: the worker stops on its own
        self.address = url
        step = (
            "Sign in in the browser window that opened. If none did, open this address:"
            if opened
            else "Open this address in a browser, sign in and allow access:"
        )
        self.query_one("#sign-in-step", Label).update(step)
        self.query_one("#sign-in-address", Static).update(shown(url))
        self.query_one("#sign-in-wait", Label).update(
            shown(
                f"Waiting up to {wait / 60:.0f} minutes for the browser to come back to "
                f"{redirect_uri}. Escape stops."
            )
        )
        self.query_one("#copy", Button).disabled = False

    def show_device_code(self, verification_uri: str, user_code: str, expires_in: float) -> None:
        """The device way: where to go, the code to enter there, and how long it is valid."""
        if not self.is_attached:
            return  # closed (Escape) while the flow started: the worker stops on its own
        self.address = verification_uri
        self.user_code = user_code
        self.query_one("#sign-in-step", Label).update("On any device, open this address:")
        self.query_one("#sign-in-address", Static).update(shown(verification_uri))
        self.query_one("#sign-in-code", Static).update(shown(f"and enter the code: {user_code}"))
        self.query_one("#sign-in-wait", Label).update(
            f"Waiting up to {expires_in / 60:.0f} minutes for the approval. Escape stops."
        )
        self.query_one("#copy", Button).disabled = False

    def _signed_in(self) -> None:
        if self.is_current:
            self.dismiss(True)

    def _failed(self, words: str) -> None:
        if not self.is_current:
            return
        self.query_one("#sign-in-step", Label).update("Not signed in.")
        self.query_one("#sign-in-wait", Label).update("")
        self.query_one("#error", Label).update(shown(words))
        self.query_one("#cancel", Button).label = "Close"

    @on(Button.Pressed, "#copy")
    def _copy(self) -> None:
        self.app.copy_to_clipboard(self.address)
        self.notify("Copied the address (where the terminal allows it).", timeout=4)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.cancel.set()
        self.dismiss(False)

    def on_unmount(self) -> None:
        self.cancel.set()  # the listener closes, the polling stops


class SecretDialog(ModalScreen[Secret | None]):
    """Ask for a profile's password (or access token) when it is needed, masked.

    For a profile that keeps no secret ("ask at send time"). It returns a
    :class:`~tuimail.credentials.Secret`, or None when cancelled (Escape);
    the field is emptied as it closes, so the typed text stays in no widget.
    The caller keeps the answer in memory for this run only.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, profile: Profile, confirm: str = "Send") -> None:
        super().__init__()
        self.profile = profile
        self.confirm = confirm

    @property
    def what(self) -> str:
        return "access token" if self.profile.auth_mechanism.takes_token else "password"

    def compose(self) -> ComposeResult:
        p = self.profile
        with Vertical(classes="dialog secret"):
            yield Label(
                shown(f"The {self.what} for {p.username} at {p.address} (profile {p.name})"),
                markup=False,
            )
            yield Input("", id="secret", password=True)
            yield Label(
                "Kept in memory until tuimail quits, for this profile only; never saved. "
                "Escape: not sent.",
                classes="note",
            )
            yield Label("", id="error", classes="error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(self.confirm, variant="primary", id="confirm")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#secret", Input).focus()

    @on(Input.Submitted, "#secret")
    @on(Button.Pressed, "#confirm")
    def _confirm(self, event: Input.Submitted | Button.Pressed) -> None:
        event.stop()
        field = self.query_one("#secret", Input)
        value = field.value
        if not value:
            self.query_one("#error", Label).update(
                f"Type the {self.what}, or press Escape to cancel."
            )
            field.focus()
            return
        field.value = ""
        self.dismiss(Secret(value))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.query_one("#secret", Input).value = ""
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """F1: what the keys do and how to get started."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="help.close"),
        Binding("f1", "close", "Close", show=False),
    ]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        rows = "\n".join(f"| `{key}` | {description} |" for key, description in self.keys)
        text = f"""\
# tuimail

Write a message on **Compose** and send it; watch the SMTP conversation on
**Transcript**. `->` and `<-` are client and server lines in plain text, `~>`
and `<~` inside TLS; `===` is an event and `***` a warning or error.

The **sandbox** profile sends to a capture server inside tuimail: nothing
leaves this machine, and **Sandbox** shows what it received, with the
server's side of the conversation.

| key | action |
|---|---|
{rows}

Keys can be changed in `config.toml` (`[keymap]`, binding id = key).
The command palette (`ctrl+p`) has every action, and the theme picker.
"""
        with Vertical(classes="dialog wide help"):
            with VerticalScroll():
                from textual.widgets import Markdown

                yield Markdown(text)
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close")

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)


__all__ = [
    "AccountDialog",
    "AccountForm",
    "AccountSaver",
    "ConfirmDialog",
    "ExportDialog",
    "ExportRequest",
    "FilePickerDialog",
    "FormCheckbox",
    "FormSelect",
    "HelpScreen",
    "SaveRefused",
    "SecretDialog",
    "SecretSource",
    "SignInDialog",
    "SignInWay",
    "write_export",
]
