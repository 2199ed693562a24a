"""The sandbox's inbox: an SQLite index (FTS5 for text) of its Maildir, kept beside it.

The Maildir stays the truth; the index is a cache of it that anyone may
throw away. :meth:`InboxIndex.refresh` catches up with files other processes
added, renamed or removed (the sandbox of another process, a file dropped in
by hand, a delete with ``rm``): when nothing changed it costs three ``stat``
calls (the directories' modification times, kept in the index too), else a
scan of file names and a parse of the new files only; an object that looked
before (``inbox wait``, F5) compares only the names that changed since with
the rows, not all of them (:class:`_Look`). Session files
(``sessions/*.json``) add what only the server saw: the envelope, the
session id and who authenticated.

Safe to share: every update is a transaction (a crash mid-update leaves the
last committed state, and the next refresh finishes the work), the database
runs in WAL mode with a bounded busy timeout, so two processes indexing at
once wait for each other rather than corrupt anything, and an index file
SQLite reports as corrupt (or of another schema) is deleted and built again
from the Maildir, never trusted.

Pages are read by keyset (``received`` then ``id``, both indexed): a page
costs the same with 100 or 100,000 messages stored. All of it is file I/O:
call it from a thread or a worker, never on a UI loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from tuimail import paths
from tuimail.errors import NotFound, TuimailError
from tuimail.inbox import mime
from tuimail.inbox.mailboxes import MailboxRule, choose_mailbox, fingerprint, tags_of
from tuimail.inbox.query import Query, parse_query
from tuimail.small_files import parse_json, read_small_file, read_small_text
from tuimail.transcript import Transcript

#: Schema of the index; an index file of another version is built again.
SCHEMA_VERSION = 1
#: How long a process waits for another one's write to the index (seconds).
BUSY_TIMEOUT = 10.0
#: Bytes of a message read to index it (headers, text); the rest is not searched.
INDEX_READ = 4 * 1024 * 1024
#: A message read to be shown at most.
MAX_MESSAGE_READ = 64 * 1024 * 1024
#: A session file read at most.
MAX_SESSION_FILE = 4 * 1024 * 1024
#: New messages indexed per transaction: a crash loses at most this much work,
#: and another process waits at most this long for the lock.
BATCH = 500
#: A directory changed this recently (ns) may change again within the same clock tick.
RACY_NS = 1_000_000_000
#: Messages in a page by default.
PAGE_SIZE = 100

_NAME_TIME = re.compile(r"^(\d+)(?:\.M(\d{1,6}))?")
_SESSION_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
#: SQLite's primary result codes for a damaged or foreign file.
_CORRUPT_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    sub TEXT NOT NULL,
    name TEXT NOT NULL,
    received REAL NOT NULL,
    mail_from TEXT NOT NULL DEFAULT '',
    to_addrs TEXT NOT NULL DEFAULT '',
    cc_addrs TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    session_id TEXT NOT NULL DEFAULT '',
    envelope_from TEXT NOT NULL DEFAULT '',
    envelope_to TEXT NOT NULL DEFAULT '',
    auth_user TEXT NOT NULL DEFAULT '',
    mailbox TEXT NOT NULL DEFAULT 'inbox',
    tags TEXT NOT NULL DEFAULT ' ',
    seen INTEGER NOT NULL DEFAULT 0,
    has_attachment INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (received DESC, id DESC);
CREATE INDEX IF NOT EXISTS messages_by_mailbox ON messages (mailbox, received DESC, id DESC);
CREATE VIRTUAL TABLE IF NOT EXISTS texts USING fts5 (subject, people, body);
CREATE TABLE IF NOT EXISTS envelopes (
    key TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    rcpt_tos TEXT NOT NULL,
    auth_user TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions_read (name TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL);
"""

_COLUMNS = (
    "id, key, sub, name, received, mail_from, to_addrs, cc_addrs, subject, size, session_id,"
    " envelope_from, envelope_to, auth_user, mailbox, tags, seen, has_attachment"
)


class IndexBusy(TuimailError):
    """Another process kept the index locked for longer than :data:`BUSY_TIMEOUT`."""


class Ambiguous(TuimailError):
    """An id prefix that names more than one message; ``matches`` are their ids."""

    def __init__(self, prefix: str, matches: Sequence[str]) -> None:
        super().__init__(f"{prefix!r} names {len(matches)} messages")
        self.prefix = prefix
        self.matches = tuple(matches)


