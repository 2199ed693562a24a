""".eml files in Compose (palette): one opened into the form (headers, text, other parts
as attachments), and the form saved as one in the exports folder, read back."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from tests.ui_support import fill_draft, paste, save_profile, static_text, type_text, wait_for
from tuimail import paths
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.widgets.address_field import AddressField


async def palette(pilot: Pilot[None], words: str) -> None:
    await pilot.press("ctrl+p")
    await type_text(pilot, words)
    await pilot.pause(0.3)
    await pilot.press("enter")


async def test_an_eml_file_opens_in_compose(tmp_path: Path) -> None:
    save_profile(name="local", host="127.0.0.1", port=2, security="none")
    message = EmailMessage()
    message["From"] = "Help Desk <help@example.test>"
    message["To"] = "Bob <bob@example.test>"
    message["Subject"] = "Prepared"
    message.set_content("Written elsewhere.\n")
    message.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="data.csv")
    eml = tmp_path / "prepared.eml"
    eml.write_bytes(message.as_bytes(policy=policy.SMTP))
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await palette(pilot, "open an .eml")
        await wait_for(pilot, lambda: not isinstance(app.screen, ComposeScreen), "the picker")
        await paste(pilot, str(eml))
        await pilot.press("enter")
        subject = app.screen.query_one("#subject", Input)
        await wait_for(pilot, lambda: subject.value == "Prepared", "the message in the form")
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        assert "bob@example.test" in screen.query_one("#field-to", AddressField).value
        assert "help@example.test" in screen.query_one("#field-from", AddressField).value
        assert screen.query_one("#body", TextArea).text == "Written elsewhere.\n"
        assert [p.name for p in screen.attachments] == ["data.csv"]
        assert screen.attachments[0].read_bytes().replace(b"\r\n", b"\n") == b"a,b\n1,2\n"


async def test_the_draft_is_saved_as_eml_in_the_exports_folder() -> None:
    save_profile(name="local", host="127.0.0.1", port=2, security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Keep", body="Kept as a file")
        app.screen.query_one("#field-bcc", AddressField).value = "audit@example.test"
        await palette(pilot, "save the draft as .eml")
        await wait_for(
            pilot, lambda: "draft saved as" in static_text(app, "#send-status"), "the save"
        )
        [saved] = list(paths.exports_dir().glob("draft-*.eml"))
        assert saved.stat().st_mode & 0o077 == 0
        parsed = message_from_bytes(saved.read_bytes(), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        assert parsed["To"] == "bob@example.test" and parsed["Subject"] == "Keep"
        assert parsed["Bcc"] == "audit@example.test"  # a draft keeps every recipient
        body = parsed.get_body(("plain",))
        assert body is not None and body.get_content().strip() == "Kept as a file"
