"""F5's "open in the browser" (o): nothing in the message reaches out, CSP or not.

The page starts with a Content-Security-Policy that forbids every load, but a
CSP does not govern everything: ``<meta http-equiv="refresh">`` navigates the
page to any address the moment it opens (the message was read, and by whom),
``<link rel="dns-prefetch">`` and ``preconnect`` reach a server before
anything loads, ``<base>`` points every relative link elsewhere, and a
frame's document may refresh itself. Such elements must reach the browser as
text.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from tuimail.inbox.browser import write_html_for_browser

HOSTILE = (
    "<html><head>"
    '<meta http-equiv="refresh" content="0; url=https://tracker.example.test/opened?u=dana">'
    "<META\nHTTP-EQUIV=Refresh CONTENT='1;URL=//tracker.example.test/2'>"
    "<meta/http-equiv=refresh content=0;url=https://tracker.example.test/3>"
    '<link rel="dns-prefetch" href="//dns.tracker.example.test">'
    '<LINK rel=preconnect href="https://tracker.example.test">'
    '<base href="https://tracker.example.test/">'
    "</head><body><p>Hello <b>Dana</b></p>"
    "<iframe srcdoc=\"<meta http-equiv=refresh content='0;url=https://tracker.example.test/4'>\">"
    "</iframe><frameset><frame src=https://tracker.example.test/5></frameset>"
    "</body></html>"
)


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


@pytest.fixture
def page() -> tuple[str, bool]:
    path, remote = write_html_for_browser(HOSTILE)
    try:
        return Path(path).read_text(encoding="utf-8"), remote
    finally:
        Path(path).unlink()


def test_no_refresh_prefetch_base_or_frame_reaches_the_browser(page: tuple[str, bool]) -> None:
    text, remote = page
    parser = Tags()
    parser.feed(text)
    tags = parser.tags
    metas = [attrs for tag, attrs in tags if tag == "meta"]
    # tuimail's own two: the charset and the policy, first.
    assert metas == [
        {"charset": "utf-8"},
        {"http-equiv": "Content-Security-Policy", "content": metas[1]["content"]},
    ]
    assert not [tag for tag, _ in tags if tag in ("link", "base", "iframe", "frame")]
    assert "Hello" in text and "<b>Dana</b>" in text  # the rest as it came
    assert remote  # and the user is told what was blocked


def test_a_plain_message_is_left_as_it_came() -> None:
    html = "<p>A <i>meta</i>-analysis: x<y, <basement> and <linked> are words</p>"
    path, remote = write_html_for_browser(html)
    try:
        assert Path(path).read_text(encoding="utf-8").endswith(html)
        assert not remote
    finally:
        Path(path).unlink()
