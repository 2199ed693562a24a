"""The Markdown preview shows what the HTML part will show (tuimail/markdown_body.py's
dialect), not what Textual's default dialect would make of the same text."""

from __future__ import annotations

import webbrowser

from pytest import MonkeyPatch

from tests.ui_support import fill_draft, screen_text, wait_for
from tuimail.markdown_body import render_html
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.markdown_preview import MarkdownPreview

BODY = "Say <b>hi</b> to Bob.\n\n<div>the budget</div>\n\nRead [this](//example.org/x) too.\n"


async def test_the_preview_shows_raw_html_and_refused_links_as_the_recipient_reads_them() -> None:
    # What the recipient gets: the tags and the refused link as text.
    html = render_html(BODY)
    assert "Say &lt;b&gt;hi&lt;/b&gt; to Bob." in html
    assert "&lt;div&gt;the budget&lt;/div&gt;" in html
    assert "[this](//example.org/x)" in html and "<a " not in html

    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await fill_draft(pilot, subject="Plans", body=BODY)
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, MarkdownPreview), "the preview")
        await wait_for(pilot, lambda: "Bob" in screen_text(app), "the preview to be drawn")
        text = screen_text(app)
        # Textual's default dialect dropped the tags, the whole <div> line, and
        # made the relative link a link: a preview of another message.
        assert "Say <b>hi</b> to Bob." in text
        assert "<div>the budget</div>" in text
        assert "Read [this](//example.org/x) too." in text


async def test_a_link_clicked_in_the_preview_opens_nothing(monkeypatch: MonkeyPatch) -> None:
    # The preview is for looking. Textual's Markdown opens a clicked link with
    # webbrowser.open on the app's loop: without a display that is a console
    # browser (w3m, lynx) waited for on the loop, in the app's own terminal.
    opened: list[str] = []

    def record(url: str, *args: object, **kwargs: object) -> bool:
        opened.append(url)
        return True

    monkeypatch.setattr(webbrowser, "open", record)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await fill_draft(pilot, subject="Menu", body="[the menu](https://example.test/menu)\n")
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, MarkdownPreview), "the preview")
        await wait_for(pilot, lambda: "the menu" in screen_text(app), "the preview drawn")
        paragraph = app.screen.query_one("#markdown-preview MarkdownParagraph")
        await pilot.click(paragraph, offset=(2, 0))
        await pilot.pause(0.2)
        assert opened == []
        assert isinstance(app.screen, MarkdownPreview)
