"""Reading tuimail's own small files (settings, profiles, drafts, history) safely.

``Path.read_text`` trusts the file to be a file. A FIFO in its place blocks
the reader forever (``tuimail send`` hung on a ``config.toml`` FIFO), and a
symbolic link to ``/dev/zero`` is read until memory runs out. These files are
edited by hand, copied from elsewhere and synced between machines, so each is
opened without blocking, checked to be a regular file on the open descriptor,
and read only up to a limit. Every refusal is an :class:`OSError`, which each
caller already reports as "cannot be read", the same as a permission problem.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

from tuimail.errors import TuimailError

#: Far more than any settings, profiles, targets or theme file needs.
CONFIG_LIMIT = 4 * 1024 * 1024


class NotReadable(TuimailError, OSError):
    """A file that cannot be read, or not as what the caller needs.

    ``errno`` tells why: ``EISDIR`` a directory, ``EINVAL`` a FIFO, device or
    socket, ``EFBIG`` a file over the limit; a caller that words every
    problem (:func:`tuimail.message.read_regular_file`) also raises it for
    ``ENOENT``, ``EACCES`` and other errors, and ``EILSEQ`` for text that is
    not UTF-8. :attr:`words` says it in plain words, without the path.
    """

    @property
    def words(self) -> str:
        """Why, as the end of a sentence about the file: "is a directory"."""
        return self.strerror or "cannot be read"


def read_small_file(path: Path, limit: int = CONFIG_LIMIT) -> bytes:
    """The bytes of ``path``: a regular file of at most ``limit`` bytes.

    Raises :class:`FileNotFoundError` when it does not exist (callers treat
    that as "no file yet"), :class:`NotReadable` for a directory, FIFO,
    device or socket, or a file over ``limit``, and any other :class:`OSError`
    as the system gives it.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            if stat.S_ISDIR(mode):
                raise NotReadable(errno.EISDIR, "is a directory", str(path))
            raise NotReadable(errno.EINVAL, "is not a regular file", str(path))
        data = file.read(limit + 1)  # a file may grow after the check: read at most this
    if len(data) > limit:
        raise NotReadable(errno.EFBIG, f"is larger than {limit:,} bytes", str(path))
    return data


def read_small_text(path: Path, limit: int = CONFIG_LIMIT) -> str:
    """:func:`read_small_file` decoded as UTF-8 (raises :class:`UnicodeDecodeError`)."""
    return read_small_file(path, limit).decode("utf-8")


def parse_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads``, with nesting too deep to parse as a TOML error.

    ``a = [[[[...`` a few thousand levels deep makes tomllib (and json)
    raise RecursionError, which is no ValueError: it passed every
    ``except TOMLDecodeError`` and stopped the command or the app.
    """
    import tomllib

    try:
        return tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError("values are nested too deeply") from None


def parse_json(text: str) -> Any:
    """``json.loads``, with nesting too deep to parse as a ValueError (see :func:`parse_toml`)."""
    import json

    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("values are nested too deeply") from None
