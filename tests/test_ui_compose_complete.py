"""Address completion in Compose's To, Cc and Bcc, as the user types.

The suggestions come from what was really sent (through an aiosmtpd Sink on
127.0.0.1, so the outbox's ``sent/`` holds real messages) and from an
address-book command (a small script, as khard or abook would be), one of
which hangs: typing goes on while it does, since the look-ups run in threads.
"""

from __future__ import annotations

import stat
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input

from tests.smtpservers import ServerThread, Sink
from tests.ui_support import fill_draft, save_profile, type_text, wait_for, wait_for_run
from tuimail import paths
from tuimail.ui.app import TuimailApp
from tuimail.ui.widgets.address_field import AddressField

NARROW = (80, 24)


def field(app: TuimailApp, name: str) -> AddressField:
    return app.screen.query_one(f"#field-{name}", AddressField)


def addresses_offered(app: TuimailApp, name: str) -> list[str]:
    return [s.address for s in field(app, name).suggestions]


def address_book(tmp_path: Path, script: str) -> None:
    """``script`` (sh) as the address-book command in config.toml."""
    command = tmp_path / "book.sh"
    command.write_text("#!/bin/sh\n" + script)
    command.chmod(command.stat().st_mode | stat.S_IXUSR)
    config = paths.config_dir()
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(f'[compose]\naddress_book_cmd = "{command} %s"\n')


async def send(pilot: Pilot[None], count: int, to: str) -> None:
    await fill_draft(pilot, to=to, subject=f"Message {count}", body="Hello")
    await pilot.press("ctrl+s")
    run = await wait_for_run(pilot, count)
    assert run.report is not None and run.report.delivery is not None


async def test_addresses_sent_to_are_offered_and_accepted_with_tab_or_enter(
    servers: ServerThread,
) -> None:
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await send(pilot, 1, "Carol Example <carol@example.test>")
        await send(pilot, 2, "carl@example.test, Dan <dan@example.test>")
        assert len(sink.messages) == 2

        # To has the focus after a send; typing "car" offers both, names shown.
        await pilot.click("#input-to")
        await type_text(pilot, "car")
        await wait_for(pilot, lambda: field(app, "to").suggesting, "the list under To")
        assert sorted(addresses_offered(app, "to")) == ["carl@example.test", "carol@example.test"]
        # Down, then Tab: the second goes in, and the list closes.
        chosen = field(app, "to").suggestions[1]
        await pilot.press("down", "tab")
        assert field(app, "to").value == chosen.text
        assert not field(app, "to").suggesting
        assert app.focused is app.screen.query_one("#input-to", Input)  # Tab accepted, no move

        # After a comma, the next address is completed; Enter accepts it.
        await type_text(pilot, ", da")
        await wait_for(pilot, lambda: addresses_offered(app, "to") == ["dan@example.test"], "Dan")
        await pilot.press("enter")
        assert field(app, "to").value == f'{chosen.text}, "Dan" <dan@example.test>'
        assert field(app, "to").validate()

        # Escape closes the list; then Enter moves on to Cc, as it does without one.
        await type_text(pilot, ", c")
        await wait_for(pilot, lambda: field(app, "to").suggesting, "the list again")
        await pilot.press("escape")
        assert not field(app, "to").suggesting
        await pilot.press("enter")
        assert app.focused is app.screen.query_one("#input-cc", Input)

        # Cc and Bcc complete too; leaving the field closes the list.
        await type_text(pilot, "dan")
        await wait_for(pilot, lambda: field(app, "cc").suggesting, "the list under Cc")
        await pilot.press("tab", "tab")
        await type_text(pilot, "carol")
        await wait_for(pilot, lambda: field(app, "bcc").suggesting, "the list under Bcc")
        await pilot.click("#subject")
        assert not field(app, "bcc").suggesting


async def test_an_address_book_command_is_asked_and_a_hanging_one_never_blocks_typing(
    tmp_path: Path,
) -> None:
    started = tmp_path / "hanging"
    address_book(
        tmp_path,
        f'case "$1" in\n'
        f"  h*) touch {started}; exec sleep 30 ;;\n"
        f"  *) printf 'erin@example.test\\tErin Book\\n' ;;\n"
        f"esac\n",
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.click("#input-to")
        await type_text(pilot, "er")
        await wait_for(pilot, lambda: addresses_offered(app, "to") == ["erin@example.test"], "Erin")
        assert field(app, "to").suggestions[0].name == "Erin Book"
        await pilot.press("tab")
        assert field(app, "to").value == '"Erin Book" <erin@example.test>'

        # The command hangs for "h...": the keys typed meanwhile all reach the field.
        await pilot.click("#input-cc")
        await type_text(pilot, "h")
        await wait_for(pilot, started.exists, "the address-book command to hang")
        await type_text(pilot, "annes@example.test")
        assert field(app, "cc").value == "hannes@example.test"
        assert not field(app, "cc").suggesting
