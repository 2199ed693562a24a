"""``tuimail inbox`` reads the Maildir of the sandbox that runs, as F5 does.

``tuimail serve --maildir DIR`` serves the built-in sandbox (its runtime file
names DIR, and the app's F5 lists DIR); ``tuimail inbox`` once read the data
dir's default Maildir whatever ran, so ``inbox wait`` timed out on every
message such a sandbox caught.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.test_cli_inbox import mail, serving


def test_inbox_follows_the_running_sandboxs_maildir(isolated_dirs: Path, tmp_path: Path) -> None:
    custom = tmp_path / "project-mail"
    with serving("--maildir", str(custom)) as port:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(mail("to the custom maildir"))
        waited = run_tuimail("inbox", "wait", "--subject", "custom maildir", "--timeout", "10")
        assert waited.returncode == 0, waited.stderr
        listed = run_tuimail("inbox", "list")
        assert "to the custom maildir" in listed.stdout, listed.stdout + listed.stderr
        key = listed.stdout.split()[0]
        shown = run_tuimail("inbox", "show", key, "--no-check")
        assert shown.returncode == 0, shown.stderr
        assert "the text of to the custom maildir" in shown.stdout
    assert any(custom.glob("new/*")) or any(custom.glob("cur/*"))
