"""After the data went out, nothing can turn a send into a plain retry, and a
delivered message is never offered for sending again.

Against scripted servers (tests/smtpservers.py) and real processes: a reply to
the final dot that cannot be read, and a delivery whose move to ``sent/``
fails (an immutable directory, ``chattr +i``, as root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import run_tuimail
from tests.smtpservers import Reply, ScriptedServer, ServerThread, Sink
from tuimail.message import Draft, OutgoingMessage, build_message
from tuimail.outbox import NotRetryable, Outbox, State
from tuimail.profiles import Profile, Security


def local(port: int) -> Profile:
    return Profile(name="local", host="127.0.0.1", port=port, security=Security.NONE, timeout=5.0)


def message() -> OutgoingMessage:
    return build_message(
        Draft(from_address="a@example.test", to=["b@example.test"], subject="s", body="b\n")
    )


@pytest.mark.parametrize(
    "reply",
    ["garbage without a code", "2" * 40_000],
    ids=["malformed", "too long"],
)
def test_an_unreadable_reply_to_the_final_dot_is_possibly_delivered(
    reply: str, servers: ServerThread
) -> None:
    port = servers.scripted(ScriptedServer({".": Reply(reply)}))
    args = ["send", "--server", f"127.0.0.1:{port}", "--security", "none",
            "--from", "a@example.test", "--to", "b@example.test", "--subject", "s", "--body", "b"]  # fmt: skip
    result = run_tuimail(*args)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 17, result.stdout + result.stderr
    [entry] = Outbox().entries()
    assert entry.state is State.POSSIBLY_DELIVERED, entry
    assert "may or may not have been delivered" in entry.last_error


@contextmanager
def immutable(directory: Path) -> Iterator[None]:
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("needs root and chattr to make a directory unwritable")
    made = subprocess.run(["chattr", "+i", str(directory)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i is not supported here: {made.stderr!r}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


async def test_a_delivered_message_that_cannot_be_moved_is_never_offered_again(
    servers: ServerThread, tmp_path: Path
) -> None:
    sink = Sink()
    outbox = Outbox(tmp_path)
    queued = outbox.enqueue(local(servers.smtp(sink)), message())
    with immutable(outbox.sent_dir / "new"):
        outcome = await outbox.attempt(queued.key)
        assert outcome.result == "sent", outcome.detail
        [entry] = outbox.entries()
        assert entry.state is State.DELIVERED, entry
        assert "could not be moved" in entry.last_error
        with pytest.raises(NotRetryable, match="was delivered"):
            outbox.requeue(queued.key)
        assert (await outbox.attempt(queued.key)).result == "skipped"
    # Once the directory can be written, a flush finishes the move; nothing is sent again.
    assert [o.result for o in await outbox.flush()] == ["sent"]
    assert outbox.entries() == [] and len(sink.messages) == 1
    assert [key for key, _ in outbox.sent()] == [queued.key]


async def test_one_send_options_never_follow_the_profile_to_another_server(
    servers: ServerThread, certs: Any, isolated_dirs: Path
) -> None:
    """``--no-verify`` given for one send stays with the server it was given for."""
    from tuimail.profiles import ProfileStore, with_changes

    old_sink, new_sink = Sink(), Sink()
    old_port = servers.smtp(old_sink, tls_context=certs.self_signed)
    new_port = servers.smtp(new_sink, tls_context=certs.self_signed)
    base = Profile(
        name="work", host="127.0.0.1", port=old_port, security=Security.STARTTLS,
        ca_file=str(certs.ca_file), timeout=5.0,
    )  # fmt: skip
    ProfileStore().save(base)
    outbox = Outbox()
    queued = outbox.enqueue(with_changes(base, verify_tls=False), message())
    assert queued.follows_profile and queued.overrides == {"verify_tls": False}
    # The profile moves to another server; the message follows it, not the flag.
    ProfileStore().save(with_changes(base, port=new_port))
    outcome = await outbox.attempt(queued.key)
    assert outcome.result == "failed", outcome.detail  # the certificate is checked, and refused
    assert new_sink.messages == [] and old_sink.messages == []
    transcript = outcome.report.transcript.to_text() if outcome.report else ""
    assert "were for its former server and are not used" in transcript, transcript


@pytest.mark.parametrize(
    ("setting", "value"),
    [("factor", 1e308), ("factor", float("nan")), ("first_delay", -1), ("jitter", 2),
     ("max_delay", float("inf")), ("give_up_after", "soon"), ("factor", True)],
)  # fmt: skip
def test_a_retry_setting_out_of_range_is_refused_in_words(
    setting: str, value: Any, isolated_dirs: Path
) -> None:
    from tuimail.outbox import RetryPolicy

    with pytest.raises(ValueError, match=setting):
        RetryPolicy.from_config({setting: value})
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True)
    written = f'"{value}"' if isinstance(value, str) else str(value).lower()
    written = {"nan": "nan", "inf": "inf"}.get(written, written)
    (config / "config.toml").write_text(f"[outbox]\n{setting} = {written}\n")
    flushed = run_tuimail("outbox", "flush")
    assert "Traceback" not in flushed.stderr, flushed.stderr
    assert f"config.toml [outbox]: {setting}" in flushed.stderr, flushed.stderr


def test_backoff_reaches_its_cap_without_overflowing() -> None:
    """The largest factor allowed, thousands of attempts: the cap, never OverflowError."""
    from tuimail.outbox import RetryPolicy

    policy = RetryPolicy(first_delay=60, factor=100, max_delay=3600, jitter=0)
    assert [policy.delay(n) for n in (1, 2, 3, 5000)] == [60, 3600, 3600, 3600]
    assert RetryPolicy(jitter=0).delay(1) == 60 and RetryPolicy(jitter=0).delay(3) == 240


async def test_every_recipient_refused_some_for_good_retries_only_the_others(
    servers: ServerThread, tmp_path: Path
) -> None:
    """A 550 recipient is never tried again because another got a 452 in the same session."""
    sink = Sink(
        rcpt_replies={
            "carol@example.test": "452 4.2.2 Mailbox full",
            "dave@example.test": "550 5.1.1 No such user",
        }
    )
    outbox = Outbox(tmp_path)
    draft = Draft(
        from_address="a@example.test",
        to=["carol@example.test", "dave@example.test"],
        subject="s",
        body="b\n",
    )
    queued = outbox.enqueue(local(servers.smtp(sink)), build_message(draft))
    outcome = await outbox.attempt(queued.key)
    assert outcome.result == "queued", outcome.detail
    [entry] = outbox.entries()
    assert entry.recipients == ["carol@example.test"]
    assert [r["address"] for r in entry.rejected] == ["dave@example.test"]

    sink.rcpt_replies.clear()
    assert [o.result for o in await outbox.flush(include_not_due=True)] == ["sent"]
    assert [m.rcpt_tos for m in sink.messages] == [["carol@example.test"]]


@pytest.mark.parametrize("refused_at", ["MAIL", "."])
async def test_a_refusal_for_good_stands_when_the_deadline_runs_out_in_rset(
    refused_at: str, servers: ServerThread, tmp_path: Path
) -> None:
    """The server said 5xx; a RSET that never gets its answer changes nothing."""
    script = ScriptedServer(
        {refused_at: Reply("554 5.7.1 Refused by policy"), "RSET": Reply(None, hold=True)}
    )
    outbox = Outbox(tmp_path)
    queued = outbox.enqueue(local(servers.scripted(script)), message())
    outcome = await outbox.attempt(queued.key, deadline=1.0)
    assert outcome.result == "failed", outcome.detail
    assert "554 5.7.1 Refused by policy" in outcome.detail
    assert "RSET" in script.verbs()
