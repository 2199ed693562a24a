"""The sandbox's Maildir as an inbox: indexed, searchable, in mailboxes, for both faces.

:class:`InboxIndex` (``index.py``) keeps an SQLite index beside the Maildir
and catches up with it; ``query.py`` is the search language; ``mailboxes.py``
routes messages to named mailboxes and reads tags from plus-addresses;
``mime.py`` reads one message for people (text, HTML as text, MIME tree,
attachments saved under safe names). No Textual here: the app calls it from
a worker, the command line (``tuimail inbox``) directly.
"""

from __future__ import annotations

from tuimail.inbox.index import (
    Ambiguous,
    Cursor,
    InboxEntry,
    InboxIndex,
    IndexBusy,
    Page,
    default_index_path,
)
from tuimail.inbox.mailboxes import (
    DEFAULT_MAILBOX,
    MailboxRule,
    MailboxRuleInvalid,
    rules_from_config,
)

__all__ = [
    "DEFAULT_MAILBOX",
    "Ambiguous",
    "Cursor",
    "InboxEntry",
    "InboxIndex",
    "IndexBusy",
    "MailboxRule",
    "MailboxRuleInvalid",
    "Page",
    "default_index_path",
    "rules_from_config",
]
