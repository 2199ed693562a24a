"""Messages forwarded as attachments (the data dir's ``forwarded/``) do not pile up.

F5's and F7's "forward as attachment" writes the whole message into
``forwarded/`` and attaches it; nothing removed it. The pruning of ``opened/``
now covers it: a file there that no draft attaches and the form does not hold,
unchanged for a day, is removed where ``opened/`` is pruned (the app's start,
``compose --eml``, opening an .eml in Compose); links are never followed.
"""

from __future__ import annotations

import os
import time
from email.message import EmailMessage
from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.ui_support import wait_for
from tuimail import paths
from tuimail.drafts import DraftStore, SavedDraft
from tuimail.eml import OPENED_KEPT_FOR, prune_opened
from tuimail.message import Draft
from tuimail.replies import forwards_dir, read_original, write_forward_attachment
from tuimail.ui.app import TuimailApp

OLD = time.time() - OPENED_KEPT_FOR - 3600


def aged(path: Path, when: float = OLD) -> Path:
    os.utime(path, (when, when), follow_symlinks=False)
    return path


def forwarded(subject: str, when: float = OLD) -> Path:
    """A message forwarded as an attachment, as F5 and F7 write it, last changed at ``when``."""
    message = EmailMessage()
    message["From"] = "carol@example.test"
    message["To"] = "bob@example.test"
    message["Subject"] = subject
    message.set_content("Forward me.\n")
    return aged(write_forward_attachment(read_original(bytes(message)), forwards_dir()), when)


def landscape(tmp_path: Path) -> dict[str, Path]:
    """A file that must go, and every kind that must stay."""
    outside = tmp_path / "precious.eml"
    outside.write_text("not tuimail's")
    found = {
        "stale": forwarded("Stale"),
        "attached": forwarded("Attached"),  # a saved draft attaches it
        "young": forwarded("Young", time.time() - 60),
    }
    link = forwards_dir() / "link.eml"
    link.symlink_to(outside)
    aged(link)
    folder = forwards_dir() / "a-folder"  # tuimail writes none: not its to remove
    folder.mkdir()
    aged(folder)
    DraftStore().save(
        SavedDraft(
            "0123456789ab", "", Draft(to=["bob@example.test"], attachments=[found["attached"]])
        )
    )
    return {**found, "link": link, "outside": outside, "folder": folder}


def assert_only_stale_removed(found: dict[str, Path]) -> None:
    assert not found["stale"].exists()
    for name in ("attached", "young"):
        assert found[name].is_file(), name
    assert found["link"].is_symlink() and found["folder"].is_dir()
    assert found["outside"].read_text() == "not tuimail's"


def test_compose_eml_removes_old_unused_forwarded_messages(tmp_path: Path) -> None:
    found = landscape(tmp_path)
    message = EmailMessage()
    message["From"] = "help@example.test"
    message["To"] = "bob@example.test"
    message["Subject"] = "Prepared"
    message.set_content("Hello.\n")
    eml = tmp_path / "prepared.eml"
    eml.write_bytes(bytes(message))
    result = run_tuimail("compose", "--eml", str(eml), "--print")
    assert result.returncode == 0, result.stderr
    assert_only_stale_removed(found)


def test_what_the_form_holds_and_unreadable_drafts_keep_them(tmp_path: Path) -> None:
    held = forwarded("Held")
    stale = forwarded("Stale")
    drafts = DraftStore().directory
    drafts.mkdir(parents=True, exist_ok=True)
    os.rmdir(drafts)
    drafts.write_text("not a folder")  # which files drafts use is unknown
    assert prune_opened([held]) == []
    drafts.unlink()
    assert prune_opened([held]) == [stale.name]
    assert held.is_file()


def test_a_forwarded_folder_that_is_a_link_is_not_entered(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "old.eml").write_text("someone's")
    aged(elsewhere / "old.eml")
    paths.data_dir().mkdir(parents=True, exist_ok=True)
    forwards_dir().symlink_to(elsewhere, target_is_directory=True)
    assert prune_opened() == []
    assert (elsewhere / "old.eml").read_text() == "someone's"


async def test_the_app_removes_old_unused_forwarded_messages_when_it_starts(
    tmp_path: Path,
) -> None:
    found = landscape(tmp_path)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: not found["stale"].exists(), "the stale forward to go")
        await app.workers.wait_for_complete()
    assert_only_stale_removed(found)


def test_an_unreadable_draft_keeps_every_forwarded_message(tmp_path: Path) -> None:
    """A draft that cannot be read may attach any of them: none goes until it can be."""
    stale = forwarded("Stale")
    store = DraftStore()
    store.directory.mkdir(parents=True, exist_ok=True)
    (store.directory / "0123456789ab.json").write_text("{not json")
    assert prune_opened() == []
    assert stale.is_file()
    (store.directory / "0123456789ab.json").unlink()
    assert prune_opened() == [stale.name]