@dataclass(frozen=True)
class InboxEntry:
    """One message of the inbox as the index knows it. ``id`` is its Maildir key."""

    row: int
    id: str
    sub: str
    name: str
    received_at: float
    mail_from: str
    to: str
    cc: str
    subject: str
    size: int
    session_id: str
    envelope_from: str
    envelope_to: tuple[str, ...]
    auth_user: str
    mailbox: str
    tags: tuple[str, ...]
    read: bool
    has_attachment: bool

    @property
    def path_parts(self) -> tuple[str, str]:
        return self.sub, self.name

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at,
            "from": self.mail_from,
            "to": self.to,
            "cc": self.cc,
            "subject": self.subject,
            "size": self.size,
            "session_id": self.session_id,
            "envelope_from": self.envelope_from,
            "envelope_to": list(self.envelope_to),
            "auth_user": self.auth_user,
            "mailbox": self.mailbox,
            "tags": list(self.tags),
            "read": self.read,
            "has_attachment": self.has_attachment,
        }


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the next page starts after this (time, row)."""

    received_at: float
    row: int


@dataclass(frozen=True)
class Page:
    """Messages newest first, and the cursor of the next page (None at the end)."""

    entries: tuple[InboxEntry, ...]
    next: Cursor | None = None


def _entry(row: Sequence[Any]) -> InboxEntry:
    return InboxEntry(
        row=int(row[0]),
        id=str(row[1]),
        sub=str(row[2]),
        name=str(row[3]),
        received_at=float(row[4]),
        mail_from=str(row[5]),
        to=str(row[6]),
        cc=str(row[7]),
        subject=str(row[8]),
        size=int(row[9]),
        session_id=str(row[10]),
        envelope_from=str(row[11]),
        envelope_to=tuple(filter(None, str(row[12]).split(" "))),
        auth_user=str(row[13]),
        mailbox=str(row[14]),
        tags=tuple(filter(None, str(row[15]).split(" "))),
        read=bool(row[16]),
        has_attachment=bool(row[17]),
    )


def default_index_path() -> Path:
    """The built-in sandbox's index, beside its Maildir in the data dir."""
    return paths.data_dir() / "sandbox" / "inbox.sqlite3"


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _CORRUPT_CODES:
        return True
    words = str(exc).lower()
    return "malformed" in words or "not a database" in words


