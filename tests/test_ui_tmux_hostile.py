"""A hostile server's escape sequences, in a real terminal: shown as text, never obeyed.

The server's greeting, EHLO reply and its refusal of the message carry
``ESC ] 0 ; pwned BEL`` (retitle the window) and ``ESC [ 2 J`` (clear the
screen). The installed ``tuimail`` runs in a tmux pane and sends to it; tmux
is the judge: a raw sequence would change the pane's title to "pwned" (tmux
records every title a program sets), while the escaped text must be on screen
for the user to read.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import require_tool
from tests.smtpservers import ServerThread
from tests.test_terminal_escapes import hostile_server
from tests.test_ui_tmux import DEADLINE, Tmux, tuimail_command
from tuimail.profiles import Profile, ProfileStore, Security


def test_a_hostile_reply_is_shown_escaped_in_a_real_terminal(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    port = hostile_server(servers)
    ProfileStore().save(
        Profile(
            name="hostile", host="127.0.0.1", port=port, security=Security.NONE,
            from_address="me@example.test",
        )
    )  # fmt: skip
    tmux = Tmux(require_tool("tmux", "tmux"))
    try:
        tmux.start(f"{tuimail_command()} --profile hostile", width=120, height=40)
        tmux.wait_until(lambda s: "F2 Compose" in s and "hostile" in s, "the compose screen")
        title_before = tmux.run("display-message", "-p", "-t", tmux.target, "#{pane_title}")
        tmux.keys("bob@example.test", literal=True)
        tmux.wait_for_focus("To")
        for label in ("Cc", "Bcc", "Subject"):
            tmux.keys("Tab")
            tmux.wait_for_focus(label)
        tmux.keys("Refused", literal=True)
        tmux.wait_for_text("Refused")
        tmux.keys("C-s")
        screen = tmux.wait_for_text("554 5.7.1 refused")
        # The live transcript beside the form and the status line show the
        # sequences as text: what the server sent, readable, and harmless.
        assert "\\x1b]0;pwned\\x07" in screen, screen
        assert "\\x1b[2J" in screen, screen
        tmux.keys("F3")
        screen = tmux.wait_for_text("ESMTP\\x1b]0;pwned")
        time.sleep(0.5)  # let anything raw that was written reach tmux
        title = tmux.run("display-message", "-p", "-t", tmux.target, "#{pane_title}").stdout
        assert "pwned" not in title, f"the server retitled the terminal: {title!r}"
        assert title == title_before.stdout
        assert "Refused" in tmux.screen() or "F3" in tmux.screen()  # not cleared by ESC [ 2 J
        tmux.keys("C-q")
        deadline = time.monotonic() + DEADLINE
        while tmux.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        tmux.kill()
