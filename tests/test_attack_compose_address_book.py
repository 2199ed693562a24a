"""The address-book command (tuimail/address_book.py) as real processes: what it
leaves behind when its reading is cut short must not outlive the query."""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path

import pytest

from tuimail.address_book import AddressBook, CommandProblem, run_address_command


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its reaper is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_a_child_left_holding_the_output_is_stopped_when_the_command_has_exited(
    tmp_path: Path,
) -> None:
    # The command answers and exits at once, but a child it started in the
    # background keeps its standard output open: the answer never ends, the
    # timeout stops the reading, and the child must go with its group. Left
    # running, one such child would stay behind for every keystroke.
    child_pid = tmp_path / "child.pid"
    command = tmp_path / "lookup"
    command.write_text(
        f"#!{sys.executable}\n"
        "import subprocess\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(child_pid)!r}, 'w').write(str(child.pid))\n"
        "print('ann@example.org\\tAnn', flush=True)\n"
    )
    command.chmod(0o755)
    answer = run_address_command(f"{command} %s", "ann", timeout=1.0)
    assert answer.problem is CommandProblem.TIMEOUT
    assert [s.address for s in answer.suggestions] == ["ann@example.org"]
    pid = int(child_pid.read_text())
    deadline = time.monotonic() + 5
    while running(pid):
        if time.monotonic() > deadline:
            pytest.fail("the command's child is still running after the query ended")
        time.sleep(0.05)


@pytest.mark.parametrize(
    "template",
    [
        "sh -c 'echo ann@example.org; echo %s > {out}'",
        "sh -c 'echo ann@example.org; echo \"%s\" > {out}'",
        "/bin/bash -ec 'echo ann@example.org; echo %s > {out}' ignored-name",
        "env LC_ALL=C sh -c 'echo ann@example.org; echo %s > {out}'",
        "bash -o pipefail -c 'echo ann@example.org | cat; echo %s > {out}'",
        "timeout 5 sh -c 'echo ann@example.org; echo %s > {out}'",
    ],
)
def test_a_query_is_never_shell_code_in_a_command_written_with_sh_c(
    tmp_path: Path, template: str
) -> None:
    # A pipeline needs a shell, so people write one: `sh -c '... %s | ...'`.
    # What is typed (or pasted) into To must reach that script as data.
    out = tmp_path / "query-seen"
    pwned = tmp_path / "pwned"
    query = f"ann$(touch {pwned});touch {pwned} `touch {pwned}`"
    answer = run_address_command(template.format(out=out), query, timeout=5.0)
    assert answer.problem is None, answer
    assert [s.address for s in answer.suggestions] == ["ann@example.org"]
    assert not pwned.exists()
    assert out.read_text().strip() == query


def test_a_name_that_reorders_the_line_is_dropped_and_the_address_kept(tmp_path: Path) -> None:
    # `notmuch address` answers with names from received mail: anyone's. A
    # right-to-left override in one, accepted into To, makes a terminal that
    # does bidi show the rest of the line reversed, the real address too.
    command = tmp_path / "lookup"
    command.write_text(
        f"#!{sys.executable}\n"
        "print('evil@attacker.example\\tBob \\u202eknaB')\n"
        "print('\"Ann \\u2067x\\u2069\" <ann@example.org>')\n"
        "print('carl@example.org\\tCarl \\u200fMarks')\n"  # a mark only: a name may hold one
    )
    command.chmod(0o755)
    answer = run_address_command(f"{command} %s", "b", timeout=5.0)
    assert [(s.name, s.address) for s in answer.suggestions] == [
        ("", "evil@attacker.example"),
        ("", "ann@example.org"),
        ("Carl \u200fMarks", "carl@example.org"),
    ]


def test_a_sent_name_that_reorders_the_line_is_dropped_too(tmp_path: Path) -> None:
    # A reply goes to whoever wrote: their name, RLO and all, is in sent/.
    sent = tmp_path / "sent"
    (sent / "new").mkdir(parents=True)
    (sent / "cur").mkdir()
    name = "=?utf-8?b?" + base64.b64encode("Bob \u202eknaB".encode()).decode() + "?="
    (sent / "new" / "1700000000.M1P1.host").write_bytes(
        f"From: me@example.test\r\nTo: {name} <evil@attacker.example>, Ann <ann@example.org>"
        "\r\nSubject: x\r\n\r\nbody\r\n".encode()
    )
    found = AddressBook(sent).complete("e")
    assert [(s.name, s.address) for s in found.suggestions] == [
        ("", "evil@attacker.example"),
        ("Ann", "ann@example.org"),
    ]
