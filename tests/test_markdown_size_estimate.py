"""Compose's size as sent counts the HTML part that Markdown adds.

A Markdown message goes as multipart/alternative: the text as typed and its HTML
rendering (tuimail/markdown_body.py), inline styles and all, often several times
the text. Compose's estimate, and so the server-SIZE warning before sending,
counted the text alone: a message far past the limit went out unasked and the
server refused it. The estimate is compared here with the bytes
:func:`build_message` really makes, and the rendering is checked to run off the
app's loop (in a worker).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

import pytest
from textual.widgets import Checkbox, TextArea

from tests.smtpservers import ServerThread, Sink
from tests.test_ui_compose_sizes import attach, files, item_texts
from tests.ui_support import fill_draft, save_profile, static_text, wait_for
from tuimail import markdown_body
from tuimail.message import Draft, build_message
from tuimail.size_limits import (
    body_wire_size,
    estimated_wire_size,
    measure_attachment,
    remember,
    server_key,
)
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.screens.dialogs import ConfirmDialog

TWO_DAYS = 2 * 86400 + 600
#: Headings: each a few characters of text, an inline-styled <h1> in the HTML.
HEADINGS = "# A heading\n\nSome *text* with `code` and [a link](https://example.test/).\n\n"
#: What the estimate may add to the real size (headers it allows for, boundaries).
SLACK = 3000


@pytest.mark.parametrize(
    "body",
    [
        HEADINGS * 1000,
        "- naïve\n- résumé ☃\n\n> quoted\n\n```\ncode = 1\n```\n" * 800,
        "a" * 300 + "\n" + "é" * 5000 + "\r\n",  # long lines: quoted-printable or base64
        "Short.",
    ],
)
def test_the_estimate_matches_the_built_message(body: str, tmp_path: Path) -> None:
    [photo] = files(tmp_path, photo=20_000)
    wire = [measure_attachment(photo).wire]
    for markdown in (True, False):
        draft = Draft(
            from_address="me@example.test",
            to=["bob@example.test"],
            subject="Report",
            body=body,
            attachments=[photo],
            markdown=markdown,
        )
        built = len(build_message(draft).to_bytes())
        estimate = estimated_wire_size(
            body, wire, body_wire=body_wire_size(body, markdown=markdown)
        )
        assert built <= estimate <= built + SLACK, (markdown, built, estimate)


def _kilobytes(words: str) -> float:
    found = re.search(r"about ([\d.]+) kB as sent", words)
    assert found, words
    return float(found.group(1)) * 1000


async def test_compose_warns_of_the_html_part_and_renders_off_the_loop(
    servers: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """About 30 kB of Markdown text and a small file, 100 kB allowed: the HTML makes it
    about 190 kB, so the total is marked and Send asks first (Enter cancels)."""
    rendered_on: list[bool] = []
    render = markdown_body.render_html

    def watched(text: str) -> str:
        rendered_on.append(threading.current_thread() is threading.main_thread())
        return render(text)

    monkeypatch.setattr(markdown_body, "render_html", watched)
    sink = Sink()
    port = servers.smtp(sink, data_size_limit=100_000)
    save_profile(name="local", host="127.0.0.1", port=port, security="none")
    remember("local", server_key("127.0.0.1", port), {"size": "100000"}, now=time.time() - TWO_DAYS)
    [notes] = files(tmp_path, notes=1500)
    body = HEADINGS * 400
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Figures")
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        screen.query_one("#body", TextArea).load_text(body)
        await pilot.press("f9")
        assert screen.query_one("#markdown", Checkbox).value
        await attach(pilot, notes)
        await wait_for(pilot, lambda: "…" not in "".join(item_texts(app)), "the size")
        await wait_for(
            pilot,
            lambda: "not counted yet" not in static_text(app, "#attachments-total"),
            "the HTML part measured",
        )
        total = static_text(app, "#attachments-total")
        # Built in a thread, as the app builds it: the check of the loop stays true.
        built = len((await asyncio.to_thread(build_message, screen.draft())).to_bytes())
        assert built > 150_000  # the HTML, several times the text
        assert total.startswith("⚠ "), total
        assert built - 100 <= _kilobytes(total) <= built + SLACK, (built, total)

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the warning")
        question = str(app.screen.query_one(".question").render())
        assert "accepted at most 100 kB" in question, question
        assert built - 100 <= _kilobytes(question) <= built + SLACK, (built, question)
        await pilot.press("enter")  # Cancel has the focus
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "compose")
        assert not app.model.busy and sink.messages == []
        # A short body: once typing pauses, the size as sent follows it.
        screen.query_one("#body", TextArea).load_text("Short.")
        await wait_for(
            pilot,
            lambda: static_text(app, "#attachments-total").startswith("Total "),
            "the total without the long body",
        )
    assert rendered_on and not any(rendered_on), rendered_on


async def test_send_waits_for_the_measuring_once_and_sends_nothing_changed_meanwhile(
    servers: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The measuring is held open by the test: a second Send adds nothing, and a body
    changed before it ends is not sent unseen (the status says so)."""
    from tuimail.ui.screens import compose

    gate = threading.Event()
    calls: list[str] = []

    def held(body: str, *, markdown: bool) -> int:
        calls.append(body)
        assert gate.wait(10), "the test never opened the gate"
        return body_wire_size(body, markdown=markdown)

    monkeypatch.setattr(compose, "body_wire_size", held)
    sink = Sink()
    port = servers.smtp(sink, data_size_limit=100_000)
    save_profile(name="local", host="127.0.0.1", port=port, security="none")
    remember("local", server_key("127.0.0.1", port), {"size": "100000"}, now=time.time() - TWO_DAYS)
    [notes] = files(tmp_path, notes=1500)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Figures", body="# Hi")
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        await pilot.press("f9")
        await attach(pilot, notes)
        await wait_for(pilot, lambda: "…" not in "".join(item_texts(app)), "the size")
        await wait_for(pilot, lambda: len(calls) == 1, "the total's measuring")
        await pilot.press("ctrl+s")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(calls) == 2, "Send's measuring")
        assert "Measuring the message" in static_text(app, "#send-status")
        screen.query_one("#body", TextArea).load_text("# Something else")
        gate.set()
        await wait_for(
            pilot,
            lambda: "changed while it was measured" in static_text(app, "#send-status"),
            "the refusal",
        )
        await app.workers.wait_for_complete()
        assert len(calls) <= 3  # the two above, and the total's for the new body at most
        assert not app.model.busy
    assert sink.messages == []
