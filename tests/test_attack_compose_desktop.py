"""The shipped ``share/tuimail.desktop`` passes freedesktop.org's own validator
(Debian's desktop-file-utils), hints included, and a desktop's ``%u`` reaches the
mailto: handling as one argument: a link that looks like an option is never one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.conftest import require_tool

DESKTOP_FILE = Path(__file__).resolve().parent.parent / "share" / "tuimail.desktop"


def test_desktop_file_validate_finds_nothing_to_say() -> None:
    validate = require_tool("desktop-file-validate", "desktop-file-utils")
    result = subprocess.run(
        [validate, str(DESKTOP_FILE)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""  # no error, warning or hint


def test_the_exec_line_hands_a_link_over_as_the_desktop_would() -> None:
    exec_line = next(
        line.split("=", 1)[1]
        for line in DESKTOP_FILE.read_text("utf-8").splitlines()
        if line.startswith("Exec=")
    )
    program, field_code = exec_line.split()
    assert (program, field_code) == ("tuimail", "%u")
    link = "mailto:ann@example.org?subject=--print%20--help&body=-h"
    result = run_tuimail(link, "--print")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["to"] == ["ann@example.org"]
    assert document["subject"] == "--print --help" and document["body"] == "-h"
