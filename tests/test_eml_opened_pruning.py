"""Review: the parts of opened .eml files (the data dir's ``opened/``) do not pile up.

Each ``tuimail compose --eml`` (``--print`` too) and each "Open an .eml file" saved
its parts in a new folder that nothing removed. A folder no draft uses, a day old,
is removed at the next opening and at the app's start; what a draft (readable or
not) or the form uses stays, and links are never followed. Real processes for the
command line, Pilot for the app.
"""

from __future__ import annotations

import json
import os
import time
from email.message import EmailMessage
from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.test_ui_compose_eml import palette
from tests.ui_support import paste, save_profile, wait_for
from tuimail import paths
from tuimail.drafts import DraftStore, SavedDraft
from tuimail.eml import OPENED_KEPT_FOR, prune_opened
from tuimail.message import Draft
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen

OLD = time.time() - OPENED_KEPT_FOR - 3600


def aged(path: Path, when: float = OLD) -> Path:
    os.utime(path, (when, when), follow_symlinks=False)
    return path


def parts_folder(name: str, when: float = OLD) -> Path:
    """A folder of ``opened/`` with one part in it, last changed at ``when``."""
    folder = paths.data_dir() / "opened" / name
    folder.mkdir(parents=True)
    (folder / "part.pdf").write_bytes(b"%PDF-1.4 part of " + name.encode())
    return aged(folder, when)


def eml_file(tmp_path: Path) -> Path:
    message = EmailMessage()
    message["From"] = "Help Desk <help@example.test>"
    message["To"] = "bob@example.test"
    message["Subject"] = "Prepared"
    message.set_content("Hello.\n")
    message.add_attachment(b"a,b\n", maintype="text", subtype="csv", filename="data.csv")
    path = tmp_path / "prepared.eml"
    path.write_bytes(bytes(message))
    return path


def landscape(tmp_path: Path) -> dict[str, Path]:
    """Folders that must go, and every kind that must stay, plus what links point to."""
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("not tuimail's")
    folders = {
        "stale": parts_folder("stale"),
        "named": parts_folder("named"),  # its draft cannot be read: kept all the same
        "attached": parts_folder("attached"),  # a draft of another id attaches its part
        "young": parts_folder("young", time.time() - 60),
    }
    # A stale folder holding a link to a file outside: the link goes, never its target.
    (folders["stale"] / "link.txt").symlink_to(outside / "keep.txt")
    aged(folders["stale"])
    link = paths.data_dir() / "opened" / "link"
    link.symlink_to(outside, target_is_directory=True)
    aged(link)
    store = DraftStore()
    store.directory.mkdir(parents=True, exist_ok=True)
    (store.directory / "named.json").write_text("{not json")
    store.save(
        SavedDraft(
            "0123456789ab",
            "",
            Draft(to=["bob@example.test"], attachments=[folders["attached"] / "part.pdf"]),
        )
    )
    return {**folders, "link": link, "outside": outside}


def assert_only_stale_removed(found: dict[str, Path]) -> None:
    assert not found["stale"].exists()
    for name in ("named", "attached", "young"):
        assert (found[name] / "part.pdf").is_file(), name
    assert found["link"].is_symlink()
    assert (found["outside"] / "keep.txt").read_text() == "not tuimail's"


def test_compose_eml_print_removes_old_unused_parts_and_nothing_else(tmp_path: Path) -> None:
    found = landscape(tmp_path)
    result = run_tuimail("compose", "--eml", str(eml_file(tmp_path)), "--print")
    assert result.returncode == 0, result.stderr
    assert_only_stale_removed(found)
    # This run's own parts are there for the script that reads the JSON.
    [attached] = json.loads(result.stdout)["attachments"]
    assert Path(attached).read_bytes() == b"a,b\r\n" or Path(attached).read_bytes() == b"a,b\n"


def test_an_opened_folder_that_is_a_link_is_not_entered(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "old").mkdir(parents=True)
    (elsewhere / "old" / "data").write_text("someone else's")
    aged(elsewhere / "old")
    paths.data_dir().mkdir(parents=True)
    (paths.data_dir() / "opened").symlink_to(elsewhere, target_is_directory=True)
    assert prune_opened() == []
    assert (elsewhere / "old" / "data").read_text() == "someone else's"


def test_unreadable_drafts_keep_every_folder(tmp_path: Path) -> None:
    """The drafts folder cannot be listed (here: a file stands in its place; a folder
    without read permission fails the same way): which parts drafts use is unknown."""
    stale = parts_folder("stale")
    drafts = DraftStore().directory
    drafts.write_text("not a folder")
    assert prune_opened() == []
    assert stale.is_dir()
    drafts.unlink()
    assert prune_opened() == ["stale"]


async def test_the_app_removes_old_unused_parts_when_it_starts(tmp_path: Path) -> None:
    found = landscape(tmp_path)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: not found["stale"].exists(), "the stale parts to go")
        await app.workers.wait_for_complete()
    assert_only_stale_removed(found)


async def test_opening_an_eml_in_the_app_removes_old_unused_parts(tmp_path: Path) -> None:
    save_profile(name="local", host="127.0.0.1", port=2, security="none")
    eml = eml_file(tmp_path)
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()  # the start's own pruning is over
        found = landscape(tmp_path)
        await palette(pilot, "open an .eml")
        await wait_for(pilot, lambda: not isinstance(app.screen, ComposeScreen), "the picker")
        await paste(pilot, str(eml))
        await pilot.press("enter")
        await wait_for(pilot, lambda: not found["stale"].exists(), "the stale parts to go")
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        await wait_for(pilot, lambda: len(screen.attachments) == 1, "the new part attached")
        assert screen.attachments[0].read_bytes().replace(b"\r\n", b"\n") == b"a,b\n"
        assert_only_stale_removed(found)
