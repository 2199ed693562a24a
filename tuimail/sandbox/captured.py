"""What the sandbox's Maildir holds, whoever received it: the list F5 shows.

The Maildir is shared: the app's own sandbox, a ``tuimail serve``, a
``tuimail send`` or another program may each add files, and a restart keeps
them. :class:`CapturedReader` lists the newest messages (at most
:data:`MAX_LISTED`), each with what its session file says of it (sender,
recipients, session id), or with its own From and To headers when no session
file names it (a session still running elsewhere, or a file dropped in by
hand). All of it is file I/O: call it in a thread, never on a UI loop.

It remembers what it read (each session file once, each message's headers
once) and what the directories looked like, so a look at an unchanged
Maildir costs three ``stat`` calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any

from tuimail.small_files import parse_json, read_small_file, read_small_text
from tuimail.transcript import Transcript

#: Messages listed at most, the newest first; the Maildir may hold many more.
MAX_LISTED = 200
#: A session file read at most (a session keeps at most 128 KiB of transcript).
MAX_SESSION_FILE = 4 * 1024 * 1024
#: Bytes of a message read for its From and To headers.
HEAD_BYTES = 16 * 1024
#: A message read to be shown at most (the sandbox takes up to 32 MiB by default).
MAX_MESSAGE_READ = 64 * 1024 * 1024

#: maildir(5) names start with the delivery time in seconds (tuimail adds ``.M<microseconds>``).
_NAME_TIME = re.compile(r"^(\d+)(?:\.M(\d{1,6}))?")
#: A session id, as :meth:`~tuimail.sandbox.server.Sandbox._session_id` makes it.
_SESSION_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

Stamp = tuple[int, ...]


@dataclass(frozen=True)
class Captured:
    """One message in the Maildir; ``session_id`` empty when no session file names it."""

    key: str
    received_at: float
    mail_from: str
    rcpt_tos: tuple[str, ...]
    size: int
    session_id: str = ""


@dataclass(frozen=True)
class Listing:
    """The newest messages (newest first), how many the Maildir holds, and what was read."""

    messages: tuple[Captured, ...]
    total: int
    maildir: Path
    problem: str = ""


class CapturedReader:
    """Lists one sandbox Maildir, with its session files; remembers what it read."""

    def __init__(self, maildir: Path, sessions_dir: Path, limit: int = MAX_LISTED) -> None:
        self.maildir = maildir
        self.sessions_dir = sessions_dir
        self.limit = limit
        self._stamp: Stamp | None = None
        #: What session files say of each message key (only keys listed lately are kept).
        self._by_key: dict[str, Captured] = {}
        #: Session files read, by name, and the modification time they were read at.
        self._sessions_read: dict[str, int] = {}
        #: Messages no session file names, described from their own headers.
        self._heads: dict[str, Captured] = {}

    def stamp(self) -> Stamp:
        """What changes when a message or a session file is added or removed."""
        stamp: list[int] = []
        for directory in (self.maildir / "new", self.maildir / "cur", self.sessions_dir):
            try:
                info = os.stat(directory)
            except OSError:
                stamp += [0, 0]
                continue
            stamp += [info.st_ino, info.st_mtime_ns]
        return tuple(stamp)

    def read_if_changed(self) -> Listing | None:
        """A new :class:`Listing` if the Maildir or the session files changed since the last."""
        stamp = self.stamp()
        if stamp == self._stamp:
            return None
        listing = self.read()
        self._stamp = stamp
        return listing

    def read(self) -> Listing:
        """The newest :attr:`limit` messages, newest first, and how many there are."""
        names: list[tuple[float, str, Path]] = []
        try:
            for sub in ("new", "cur"):
                with os.scandir(self.maildir / sub) as entries:
                    for entry in entries:
                        if entry.name.startswith("."):
                            continue
                        key = entry.name.split(":", 1)[0]
                        names.append((self._time_of(entry), key, Path(entry.path)))
        except FileNotFoundError:
            return Listing((), 0, self.maildir)
        except OSError as exc:
            return Listing((), 0, self.maildir, f"cannot read {self.maildir}: {exc.strerror}")
        names.sort(reverse=True)
        newest = names[: self.limit]
        listed = {key for _when, key, _path in newest}
        self._read_sessions(listed, newest[-1][0] if newest else 0.0)
        messages = []
        for when, key, path in newest:
            known = self._by_key.get(key) or self._heads.get(key)
            if known is None:
                known = self._from_headers(key, path, when)
                self._heads[key] = known
            messages.append(known)
        # Keep only what the list may still show: the Maildir may hold millions.
        self._by_key = {key: value for key, value in self._by_key.items() if key in listed}
        self._heads = {key: value for key, value in self._heads.items() if key in listed}
        return Listing(tuple(messages), len(names), self.maildir)

    @staticmethod
    def _time_of(entry: os.DirEntry[str]) -> float:
        match = _NAME_TIME.match(entry.name)
        if match:
            # M is microseconds, not zero-padded (maildir(5), mailbox.Maildir, maildir.py).
            return int(match.group(1)) + int(match.group(2) or 0) / 1e6
        try:
            return entry.stat().st_mtime
        except OSError:
            return 0.0

    def _read_sessions(self, listed: set[str], oldest: float) -> None:
        """Read the session files not read yet; note what they say of listed messages.

        A session file is written when its session ends, after each message of
        it was stored: one written before the oldest listed message (``oldest``,
        less a second's slack) names none of them and is not read at all. So a
        data dir with a thousand session files costs a ``stat`` each, not a parse.
        """
        current: dict[str, int] = {}
        try:
            with os.scandir(self.sessions_dir) as entries:
                for entry in entries:
                    if entry.name.endswith(".json"):
                        with contextlib.suppress(OSError):
                            current[entry.name] = entry.stat().st_mtime_ns
        except OSError:
            return
        for name, mtime in current.items():
            if self._sessions_read.get(name) == mtime or mtime / 1e9 < oldest - 1.0:
                continue
            document = self._session_document(self.sessions_dir / name)
            for message in _messages_of(document):
                if message.key in listed:
                    self._by_key[message.key] = message
        self._sessions_read = current  # pruned files are forgotten

    def _session_document(self, path: Path) -> dict[str, Any]:
        try:
            document = parse_json(read_small_text(path, MAX_SESSION_FILE))
        except (OSError, ValueError):
            return {}
        return document if isinstance(document, dict) else {}

    def _from_headers(self, key: str, path: Path, when: float) -> Captured:
        """A message no session file names: its own From and To, its size and time."""
        size = 0
        head = b""
        with contextlib.suppress(OSError):
            # Not blocking, and only a regular file: a FIFO put there never hangs the reader.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                info = os.fstat(fd)
                if stat.S_ISREG(info.st_mode):
                    size = info.st_size
                    head = os.read(fd, HEAD_BYTES)
            finally:
                os.close(fd)
        headers = BytesHeaderParser(policy=compat32).parsebytes(head.split(b"\r\n\r\n", 1)[0])

        def header(name: str) -> str:
            # Shown through the screen's escaping (a client wrote it); kept short.
            try:
                return " ".join(str(headers.get(name, "")).split())[:500]
            except Exception:  # a header the parser trips on is left out, never a crash
                return ""

        recipients = tuple(filter(None, (header("To"),)))
        return Captured(key, when, header("From"), recipients, size)

    def session_transcript(self, session_id: str) -> Transcript | None:
        """The server's side of a session, from its file; None when there is no file (yet)."""
        if not _SESSION_ID.match(session_id):
            return None
        path = self.sessions_dir / f"{session_id}.json"
        if not path.exists():
            return None
        entries = self._session_document(path).get("transcript")
        if not isinstance(entries, list):
            return None
        lines = "".join(json.dumps(entry) + "\n" for entry in entries if isinstance(entry, dict))
        try:
            return Transcript.from_jsonl(lines, title=f"session {session_id}")
        except (ValueError, KeyError, TypeError):
            return None

    def read_message(self, key: str) -> bytes:
        """A message's bytes: :class:`FileNotFoundError` when it has gone, another
        ``OSError`` when it is no regular file or larger than :data:`MAX_MESSAGE_READ`."""
        for sub in ("new", "cur"):
            with contextlib.suppress(FileNotFoundError):
                return read_small_file(self.maildir / sub / key, MAX_MESSAGE_READ)
            with contextlib.suppress(OSError), os.scandir(self.maildir / sub) as entries:
                for entry in entries:
                    if entry.name.split(":", 1)[0] == key:
                        return read_small_file(Path(entry.path), MAX_MESSAGE_READ)
        raise FileNotFoundError(key)


def _messages_of(document: dict[str, Any]) -> list[Captured]:
    """The messages a session file lists, as :class:`Captured` (a bad entry is skipped)."""
    session_id = str(document.get("id") or "")
    found = []
    listed = document.get("messages")
    for entry in listed if isinstance(listed, list) else []:
        try:
            found.append(
                Captured(
                    key=str(entry["key"]),
                    received_at=float(entry.get("received_at") or 0.0),
                    mail_from=str(entry.get("mail_from") or ""),
                    rcpt_tos=tuple(str(r) for r in entry.get("rcpt_tos") or ()),
                    size=int(entry.get("size") or 0),
                    session_id=session_id,
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return found
