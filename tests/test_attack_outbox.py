"""Attacks on the outbox's files (tuimail/outbox.py): a message file replaced by a FIFO
under a sidecar from an older version (no subject kept), and a sidecar that claims
an explicit envelope for a composed message."""

from __future__ import annotations

import os

from tests.cli_helpers import run_tuimail
from tests.outbox_helpers import message, profile, rewrite_sidecar
from tuimail.outbox import Outbox


def test_a_fifo_in_place_of_a_queued_message_does_not_hang_the_listing() -> None:
    outbox = Outbox()
    queued = outbox.enqueue(profile(1), message(subject="queued"))
    rewrite_sidecar(outbox, queued.key, subject="")  # as an older version wrote it
    stored = outbox.queue_dir / "new" / queued.key
    stored.unlink()
    os.mkfifo(stored, 0o600)
    result = run_tuimail("outbox", "list", timeout=20)
    assert result.returncode == 0, result.stderr
    assert queued.key[:8] in result.stdout or "b@example.test" in result.stdout


def test_a_sidecar_claiming_an_explicit_envelope_sends_only_to_its_own_recipients() -> None:
    """explicit_envelope leaves out only the To/Cc check: the recipients still come from
    the same sidecar, so whoever can write it gains nothing by the flag (held)."""
    outbox = Outbox()
    queued = outbox.enqueue(profile(1), message("b@example.test", subject="composed"))
    rewrite_sidecar(outbox, queued.key, explicit_envelope=True)
    [entry] = [e for e in outbox.entries() if e.key == queued.key]
    assert entry.explicit_envelope and entry.recipients == ["b@example.test"]
