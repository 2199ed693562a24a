"""Text in the user's own editor: which editor, the private file it edits, the reading back.

One implementation for both faces: Compose opens the body in it with the app
suspended (tuimail/ui/screens/compose.py), and ``tuimail send --edit``
(tuimail/cli/edit_loop.py) a whole message, headers and text, as mblaze's
``mcom`` does. The message's text form and its reading back into a
:class:`~tuimail.message.Draft` are here too (:func:`message_text`,
:func:`draft_of_text`); the draft is then checked by
:func:`tuimail.message.build_message`, exactly as composed mail is.

Every function here but :func:`editor_argv`, :func:`edited_body`,
:func:`message_text` and :func:`draft_of_text` blocks (files, a process).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tuimail import paths
from tuimail.message import MAX_MESSAGE_BYTES, Draft, DraftInvalid, FieldError


def editor_argv(environ: Mapping[str, str]) -> list[str]:
    """``$VISUAL``, else ``$EDITOR``, else ``vi``, split as a shell would split it.

    Raises ValueError when the variable cannot be split (an unclosed quote).
    """
    command = environ.get("VISUAL", "").strip() or environ.get("EDITOR", "").strip() or "vi"
    argv = shlex.split(command)
    if not argv:
        raise ValueError("the editor command is empty")
    return argv


def body_dir() -> Path:
    """The user's runtime dir (memory, private, gone at logout), else tuimail's data dir."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        return paths.ensure_private_dir(Path(runtime) / "tuimail")
    return paths.ensure_private_dir(paths.data_dir() / "editing")


