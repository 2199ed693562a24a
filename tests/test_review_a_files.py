"""tuimail's own files replaced by something that is not a small regular file.

A FIFO where ``config.toml`` should be, or a symbolic link from
``profiles.toml`` to ``/dev/zero``, must give an error (or the defaults),
never a hang or a process that reads until memory runs out. Real processes,
each with a timeout: a hang fails the test instead of stalling the run.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Certs
from tests.smtpservers import ServerThread, Sink
from tuimail.drafts import DraftStore, SavedDraft
from tuimail.message import Draft

SPECIAL: dict[str, Callable[[Path], None]] = {
    "fifo": os.mkfifo,
    "dev-zero": lambda path: path.symlink_to("/dev/zero"),
    "directory": lambda path: path.mkdir(),
    "symlink-loop": lambda path: path.symlink_to(path),
}


def config(isolated_dirs: Path) -> Path:
    directory = isolated_dirs / "config" / "tuimail"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def run_bounded(*args: str) -> subprocess.CompletedProcess[str]:
    """``tuimail`` with 1 GiB of address space: reading /dev/zero to the end fails fast."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    from tests.cli_helpers import TUIMAIL

    return subprocess.run(
        [TUIMAIL, *args],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=limit,
    )


@pytest.mark.parametrize("kind", SPECIAL)
def test_a_special_profiles_file_is_an_error_not_a_hang(isolated_dirs: Path, kind: str) -> None:
    SPECIAL[kind](config(isolated_dirs) / "profiles.toml")
    result = run_bounded("accounts", "list")
    assert "Traceback" not in result.stderr
    assert "profiles.toml" in result.stderr, result.stderr
    assert result.returncode != 0


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_special_config_file_does_not_stop_a_send(isolated_dirs: Path, kind: str) -> None:
    SPECIAL[kind](config(isolated_dirs) / "config.toml")
    result = run_bounded(
        "send", "--server", "127.0.0.1:1", "--security", "none", "--no-queue",
        "--from", "a@example.com", "--to", "b@example.com", "--subject", "s", "--body", "b",
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    assert "failed at connect" in result.stderr, result.stderr


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_special_targets_file_is_an_error_not_a_hang(isolated_dirs: Path, kind: str) -> None:
    from tuimail.targets import TargetError, TargetStore

    path = config(isolated_dirs) / "targets.toml"
    SPECIAL[kind](path)
    with pytest.raises(TargetError, match="cannot be read"):
        TargetStore(path).load()


@pytest.mark.parametrize("kind", SPECIAL)
def test_a_special_file_among_the_drafts_is_skipped(isolated_dirs: Path, kind: str) -> None:
    store = DraftStore()
    store.save(SavedDraft(DraftStore.new_id(), "", Draft(subject="kept")))
    SPECIAL[kind](store.directory / "odd.json")
    assert [d.draft.subject for d in store.list()] == ["kept"]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_special_probe_history_starts_afresh(isolated_dirs: Path, kind: str) -> None:
    from tuimail.probe_history import ProbeHistory

    state = isolated_dirs / "state" / "tuimail"
    state.mkdir(parents=True)
    SPECIAL[kind](state / "probe-history.json")
    assert ProbeHistory.load().targets == {}


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_special_settings_and_theme_files_are_reported(isolated_dirs: Path, kind: str) -> None:
    from tuimail import user_config
    from tuimail.ui import themes

    config(isolated_dirs)
    SPECIAL[kind](user_config.config_file())
    assert "is not a regular file" in user_config.load_config().problem
    theme_dir = themes.user_theme_dir()
    theme_dir.mkdir(parents=True, exist_ok=True)
    SPECIAL[kind](theme_dir / "odd.toml")

    class Recorder:
        def register_theme(self, theme: object) -> None:
            pass

    loaded = themes.register_all(Recorder())  # type: ignore[arg-type]
    assert any("odd.toml" in problem for problem in loaded.problems), loaded.problems


# -- drafts edited on disk --------------------------------------------------


def write_draft(directory: Path, name: str, **fields: object) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    record = {"id": name, "profile": "", "saved": 1_700_000_000.0, "draft": {"subject": name}}
    record.update(fields)
    (directory / f"{name}.json").write_text(json.dumps(record))


def test_a_draft_saved_at_an_impossible_time_is_listed_without_one() -> None:
    store = DraftStore()
    for name, saved in (("nan", float("nan")), ("huge", 1e300), ("negative", -1e300)):
        write_draft(store.directory, name, saved=saved)
    drafts = {d.id: d.saved for d in store.list()}
    assert drafts == {"nan": 0.0, "huge": 0.0, "negative": 0.0}


def test_the_id_inside_a_draft_file_never_names_another_file(isolated_dirs: Path) -> None:
    store = DraftStore()
    victim = isolated_dirs / "config" / "tuimail" / "profiles.json"
    victim.parent.mkdir(parents=True)
    victim.write_text("keep me")
    write_draft(store.directory, "abc", id="../../../config/tuimail/profiles")
    (listed,) = store.list()
    assert listed.id == "abc"
    store.delete(listed.id)
    store.save(listed)
    assert victim.read_text() == "keep me"
    assert store.load("abc").id == "abc"


async def test_the_drafts_tab_shows_a_draft_saved_at_an_impossible_time() -> None:
    from textual.widgets import DataTable

    from tests.ui_support import open_mailboxes
    from tuimail.ui.app import TuimailApp

    write_draft(DraftStore().directory, "nan", saved=float("nan"))
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_mailboxes(pilot, "tab-drafts")
        table = screen.query_one("#drafts-table", DataTable)
        assert table.row_count == 1
        assert app.is_running


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory"])
def test_a_special_ca_file_makes_the_probe_unknown_not_hang(tmp_path: Path, kind: str) -> None:
    """OpenSSL read the CA path itself, blocking the probe's event loop on a FIFO."""
    ca_file = tmp_path / "ca.pem"
    SPECIAL[kind](ca_file)
    result = run_bounded(
        "probe", "127.0.0.1:1", "--ca-file", str(ca_file), "--nagios", "--no-history"
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "cannot use the CA file" in result.stdout
    assert "Traceback" not in result.stderr


async def test_the_probe_still_trusts_a_pem_ca_file(servers: ServerThread, certs: Certs) -> None:
    from tuimail.probe import ProbeTarget, Status, probe
    from tuimail.profiles import Security

    port = servers.smtp(Sink(), tls_context=certs.good)
    target = ProbeTarget(
        host="localhost", port=port, security=Security.STARTTLS, ca_file=str(certs.ca_file)
    )
    report = await probe(target)
    assert report.tls is not None and report.tls.trust.trusted, report.reasons
    assert report.status is Status.OK, report.reasons


# -- nested too deeply ------------------------------------------------------

DEEP_TOML = "x = " + "[" * 50_000 + "]" * 50_000 + "\n"
DEEP_JSON = "[" * 50_000 + "]" * 50_000


def test_a_profiles_file_nested_too_deeply_is_an_error_in_words(isolated_dirs: Path) -> None:
    (config(isolated_dirs) / "profiles.toml").write_text(DEEP_TOML)
    result = run_bounded("accounts", "list")
    assert "Traceback" not in result.stderr
    assert "nested too deeply" in result.stderr, result.stderr
    assert result.returncode != 0


def test_a_config_nested_too_deeply_is_an_error_in_words(isolated_dirs: Path) -> None:
    (config(isolated_dirs) / "config.toml").write_text(DEEP_TOML)
    result = run_bounded(  # queued: the [outbox] retry settings are read
        "send", "--server", "127.0.0.1:1", "--security", "none",
        "--from", "a@example.com", "--to", "b@example.com", "--body", "b",
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    assert "nested too deeply" in result.stderr, result.stderr
    assert result.returncode != 0


def test_state_files_nested_too_deeply_are_skipped_or_reported(isolated_dirs: Path) -> None:
    from tuimail import user_config
    from tuimail.probe_history import ProbeHistory
    from tuimail.targets import TargetError, TargetStore
    from tuimail.ui import themes

    store = DraftStore()
    store.save(SavedDraft(DraftStore.new_id(), "", Draft(subject="kept")))
    (store.directory / "deep.json").write_text(DEEP_JSON)
    assert [d.draft.subject for d in store.list()] == ["kept"]

    state = isolated_dirs / "state" / "tuimail"
    state.mkdir(parents=True)
    (state / "probe-history.json").write_text(DEEP_JSON)
    assert ProbeHistory.load().targets == {}

    targets = config(isolated_dirs) / "targets.toml"
    targets.write_text(DEEP_TOML)
    with pytest.raises(TargetError, match="nested too deeply"):
        TargetStore(targets).load()

    user_config.config_file().write_text(DEEP_TOML)
    assert "nested too deeply" in user_config.load_config().problem
    with pytest.raises(ValueError, match="nested too deeply"):
        themes.parse_theme(DEEP_TOML, "deep.toml")
