"""Never lost, never sent twice: the outbox's own bookkeeping raced and damaged.

A ``tuimail send`` queues a message while a cron flush or ``outbox list``
scans the outbox; a sidecar is damaged or missing; a server answers the
final dot with something that is not a plain 250. Real processes and
scripted servers (tests/smtpservers.py).
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from typing import Any

import pytest

from tests.cli_helpers import TUIMAIL, run_tuimail
from tests.outbox_helpers import message, profile, sent_keys
from tests.smtpservers import DEFAULT_REPLIES, Reply, ScriptedServer, ServerThread
from tuimail import paths
from tuimail.outbox import MessageGone, Outbox, State


def test_a_flush_scanning_while_a_message_is_queued_leaves_it_queued(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sidecar is written before the message: another process's scan in
    between must not take it for stale and delete it (the message would then
    sit in the outbox unseen, and the send that queued it would skip it)."""
    import tuimail.maildir
    import tuimail.outbox as outbox_module

    real_deliver = tuimail.maildir.deliver
    seen_by_other: list[Any] = []

    def deliver_while_another_process_scans(*args: Any, **kwargs: Any) -> Any:
        listed = run_tuimail("outbox", "list", "--json")  # a real second process
        assert listed.returncode == 0, listed.stderr
        seen_by_other.append(json.loads(listed.stdout))
        return real_deliver(*args, **kwargs)

    monkeypatch.setattr(outbox_module, "deliver", deliver_while_another_process_scans)
    outbox = Outbox()
    queued = outbox.enqueue(profile(1), message())
    assert seen_by_other == [[]]
    assert [e.key for e in outbox.entries()] == [queued.key]
    assert outbox.entries()[0].state is State.QUEUED
    assert (paths.data_dir() / "outbox-meta" / f"{queued.key}.json").exists()


def _damage(outbox: Outbox, key: str, text: str | None) -> None:
    meta = outbox.meta_dir / f"{key}.json"
    if text is None:
        meta.unlink()
    else:
        meta.write_text(text, "utf-8")


@pytest.mark.parametrize(
    "damage",
    [
        None,
        "",
        "{not json",
        '{"key": "x"}',
        "[1, 2]",
        '"a string"',
    ],
    ids=["missing", "empty", "bad-json", "no-fields", "a-list", "a-string"],
)
def test_a_message_with_a_damaged_sidecar_is_shown_never_hidden(damage: str | None) -> None:
    """Its envelope (Bcc too) lives only in the sidecar: it is listed as failed,
    saying where the message is, refused by retry, and can be dropped."""
    outbox = Outbox()
    queued = outbox.enqueue(profile(1), message())
    _damage(outbox, queued.key, damage)
    listed = run_tuimail("outbox", "list")
    assert listed.returncode == 0, listed.stderr
    assert "failed" in listed.stdout and "cannot be sent" in listed.stdout, listed.stdout
    short = queued.short_id
    assert short in listed.stdout
    retried = run_tuimail("outbox", "retry", short)
    assert retried.returncode == 2 and "cannot be sent" in retried.stderr, retried
    flushed = run_tuimail("outbox", "flush", "--all")
    assert "Nothing is due" in flushed.stdout and flushed.returncode == 1, flushed
    assert (outbox.queue_dir / "new" / queued.key).exists()
    dropped = run_tuimail("outbox", "drop", short)
    assert dropped.returncode == 0, dropped.stderr
    assert outbox.entries() == []


def test_a_bad_state_string_is_shown_not_hidden() -> None:
    outbox = Outbox()
    queued = outbox.enqueue(profile(1), message())
    meta = outbox.meta_dir / f"{queued.key}.json"
    data = json.loads(meta.read_text("utf-8"))
    data["state"] = "delivered-maybe"
    meta.write_text(json.dumps(data), "utf-8")
    [entry] = outbox.entries()
    assert entry.state is State.FAILED and "unreadable" in entry.last_error


# -- what the reply to the final dot means -------------------------------------


async def test_garbage_in_reply_to_the_final_dot_is_possibly_delivered(
    servers: ServerThread,
) -> None:
    """The data went out; an unreadable answer is not a refusal (and not a crash)."""
    script = ScriptedServer({".": Reply("garbage, not a reply")})
    port = servers.scripted(script)
    outbox = Outbox()
    queued = outbox.enqueue(profile(port), message())
    outcome = await outbox.attempt(queued.key)
    assert outcome.result == "possibly-delivered", outcome
    [entry] = outbox.entries()
    assert entry.state is State.POSSIBLY_DELIVERED
    assert await outbox.flush(include_not_due=True) == []
    assert len(script.messages) == 1