def _is_busy(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return (isinstance(code, int) and code & 0xFF in (5, 6)) or "locked" in str(exc).lower()


@dataclass
class _Envelope:
    session_id: str = ""
    mail_from: str = ""
    rcpt_tos: tuple[str, ...] = ()
    auth_user: str = ""


@dataclass
class _Described:
    """What the index stores of one message file."""

    fields: dict[str, Any] = field(default_factory=dict)
    people: str = ""
    body: str = ""


#: The Maildir's directories of messages, in the order a name found in both is taken from.
_SUBS = ("new", "cur")


@dataclass
class _Look:
    """What this object's last catch-up saw in the directories and left in the index.

    With it the next catch-up reads only the names that changed: a directory
    of 20,000 messages is listed (one ``getdents`` pass) but not compared name
    by name with every row again. It holds only while the index is as that
    catch-up left it (``mark``: SQLite's ``data_version``, which changes when
    another connection commits, and this connection's own ``total_changes``).
    """

    rules: str
    #: Each directory's entry names ("new", "cur"), and the session files' inodes.
    listing: dict[str, frozenset[str]]
    sessions: dict[str, int]
    #: Each directory's message keys and their entry names: each has its row in the
    #: index, where it says, but for those in ``unindexed`` (files not readable yet).
    keys: dict[str, dict[str, str]]
    unindexed: set[str]
    mark: tuple[int, int]

    def where(self, key: str) -> tuple[str, str] | None:
        """Where the file of ``key`` is (``cur/`` first, as :func:`_names_of` says)."""
        for sub in ("cur", "new"):
            name = self.keys[sub].get(key)
            if name is not None:
                return sub, name
        return None


class InboxIndex:
    """The index of one Maildir (and its session files), at ``index_path``.

    One object may be shared by threads (a lock serialises its calls);
    several processes may each open their own.
    """

    def __init__(
        self,
        maildir: Path,
        sessions_dir: Path,
        index_path: Path,
        rules: Sequence[MailboxRule] = (),
    ) -> None:
        self.maildir = maildir
        self.sessions_dir = sessions_dir
        self.index_path = index_path
        self.rules = tuple(rules)
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._stamp: str | None = None
        self._look: _Look | None = None
        #: Why the index was built again, once (for a face to say so).
        self.rebuilt_because = ""

    @classmethod
    def for_sandbox(cls, rules: Sequence[MailboxRule] = ()) -> InboxIndex:
        """The built-in sandbox's inbox (its Maildir and session files in the data dir)."""
        base = paths.data_dir() / "sandbox"
        return cls(base / "maildir", base / "sessions", default_index_path(), rules)

    @classmethod
    def beside(
        cls, maildir: Path, sessions_dir: Path, rules: Sequence[MailboxRule] = ()
    ) -> InboxIndex:
        """The inbox of this Maildir, its index kept beside it (for the data dir's own
        Maildir, the index :meth:`for_sandbox` opens): the app and the command line
        share one index whichever Maildir the running sandbox keeps."""
        return cls(maildir, sessions_dir, maildir.parent / "inbox.sqlite3", rules)

    # -- the connection ---------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._look = None  # its mark belongs to the connection
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> InboxIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        paths.ensure_private_dir(self.index_path.parent, tighten=False)
        # Created 0600 before SQLite opens it (its -wal and -shm files take its mode).
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.index_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        db = sqlite3.connect(
            self.index_path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                db.close()
                raise sqlite3.DatabaseError("file is not a database of this schema")
            if version == 0:
                db.execute("BEGIN IMMEDIATE")
                db.executescript(_SCHEMA)  # executescript commits
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("SELECT count(*) FROM meta").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        self._db = db
        return db

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.index_path}{suffix}").unlink()

    def _guarded(self, operation: Any) -> Any:
        """Run ``operation(db)``; a corrupt index is deleted and built again, once."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    return operation(self._connect())
                except sqlite3.DatabaseError as exc:
                    if _is_busy(exc):
                        raise IndexBusy(
                            f"the inbox index {self.index_path} stayed locked by another "
                            f"process for {BUSY_TIMEOUT:.0f} s"
                        ) from None
                    if attempt == 2 or not _is_corrupt(exc):
                        raise
                    self.rebuilt_because = f"the index was unreadable ({exc}) and was built again"
                    self.close()
                    self._remove_files()
                    self._stamp = None
            raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _writing(self, db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- catching up with the Maildir -------------------------------------------

    def stamp(self) -> str:
        """What changes when a message or session file is added, renamed or removed."""
        return " ".join(f"{ino}:{mtime}" for ino, mtime in self._directories())

    def _directories(self) -> list[tuple[int, int]]:
        found = []
        for directory in (self.maildir / "new", self.maildir / "cur", self.sessions_dir):
            try:
                info = os.stat(directory)
            except OSError:
                found.append((0, 0))
                continue
            found.append((info.st_ino, info.st_mtime_ns))
        return found

    def _settled(self, since: int) -> bool:
        """Whether every directory had last changed long enough before ``since`` (when the
        scan began listing names) for its time to be trusted.

        The kernel stamps a directory with a coarse clock (a tick of up to
        10 ms): a file added in the same tick as the change the scan saw
        leaves the same modification time. A stamp that recent is used for
        nothing: the next refresh scans the names again (as git treats a
        "racily clean" file), so no arrival is ever missed. The time is the
        scan's start, not its end: a file added just after the names were
        read, in that same tick, must not be covered by a later look at the clock.
        """
        return all(since - mtime > RACY_NS for _, mtime in self._directories())

    def refresh(self) -> bool:
        """Catch up with the Maildir and the session files; whether anything changed."""
        return bool(self._guarded(self._refresh))

    def refresh_within(self, seconds: float) -> bool:
        """:meth:`refresh`, waiting at most ``seconds`` for another process's write lock
        (:class:`IndexBusy` after that): a caller with a deadline keeps it."""
        patience = max(1, int(min(seconds, BUSY_TIMEOUT) * 1000))

        def run(db: sqlite3.Connection) -> bool:
            db.execute(f"PRAGMA busy_timeout = {patience}")
            try:
                return self._refresh(db)
            finally:
                db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")

        return bool(self._guarded(run))

    def _refresh(self, db: sqlite3.Connection) -> bool:
        rules = fingerprint(self.rules)
        stamp = f"{self.stamp()} {rules}"
        if stamp == self._stamp:
            return False
        look = self._look
        if look is not None and look.rules == rules and look.mark == _mark(db):
            since = time.time_ns()
            listing, sessions = self._listing()
            caught_up = self._catch_up(db, look, listing, sessions, stamp, since)
            if caught_up is not None:
                return caught_up
        self._look = None
        return self._refresh_all(db, rules, stamp)

    def _refresh_all(self, db: sqlite3.Connection, rules: str, stamp: str) -> bool:
        """Catch up by comparing every name with every row (the first look, or after
        another process wrote the index); then keep what it saw for the next one."""
        with self._writing(db):
            stored = dict(db.execute("SELECT k, v FROM meta").fetchall())
            # Routed by other rules (config.toml edited, or another process reads
            # another one): every message is routed again from its file below, in
            # place, so it keeps its row and no waiter takes it for a new one.
            reroute = stored.get("rules") != rules
            if reroute:
                stored.pop("stamp", None)
            if stored.get("stamp") == stamp:
                self._stamp = stamp
                return False
            changed = self._read_sessions(db)
            since = time.time_ns()
            listing, sessions = self._listing()
            names = _names_of(listing)
            known = {
                key: (sub, name)
                for key, sub, name in db.execute("SELECT key, sub, name FROM messages")
            }
            for key in known.keys() - names.keys():
                self._delete_row(db, key)
                changed = True
            for key, (sub, name) in names.items():
                if key in known and known[key] != (sub, name):
                    db.execute(
                        "UPDATE messages SET sub = ?, name = ?, seen = ? WHERE key = ?",
                        (sub, name, int(_seen(name)), key),
                    )
                    changed = True
        if reroute:
            kept = sorted(known.keys() & names.keys())
            for start in range(0, len(kept), BATCH):
                again = [
                    (key, self._describe(db, key, *names[key]))
                    for key in kept[start : start + BATCH]
                ]
                with self._writing(db):
                    for key, what in again:
                        row = db.execute("SELECT id FROM messages WHERE key = ?", (key,)).fetchone()
                        if what is not None and row is not None:
                            self._update(db, int(row[0]), what)
            # Only now: a crash before this routes them again next time.
            with self._writing(db):
                db.execute("INSERT OR REPLACE INTO meta VALUES ('rules', ?)", (rules,))
            changed = True
        added = sorted((k for k in names.keys() - known.keys()), key=lambda k: names[k][1])
        for start in range(0, len(added), BATCH):
            described = [
                (key, *names[key], self._describe(db, key, *names[key]))
                for key in added[start : start + BATCH]
            ]
            with self._writing(db):
                for key, sub, name, what in described:
                    if what is not None:
                        self._insert(db, key, sub, name, what)
            changed = True
        if self._settled(since) and stamp == f"{self.stamp()} {rules}":
            with self._writing(db):
                db.execute("INSERT OR REPLACE INTO meta VALUES ('stamp', ?)", (stamp,))
            self._stamp = stamp
        else:
            self._stamp = None  # changed meanwhile, or too recently to tell: look again next time
        self._look = self._looked(db, rules, listing, sessions)
        return changed

    def _listing(self) -> tuple[dict[str, frozenset[str]], dict[str, int]]:
        """The entry names of ``new/`` and ``cur/`` (names only, no reads), and each
        session file's inode (a session file is replaced whole, never rewritten)."""
        listing: dict[str, frozenset[str]] = {}
        for sub in _SUBS:
            try:
                entries = os.listdir(self.maildir / sub)
            except FileNotFoundError:
                entries = []
            # Names are never empty nor hold NUL: joined, one search finds a hidden
            # entry (rare), and only then is each name looked at.
            joined = "\0" + "\0".join(entries)
            hidden = "\0." in joined
            listing[sub] = (
                frozenset(n for n in entries if not n.startswith("."))
                if hidden
                else frozenset(entries)
            )
        sessions: dict[str, int] = {}
        with contextlib.suppress(OSError), os.scandir(self.sessions_dir) as found:
            for entry in found:
                if entry.name.endswith(".json"):
                    sessions[entry.name] = entry.inode()
        return listing, sessions

    def _looked(
        self,
        db: sqlite3.Connection,
        rules: str,
        listing: dict[str, frozenset[str]],
        sessions: dict[str, int],
    ) -> _Look | None:
        """What the index holds now, with ``listing``, for the next catch-up to start
        from; None when the rows and the names disagree (another process wrote in
        between) or a directory names one message twice: the next look is then whole."""
        keys = {sub: {n.split(":", 1)[0]: n for n in listing[sub]} for sub in _SUBS}
        if any(len(keys[sub]) != len(listing[sub]) for sub in _SUBS):
            return None
        look = _Look(rules, listing, sessions, keys, set(), (0, 0))
        indexed: set[str] = set()
        db.execute("BEGIN")  # the rows and the mark from one snapshot
        try:
            for key, sub, name in db.execute("SELECT key, sub, name FROM messages"):
                if look.where(key) != (sub, name):
                    return None
                indexed.add(key)
            look.mark = _mark(db)
        finally:
            db.execute("COMMIT")
        look.unindexed = (keys["new"].keys() | keys["cur"].keys()) - indexed
        return look

    def _catch_up(
        self,
        db: sqlite3.Connection,
        look: _Look,
        listing: dict[str, frozenset[str]],
        sessions: dict[str, int],
        stamp: str,
        since: int,
    ) -> bool | None:
        """Catch up from :attr:`_look` with only the names that changed; whether anything
        did, or None when this cannot be done so (the caller then compares everything).

        The same steps as :meth:`_refresh_all`, on the changed names alone:
        session files first (their envelopes apply to the messages after),
        then rows removed, moved, and added in the order the files arrived.
        """
        added = {sub: listing[sub] - look.listing[sub] for sub in _SUBS}
        removed = {sub: look.listing[sub] - listing[sub] for sub in _SUBS}
        fresh = [name for name, inode in sessions.items() if look.sessions.get(name) != inode]
        gone = look.sessions.keys() - sessions.keys()
        count = sum(len(added[sub]) + len(removed[sub]) for sub in _SUBS) + len(fresh)
        if count > BATCH:
            return None  # the whole look, in batches
        if not count and not gone:
            # Nothing changed: only a stamp too recent to trust, looked at again (one listing).
            if self._settled(since) and stamp == f"{self.stamp()} {look.rules}":
                with self._writing(db):
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('stamp', ?)", (stamp,))
                self._stamp = stamp
                look.mark = _mark(db)
            return False
        with self._writing(db):
            if _mark(db) != look.mark:
                return None  # written by another process since the check: look at everything
            # From here the look is changed in place; it is kept only if all is done.
            self._look = None
            #: Where each changed key's file was when the rows were last in step with it.
            before: dict[str, tuple[str, str] | None] = {}
            touched: set[str] = set()
            for sub in _SUBS:
                for name in (*removed[sub], *added[sub]):
                    key = name.split(":", 1)[0]
                    if key not in before:
                        before[key] = None if key in look.unindexed else look.where(key)
                    touched.add(key)
            for sub in _SUBS:
                for name in removed[sub]:
                    key = name.split(":", 1)[0]
                    if look.keys[sub].get(key) == name:
                        del look.keys[sub][key]
                for name in added[sub]:
                    look.keys[sub][name.split(":", 1)[0]] = name
            if any(len(look.keys[sub]) != len(listing[sub]) for sub in _SUBS):
                return None  # a key named twice: as the whole look decides
            changed = False
            for name in gone:
                db.execute("DELETE FROM sessions_read WHERE name = ?", (name,))
            for name in fresh:
                with contextlib.suppress(OSError):
                    mtime = os.stat(self.sessions_dir / name).st_mtime_ns
                    row = db.execute(
                        "SELECT mtime_ns FROM sessions_read WHERE name = ?", (name,)
                    ).fetchone()
                    if row is None or row[0] != mtime:
                        changed = self._read_session(db, name, mtime) or changed
            arrived: list[tuple[str, tuple[str, str]]] = []
            # Files that could not be read before are tried again, as the whole look does.
            for key in touched | look.unindexed:
                now = look.where(key)
                was = before.get(key) if key in touched else None
                if now is None:
                    look.unindexed.discard(key)
                    if was is not None:
                        self._delete_row(db, key)
                        changed = True
                elif was is None:
                    arrived.append((key, now))
                elif was != now:
                    db.execute(
                        "UPDATE messages SET sub = ?, name = ?, seen = ? WHERE key = ?",
                        (*now, int(_seen(now[1])), key),
                    )
                    changed = True
            for key, (sub, name) in sorted(arrived, key=lambda item: item[1][1]):
                what = self._describe(db, key, sub, name)
                if what is None:
                    look.unindexed.add(key)
                    continue
                self._insert(db, key, sub, name, what)
                look.unindexed.discard(key)
                changed = True
            settled = self._settled(since) and stamp == f"{self.stamp()} {look.rules}"
            if settled:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('stamp', ?)", (stamp,))
        self._stamp = stamp if settled else None
        look.listing, look.sessions, look.mark = listing, sessions, _mark(db)
        self._look = look
        return changed

    def _read_sessions(self, db: sqlite3.Connection) -> bool:
        """Read session files not read yet; apply what they say to messages indexed already."""
        read = dict(db.execute("SELECT name, mtime_ns FROM sessions_read").fetchall())
        current: dict[str, int] = {}
        try:
            with os.scandir(self.sessions_dir) as entries:
                for entry in entries:
                    if entry.name.endswith(".json"):
                        with contextlib.suppress(OSError):
                            current[entry.name] = entry.stat().st_mtime_ns
        except OSError:
            return False
        changed = False
        for name in read.keys() - current.keys():
            db.execute("DELETE FROM sessions_read WHERE name = ?", (name,))
        for name, mtime in current.items():
            if read.get(name) != mtime:
                changed = self._read_session(db, name, mtime) or changed
        return changed

    def _read_session(self, db: sqlite3.Connection, name: str, mtime: int) -> bool:
        """Read one session file (changed at ``mtime``); whether a message indexed already
        changed by it."""
        changed = False
        db.execute("INSERT OR REPLACE INTO sessions_read VALUES (?, ?)", (name, mtime))
        for key, envelope in _envelopes_of(self.sessions_dir / name):
            db.execute(
                "INSERT OR REPLACE INTO envelopes VALUES (?, ?, ?, ?, ?)",
                (
                    key,
                    envelope.session_id,
                    envelope.mail_from,
                    json.dumps(envelope.rcpt_tos),
                    envelope.auth_user,
                ),
            )
            row = db.execute(
                "SELECT id, sub, name, session_id FROM messages WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and row[3] != envelope.session_id:
                what = self._describe(db, key, row[1], row[2])
                if what is not None:
                    # In place: the row keeps its number, so ``wait --new`` does
                    # not take a message whose session file came late for new.
                    self._update(db, int(row[0]), what)
                    changed = True
        return changed

    def _envelope(self, db: sqlite3.Connection, key: str) -> _Envelope:
        row = db.execute(
            "SELECT session_id, mail_from, rcpt_tos, auth_user FROM envelopes WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return _Envelope()
        try:
            rcpts = tuple(str(r) for r in json.loads(row[2]))
        except (ValueError, TypeError):
            rcpts = ()
        return _Envelope(str(row[0]), str(row[1]), rcpts, str(row[3]))

    def _describe(self, db: sqlite3.Connection, key: str, sub: str, name: str) -> _Described | None:
        """What to store of one file; None when it is gone or no regular file."""
        path = self.maildir / sub / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return None
            chunks = []
            left = INDEX_READ
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            raw = b"".join(chunks)
        except OSError:
            return None
        finally:
            os.close(fd)
        envelope = self._envelope(db, key)
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        parsed = BytesHeaderParser(policy=compat32).parsebytes(head)
        headers: dict[str, list[str]] = {}
        for header_name, value in parsed.items()[:500]:
            headers.setdefault(header_name.lower(), []).append(_decoded(value))

        def first(header_name: str) -> str:
            return " ".join(headers.get(header_name, [""])[0].split())[:1000]

        to, cc = first("to"), first("cc")
        header_addresses = [a for _, a in getaddresses([to, cc]) if a]
        recipients = envelope.rcpt_tos or tuple(header_addresses)
        mailbox = choose_mailbox(self.rules, envelope.auth_user, recipients, headers)
        tags = tags_of([*envelope.rcpt_tos, *header_addresses])
        text, attached = mime.search_text(raw)
        when = _time_of(name, info.st_mtime)
        fields = {
            "received": when,
            "mail_from": first("from"),
            "to_addrs": to,
            "cc_addrs": cc,
            "subject": first("subject"),
            "size": info.st_size,
            "session_id": envelope.session_id,
            "envelope_from": envelope.mail_from,
            "envelope_to": " ".join(envelope.rcpt_tos),
            "auth_user": envelope.auth_user,
            "mailbox": mailbox,
            "tags": " " + " ".join(tags) + " ",
            "seen": int(_seen(name)),
            "has_attachment": int(attached),
        }
        people = " ".join([first("from"), to, cc, envelope.mail_from, *envelope.rcpt_tos])
        return _Described(fields, people, text)

    def _insert(
        self, db: sqlite3.Connection, key: str, sub: str, name: str, what: _Described
    ) -> None:
        columns = ["key", "sub", "name", *what.fields]
        cursor = db.execute(
            f"INSERT OR IGNORE INTO messages ({', '.join(columns)})"
            f" VALUES ({', '.join('?' * len(columns))})",
            (key, sub, name, *what.fields.values()),
        )
        if cursor.rowcount == 1:
            db.execute(
                "INSERT INTO texts (rowid, subject, people, body) VALUES (?, ?, ?, ?)",
                (cursor.lastrowid, what.fields["subject"], what.people, what.body),
            )

    def _update(self, db: sqlite3.Connection, row: int, what: _Described) -> None:
        fields = {k: v for k, v in what.fields.items() if k != "seen"}
        db.execute(
            f"UPDATE messages SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
            (*fields.values(), row),
        )
        db.execute(
            "UPDATE texts SET subject = ?, people = ?, body = ? WHERE rowid = ?",
            (what.fields["subject"], what.people, what.body, row),
        )

    def _delete_row(self, db: sqlite3.Connection, key: str) -> None:
        row = db.execute("SELECT id FROM messages WHERE key = ?", (key,)).fetchone()
        if row is not None:
            db.execute("DELETE FROM texts WHERE rowid = ?", (row[0],))
            db.execute("DELETE FROM messages WHERE id = ?", (row[0],))

    # -- reading -----------------------------------------------------------------

    def page(
        self,
        query: str = "",
        *,
        mailbox: str | None = None,
        after: Cursor | None = None,
        limit: int = PAGE_SIZE,
    ) -> Page:
        """One page, newest first, after ``after`` (the previous page's ``next``).

        Does not refresh: call :meth:`refresh` first to see what just arrived.
        """
        parsed = parse_query(query)
        if mailbox is not None:
            parsed.where.append("m.mailbox = ?")
            parsed.values.append(mailbox)
        if after is not None:
            parsed.where.append("(m.received, m.id) < (?, ?)")
            parsed.values += [after.received_at, after.row]
        where, values = parsed.sql()
        sql = (
            f"SELECT {_COLUMNS} FROM messages AS m WHERE {where}"
            " ORDER BY m.received DESC, m.id DESC LIMIT ?"
        )

        def read(db: sqlite3.Connection) -> Page:
            rows = db.execute(sql, (*values, limit + 1)).fetchall()
            entries = tuple(_entry(r) for r in rows[:limit])
            more = len(rows) > limit and entries
            return Page(entries, Cursor(entries[-1].received_at, entries[-1].row) if more else None)

        page: Page = self._guarded(read)
        return page

    def count(self, query: str = "", *, mailbox: str | None = None) -> int:
        """How many messages match (a count of the index: it grows with the archive)."""
        parsed = parse_query(query)
        if mailbox is not None:
            parsed.where.append("m.mailbox = ?")
            parsed.values.append(mailbox)
        where, values = parsed.sql()
        found: int = self._guarded(
            lambda db: db.execute(
                f"SELECT count(*) FROM messages AS m WHERE {where}", values
            ).fetchone()[0]
        )
        return found

    def newest_row(self) -> int:
        """The highest row number given so far: rows above it arrived later."""
        found: int = self._guarded(
            lambda db: db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]
        )
        return found

    def mailboxes(self) -> list[tuple[str, int]]:
        """Each mailbox that holds messages, with how many."""
        found: list[tuple[str, int]] = self._guarded(
            lambda db: db.execute(
                "SELECT mailbox, count(*) FROM messages GROUP BY mailbox ORDER BY mailbox"
            ).fetchall()
        )
        return found

    def find(self, prefix: str) -> InboxEntry:
        """The message whose id is ``prefix`` or starts with it.

        :class:`~tuimail.errors.NotFound` when none, :class:`Ambiguous` (listing
        at most 20 ids) when several do.
        """
        if not prefix or any(ch in prefix for ch in "/\0") or len(prefix) > 255:
            raise NotFound("message", prefix)
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

        def read(db: sqlite3.Connection) -> list[Any]:
            exact = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE key = ?", (prefix,)
            ).fetchall()
            if exact:
                return exact
            return db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE key LIKE ? ESCAPE '\\'"
                " ORDER BY received DESC LIMIT 21",
                (escaped + "%",),
            ).fetchall()

        rows: list[Any] = self._guarded(read)
        # LIKE ignores ASCII case; ids do not.
        rows = [r for r in rows if str(r[1]).startswith(prefix)]
        if not rows:
            raise NotFound("message", prefix)
        if len(rows) > 1:
            raise Ambiguous(prefix, [str(r[1]) for r in rows[:20]])
        return _entry(rows[0])

    def read_bytes(self, entry: InboxEntry) -> bytes:
        """The message's bytes from the Maildir; :class:`NotFound` when the file has gone."""
        for sub, name in (entry.path_parts, ("new", entry.id), ("cur", entry.id)):
            with contextlib.suppress(FileNotFoundError):
                return read_small_file(self.maildir / sub / name, MAX_MESSAGE_READ)
        for sub in ("new", "cur"):
            with contextlib.suppress(OSError), os.scandir(self.maildir / sub) as entries:
                for found in entries:
                    if found.name.split(":", 1)[0] == entry.id:
                        return read_small_file(Path(found.path), MAX_MESSAGE_READ)
        raise NotFound("message", entry.id)

    # -- changing ----------------------------------------------------------------

    def delete(self, entries: Sequence[InboxEntry]) -> int:
        """Delete each message's file, then its row; how many files were removed."""
        removed = 0
        for entry in entries:
            before = removed
            for sub in ("new", "cur"):
                for name in {entry.name, entry.id} if sub == entry.sub else {entry.id}:
                    removed += _unlink_message(self.maildir / sub / name)
            if removed == before:  # renamed since it was indexed (flags changed): find it
                for sub in ("new", "cur"):
                    with (
                        contextlib.suppress(FileNotFoundError),
                        os.scandir(self.maildir / sub) as found,
                    ):
                        for item in found:
                            if item.name.split(":", 1)[0] == entry.id:
                                removed += _unlink_message(Path(item.path))

        def forget(db: sqlite3.Connection) -> None:
            with self._writing(db):
                for entry in entries:
                    self._delete_row(db, entry.id)

        self._guarded(forget)
        return removed

    def delete_all(self) -> int:
        """Delete every message file of the Maildir and every row; how many files went."""
        removed = 0
        for sub in ("new", "cur"):
            with contextlib.suppress(FileNotFoundError), os.scandir(self.maildir / sub) as found:
                for item in found:
                    if not item.name.startswith("."):
                        removed += _unlink_message(Path(item.path))

        def forget(db: sqlite3.Connection) -> None:
            with self._writing(db):
                db.execute("DELETE FROM messages")
                db.execute("DELETE FROM texts")

        self._guarded(forget)
        return removed

    def mark_read(self, entry: InboxEntry, read: bool = True) -> None:
        """Set the Maildir's ``S`` flag (the file moves to ``cur/``), then the row."""
        flags = entry.name.split(":2,", 1)[1] if ":2," in entry.name else ""
        flags = "".join(sorted(set(flags.replace("S", "")) | ({"S"} if read else set())))
        name = f"{entry.id}:2,{flags}"
        source = self.maildir / entry.sub / entry.name
        if (entry.sub, entry.name) != ("cur", name):
            os.rename(source, self.maildir / "cur" / name)

        def note(db: sqlite3.Connection) -> None:
            with self._writing(db):
                db.execute(
                    "UPDATE messages SET sub = 'cur', name = ?, seen = ? WHERE key = ?",
                    (name, int(read), entry.id),
                )

        self._guarded(note)

    # -- waiting -----------------------------------------------------------------

    def wait_for(
        self,
        query: str | Query,
        *,
        timeout: float,
        after_row: int = 0,
        interval: float = 0.05,
    ) -> InboxEntry | None:
        """The newest message matching ``query`` (with a row above ``after_row``), as
        soon as there is one; None after ``timeout`` seconds.

        Between looks it sleeps ``interval`` s; a look costs three ``stat``
        calls while the directories are unchanged (see :meth:`refresh`): no
        busy loop. An index another process keeps locked delays no look past
        the deadline.
        """
        deadline = time.monotonic() + timeout
        first = True
        while True:
            try:
                changed = self.refresh_within(max(0.0, deadline - time.monotonic()))
            except IndexBusy:
                # Another process writes the index: what it holds still counts,
                # and the next look catches up (the stamp was not kept).
                changed = False
            if changed or first:
                found = self._match(query, after_row)
                if found is not None:
                    return found
            first = False
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(interval, left))

    def _match(self, query: str | Query, after_row: int) -> InboxEntry | None:
        parsed = parse_query(query) if isinstance(query, str) else query.copy()
        if after_row:
            parsed.where.append("m.id > ?")
            parsed.values.append(after_row)
        where, values = parsed.sql()
        row = self._guarded(
            lambda db: db.execute(
                f"SELECT {_COLUMNS} FROM messages AS m WHERE {where}"
                " ORDER BY m.received DESC, m.id DESC LIMIT 1",
                values,
            ).fetchone()
        )
        return _entry(row) if row is not None else None

    def session_transcript(self, session_id: str) -> Transcript | None:
        """The server's side of a session, from its file; None when there is none (yet)."""
        entries = self.session_document(session_id).get("transcript")
        if not isinstance(entries, list):
            return None
        lines = "".join(json.dumps(e) + "\n" for e in entries if isinstance(e, dict))
        try:
            return Transcript.from_jsonl(lines, title=f"session {session_id}")
        except (ValueError, KeyError, TypeError):
            return None

    def session_document(self, session_id: str) -> dict[str, Any]:
        """The session file of ``session_id`` as JSON; empty when there is none."""
        if not _SESSION_ID.match(session_id):
            return {}
        return _session_document(self.sessions_dir / f"{session_id}.json")


