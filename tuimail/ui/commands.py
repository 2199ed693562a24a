"""The command palette's tuimail commands (ctrl+p): every action, searchable."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

COMMANDS: list[tuple[str, str, str]] = [
    ("Send the message", "screen.action_send", "compose"),
    ("New message", "screen.action_new_message", "compose"),
    ("Attach a file", "screen.action_attach", "compose"),
    ("Go to Compose", "app.switch_mode:compose", ""),
    ("Go to Transcript", "app.switch_mode:transcript", ""),
    ("Go to Accounts", "app.switch_mode:accounts", ""),
    ("Go to Sandbox inbox", "app.switch_mode:sandbox", ""),
    ("Go to Monitor", "app.switch_mode:monitor", ""),
    ("Go to Outbox, drafts and sent", "app.switch_mode:mailboxes", ""),
    ("Probe every target now", "screen.action_probe_now", "monitor"),
    ("Add a monitor target", "screen.action_add_target", "monitor"),
    ("Decrypt the message for display", "screen.action_decrypt", "sandbox"),
    ("Export the transcript", "screen.action_export", "transcript"),
    ("Filter the transcript", "screen.action_search", "transcript"),
    ("Add an account", "screen.action_add", "accounts"),
    ("Test the selected account", "screen.action_test", "accounts"),
    ("Help and keys", "app.action_help", ""),
    # Offered only while a profile waits for its OAuth sign-in (the app's check_action).
    ("Sign in again (the account a send is waiting for)", "app.action_sign_in", ""),
]


class ListedCommands(Provider):
    """A palette provider over a list of (title, callback): each offers what it lists now."""

    def _available(self) -> list[tuple[str, Callable[[], object]]]:
        raise NotImplementedError

    async def discover(self) -> Hits:
        for title, callback in self._available():
            yield DiscoveryHit(title, callback)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback in self._available():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title)


class TuimailCommands(ListedCommands):
    """tuimail's actions, offered where they make sense."""

    def _available(self) -> list[tuple[str, Callable[[], object]]]:
        app = self.app
        mode = app.current_mode
        available: list[tuple[str, Callable[[], object]]] = []
        for title, target, needs_mode in COMMANDS:
            if needs_mode and needs_mode != mode:
                continue
            owner, _, name = target.partition(".")
            if name.startswith("switch_mode:"):
                available.append((title, partial(app.switch_mode, name.split(":", 1)[1])))
                continue
            if owner == "app" and app.check_action(name.removeprefix("action_"), ()) is not True:
                continue  # not now: as the footer does not offer its key either
            node = app if owner == "app" else self.screen
            method = getattr(node, name, None)
            if callable(method):
                available.append((title, method))
        return available
