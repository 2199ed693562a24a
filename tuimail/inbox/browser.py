"""A captured message's HTML for the browser: a private file, nothing fetched, not kept.

F5's "open in the browser" hands the browser a file, since a browser opens
a page by its address. The page holds captured mail, so it is written 0600
in a private (0700) folder of its own: the user's runtime dir
(``$XDG_RUNTIME_DIR/tuimail/browser/``: memory, gone at logout), else the
state dir's ``browser/``. Pages older than :data:`BROWSER_KEPT_FOR` are
removed when the next one is written and when the app exits; a younger one
stays a little, for the browser to read it (``webbrowser.open`` returns
before the browser has).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from pathlib import Path

from tuimail import paths

#: How long (seconds) a page stays after it was written: time for a browser to start.
BROWSER_KEPT_FOR = 60.0
#: The names tuimail gives its pages (only those are ever removed).
_PAGE_RE = re.compile(r"tuimail-[A-Za-z0-9_]+\.html")

#: Forbids every load from elsewhere: the page shows what the message holds, nothing fetched.
NO_REMOTE = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    "style-src 'unsafe-inline'; img-src data: cid:\">\n"
)
_REMOTE = re.compile(r"(?:src|href|url|action|srcset)\s*[=(]\s*[\"']?\s*(?:https?:)?//", re.I)
#: Elements a CSP does not govern, or that a message in a browser never needs: a
#: refresh navigates to any address as the page opens, a dns-prefetch or
#: preconnect link reaches a server before anything loads, a base sends every
#: relative link elsewhere, a frame's own document may refresh itself. Their
#: ``<`` is written ``&lt;``: a browser starts a tag only at ``<`` and a letter,
#: so each reaches it as text, however its attributes are written.
_UNGOVERNED = re.compile(r"<(?=(?:meta|link|base|iframe|frame)[\s/>])", re.I | re.A)


def browser_dir() -> Path:
    """The private folder of the pages: in the runtime dir when there is one (memory).

    The runtime dir is used only when it is what the XDG base directory
    specification says it must be: the user's own, with no access for anyone
    else. One that is not (``XDG_RUNTIME_DIR=/tmp``, a dir of another user)
    lets others put a link where ``tuimail/browser`` goes: the folder made
    private would be the user's folder it names, and the pages written in it.
    Nor is a link in the runtime dir followed. An ``OSError`` says the state
    dir's folder is not a private folder of the user's either.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and _private(Path(runtime)) and os.access(runtime, os.W_OK):
        place = Path(runtime) / "tuimail" / "browser"
        if not any(p.is_symlink() for p in (place.parent, place)):
            paths.ensure_private_dir(place)
            if _private(place.parent) and _private(place):
                return place
    place = paths.ensure_private_dir(paths.state_dir() / "browser")
    if not _private(place):
        raise OSError(f"{place} is not a private folder of yours (a link, or another's)")
    return place


def _private(directory: Path) -> bool:
    """Whether ``directory`` is a real folder (not a link), the user's, closed to others."""
    try:
        info = directory.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    )


def write_html_for_browser(html: str) -> tuple[Path, bool]:
    """The HTML in a new 0600 file in :func:`browser_dir`, remote loading forbidden by a
    CSP first, and the elements no CSP governs made text; older pages removed first.

    Returns the file and whether the HTML asks for remote content (the caller
    says it is blocked). File I/O: call it in a worker.
    """
    directory = browser_dir()
    prune_browser_pages(directory)
    # 0600, created exclusively, its name not guessable.
    fd, name = tempfile.mkstemp(prefix="tuimail-", suffix=".html", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as out:
        out.write(
            '<!DOCTYPE html>\n<meta charset="utf-8">\n' + NO_REMOTE + _UNGOVERNED.sub("&lt;", html)
        )
    return Path(name), bool(_REMOTE.search(html) or _UNGOVERNED.search(html))


def prune_browser_pages(directory: Path | None = None, *, now: float | None = None) -> int:
    """Remove the pages older than :data:`BROWSER_KEPT_FOR` (one dated ahead of the clock
    by as much too); how many. Never raises for a file or folder it cannot touch.

    Only tuimail's own names, only regular files, never through a link: the
    folder is opened without following one and each file removed by name in it.
    With no ``directory``, the usual folder, and only when it exists (the app's
    exit makes none).
    """
    if directory is None:
        runtime = os.environ.get("XDG_RUNTIME_DIR", "")
        places = [paths.state_dir() / "browser"]
        # Only where browser_dir writes: in a runtime dir that is not the user's
        # own, "tuimail" may be another's link to a folder of the user's.
        if runtime and _private(Path(runtime)) and not (Path(runtime) / "tuimail").is_symlink():
            places.insert(0, Path(runtime) / "tuimail" / "browser")
        return sum(prune_browser_pages(place, now=now) for place in places)
    now = time.time() if now is None else now
    try:
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return 0  # none yet, or not a real folder
    removed = 0
    try:
        with os.scandir(descriptor) as entries:
            for entry in entries:
                if not _PAGE_RE.fullmatch(entry.name):
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISREG(info.st_mode) and abs(now - info.st_mtime) > BROWSER_KEPT_FOR:
                        os.unlink(entry.name, dir_fd=descriptor)
                        removed += 1
                except OSError:
                    continue  # gone meanwhile, or not ours to remove
    except OSError:
        pass  # the folder could not be listed: nothing removed
    finally:
        os.close(descriptor)
    return removed
