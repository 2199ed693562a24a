"""Markdown in Compose: the toggle (the profile's ``markdown`` by default, per message),
what reaches a real server (aiosmtpd on 127.0.0.1), a draft keeping it, and the preview."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from textual.widgets import Checkbox, Markdown, TextArea

from tests.smtpservers import ServerThread, Sink
from tests.ui_support import fill_draft, save_profile, wait_for, wait_for_run
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.markdown_preview import MarkdownPreview

BODY = "# Plans\n\n- **lunch** at noon\n- `code` too\n"


def received(sink: Sink, index: int) -> EmailMessage:
    message = message_from_bytes(sink.messages[index].content, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def test_the_profiles_markdown_is_the_default_and_the_toggle_is_per_message(
    servers: ServerThread,
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    save_profile(name="local", host="127.0.0.1", port=port, security="none", markdown=True)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        box = app.screen.query_one("#markdown", Checkbox)
        await wait_for(pilot, lambda: box.value, "Markdown on, as the profile says")
        await fill_draft(pilot, to="bob@example.test", subject="Plans", body=BODY)
        await pilot.press("ctrl+s")
        await wait_for_run(pilot, 1)
        first = received(sink, 0)
        assert first.get_content_type() == "multipart/alternative"
        plain = first.get_body(("plain",))
        html = first.get_body(("html",))
        assert plain is not None and html is not None
        assert (
            plain.get_content().replace("\r\n", "\n") == BODY
        )  # the text part is the words as typed
        assert "<h1" in html.get_content() and "<strong" in html.get_content()

        # The next message starts from the profile's default again; F9 turns it off.
        assert box.value
        await fill_draft(pilot, to="bob@example.test", subject="Plain", body=BODY)
        await pilot.press("f9")
        assert not box.value
        await pilot.press("ctrl+s")
        await wait_for_run(pilot, 2)
        assert received(sink, 1).get_content_type() == "text/plain"


async def test_the_preview_shows_the_body_rendered_and_leaves_it_as_typed() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await fill_draft(pilot, subject="Plans", body=BODY)
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, MarkdownPreview), "the preview")
        preview = app.screen.query_one("#markdown-preview", Markdown)
        assert preview.source == BODY
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, MarkdownPreview), "it to close")
        assert app.screen.query_one("#body", TextArea).text == BODY
