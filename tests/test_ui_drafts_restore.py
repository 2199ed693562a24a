"""A draft left in Compose comes back there at the next start, the cursor where writing
stopped; a draft put aside (sent, or a new message begun) stays in F7's list.

The draft store is read in a thread (tests/test_ui_loop_io.py checks the loop
touches no file); these tests save drafts through :class:`DraftStore` on disk
as the app does, then start the app.
"""

from __future__ import annotations

from textual.widgets import DataTable, Input, TextArea

from tests.ui_support import open_mailboxes, static_text, wait_for, wait_for_saves
from tuimail.drafts import DraftStore, SavedDraft
from tuimail.message import Draft
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen

BODY = "Dear Ann,\nthe minutes are attached\nand the next meeting is"


def save(subject: str, profile: str = "") -> SavedDraft:
    saved = SavedDraft(
        DraftStore.new_id(), profile, Draft(to=["ann@example.com"], subject=subject, body=BODY)
    )
    DraftStore().save(saved)
    return saved


def body_at_end(app: TuimailApp) -> bool:
    body = app.screen.query_one("#body", TextArea)
    return app.focused is body and body.cursor_location == body.document.end


async def test_the_draft_left_in_compose_is_reopened_at_start() -> None:
    save("Minutes")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(
            pilot, lambda: app.screen.query_one("#subject", Input).value == "Minutes", "the draft"
        )
        assert isinstance(app.screen, ComposeScreen)
        assert app.screen.query_one("#body", TextArea).text == BODY
        status = static_text(app, "#send-status")
        assert status.startswith("Reopened your draft from ")
        assert "F7 lists all drafts" in status
        await pilot.pause()
        assert body_at_end(app)
        await pilot.press("space", "w")  # writing goes on where it stopped
        assert app.screen.query_one("#body", TextArea).text == BODY + " w"


async def test_the_draft_keeps_its_own_profile_over_the_one_asked_for() -> None:
    save("Minutes", profile="sandbox")
    app = TuimailApp(start_sandbox=False, profile="nosuch")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(
            pilot, lambda: app.screen.query_one("#subject", Input).value == "Minutes", "the draft"
        )
        screen = app.screen
        assert isinstance(screen, ComposeScreen) and screen.profile is not None
        assert screen.profile.name == "sandbox"


async def test_a_draft_put_aside_with_a_new_message_is_not_reopened() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.click("#subject")
        await pilot.press("A", "s", "i", "d", "e")
        await pilot.press("ctrl+n")
        await wait_for_saves(pilot)
    assert [d.draft.subject for d in DraftStore().list()] == ["Aside"]
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        await wait_for(
            pilot, lambda: not any(w.group == "drafts" for w in app.workers), "the drafts read"
        )
        await pilot.pause()
        assert app.screen.query_one("#subject", Input).value == ""


async def test_a_draft_opened_from_f7_has_the_cursor_at_the_end_of_its_body() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        save("From F7")
        screen = await open_mailboxes(pilot, "tab-drafts")
        table = screen.query_one("#drafts-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, "the draft in F7")
        table.focus()
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen), "Compose")
        await pilot.pause()
        assert app.screen.query_one("#subject", Input).value == "From F7"
        assert body_at_end(app)


async def test_typing_before_the_draft_is_read_is_kept() -> None:
    """The draft is read in a thread: what the user typed meanwhile is not replaced."""
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("b", "o", "b")
        app.model.open_draft(SavedDraft("abc", "", Draft(subject="Old")), "note", unasked=True)
        await pilot.pause()
        assert app.screen.query_one("#input-to", Input).value == "bob"
        assert app.screen.query_one("#subject", Input).value == ""
