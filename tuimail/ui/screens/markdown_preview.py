"""The body as Markdown renders it: what the HTML part of a Markdown message will show.

Drawn by Textual's Markdown widget from the body as typed, parsed in the HTML
part's own dialect (tuimail/markdown_body.py's ``parser``: raw HTML shown as
the text the recipient reads, bare URLs not links), the signature below it
line by line as that part shows it; the HTML itself is made when the message
is built. Escape closes.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Markdown, Static

from tuimail.markdown_body import SIGNATURE_SEPARATOR, parser, split_signature
from tuimail.ui.outside import shown


class MarkdownPreview(ModalScreen[None]):
    """A read-only preview over Compose; the body stays as typed."""

    DEFAULT_CSS = """
    MarkdownPreview { align: center middle; }
    MarkdownPreview > Vertical {
        width: 90%; height: 90%; border: round $accent; background: $surface; padding: 0 1;
    }
    MarkdownPreview VerticalScroll { height: 1fr; }
    MarkdownPreview .preview-note { color: $text-muted; width: 1fr; }
    MarkdownPreview #preview-signature { color: $text-muted; padding: 0 2; }
    """

    BINDINGS = [Binding("escape,f8", "dismiss_preview", "Close", id="preview.close")]

    def __init__(self, body: str, *, markdown_on: bool, protection: Sequence[str] = ()) -> None:
        super().__init__()
        self.body = body
        self.markdown_on = markdown_on
        #: What sending will do: signed by whom, encrypted to whom, DKIM
        #: (tuimail/inbox/protection_view.py ``planned``).
        self.protection = tuple(protection)

    def compose(self) -> ComposeResult:
        with Vertical():
            note = "Markdown preview (Escape closes)"
            if not self.markdown_on:
                note += " · Markdown is off: this message goes as plain text"
            yield Label(note, classes="preview-note", markup=False)
            if self.protection:
                words = "When sent: " + "; ".join(self.protection)
                yield Label(
                    shown(words), id="preview-protection", classes="preview-note", markup=False
                )
            with VerticalScroll():
                # The signature goes as the HTML part has it: lines of text, not Markdown.
                markdown, signature = split_signature(self.body)
                # Links are not followed: Textual would call webbrowser.open on the
                # loop, which without a display waits for a console browser (w3m)
                # run in the app's own terminal.
                yield Markdown(
                    markdown, id="markdown-preview", parser_factory=parser, open_links=False
                )
                if signature is not None:
                    yield Static(
                        shown(f"{SIGNATURE_SEPARATOR}\n{signature}", keep_newlines=True),
                        id="preview-signature",
                        markup=False,
                    )

    def action_dismiss_preview(self) -> None:
        self.dismiss(None)
