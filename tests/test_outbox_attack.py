"""Never lost, never sent twice: the session and the outbox against hostile servers.

Scripted servers (tests/smtpservers.py) hang up, hold replies and say 421 at
the worst moments; real ``tuimail`` processes are killed with SIGKILL and run
side by side; the keyring is the real Secret Service of tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import json
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import TUIMAIL, run_tuimail
from tests.conftest import SecretService
from tests.outbox_helpers import message, outbox_entries, profile, send_to_be_killed, sent_keys
from tests.smtpservers import Reply, ScriptedServer, ServerThread, Sink, password_checker
from tuimail.cli import exitcodes
from tuimail.credentials import CredentialStore, Secret
from tuimail.faults import parse_fault
from tuimail.outbox import Outbox, Queued, State, short_id
from tuimail.profiles import Profile, ProfileStore, with_changes
from tuimail.sandbox import Sandbox
from tuimail.session import Stage, send

PASSWORD = "queued-secret-1"
NEW_PASSWORD = "queued-secret-2"


# -- the session: what counts as delivered -------------------------------------


async def test_deadline_running_out_in_quit_after_the_250_is_delivered(
    servers: ServerThread, tmp_path: Path
) -> None:
    """The 250 to the final dot settles it; QUIT hanging until the deadline changes nothing."""
    script = ScriptedServer({"QUIT": Reply(None, hold=True)})
    port = servers.scripted(script)
    outbox = Outbox(tmp_path)
    queued = outbox.enqueue(profile(port, timeout=30), message())
    outcome = await outbox.attempt(queued.key, deadline=1.0)
    assert outcome.result == "sent", outcome.detail
    assert outcome.report is not None and outcome.report.ok, outcome.report
    assert outbox.entries() == [] and sent_keys(tmp_path) == [queued.key]
    assert await outbox.flush(include_not_due=True) == []
    assert len(script.messages) == 1 and script.verbs().count("DATA") == 1
    transcript = outbox.sent_transcript(queued.key)
    assert "QUIT" in transcript and "ran out while closing" in transcript


async def test_connection_lost_before_354_is_a_plain_temporary_failure(
    servers: ServerThread, tmp_path: Path
) -> None:
    """The server never had the message: retried, never 'possibly delivered'."""
    script = ScriptedServer({"DATA": Reply(None, close=True)})
    port = servers.scripted(script)
    report = await send(profile(port), message())
    assert report.failure is not None and report.failure.stage is Stage.DATA
    assert report.failure.temporary and not report.failure.possibly_delivered
    assert script.messages == []


async def test_data_refused_before_the_payload_is_not_possibly_delivered(
    servers: ServerThread,
) -> None:
    script = ScriptedServer({"DATA": Reply("451 4.3.0 Try DATA later")})
    port = servers.scripted(script)
    report = await send(profile(port), message())
    assert report.failure is not None and report.failure.stage is Stage.DATA
    assert report.failure.code == 451 and report.failure.temporary
    assert not report.failure.possibly_delivered
    assert "RSET" in script.verbs()


async def test_deadline_before_354_is_temporary_not_possibly_delivered(
    servers: ServerThread,
) -> None:
    script = ScriptedServer({"DATA": Reply(None, hold=True)})
    port = servers.scripted(script)
    report = await send(profile(port, timeout=30), message(), deadline=1.0)
    assert report.failure is not None and report.failure.stage is Stage.DATA
    assert report.failure.temporary and not report.failure.possibly_delivered


async def test_deadline_while_the_final_dot_waits_is_possibly_delivered(
    servers: ServerThread,
) -> None:
    script = ScriptedServer({".": Reply(None, hold=True)})
    port = servers.scripted(script)
    report = await send(profile(port, timeout=30), message(), deadline=1.0)
    assert report.failure is not None and report.failure.possibly_delivered


async def test_a_record_that_cannot_be_written_stops_before_the_data(
    servers: ServerThread,
) -> None:
    """If the outbox cannot note that the data is going out, the data does not go out."""
    script = ScriptedServer()
    port = servers.scripted(script)

    def disk_full() -> None:
        raise OSError(28, "No space left on device")

    report = await send(profile(port), message(), before_data=disk_full)
    assert report.failure is not None and report.failure.stage is Stage.DATA
    assert report.failure.temporary and not report.failure.possibly_delivered
    assert "No space left on device" in report.failure.explanation
    assert script.messages == [] and not script.final_dot.is_set()


def test_sandbox_data_disconnect_is_queued_and_retried(sandbox: Sandbox) -> None:
    """``serve --fault data:disconnect``: the sandbox hangs up at DATA, before any 354."""
    sandbox.faults.add(parse_fault("data:disconnect"))
    ProfileStore().save(profile(sandbox.port))
    result = run_tuimail(
        "send", "--profile", "local", "--from", "a@example.test", "--to", "b@example.test",
        "--body", "x",
    )  # fmt: skip
    assert result.returncode == exitcodes.QUEUED, result.stdout + result.stderr
    [entry] = outbox_entries()
    assert entry["state"] == "queued"
    sandbox.faults.clear()
    flushed = run_tuimail("outbox", "flush", "--all")
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert len(sandbox.messages()) == 1 and outbox_entries() == []


async def test_421_during_rcpt_ends_the_session_with_the_servers_words(
    servers: ServerThread,
) -> None:
    script = ScriptedServer({"RCPT": Reply("421 4.7.0 mx.test Error: too many errors", close=True)})
    port = servers.scripted(script)
    report = await send(profile(port), message("b@example.test", "c@example.test"))
    failure = report.failure
    assert failure is not None and failure.stage is Stage.RCPT
    assert failure.temporary and failure.code == 421
    assert "too many errors" in failure.explanation and "too many errors" in failure.reply
    assert script.verbs() == ["EHLO", "MAIL", "RCPT"]  # nothing after the 421
    assert report.delivery is None


async def test_421_to_the_final_dot_is_temporary_and_not_delivered(
    servers: ServerThread, tmp_path: Path
) -> None:
    script = ScriptedServer({".": Reply("421 4.3.0 shutting down", close=True)})
    port = servers.scripted(script)
    outbox = Outbox(tmp_path)
    queued = outbox.enqueue(profile(port), message())
    outcome = await outbox.attempt(queued.key)
    assert outcome.result == "queued" and "shutting down" in outcome.detail
    assert script.verbs()[-1] == "DATA"  # no RSET or QUIT on the closed connection


async def test_unusable_ca_file_is_a_tls_failure(tmp_path: Path) -> None:
    for bad in (tmp_path / "missing.pem", tmp_path / "junk.pem"):
        if bad.name == "junk.pem":
            bad.write_text("this is not a certificate\n")
        report = await send(profile(1, security="starttls", ca_file=str(bad)), message())
        assert report.failure is not None and report.failure.stage is Stage.TLS
        assert "cannot use the CA file" in report.failure.explanation
        assert not report.failure.temporary


# -- the outbox: crashes, races, partial sends -----------------------------------


def test_kill_9_while_the_final_dot_waits_is_possibly_delivered_never_resent(
    servers: ServerThread,
) -> None:
    script = ScriptedServer({".": Reply(None, hold=True)})
    port = servers.scripted(script)
    ProfileStore().save(profile(port, timeout=30))
    process = send_to_be_killed()
    try:
        assert script.final_dot.wait(20), "the send never reached the final dot"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    [entry] = outbox_entries()
    assert entry["state"] == "possibly-delivered"
    assert "stopped while the message was being transferred" in entry["last_error"]
    listed = run_tuimail("outbox", "list")
    assert "possibly-delivered" in listed.stdout
    flushed = run_tuimail("outbox", "flush", "--all")
    assert flushed.returncode == 1, flushed.stdout + flushed.stderr
    assert script.connections == 1 and len(script.messages) == 1  # never resent on its own
    [still] = outbox_entries()
    assert still["state"] == "possibly-delivered"


def test_a_sending_message_whose_sender_lives_is_left_alone(tmp_path: Path) -> None:
    """Only a 'sending' message nobody holds the lock of counts as crashed."""
    outbox = Outbox(tmp_path)
    queued = outbox.enqueue(profile(1), message())
    meta = tmp_path / "outbox-meta" / f"{queued.key}.json"
    data = json.loads(meta.read_text())
    data["state"] = "sending"
    meta.write_text(json.dumps(data))
    with outbox._locked(queued.key) as locked:
        assert locked
        [seen] = Outbox(tmp_path).entries()
        assert seen.state is State.SENDING
    [seen] = Outbox(tmp_path).entries()
    assert seen.state is State.POSSIBLY_DELIVERED


class StaleOutbox(Outbox):
    """A flush that took its list before another process changed the messages."""

    snapshot: list[Queued]

    def entries(self) -> list[Queued]:
        return self.snapshot


@pytest.mark.parametrize(
    ("meanwhile", "state"),
    [
        ({"disconnect_after_data": True}, "possibly-delivered"),
        ({"rcpt_replies": {"b@example.test": "550 5.1.1 No such user"}}, "failed"),
        ({"rcpt_replies": {"b@example.test": "451 4.3.0 Greylisted"}}, "queued"),
    ],
)
async def test_a_flush_rereads_the_state_under_the_lock(
    servers: ServerThread, tmp_path: Path, meanwhile: dict[str, Any], state: str
) -> None:
    """Flush A lists the message as due; flush B then marks it; A must not send it."""
    sink = Sink()
    port = servers.smtp(sink)
    first = StaleOutbox(tmp_path)
    queued = first.enqueue(profile(port), message())
    first.snapshot = Outbox(tmp_path).entries()  # A: "due now"

    for name, value in meanwhile.items():
        setattr(sink, name, value)
    [other] = await Outbox(tmp_path).flush()  # B, in between
    assert other.result == state
    delivered_before = len(sink.messages)
    sink.disconnect_after_data = False
    sink.rcpt_replies = {}

    [outcome] = await first.flush()  # A goes on, due-only, as cron and the app's timer do
    assert outcome.result == "skipped" and "no longer due" in outcome.detail
    assert len(sink.messages) == delivered_before
    assert Outbox(tmp_path).get(queued.key).state.value == state


async def test_4xx_refused_recipients_stay_queued_for_them_only(
    servers: ServerThread, tmp_path: Path
) -> None:
    sink = Sink(
        rcpt_replies={
            "later@example.test": "452 4.2.2 Mailbox full",
            "never@example.test": "550 5.1.1 No such user",
        }
    )
    port = servers.smtp(sink)
    outbox = Outbox(tmp_path)
    outgoing = message("b@example.test", "later@example.test", "never@example.test")
    queued = outbox.enqueue(profile(port), outgoing)
    outcome = await outbox.attempt(queued.key, outgoing=outgoing)
    assert outcome.result == "queued"
    assert outcome.delivered_to == ["b@example.test"]
    assert [r.address for r in outcome.deferred] == ["later@example.test"]
    assert [r.address for r in outcome.rejected] == ["never@example.test"]
    assert "452 4.2.2 Mailbox full" in outcome.detail and "550 5.1.1" in outcome.detail
    entry = outbox.get(queued.key)
    assert entry.recipients == ["later@example.test"]
    assert entry.delivered_to == ["b@example.test"]
    assert [r["address"] for r in entry.rejected] == ["never@example.test"]

    sink.rcpt_replies.clear()
    [retried] = await outbox.flush(include_not_due=True)
    assert retried.result == "sent" and retried.delivered_to == ["later@example.test"]
    assert [m.rcpt_tos for m in sink.messages] == [["b@example.test"], ["later@example.test"]]
    ids = {email.message_from_bytes(m.content)["Message-ID"] for m in sink.messages}
    assert ids == {queued.message_id}
    assert outbox.entries() == [] and sent_keys(tmp_path) == [queued.key]


def test_partly_refused_send_on_the_command_line_says_which(servers: ServerThread) -> None:
    sink = Sink(rcpt_replies={"later@example.test": "451 4.7.1 Greylisted"})
    ProfileStore().save(profile(servers.smtp(sink)))
    result = run_tuimail(
        "send", "--profile", "local", "--from", "a@example.test", "--to", "b@example.test",
        "--to", "later@example.test", "--body", "x",
    )  # fmt: skip
    assert result.returncode == exitcodes.QUEUED, result.stdout + result.stderr
    [entry] = outbox_entries()
    assert entry["recipients"] == ["later@example.test"]
    assert entry["delivered_to"] == ["b@example.test"]
    assert [m.rcpt_tos for m in sink.messages] == [["b@example.test"]]


# -- ids, bad messages, passwords -------------------------------------------------


def test_drop_and_retry_refuse_empty_and_ambiguous_ids(tmp_path: Path) -> None:
    outbox = Outbox()
    keys = [outbox.enqueue(profile(1), message(subject=f"n{i}")).key for i in range(2)]
    common = ""
    for a, b in zip(*keys, strict=False):
        if a != b:
            break
        common += a
    assert common
    for action in ("drop", "retry"):
        for given in ("", "  ", common):
            result = run_tuimail("outbox", action, given)
            assert result.returncode == exitcodes.USAGE, (action, given, result.stderr)
            assert "Traceback" not in result.stderr
        ambiguous = run_tuimail("outbox", action, common)
        assert "matches 2 outbox messages" in ambiguous.stderr
        assert all(short_id(k) in ambiguous.stderr for k in keys)
    assert len(outbox_entries()) == 2
    dropped = run_tuimail("outbox", "drop", outbox.get(keys[0]).short_id)
    assert dropped.returncode == 0 and len(outbox_entries()) == 1


def test_send_with_an_unusable_ca_file_is_a_clear_tls_error() -> None:
    result = run_tuimail(
        "send", "--server", "127.0.0.1:1", "--security", "starttls",
        "--ca-file", "/nonexistent/ca.pem", "--from", "a@example.test",
        "--to", "b@example.test", "--body", "x",
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    assert result.returncode == exitcodes.for_stage(Stage.TLS), result.stderr
    assert "cannot use the CA file '/nonexistent/ca.pem'" in result.stdout + result.stderr


def test_one_bad_message_does_not_block_the_others(servers: ServerThread, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not PEM\n")
    sink = Sink()
    port = servers.smtp(sink)
    outbox = Outbox()
    bad = outbox.enqueue(
        profile(port, security="starttls", ca_file=str(junk)), message(subject="bad")
    )
    good = outbox.enqueue(profile(port), message(subject="good"))
    flushed = run_tuimail("outbox", "flush")
    assert "Traceback" not in flushed.stderr, flushed.stderr
    assert flushed.returncode == 1, flushed.stdout + flushed.stderr
    assert [email.message_from_bytes(m.content)["Subject"] for m in sink.messages] == ["good"]
    [left] = outbox_entries()
    assert left["key"] == bad.key and left["state"] == "failed"
    assert "cannot use the CA file" in left["last_error"]
    assert good.key not in [e["key"] for e in outbox_entries()]


def test_flush_leaves_server_messages_needing_a_password_alone(servers: ServerThread) -> None:
    sink = Sink()
    port = servers.smtp(
        sink, authenticator=password_checker({"alice": PASSWORD}), auth_require_tls=False
    )
    server_profile = profile(port, name="command-line", username="alice", allow_plaintext_auth=True)
    queued = Outbox().enqueue(server_profile, message())
    flushed = run_tuimail("outbox", "flush")
    assert flushed.returncode == exitcodes.QUEUED, flushed.stdout + flushed.stderr
    assert "--password-stdin" in flushed.stdout and "without a saved profile" in flushed.stdout
    [entry] = outbox_entries()
    assert entry["state"] == "queued" and entry["attempts"] == []  # never connected
    retried = run_tuimail(
        "outbox", "retry", queued.short_id, "--password-stdin", input=PASSWORD + "\n"
    )
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert len(sink.messages) == 1 and outbox_entries() == []


# -- which server, which password ---------------------------------------------------


class AuthLog:
    """An aiosmtpd authenticator that records every password it is offered."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.offered: list[str] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if isinstance(data, LoginPassword):
            self.offered.append(data.password.decode())
            return AuthResult(success=data.password.decode() == self.password)
        return AuthResult(success=False, handled=False)


