"""config.toml, the user's settings file, read in one place for every face.

``$XDG_CONFIG_HOME/tuimail/config.toml`` holds ``[keymap]`` (the app's keys),
``[monitor]`` (the app's Monitor) and ``[outbox]`` (retry timing, for the app
and the command line alike). An unreadable or broken file is reported by the
app once and read as empty; a bad ``[outbox]`` table is an error in both
faces, with the same words, because a retry schedule the user did not ask for
must not run quietly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuimail import paths
from tuimail.errors import TuimailError
from tuimail.small_files import parse_toml, read_small_text

if TYPE_CHECKING:  # the outbox brings the SMTP client: imported when a policy is asked for
    from tuimail.outbox import RetryPolicy

#: config.toml's tables as read: each user checks the values of its own table.
Config = dict[str, object]

#: The key :func:`load_config` sets, instead of the file's tables, when the file is unreadable.
PROBLEM_KEY = "_problem"


class ConfigError(TuimailError):
    """A table of config.toml holds a value tuimail cannot use; the message names it."""


def config_file() -> Path:
    return paths.config_dir() / "config.toml"


def load_config() -> Config:
    """The file's tables; ``{}`` when there is none, ``{PROBLEM_KEY: why}`` when it is unreadable."""
    path = config_file()
    try:
        return parse_toml(read_small_text(path))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, not TOML, nested too deep
        return {PROBLEM_KEY: f"{path}: {exc}"}


def retry_policy(config: Config | None = None) -> RetryPolicy:
    """The outbox's retry timing from ``[outbox]`` (defaults when the table is absent).

    ``config`` is what :func:`load_config` returned (read now when ``None``).
    Raises :class:`ConfigError` for a value out of range or not a number.
    """
    from tuimail.outbox import RetryPolicy

    if config is None:
        config = load_config()
    try:
        return RetryPolicy.from_config(config.get("outbox", {}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config.toml [outbox]: {exc}") from None
