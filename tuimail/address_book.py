"""Address completion for To, Cc and Bcc: who the user has sent to, their own
addresses, and their address book through a command.

Three sources, merged by :meth:`AddressBook.complete` (one entry per
address, the first source to offer it wins, in this order):

* **sent**: the To and Cc of the messages in the outbox's ``sent/`` Maildir
  (tuimail/outbox.py moves each delivered message there). Only the header
  block of each file is read, at most :data:`HEAD_BYTES`, and at most the
  newest :data:`MAX_SENT_FILES` files. Each address is ranked by *frecency*:
  every message to it counts, the recent ones more (a message's weight
  halves every :data:`HALF_LIFE_DAYS` days). What was read is kept: a look
  at an unchanged folder costs two ``stat`` calls, and a new message costs
  the reading of that one file, so completing at each keystroke is cheap.
* **profile**: the From address of each profile.
* **command**: a command compatible with aerc's ``address-book-cmd``
  (``[compose] address_book_cmd`` in config.toml), such as
  ``khard email --parsable %s``, ``abook --mutt-query %s`` or
  ``notmuch address %s``. The command is split as a shell would split it and
  run without a shell; the query replaces ``%s`` inside one argument and stays
  that one argument, whatever it holds (quotes, ``;``, spaces). A shell the
  user writes (``sh -c '... %s | ...'``) gets it as ``"$1"``, never as code
  (:func:`command_argv`). It answers
  with ``email<TAB>name[<TAB>anything]`` lines (a line ``Name <email>`` is
  read too, as ``notmuch address`` prints). It gets no standard input, its
  standard error is dropped, and it is stopped (its whole process group) after
  :data:`COMMAND_TIMEOUT` seconds, after :data:`COMMAND_OUTPUT_LIMIT` bytes or
  :data:`COMMAND_LINE_LIMIT` lines, or as soon as a newer query begins.

Whatever a source offers passes :func:`tuimail.addresses.parse_address`
before it is offered: an address that is not valid is left out, a name that
cannot be written (a control character, an escape sequence, an address in
the name) or that reorders the line (a bidi override) is dropped and the
address kept alone. So a suggestion accepted
into a field is always one that field accepts.

Everything here blocks (files, a process): call it from a worker thread,
never on a UI loop.
"""

from __future__ import annotations

import contextlib
import enum
import math
import os
import re
import selectors
import shlex
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

from tuimail.addresses import AddressError, ParsedAddress, mailbox_text, parse_address
from tuimail.replies import mailboxes_of
from tuimail.terminal_text import escape_terminal_controls
from tuimail.user_config import ConfigError, LoadedConfig

#: Bytes of a sent message read for its To and Cc.
HEAD_BYTES = 32 * 1024
#: Sent messages read at most, the newest first.
MAX_SENT_FILES = 5000
#: A sent message's weight in the ranking halves after this many days.
HALF_LIFE_DAYS = 30.0
#: Seconds the address-book command may take.
COMMAND_TIMEOUT = 2.0
#: Seconds a command that has closed its output is given to exit before it is stopped.
EXIT_GRACE = 1.0
#: Bytes of the command's output read at most; it is stopped after that.
COMMAND_OUTPUT_LIMIT = 256 * 1024
#: Lines of the command's output read at most; it is stopped after that.
COMMAND_LINE_LIMIT = 1000
#: Characters of one line of the command's output; a longer line is skipped.
COMMAND_LINE_LENGTH = 1000
#: Suggestions returned by default.
DEFAULT_LIMIT = 10
#: How often a running command checks whether a newer query superseded it.
_POLL = 0.05
_NAME_TIME = re.compile(r"^(\d+)(?:\.M(\d{1,6}))?")


class Source(enum.StrEnum):
    """Where a suggestion comes from."""

    SENT = "sent"
    PROFILE = "profile"
    COMMAND = "command"


