"""Text from a draft file reaches Compose's fields escaped, never as terminal commands.

Input and TextArea draw their value as it is: an ESC in a draft file (which
anyone may edit, or a queued message turned back into a draft) went to the
terminal raw and was obeyed, as were bidi overrides.
"""

from __future__ import annotations

from tests.test_ui_hostile import EVIL, rendered
from tests.ui_support import wait_for
from tuimail.drafts import SavedDraft
from tuimail.message import Draft
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen


async def test_control_characters_in_a_draft_are_shown_escaped() -> None:
    draft = Draft(
        to=["b@example.com", "c" + EVIL + "@example.com"],
        subject="S" + EVIL + "\u202eX",
        body="line one\nB" + EVIL + "\u202eY\n\ttabbed, 10\u00a0€, co\u00adop, \u200f",
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.switch_mode("compose")
        app.model.open_draft(SavedDraft("abc", "", draft))
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "Compose")
        await pilot.pause()
        out = rendered(app)
        assert "\x1b" not in out and "\u202e" not in out
        assert "\\x1b]0;pwned" in out  # shown, not dropped
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        # Line ends, tabs, a no-break space, a soft hyphen and an RLM are what was written.
        assert "\n\ttabbed, 10\u00a0€, co\u00adop, \u200f" in screen.draft().body
        assert "control characters" in str(screen.query_one("#send-status").render())


async def test_a_paste_with_control_characters_is_shown_escaped() -> None:
    from textual.widgets import Input, TextArea

    from tests.ui_support import paste

    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "Compose")
        await pilot.pause()
        subject = app.screen.query_one("#subject", Input)
        subject.focus()
        await paste(pilot, "S" + EVIL + "\u202eX")
        body = app.screen.query_one("#body", TextArea)
        body.focus()
        await paste(pilot, "one\r\nB" + EVIL + "\n\ttwo\u00a0three")
        await pilot.pause()
        out = rendered(app)
        assert "\x1b" not in out and "\u202e" not in out
        assert subject.value == "S\\x1b]0;pwned\\x07\\x1b[2J\\u202eX"
        assert body.text == "one\nB\\x1b]0;pwned\\x07\\x1b[2J\n\ttwo\u00a0three"
