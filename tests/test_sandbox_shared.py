"""The built-in sandbox is one per data dir, and F5 shows what its Maildir holds.

Real processes throughout: the app under Pilot, ``tuimail send`` and
``tuimail serve`` as subprocesses, sharing one isolated data dir. Whoever
starts first serves the sandbox; the others use it; when its server goes,
the next user serves it again; a ``tuimail serve`` with other settings runs
apart. Ports are free ones found by binding port 0 (config.toml's
``[sandbox] port`` points at them), never 2525 itself.
"""

from __future__ import annotations

import asyncio
import json
import mailbox
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from tests.cli_helpers import TUIMAIL, run_tuimail
from tests.test_sandbox_port import free_port, write_config
from tests.ui_support import static_text, view_lines, wait_for
from tuimail import paths
from tuimail.sandbox_profile import find_running, running_sandbox, runtime_file
from tuimail.ui import app as app_module
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.sandbox import SandboxScreen
from tuimail.ui.widgets.transcript_view import TranscriptView


def maildir() -> Path:
    return paths.data_dir() / "sandbox" / "maildir"


def sessions_dir() -> Path:
    return paths.data_dir() / "sandbox" / "sessions"


def deliver(port: int, subject: str, to: str = "bob@example.test") -> None:
    message = f"From: alice@example.test\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nHello\r\n"
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("alice@example.test", [to], message.encode())


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], int, str]]:
    """``tuimail serve`` with ``args``: the process, its port, and its first lines on stderr.

    Stopped (SIGINT, then a bounded wait) on leaving.
    """
    process = subprocess.Popen(
        [TUIMAIL, "serve", "--quiet", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "listening on 127.0.0.1:" in line, line + process.stderr.read()
        port = int(line.split("127.0.0.1:")[1].split()[0].rstrip(","))
        yield process, port, line
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)


async def open_f5(pilot: Pilot[Any], rows: int) -> DataTable[Any]:
    """Press F5 and wait until its table lists ``rows`` messages (it reads in a thread)."""
    await pilot.press("f5")
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, SandboxScreen), "F5")
    table: DataTable[Any] = app.screen.query_one("#captured", DataTable)
    await wait_for(pilot, lambda: table.row_count == rows, f"{rows} row(s) on F5")
    return table