class CommandProblem(enum.Enum):
    """Why the address-book command gave no (or not all its) answers."""

    #: It could not be started (not found, not executable, not a command line).
    NOT_STARTED = "not started"
    #: It did not finish within the timeout and was stopped; what it printed is kept.
    TIMEOUT = "timeout"
    #: It printed more than the bounds allow and was stopped; what came first is kept.
    TOO_MUCH = "too much"
    #: It exited with a status other than 0 (its answers, if any, are still used).
    FAILED = "failed"
    #: A newer query began; its answers were not wanted any more.
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class Suggestion:
    """One address to offer: its name (may be empty), its address, where it came from."""

    name: str
    address: str
    source: Source

    @property
    def text(self) -> str:
        """What goes into the field: ``"Name" <address>`` or the bare address."""
        return mailbox_text(self.name, self.address)


@dataclass(frozen=True)
class Completion:
    """The suggestions for one query; ``superseded`` when a newer query began meanwhile.

    ``problem`` says what went wrong with the command (None: nothing, or no
    command), ``status`` its exit status when it failed.
    """

    query: str
    suggestions: tuple[Suggestion, ...]
    superseded: bool = False
    problem: CommandProblem | None = None
    status: int | None = None


def address_book_command(config: LoadedConfig) -> str:
    """``[compose] address_book_cmd`` from config.toml ("" when not set).

    Raises :class:`~tuimail.user_config.ConfigError` when it is not text.
    """
    table = config.tables.get("compose", {})
    if not isinstance(table, dict):
        raise ConfigError("config.toml [compose] is not a table")
    command = table.get("address_book_cmd", "")
    if not isinstance(command, str):
        raise ConfigError("config.toml [compose] address_book_cmd must be text (a command line)")
    return command


def checked(address: str, name: str = "") -> ParsedAddress | None:
    """``address`` (with ``name`` when it can be written) as the fields accept it, or None."""
    try:
        parsed = parse_address(address)
    except AddressError:
        return None
    if parsed.display_name:  # "Name <addr>" given as the address: keep its own name
        if _reorders(parsed.display_name):
            return parse_address(parsed.addr_spec)
        return parsed
    name = " ".join(name.split())
    if name and name != parsed.addr_spec and not _reorders(name):
        with contextlib.suppress(AddressError):
            return parse_address(mailbox_text(name, parsed.addr_spec))
    return parsed


def _reorders(name: str) -> bool:
    """A name holding what a terminal obeys or reorders (a bidi override or isolate).

    Such a name, accepted into To, is shown raw in the field: an override
    makes a terminal that does bidi show the rest of the line reversed, the
    address after the name too. Names come from anyone (``notmuch address``
    answers with the senders of received mail), so the name is dropped.
    """
    return escape_terminal_controls(name) != name


@dataclass
class _Sent:
    """What one sent message says: when, and whom it went to."""

    when: float
    addresses: tuple[ParsedAddress, ...]


@dataclass
class _Contact:
    address: ParsedAddress
    score: float
    last: float


