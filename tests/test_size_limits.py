"""The server's SIZE limit as last seen (tuimail/size_limits.py): kept from real sessions
and probes against aiosmtpd on 127.0.0.1, read back bounded, a broken file worth nothing,
two writers never tearing it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from email import message_from_bytes
from pathlib import Path

import pytest

from tests.smtpservers import ServerThread, Sink
from tests.ui_support import save_profile
from tuimail import size_limits
from tuimail.message import Draft, build_message
from tuimail.probe import ProbeTarget, probe
from tuimail.profiles import Profile
from tuimail.session import check_account, send
from tuimail.size_limits import (
    SeenLimit,
    announced_limit,
    encoded_size,
    estimated_message_size,
    last_seen,
    remember,
    server_key,
    size_words,
)

SERVER = "127.0.0.1:2525"


def test_the_limit_a_server_announces() -> None:
    assert announced_limit({"size": "10240000"}) == 10_240_000
    assert announced_limit({"size": " 52428800 "}) == 52_428_800
    # RFC 1870: SIZE without a number, or 0, announces no fixed limit.
    assert announced_limit({"size": ""}) is None
    assert announced_limit({"size": "0"}) is None
    assert announced_limit({"8bitmime": ""}) is None
    for nonsense in ("-5", "1e9", "١٢٣", "9" * 40, "10 MB"):
        assert announced_limit({"size": nonsense}) is None


def test_kept_and_read_back_for_the_same_server_only() -> None:
    kept = remember("work", SERVER, {"size": "5000", "pipelining": ""}, now=1000.0)
    assert kept == SeenLimit(5000, 1000.0, SERVER)
    assert last_seen("work", SERVER) == kept
    # The profile now points at another server: what its old one said does not count.
    assert last_seen("work", "smtp.example.test:587") is None
    assert last_seen("home", SERVER) is None
    path = size_limits.limits_dir() / "work.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    # A server that stopped announcing SIZE: seen, no limit.
    assert remember("work", SERVER, {}, now=2000.0) == SeenLimit(None, 2000.0, SERVER)
    assert last_seen("work", SERVER) == SeenLimit(None, 2000.0, SERVER)


def test_a_name_that_is_no_profiles_is_never_a_path(tmp_path: Path) -> None:
    directory = tmp_path / "limits"
    for name in ("../escape", "a/b", "", ".hidden", "x" * 65):
        assert remember(name, SERVER, {"size": "1"}, directory=directory) is None
        assert last_seen(name, SERVER, directory=directory) is None
    assert not directory.exists()
    assert not (tmp_path / "escape.json").exists()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\xfe not UTF-8",
        b"{not json",
        b"[1, 2]",
        b'{"limit": "5000", "seen_at": 1.0, "server": "127.0.0.1:2525"}',
        b'{"limit": true, "seen_at": 1.0, "server": "127.0.0.1:2525"}',
        b'{"limit": -1, "seen_at": 1.0, "server": "127.0.0.1:2525"}',
        b'{"limit": 5000, "seen_at": NaN, "server": "127.0.0.1:2525"}',
        b'{"limit": 5000, "seen_at": 1e300, "server": "127.0.0.1:2525"}',
        b'{"limit": 5000, "seen_at": 1.0, "server": ["127.0.0.1:2525"]}',
        b'{"limit": 5000, "seen_at": 1.0}',
        b"[" * 100_000,
        b'{"limit": 5000, "seen_at": 1.0, "server": "127.0.0.1:2525", "pad": "'
        + b"x" * 10_000
        + b'"}',
    ],
)
def test_a_corrupt_file_is_nothing_seen_and_is_replaced(content: bytes) -> None:
    directory = size_limits.limits_dir()
    directory.mkdir(parents=True)
    (directory / "work.json").write_bytes(content)
    assert last_seen("work", SERVER) is None
    remember("work", SERVER, {"size": "7000"}, now=5.0)
    assert last_seen("work", SERVER) == SeenLimit(7000, 5.0, SERVER)


def test_a_fifo_or_a_directory_in_its_place_is_no_hang() -> None:
    directory = size_limits.limits_dir()
    directory.mkdir(parents=True)
    os.mkfifo(directory / "work.json")
    (directory / "home.json").mkdir()
    started = time.monotonic()
    assert last_seen("work", SERVER) is None
    assert last_seen("home", SERVER) is None
    assert time.monotonic() - started < 5


_WRITER = """
import sys
from tuimail.size_limits import remember
for n in range(int(sys.argv[2])):
    remember("work", "127.0.0.1:2525", {"size": str(int(sys.argv[1]) + n)})
