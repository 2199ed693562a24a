"""Where tuimail keeps its files.

platformdirs already honours ``XDG_CONFIG_HOME``, ``XDG_DATA_HOME`` and
``XDG_STATE_HOME`` on Linux, so we only add the one thing it does not do:
create the directories private to the user (0700), because they hold account
settings and, later, mail.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "tuimail"


def config_dir() -> Path:
    """Directory for ``profiles.toml`` and user themes."""
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """Directory for mail the user keeps: outbox, sent, sandbox captures."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def state_dir() -> Path:
    """Directory for state that can be rebuilt: history, remembered choices."""
    import platformdirs

    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make the leaf readable by its owner only.

    An existing directory is tightened to 0700 too: a config dir created by
    another tool with 0755 would otherwise expose file names and sizes.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (path.stat().st_mode & 0o777) != 0o700:
        os.chmod(path, 0o700)
    return path
