"""Address completion with real parts: a sent history written by real sends to an
aiosmtpd server, and address-book commands that are real processes (scripts in
the test's directory), including one that hangs and one that prints hostile lines."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.smtpservers import ServerThread, Sink
from tuimail.address_book import (
    COMMAND_LINE_LIMIT,
    AddressBook,
    CommandProblem,
    SentHistory,
    Source,
    address_book_command,
    command_argv,
    run_address_command,
)
from tuimail.message import Draft, build_message
from tuimail.outbox import Outbox, Result
from tuimail.profiles import Profile, Security
from tuimail.user_config import ConfigError, LoadedConfig


async def send_all(outbox: Outbox, port: int, drafts: list[Draft]) -> None:
    """Each draft through the outbox to the server, one after the other."""
    profile = Profile(name="local", host="127.0.0.1", port=port, security=Security.NONE)
    for draft in drafts:
        queued = outbox.enqueue(profile, build_message(draft), follows_profile=False)
        outcome = await outbox.attempt(queued.key)
        assert outcome.result is Result.SENT, outcome


def mail(*to: str, cc: tuple[str, ...] = ()) -> Draft:
    return Draft(from_address="me@example.test", to=list(to), cc=list(cc), subject="hi", body="x")


def script(tmp_path: Path, name: str, body: str) -> Path:
    """An executable Python script standing in for khard or abook."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    path.chmod(0o755)
    return path


