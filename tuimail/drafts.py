"""Drafts: what the compose pane holds, saved as you type so a crash loses seconds.

One JSON file per draft in ``$XDG_DATA_HOME/tuimail/drafts/``, written by atomic
replace (mode 0600): a killed app leaves the last complete save, never half a
file. Attachments are kept as paths, not copies.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tuimail import paths
from tuimail.atomic import atomic_write_bytes
from tuimail.message import MAX_MESSAGE_BYTES, Draft
from tuimail.small_files import parse_json, read_small_text

#: A draft's body may be as large as a message (as JSON, non-ASCII text takes 6 bytes a character).
DRAFT_LIMIT = 6 * MAX_MESSAGE_BYTES
#: Beyond any plausible save time (year 5138); larger ones overflow ``localtime``.
LATEST_TIME = 1e11
#: When the compose form was last emptied (see :meth:`DraftStore.set_aside`); not a draft.
SET_ASIDE_FILE = "set-aside"


@dataclass
class SavedDraft:
    id: str
    profile: str
    draft: Draft
    saved: float = field(default_factory=time.time)

    @property
    def title(self) -> str:
        subject = self.draft.subject.strip() or "(no subject)"
        to = ", ".join(self.draft.to) or "(no recipient)"
        return f"{subject} — to {to}"

    def to_json(self) -> dict[str, Any]:
        draft = asdict(self.draft)
        draft["attachments"] = [str(p) for p in self.draft.attachments]
        draft["headers"] = [list(h) for h in self.draft.headers]
        return {"id": self.id, "profile": self.profile, "saved": self.saved, "draft": draft}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SavedDraft:
        """Raises ValueError for a file that is not a draft as :meth:`to_json` writes one:
        a field of the wrong type would otherwise crash the send much later."""
        fields = data["draft"]
        if not isinstance(fields, dict):
            raise ValueError("the draft is not an object")
        draft = Draft(
            from_address=_text(fields, "from_address"),
            to=_texts(fields, "to"),
            cc=_texts(fields, "cc"),
            bcc=_texts(fields, "bcc"),
            reply_to=_texts(fields, "reply_to"),
            subject=_text(fields, "subject"),
            body=_text(fields, "body"),
            attachments=[Path(p) for p in _texts(fields, "attachments")],
            headers=[_header(h) for h in fields.get("headers", [])],
            markdown=_flag(fields, "markdown"),
        )
        return cls(
            id=str(data["id"]),
            profile=str(data.get("profile", "")),
            draft=draft,
            saved=_timestamp(data.get("saved", 0.0)),
        )


def _timestamp(value: Any) -> float:
    """When the draft was saved; 0 (unknown) for what is not a time ``localtime`` can show.

    A hand-edited ``"saved": NaN`` or ``1e300`` must not make the drafts list
    raise where it shows the time; the draft itself is still worth keeping.
    """
    saved = float(value)
    return saved if math.isfinite(saved) and 0 <= saved <= LATEST_TIME else 0.0


def _text(fields: dict[str, Any], key: str) -> str:
    value = fields.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"the draft's {key} is not text")
    return value


def _flag(fields: dict[str, Any], key: str) -> bool:
    """A yes/no field; absent (a draft saved by an older version) is no."""
    value = fields.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"the draft's {key} is not true or false")
    return value


def _texts(fields: dict[str, Any], key: str) -> list[str]:
    value = fields.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"the draft's {key} is not a list of text")
    return value


def _header(value: Any) -> tuple[str, str]:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise ValueError("a header of the draft is not a [name, value] pair")
    return value[0], value[1]


class DraftStore:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or paths.data_dir() / "drafts"

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex[:12]

    def save(self, saved: SavedDraft) -> None:
        """Raises OSError (read-only or full disk): the caller keeps the draft on screen."""
        paths.ensure_private_dir(self.directory)
        saved.saved = time.time()
        # ensure_ascii: a path from a non-UTF-8 file name holds surrogates
        # (os.fsdecode), which UTF-8 cannot encode; as JSON escapes they load
        # back as the same path, so such a draft still saves.
        data = json.dumps(saved.to_json(), ensure_ascii=True).encode("ascii")
        atomic_write_bytes(self.directory / f"{saved.id}.json", data)

    def load(self, draft_id: str) -> SavedDraft:
        saved = SavedDraft.from_json(
            parse_json(read_small_text(self.directory / f"{draft_id}.json", DRAFT_LIMIT))
        )
        saved.id = draft_id  # the file's name, as in :meth:`list`
        return saved

    def list(self) -> list[SavedDraft]:
        """Newest first; unreadable files are skipped, never deleted."""
        drafts = []
        for path in self.directory.glob("*.json") if self.directory.is_dir() else []:
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                saved = SavedDraft.from_json(parse_json(read_small_text(path, DRAFT_LIMIT)))
                # The file's name is its id: an "id" inside a copied or edited file
                # ("../profiles") must not decide which file a save or delete touches.
                saved.id = path.stem
                drafts.append(saved)
        return sorted(drafts, key=lambda d: d.saved, reverse=True)

    def delete(self, draft_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / f"{draft_id}.json").unlink()

    def set_aside(self) -> None:
        """The form was emptied (sent, cleared, or a new message begun): the drafts saved
        so far are no longer being written, so :meth:`latest` leaves them to the drafts list.

        Raises OSError (read-only or full disk), as :meth:`save` does.
        """
        paths.ensure_private_dir(self.directory)
        atomic_write_bytes(self.directory / SET_ASIDE_FILE, repr(time.time()).encode("ascii"))

    def latest(self) -> SavedDraft | None:
        """The draft that was being written when the app last stopped, if any: the newest
        one saved after the form was last emptied (None when there is none)."""
        try:
            aside = _timestamp(read_small_text(self.directory / SET_ASIDE_FILE, 100))
        except (OSError, ValueError):
            aside = 0.0
        drafts = self.list()
        return drafts[0] if drafts and drafts[0].saved > aside else None
