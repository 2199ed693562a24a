"""A profile's signature file that holds what mail cannot carry or a terminal obeys:
through ``tuimail send`` (a real process and server) the signature file is named,
not the user's text; in the app (tmux, the installed command) it is shown escaped."""

from __future__ import annotations

from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.conftest import require_tool
from tests.smtpservers import ServerThread, Sink
from tests.test_signatures_templates import write_profile
from tests.test_ui_tmux import Tmux, tuimail_command
from tuimail.cli import exitcodes


def test_a_signature_file_with_a_nul_is_refused_as_the_signature_file(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    signature = isolated_dirs / "sig.txt"
    signature.write_bytes(b"Alice\x00\n")
    write_profile(isolated_dirs / "config", port, f'signature_file = "{signature}"\n')
    result = run_tuimail("send", "--profile", "work", "--to", "bob@example.test", "--body", "hi")
    # Before: "--body: contains a NUL character", about a text that has none.
    assert result.returncode == exitcodes.CONFIG, result.stderr
    assert "signature file" in result.stderr and "NUL" in result.stderr
    assert "--no-signature" in result.stderr and "--body" not in result.stderr
    assert sink.messages == []
    sent = run_tuimail(
        "send", "--profile", "work", "--to", "bob@example.test", "--body", "hi", "--no-signature"
    )
    assert sent.returncode == exitcodes.OK, sent.stderr
    assert len(sink.messages) == 1


def test_a_signature_file_cannot_drive_the_terminal_of_the_app(isolated_dirs: Path) -> None:
    # A signature file (written by hand, copied from elsewhere) holding escape
    # sequences went into Compose's body raw: the terminal obeyed them (here:
    # its title set by OSC 2). Shown escaped, as a draft's or a template's text is.
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True, exist_ok=True)
    (config / "sig.txt").write_bytes(b"Alice\x1b]2;PWNED\x07 \x1b[31mRED\x1b[0m\n")
    write_profile(isolated_dirs / "config", 2599, 'signature_file = "sig.txt"\n')
    tmux = Tmux(require_tool("tmux", "tmux"))
    try:
        tmux.start(tuimail_command(), width=120, height=30)
        screen = tmux.wait_for_text("Alice")
        title = tmux.run("display-message", "-p", "-t", tmux.target, "#{pane_title}").stdout
        assert "PWNED" not in title
        assert "\\x1b]2;PWNED" in screen
        tmux.quit_app()
    finally:
        tmux.kill()