class SentHistory:
    """The addresses of ``sent/`` (a Maildir), ranked by frecency; re-read only when changed."""

    def __init__(self, sent_dir: Path, *, limit: int = MAX_SENT_FILES) -> None:
        self.sent_dir = sent_dir
        self.limit = limit
        self._stamp: tuple[int, ...] | None = None
        self._read: dict[str, _Sent] = {}
        self._ranked: list[_Contact] = []
        self._lock = threading.Lock()

    def stamp(self) -> tuple[int, ...]:
        """What changes when a message is added to or removed from the folder."""
        stamp: list[int] = []
        for sub in ("new", "cur"):
            try:
                info = os.stat(self.sent_dir / sub)
            except OSError:
                stamp += [0, 0]
                continue
            stamp += [info.st_ino, info.st_mtime_ns]
        return tuple(stamp)

    def contacts(self, now: float | None = None) -> list[tuple[ParsedAddress, float]]:
        """Every address sent to, best first, with its score (read again if the folder changed)."""
        with self._lock:
            stamp = self.stamp()
            if stamp != self._stamp:
                self._refresh(time.time() if now is None else now)
                self._stamp = stamp
            return [(contact.address, contact.score) for contact in self._ranked]

    def _refresh(self, now: float) -> None:
        files: list[tuple[float, str, Path]] = []
        for sub in ("new", "cur"):
            with contextlib.suppress(OSError), os.scandir(self.sent_dir / sub) as entries:
                for entry in entries:
                    if not entry.name.startswith("."):
                        files.append((_time_of(entry), entry.name, Path(entry.path)))
        files.sort(reverse=True)
        kept: dict[str, _Sent] = {}
        for when, name, path in files[: self.limit]:
            known = self._read.get(name)
            if known is None:
                known = _Sent(when, tuple(_recipients(path)))
            kept[name] = known
        self._read = kept
        contacts: dict[str, _Contact] = {}
        for sent in kept.values():
            age_days = max(0.0, now - sent.when) / 86400
            weight = math.pow(0.5, age_days / HALF_LIFE_DAYS)
            for address in sent.addresses:
                key = address.addr_spec.lower()
                contact = contacts.get(key)
                if contact is None:
                    contacts[key] = _Contact(address, weight, sent.when)
                    continue
                contact.score += weight
                # The name of the newest message that gave one is the name offered.
                newer = sent.when > contact.last
                if address.display_name and (newer or not contact.address.display_name):
                    contact.address = address
                contact.last = max(contact.last, sent.when)
        self._ranked = sorted(contacts.values(), key=lambda c: (-c.score, -c.last))


def _time_of(entry: os.DirEntry[str]) -> float:
    match = _NAME_TIME.match(entry.name)
    if match:
        return int(match.group(1)) + int(match.group(2) or 0) / 1e6
    try:
        return entry.stat().st_mtime
    except OSError:
        return 0.0