def account(servers: ServerThread, password: str) -> tuple[int, Sink, AuthLog]:
    sink, log = Sink(), AuthLog(password)
    port = servers.smtp(sink, authenticator=log, auth_require_tls=False)
    return port, sink, log


def work_profile(port: int, name: str = "work") -> Profile:
    return profile(
        port, name=name, username="alice", allow_plaintext_auth=True, auth_mechanism="plain"
    )


def test_a_queued_message_follows_its_edited_profile_and_password(
    servers: ServerThread, secret_service: SecretService
) -> None:
    old_port, old_sink, old_log = account(servers, PASSWORD)
    new_port, new_sink, new_log = account(servers, NEW_PASSWORD)
    store, keys = ProfileStore(), CredentialStore()
    store.save(work_profile(old_port))
    keys.set("work", Secret(PASSWORD))
    queued = Outbox().enqueue(store.get("work"), message())

    store.save(work_profile(new_port))  # the server moved, and its password changed
    keys.set("work", Secret(NEW_PASSWORD))
    flushed = run_tuimail("outbox", "flush")
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert old_log.offered == [] and old_sink.messages == []  # the old server got nothing
    assert new_log.offered == [NEW_PASSWORD] and len(new_sink.messages) == 1
    transcript = Outbox().sent_transcript(queued.key)
    assert "changed after this message was queued" in transcript
    assert NEW_PASSWORD not in transcript and PASSWORD not in transcript


