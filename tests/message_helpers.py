"""Drafts for the message-building tests, and reading built messages back."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from tuimail.message import Draft, DraftInvalid, OutgoingMessage, build_message


def draft(**changes: Any) -> Draft:
    """Alice to Bob, subject Hello, one line of body; ``changes`` replace fields."""
    fields: dict[str, Any] = {
        "from_address": "Alice <alice@example.com>",
        "to": ["bob@example.com"],
        "subject": "Hello",
        "body": "Hi Bob,\n",
    }
    fields.update(changes)
    return Draft(**fields)


def build(**changes: Any) -> OutgoingMessage:
    return build_message(draft(**changes))


def errors_of(**changes: Any) -> dict[str, str]:
    """Build a draft that must fail; the errors by field."""
    with pytest.raises(DraftInvalid) as info:
        build(**changes)
    assert info.value.errors, "DraftInvalid without errors"
    return {e.field: e.message for e in info.value.errors}


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message