def _recipients(path: Path) -> list[ParsedAddress]:
    """The To and Cc of one message file, from its first :data:`HEAD_BYTES` only."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as file:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return []
            head = file.read(HEAD_BYTES)
        except OSError:
            return []
    end = min((i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0), default=-1)
    if end >= 0:
        head = head[:end]
    headers = BytesHeaderParser(policy=compat32).parsebytes(head)
    found: list[ParsedAddress] = []
    skipped: list[str] = []
    for name in ("to", "cc"):
        for value in headers.get_all(name, []):
            found += mailboxes_of(str(value), skipped)
    # A reply went to whoever wrote, under the name they chose (see _reorders).
    return [replace(a, display_name="") if _reorders(a.display_name) else a for a in found]


@dataclass(frozen=True)
class CommandAnswer:
    """What the address-book command answered, and what went wrong, if anything."""

    suggestions: tuple[Suggestion, ...]
    problem: CommandProblem | None = None
    status: int | None = None


#: Programs that read their ``-c`` argument as shell code.
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh"})
#: What a shell gets as ``$0`` when tuimail adds the query after its script.
_SCRIPT_NAME = "tuimail-address-book"


def _shell_script(argv: Sequence[str]) -> int | None:
    """Where the script of ``sh -c SCRIPT`` is in ``argv``, also behind a wrapper
    (``env VAR=x bash -ec SCRIPT``, ``timeout 5 sh -c SCRIPT``, ``busybox sh -c``)."""
    start = next((i for i, part in enumerate(argv) if os.path.basename(part) in _SHELLS), None)
    if start is None:
        return None
    command_string = False
    index = start + 1
    while index < len(argv):
        part = argv[index]
        if part == "--":
            return index + 1 if command_string and index + 1 < len(argv) else None
        if not part.startswith(("-", "+")):
            return index if command_string else None
        if part in ("-o", "+o", "-O", "+O"):  # an option with its name: ``-o pipefail``
            index += 1
        elif not part.startswith("--") and "c" in part[1:]:
            command_string = True
        index += 1
    return None


def command_argv(command: str, query: str) -> list[str]:
    """The command's arguments with ``query`` in place of ``%s`` (raises ValueError).

    The command is split first, then ``%s`` is replaced inside each
    argument: the query is never split and never seen by a shell. A command
    without ``%s`` gets no query (its answers are then filtered here). A
    pipeline needs a shell, so a user may write one (``sh -c '... %s | ...'``):
    there ``%s`` in the script becomes a reference to a positional parameter
    (``"$1"``) and the query is passed after the script, so what was typed
    or pasted into To is data to the shell, never code (``$(...)``, ``;``).
    """
    argv = shlex.split(command)
    if not argv:
        raise ValueError("the command is empty")
    script = _shell_script(argv)
    if script is None or "%s" not in argv[script]:
        return [part.replace("%s", query) for part in argv]
    after = [part.replace("%s", query) for part in argv[script + 1 :]] or [_SCRIPT_NAME]
    # The first argument after the script is $0; the query follows the others.
    reference = f'"${{{len(after)}}}"'
    return [*argv[:script], argv[script].replace("%s", reference), *after, query]


def run_address_command(
    command: str,
    query: str,
    *,
    timeout: float = COMMAND_TIMEOUT,
    superseded: threading.Event | None = None,
) -> CommandAnswer:
    """Run the address-book command for ``query``; blocks at most ``timeout`` seconds.

    ``superseded``, when set while the command runs, stops it at once.
    """
    try:
        argv = command_argv(command, query)
    except ValueError:
        return CommandAnswer((), CommandProblem.NOT_STARTED)
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,  # its children are stopped with it
        )
    except (OSError, ValueError):
        return CommandAnswer((), CommandProblem.NOT_STARTED)
    problem: CommandProblem | None = None
    cut_short = True
    deadline = time.monotonic() + timeout
    with process:
        try:
            lines, problem = _read_lines(process, timeout, superseded)
            cut_short = problem is not None
            if not cut_short:
                # The end of its output comes as the command exits, a moment
                # before its exit can be seen (a wrapper such as `timeout`
                # closes it last); without this wait it would be killed and
                # its answer called a failure.
                grace = min(EXIT_GRACE, max(0.0, deadline - time.monotonic()))
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=grace)
        finally:
            # Reading cut short: the group goes whether or not its leader has
            # exited, since a child it left may hold the output open. Checked
            # before poll() reaps the leader, so its pid (the group's id) is
            # still its own.
            if cut_short or process.poll() is None:
                with contextlib.suppress(OSError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.kill()
            process.wait()
    if problem is None and process.returncode != 0:
        problem = CommandProblem.FAILED
    filter_here = "%s" not in command
    suggestions = []
    for line in lines:
        suggestion = _suggestion_of(line)
        if suggestion is not None and (not filter_here or _matches(suggestion, query)):
            suggestions.append(suggestion)
    status = process.returncode if problem is CommandProblem.FAILED else None
    return CommandAnswer(tuple(suggestions), problem, status)


def _read_lines(
    process: subprocess.Popen[bytes], timeout: float, superseded: threading.Event | None
) -> tuple[list[bytes], CommandProblem | None]:
    """Complete lines of standard output, within the bounds; and what stopped the reading."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    os.set_blocking(fd, False)
    buffer = bytearray()
    lines: list[bytes] = []
    total = 0
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            if superseded is not None and superseded.is_set():
                return lines, CommandProblem.SUPERSEDED
            left = deadline - time.monotonic()
            if left <= 0:
                return lines, CommandProblem.TIMEOUT
            if not selector.select(min(left, _POLL)):
                continue
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                if buffer:
                    lines.append(bytes(buffer))
                return lines, None
            total += len(chunk)
            buffer += chunk
            *complete, rest = bytes(buffer).split(b"\n")
            buffer = bytearray(rest)
            lines += complete
            if len(lines) > COMMAND_LINE_LIMIT or total > COMMAND_OUTPUT_LIMIT:
                return lines[:COMMAND_LINE_LIMIT], CommandProblem.TOO_MUCH
            if len(buffer) > COMMAND_LINE_LENGTH:
                buffer.clear()  # an endless line: its end is skipped as it comes
                buffer += b"\0"  # and the line is marked unusable