def row_texts(table: DataTable[Any]) -> list[str]:
    return [" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]


def server_side(app: TuimailApp) -> str:
    """The server's side as F5 shows it, wrapped lines joined again."""
    lines = view_lines(app.screen.query_one("#server-view", TranscriptView))
    return " ".join(" ".join(lines).split())


async def until_app_serves(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, TuimailApp)
    await wait_for(
        pilot,
        lambda: app.model.sandbox is not None or app.model.sandbox_running is not None,
        "the app to serve the sandbox or find the one running",
    )


# -- the app and the command line share one sandbox -------------------------------


async def test_send_from_the_command_line_lands_in_the_app_s_sandbox(isolated_dirs: Path) -> None:
    port = free_port()
    write_config(f"[sandbox]\nport = {port}\n")
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await until_app_serves(pilot)
        assert app.model.sandbox is not None and app.model.sandbox.port == port
        sent = await asyncio.to_thread(
            run_tuimail,
            "send", "--profile", "sandbox", "--to", "carol@example.test",
            "--subject", "From the command line", "--body", "hello",
        )  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        # Same port: no second sandbox started, and none fell back to another port.
        assert f"127.0.0.1:{port}" in sent.stdout
        assert "the sandbox's side" not in sent.stdout
        assert "in use" not in sent.stderr
        table = await open_f5(pilot, 1)
        assert "carol@example.test" in row_texts(table)[0]
        table.move_cursor(row=0)
        await wait_for(
            pilot, lambda: "From the command line" in static_text(app, "#message-view"), "message"
        )
        # This app received it: the session is its own, shown from memory.
        await wait_for(pilot, lambda: "stored message" in server_side(app), "the server's side")

        # A plain 'tuimail serve' now is told where the sandbox runs, and starts nothing.
        plain = await asyncio.to_thread(run_tuimail, "serve", timeout=30)
        assert plain.returncode == 0, plain.stderr
        assert f"already listening on 127.0.0.1:{port}, served by the tuimail app" in plain.stderr
        assert f"(pid {os.getpid()})" in plain.stderr


async def test_the_app_uses_a_running_serve_and_f5_shows_what_it_received(
    isolated_dirs: Path,
) -> None:
    port = free_port()
    write_config(f"[sandbox]\nport = {port}\n")
    with serving() as (process, serve_port, _line):
        assert serve_port == port  # a plain serve is the built-in one, on its port
        deliver(port, "Before the app")
        app = TuimailApp()
        async with app.run_test(size=(120, 40)) as pilot:
            await until_app_serves(pilot)
            assert app.model.sandbox is None  # no second sandbox
            running = app.model.sandbox_running
            assert running is not None and (running.port, running.pid) == (port, process.pid)
            table = await open_f5(pilot, 1)
            status = static_text(app, "#sandbox-status")
            assert f"127.0.0.1:{port}, served by 'tuimail serve' (pid {process.pid})" in status
            table.move_cursor(row=0)
            await wait_for(
                pilot, lambda: "Before the app" in static_text(app, "#message-view"), "message"
            )
            # Received by 'tuimail serve': its session file tells the server's side.
            await wait_for(pilot, lambda: "stored message" in server_side(app), "session file")
            assert "FROM:<alice@example.test>" in server_side(app)

            # And what serve receives while F5 is open shows up, newest first.
            await asyncio.to_thread(deliver, port, "While the app runs", "dan@example.test")
            await wait_for(pilot, lambda: table.row_count == 2, "the second message")
            assert "dan@example.test" in row_texts(table)[0]


async def test_the_app_serves_the_sandbox_when_the_serve_it_used_stops(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "SANDBOX_CHECK", 0.2)
    port = free_port()
    write_config(f"[sandbox]\nport = {port}\n")
    with serving() as (process, _port, _line):
        # The app starts while serve holds the sandbox.
        app = TuimailApp()
        async with app.run_test(size=(120, 40)) as pilot:
            await until_app_serves(pilot)
            assert app.model.sandbox is None and app.model.sandbox_running is not None
            process.send_signal(signal.SIGINT)
            await asyncio.to_thread(process.wait, 20)
            await take_over(pilot, port, process.pid)
    # The app that served it withdrew it as it quit.
    assert not runtime_file().exists()


async def take_over(pilot: Pilot[Any], port: int, pid: int) -> None:
    """The app serves the sandbox after the 'tuimail serve' (``pid``) it used stopped."""
    app = app_of(pilot)
    await wait_for(pilot, lambda: app.model.sandbox is not None, "the app to take over")
    assert app.model.sandbox is not None and app.model.sandbox.port == port
    assert f"'tuimail serve' (pid {pid}) stopped serving" in app.model.sandbox_note
    # App.notify posts a message: the notification lands a moment after the note.
    await wait_for(
        pilot,
        lambda: any("this app serves it now" in str(n.message) for n in app._notifications),
        "the take-over notification",
    )
    found = await asyncio.to_thread(running_sandbox)
    assert found is not None and (found.pid, found.served_by) == (os.getpid(), "app")
    await asyncio.to_thread(deliver, port, "After the take-over")
    table = await open_f5(pilot, 1)
    assert "bob@example.test" in row_texts(table)[0]


# -- F5 is the Maildir --------------------------------------------------------------


async def test_after_a_restart_f5_lists_what_the_maildir_still_holds(isolated_dirs: Path) -> None:
    write_config(f"[sandbox]\nport = {free_port()}\n")
    first = TuimailApp()
    async with first.run_test(size=(120, 40)) as pilot:
        await until_app_serves(pilot)
        assert first.model.sandbox is not None
        await asyncio.to_thread(deliver, first.model.sandbox.port, "Kept over a restart")
        await open_f5(pilot, 1)
    again = TuimailApp()
    async with again.run_test(size=(120, 40)) as pilot:
        await until_app_serves(pilot)
        table = await open_f5(pilot, 1)
        assert "bob@example.test" in row_texts(table)[0]
        table.move_cursor(row=0)
        await wait_for(
            pilot, lambda: "Kept over a restart" in static_text(app_of(pilot), "#message-view"), ""
        )
        # The session is not in this run's memory: its file tells it.
        await wait_for(pilot, lambda: "stored message" in server_side(again), "session file")


def app_of(pilot: Pilot[Any]) -> TuimailApp:
    assert isinstance(pilot.app, TuimailApp)
    return pilot.app


DROPPED = (
    "import mailbox, sys\n"
    "box = mailbox.Maildir(sys.argv[1], create=False)\n"
    "box.add(b'From: Eve <eve@example.test>\\nTo: frank@example.test\\n"
    "Subject: Dropped in\\n\\nput here by hand\\n')\n"
)


async def test_a_file_another_process_adds_to_the_maildir_appears_on_f5(
    isolated_dirs: Path,
) -> None:
    write_config(f"[sandbox]\nport = {free_port()}\n")
    app = TuimailApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await until_app_serves(pilot)
        table = await open_f5(pilot, 0)
        dropped = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", DROPPED, str(maildir())],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert dropped.returncode == 0, dropped.stderr
        await wait_for(pilot, lambda: table.row_count == 1, "the dropped message on F5")
        row = row_texts(table)[0]
        assert "Eve <eve@example.test>" in row and "frank@example.test" in row
        table.move_cursor(row=0)
        await wait_for(
            pilot, lambda: "put here by hand" in static_text(app, "#message-view"), "the message"
        )
        await wait_for(
            pilot, lambda: "no session file" in server_side(app), "why there is no transcript"
        )


async def test_f5_lists_the_newest_messages_first_a_page_at_a_time(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuimail.ui.screens import sandbox

    monkeypatch.setattr(sandbox, "PAGE", 3)
    monkeypatch.setattr(sandbox, "PAGE_AHEAD", 1)
    maildir().parent.mkdir(parents=True)
    box = mailbox.Maildir(maildir(), create=True)
    for number in range(5):
        box.add(f"From: a@example.test\nTo: n{number}@example.test\n\nbody\n".encode())
        time.sleep(0.01)  # the file names order them by time
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await open_f5(pilot, 3)
        assert [row.split()[2] for row in row_texts(table)] == [
            "n4@example.test", "n3@example.test", "n2@example.test",
        ]  # fmt: skip
        status = static_text(app, "#sandbox-status")
        assert "The inbox holds 5 messages; more are listed as you scroll." in status
        table.focus()
        table.move_cursor(row=2)  # near the end: the next page is read
        await wait_for(pilot, lambda: table.row_count == 5, "the next page")
        assert [row.split()[2] for row in row_texts(table)][3:] == [
            "n1@example.test", "n0@example.test",
        ]  # fmt: skip


# -- tuimail serve and send beside a running sandbox ------------------------------


def session_ids() -> list[str]:
    return sorted(path.stem for path in sessions_dir().glob("*.json"))


def test_serve_with_other_settings_runs_apart_with_its_own_session_ids(
    isolated_dirs: Path,
) -> None:
    port = free_port()
    write_config(f"[sandbox]\nport = {port}\n")
    with serving() as (built_in, first_port, _line):
        assert first_port == port
        with serving("--fault", "rcpt=x@example.test:550 5.1.1 nope") as (apart, other, _line):
            assert other != port
            assert apart.stderr is not None
            note = apart.stderr.readline()
            assert note.strip() == (
                f"tuimail: the sandbox of this data dir runs on 127.0.0.1:{port}, served by "
                f"'tuimail serve' (pid {built_in.pid}), with other settings (faults): "
                "this one is a server of its own"
            )
            # The runtime file still names the built-in one: clients keep using it.
            found = find_running()
            assert found is not None and found.port == port
            for target in (port, other, port, other):
                deliver(target, "Two servers, one Maildir")
    ids = session_ids()
    assert len(ids) == 4 and len(set(ids)) == 4
    pids = {name.split("-")[1] for name in ids}
    assert pids == {str(built_in.pid), str(apart.pid)}
    names = [key for key in mailbox.Maildir(maildir(), create=False).iterkeys()]
    assert len(names) == 4 and len(set(names)) == 4


def test_serve_with_a_port_asked_for_runs_apart_on_it(isolated_dirs: Path) -> None:
    port, wanted = free_port(), free_port()
    write_config(f"[sandbox]\nport = {port}\n")
    with serving(), serving("--port", str(wanted)) as (_apart, other, _line):
        assert other == wanted
    with serving(), serving("--port", "0") as (_apart, other, _line):
        assert other not in (0, port)


def test_two_plain_serves_started_at_once_make_one_sandbox(isolated_dirs: Path) -> None:
    port = free_port()
    write_config(f"[sandbox]\nport = {port}\n")
    processes = [
        subprocess.Popen(
            [TUIMAIL, "serve", "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    firsts = []
    try:
        for process in processes:
            assert process.stderr is not None
            firsts.append(process.stderr.readline())
        serving_now = [
            p for p, line in zip(processes, firsts, strict=True) if "already" not in line
        ]
        assert len(serving_now) == 1, firsts
        for process, line in zip(processes, firsts, strict=True):
            if process is not serving_now[0]:
                assert process.wait(20) == 0
                assert f"already listening on 127.0.0.1:{port}" in line
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            process.communicate(timeout=20)


def test_a_runtime_file_left_by_a_killed_server_blocks_nobody(isolated_dirs: Path) -> None:
    port = free_port()
    write_config(f"[sandbox]\nport = {port}\n")
    with serving() as (process, _port, _line):
        process.kill()  # kill -9: no chance to withdraw its runtime file
        process.wait(20)
    assert runtime_file().exists()
    # Its pid is reused and something answers on its port: still not the sandbox.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        record = json.loads(runtime_file().read_text())
        record.update(pid=os.getpid(), port=squatter.getsockname()[1])
        runtime_file().write_text(json.dumps(record))
        assert find_running() is None
        sent = run_tuimail(
            "send", "--profile", "sandbox", "--to", "bob@example.test", "--subject", "hi",
            "--body", "hello", "--timeout", "5", timeout=60,
        )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert f"127.0.0.1:{port}" in sent.stdout  # it served the sandbox itself, on its port
    assert "the sandbox's side" in sent.stdout
    assert not runtime_file().exists()  # withdrawn when the send ended


def shows(app: TuimailApp, words: str) -> Callable[[], bool]:
    """Whether F5's server pane shows ``words`` now."""
    return lambda: words in server_side(app)


async def test_f5_reads_the_maildir_and_session_files_off_the_ui_loop(
    isolated_dirs: Path,
) -> None:
    """Listing, a session file and a message are all read in threads (see test_ui_loop_io.py)."""
    from tests.test_ui_loop_io import file_calls_on_this_thread

    write_config(f"[sandbox]\nport = {free_port()}\n")
    with serving() as (_process, port, _line):
        deliver(port, "Received by serve")
    maildir().parent.mkdir(parents=True, exist_ok=True)
    mailbox.Maildir(maildir(), create=True).add(b"From: h@example.test\n\nby hand\n")
    app = TuimailApp(start_sandbox=False)
    with file_calls_on_this_thread(isolated_dirs) as log:
        async with app.run_test(size=(120, 40)) as pilot:
            table = await open_f5(pilot, 2)
            for row, words in ((1, "stored message"), (0, "no session file")):
                table.move_cursor(row=row)
                await wait_for(pilot, shows(app, words), words)
            await wait_for(pilot, lambda: "by hand" in static_text(app, "#message-view"), "")
            await pilot.press("ctrl+q")
    assert log.calls == []


def test_the_inbox_never_hangs_on_a_fifo_nor_trips_on_a_broken_session_file(
    tmp_path: Path,
) -> None:
    """What other programs leave in the shared Maildir is listed, never obeyed or waited on."""
    from tuimail.inbox import InboxIndex

    box = tmp_path / "maildir"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    now = int(time.time())
    os.mkfifo(box / "new" / f"{now}.M1P1Q1.fifo")
    (box / "cur" / f"{now + 1}.M2P1Q2.host:2,S").write_bytes(
        b"From: \x1b[2Jx@example.test\nTo: y@example.test\n\nseen\n"
    )
    (sessions / "broken.json").write_text("{not json")
    (sessions / "odd.json").write_text(json.dumps({"id": "../x", "messages": [{"no": "key"}]}))
    with InboxIndex(box, sessions, tmp_path / "inbox.sqlite3") as index:
        index.refresh()
        entries = index.page().entries
        # The FIFO is not a message: it is left out, never opened for reading.
        assert [entry.id for entry in entries] == [f"{now + 1}.M2P1Q2.host"]
        (newest,) = entries
        assert "\x1b[2Jx@example.test" in newest.mail_from  # escaped where shown
        assert index.read_bytes(newest).endswith(b"seen\n")
        assert index.session_transcript("../x") is None