def write_body(text: str, *, prefix: str = "body-", suffix: str = ".txt") -> Path:
    """``text`` in a new file of mode 0600 (``mkstemp``'s) in :func:`body_dir`, for the editor."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=body_dir())
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            file.write(text)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return Path(name)


def rewrite(path: Path, text: str) -> None:
    """Put ``text`` back in the editor's file, a new one of mode 0600: the next edit starts there.

    Whatever the editor left at ``path`` is removed first and the file made
    anew (never followed): a symbolic link left there (by a failed editor,
    or anything else running as the user) must not have its target
    overwritten with the message, nor a FIFO block the write.
    """
    remove(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
        file.write(text)


def run_editor(argv: list[str], path: Path, *, terminal: int | None = None) -> int:
    """Run the editor on ``path`` and wait for it; its exit status (127 when it could not start).

    ``terminal``: a file descriptor of the terminal, given to the editor as
    its input and output when the caller's own may be a pipe or a file
    (``tuimail send --edit > log``); None leaves the caller's.
    """
    try:
        process = subprocess.Popen([*argv, str(path)], stdin=terminal, stdout=terminal)
    except OSError:
        return 127
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached the editor too (one process group): it decides
            # what it means, as under system(3); its exit status says what it did.
            continue


#: The most an editor's file is read back: past it no message tuimail builds fits.
EDITED_LIMIT = MAX_MESSAGE_BYTES


class Unusable(ValueError):
    """What the editor left cannot be taken: the words say why (the end of a sentence)."""


def read_edited(path: Path) -> str:
    """What the editor left in ``path``; raises :class:`Unusable` saying why not. The file stays.

    Opened without following a symbolic link and without blocking, checked
    to be a regular file on the descriptor and read to at most
    :data:`EDITED_LIMIT`: a FIFO or a link to ``/dev/zero`` left in its
    place would otherwise hang the reader or fill its memory.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Unusable("is a symbolic link, not the file given to the editor") from None
        raise Unusable(f"cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Unusable("is not a regular file")
        data = file.read(EDITED_LIMIT + 1)
    if len(data) > EDITED_LIMIT:
        raise Unusable(f"is too large (more than {EDITED_LIMIT:,} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Unusable("is not UTF-8 text") from None


def read_text(path: Path) -> str | None:
    """What the editor left in ``path`` (None when :func:`read_edited` refuses it); the file stays."""
    try:
        return read_edited(path)
    except Unusable:
        return None


def read_back(path: Path) -> str | None:
    """What the editor left in ``path`` (see :func:`read_text`); the file is removed."""
    try:
        return read_text(path)
    finally:
        remove(path)


def remove(path: Path) -> None:
    """Remove the editor's file; one already gone is no error."""
    with contextlib.suppress(OSError):
        path.unlink()


def edited_body(before: str, after: str | None, status: int) -> str | None:
    """The new body, or None to keep ``before``: the editor failed, or changed nothing.

    Line ends are the body's own (``\n``) whatever the editor wrote: one set
    to DOS line ends writes CRLF, whose CRs would come back as text. Editors
    end the file with a newline; one added to a body that had none is not a
    change and is not kept.
    """
    if status != 0 or after is None:
        return None
    after = after.replace("\r\n", "\n").replace("\r", "\n")
    if not before.endswith("\n") and after.endswith("\n"):
        after = after[:-1]
    return None if after == before else after


# -- a whole message as text ---------------------------------------------------

#: The lines a message opens with in the editor, in this order, even when empty.
SHOWN_HEADERS = ("From", "To", "Cc", "Bcc", "Subject")
#: A pseudo-header naming a file to attach (as mblaze's ``mcom`` has it); never sent.
ATTACH = "Attach"
#: The field of an error about the text's form (not about one header).
FIELD = "message"


def message_text(draft: Draft) -> str:
    """``draft`` as the text the editor opens: header lines, an empty line, the body.

    From, To, Cc, Bcc and Subject are always there (empty when unset), then
    Reply-To when set, the extra headers, and an ``Attach:`` line per file.
    """
    lines = [
        f"From: {draft.from_address}",
        f"To: {', '.join(draft.to)}",
        f"Cc: {', '.join(draft.cc)}",
        f"Bcc: {', '.join(draft.bcc)}",
        f"Subject: {draft.subject}",
    ]
    if draft.reply_to:
        lines.append(f"Reply-To: {', '.join(draft.reply_to)}")
    lines += [f"{name}: {value}" for name, value in draft.headers]
    lines += [f"{ATTACH}: {path}" for path in draft.attachments]
    return "\n".join(lines) + "\n\n" + draft.body


def draft_of_text(text: str, base: Draft | None = None) -> Draft:
    """The text of :func:`message_text`, as edited, back as a draft; raises :class:`DraftInvalid`.

    The header lines end at the first empty line; a line that starts with a
    space or tab continues the one before (unfolded with one space). Empty
    address lines name nobody. ``base`` gives what the text does not carry
    (the Markdown choice). Only the form is checked here: a line that is
    not ``Name: value``, or a second From or Subject. What the values hold is
    :func:`tuimail.message.build_message`'s to check, as for any composed
    message: a carriage return left in a line (the file is split at line
    feeds only, a CRLF read as one) stays in its value and is refused there,
    never taken as the start of another header.
    """
    text = text.replace("\r\n", "\n")
    head, separator, body = text.partition("\n\n")
    if not separator:
        head, body = text.removesuffix("\n"), ""
    pairs: list[tuple[int, str, str]] = []
    for number, line in enumerate(head.split("\n"), start=1):
        if line[:1] in (" ", "\t") and pairs:
            at, name, value = pairs[-1]
            pairs[-1] = (at, name, " ".join(filter(None, (value, line.strip(" \t")))))
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or name != name.rstrip(" \t") or " " in name.strip():
            raise DraftInvalid(
                [
                    FieldError(
                        FIELD,
                        f"line {number} is not a header ('Name: value'); leave one empty "
                        "line between the headers and the text",
                    )
                ]
            )
        pairs.append((number, name.strip(), value.strip(" \t")))
    draft = Draft(body=body, markdown=base.markdown if base is not None else False)
    seen: set[str] = set()
    for number, name, value in pairs:
        lower = name.lower()
        if lower in ("from", "subject"):
            if lower in seen:
                raise DraftInvalid([FieldError(lower, f"line {number} gives a second {name}")])
            seen.add(lower)
            if lower == "from":
                draft.from_address = value
            else:
                draft.subject = value
        elif lower in ("to", "cc", "bcc", "reply-to"):
            if value:
                getattr(draft, lower.replace("-", "_")).append(value)
        elif lower == ATTACH.lower():
            if value:
                draft.attachments.append(_attached(number, value))
        else:
            draft.headers.append((name, value))
    return draft


def _attached(number: int, value: str) -> Path:
    """The file an ``Attach:`` line names, ``~`` expanded; raises :class:`DraftInvalid`."""
    try:
        return Path(value).expanduser()
    except RuntimeError:  # "~name" of a user this system does not know
        raise DraftInvalid(
            [FieldError(ATTACH.lower(), f"line {number}: {value.split('/')[0]} is not a home")]
        ) from None
