"""The outbox with real processes and real servers: nothing lost, nothing sent twice."""

from __future__ import annotations

import asyncio
import contextlib
import email
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import TUIMAIL, run_tuimail
from tests.outbox_helpers import outbox_entries, send_to_be_killed
from tests.smtpservers import ServerThread, Sink
from tuimail.cli import exitcodes
from tuimail.faults import parse_fault
from tuimail.outbox import Outbox, RetryPolicy, State
from tuimail.profiles import Profile, ProfileStore, Security
from tuimail.sandbox import Sandbox


def save_profile(port: int, name: str = "local") -> None:
    ProfileStore().save(Profile(name=name, host="127.0.0.1", port=port, security=Security.NONE))


def send(*extra: str, profile: str = "local") -> subprocess.CompletedProcess[str]:
    return run_tuimail(
        "send", "--profile", profile, "--from", "a@example.test", "--to", "b@example.test",
        "--subject", "queued", "--body", "hello", *extra,
    )  # fmt: skip


_RESERVED: list[socket.socket] = []


def free_port() -> int:
    """A port where connections are refused, and that nothing else can take.

    A socket bound but not listening holds the port (connects are refused);
    closing a probe socket at once would let another test's server grab it.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _RESERVED.append(sock)
    return int(sock.getsockname()[1])


def release(port: int) -> None:
    for sock in list(_RESERVED):
        if sock.getsockname()[1] == port:
            sock.close()
            _RESERVED.remove(sock)


def test_a_sent_message_moves_to_sent_with_its_transcript(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    sink = Sink()
    save_profile(servers.smtp(sink))
    result = send()
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(sink.messages) == 1
    assert outbox_entries() == []
    data = isolated_dirs / "data" / "tuimail"
    [sent] = list((data / "sent" / "new").iterdir())
    assert sent.read_bytes() == sink.messages[0].content
    assert sent.stat().st_mode & 0o777 == 0o600
    transcript = (data / "sent-transcripts" / f"{sent.name}.jsonl").read_text()
    assert '"text": "DATA"' in transcript and "250 Message accepted" in transcript
    assert list((data / "outbox" / "new").iterdir()) == []


def test_temporary_failure_is_queued_and_flushed_later(servers: ServerThread) -> None:
    sink = Sink(rcpt_replies={"b@example.test": "451 4.3.0 Try again later"})
    save_profile(servers.smtp(sink))
    result = send()
    assert result.returncode == exitcodes.QUEUED, result.stdout + result.stderr
    assert "queued for retry" in result.stderr
    [entry] = outbox_entries()
    assert entry["state"] == "queued" and entry["next_attempt"] > time.time()
    assert "451 4.3.0 Try again later" in entry["last_error"]

    sink.rcpt_replies.clear()
    not_due = run_tuimail("outbox", "flush")
    assert (
        not_due.returncode == exitcodes.OK and "Nothing is due: 1 message waits" in not_due.stdout
    )
    flushed = run_tuimail("outbox", "flush", "--all")
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert len(sink.messages) == 1 and outbox_entries() == []
    message_id = email.message_from_bytes(sink.messages[0].content)["Message-ID"]
    assert message_id == entry["message_id"]


def test_greylisting_server_gets_it_on_retry(sandbox: Sandbox) -> None:
    sandbox.faults.add(parse_fault("greylist"))
    save_profile(sandbox.port)
    assert send().returncode == exitcodes.QUEUED
    assert sandbox.messages() == []
    flushed = run_tuimail("outbox", "flush", "--all")
    assert flushed.returncode == 0, flushed.stdout
    assert len(sandbox.messages()) == 1


def test_permanent_failure_is_marked_failed_and_not_retried(servers: ServerThread) -> None:
    sink = Sink(rcpt_replies={"b@example.test": "550 5.1.1 No such user"})
    save_profile(servers.smtp(sink))
    result = send()
    assert result.returncode == 16, result.stderr
    [entry] = outbox_entries()
    assert entry["state"] == "failed" and "550 5.1.1 No such user" in entry["last_error"]
    sink.rcpt_replies.clear()
    flushed = run_tuimail("outbox", "flush", "--all")
    assert flushed.returncode == 1 and sink.messages == []  # never on its own
    retried = run_tuimail("outbox", "retry", entry["key"].rsplit(".", 1)[0])
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert len(sink.messages) == 1 and outbox_entries() == []


def test_possibly_delivered_keeps_the_message_id(servers: ServerThread) -> None:
    sink = Sink(disconnect_after_data=True)
    save_profile(servers.smtp(sink))
    result = send()
    assert result.returncode == 17 and "it may have arrived" in result.stderr
    [entry] = outbox_entries()
    assert entry["state"] == "possibly-delivered"
    assert run_tuimail("outbox", "flush", "--all").returncode == 1  # not retried on its own
    sink.disconnect_after_data = False
    assert run_tuimail("outbox", "retry", entry["key"]).returncode == 0
    ids = [email.message_from_bytes(m.content)["Message-ID"] for m in sink.messages]
    assert ids == [entry["message_id"], entry["message_id"]]


def test_drop(servers: ServerThread) -> None:
    save_profile(free_port())
    assert send().returncode == exitcodes.QUEUED
    [entry] = outbox_entries()
    dropped = run_tuimail("outbox", "drop", entry["key"][:10])
    assert dropped.returncode == 0 and "Dropped" in dropped.stdout
    assert outbox_entries() == []


def test_backoff_grows_with_jitter_and_gives_up(servers: ServerThread, isolated_dirs: Path) -> None:
    policy = RetryPolicy(first_delay=10, factor=2, max_delay=100, jitter=0.2)
    assert [round(policy.delay(n, _Fixed(0.5))) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 80, 100]
    assert 8 <= policy.delay(1) <= 12
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text("[outbox]\ngive_up_after = 0\n")
    save_profile(free_port())
    result = send()
    assert result.returncode == 10  # gave up at once: failed, with the stage's code
    [entry] = outbox_entries()
    assert entry["state"] == "failed" and entry["last_error"].startswith("gave up after 1")


class _Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.value


def test_killed_during_data_then_flush_delivers_exactly_once(
    sandbox: Sandbox, isolated_dirs: Path
) -> None:
    sandbox.faults.add(parse_fault("data:delay 30"))
    save_profile(sandbox.port)
    process = send_to_be_killed()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            sessions = list(sandbox.sessions)
            if sessions and any(e.text == "DATA" for e in sessions[-1].transcript):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the send never reached DATA")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    sandbox.faults.clear()
    [entry] = outbox_entries()
    assert entry["state"] == "queued"
    flushed = run_tuimail("outbox", "flush", "--all")
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(sandbox.messages()) < 1:
        time.sleep(0.05)
    time.sleep(0.3)
    assert len(sandbox.messages()) == 1
    assert outbox_entries() == []


class SlowSink(Sink):
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def test_two_concurrent_flushes_send_each_message_once(servers: ServerThread) -> None:
    port = free_port()
    save_profile(port)
    for i in range(10):
        assert send("--header", f"X-Number: {i}").returncode == exitcodes.QUEUED
    sink = SlowSink()

    release(port)

    async def listen() -> None:
        from aiosmtpd.smtp import SMTP

        server = await servers.loop.create_server(
            lambda: SMTP(sink, hostname="mx.test", loop=servers.loop), "127.0.0.1", port
        )
        servers._servers.append(server)

    asyncio.run_coroutine_threadsafe(listen(), servers.loop).result(5)
    flushes = [
        subprocess.Popen([TUIMAIL, "outbox", "flush", "--all"], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in flushes]
    # Each may see the other's message still queued when it finishes (75), never a failure.
    assert all(p.returncode in (0, exitcodes.QUEUED) for p in flushes), outputs
    assert "skipped: another process is sending it" in "".join(outputs) or len(sink.messages) == 10
    numbers = sorted(email.message_from_bytes(m.content)["X-Number"] for m in sink.messages)
    assert numbers == [str(i) for i in range(10)]  # all delivered, none twice
    assert outbox_entries() == []


def test_unwritable_data_dir_is_a_clear_error(servers: ServerThread, isolated_dirs: Path) -> None:
    sink = Sink()
    save_profile(servers.smtp(sink))
    data = isolated_dirs / "data"
    data.mkdir(parents=True, exist_ok=True)
    immutable = os.geteuid() == 0 and shutil.which("chattr") is not None
    if immutable:
        made = subprocess.run(["chattr", "+i", str(data)], capture_output=True)
        if made.returncode != 0:
            pytest.skip(f"chattr +i is not supported here: {made.stderr!r}")
    else:
        data.chmod(0o500)
    try:
        result = send()
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(data)], check=True)
        else:
            data.chmod(0o700)
    assert result.returncode == exitcodes.STORE_FAILED, result.stdout + result.stderr
    assert "cannot prepare the outbox" in result.stderr and "nothing was sent" in result.stderr
    assert sink.messages == []


async def test_outbox_api_states(tmp_path: Path, servers: ServerThread) -> None:
    from tuimail.message import Draft, build_message

    outbox = Outbox(tmp_path)
    profile = Profile(name="p", host="127.0.0.1", port=free_port(), security=Security.NONE)
    outgoing = build_message(Draft(from_address="a@example.test", to=["b@example.test"]))
    queued = outbox.enqueue(profile, outgoing)
    assert (tmp_path / "outbox" / "new" / queued.key).read_bytes() == outgoing.to_bytes()
    outcome = await outbox.attempt(queued.key)
    assert outcome.result == "queued" and outbox.get(queued.key).state is State.QUEUED
    # A sidecar whose message never made it is cleaned up, not sent.
    (tmp_path / "outbox-meta" / "stray.json").write_text(json.dumps({"key": "stray"}))
    assert [e.key for e in outbox.entries()] == [queued.key]
    assert not (tmp_path / "outbox-meta" / "stray.json").exists()


def test_drafts_round_trip(tmp_path: Path) -> None:
    from tuimail.drafts import DraftStore, SavedDraft
    from tuimail.message import Draft

    store = DraftStore(tmp_path / "drafts")
    draft = Draft(
        from_address="a@example.test", to=["b@example.test"], cc=["c@example.test"],
        subject="Ünïcode", body="line 1\nline 2", attachments=[Path("/tmp/x.pdf")],
        headers=[("X-A", "1")],
    )  # fmt: skip
    saved = SavedDraft(DraftStore.new_id(), "work", draft)
    store.save(saved)
    assert store.load(saved.id).draft == draft
    assert (tmp_path / "drafts" / f"{saved.id}.json").stat().st_mode & 0o777 == 0o600
    (tmp_path / "drafts" / "broken.json").write_text("{not json")
    assert [d.id for d in store.list()] == [saved.id]
    assert (tmp_path / "drafts" / "broken.json").exists()  # skipped, never deleted
    store.delete(saved.id)
    assert store.list() == []
