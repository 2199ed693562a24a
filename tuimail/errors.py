"""The root of tuimail's own errors.

Every error tuimail raises on purpose derives from :class:`TuimailError`, so
a face (the app, the command line, a script using the core) can tell "tuimail
refused this, here is why" apart from a bug, with one ``except``. Each
subclass lives next to the code that raises it and carries data (a name, a
path, a stage); the face that shows it chooses the words and the exit code.
Built-in exceptions such as :class:`KeyError` are never used as domain errors:
their ``str()`` quotes the message and they are easily caught by accident.
"""

from __future__ import annotations


class TuimailError(Exception):
    """Something tuimail refused or could not do, said in words a person understands."""


class NotFound(TuimailError, LookupError):
    """A named thing (profile, target, outbox message) does not exist.

    ``kind`` is what was looked for, ``name`` what was asked and ``known`` the
    names that do exist, so a face can suggest one (None: not listed; empty:
    there are none yet).
    """

    def __init__(self, kind: str, name: str, known: tuple[str, ...] | None = None) -> None:
        self.kind = kind
        self.name = name
        self.known = known
        super().__init__(self._words())

    def _words(self) -> str:
        if self.known is None:
            return f"no {self.kind} named {self.name!r}"
        listed = ", ".join(self.known) or "none yet"
        return f"no {self.kind} named {self.name!r} ({self.kind}s: {listed})"

    def __str__(self) -> str:
        return str(self.args[0])