def _mark(db: sqlite3.Connection) -> tuple[int, int]:
    """What changes when the index is written: by another connection (``data_version``)
    or by this one (``total_changes``)."""
    return int(db.execute("PRAGMA data_version").fetchone()[0]), db.total_changes


def _names_of(listing: dict[str, frozenset[str]]) -> dict[str, tuple[str, str]]:
    """Each message key in ``new/`` and ``cur/``, with where it is (``cur/`` first)."""
    found: dict[str, tuple[str, str]] = {}
    for sub in _SUBS:
        for name in listing[sub]:
            found[name.split(":", 1)[0]] = (sub, name)
    return found


def _unlink_message(path: Path) -> int:
    """Remove one message file: 1, or 0 when it is gone already or is no file (a
    directory someone made in the Maildir is no message, and the index skips it too).
    Any other refusal (a read-only disk, another owner) is the caller's ``OSError``."""
    try:
        os.unlink(path)
    except (FileNotFoundError, IsADirectoryError):
        return 0
    except PermissionError:
        if os.path.isdir(path):  # what Linux says for unlink() of a directory
            return 0
        raise
    return 1


def _seen(name: str) -> bool:
    return ":2," in name and "S" in name.split(":2,", 1)[1]


def _time_of(name: str, mtime: float) -> float:
    match = _NAME_TIME.match(name)
    if match:
        # M is microseconds, not zero-padded (maildir(5), mailbox.Maildir, maildir.py).
        return int(match.group(1)) + int(match.group(2) or 0) / 1e6
    return mtime


def _decoded(value: str) -> str:
    """A header value with RFC 2047 words decoded; as written when they do not decode."""
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return str(value)


def _session_document(path: Path) -> dict[str, Any]:
    try:
        document = parse_json(read_small_text(path, MAX_SESSION_FILE))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _envelopes_of(path: Path) -> list[tuple[str, _Envelope]]:
    """The messages one session file lists, with their envelopes (a bad entry is skipped)."""
    document = _session_document(path)
    session_id = str(document.get("id") or "")
    auth_user = str(document.get("authenticated_as") or "")
    listed = document.get("messages")
    found = []
    for item in listed if isinstance(listed, list) else []:
        try:
            rcpts = tuple(str(r) for r in item.get("rcpt_tos") or ())
            found.append(
                (
                    str(item["key"]),
                    _Envelope(session_id, str(item.get("mail_from") or ""), rcpts, auth_user),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return found
