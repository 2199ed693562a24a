"""An address input that checks what was typed when focus leaves it."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label

from tuimail.message import DraftInvalid, validate_address_field


class AddressField(Vertical):
    """Label, input and an inline error line, validated with the core's strict parser."""

    DEFAULT_CSS = """
    AddressField { height: auto; }
    AddressField > Horizontal { height: 1; }
    AddressField Label.field-label { width: 9; color: $text-muted; }
    AddressField Input, AddressField Input:focus {
        border: none; height: 1; padding: 0 1; width: 1fr; background: $surface;
    }
    AddressField Input:focus { background: $boost; }
    AddressField .error { display: none; color: $error; padding-left: 9; height: auto; }
    AddressField.-invalid .error { display: block; }
    AddressField.-invalid Input { background: $error 15%; }
    """

    def __init__(self, label: str, field_name: str, *, placeholder: str = "") -> None:
        super().__init__(id=f"field-{field_name}")
        self.label = label
        self.field_name = field_name
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.label, classes="field-label")
            yield Input(placeholder=self.placeholder, id=f"input-{self.field_name}")
        # The error quotes what was typed: never parse it as markup.
        yield Label("", classes="error", markup=False)

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def value(self) -> str:
        return self.input.value

    @value.setter
    def value(self, text: str) -> None:
        self.input.value = text

    @property
    def error(self) -> str:
        return str(self.query_one(".error", Label).content) if self.has_class("-invalid") else ""

    def validate(self) -> bool:
        """Check the addresses now; show the error inline. Empty is valid here."""
        try:
            validate_address_field(self.field_name, [self.value] if self.value.strip() else [])
        except DraftInvalid as exc:
            self.show_error(exc.errors[0].message)
            return False
        self.show_error("")
        return True

    def show_error(self, message: str) -> None:
        self.query_one(".error", Label).update(message)
        self.set_class(bool(message), "-invalid")

    @on(Input.Blurred)
    def _validate_when_left(self, event: Input.Blurred) -> None:
        self.validate()

    @on(Input.Changed)
    def _revalidate_while_invalid(self, event: Input.Changed) -> None:
        if self.has_class("-invalid"):
            self.validate()
