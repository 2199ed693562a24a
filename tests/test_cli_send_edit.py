"""``tuimail send --edit``: the message written in a real editor process, the prompt on a
real terminal (a pty), each choice: send, edit again, save as draft, cancel, Ctrl-C.

The editor is a small script standing in for the user's: each run takes the
next step the test wrote (new text, a failure, or nothing), notes what it saw
(the file's path, mode and text), and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.cli_helpers import TUIMAIL
from tests.smtpservers import ServerThread, Sink
from tuimail.cli import exitcodes
from tuimail.drafts import DraftStore
from tuimail.editor import draft_of_text, message_text
from tuimail.message import Draft, DraftInvalid

EDITOR = f"""#!{sys.executable}
import json, os, sys, pathlib
steps = pathlib.Path(os.environ["EDIT_STEPS"])
count = len(list(steps.glob("*.seen"))) + 1
target = pathlib.Path(sys.argv[-1])
(steps / f"{{count}}.seen").write_text(json.dumps({{
    "path": str(target), "mode": target.stat().st_mode & 0o777, "text": target.read_bytes().decode(),
}}))
new = steps / f"{{count}}.txt"
if new.exists():
    target.write_bytes(new.read_bytes())
fail = steps / f"{{count}}.fail"
if fail.exists():
    target.write_text("Subject: half written\\n")
    sys.exit(int(fail.read_text()))
wait = steps / f"{{count}}.wait"
if wait.exists():
    import time
    (steps / "waiting").write_text("")
    time.sleep(float(wait.read_text()))
