"""Two processes whose mailbox rules differ (config.toml edited while the app runs)
share one index: each routes the messages again, but a message keeps its row,
so ``inbox wait --new`` never takes an old message for a new one.

The index once deleted every row and inserted them again under new numbers
when it found other rules, and every message looked new to a waiter.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_inbox import message
from tuimail.inbox import InboxIndex, MailboxRule
from tuimail.maildir import deliver


def test_routing_again_keeps_each_messages_row(tmp_path: Path) -> None:
    maildir = tmp_path / "maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (tmp_path / "sessions").mkdir()
    deliver(maildir, message("old one", to="team@example.test"), durable=False)
    deliver(maildir, message("old two", to="bob@example.test"), durable=False)
    where = (maildir, tmp_path / "sessions", tmp_path / "inbox.sqlite3")
    app = InboxIndex(*where, [MailboxRule("team", recipient="team@*")])
    edited = InboxIndex(*where, [MailboxRule("bobs", recipient="bob@*")])
    app.refresh()
    rows = {e.subject: e.row for e in app.page().entries}
    assert {e.subject: e.mailbox for e in app.page().entries} == {
        "old one": "team",
        "old two": "inbox",
    }
    after = app.newest_row()
    edited.refresh()  # the CLI, with the edited config.toml
    assert {e.subject: e.mailbox for e in edited.page().entries} == {
        "old one": "inbox",
        "old two": "bobs",
    }
    assert {e.subject: e.row for e in edited.page().entries} == rows
    assert edited.wait_for("", timeout=0.2, after_row=after) is None
    app.refresh()  # and back
    assert {e.subject: e.mailbox for e in app.page().entries}["old one"] == "team"
    assert app.wait_for("", timeout=0.2, after_row=after) is None
    # A message that does arrive is new to both.
    deliver(maildir, message("new one"), durable=False)
    found = edited.wait_for("", timeout=5, after_row=after)
    assert found is not None and found.subject == "new one"
