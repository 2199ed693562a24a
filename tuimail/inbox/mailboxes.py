"""Named mailboxes of the sandbox's inbox, and tags from plus-addresses.

config.toml lists rules under ``[[sandbox.mailboxes]]``; each has a ``name``
and one of ``auth_user`` (the user the client authenticated as),
``recipient`` (an fnmatch pattern, case-insensitive, matched against each
envelope recipient, or the To and Cc addresses when no session file names
the message) or ``header = "X-Name: pattern"``. The first rule that matches
decides; a message no rule matches is in :data:`DEFAULT_MAILBOX`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tuimail.errors import TuimailError

DEFAULT_MAILBOX = "inbox"
#: A mailbox name: short, printable, no spaces (it is typed after ``mailbox:``).
_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")
#: ``user+tag@domain``: the tag is what follows the first ``+`` of the local part.
_PLUS = re.compile(r"^[^@+]+\+([^@]+)@")


class MailboxRuleInvalid(TuimailError):
    """A ``[[sandbox.mailboxes]]`` entry tuimail cannot use; the message says which and why."""


@dataclass(frozen=True)
class MailboxRule:
    """One ``[[sandbox.mailboxes]]`` entry: a name and exactly one way to match."""

    name: str
    auth_user: str = ""
    recipient: str = ""
    header_name: str = ""
    header_pattern: str = ""

    def matches(
        self, auth_user: str, recipients: Sequence[str], headers: Mapping[str, Sequence[str]]
    ) -> bool:
        if self.auth_user:
            return auth_user.lower() == self.auth_user.lower()
        if self.recipient:
            pattern = self.recipient.lower()
            return any(fnmatch.fnmatchcase(r.lower(), pattern) for r in recipients)
        values = headers.get(self.header_name.lower(), ())
        pattern = self.header_pattern.lower()
        return any(fnmatch.fnmatchcase(v.lower(), pattern) for v in values)


def rules_from_config(tables: Mapping[str, object]) -> tuple[MailboxRule, ...]:
    """The rules of config.toml's ``[[sandbox.mailboxes]]``; :class:`MailboxRuleInvalid` for a bad one."""
    sandbox = tables.get("sandbox", {})
    if not isinstance(sandbox, dict):
        return ()
    entries = sandbox.get("mailboxes", [])
    if not isinstance(entries, list):
        raise MailboxRuleInvalid(
            "config.toml: sandbox.mailboxes must be a list ([[sandbox.mailboxes]])"
        )
    rules = []
    for number, entry in enumerate(entries, 1):
        where = f"config.toml: mailbox rule {number}"
        if not isinstance(entry, dict):
            raise MailboxRuleInvalid(f"{where} is not a table")
        name = entry.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise MailboxRuleInvalid(
                f"{where}: name must be 1-64 letters, digits or . _ @ + - (no spaces)"
            )
        ways = [key for key in ("auth_user", "recipient", "header") if key in entry]
        if len(ways) != 1:
            raise MailboxRuleInvalid(
                f"{where} ({name}): give exactly one of auth_user, recipient or header"
            )
        value = entry[ways[0]]
        if not isinstance(value, str) or not value.strip():
            raise MailboxRuleInvalid(f"{where} ({name}): {ways[0]} must be a non-empty string")
        if ways[0] == "header":
            header_name, colon, pattern = value.partition(":")
            if not colon or not header_name.strip() or not pattern.strip():
                raise MailboxRuleInvalid(f"{where} ({name}): header must read 'X-Name: pattern'")
            rules.append(
                MailboxRule(name, header_name=header_name.strip(), header_pattern=pattern.strip())
            )
        elif ways[0] == "auth_user":
            rules.append(MailboxRule(name, auth_user=value.strip()))
        else:
            rules.append(MailboxRule(name, recipient=value.strip()))
    return tuple(rules)


def choose_mailbox(
    rules: Sequence[MailboxRule],
    auth_user: str,
    recipients: Sequence[str],
    headers: Mapping[str, Sequence[str]],
) -> str:
    """The first rule's mailbox that matches, else :data:`DEFAULT_MAILBOX`."""
    for rule in rules:
        if rule.matches(auth_user, recipients, headers):
            return rule.name
    return DEFAULT_MAILBOX


def tags_of(addresses: Iterable[str]) -> tuple[str, ...]:
    """The tags the plus-addresses among ``addresses`` carry (``bob+signup@x`` → ``signup``)."""
    tags: list[str] = []
    for address in addresses:
        match = _PLUS.match(address.strip().strip("<>").lower())
        if match:
            tag = "".join(ch for ch in match.group(1) if ch.isprintable() and not ch.isspace())
            if tag and tag not in tags:
                tags.append(tag[:64])
    return tuple(tags)


def fingerprint(rules: Sequence[MailboxRule]) -> str:
    """What changes when the rules do: a stored index routed by other rules is routed again."""
    text = json.dumps([rule.__dict__ for rule in rules], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
