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


def exports_dir() -> Path:
    """Where the app's exports go unless the user names another place: ``exports/`` in
    the data dir (not the current directory, which after ``make run`` is the
    repository). Made private (0700) when first used."""
    return data_dir() / "exports"


def state_dir() -> Path:
    """Directory for state that can be rebuilt: history, remembered choices."""
    import platformdirs

    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def ensure_private_dir(path: Path, *, tighten: bool = True) -> Path:
    """Create ``path`` and its missing parents, each readable by its owner only (0700).

    Every directory made here gets 0700, set after ``mkdir`` (whose mode the
    umask narrows, and which ``Path.mkdir`` does not give to parents); one
    that already exists is not touched, so a Maildir asked for at
    ``/tmp/mail`` gets a private ``mail`` and leaves ``/tmp`` alone. With
    ``tighten`` (tuimail's own directories) an existing ``path`` is set to
    0700 too: a config dir created by another tool with 0755 would otherwise
    expose file names and sizes. A place the user named keeps its mode
    (``tighten=False``).
    """
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # made meanwhile by someone else: tightened below if it is ``path``
        os.chmod(directory, 0o700)
    if tighten and (path.stat().st_mode & 0o777) != 0o700:
        os.chmod(path, 0o700)
    return path