def test_garbage_in_reply_to_the_final_dot_through_the_command_line(
    servers: ServerThread,
) -> None:
    script = ScriptedServer({".": Reply("\x1b]0;garbage\x07")})
    port = servers.scripted(script)
    result = run_tuimail(
        "send", "--server", f"127.0.0.1:{port}", "--security", "none",
        "--from", "a@example.test", "--to", "b@example.test", "--subject", "s", "--body", "x",
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    assert result.returncode != 0
    [entry] = Outbox().entries()
    assert entry.state is State.POSSIBLY_DELIVERED


@pytest.mark.parametrize("reply", ["200 2.0.0 fine", "252 2.0.0 taken"])
async def test_any_2xx_to_the_final_dot_is_delivered(servers: ServerThread, reply: str) -> None:
    """RFC 5321 4.2.1: the first digit decides. A 2xx marked failed would be
    retried by the user and arrive twice."""
    script = ScriptedServer({".": Reply(reply)})
    port = servers.scripted(script)
    outbox = Outbox()
    queued = outbox.enqueue(profile(port), message())
    outcome = await outbox.attempt(queued.key)
    assert outcome.result == "sent", outcome
    assert outbox.entries() == [] and sent_keys(outbox.root) == [queued.key]


@pytest.mark.parametrize("reply", ["354 again", "199 what", "999 what", "-25 x"])
async def test_a_reply_to_the_final_dot_that_is_no_answer_is_possibly_delivered(
    servers: ServerThread, reply: str
) -> None:
    script = ScriptedServer({".": Reply(reply)})
    port = servers.scripted(script)
    outbox = Outbox()
    queued = outbox.enqueue(profile(port), message())
    outcome = await outbox.attempt(queued.key)
    assert outcome.result == "possibly-delivered", outcome
    assert await outbox.flush(include_not_due=True) == []
    assert len(script.messages) == 1


# -- kill -9 of a real 'tuimail send' at every stage -----------------------------

#: Where the server stops answering -> what 'outbox list' must say after the kill
#: (None: nothing left, it was delivered), and whether a flush sends it.
KILL_STAGES = {
    "EHLO": ("queued", True),
    "MAIL": ("queued", True),
    "RCPT": ("queued", True),
    "DATA": ("queued", True),  # the 354 never came: the server never had it
    ".": ("possibly-delivered", False),  # the data went out, no answer yet
    "QUIT": (None, False),  # the 250 came: delivered, whatever happens next
}


def _held_at(script: ScriptedServer, verb: str) -> bool:
    if verb == ".":
        return script.final_dot.is_set()
    return verb in script.verbs()


@pytest.mark.parametrize("verb", list(KILL_STAGES))
def test_kill_9_of_a_send_at_each_stage_never_loses_nor_doubles_it(
    servers: ServerThread, verb: str
) -> None:
    state, resent = KILL_STAGES[verb]
    script = ScriptedServer({verb: Reply(None, hold=True)})
    port = servers.scripted(script)
    process = subprocess.Popen(
        [TUIMAIL, "send", "--server", f"127.0.0.1:{port}", "--security", "none",
         "--timeout", "30", "--from", "a@example.test", "--to", "b@example.test",
         "--subject", "killed", "--body", "x"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not _held_at(script, verb):
            assert time.monotonic() < deadline, f"the send never reached {verb}"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    listed = run_tuimail("outbox", "list", "--json")
    entries = json.loads(listed.stdout)
    assert [e["state"] for e in entries] == ([state] if state else []), entries
    script.replies.pop(verb)  # the server behaves from now on
    script.replies.update({k: v for k, v in DEFAULT_REPLIES.items() if k == verb})
    flushed = run_tuimail("outbox", "flush")
    assert "Traceback" not in flushed.stderr
    assert len(script.messages) == (1 if verb in (".", "QUIT") or resent else 0)
    assert script.verbs().count("DATA") == (1 if not resent else 2 if verb == "DATA" else 1)
    left = json.loads(run_tuimail("outbox", "list", "--json").stdout)
    assert [e["state"] for e in left] == (["possibly-delivered"] if verb == "." else [])


async def test_a_sent_folder_removed_by_hand_is_made_again_not_possibly_delivered(
    servers: ServerThread,
) -> None:
    """A delivered message shown as 'possibly delivered' invites a retry: a second copy."""
    import shutil

    script = ScriptedServer()
    port = servers.scripted(script)
    outbox = Outbox()
    queued = outbox.enqueue(profile(port), message())
    shutil.rmtree(outbox.sent_dir)
    shutil.rmtree(outbox.transcripts_dir)
    outcome = await outbox.attempt(queued.key)
    assert outcome.result == "sent" and not outcome.detail, outcome
    assert outbox.entries() == [] and sent_keys(outbox.root) == [queued.key]
    assert "DATA" in outbox.sent_transcript(queued.key)


class SentWhileLookedUp(Outbox):
    """Another process retires the message between the look-up and the lock."""

    def get(self, key: str) -> Any:
        entry = super().get(key)
        (self.queue_dir / "new" / entry.key).rename(self.sent_dir / "new" / entry.key)
        return entry


def test_dropping_a_message_sent_meanwhile_says_so() -> None:
    outbox = SentWhileLookedUp()
    queued = outbox.enqueue(profile(1), message())
    with pytest.raises(MessageGone, match="sent or dropped meanwhile"):
        outbox.drop(queued.short_id)


@pytest.mark.parametrize("damage", ["truncate", "edit"])
async def test_a_message_file_damaged_on_disk_is_failed_not_sent(
    servers: ServerThread, damage: str
) -> None:
    """Cut after its headers, it still parses: it would go out, shortened, as the same message."""
    script = ScriptedServer()
    port = servers.scripted(script)
    outbox = Outbox()
    queued = outbox.enqueue(profile(port), message())
    path = outbox.queue_dir / "new" / queued.key
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\r\n\r\n") + 4] if damage == "truncate" else data + b"x")
    [outcome] = await outbox.flush()
    assert outcome.result == "failed" and "changed on disk" in outcome.detail, outcome
    assert script.connections == 0
    [entry] = outbox.entries()
    assert entry.state is State.FAILED
