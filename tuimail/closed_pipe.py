"""When the reader of tuimail's output goes away: ``tuimail send ... | head``.

Python ignores SIGPIPE, so a write to a closed pipe raises
``BrokenPipeError``, and the interpreter's own flush at exit raises it again
after any handler has run. Pointing the descriptor at /dev/null once is the
standard library's advice; it lives here, apart from the console printer,
so that the ``tuimail`` entry point can use it without importing a session.
"""

from __future__ import annotations

import contextlib
import os
from typing import TextIO


def silence(stream: TextIO) -> None:
    """Point ``stream``'s descriptor at /dev/null once its reader has closed the pipe.

    What is still buffered, and the interpreter's own flush at exit, then go
    nowhere instead of ending in a ``BrokenPipeError`` traceback (the
    standard library's advice for SIGPIPE, which Python ignores).
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
