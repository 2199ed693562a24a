"""The app's own settings: key remapping (config) and remembered choices (state).

``$XDG_CONFIG_HOME/tuimail/config.toml`` is the user's to edit (read by
:mod:`tuimail.user_config`; this module applies its ``[keymap]``)::

    [keymap]
    "compose.send" = "ctrl+enter"     # binding id = key(s), comma-separated

``$XDG_STATE_HOME/tuimail/ui.toml`` is tuimail's: the chosen theme.
A broken file is reported once and ignored; it never stops the app.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import tomli_w
from textual.app import App

from tuimail import paths
from tuimail.atomic import atomic_write_bytes
from tuimail.small_files import parse_toml, read_small_text
from tuimail.user_config import Config, config_file


def state_file() -> Path:
    return paths.state_dir() / "ui.toml"


def load_state() -> dict[str, object]:
    """What the app remembered; empty when the file is missing or unreadable."""
    try:
        return parse_toml(read_small_text(state_file()))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def save_state(updates: dict[str, object]) -> None:
    state = load_state()
    state.update(updates)
    try:
        paths.ensure_private_dir(state_file().parent)
        atomic_write_bytes(state_file(), tomli_w.dumps(state).encode("utf-8"))
    except OSError:
        pass  # remembering a theme is a convenience, never a reason to fail


def apply_keymap(app: App[None], config: Config) -> list[str]:
    """Install ``[keymap]`` from config.toml's tables; returns the problems to report."""
    problems = []
    keymap = config.get("keymap", {})
    if not isinstance(keymap, dict):
        return [f"{config_file()}: [keymap] must be a table"]
    clean: dict[str, str] = {}
    for binding_id, keys in keymap.items():
        if isinstance(keys, str) and keys.strip():
            clean[str(binding_id)] = keys
        else:
            problems.append(f"{config_file()}: keymap {binding_id!r} must be a key name string")
    if clean:
        app.set_keymap(clean)
    return problems