def _suggestion_of(line: bytes) -> Suggestion | None:
    """One ``email<TAB>name[<TAB>...]`` (or ``Name <email>``) line, checked; None to skip it."""
    if len(line) > COMMAND_LINE_LENGTH or b"\0" in line:
        return None
    try:
        text = line.decode("utf-8").removesuffix("\r")
    except UnicodeDecodeError:
        return None
    if "\t" in text:
        address, name = text.split("\t", 2)[:2]
        parsed = checked(address.strip(), name.strip())
    else:
        parsed = checked(text.strip())
    if parsed is None:
        return None
    return Suggestion(parsed.display_name, parsed.addr_spec, Source.COMMAND)


def _matches(suggestion: Suggestion, query: str) -> bool:
    wanted = query.strip().lower()
    return not wanted or wanted in suggestion.name.lower() or wanted in suggestion.address.lower()


def _rank_key(suggestion: Suggestion, query: str) -> int:
    """0 for a match at the start of the address or of a word of the name, 1 otherwise."""
    wanted = query.strip().lower()
    words = suggestion.name.lower().split()
    starts = suggestion.address.lower().startswith(wanted) or any(
        word.startswith(wanted) for word in words
    )
    return 0 if starts else 1


class AddressBook:
    """Completion from the three sources; one instance per face, shared by its queries.

    ``own`` are the profiles' From texts (``"Name" <address>`` or bare);
    ``command`` the address-book command ("" for none). Each call of
    :meth:`complete` supersedes the one before it: a command still running
    for an older query is stopped, and that query's result says
    ``superseded`` (the face drops it).
    """

    def __init__(
        self,
        sent_dir: Path,
        own: Iterable[str] = (),
        command: str = "",
        *,
        timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        self.history = SentHistory(sent_dir)
        self.command = command
        self.timeout = timeout
        self._own: list[Suggestion] = []
        self.set_own(own)
        self._lock = threading.Lock()
        self._generation = 0
        self._current = threading.Event()

    def set_own(self, own: Iterable[str]) -> None:
        """The profiles' addresses changed (a profile added, edited or removed)."""
        suggestions = []
        for text in own:
            parsed = checked(text)
            if parsed is not None:
                suggestions.append(
                    Suggestion(parsed.display_name, parsed.addr_spec, Source.PROFILE)
                )
        self._own = suggestions

    def complete(self, query: str, limit: int = DEFAULT_LIMIT) -> Completion:
        """Suggestions for ``query``: the sent history's first, then the profiles', then the
        command's, one per address, at most ``limit``. Blocks (files, the command)."""
        with self._lock:
            self._current.set()  # the query before this one, if still running, stops
            self._generation += 1
            generation = self._generation
            mine = threading.Event()
            self._current = mine
        local = [
            Suggestion(address.display_name, address.addr_spec, Source.SENT)
            for address, _score in self.history.contacts()
        ]
        merged: list[Suggestion] = []
        seen: set[str] = set()

        def add(candidates: Sequence[Suggestion], *, filtered: bool) -> None:
            chosen = [s for s in candidates if not filtered or _matches(s, query)]
            chosen.sort(key=lambda s: _rank_key(s, query))  # stable: frecency within each
            for suggestion in chosen:
                key = suggestion.address.lower()
                if key not in seen:
                    seen.add(key)
                    merged.append(suggestion)

        add(local, filtered=True)
        add(self._own, filtered=True)
        answer = CommandAnswer(())
        if self.command and query.strip():
            answer = run_address_command(self.command, query, timeout=self.timeout, superseded=mine)
            add(answer.suggestions, filtered=False)
        with self._lock:
            superseded = generation != self._generation or mine.is_set()
        return Completion(
            query,
            tuple(merged[:limit]),
            superseded=superseded,
            problem=answer.problem,
            status=answer.status,
        )
