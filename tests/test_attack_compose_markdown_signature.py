"""A Markdown message with the profile's signature: the signature is not Markdown.

Its lines are a name, a company, a number, one per line (tuimail/signatures.py
puts them below ``-- ``); Markdown would join them into one paragraph, so the
HTML part every reader shows first read "-- Alice Liddell ACME Corp +1 555
0100" on one line. Through a real server with the app, and in the preview.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser

from tests.smtpservers import ServerThread, Sink
from tests.ui_support import (
    fill_draft,
    save_profile,
    screen_text,
    type_text,
    wait_for,
    wait_for_run,
)
from tuimail.markdown_body import render_html
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.markdown_preview import MarkdownPreview

SIGNATURE = "Alice Liddell\nACME *Corp* <sales>\n+1 555 0100"


class Lines(HTMLParser):
    """The text of an HTML document as a reader lays it out: a line per block or <br>."""

    def __init__(self) -> None:
        super().__init__()
        self.text = ""

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("br", "p", "div", "h1", "li", "pre"):
            self.text += "\n"

    def handle_data(self, data: str) -> None:
        self.text += " ".join(data.split("\n"))


def laid_out(html: str) -> list[str]:
    parser = Lines()
    parser.feed(html)
    return [" ".join(line.split()) for line in parser.text.split("\n") if line.strip()]


def test_the_signature_keeps_its_lines_and_is_not_read_as_markdown() -> None:
    body = f"# Plans\n\nSee you **soon**.\n\n-- \n{SIGNATURE}\n"
    lines = laid_out(render_html(body))
    assert lines == [
        "Plans",
        "See you soon.",
        "--",
        "Alice Liddell",
        "ACME *Corp* <sales>",
        "+1 555 0100",
    ]
    # Only the last separator starts the signature; a body without one is all Markdown.
    assert laid_out(render_html("a\n\n-- \nb\n\nc *d*\n\n-- \ne\nf")) == [
        "a",
        "-- b",
        "c d",
        "--",
        "e",
        "f",
    ]
    assert laid_out(render_html("x\ny\n")) == ["x y"]


async def test_compose_sends_and_previews_the_signature_line_by_line(
    servers: ServerThread,
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    save_profile(
        name="local",
        host="127.0.0.1",
        port=port,
        security="none",
        markdown=True,
        signature=SIGNATURE,
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: "ACME" in screen_text(app), "the signature in the body")
        await fill_draft(pilot, to="bob@example.test", subject="Plans")
        await pilot.click("#body")
        await type_text(pilot, "See you **soon**.")
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, MarkdownPreview), "the preview")
        await wait_for(pilot, lambda: "+1 555 0100" in screen_text(app), "the preview drawn")
        # The preview's own lines: between the borders of its box, over Compose.
        lines = screen_text(app).splitlines()
        left = next(line for line in lines if "Markdown preview" in line).index("│")
        shown = [line[left + 1 :].split("│")[0].strip() for line in lines]
        assert "Alice Liddell" in shown and "+1 555 0100" in shown
        assert "ACME *Corp* <sales>" in shown
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, MarkdownPreview), "it to close")
        await pilot.press("ctrl+s")
        await wait_for_run(pilot, 1)
    message = message_from_bytes(sink.messages[0].content, policy=policy.default)
    assert isinstance(message, EmailMessage)
    html = message.get_body(("html",))
    plain = message.get_body(("plain",))
    assert html is not None and plain is not None
    assert laid_out(html.get_content())[-4:] == [
        "--",
        "Alice Liddell",
        "ACME *Corp* <sales>",
        "+1 555 0100",
    ]
    assert plain.get_content().replace("\r\n", "\n").endswith(f"\n-- \n{SIGNATURE}\n")