def test_a_queued_message_uses_the_password_as_it_is_now(
    servers: ServerThread, secret_service: SecretService
) -> None:
    port, sink, log = account(servers, NEW_PASSWORD)
    store, keys = ProfileStore(), CredentialStore()
    store.save(work_profile(port))
    keys.set("work", Secret(PASSWORD))
    queued = Outbox().enqueue(store.get("work"), message())
    keys.set("work", Secret(NEW_PASSWORD))
    flushed = run_tuimail("outbox", "flush")
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert log.offered == [NEW_PASSWORD] and len(sink.messages) == 1
    assert "changed after" not in Outbox().sent_transcript(queued.key)  # settings unchanged


def test_a_deleted_profile_keeps_frozen_settings_without_a_password(
    servers: ServerThread, secret_service: SecretService
) -> None:
    port, sink, log = account(servers, PASSWORD)
    store, keys = ProfileStore(), CredentialStore()
    store.save(work_profile(port))
    keys.set("work", Secret(PASSWORD))
    queued = Outbox().enqueue(store.get("work"), message())
    store.remove("work")  # the keyring entry stays: it must not be used all the same
    flushed = run_tuimail("outbox", "flush")
    assert flushed.returncode == exitcodes.QUEUED, flushed.stdout + flushed.stderr
    assert "has been deleted" in flushed.stdout and log.offered == []
    retried = run_tuimail(
        "outbox", "retry", queued.short_id, "--password-stdin", input=PASSWORD + "\n"
    )
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert log.offered == [PASSWORD] and len(sink.messages) == 1


