"""An address input that checks what was typed when focus leaves it, and completes
the address being typed from a list under it.

Completion asks a blocking function (Compose gives
:meth:`tuimail.address_book.AddressBook.complete`) in a thread worker, one per
keystroke, the newest superseding the others: the field never waits for it,
so typing goes on while an address-book command is slow or hangs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList

from tuimail.message import DraftInvalid, validate_address_field, validate_sender
from tuimail.ui.outside import shown

if TYPE_CHECKING:  # the book itself is Compose's (it brings files and processes)
    from tuimail.address_book import Completion, Suggestion


def typed_fragment(value: str) -> str:
    """The address being typed: what follows the last comma, without spaces around it."""
    return value.rsplit(",", 1)[-1].strip()


def accepted_value(value: str, suggestion: Suggestion) -> str:
    """``value`` with the address being typed replaced by ``suggestion`` (earlier ones kept)."""
    head, comma, _fragment = value.rpartition(",")
    return f"{head}{comma} {suggestion.text}" if comma else suggestion.text


def suggestion_line(suggestion: Suggestion) -> Text:
    """One line of the list: the name, then the address (outside text, never markup)."""
    line = Text()
    if suggestion.name:
        line.append(shown(suggestion.name), style="bold")
        line.append("  ")
    line.append(shown(suggestion.address))
    return line


class AddressInput(Input):
    """The field's input: Tab, Enter, Up, Down and Escape work the list while it is open.

    While it is closed they do what they do elsewhere (Tab and Enter move
    on), so a field without suggestions behaves like any other.
    """

    BINDINGS = [
        Binding("tab", "accept_suggestion", "Accept", show=False),
        Binding("down", "move_suggestion(1)", "Next suggestion", show=False),
        Binding("up", "move_suggestion(-1)", "Previous suggestion", show=False),
        Binding("escape", "close_suggestions", "Close suggestions", show=False),
    ]

    @property
    def field(self) -> AddressField | None:
        parent = self.parent.parent if self.parent is not None else None
        return parent if isinstance(parent, AddressField) else None

    def action_accept_suggestion(self) -> None:
        field = self.field
        if field is None or not field.accept():
            raise SkipAction()  # Tab moves on

    async def action_submit(self) -> None:
        field = self.field
        if field is not None and field.accept():
            return
        await super().action_submit()

    def action_move_suggestion(self, step: int) -> None:
        field = self.field
        if field is None or not field.suggesting:
            raise SkipAction()
        options = field._options()
        index = options.highlighted or 0
        options.highlighted = (index + step) % options.option_count

    def action_close_suggestions(self) -> None:
        field = self.field
        if field is None or not field.suggesting:
            raise SkipAction()
        field.close_suggestions()


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
    AddressField OptionList {
        display: none; height: auto; max-height: 6; margin-left: 9;
        border: none; padding: 0; background: $panel;
    }
    AddressField.-suggesting OptionList { display: block; }
    """

    def __init__(
        self, label: str, field_name: str, *, placeholder: str = "", after: Widget | None = None
    ) -> None:
        super().__init__(id=f"field-{field_name}")
        self.label = label
        self.field_name = field_name
        self.placeholder = placeholder
        self.after = after
        #: Blocking: suggestions for what is typed (None: this field completes nothing).
        self.completer: Callable[[str], Completion] | None = None
        self._suggestions: tuple[Suggestion, ...] = ()
        #: The value an accepted suggestion made: its Changed event asks nothing.
        self._accepted = ""
        #: Offer every suggestion when the field is entered (From's identities).
        self.offer_on_focus = False
        #: The question asked last: only its answer is shown.
        self._asked: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.label, classes="field-label")
            yield AddressInput(placeholder=self.placeholder, id=f"input-{self.field_name}")
            if self.after is not None:
                yield self.after
        # The error quotes what was typed: never parse it as markup.
        yield Label("", classes="error", markup=False)
        # The list of suggestions is mounted with the first ones (:meth:`_options`):
        # five hidden lists would cost the first screen their mounting and styling.

    # -- completion --------------------------------------------------------------

    def _options(self) -> OptionList:
        """The list of suggestions under the input, mounted the first time it is needed."""
        try:
            return self.query_one(OptionList)
        except NoMatches:
            options = OptionList(classes="suggestions", compact=True, markup=False)
            options.can_focus = False  # the cursor stays in the field; keys work the list
            self.mount(options)
            return options

    @property
    def suggesting(self) -> bool:
        """The list of suggestions is open."""
        return self.has_class("-suggesting")

    @property
    def suggestions(self) -> tuple[Suggestion, ...]:
        """What the open list offers (empty while closed)."""
        return self._suggestions if self.suggesting else ()

    def close_suggestions(self) -> None:
        self._asked = None
        self._suggestions = ()
        self.remove_class("-suggesting")

    def accept(self, index: int | None = None) -> bool:
        """Put the highlighted (or ``index``-th) suggestion in place of the address being
        typed; False when the list is closed."""
        if not self.suggesting:
            return False
        options = self._options()
        chosen = options.highlighted if index is None else index
        if chosen is None or not 0 <= chosen < len(self._suggestions):
            chosen = 0
        chosen_one = self._suggestions[chosen]
        # From holds one sender: a choice replaces it whole.
        value = (
            chosen_one.text if self.field_name == "from" else accepted_value(self.value, chosen_one)
        )
        self.close_suggestions()
        self._accepted = value
        self.input.value = value
        self.input.cursor_position = len(value)
        return True

    @on(Input.Changed)
    def _complete_as_typed(self, event: Input.Changed) -> None:
        if self.completer is None or event.value == self._accepted:
            return
        self._accepted = ""
        query = typed_fragment(event.value)
        if not query or not self.input.has_focus:
            self.close_suggestions()
            return
        self._asked = query
        self._look_up(query, self.completer)

    def on_descendant_focus(self) -> None:
        if self.offer_on_focus and self.completer is not None:
            self._asked = ""
            self._look_up("", self.completer)

    @work(thread=True, exclusive=True, group="complete", exit_on_error=False)
    def _look_up(self, query: str, completer: Callable[[str], Completion]) -> None:
        """Ask in a thread; the newest question supersedes the others (their answers are
        dropped, and a command still running for them is stopped by the book)."""
        completion = completer(query)
        if not completion.superseded:
            with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
                self.app.call_from_thread(self._show_suggestions, completion)

    def _show_suggestions(self, completion: Completion) -> None:
        """Show the answer if it is still for what the field holds."""
        if completion.query != self._asked or not self.input.has_focus:
            return
        if not completion.suggestions:
            self.close_suggestions()
            return
        self._suggestions = completion.suggestions
        options = self._options()
        options.set_options(suggestion_line(s) for s in completion.suggestions)
        options.highlighted = 0
        self.add_class("-suggesting")

    @on(OptionList.OptionSelected)
    def _clicked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.accept(event.option_index)
        self.input.focus()

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
        self.close_suggestions()
        self.validate()

    @on(Input.Changed)
    def _revalidate_while_invalid(self, event: Input.Changed) -> None:
        if self.has_class("-invalid"):
            self.validate()
