"""The address-book command (tuimail/address_book.py) as real processes: what it
leaves behind when its reading is cut short must not outlive the query."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tuimail.address_book import CommandProblem, run_address_command


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