"""


def test_two_writers_never_tear_the_file_and_the_last_one_wins() -> None:
    """Two processes writing the same profile's record while this one reads it: every
    read is a whole record of one of them, and the file ends as one of their writes."""
    remember("work", SERVER, {"size": "1"})
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(start), "300"], env=dict(os.environ))
        for start in (1_000_000, 2_000_000)
    ]
    reads = 0
    try:
        while any(w.poll() is None for w in writers):
            seen = last_seen("work", SERVER)
            assert seen is not None and seen.limit is not None
            assert seen.limit == 1 or 1_000_000 <= seen.limit < 2_000_300
            reads += 1
    finally:
        for writer in writers:
            assert writer.wait(timeout=60) == 0
    final = last_seen("work", SERVER)
    assert final is not None and final.limit in (1_000_299, 2_000_299)
    assert reads > 0
    assert [p.name for p in size_limits.limits_dir().iterdir()] == ["work.json"]  # no leftovers


def test_the_directory_keeps_a_bounded_number_of_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(size_limits, "MAX_FILES", 3)
    directory = size_limits.limits_dir()
    for number in range(6):
        remember(f"p{number}", SERVER, {"size": "10"})
        os.utime(directory / f"p{number}.json", (number, number))  # written in this order
    remember("p6", SERVER, {"size": "10"})
    assert sorted(p.name for p in directory.iterdir()) == ["p4.json", "p5.json", "p6.json"]


# -- from the session path, against aiosmtpd ----------------------------------------------


def _draft(**changes: object) -> Draft:
    values: dict[str, object] = {
        "from_address": "me@example.test",
        "to": ["bob@example.test"],
        "subject": "Size",
        "body": "Hi",
    }
    values.update(changes)
    return Draft(**values)  # type: ignore[arg-type]


async def test_a_send_keeps_the_size_its_server_announced(servers: ServerThread) -> None:
    port = servers.smtp(Sink(), data_size_limit=123_456)
    profile = Profile(name="local", host="127.0.0.1", port=port, security="none")  # type: ignore[arg-type]
    before = time.time()
    report = await send(profile, build_message(_draft()), deadline=30)
    assert report.ok
    seen = last_seen("local", server_key("127.0.0.1", port))
    assert seen is not None and seen.limit == 123_456
    assert before - 1 <= seen.seen_at <= time.time() + 1


async def test_a_refused_send_and_a_connection_test_keep_it_too(
    servers: ServerThread, tmp_path: Path
) -> None:
    """Too large for the server: refused before MAIL, and the limit is still kept."""
    port = servers.smtp(Sink(), data_size_limit=2000)
    profile = Profile(name="local", host="127.0.0.1", port=port, security="none")  # type: ignore[arg-type]
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3000))
    report = await send(profile, build_message(_draft(attachments=[big])), deadline=30)
    assert report.failure is not None and "accepts at most 2,000 bytes" in report.failure.problem
    seen = last_seen("local", server_key("127.0.0.1", port))
    assert seen is not None and seen.limit == 2000

    other = servers.smtp(Sink(), data_size_limit=9999)
    tested = Profile(name="tested", host="127.0.0.1", port=other, security="none")  # type: ignore[arg-type]
    assert (await check_account(tested, deadline=30)).ok
    seen = last_seen("tested", server_key("127.0.0.1", other))
    assert seen is not None and seen.limit == 9999


async def test_probing_a_profile_keeps_it_and_probing_an_address_does_not(
    servers: ServerThread,
) -> None:
    port = servers.smtp(Sink(), data_size_limit=4242)
    profile = save_profile(name="probed", host="127.0.0.1", port=port, security="none")
    await probe(ProbeTarget.from_profile(profile))
    seen = last_seen("probed", server_key("127.0.0.1", port))
    assert seen is not None and seen.limit == 4242
    await probe(ProbeTarget(host="127.0.0.1", port=port, security="none"))  # type: ignore[arg-type]
    assert [p.name for p in size_limits.limits_dir().iterdir()] == ["probed.json"]


async def test_an_unwritable_state_dir_is_no_failure_of_the_send(servers: ServerThread) -> None:
    directory = size_limits.limits_dir()
    directory.parent.mkdir(parents=True)
    directory.write_text("a file where the directory goes")
    port = servers.smtp(Sink())
    profile = Profile(name="local", host="127.0.0.1", port=port, security="none")  # type: ignore[arg-type]
    report = await send(profile, build_message(_draft()), deadline=30)
    assert report.ok


# -- the estimate and its words ----------------------------------------------------------


def test_the_encoded_size_is_what_the_message_carries(tmp_path: Path) -> None:
    for size in (0, 1, 2, 3, 56, 57, 58, 1000, 100_003):
        path = tmp_path / f"file-{size}.bin"
        path.write_bytes(os.urandom(size))
        wire = build_message(_draft(attachments=[path])).to_bytes()
        [part] = list(message_from_bytes(wire).walk())[2:]
        # The attachment's body: after its headers, up to the CRLF before the boundary.
        body = wire[wire.index(b"\r\n\r\n", wire.rindex(b"filename=")) + 4 :]
        encoded = body[: body.index(b"\r\n--")] if size else b""
        assert part.get("Content-Transfer-Encoding") == "base64"
        assert len(encoded) == encoded_size(size), size
        estimate = estimated_message_size("Hi", [size])
        assert len(wire) <= estimate <= len(wire) + 3000, size


def test_sizes_in_words() -> None:
    assert [size_words(n) for n in (0, 1, 999, 1000, 1234, 99_949, 99_950, 999_499)] == [
        "0 bytes", "1 byte", "999 bytes", "1 kB", "1.2 kB", "99.9 kB", "100 kB", "999 kB",
    ]  # fmt: skip
    assert size_words(999_999) == "1 MB"
    assert size_words(10_240_000) == "10.2 MB"
    assert size_words(10_000_000) == "10 MB"
    assert size_words(3 * 10**15) == "3000 TB"
    assert size_limits.age_words(-5) == "just now"
    assert size_limits.age_words(61) == "1 minute ago"
    assert size_limits.age_words(2 * 86400 + 5) == "2 days ago"


def test_the_record_is_small_json() -> None:
    remember("work", SERVER, {"size": "5000"}, now=1.5)
    data = json.loads((size_limits.limits_dir() / "work.json").read_text())
    assert data == {"version": 1, "limit": 5000, "seen_at": 1.5, "server": SERVER}