"""


class Terminal:
    """``tuimail`` on a new pty, as its controlling terminal: what it writes, what is typed."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: tuimail with the pty as its terminal
            try:
                os.execve(TUIMAIL, [TUIMAIL, *args], env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.output = ""
        self.status: int | None = None

    def read_until(self, words: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while words not in self.output:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{words!r} never came; the terminal shows:\n{self.output}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:  # the child ended: EIO on Linux
                    data = b""
                if not data:
                    raise AssertionError(f"{words!r} never came; it ended with:\n{self.output}")
                self.output += data.decode("utf-8", "replace")
        return self.output

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with_output = select.select([self.fd], [], [], 0.2)[0]
            if with_output:
                with contextlib.suppress(OSError):
                    self.output += os.read(self.fd, 65536).decode("utf-8", "replace")
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"tuimail did not end; the terminal shows:\n{self.output}")


@pytest.fixture
def editor(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment with the stand-in editor as $EDITOR, and the dir of its steps."""
    script = tmp_path / "editor.py"
    script.write_text(EDITOR)
    script.chmod(0o755)
    steps = tmp_path / "steps"
    steps.mkdir()
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ)
    env.pop("VISUAL", None)
    env |= {"EDITOR": str(script), "EDIT_STEPS": str(steps), "XDG_RUNTIME_DIR": str(runtime)}
    return env, steps


def seen(steps: Path, number: int) -> dict[str, object]:
    loaded = json.loads((steps / f"{number}.seen").read_text())
    assert isinstance(loaded, dict)
    return loaded


def send_edit(port: int, *extra: str) -> list[str]:
    return [
        "send", "--server", f"127.0.0.1:{port}", "--security", "none",
        "--from", "Alice <alice@example.test>", "--to", "bob@example.test", "--edit", *extra,
    ]  # fmt: skip


def parsed(content: bytes) -> EmailMessage:
    message = message_from_bytes(content, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_written_in_the_editor_and_sent(
    servers: ServerThread, editor: tuple[dict[str, str], Path]
) -> None:
    env, steps = editor
    sink = Sink()
    port = servers.smtp(sink)
    (steps / "1.txt").write_text(
        "From: Alice <alice@example.test>\nTo: bob@example.test,\n carol@example.test\n"
        "Cc:\nBcc: hidden@example.test\nSubject: Written in vi\n\nThe text, as typed.\n"
    )
    terminal = Terminal(send_edit(port, "--subject", "First"), env)
    terminal.read_until("(s)end, (e)dit again, save as (d)raft, (c)ancel?")
    assert "Ready: 3 recipients" in terminal.output
    terminal.type("s\n")
    assert terminal.wait() == exitcodes.OK, terminal.output
    first = seen(steps, 1)
    assert first["mode"] == 0o600
    path = Path(str(first["path"]))
    assert path.parent == Path(env["XDG_RUNTIME_DIR"]) / "tuimail"
    assert not path.exists()  # removed once the loop ended
    assert first["text"] == (
        "From: Alice <alice@example.test>\nTo: bob@example.test\nCc: \nBcc: \nSubject: First\n\n"
    )
    [received] = sink.messages
    assert sorted(received.rcpt_tos) == [
        "bob@example.test",
        "carol@example.test",
        "hidden@example.test",
    ]
    message = parsed(received.content)
    assert message["Subject"] == "Written in vi"
    assert "Bcc" not in message and b"hidden" not in received.content
    body = message.get_body(("plain",))
    assert body is not None and body.get_content() == "The text, as typed.\r\n"
    assert "250" in terminal.output  # the transcript, as any send prints it


def test_edit_again_after_an_injected_header_and_a_failed_editor(
    servers: ServerThread, editor: tuple[dict[str, str], Path]
) -> None:
    env, steps = editor
    sink = Sink()
    port = servers.smtp(sink)
    injected = "From: Alice <alice@example.test>\nTo: bob@example.test\n"
    (steps / "1.txt").write_text(injected + "Subject: hi\rBcc: evil@example.test\n\nText\n")
    (steps / "2.fail").write_text("1")
    (steps / "3.txt").write_text(injected + "Subject: fixed\n\nText\n")
    terminal = Terminal(send_edit(port), env)
    terminal.read_until("(e)dit again, save as (d)raft, (c)ancel [e]?")
    assert "Subject: contains a carriage return" in terminal.output
    assert "(s)end" not in terminal.output  # a message that does not pass is not offered
    terminal.type("\n")  # Enter alone: edit again
    terminal.read_until("exited with status 1")
    # The failed editor's text is not used: the file is as it was before it.
    terminal.read_until("(e)dit again, save as (d)raft, (c)ancel [e]?\x20")
    terminal.type("e\n")
    terminal.read_until("(s)end, (e)dit again")
    assert "hi\rBcc" in str(seen(steps, 3)["text"])  # the third run saw the kept text
    terminal.type("x\n")
    terminal.read_until("Type one of s, e, d, c and Enter.")
    terminal.type("s\n")
    assert terminal.wait() == exitcodes.OK, terminal.output
    [received] = sink.messages
    assert received.rcpt_tos == ["bob@example.test"]
    assert parsed(received.content)["Subject"] == "fixed"


def test_nothing_changed_then_saved_as_a_draft(
    servers: ServerThread, editor: tuple[dict[str, str], Path]
) -> None:
    env, steps = editor
    sink = Sink()
    port = servers.smtp(sink)
    terminal = Terminal(send_edit(port, "--subject", "Later", "--body", "Not yet."), env)
    terminal.read_until("Nothing changed.")
    terminal.read_until("(c)ancel?")
    terminal.type("d\n")
    assert terminal.wait() == exitcodes.EDIT_SAVED, terminal.output
    assert "saved as draft" in terminal.output
    [saved] = DraftStore().list()
    assert (saved.draft.subject, saved.draft.body) == ("Later", "Not yet.")
    assert saved.draft.to == ["bob@example.test"]
    assert not sink.messages
    assert not Path(str(seen(steps, 1)["path"])).exists()


def test_cancel_keeps_nothing(servers: ServerThread, editor: tuple[dict[str, str], Path]) -> None:
    env, steps = editor
    sink = Sink()
    port = servers.smtp(sink)
    terminal = Terminal(send_edit(port), env)
    terminal.read_until("(c)ancel?")
    terminal.type("c\n")
    assert terminal.wait() == exitcodes.EDIT_CANCELLED, terminal.output
    assert "cancelled" in terminal.output
    assert not sink.messages and not DraftStore().list()
    assert not Path(str(seen(steps, 1)["path"])).exists()


def test_ctrl_c_at_the_prompt_and_in_the_editor_removes_the_file(
    servers: ServerThread, editor: tuple[dict[str, str], Path]
) -> None:
    env, steps = editor
    port = servers.smtp(Sink())
    terminal = Terminal(send_edit(port), env)
    terminal.read_until("(c)ancel?")
    terminal.type("\x03")
    assert terminal.wait() == 130, terminal.output
    assert "interrupted" in terminal.output
    assert not Path(str(seen(steps, 1)["path"])).exists()

    # Ctrl-C while the editor runs reaches the editor; its failure is reported, the
    # message kept, and the file removed when the loop ends.
    for old in steps.iterdir():
        old.unlink()
    (steps / "1.wait").write_text("30")
    terminal = Terminal(send_edit(port), env)
    deadline = time.monotonic() + 30
    while not (steps / "waiting").exists():
        assert time.monotonic() < deadline, terminal.output
        time.sleep(0.05)
    terminal.type("\x03")
    terminal.read_until("exited with status")
    terminal.read_until("(c)ancel?")
    terminal.type("c\n")
    assert terminal.wait() == exitcodes.EDIT_CANCELLED, terminal.output
    assert not Path(str(seen(steps, 1)["path"])).exists()


def test_hangup_removes_the_file(
    servers: ServerThread, editor: tuple[dict[str, str], Path]
) -> None:
    env, steps = editor
    port = servers.smtp(Sink())
    terminal = Terminal(send_edit(port), env)
    terminal.read_until("(c)ancel?")
    os.kill(terminal.pid, signal.SIGTERM)
    assert terminal.wait() == 128 + signal.SIGTERM
    assert not Path(str(seen(steps, 1)["path"])).exists()


def test_without_a_terminal_it_refuses(
    servers: ServerThread, editor: tuple[dict[str, str], Path]
) -> None:
    env, steps = editor
    port = servers.smtp(Sink())
    result = subprocess.run(
        [TUIMAIL, *send_edit(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,  # no controlling terminal
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == exitcodes.USAGE
    assert "send --edit needs a terminal" in result.stderr
    assert not list(steps.glob("*.seen"))  # the editor never ran
    assert not list((Path(env["XDG_RUNTIME_DIR"]) / "tuimail").glob("*"))


def test_edit_does_not_go_with_a_prepared_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [TUIMAIL, "send", "--server", "127.0.0.1:2", "--eml", "x.eml", "-t", "--edit"],
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    assert result.returncode == exitcodes.USAGE
    assert "--edit cannot change it" in result.stderr


def test_the_text_form_reads_back() -> None:
    draft = Draft(
        from_address="Alice <alice@example.test>",
        to=["bob@example.test"],
        subject="Hi",
        body="Text\n\nmore\n",
        attachments=[Path("/tmp/a.txt")],
        headers=[("X-Tag", "one")],
    )
    again = draft_of_text(message_text(draft))
    assert again == draft
    with pytest.raises(DraftInvalid, match="line 2 is not a header"):
        draft_of_text("To: a@example.test\nDear Bob,\n")
    with pytest.raises(DraftInvalid, match="second Subject"):
        draft_of_text("Subject: a\nSubject: b\n\n")
    # A lone CR stays in its value (refused when built), never a line of its own.
    assert draft_of_text("Subject: a\rBcc: x@y.test\n\n").subject == "a\rBcc: x@y.test"