async def test_completion_from_real_sends_ranks_by_frecency(
    tmp_path: Path, servers: ServerThread
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    outbox = Outbox(tmp_path / "data")
    await send_all(
        outbox,
        port,
        [
            mail("Bob Old <bob@example.org>"),
            mail("Carol <carol@example.org>", cc=("Bob Builder <bob@example.org>",)),
            mail("carol@example.org", "Zed <zed@example.net>"),
            mail("Carla Recent <carla@example.org>"),
        ],
    )
    assert len(sink.messages) == 4
    # In the order sent: Maildir names order by second only, and four sends
    # often share one, so each file is known by whom it went to.
    marks = [b"Bob Old", b"Carol <", b"Zed", b"Carla"]
    sent_files = sorted(
        (outbox.sent_dir / "new").iterdir(),
        key=lambda path: next(i for i, mark in enumerate(marks) if mark in path.read_bytes()),
    )
    now = time.time()
    # The first three were sent 20 days ago, a second apart, the last one now:
    # two older messages to Carol outweigh one new one to Carla (a message's
    # weight halves in 30 days).
    then = int(now) - 20 * 86400
    for offset, path in enumerate(sent_files[:3]):
        path.rename(path.with_name(f"{then + offset}.M{path.name.split('.M', 1)[1]}"))
    book = AddressBook(outbox.sent_dir, own=['"Me" <me@example.test>'])
    found = book.complete("car")
    assert [(s.name, s.address, s.source) for s in found.suggestions] == [
        ("Carol", "carol@example.org", Source.SENT),
        ("Carla Recent", "carla@example.org", Source.SENT),
    ]
    # The newest name of an address is the one offered.
    [bob] = book.complete("bob").suggestions
    assert (bob.name, bob.text) == ("Bob Builder", '"Bob Builder" <bob@example.org>')
    # A word of the name matches as well as the address, and the profiles' own addresses too.
    assert [s.address for s in book.complete("zed").suggestions] == ["zed@example.net"]
    [me] = book.complete("me@").suggestions
    assert (me.address, me.source) == ("me@example.test", Source.PROFILE)


async def test_an_unchanged_folder_is_not_read_again(
    tmp_path: Path, servers: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = servers.smtp(Sink())
    outbox = Outbox(tmp_path / "data")
    await send_all(outbox, port, [mail("ann@example.org")])
    history = SentHistory(outbox.sent_dir)
    assert [a.addr_spec for a, _ in history.contacts()] == ["ann@example.org"]
    reads: list[Path] = []
    import tuimail.address_book as address_book

    real = address_book._recipients

    def counting(path: Path) -> list[object]:
        reads.append(path)
        return real(path)  # type: ignore[return-value]

    monkeypatch.setattr(address_book, "_recipients", counting)
    for _ in range(50):  # fifty keystrokes
        history.contacts()
    assert reads == []
    await send_all(outbox, port, [mail("ben@example.org")])
    assert {a.addr_spec for a, _ in history.contacts()} == {"ann@example.org", "ben@example.org"}
    assert len(reads) == 1  # only the new message was read


def test_an_address_book_command_gets_the_query_as_one_argument(tmp_path: Path) -> None:
    book_script = script(
        tmp_path,
        "book",
        "q = sys.argv[1]\n"
        "print('searching...')\n"  # a header line, as khard prints: not an address, skipped
        "print(f'dora@example.org\\tDora {len(sys.argv)} {q}\\twork')\n"
        "print('Eve Example <eve@example.org>')\n"
        "print('not an address\\tNobody')\n",
    )
    query = "x; touch pwned $(id) 'q"
    answer = run_address_command(f"{book_script} %s", query)
    assert answer.problem is None
    assert [(s.name, s.address) for s in answer.suggestions] == [
        (f"Dora 2 {query}", "dora@example.org"),
        ("Eve Example", "eve@example.org"),
    ]
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert command_argv("khard email --parsable '%s'", "a b") == [
        "khard",
        "email",
        "--parsable",
        "a b",
    ]


def test_a_hanging_command_is_stopped_and_the_other_sources_answer(tmp_path: Path) -> None:
    sent = tmp_path / "sent"
    (sent / "new").mkdir(parents=True)
    (sent / "cur").mkdir()
    (sent / "new" / "1700000000.M1P1.host").write_bytes(
        b"From: me@example.test\r\nTo: Hanna <hanna@example.org>\r\nSubject: x\r\n\r\nbody\r\n"
    )
    child_pid = tmp_path / "child.pid"
    hanging = script(
        tmp_path,
        "hang",
        "import subprocess\n"
        "child = subprocess.Popen(['sleep', '30'])\n"
        f"open({str(child_pid)!r}, 'w').write(str(child.pid))\n"
        "print('late@example.org\\tLate', flush=True)\n"
        "time.sleep(30)\n",
    )
    book = AddressBook(sent, own=["hannes@example.test"], command=f"{hanging} %s", timeout=1.0)
    started = time.monotonic()
    found = book.complete("han")
    took = time.monotonic() - started
    assert took < 15, took  # the command would hang for 30 s
    assert found.problem is CommandProblem.TIMEOUT
    # The other sources answer; what the command printed before it hung is kept.
    assert [(s.address, s.source) for s in found.suggestions] == [
        ("hanna@example.org", Source.SENT),
        ("hannes@example.test", Source.PROFILE),
        ("late@example.org", Source.COMMAND),
    ]
    # Its child was stopped with it (the whole process group).
    pid = int(child_pid.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the command's child is still running")


def test_hostile_output_is_bounded_and_never_offered_unescaped(tmp_path: Path) -> None:
    hostile = script(
        tmp_path,
        "hostile",
        "out = sys.stdout.buffer\n"
        "out.write(b'ok@example.org\\tGood Name\\n')\n"
        "out.write(b'esc@example.org\\t\\x1b]52;c;cHduZWQ=\\x07Evil\\x1b[2J\\n')\n"
        "out.write(b'cr@example.org\\tName\\rBcc: x@evil.test\\n')\n"
        "out.write(b'spoof@evil.test\\tboss@bank.example\\n')\n"
        "out.write(b'bad\\x1b[31m@example.org\\tRed\\n')\n"
        "out.write(b'nul@example.org\\x00\\tNul\\n')\n"
        "out.write(b'\\xff\\xfe@example.org\\tLatin\\n')\n"
        "out.write(b'ctl@example.org\\tA\\xc2\\x9bB\\n')\n"
        "out.write(b'long@example.org\\t' + b'x' * 5000 + b'\\n')\n"
        "out.write(b'A' * (1024 * 1024) + b'\\n')\n"  # one megabyte, no line end for a while
        "out.write(b'after@example.org\\tAfter\\n')\n"
        "out.flush()\n",
    )
    answer = run_address_command(f"{hostile} %s", "x")
    got = [(s.name, s.address) for s in answer.suggestions]
    assert got == [
        ("Good Name", "ok@example.org"),
        ("", "esc@example.org"),  # the name had escape sequences: dropped, address kept
        ("", "cr@example.org"),
        ("", "spoof@evil.test"),  # a name that is an address is a spoofing trick
        ("", "ctl@example.org"),  # a C1 control in the name
    ], got  # the rest: an address with ESC, a NUL, not UTF-8, a line too long
    assert all(s.name.isprintable() for s in answer.suggestions)
    assert answer.problem is CommandProblem.TOO_MUCH  # stopped at the output bound
    many = script(tmp_path, "many", "for i in range(100000): print(f'u{i}@example.org')\n")
    answer = run_address_command(f"{many} %s", "u")
    assert len(answer.suggestions) == COMMAND_LINE_LIMIT
    assert answer.problem is CommandProblem.TOO_MUCH


def test_a_newer_query_supersedes_an_older_one(tmp_path: Path) -> None:
    slow = script(tmp_path, "slow", "time.sleep(30)\nprint('slow@example.org')\n")
    book = AddressBook(tmp_path / "sent", command=f"{slow} %s", timeout=10)
    results = []
    older = threading.Thread(target=lambda: results.append(book.complete("a")))
    started = time.monotonic()
    older.start()
    time.sleep(0.5)
    book.command = ""  # the newer query needs no command
    newer = book.complete("ab")
    older.join(20)
    assert time.monotonic() - started < 15  # not the slow command's 30 s
    assert not newer.superseded
    [old] = results
    assert old.superseded and old.problem is CommandProblem.SUPERSEDED


def test_the_command_setting_in_config_toml() -> None:
    command = "khard email --parsable %s"
    assert address_book_command(LoadedConfig({"compose": {"address_book_cmd": command}})) == command
    assert address_book_command(LoadedConfig({})) == ""
    with pytest.raises(ConfigError, match="address_book_cmd"):
        address_book_command(LoadedConfig({"compose": {"address_book_cmd": ["khard"]}}))
    missing = run_address_command("/nonexistent/khard %s", "a")
    assert missing.problem is CommandProblem.NOT_STARTED and missing.suggestions == ()
