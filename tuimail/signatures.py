"""A profile's signature, put below the body when a new message starts.

The signature goes below the usual separator line ``-- `` (dash, dash,
space: RFC 3676 section 4.3), which mail readers recognise to grey it out
and replies to cut it. It becomes part of the body the user edits, so
nothing is added behind their back when the message is sent. Reading a
``signature_file`` is file I/O: the app calls :func:`body_with_signature`
from a worker.
"""

from __future__ import annotations

import os
from pathlib import Path

from tuimail import paths
from tuimail.errors import TuimailError
from tuimail.message import decode_text
from tuimail.profiles import Profile
from tuimail.small_files import NotReadable, read_small_file

#: The separator line, without its line end.
SEPARATOR = "-- "
#: More than any signature needs: a file this size is a mistake.
SIGNATURE_LIMIT = 64 * 1024


class SignatureUnreadable(TuimailError):
    """The profile's ``signature_file`` cannot be read; ``words`` says why."""

    def __init__(self, profile: str, path: Path, words: str) -> None:
        self.profile = profile
        self.path = path
        self.words = words
        super().__init__(f"the signature file {str(path)!r} of profile {profile!r} {words}")


def signature_path(profile: Profile) -> Path | None:
    """Where the profile's signature file is: ``~`` expanded, relative to the config dir."""
    if not profile.signature_file:
        return None
    path = Path(os.path.expanduser(profile.signature_file))
    return path if path.is_absolute() else paths.config_dir() / path


def signature_of(profile: Profile) -> str:
    """The profile's signature text without a separator or trailing blank lines; "" for none.

    ``signature`` wins over ``signature_file``. Raises
    :class:`SignatureUnreadable` for a file that is missing, not a regular
    file, too large, not UTF-8 or holding a NUL (which would otherwise be
    refused later as a fault of the body the user typed).
    """
    text = profile.signature
    path = signature_path(profile)
    if not text and path is not None:
        try:
            text = decode_text(read_small_file(path, SIGNATURE_LIMIT))
        except FileNotFoundError:
            raise SignatureUnreadable(profile.name, path, "does not exist") from None
        except NotReadable as exc:
            raise SignatureUnreadable(profile.name, path, exc.words) from None
        except OSError as exc:
            raise SignatureUnreadable(
                profile.name, path, f"cannot be read ({exc.strerror})"
            ) from None
        if "\0" in text:  # as an inline ``signature`` is refused (tuimail/profiles.py)
            raise SignatureUnreadable(
                profile.name, path, "contains a NUL character, which mail cannot carry"
            )
    text = text.replace("\r\n", "\n").rstrip("\n")
    # A signature written with its own separator gets no second one.
    if text.startswith(SEPARATOR + "\n"):
        text = text[len(SEPARATOR) + 1 :]
    elif text == SEPARATOR or text == SEPARATOR.rstrip():
        text = ""
    return text.strip("\n")


def add_signature(body: str, signature: str) -> str:
    """``body``, then a blank line, ``-- `` and ``signature``; ``body`` alone without one.

    A body that already ends with this signature is returned as it is, so
    starting a message twice never stacks two signatures.
    """
    if not signature:
        return body
    block = f"{SEPARATOR}\n{signature}\n"
    if body.endswith(block):
        return body
    text = body.rstrip("\n")
    return f"{text}\n\n{block}" if text else f"\n\n{block}"


def body_with_signature(body: str, profile: Profile) -> str:
    """The body a new message starts with: ``body`` and the profile's signature.

    Raises :class:`SignatureUnreadable` (see :func:`signature_of`).
    """
    return add_signature(body, signature_of(profile))
