"""Templates in Compose, from the palette: the config dir's ``templates/`` files, their
``$name`` fields filled (never anything else), what was typed kept."""

from __future__ import annotations

from datetime import date

from textual.widgets import Input, TextArea

from tests.ui_support import save_profile, type_text, wait_for
from tuimail import paths
from tuimail.ui.app import TuimailApp
from tuimail.ui.widgets.address_field import AddressField


async def test_a_template_from_the_palette_fills_the_form() -> None:
    save_profile(name="local", host="127.0.0.1", port=2, security="none")
    templates = paths.config_dir() / "templates"
    templates.mkdir(parents=True)
    (templates / "weekly").write_text(
        "Subject: Weekly report $date\nCc: boss@example.test\n\nHello $to_names,\n${__class__}\n"
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.click("#input-to")
        await type_text(pilot, "Bob <bob@example.test>")
        await pilot.press("ctrl+p")
        await type_text(pilot, "template weekly")
        await pilot.pause(0.3)
        await pilot.press("enter")
        subject = app.screen.query_one("#subject", Input)
        await wait_for(pilot, lambda: subject.value.startswith("Weekly report"), "the template")
        assert subject.value == f"Weekly report {date.today().isoformat()}"
        assert app.screen.query_one("#field-to", AddressField).value == "Bob <bob@example.test>"
        assert app.screen.query_one("#field-cc", AddressField).value == "boss@example.test"
        body = app.screen.query_one("#body", TextArea).text
        assert body == "Hello Bob,\n${__class__}\n"  # only the known fields are filled
