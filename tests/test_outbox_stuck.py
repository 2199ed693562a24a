"""A message that waits for the user: the outbox stores why, each face says what to do.

The outbox once stored the command line's remedy ("'tuimail outbox retry'
sends it again") in the record, and the app showed it too. Now the record
holds the reason; sidecars written the old way still read and show the same.
Real outbox files and real ``tuimail`` processes.
"""

from __future__ import annotations

import json

from tests.cli_helpers import run_tuimail
from tests.outbox_helpers import message, profile, rewrite_sidecar
from tuimail.outbox import CRASHED_WHILE_SENDING, Outbox, State, Stuck
from tuimail.ui.words import last_error

RETRY_WORDS = "('tuimail outbox retry' sends it again)"


def test_a_crashed_send_stores_the_reason_not_the_command() -> None:
    outbox = Outbox()
    queued = outbox.enqueue(profile(1), message())
    rewrite_sidecar(
        outbox, queued.key, state="sending"
    )  # its sender is gone: nobody holds the lock
    [entry] = outbox.entries()
    assert entry.state is State.POSSIBLY_DELIVERED
    assert entry.stuck is Stuck.CRASHED_WHILE_SENDING
    stored = json.loads((outbox.meta_dir / f"{queued.key}.json").read_text("utf-8"))
    assert stored["stuck"] == "crashed-while-sending"
    assert stored["last_error"] == CRASHED_WHILE_SENDING
    assert "tuimail" not in stored["last_error"]
    listed = run_tuimail("outbox", "list")
    assert f"{CRASHED_WHILE_SENDING} {RETRY_WORDS}" in listed.stdout, listed.stdout
    assert last_error(entry) == f"{CRASHED_WHILE_SENDING} (r sends it again)"


def test_a_sidecar_written_with_the_command_still_reads_and_shows_the_same() -> None:
    outbox = Outbox()
    queued = outbox.enqueue(profile(1), message())
    old_words = f"{CRASHED_WHILE_SENDING} {RETRY_WORDS}"
    meta = outbox.meta_dir / f"{queued.key}.json"
    data = json.loads(meta.read_text("utf-8"))
    del data["stuck"]  # older versions had no such key
    data.update(state="possibly-delivered", last_error=old_words)
    meta.write_text(json.dumps(data), "utf-8")
    [entry] = outbox.entries()
    assert entry.stuck is Stuck.CRASHED_WHILE_SENDING
    assert entry.last_error == CRASHED_WHILE_SENDING
    assert "tuimail outbox" not in last_error(entry)  # the app does not speak commands
    listed = run_tuimail("outbox", "list")
    assert old_words in listed.stdout, listed.stdout
    (record,) = json.loads(run_tuimail("outbox", "list", "--json").stdout)
    assert record["last_error"] == old_words
    assert record["stuck"] == "crashed-while-sending"


def test_a_reason_from_a_newer_version_is_ignored_not_fatal() -> None:
    outbox = Outbox()
    queued = outbox.enqueue(profile(1), message())
    rewrite_sidecar(outbox, queued.key, stuck="some-future-reason", last_error="why")
    [entry] = outbox.entries()
    assert entry.state is State.QUEUED and entry.stuck is None and entry.last_error == "why"


def test_a_retry_clears_the_reason() -> None:
    outbox = Outbox()
    queued = outbox.enqueue(profile(1), message())
    rewrite_sidecar(outbox, queued.key, state="sending")
    outbox.entries()
    assert outbox.requeue(queued.key).stuck is None
    [entry] = outbox.entries()
    assert entry.state is State.QUEUED and entry.stuck is None


def test_an_unreadable_record_names_drop_on_the_command_line_and_d_in_the_app() -> None:
    outbox = Outbox()
    queued = outbox.enqueue(profile(1), message())
    (outbox.meta_dir / f"{queued.key}.json").write_text("{not json", "utf-8")
    [entry] = outbox.entries()
    assert entry.stuck is Stuck.RECORD_UNREADABLE
    assert "tuimail" not in entry.last_error.replace(str(outbox.queue_dir), "")
    assert last_error(entry).endswith(" (d deletes it)")
    listed = run_tuimail("outbox", "list")
    assert "('tuimail outbox drop' deletes it)" in listed.stdout, listed.stdout
    retried = run_tuimail("outbox", "retry", queued.short_id)
    assert retried.returncode == 2
    assert "('tuimail outbox drop' deletes it)" in retried.stderr, retried.stderr
