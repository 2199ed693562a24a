"""Attack review of "Save the draft as .eml": a Bcc with a long name that is not ASCII
(several encoded words) is written with CRLF line ends only, so the file opens again and
``tuimail send --eml FILE -t`` delivers it (a real process, a real server), Bcc hidden."""

from __future__ import annotations

from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.smtpservers import ServerThread, Sink
from tests.test_ui_compose_eml import palette
from tests.ui_support import fill_draft, save_profile, static_text, wait_for
from tuimail import paths
from tuimail.cli import exitcodes
from tuimail.eml import draft_from_eml
from tuimail.ui.app import TuimailApp
from tuimail.ui.widgets.address_field import AddressField

LONG_NAME = "Jöhann Wölfgang Ämadeus Mözart, Длинное Имя Очень Длинное"


async def test_a_saved_draft_with_a_long_non_ascii_bcc_name_is_sent_with_t(
    servers: ServerThread, tmp_path: Path
) -> None:
    save_profile(name="local", host="127.0.0.1", port=2, security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Keep", body="Kept as a file")
        bcc = app.screen.query_one("#field-bcc", AddressField)
        bcc.value = f'"{LONG_NAME}" <audit@example.test>'
        await palette(pilot, "save the draft as .eml")
        await wait_for(
            pilot, lambda: "draft saved as" in static_text(app, "#send-status"), "the save"
        )
    [saved] = list(paths.exports_dir().glob("draft-*.eml"))
    data = saved.read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")  # no bare LF: CRLF line ends only
    [opened] = draft_from_eml(data, tmp_path / "parts").bcc
    # Python 3.11's address parser keeps the space between two encoded words of one
    # name (RFC 2047 drops it): compared without spaces, as tuimail/message.py does.
    assert opened.endswith(" <audit@example.test>")
    assert "".join(opened.split()).strip('"').startswith("".join(LONG_NAME.split()))

    sink = Sink()
    port = servers.smtp(sink)
    result = run_tuimail(
        "send", "--server", f"127.0.0.1:{port}", "--security", "none", "--eml", str(saved), "-t"
    )
    assert result.returncode == exitcodes.OK, result.stderr
    [received] = sink.messages
    assert sorted(received.rcpt_tos) == ["audit@example.test", "bob@example.test"]
    assert b"\r\nBcc:" not in received.content and b"audit@" not in received.content
