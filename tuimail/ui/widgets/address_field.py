"""An address input that checks what was typed when focus leaves it."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Input, Label

from tuimail.message import DraftInvalid, validate_address_field, validate_sender


class AddressField(Vertical):
    """Label, input and an inline error line, validated with the core's strict parser.

    The field named ``from`` holds one sender (the core's rule for From);
    the others hold address lists. ``after`` is a widget for the end of the
    input's line (Compose puts its "More" toggle beside From).
    """

    DEFAULT_CSS = """
    AddressField { height: auto; }
    AddressField > Horizontal { height: 1; }
    AddressField Label.field-label { width: 9; color: $text-muted; }
    AddressField Input, AddressField Input:focus {
        border: none; height: 1; padding: 0 1; width: 1fr; background: $surface;
    }
    AddressField Input:focus { background: $boost; }
    AddressField Button { margin-left: 1; }
    /* As wide as the form, so a long error wraps instead of running off the edge. */
    AddressField .error {
        display: none; color: $error; padding-left: 9; height: auto; width: 1fr;
    }
    AddressField.-invalid .error { display: block; }
    AddressField.-invalid Input { background: $error 15%; }
    """

    def __init__(
        self, label: str, field_name: str, *, placeholder: str = "", after: Widget | None = None
    ) -> None:
        super().__init__(id=f"field-{field_name}")
        self.label = label
        self.field_name = field_name
        self.placeholder = placeholder
        self.after = after

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.label, classes="field-label")
            yield Input(placeholder=self.placeholder, id=f"input-{self.field_name}")
            if self.after is not None:
                yield self.after
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

    def validate(self, *, sending: bool = False) -> bool:
        """Check the addresses now; show the error inline.

        Empty is valid while typing; when ``sending``, an empty From is not
        (the core says why, in the words the send would use).
        """
        try:
            if self.field_name == "from":
                if self.value.strip() or sending:
                    validate_sender(self.value)
            else:
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
