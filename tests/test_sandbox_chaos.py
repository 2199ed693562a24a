"""The sandbox as a slow, choosy server: throttle, accept probability, recipient limit.

Clients nobody here wrote drive it (Python's smtplib, swaks), against the
sandbox in this process or ``tuimail serve`` as a process. A throttle's
time is checked as a lower bound only (a behaviour: the bytes cannot have
gone faster), never as a speed. The sandbox's promises hold with the
throttle on: the connection cap, the idle timeout that bounds a session,
and SMTPUTF8's strictness.
"""

from __future__ import annotations

import random
import smtplib
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_helpers import TUIMAIL
from tests.conftest import require_tool
from tests.sandbox_support import (
    UP_TO_DATA,
    Client,
    RunningSandbox,
    greeted_client,
    transcript_text,
)
from tuimail.faults import FaultPlan
from tuimail.profiles import Security
from tuimail.sandbox import SessionOutcome

MakeSandbox = Callable[..., RunningSandbox]


def big_message(size: int) -> bytes:
    head = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: big\r\n\r\n"
    line = b"x" * 98 + b"\r\n"
    return head + line * ((size - len(head)) // len(line))


class Serve:
    """``tuimail serve`` as a process on a free port; :meth:`stop` returns all it printed."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [TUIMAIL, "serve", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stderr is not None
        self.before = ""
        while "listening on 127.0.0.1:" not in (line := self.process.stderr.readline()):
            assert line, self.before
            self.before += line
        self.port = int(line.split("127.0.0.1:")[1].split()[0])
        self.before += line

    def stop(self) -> tuple[str, str]:
        """Stop it (SIGTERM); its stdout and stderr, whole."""
        self.process.terminate()
        self.process.wait(timeout=20)
        assert self.process.stdout is not None and self.process.stderr is not None
        return self.process.stdout.read(), self.before + self.process.stderr.read()


def test_serve_throttle_holds_a_200_kb_message_to_its_rate(tmp_path: Path) -> None:
    rate = 50_000
    message = big_message(200_000)
    serve = Serve("--maildir", str(tmp_path / "mail"), "--throttle", str(rate))
    port = serve.port
    try:
        started = time.monotonic()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            assert client.sendmail("a@example.test", ["b@example.test"], message) == {}
        took = time.monotonic() - started
    finally:
        out, err = serve.stop()
    # Lower bound: the bytes cannot have reached the sandbox faster than the rate
    # (the first twentieth of a second's worth goes at once).
    assert took >= (len(message) - rate / 20) / rate, took
    assert "throttled: client to server 50,000 bytes/s, server to client 50,000 bytes/s" in err
    assert "throttled: client to server 50,000 bytes/s" in out  # each session's transcript
    stored = list((tmp_path / "mail" / "new").iterdir())
    assert len(stored) == 1 and stored[0].read_bytes() == message


def test_throttle_down_holds_the_replies_to_their_rate(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(throttle_down=200)
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=30) as client:
        client.ehlo()
        took = time.monotonic() - started
    record = sandbox.wait_for_sessions(1)[0]
    sent = 0
    for entry in record.transcript:
        if entry.direction == "server":
            sent += len(entry.text.encode()) + 2
            if entry.text.startswith("250 "):
                break  # the EHLO reply's last line: what the client waited for
    assert sent > 100
    assert took >= (sent - 10) / 200, (took, sent)
    assert "server to client 200 bytes/s" in transcript_text(record)


def test_a_throttled_starttls_session_delivers_the_message_intact(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(security=Security.STARTTLS, throttle_up=40_000, throttle_down=2_000)
    message = big_message(20_000)
    context = ssl.create_default_context(cafile=str(sandbox.sandbox.ca_file))
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=30) as client:
        client.starttls(context=context)
        assert client.sendmail("a@example.test", ["b@example.test"], message) == {}
    assert sandbox.stored() == [message]
    record = sandbox.wait_for_sessions(1)[0]
    assert record.secure and record.outcome is SessionOutcome.COMPLETED


def test_max_recipients_answers_452_and_the_session_goes_on_with_swaks(tmp_path: Path) -> None:
    swaks = require_tool("swaks", "swaks")
    serve = Serve("--maildir", str(tmp_path / "mail"), "--max-recipients", "2")
    port = serve.port
    try:
        sent = subprocess.run(
            [swaks, "--server", "127.0.0.1", "--port", str(port), "--from", "s@example.test",
             "--to", "a@example.test,b@example.test,c@example.test",
             "--header", "Subject: many", "--body", "hi"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    finally:
        out, err = serve.stop()
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "<** 452 4.5.3 Error: too many recipients" in sent.stdout
    assert "<-  250 2.0.0 Ok: queued as" in sent.stdout  # the session went on
    assert "at most 2 recipient(s) per message" in err
    assert "recipient limit of 2 per message reached" in out
    stored = list((tmp_path / "mail" / "new").iterdir())
    assert len(stored) == 1 and b"Subject: many" in stored[0].read_bytes()


def test_max_recipients_with_smtplib_refuses_only_those_past_the_limit(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(max_recipients=1)
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
        refused = client.sendmail(
            "a@example.test", ["b@example.test", "c@example.test"], big_message(200)
        )
        assert refused == {"c@example.test": (452, b"4.5.3 Error: too many recipients")}
        # The next transaction has its own count.
        assert client.sendmail("a@example.test", ["d@example.test"], big_message(200)) == {}
    record = sandbox.wait_for_sessions(1)[0]
    assert [m.rcpt_tos for m in record.messages] == [("b@example.test",), ("d@example.test",)]


def test_accept_probability_zero_greets_421_and_closes(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox()
    sandbox.sandbox.faults = FaultPlan(accept_probability=0.0)
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10)
    assert refused.value.smtp_code == 421
    record = sandbox.wait_for_sessions(1)[0]
    assert record.outcome is SessionOutcome.NOT_ACCEPTED
    assert "turned away at random (accept probability 0)" in transcript_text(record)
    assert sandbox.sandbox.connections == 0  # its place given back
    sandbox.sandbox.faults = FaultPlan(accept_probability=1.0)
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10) as client:
        assert client.sendmail("a@example.test", ["b@example.test"], big_message(200)) == {}


def test_serve_accept_probability_with_a_seed_turns_away_the_same_connections(
    tmp_path: Path,
) -> None:
    serve = Serve("--maildir", str(tmp_path / "mail"), "--accept-probability", "0.5", "--seed", "7")
    port = serve.port
    served = []
    try:
        for _ in range(16):
            client = Client(port)
            served.append(client.reply().startswith(b"220"))
            client.close()
    finally:
        _out, err = serve.stop()
    draws = random.Random(7)
    assert served == [draws.random() < 0.5 for _ in range(16)]
    assert True in served and False in served
    assert "fault: accept p=0.5" in err


def test_serve_refuses_out_of_range_chaos_options(tmp_path: Path) -> None:
    from tests.cli_helpers import run_tuimail

    for option, value, words in (
        ("--accept-probability", "1.5", "--accept-probability must be from 0.0 to 1.0"),
        ("--throttle", "-1", "--throttle must be 0 (no throttle) or more"),
        ("--max-recipients", "0", "--max-recipients 0: must be from 1 to"),
    ):
        result = run_tuimail("serve", "--port", "0", option, value, timeout=20)
        # Out of range: a usage error; the recipient limit is refused as --size is.
        expected = 1 if option == "--max-recipients" else 2
        assert result.returncode == expected, result.stderr
        assert words in result.stderr


def test_config_toml_sets_the_chaos_and_options_win(tmp_path: Path) -> None:
    from tests.test_sandbox_port import write_config

    write_config(
        "[sandbox]\nthrottle = 3000\nthrottle_down = 5000\nmax_recipients = 3\n"
        'accept_probability = "often"\n'
    )
    serve = Serve("--maildir", str(tmp_path / "mail"), "--max-recipients", "4")
    # Served once: it printed its settings and listens for Ctrl-C and SIGTERM.
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as client:
        client.noop()
    _out, err = serve.stop()
    assert "client to server 3,000 bytes/s, server to client 5,000 bytes/s" in err
    assert "at most 4 recipient(s)" in err
    assert "accept_probability = 'often' is not a number from 0 to 1; not used" in err


# -- the sandbox's promises, with the throttle on ------------------------------


def test_a_throttled_session_keeps_the_cap_and_the_idle_timeout(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(
        throttle_up=2_000, throttle_down=2_000, max_connections=1, idle_timeout=1.0
    )
    with greeted_client(sandbox.port) as slow:
        slow.exchange(*UP_TO_DATA)
        started = time.monotonic()
        # 40 KB at 2,000 bytes/s would take 20 s: the session must not outlive its bound.
        slow.send(big_message(40_000))
        # The cap holds: a second client is answered 421 at once, unthrottled.
        with FirstReply(sandbox.port) as second:
            assert second.startswith(b"421 4.7.0 Too many connections")
        record = sandbox.wait_for_sessions(1, timeout=10)[0]
        ended = time.monotonic() - started
    assert record.outcome is SessionOutcome.TIMED_OUT, record.outcome
    assert ended < 6, ended
    assert not sandbox.stored()
    assert sandbox.sandbox.connections == 0  # the place is given back
    with greeted_client(sandbox.port) as after:
        after.exchange((b"EHLO a\r\n", b"250"), (b"QUIT\r\n", b"221"))


def test_a_throttled_session_keeps_smtputf8_strict(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(throttle_up=500, throttle_down=500)
    with greeted_client(sandbox.port) as client:
        client.exchange(
            (b"EHLO a\r\n", b"250"),
            ("MAIL FROM:<j\u00f6rg@example.test>\r\n".encode(), b"553 5.6.7"),
            ("MAIL FROM:<j\u00f6rg@example.test> SMTPUTF8\r\n".encode(), b"250"),
            (b"QUIT\r\n", b"221"),
        )


class FirstReply:
    """A raw connection's first reply line, whatever it is; closed on leaving."""

    def __init__(self, port: int) -> None:
        self.client = Client(port, timeout=5)

    def __enter__(self) -> bytes:
        return self.client.replies.readline()

    def __exit__(self, *exc: object) -> None:
        self.client.close()


def test_send_to_the_built_in_sandbox_takes_the_chaos_of_config_toml(tmp_path: Path) -> None:
    from tests.cli_helpers import run_tuimail
    from tests.test_sandbox_port import write_config

    write_config("[sandbox]\nport = 0\nmax_recipients = 1\nthrottle_down = 20000\n")
    sent = run_tuimail(
        "send", "--profile", "sandbox", "--from", "a@example.test", "--to", "b@example.test",
        "--to", "c@example.test", "--subject", "two", "--body", "hi",
    )  # fmt: skip
    assert "throttled: server to client 20,000 bytes/s" in sent.stdout
    assert "recipient limit of 1 per message reached" in sent.stdout
    assert "refused (temporary) c@example.test: 452 4.5.3" in sent.stderr
    assert "sent" in sent.stderr and "to b@example.test" in sent.stderr
