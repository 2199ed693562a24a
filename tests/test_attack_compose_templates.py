"""``tuimail send --template NAME`` with a name that is no name: a real process."""

from __future__ import annotations

from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.smtpservers import ServerThread, Sink
from tests.test_signatures_templates import write_profile
from tuimail.cli import exitcodes


def test_an_empty_template_name_is_refused_not_ignored(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    # `--template "$T"` with T unset: before, the option was dropped without
    # a word and the message went out without the template the script asked for.
    sink = Sink()
    port = servers.smtp(sink)
    write_profile(isolated_dirs / "config", port)
    result = run_tuimail(
        "send", "--profile", "work", "--to", "bob@example.test", "--template", "", input="Hi\n"
    )
    assert result.returncode == exitcodes.USAGE, result.stderr
    assert "--template" in result.stderr and "name" in result.stderr
    assert sink.messages == []
