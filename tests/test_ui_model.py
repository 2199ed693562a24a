"""The app's model seen from outside: profiles changed on disk, a bad [outbox], the live seam.

Real parts only: the profiles file is written through :class:`ProfileStore`
as ``tuimail accounts`` writes it, sends go to an aiosmtpd server on
127.0.0.1, and the app runs headless with Pilot.
"""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.widgets import DataTable, Select

from tests.smtpservers import ServerThread, Sink
from tests.ui_support import (
    fill_draft,
    save_profile,
    send_refused_by_config,
    wait_for,
    wait_for_run,
)
from tuimail import paths
from tuimail.cli.common import CLIError, retry_policy
from tuimail.outbox import Outbox
from tuimail.profiles import ProfileStore, with_changes
from tuimail.ui.app import TuimailApp
from tuimail.ui.history import RunKind, SentState
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.widgets.transcript_view import TranscriptView

WIDE = (120, 40)


def profile_choices(app: TuimailApp) -> list[str]:
    """The profile names Compose's From selector offers (Select keeps no public list)."""
    select = app.screen.query_one("#profile", Select)
    return [str(value) for _prompt, value in select._options]


async def test_a_profile_added_from_the_command_line_shows_up_when_the_app_is_focused() -> None:
    save_profile(name="first", host="127.0.0.1", port=2525, security="none")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        assert isinstance(app.screen, ComposeScreen)
        assert "second" not in profile_choices(app)

        save_profile(name="second", host="mail.example.test", port=587, security="starttls")
        app.post_message(events.AppFocus())  # back from the terminal that ran the command

        await wait_for(pilot, lambda: "second" in profile_choices(app), "Compose to list it")
        assert app.model.saved_profiles["second"].host == "mail.example.test"
        await pilot.press("f4")
        table = app.screen.query_one("#profiles", DataTable)
        await wait_for(pilot, lambda: "second" in table.rows, "Accounts to list it")


async def test_a_profile_edited_on_disk_shows_up_without_focus_events() -> None:
    """A terminal that does not report focus: the app looks at the file on a timer."""
    saved = save_profile(name="work", host="old.example.test", port=587, security="starttls")
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("f4")
        table = app.screen.query_one("#profiles", DataTable)
        assert "old.example.test" in str(table.get_row("work"))

        ProfileStore().save(with_changes(saved, host="new.example.test"), replace_name="work")

        await wait_for(
            pilot, lambda: "new.example.test" in str(table.get_row("work")), "the edited row"
        )


def local_server(servers: ServerThread) -> Sink:
    """An SMTP server on 127.0.0.1 and the saved profile "local" that sends to it."""
    sink = Sink()
    save_profile(name="local", host="127.0.0.1", port=servers.smtp(sink), security="none")
    return sink


def write_bad_outbox_config() -> str:
    config = paths.config_dir()
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text("[outbox]\nfirst_delay = -5\n")
    try:
        retry_policy()
    except CLIError as exc:
        return str(exc)
    raise AssertionError("the command line accepted a bad [outbox]")


async def test_a_bad_outbox_table_refuses_the_send_in_the_command_lines_words(
    servers: ServerThread,
) -> None:
    words = write_bad_outbox_config()
    assert words.startswith("config.toml [outbox]: first_delay")
    sink = local_server(servers)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        said = [str(n.message) for n in app._notifications]
        assert any(words in message for message in said), said

        await send_refused_by_config(pilot, words)
    assert sink.messages == []
    assert Outbox().entries() == []


async def test_the_live_seam_says_what_the_views_show(servers: ServerThread) -> None:
    """What benchmarks observe: views following live sessions, their entries, idleness."""
    local_server(servers)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=WIDE) as pilot:
        live = app.screen.query_one("#live-view", TranscriptView)
        assert live in app.model.live_views
        await fill_draft(pilot, to="bob@example.test", subject="Hello", body="Hi")
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
        assert run.kind is RunKind.SEND and run.outbox_state is SentState.SENT
        await wait_for(pilot, lambda: app.is_idle, "the app to be idle")
        assert app.model.live_backlog == 0
        assert live.backlog == 0
        assert live.shown_entries == len(run.transcript)


def test_screens_widgets_and_the_model_never_import_the_app() -> None:
    """One way: the app imports screens and the model; nothing imports the app back.

    Not even for type checking: a two-way dependency is a cycle in the import
    picture whether or not it runs.
    """
    import ast

    import tuimail.ui

    ui = Path(tuimail.ui.__file__).parent
    importers = []
    for path in sorted(ui.rglob("*.py")):
        if path.name == "app.py" and path.parent == ui:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "tuimail.ui.app":
                importers.append(str(path.relative_to(ui)))
            if isinstance(node, ast.Import) and any(a.name == "tuimail.ui.app" for a in node.names):
                importers.append(str(path.relative_to(ui)))
    assert importers == []
