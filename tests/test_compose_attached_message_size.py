"""Review: an attached message (.eml, a forward as attachment) counts as it is sent.

tuimail/message.py carries a saved message as message/rfc822 in 7bit or 8bit, byte
for byte, but Compose counted it as base64 (a third larger): a 600 kB .eml under a
700 kB limit was shown past it, and Send asked first. The estimate is compared here
with the bytes :func:`build_message` really makes, and Compose sends such a message
to a real server whose SIZE it fits without asking.
"""

from __future__ import annotations

import os
import time
from email.message import EmailMessage
from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.smtpservers import ServerThread, Sink
from tests.test_ui_compose_sizes import attach, item_texts
from tests.ui_support import fill_draft, save_profile, static_text, wait_for, wait_for_run
from tuimail.cli import exitcodes
from tuimail.message import Draft, build_message
from tuimail.size_limits import (
    estimated_wire_size,
    measure_attachment,
    remember,
    server_key,
    size_words,
)
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.screens.dialogs import ConfirmDialog

TWO_DAYS = 2 * 86400 + 600


def saved_message(
    path: Path, size: int, *, text: str = "line of the report", lf: bool = False
) -> Path:
    """A saved message of about ``size`` bytes (CRLF line ends unless ``lf``)."""
    message = EmailMessage()
    message["From"] = "Reports <reports@example.test>"
    message["To"] = "bob@example.test"
    message["Subject"] = "Monthly report"
    line = f"{text} {'x' * 60}\n"
    message.set_content(line * (size // len(line.encode())), cte="8bit")
    data = message.as_bytes()  # LF line ends
    path.write_bytes(data if lf else data.replace(b"\n", b"\r\n"))
    return path


def draft(*attachments: Path) -> Draft:
    return Draft(
        from_address="me@example.test",
        to=["bob@example.test"],
        subject="Forwarded",
        body="See the attached messages.",
        attachments=list(attachments),
    )


def test_the_estimate_matches_the_built_message(tmp_path: Path) -> None:
    cases = {
        "ascii.eml": saved_message(tmp_path / "ascii.eml", 600_000),
        "eight-bit.eml": saved_message(tmp_path / "eight-bit.eml", 300_000, text="naïve résumé"),
        # LF line ends: sent with CRLF, so a little larger than the file.
        "lf.eml": saved_message(tmp_path / "lf.eml", 200_000, lf=True),
    }
    # A file named .eml that cannot go as a message (a bare CR) goes in base64.
    broken = tmp_path / "broken.eml"
    broken.write_bytes(b"Subject: x\r\n\r\nhalf\rline\r\n" * 5000)
    cases["broken.eml"] = broken
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(os.urandom(100_000))
    cases["photo.jpg"] = photo
    for name, path in cases.items():
        measured = measure_attachment(path)
        assert measured.size == path.stat().st_size, name
        assert measured.as_message == (name not in ("broken.eml", "photo.jpg")), name
        wire = build_message(draft(path)).to_bytes()
        estimate = estimated_wire_size(draft().body, [measured.wire])
        assert len(wire) <= estimate <= len(wire) + 3000, (name, len(wire), estimate)
    everything = build_message(draft(*cases.values())).to_bytes()
    estimate = estimated_wire_size(
        draft().body, [measure_attachment(path).wire for path in cases.values()]
    )
    assert len(everything) <= estimate <= len(everything) + 5 * 3000


async def test_compose_sends_an_eml_that_fits_the_limit_without_a_false_warning(
    servers: ServerThread, tmp_path: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink, data_size_limit=700_000)
    save_profile(name="local", host="127.0.0.1", port=port, security="none")
    remember("local", server_key("127.0.0.1", port), {"size": "700000"}, now=time.time() - TWO_DAYS)
    report = saved_message(tmp_path / "report.eml", 600_000)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Forwarded", body="See it.")
        await attach(pilot, report)
        await wait_for(pilot, lambda: "…" not in "".join(item_texts(app)), "the size")
        size = size_words(report.stat().st_size)  # about 600 kB; base64 would be 810 kB
        assert item_texts(app) == [f"report.eml ({size}, {size} as sent)"]
        total = static_text(app, "#attachments-total")
        assert not total.startswith("⚠"), total
        assert "as sent (files base64-encoded, attached messages as they are)" in total
        await pilot.press("ctrl+s")
        await wait_for_run(pilot, 1)
        assert not isinstance(app.screen, ConfirmDialog)
        assert isinstance(app.screen, ComposeScreen)
    # The server with that very limit took it: the warning would have been wrong.
    [received] = sink.messages
    assert 600_000 < len(received.content) < 700_000


def test_send_warns_by_the_built_size_not_a_base64_guess(
    servers: ServerThread, tmp_path: Path
) -> None:
    """``tuimail send`` compares the bytes it built: no warning for an .eml that fits."""
    sink = Sink()
    port = servers.smtp(sink, data_size_limit=700_000)
    save_profile(name="local", host="127.0.0.1", port=port, security="none")
    remember("local", server_key("127.0.0.1", port), {"size": "700000"}, now=time.time() - TWO_DAYS)
    report = saved_message(tmp_path / "report.eml", 600_000)
    result = run_tuimail(
        "send", "--profile", "local", "--to", "bob@example.test", "--subject", "Fwd",
        "--body", "See it.", "--attach", str(report), "--no-queue",
    )  # fmt: skip
    assert result.returncode == exitcodes.OK, result.stderr
    assert "warning" not in result.stderr
    assert len(sink.messages) == 1