def test_a_server_message_never_borrows_a_profiles_password(
    servers: ServerThread, secret_service: SecretService
) -> None:
    """A saved profile that happens to share the name of a --server message."""
    saved_port, _, saved_log = account(servers, PASSWORD)
    other_port, other_sink, other_log = account(servers, PASSWORD)
    ProfileStore().save(work_profile(saved_port, name="command-line"))
    CredentialStore().set("command-line", Secret(PASSWORD))
    queued = Outbox().enqueue(work_profile(other_port, name="command-line"), message())
    flushed = run_tuimail("outbox", "flush")
    assert flushed.returncode == exitcodes.QUEUED, flushed.stdout + flushed.stderr
    assert other_log.offered == [] and saved_log.offered == [] and other_sink.messages == []
    retried = run_tuimail("outbox", "retry", queued.short_id)
    # Refused before connecting: the saved profile's password is not borrowed.
    assert other_log.offered == [] and retried.returncode == exitcodes.CONFIG
    assert "--password-stdin" in retried.stderr


def test_command_line_overrides_still_apply_to_a_followed_profile(
    servers: ServerThread, tmp_path: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    ProfileStore().save(profile(port, name="work"))
    sent_with = with_changes(ProfileStore().get("work"), timeout=7.5, ehlo_name="custom.test")
    outbox = Outbox()
    queued = outbox.enqueue(sent_with, message())
    assert queued.follows_profile and queued.overrides == {
        "timeout": 7.5,
        "ehlo_name": "custom.test",
    }
    flushed = run_tuimail("outbox", "flush")
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert "EHLO custom.test" in outbox.sent_transcript(queued.key)


class ScriptedSink(Sink):
    """Holds the final dot of the message titled ``one`` until released; hangs up
    after the final dot of the message titled ``two``, the first time."""

    def __init__(self) -> None:
        super().__init__()
        self.one_in_data = threading.Event()
        self.release_one = threading.Event()
        self.two_seen = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        subject = email.message_from_bytes(envelope.content)["Subject"]
        if subject == "one":
            self.one_in_data.set()
            await asyncio.to_thread(self.release_one.wait, 30)
        if subject == "two":
            self.two_seen += 1
            self.disconnect_after_data = self.two_seen == 1
        reply = await super().handle_DATA(server, session, envelope)
        self.disconnect_after_data = False
        return reply


def test_two_real_flushes_never_resend_what_the_other_marked(servers: ServerThread) -> None:
    """Flush A lists both messages as due and is held on the first; flush B
    meanwhile leaves the second possibly delivered; A must not send it again."""
    sink = ScriptedSink()
    local = profile(servers.smtp(sink), timeout=30)
    outbox = Outbox()
    for subject in ("one", "two"):
        outbox.enqueue(local, message(subject=subject))
    first = subprocess.Popen(
        [TUIMAIL, "outbox", "flush"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert sink.one_in_data.wait(20), "flush A never reached the first message's data"
        second = run_tuimail("outbox", "flush")
        assert "possibly-delivered" in second.stdout, second.stdout + second.stderr
        sink.release_one.set()
        out, err = first.communicate(timeout=60)
    finally:
        sink.release_one.set()
        with contextlib.suppress(ProcessLookupError):
            first.kill()
    subjects = sorted(email.message_from_bytes(m.content)["Subject"] for m in sink.messages)
    assert subjects == ["one", "two"], out + err  # each once
    assert "no longer due (possibly-delivered)" in out, out + err
    [left] = outbox_entries()
    assert left["state"] == "possibly-delivered"
