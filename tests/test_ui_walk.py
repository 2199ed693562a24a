"""What a new user meets walking the whole app once: every key, word and row true.

Each test drives the app as a user would (keys, clicks, pastes) and reads
what is on screen, against real servers on 127.0.0.1 where mail is sent.
"""

from __future__ import annotations

import socket
from pathlib import Path

from rich.cells import cell_len
from textual.widgets import Button, DataTable, Input, Static, TextArea

from tests.cli_helpers import run_tuimail
from tests.smtpservers import ServerThread, Sink
from tests.ui_support import (
    fill_draft,
    open_mailboxes,
    open_monitor,
    paste,
    save_profile,
    screen_text,
    static_text,
    wait_for,
    wait_for_mailboxes,
    wait_for_run,
)
from tuimail.drafts import DraftStore
from tuimail.outbox import Outbox
from tuimail.probe import ProbeTarget
from tuimail.sandbox import SandboxConfig
from tuimail.targets import TargetStore
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.screens.mailboxes import MailboxesScreen

NARROW = (80, 24)
TINY = (40, 12)


# -- Compose -------------------------------------------------------------------------


async def test_the_more_toggle_is_wide_enough_to_say_hidden_fields_are_in_use() -> None:
    save_profile(name="local", host="127.0.0.1", port=2599, security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        toggle = app.screen.query_one("#more-toggle", Button)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.has_class("-more"), "the more fields")
        await paste(pilot, "Replies <replies@example.test>")
        # The footer names what the key does both ways, whichever way it goes next.
        assert "More/less" in screen_text(app)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app.screen.has_class("-more"), "the fields hidden")
        await pilot.pause()
        label = str(toggle.label)
        assert label.endswith("(in use)")
        assert toggle.size.width >= cell_len(label)
        assert "(in use)" in screen_text(app)


async def test_enter_in_a_one_line_field_moves_to_the_next_and_never_sends(
    servers: ServerThread,
) -> None:
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.click("#input-from")
        order = []
        for _field in range(5):
            assert app.focused is not None
            order.append(app.focused.id)
            await pilot.press("enter")
        assert order == ["input-from", "input-to", "input-cc", "input-bcc", "subject"]
        assert app.focused is not None and app.focused.id == "body"
        assert app.screen.query_one("#body", TextArea).text == ""
        # The hidden fields join the walk once shown.
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.has_class("-more"), "the more fields")
        await pilot.click("#input-reply-to")
        await pilot.press("enter")
        assert app.focused is not None and app.focused.id == "headers"
        await pilot.pause(0.3)
        assert not app.model.history.runs and not sink.messages


# -- F3 --------------------------------------------------------------------------------


async def test_f3_greys_export_until_there_is_a_session(servers: ServerThread) -> None:
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(Sink()), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        transcript = app.screen
        assert transcript.check_action("export", ()) is None
        await pilot.press("f2")
        await fill_draft(pilot, to="bob@example.test", subject="One", body="Hi")
        await pilot.press("ctrl+s")
        await wait_for_run(pilot)
        assert transcript.check_action("export", ()) is True


async def test_a_multi_line_server_reply_reads_as_lines_in_compose_and_f3(
    servers: ServerThread,
) -> None:
    sink = Sink(data_reply="554-5.7.1 first line\r\n554 5.7.1 second line")
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="One", body="Hi")
        await pilot.press("ctrl+s")
        await wait_for_run(pilot)
        status = static_text(app, "#send-status")
        assert "first line\n5.7.1 second line" in status and "\\x0a" not in status
        await pilot.press("f3")
        await pilot.pause()
        failure = static_text(app, "#failure")
        assert "first line\n5.7.1 second line" in failure and "\\x0a" not in failure


# -- F5 --------------------------------------------------------------------------------


async def test_the_sandbox_status_shows_its_lines_as_lines(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = SandboxConfig(port=taken.getsockname()[1], maildir=tmp_path / "maildir")
        app = TuimailApp(sandbox_config=config)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.model.sandbox_note, "the sandbox to give up")
            await pilot.press("f5")
            status = app.screen.query_one("#sandbox-status", Static)
            await wait_for(pilot, lambda: "Mail kept in" in str(status.content), "F5's status")
            text = str(status.content)
            assert "\\x0a" not in text
            assert "\nMail kept in" in text


# -- F6 --------------------------------------------------------------------------------


async def test_a_mail_domain_whose_lookup_fails_is_critical_in_its_row(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    dns_port = servers.dns({})  # every name: NXDOMAIN
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(
        f'[monitor]\ninterval = 0\ndns_server = "127.0.0.1:{dns_port}"\n'
    )
    TargetStore().save(ProbeTarget(host="nomx.invalid", port=25, mx=True, name="t1"))
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot)
        table = screen.query_one("#targets", DataTable)
        row = next(i for i in range(table.row_count) if str(table.get_row_at(i)[1]) == "t1")
        await pilot.press("r")
        await wait_for(pilot, lambda: str(table.get_row_at(row)[0]) != "MX", "the lookup")
        cells = [str(value) for value in table.get_row_at(row)]
        assert cells[0] == "CRITICAL"
        assert "nomx.invalid does not exist (NXDOMAIN)" in cells[4]
        table.move_cursor(row=row)
        await pilot.pause()
        detail = str(screen.query_one("#monitor-detail", Static).content)
        assert "t1: CRITICAL" in detail and "NXDOMAIN" in detail
        # Told once, not again at every round.
        [(key, (_problem, first))] = screen.mx_problems.items()
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.mx_problems[key][1] != first, "the next round")
        told = [n for n in app._notifications if "NXDOMAIN" in n.message]
        assert len(told) == 1


