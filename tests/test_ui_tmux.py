"""The installed ``tuimail`` command in a real terminal: tmux runs it, keys go in, the screen is read.

Nothing here is simulated: the program is the console script a user runs,
the terminal is a tmux pane, the keys are tmux ``send-keys`` and what the test
checks is what ``capture-pane`` shows. Every wait has a deadline, and the tmux
server (on its own socket) is killed whatever happens.
"""

from __future__ import annotations

import mailbox
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.conftest import require_tool
from tuimail import paths

TUIMAIL = Path(sys.executable).with_name("tuimail")
DEADLINE = 30.0


class Tmux:
    """One tmux server on a private socket, with one session running a command."""

    def __init__(self, tmux: str) -> None:
        self.tmux = tmux
        self.socket = f"tuimail-test-{uuid.uuid4().hex[:8]}"
        self.target = "tuimail"
        # The socket lives in a directory of ours (short: sockets paths are
        # limited to about 100 bytes), removed with the server.
        self.socket_dir = tempfile.mkdtemp(prefix="tuimail-tmux-")
        self.env = dict(os.environ, TMUX_TMPDIR=self.socket_dir)
        self.env.pop("TMUX", None)  # a test run from inside tmux must not attach to it

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.tmux, "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=10,
            env=self.env,
        )

    def start(self, command: str, width: int, height: int) -> None:
        self.run(
            "new-session", "-d", "-s", self.target, "-x", str(width), "-y", str(height), command
        )

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", self.target, *(["-l"] if literal else []), *keys)

    def screen(self) -> str:
        result = self.run("capture-pane", "-p", "-t", self.target, check=False)
        return result.stdout

    def cursor_row(self) -> int:
        """The row of the terminal cursor, which Textual keeps in the focused input."""
        result = self.run("display-message", "-p", "-t", self.target, "#{cursor_y}")
        return int(result.stdout.strip() or -1)

    def row_of(self, label: str, screen: str) -> int:
        for number, line in enumerate(screen.splitlines()):
            if line.split()[:1] == [label]:
                return number
        return -2

    def wait_for_focus(self, label: str) -> None:
        """Wait until the cursor is in the field whose label starts its row.

        Keys that arrive together with a Tab can reach the field the Tab is
        leaving (Textual moves focus after it has dispatched what it already
        read), so the test moves on only once focus has visibly moved.
        """
        self.wait_until(
            lambda screen: self.cursor_row() == self.row_of(label, screen),
            f"the cursor to be in {label}",
        )

    def alive(self) -> bool:
        return self.run("has-session", "-t", self.target, check=False).returncode == 0

    def quit_app(self) -> None:
        """Press ctrl+q and wait, bounded, for tuimail to exit (its session ends with it)."""
        self.keys("C-q")
        deadline = time.monotonic() + DEADLINE
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not self.alive(), "tuimail did not exit on ctrl+q"

    def wait_until(self, condition: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + DEADLINE
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if condition(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"gave up waiting for {what}; the screen shows:\n{screen}")

    def wait_for_text(self, text: str) -> str:
        return self.wait_until(lambda screen: text in screen, repr(text))

    def kill(self) -> None:
        self.run("kill-server", check=False)
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def tuimail_command() -> str:
    """The installed ``tuimail`` with this test's isolated environment, and nothing else."""
    variables = (
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_STATE_HOME",
        "PYTHON_KEYRING_BACKEND",
        "HOME",
        "PATH",
    )
    environment = " ".join(
        f"{name}={shlex.quote(os.environ[name])}" for name in variables if name in os.environ
    )
    return f"env -i {environment} TERM=xterm-256color LANG=C.UTF-8 {shlex.quote(str(TUIMAIL))}"


def test_send_through_the_sandbox_in_a_real_terminal(isolated_dirs: Path) -> None:
    tmux = Tmux(require_tool("tmux", "tmux"))
    command = tuimail_command()
    try:
        tmux.start(command, width=100, height=30)
        # Compose is up and the embedded sandbox listens (its port is in the From line).
        tmux.wait_until(
            lambda s: "F2 Compose" in s and "sandbox · plain · 127.0.0.1:" in s,
            "the compose screen with the running sandbox",
        )

        # The cursor starts in To; Tab walks To, Cc, Bcc, Subject, Body.
        tmux.keys("bob@example.test", literal=True)
        tmux.wait_for_text("bob@example.test")
        tmux.wait_for_focus("To")
        for label in ("Cc", "Bcc", "Subject"):
            tmux.keys("Tab")
            tmux.wait_for_focus(label)
        tmux.keys("Hello from tmux", literal=True)
        screen = tmux.wait_for_text("Hello from tmux")
        subject_row = tmux.row_of("Subject", screen)
        assert "Hello from tmux" in screen.splitlines()[subject_row]
        tmux.keys("Tab")
        tmux.wait_until(lambda _: tmux.cursor_row() > subject_row, "the cursor in the body")
        tmux.keys("The notes are attached.", literal=True)
        tmux.wait_for_text("The notes are attached.")
        tmux.keys("C-s")

        # The body mentions an attachment and none is attached: confirm the question.
        tmux.wait_for_text("Send anyway")
        tmux.keys("Tab")  # from Cancel (the safe default) to "Send anyway"
        tmux.keys("Enter")

        # At 100 columns the live transcript is a screen of its own (F3).
        tmux.wait_for_text("✓ sent <")
        tmux.keys("F3")
        screen = tmux.wait_for_text("250 2.0.0 Ok: queued as")
        assert "RCPT TO:<bob@example.test>" in screen
        assert "221 Bye" in screen

        tmux.quit_app()
    finally:
        tmux.kill()

    # What the screen said is what happened: the sandbox stored the message.
    maildir = mailbox.Maildir(paths.data_dir() / "sandbox" / "maildir", create=False)
    stored = [maildir.get_bytes(key) for key in maildir.iterkeys()]
    assert len(stored) == 1
    assert b"Subject: Hello from tmux" in stored[0]
    assert b"The notes are attached." in stored[0]


def test_a_profile_added_on_the_command_line_shows_up_in_the_running_app(
    isolated_dirs: Path,
) -> None:
    """Another terminal runs 'tuimail accounts add'; the app's Accounts lists it, no restart."""
    tmux = Tmux(require_tool("tmux", "tmux"))
    try:
        tmux.start(tuimail_command(), width=120, height=30)
        tmux.wait_for_text("F2 Compose")
        tmux.keys("F4")
        tmux.wait_for_text("built-in local capture server")
        added = subprocess.run(
            [str(TUIMAIL), "accounts", "add", "from-cli", "--host", "mail.example.test",
             "--port", "587", "--security", "starttls", "--from", "me@example.test"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        tmux.wait_until(
            lambda screen: "from-cli" in screen and "mail.example.test:587" in screen,
            "the profile added on the command line",
        )
    finally:
        tmux.kill()


def test_f5_shows_the_sandbox_on_the_port_config_toml_names(isolated_dirs: Path) -> None:
    """The real app's sandbox listens where config.toml says, and F5 says where."""
    import socket

    with socket.socket() as probe:  # a free port, not 2525: runs side by side must not collide
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = paths.config_dir() / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[sandbox]\nport = {port}\n", encoding="utf-8")
    tmux = Tmux(require_tool("tmux", "tmux"))
    try:
        tmux.start(tuimail_command(), width=120, height=40)
        tmux.wait_until(
            lambda s: "F2 Compose" in s and "sandbox · plain · 127.0.0.1:" in s,
            "the compose screen with the running sandbox",
        )
        tmux.keys("F5")
        screen = tmux.wait_for_text(f"Sandbox listening on 127.0.0.1:{port}")
        assert "this time" not in screen
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.settimeout(5)
            assert client.recv(512).startswith(b"220")
        tmux.quit_app()
    finally:
        tmux.kill()


def test_a_message_left_half_written_is_back_after_a_restart(isolated_dirs: Path) -> None:
    """Quit with ctrl+q mid-message, start again: Compose holds the message, and typing
    goes on at the end of its body."""
    tmux = Tmux(require_tool("tmux", "tmux"))

    try:
        tmux.start(tuimail_command(), width=100, height=30)
        tmux.wait_for_text("F2 Compose")
        tmux.keys("ann@example.test", literal=True)
        tmux.wait_for_text("ann@example.test")
        for label in ("Cc", "Bcc", "Subject"):
            tmux.keys("Tab")
            tmux.wait_for_focus(label)
        tmux.keys("Half written", literal=True)
        screen = tmux.wait_for_text("Half written")
        subject_row = tmux.row_of("Subject", screen)
        tmux.keys("Tab")
        tmux.wait_until(lambda _: tmux.cursor_row() > subject_row, "the cursor in the body")
        tmux.keys("The plan for Monday", literal=True)
        tmux.wait_for_text("The plan for Monday")
        tmux.quit_app()  # at once: the save timer has not fired, quitting saves

        tmux.start(tuimail_command(), width=100, height=30)
        screen = tmux.wait_for_text("Reopened your draft from")
        assert "F7 lists all drafts" in screen
        assert "ann@example.test" in screen and "Half written" in screen
        assert "The plan for Monday" in screen
        tmux.keys(" is ready", literal=True)
        tmux.wait_for_text("The plan for Monday is ready")
        tmux.quit_app()
    finally:
        tmux.kill()


def test_two_processes_share_one_sandbox_and_f5_keeps_its_messages(isolated_dirs: Path) -> None:
    """The app in tmux serves the sandbox; a 'tuimail send' from another terminal lands in
    it (same port) and shows on F5; a relaunch still lists it there."""
    import socket

    with socket.socket() as probe:  # a free port, not 2525: runs side by side must not collide
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = paths.config_dir() / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[sandbox]\nport = {port}\n", encoding="utf-8")
    tmux = Tmux(require_tool("tmux", "tmux"))
    try:
        tmux.start(tuimail_command(), width=120, height=40)
        tmux.wait_for_text("sandbox · plain · 127.0.0.1:")
        tmux.keys("F5")
        tmux.wait_for_text(f"Sandbox listening on 127.0.0.1:{port}")
        sent = subprocess.run(
            [str(TUIMAIL), "send", "--profile", "sandbox", "--to", "gina@example.test",
             "--subject", "From another terminal", "--body", "hello"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert f"127.0.0.1:{port}" in sent.stdout and "the sandbox's side" not in sent.stdout
        tmux.wait_for_text("gina@example.test")  # F5 lists it, no key pressed
        tmux.quit_app()

        tmux.start(tuimail_command(), width=120, height=40)
        tmux.wait_for_text("sandbox · plain · 127.0.0.1:")
        tmux.keys("F5")
        screen = tmux.wait_for_text("gina@example.test")
        assert f"Sandbox listening on 127.0.0.1:{port}" in screen
        tmux.keys("Enter")  # the message and its session, read from disk
        screen = tmux.wait_for_text("From another terminal")
        tmux.quit_app()
    finally:
        tmux.kill()


def test_the_body_is_edited_in_the_users_editor_with_the_app_suspended(
    isolated_dirs: Path,
) -> None:
    """ctrl+g hands the terminal to $EDITOR (a script standing in for one): the app is
    suspended while it runs, reads the terminal's keys, and its edit comes back."""
    tmux = Tmux(require_tool("tmux", "tmux"))
    runtime = isolated_dirs / "runtime"
    runtime.mkdir(mode=0o700)
    record = isolated_dirs / "editor-record"
    editor = isolated_dirs / "editor.sh"
    editor.write_text(
        "#!/bin/sh\n"
        f'stat -c %a "$1" > {record}\n'
        f'echo "$1" >> {record}\n'
        'echo "EDITOR RUNNING: press Enter"\n'
        "read answer\n"
        'printf "Written in the editor\\n" >> "$1"\n'
    )
    editor.chmod(0o700)
    command = tuimail_command().replace(
        "env -i ",
        f"env -i EDITOR={shlex.quote(str(editor))} XDG_RUNTIME_DIR={shlex.quote(str(runtime))} ",
        1,
    )
    try:
        tmux.start(command, width=100, height=30)
        tmux.wait_for_text("F2 Compose")
        tmux.keys("C-g")
        # The editor has the terminal: the app is gone from it, the script reads its keys.
        screen = tmux.wait_for_text("EDITOR RUNNING")
        assert "F2 Compose" not in screen
        tmux.keys("Enter")
        tmux.wait_until(
            lambda s: "F2 Compose" in s and "Written in the editor" in s,
            "the app back, with the edited body",
        )
        mode, path = record.read_text().split("\n")[:2]
        assert mode == "600"
        assert Path(path).parent == runtime / "tuimail"
        assert not Path(path).exists()  # removed once read back
        tmux.quit_app()
    finally:
        tmux.kill()
