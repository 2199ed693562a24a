"""The HTML part of a Markdown message (tuimail/markdown_body.py), parsed back: what
the writer's Markdown asked for survives the inline styles."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser

from tuimail.message import Draft, build_message


class Cells(HTMLParser):
    """Each table cell's tag, text-align and text, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("th", "td"):
            style = dict(attrs).get("style") or ""
            # The last text-align declared is the one a reader applies.
            aligns = [d.split(":", 1)[1].strip() for d in style.split(";") if "text-align" in d]
            self.cells.append([tag, aligns[-1] if aligns else "", ""])

    def handle_data(self, data: str) -> None:
        if self.cells and not self.cells[-1][2]:
            self.cells[-1][2] = data.strip()


def test_table_columns_keep_the_alignment_written_in_the_markdown() -> None:
    body = "| Item | Qty | Note |\n|:-----|----:|:----:|\n| tea | 12 | hot |\n"
    outgoing = build_message(
        Draft(from_address="me@example.org", to=["bob@example.org"], subject="s", body=body,
              markdown=True)
    )  # fmt: skip
    message = message_from_bytes(outgoing.to_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    html = message.get_body(("html",))
    assert html is not None
    cells = Cells()
    cells.feed(html.get_content())
    assert cells.cells == [
        ["th", "left", "Item"],
        ["th", "right", "Qty"],
        ["th", "center", "Note"],
        ["td", "left", "tea"],
        ["td", "right", "12"],
        ["td", "center", "hot"],
    ]