# -- F7 --------------------------------------------------------------------------------


def queue_from_the_command_line(subject: str) -> None:
    """``tuimail send --server`` to a port nobody listens on: the message is queued."""
    result = run_tuimail(
        "send", "--server", "127.0.0.1:1", "--security", "none", "--from", "a@example.test",
        "--to", "b@example.test", "--subject", subject, "--body", "hello",
    )  # fmt: skip
    assert result.returncode == 75, result.stderr


async def test_f7_gives_its_table_the_keys_and_greys_those_of_an_empty_tab() -> None:
    queue_from_the_command_line("First")
    queue_from_the_command_line("Second")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, MailboxesScreen), "F7")
        screen = await wait_for_mailboxes(pilot)
        table = screen.query_one("#outbox-table", DataTable)
        assert app.focused is table
        # Two messages to one address, told apart by their subjects.
        assert {str(table.get_row_at(row)[2]) for row in (0, 1)} == {"First", "Second"}
        await pilot.press("down")
        assert table.cursor_row == 1
        assert screen.check_action("edit", ()) is True
        # Right: the next tab, its table focused; the Drafts tab is empty.
        await pilot.press("right")
        await wait_for(pilot, lambda: screen.current_tab == "tab-drafts", "the Drafts tab")
        await pilot.pause()
        assert app.focused is screen.query_one("#drafts-table", DataTable)
        assert screen.check_action("open_draft", ()) is None  # greyed: no draft to open
        assert screen.check_action("delete", ()) is None
        await pilot.press("left")
        await wait_for(pilot, lambda: screen.current_tab == "tab-outbox", "the Outbox tab")
        await pilot.pause()
        assert app.focused is table


async def test_an_empty_outbox_offers_no_keys_to_act_on_a_row() -> None:
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_mailboxes(pilot, "tab-outbox")
        for action in ("retry", "edit", "delete"):
            assert screen.check_action(action, ()) is None, action


async def test_editing_a_command_line_message_says_its_server_will_not_be_used() -> None:
    queue_from_the_command_line("From the shell")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_mailboxes(pilot, "tab-outbox")
        screen.query_one("#outbox-table", DataTable).focus()
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#confirm"), "the question")
        question = screen_text(app)
        assert "127.0.0.1:1" in question and "will not be used" in question
        await pilot.press("escape")  # Cancel: nothing changes
        await wait_for(pilot, lambda: app.screen is screen, "F7 again")
        assert len(Outbox().entries()) == 1
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#confirm"), "the question again")
        await pilot.click("#confirm")
        await wait_for(pilot, lambda: app.current_mode == "compose", "Compose")
        await wait_for(pilot, lambda: "127.0.0.1:1" in static_text(app, "#send-status"), "the note")
        assert app.screen.query_one("#subject", Input).value == "From the shell"
        assert Outbox().entries() == []
        # The message has a home on disk at once: a draft, not only the form.
        [saved] = DraftStore().list()
        assert saved.draft.subject == "From the shell"


async def test_the_sent_preview_shows_reply_to_and_added_headers(servers: ServerThread) -> None:
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="Ticket", body="Hello")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.has_class("-more"), "the more fields")
        await paste(pilot, "Replies <replies@example.test>")
        await pilot.click("#headers")
        await paste(pilot, "X-Ticket: 42")
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        assert run.report is not None and run.report.ok
        screen = await open_mailboxes(pilot, "tab-sent")
        screen.query_one("#sent-table", DataTable).move_cursor(row=0)
        await wait_for(
            pilot,
            lambda: "Subject: Ticket" in str(screen.query_one("#sent-view", Static).content),
            "the preview",
        )
        lines = str(screen.query_one("#sent-view", Static).content).split("\n")
        assert "Reply-To: Replies <replies@example.test>" in lines
        assert "X-Ticket: 42" in lines
        assert not any(line.startswith("MIME-Version") for line in lines)


# -- Layout at 40x12 and after a send at 120x40 ------------------------------------------


async def test_at_40_columns_every_screen_shows_where_you_are_and_its_buttons() -> None:
    save_profile(name="local", host="127.0.0.1", port=2599, security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=TINY) as pilot:
        for key, title in [("f2", "F2 Compose"), ("f3", "F3 Transcript"), ("f4", "F4 Accounts")]:
            await pilot.press(key)
            await pilot.pause()
            top = screen_text(app).split("\n")[0]
            assert title in top, top
            assert all(f"F{n}" in top for n in range(2, 8)), top
        # F4: every button whole on screen.
        for button in app.screen.query("#account-actions Button"):
            region = button.region
            assert region.width > 0 and region.right <= TINY[0], (button.id, region)
        await pilot.press("f3")
        await pilot.pause()
        # F3: the transcript keeps most of the width.
        assert app.screen.query_one("#transcript-pane").size.width >= TINY[0] // 2


async def test_after_a_send_at_120_columns_an_attachment_is_named_whole(
    servers: ServerThread, tmp_path: Path
) -> None:
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(Sink()), security="none")
    attached = tmp_path / "hostname"
    attached.write_text("ab\n")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to="bob@example.test", subject="One", body="Hi")
        await pilot.press("ctrl+s")
        await wait_for_run(pilot)
        assert app.screen.has_class("-live")  # the transcript beside the form: half the width
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        screen._attached(attached)  # as the file picker hands it over
        await wait_for(pilot, lambda: "hostname (3 bytes, " in screen_text(app), "the name whole")
