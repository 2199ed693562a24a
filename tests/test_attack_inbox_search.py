"""Searching as you type: a key typed with nothing after it yet (``from:``) narrows
nothing, rather than emptying the list until its value is typed.

``from:`` alone was searched as the word "from" (no message held it), while
``tag:`` alone listed every tagged message: each step of typing
``from:alice`` flashed "no message matches" first.
"""

from __future__ import annotations

import pytest

from tests.test_inbox import inbox, message, subjects  # noqa: F401  (the fixture)
from tuimail.inbox import InboxIndex
from tuimail.maildir import deliver


@pytest.mark.parametrize(
    "typed",
    ["from:", "to:", "subject:", 'subject:"', "mailbox:", "tag:", "has:", "is:", "FROM:", "from: "],
)
def test_a_key_with_nothing_after_it_narrows_nothing(
    inbox: InboxIndex,  # noqa: F811
    typed: str,
) -> None:
    deliver(inbox.maildir, message("Quarterly report"), durable=False)
    deliver(inbox.maildir, message("Lunch?", to="carol+food@example.test"), durable=False)
    inbox.refresh()
    assert sorted(subjects(inbox, typed)) == ["Lunch?", "Quarterly report"]
    if '"' not in typed:  # (an open quote takes the rest as the subject's value)
        assert subjects(inbox, f"{typed} lunch") == ["Lunch?"]  # the next word still counts
    assert inbox.count(typed) == 2
