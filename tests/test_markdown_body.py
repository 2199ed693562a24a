"""Markdown bodies: the text as typed beside its HTML rendering, parsed back from the wire.

The message goes through ``tuimail send`` and a real server; what arrives
is read with the email package and an HTML parser, as a mail reader would.
"""

from __future__ import annotations

from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.cli_helpers import run_tuimail, send_args
from tests.smtpservers import ServerThread, Sink
from tuimail.markdown_body import render_html
from tuimail.message import Draft, build_message

TYPED = (
    "# Release notes\n"
    "\n"
    "Thanks to *everyone* — très bien.\n"
    "\n"
    "## Changes\n"
    "\n"
    "- faster sends\n"
    "- a [changelog](https://example.org/changes)\n"
    "\n"
    "1. first\n"
    "2. second\n"
    "\n"
    "> quoted words\n"
    "\n"
    "```python\n"
    "if a < b:\n"
    "    print('<tag>')\n"
    "```\n"
    "\n"
    "Inline `x = 1` and [bad](javascript:alert(1)) and <script>alert(2)</script>.\n"
    "Trailing spaces stay   \n"
)


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside each tag name."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: dict[str, list[str]] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        for tag in self._open:
            self.text.setdefault(tag, []).append(data)

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def inside(self, tag: str) -> str:
        return "".join(self.text.get(tag, []))


def received_message(content: bytes) -> EmailMessage:
    message = message_from_bytes(content, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_markdown_send_has_the_typed_text_and_its_html(
    servers: ServerThread, tmp_path: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    attachment = tmp_path / "data.csv"
    attachment.write_text("a,b\n1,2\n")
    result = run_tuimail(
        *send_args(port, "--markdown", "--body", TYPED, "--attach", str(attachment))
    )
    assert result.returncode == 0, result.stderr
    message = received_message(sink.messages[0].content)
    # multipart/mixed around the alternative, because of the attachment.
    assert message.get_content_type() == "multipart/mixed"
    alternative, attached = message.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, html_part = alternative.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    assert attached.get_filename() == "data.csv"
    # The text part is what was typed, byte for byte (with mail's CRLF line
    # ends, RFC 2046 section 4.1.1), not a conversion from HTML.
    assert plain.get_payload(decode=True) == TYPED.replace("\n", "\r\n").encode("utf-8")
    assert plain.get_content().replace("\r\n", "\n") == TYPED

    page = Elements()
    page.feed(html_part.get_content().replace("\r\n", "\n"))
    assert page.inside("h1") == "Release notes"
    assert page.inside("h2") == "Changes"
    assert page.inside("ul").split() == ["faster", "sends", "a", "changelog"]
    assert len(page.named("li")) == 4 and len(page.named("ol")) == 1
    assert page.inside("blockquote").strip() == "quoted words"
    assert page.inside("pre") == "if a < b:\n    print('<tag>')\n"
    assert "x = 1" in page.inside("code")
    assert "très bien" in page.inside("p")
    # Links: the web one is a link; the javascript: one stays text.
    assert [a["href"] for a in page.named("a")] == ["https://example.org/changes"]
    assert "[bad](javascript:alert(1))" in page.inside("p")
    # Raw HTML is shown as text, never as markup.
    assert page.named("script") == [] and "<script>alert(2)</script>" in page.inside("p")
    # Inline styles, as mail readers drop <style> blocks.
    for tag in ("h1", "h2", "ul", "ol", "li", "blockquote", "pre", "a", "code"):
        assert all(attrs.get("style") for attrs in page.named(tag)), tag


def test_the_profile_sets_markdown_and_the_command_line_turns_it_off(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    profiles = isolated_dirs / "config" / "tuimail" / "profiles.toml"
    profiles.parent.mkdir(parents=True, exist_ok=True)
    profiles.write_text(
        f'[profiles.md]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        'from_address = "alice@example.test"\nmarkdown = true\n'
    )
    base = ["send", "--profile", "md", "--to", "bob@example.test", "--subject", "s"]
    assert run_tuimail(*base, "--body", "**bold**\n").returncode == 0
    assert run_tuimail(*base, "--no-markdown", "--body", "**bold**\n").returncode == 0
    first, second = (received_message(m.content) for m in sink.messages)
    assert first.get_content_type() == "multipart/alternative"
    assert second.get_content_type() == "text/plain"
    assert second.get_content() == "**bold**\r\n"


def test_without_attachments_the_body_is_the_alternative_itself() -> None:
    draft = Draft(
        from_address="a@example.test", to=["b@example.test"], body="*hi*\n", markdown=True
    )
    message = received_message(build_message(draft).to_bytes())
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "java&#x09;script:alert(1)",
        "vbscript:msgbox",
        "data:text/html;base64,PHNjcmlwdD4=",
        "file:///etc/passwd",
        "//evil.example/x",
    ],
)
def test_only_web_and_mail_links_become_links(link: str) -> None:
    page = Elements()
    page.feed(render_html(f"[a]({link}) ![i]({link}) <{link}>\n"))
    assert page.named("a") == [] and page.named("img") == []


def test_mailto_and_https_links_stay() -> None:
    page = Elements()
    page.feed(render_html("[m](mailto:bob@example.org) <https://example.org/>\n"))
    assert [a["href"] for a in page.named("a")] == [
        "mailto:bob@example.org",
        "https://example.org/",
    ]
