"""The command line as a newcomer meets it: the words are true and nothing surprises.

Real ``tuimail`` processes, real outbox files, and a real server on 127.0.0.1
that counts its connections.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from tests.cli_helpers import run_tuimail
from tests.outbox_helpers import message, profile, rewrite_sidecar
from tests.sandbox_support import start_serve
from tests.smtpservers import ScriptedServer, ServerThread
from tuimail.cli import check_app_profile, exitcodes
from tuimail.cli.common import CLIError
from tuimail.outbox import Outbox, State
from tuimail.profiles import Profile, ProfileStore

ESC = "\x1b"


# -- tuimail --profile NAME ---------------------------------------------------


def test_an_unknown_profile_is_refused_before_the_app_starts() -> None:
    ProfileStore().save(profile(2599, name="work"))
    try:
        started = run_tuimail("--profile", "nosuch", timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("the app started on another profile instead of refusing 'nosuch'")
    assert started.returncode == exitcodes.USAGE, started.stdout + started.stderr
    assert "no profile named 'nosuch'" in started.stderr
    assert "work" in started.stderr and "sandbox (built-in)" in started.stderr


def test_known_and_built_in_profiles_pass_the_launcher_check() -> None:
    ProfileStore().save(profile(2599, name="work"))
    check_app_profile("work")
    check_app_profile("sandbox")
    with pytest.raises(CLIError) as refused:
        check_app_profile("wrok")
    assert refused.value.code == exitcodes.USAGE


# -- tuimail accounts ---------------------------------------------------------


def test_accounts_list_shows_the_built_in_sandbox() -> None:
    listed = run_tuimail("accounts", "list")
    assert listed.returncode == 0, listed.stderr
    assert "sandbox" in listed.stdout and "built-in" in listed.stdout
    assert "No profiles yet" not in listed.stdout
    [record] = json.loads(run_tuimail("accounts", "list", "--json").stdout)
    assert record["name"] == "sandbox" and record["builtin"] is True

    ProfileStore().save(profile(2599, name="work"))
    records = json.loads(run_tuimail("accounts", "list", "--json").stdout)
    assert [(r["name"], r["builtin"]) for r in records] == [("work", False), ("sandbox", True)]


def test_a_saved_sandbox_profile_hides_the_built_in_one() -> None:
    ProfileStore().save(Profile(name="sandbox", host="127.0.0.1", port=2600))
    records = json.loads(run_tuimail("accounts", "list", "--json").stdout)
    assert [(r["name"], r["builtin"], r["port"]) for r in records] == [("sandbox", False, 2600)]
    assert "built-in" not in run_tuimail("accounts", "list").stdout


@pytest.mark.parametrize("command", ["accounts", "outbox"])
def test_a_command_without_action_lists(command: str) -> None:
    bare = run_tuimail(command)
    listed = run_tuimail(command, "list")
    assert bare.returncode == 0, bare.stderr
    assert bare.stdout == listed.stdout and bare.stdout


# -- tuimail outbox list ------------------------------------------------------


def test_outbox_list_tells_messages_apart() -> None:
    outbox = Outbox()
    first = outbox.enqueue(profile(2599), message("b@example.test", subject="Invoice March"))
    second = outbox.enqueue(profile(2599), message("c@example.test", subject="Invoice April"))
    later = time.time() + 3600
    rewrite_sidecar(outbox, second.key, next_attempt=later, attempts=[{"at": 1.0, "ok": False}])
    listed = run_tuimail("outbox", "list")
    assert listed.returncode == 0, listed.stderr
    text = listed.stdout
    assert "subject: Invoice March" in text and "subject: Invoice April" in text
    assert "to: b@example.test" in text and "to: c@example.test" in text
    assert "queued, due now  (0 attempts)" in text
    assert "queued, next attempt " in text and "(1 attempt)" in text

    records = {r["key"]: r for r in json.loads(run_tuimail("outbox", "list", "--json").stdout)}
    old_keys = {"key", "message_id", "sender", "recipients", "state", "attempts", "next_attempt"}
    assert old_keys | {"last_error", "subject", "attempt_count"} <= set(records[first.key])
    assert records[first.key]["subject"] == "Invoice March"
    assert records[second.key]["attempt_count"] == 1
    assert records[second.key]["next_attempt"] == later


def test_outbox_list_reads_an_older_sidecars_subject_safely() -> None:
    """A sidecar without a subject: read from the stored message, escaped and bounded."""
    outbox = Outbox()
    queued = outbox.enqueue(profile(2599), message())
    meta = outbox.meta_dir / f"{queued.key}.json"
    data = json.loads(meta.read_text("utf-8"))
    del data["subject"]
    meta.write_text(json.dumps(data), "utf-8")
    stored = outbox.queue_dir / "new" / queued.key
    evil = "=?utf-8?q?pwned=1B]0;title=07?= " + "x" * 300
    raw = stored.read_bytes().replace(b"Subject: attack", f"Subject: {evil}".encode())
    stored.write_bytes(raw)

    listed = run_tuimail("outbox", "list")
    assert listed.returncode == 0, listed.stderr
    assert ESC not in listed.stdout and "\x07" not in listed.stdout
    [line] = [x for x in listed.stdout.splitlines() if "subject:" in x]
    assert "pwned\\x1b]0;title\\x07" in line and line.endswith("\u2026") and len(line) < 100
    [record] = json.loads(run_tuimail("outbox", "list", "--json").stdout)
    assert record["subject"].startswith("pwned\x1b]0;title\x07")  # JSON keeps it, escaped


# -- tuimail outbox flush -----------------------------------------------------


def test_flush_with_nothing_due_says_what_waits_and_exits_0() -> None:
    outbox = Outbox()
    queued = outbox.enqueue(profile(2599), message())
    rewrite_sidecar(outbox, queued.key, next_attempt=time.time() + 3600)
    flushed = run_tuimail("outbox", "flush")
    assert flushed.returncode == exitcodes.OK, flushed.stdout + flushed.stderr
    assert "Nothing is due: 1 message waits, the next due " in flushed.stdout
    assert "'tuimail outbox flush --all' sends it now" in flushed.stdout
    assert [e.state for e in outbox.entries()] == [State.QUEUED]


def test_flush_of_an_empty_outbox_exits_0() -> None:
    flushed = run_tuimail("outbox", "flush")
    assert flushed.returncode == exitcodes.OK
    assert "no message waits" in flushed.stdout


# -- tuimail outbox retry -----------------------------------------------------


@pytest.mark.parametrize("follows_profile", [True, False], ids=["profile", "server"])
def test_retry_without_a_password_fails_before_connecting(
    servers: ServerThread, follows_profile: bool
) -> None:
    """No keyring password (or a --server message): refused, naming the flag, nothing dialled."""
    server = ScriptedServer()
    port = servers.scripted(server)
    settings = profile(port, username="alice")
    ProfileStore().save(settings)
    outbox = Outbox()
    queued = outbox.enqueue(settings, message(), follows_profile=follows_profile)
    rewrite_sidecar(outbox, queued.key, state="failed", last_error="earlier failure")

    retried = run_tuimail("outbox", "retry", queued.short_id, timeout=30)
    assert retried.returncode == exitcodes.CONFIG, retried.stdout + retried.stderr
    assert "--password-stdin" in retried.stderr and "nothing was sent" in retried.stderr
    assert server.connections == 0
    [entry] = outbox.entries()
    assert entry.state is State.FAILED  # left as it was, not made due


def test_retry_of_a_delivered_message_says_so_rather_than_asking_a_password(
    servers: ServerThread,
) -> None:
    server = ScriptedServer()
    settings = profile(servers.scripted(server), username="alice")
    outbox = Outbox()
    queued = outbox.enqueue(settings, message(), follows_profile=False)
    rewrite_sidecar(outbox, queued.key, state="delivered")
    retried = run_tuimail("outbox", "retry", queued.short_id, timeout=30)
    assert retried.returncode == exitcodes.USAGE, retried.stdout + retried.stderr
    assert "moves it to sent/" in retried.stderr and "--password-stdin" not in retried.stderr
    assert server.connections == 0


@pytest.mark.parametrize(
    ("action", "words"),
    [(["edit", "sandbox", "--port", "3"], "cannot be edited"), (["remove", "sandbox"], "removed")],
)
def test_the_built_in_sandbox_is_not_called_missing(action: list[str], words: str) -> None:
    refused = run_tuimail("accounts", *action)
    assert refused.returncode == exitcodes.CONFIG
    assert "built-in profile" in refused.stderr and words in refused.stderr
    assert "no profile named" not in refused.stderr


def test_accounts_test_sandbox_needs_a_running_one() -> None:
    refused = run_tuimail("accounts", "test", "sandbox")
    assert refused.returncode == exitcodes.CONFIG
    assert "none is running" in refused.stderr and "tuimail serve" in refused.stderr
    unprobed = run_tuimail("probe", "--profile", "sandbox")
    assert "none is running" in unprobed.stdout + unprobed.stderr
    assert "no profile named" not in unprobed.stdout + unprobed.stderr


def test_a_running_sandbox_is_listed_and_tested_where_it_listens() -> None:
    process, port = start_serve("--quiet")
    try:
        listed = run_tuimail("accounts", "list")
        assert f"127.0.0.1:{port}" in listed.stdout and "built-in" in listed.stdout
        tested = run_tuimail("accounts", "test", "sandbox", timeout=30)
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert f"connected to 127.0.0.1:{port}" in tested.stdout
        probed = run_tuimail("probe", "--profile", "sandbox", timeout=30)
        assert probed.returncode == 0, probed.stdout + probed.stderr
        assert f"127.0.0.1:{port}" in probed.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)


def test_accounts_test_help_gives_its_own_exit_codes() -> None:
    """A test sends no mail: its help names no code of a send's later stages."""
    shown = run_tuimail("accounts", "test", "--help").stdout
    assert "no mail was sent" in shown and "14  authentication failed" in shown
    for code in ("3", "5", "15", "16", "17", "18", "75"):
        assert f"\n  {code:>3}  " not in shown, code
