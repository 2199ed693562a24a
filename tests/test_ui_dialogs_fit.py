"""Dialogs as a newcomer meets them on a small terminal: they fit, they scroll, the footer
under them lists their own keys; and two words that were not true (deleting the built-in
sandbox, the palette's Screenshot).
"""

from __future__ import annotations

import asyncio
from typing import Any

from textual.command import CommandPalette
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import DataTable, Input

from tests.ui_support import paste, save_profile, screen_text, type_text, wait_for
from tuimail import paths
from tuimail.profiles import Security
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.accounts import AccountsScreen
from tuimail.ui.screens.dialogs import AccountDialog, ConfirmDialog

TINY = (40, 12)
NARROW = (80, 24)


def on_screen(app: TuimailApp, widget: Widget) -> bool:
    """The widget is drawn whole inside the terminal (not cut off at an edge)."""
    region = widget.region
    width, height = app.size
    return bool(region.area) and Region(0, 0, width, height).contains_region(region)


def footer_line(app: TuimailApp) -> str:
    return screen_text(app).splitlines()[-1]


async def open_add_dialog(pilot: Any) -> AccountDialog:
    app = pilot.app
    await pilot.press("f4")
    await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "F4")
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog), "the account dialog")
    await pilot.pause()
    dialog = app.screen
    assert isinstance(dialog, AccountDialog)
    return dialog


async def ask_empty_subject(pilot: Any) -> ConfirmDialog:
    """A send from Compose with no subject: the question whether to send anyway."""
    app = pilot.app
    app.screen.query_one("#input-to", Input).focus()
    await paste(pilot, "bob@example.test")
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
    await pilot.pause()
    dialog = app.screen
    assert isinstance(dialog, ConfirmDialog)
    return dialog


async def test_the_account_dialog_shows_its_fields_and_buttons_at_40x12() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=TINY) as pilot:
        dialog = await open_add_dialog(pilot)
        name = dialog.query_one("#name", Input)
        assert app.focused is name
        assert on_screen(app, name), name.region
        for button in ("#save", "#cancel"):
            assert on_screen(app, dialog.query_one(button)), button
        # The fields below scroll into view as the user moves to them.
        await type_text(pilot, "work")
        for _field in range(3):
            await pilot.press("tab")
        await pilot.pause()
        assert app.focused is not None and on_screen(app, app.focused), app.focused
        assert name.value == "work"


def relay_app() -> TuimailApp:
    """On a saved profile (the sandbox is not started in these tests): nothing is sent,
    the question comes first."""
    save_profile(name="relay", host="relay.example.test", port=25, security=Security.NONE)
    return TuimailApp(profile="relay", start_sandbox=False)


async def test_the_empty_subject_question_fits_at_40x12() -> None:
    app = relay_app()
    async with app.run_test(size=TINY) as pilot:
        dialog = await ask_empty_subject(pilot)
        for button in ("#confirm", "#cancel"):
            assert on_screen(app, dialog.query_one(button)), button
        assert "Send anyway?" in screen_text(app)


async def test_the_footer_under_a_dialog_lists_the_dialogs_keys() -> None:
    app = relay_app()
    async with app.run_test(size=NARROW) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "F4")
        await pilot.pause()
        assert "Add" in footer_line(app)  # the screen's own keys, while it is in front
        await open_add_dialog(pilot)
        footer = footer_line(app)
        assert "esc Cancel" in footer, footer
        for screen_key in ("Add", "Edit", "Delete", "Test"):
            assert screen_key not in footer, footer
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "F4 again")

        await pilot.press("f2")
        await ask_empty_subject(pilot)
        footer = footer_line(app)
        assert "esc Cancel" in footer and "Send" not in footer and "More" not in footer, footer


async def test_deleting_the_built_in_sandbox_says_it_is_built_in() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), "F4")
        table = app.screen.query_one("#profiles", DataTable)
        table.move_cursor(row=[str(k.value) for k in table.rows].index("sandbox"))
        await pilot.press("d")
        await pilot.pause()
        said = [str(n.message) for n in app._notifications]
        assert any("built-in" in text and "cannot be deleted" in text for text in said), said
        assert not isinstance(app.screen, ConfirmDialog)


async def test_the_palettes_screenshot_lands_in_the_exports_folder_and_says_where() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await type_text(pilot, "screenshot")
        await wait_for(pilot, lambda: "Screenshot" in screen_text(app), "the command")
        await pilot.press("enter")
        exports = paths.exports_dir()

        def saved() -> list[str]:
            return [str(n.message) for n in app._notifications if n.title == "Screenshot"]

        await wait_for(pilot, saved, "the screenshot's notice")
        [notice] = saved()
        written = await asyncio.to_thread(lambda: sorted(exports.glob("*.svg")))
        assert len(written) == 1, notice
        assert notice == f"Saved the screenshot to {written[0]}"
        svg = await asyncio.to_thread(written[0].read_text)
        assert svg.startswith("<svg")
        assert (await asyncio.to_thread(exports.stat)).st_mode & 0o777 == 0o700
