"""Dialogs: modal screens that return a value with ``dismiss``."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from textual import on
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
from tuimail.profiles import AuthMechanism, Profile, ProfileError, with_changes
from tuimail.ui.outside import shown

if TYPE_CHECKING:
    from textual.widgets import DirectoryTree


class ConfirmDialog(ModalScreen[bool]):
    """Ask a yes/no question; Escape cancels.

    Cancel has the focus at first, so Enter alone never confirms a doubtful
    send or a delete: Tab to the confirm button, or click it.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, question: str, confirm: str = "Send anyway") -> None:
        super().__init__()
        self.question = question
        self.confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(shown(self.question, keep_newlines=True), classes="question", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(self.confirm, variant="warning", id="confirm")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

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
        try:
            is_file = path.is_file()
        except OSError as exc:  # a name too long, a directory that cannot be searched
            error.update(shown(f"{path}: {exc.strerror}"))
            return
        if not is_file:
            error.update(shown(f"{path} is not a file"))
        else:
            self.dismiss(path)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class ExportRequest:
    path: Path
    format: str  # "text" or "jsonl"


class ExportDialog(ModalScreen[ExportRequest | None]):
    """Where to write a transcript, and as what."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, default_path: Path) -> None:
        super().__init__()
        self.default_path = default_path

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Export the transcript (the whole session, redacted)")
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


class AccountDialog(ModalScreen[AccountForm | None]):
    """Add or edit a profile. The password field is masked and goes to the keyring."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, profile: Profile | None = None) -> None:
        super().__init__()
        self.profile = profile

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
                yield Select(
                    [("STARTTLS (required)", "starttls"), ("TLS", "tls"), ("none (plain)", "none")],
                    value=(p.security.value if p else "starttls"),
                    allow_blank=False,
                    id="security",
                )
                yield Label("Port")
                yield Input(str(p.port) if p and p.port else "", id="port", placeholder="default")
                yield Label("User")
                yield Input(p.username if p else "", id="username")
                yield Label("Password")
                yield Input(
                    "",
                    id="password",
                    password=True,
                    placeholder="unchanged" if p and p.username else "stored in the OS keyring",
                )
                yield Label("From")
                yield Input(p.from_address if p else "", id="from_address")
                yield Label("Name shown")
                yield Input(p.display_name if p else "", id="display_name")
                yield Label("AUTH")
                yield Select(
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
                yield Checkbox("Verify certificates", p.verify_tls if p else True, id="verify_tls")
                yield Label("")
                yield Checkbox(
                    "Allow password without TLS",
                    p.allow_plaintext_auth if p else False,
                    id="allow_plaintext_auth",
                )
            yield Label("", id="error", classes="error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def _form_values(self) -> AccountFields:
        def text(widget_id: str) -> str:
            return self.query_one(f"#{widget_id}", Input).value.strip()

        port = text("port")
        timeout = text("timeout")
        if port and not (port.isascii() and port.isdigit()):  # "²" is a digit to isdigit()
            raise ProfileError("port", "must be a whole number")
        try:
            timeout_value = float(timeout or 30)
        except ValueError:
            raise ProfileError("timeout", "must be a number of seconds") from None
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
        }

    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        error = self.query_one("#error", Label)
        name = self.query_one("#name", Input).value.strip()
        try:
            values = self._form_values()
            base = Profile(name=name, host=values["host"])
            profile = with_changes(base, **{k: v for k, v in values.items() if k != "host"})
        except ProfileError as exc:
            error.update(f"{exc.field_name}: {exc.message}")
            return
        password = self.query_one("#password", Input).value
        if (
            profile.username
            and not password
            and (self.profile is None or not self.profile.username)
        ):
            error.update("password: needed for a profile with a user name")
            return
        self.dismiss(
            AccountForm(
                profile,
                Secret(password) if password else None,
                self.profile.name if self.profile else None,
            )
        )

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
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
    "ConfirmDialog",
    "ExportDialog",
    "ExportRequest",
    "FilePickerDialog",
    "HelpScreen",
]
