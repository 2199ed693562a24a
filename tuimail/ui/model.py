"""What the app knows, in one object: profiles, sandbox, outbox, sessions, the busy flag.

The app owns one :class:`AppModel` and changes it; screens read it and
subscribe to its signals (Textual's :class:`~textual.signal.Signal`, which
drops a screen that is gone), then update their own widgets. Requests go the
other way through methods (:meth:`AppModel.start`, :meth:`AppModel.open_draft`)
that publish a signal the app acts on. So screens depend on this module, never
on the app class, and the model never touches a widget.

The live transcript has one throttle: :meth:`AppModel.live_feed` is the
session's transcript callback, and at most once per :data:`LIVE_TICK` it
publishes :attr:`AppModel.transcript_grew`; each view then catches up from
the transcript itself.

What the benchmarks observe, by these public names only (each read goes
through one function of ``benchmarks/app_seam.py``): :meth:`AppModel.begin`
and :meth:`AppModel.live_feed` (to run a session of their own),
:attr:`AppModel.live_views` (the views that follow live sessions),
:attr:`AppModel.sandbox` and :attr:`AppModel.sandbox_note`,
``TranscriptView.shown_entries`` and ``TranscriptView.log_widget`` (what one
view shows) and ``MonitorScreen.latest`` and ``MonitorScreen.targets``. Tests
also wait for ``TuimailApp.is_idle``, built on :attr:`AppModel.live_backlog`
and ``TranscriptView.backlog`` (what is still to be shown).
"""

from __future__ import annotations

import asyncio
import functools
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from textual.dom import DOMNode
from textual.signal import Signal
from textual.timer import Timer

from tuimail import user_config
from tuimail.profiles import Profile, ProfileStore, ProfileStoreError
from tuimail.sandbox_profile import SANDBOX_PROFILE, RunningSandbox, builtin_profile
from tuimail.serial_thread import SerialThread
from tuimail.ui.history import SessionHistory, SessionRun
from tuimail.ui.messages import (
    ProfilesChanged,
    SendStopped,
    SessionRequest,
)
from tuimail.ui.widgets.transcript_view import LIVE_TICK, TranscriptView
from tuimail.user_config import LoadedConfig

if TYPE_CHECKING:  # the outbox brings the SMTP client, the sandbox aiosmtpd: both come later
    from tuimail.drafts import SavedDraft
    from tuimail.message import OutgoingMessage
    from tuimail.outbox import Outbox
    from tuimail.sandbox import Sandbox, SessionRecord
    from tuimail.transcript import Entry, Transcript

#: What identifies one version of the profiles file: (inode, size, mtime in ns); None: no file.
FileStamp = tuple[int, int, int] | None


@dataclass(frozen=True)
class LoadedProfiles:
    """The profiles file as read at one moment (``problem``: why it could not be read)."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    problem: str = ""
    stamp: FileStamp = None


def profiles_stamp() -> FileStamp:
    """The profiles file's identity now (a stat: call it off the UI loop once running)."""
    try:
        info = os.stat(ProfileStore().path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def read_profiles() -> LoadedProfiles:
    """Read the profiles file (file I/O: in a thread once the app runs)."""
    stamp = profiles_stamp()
    try:
        return LoadedProfiles(ProfileStore().load(), "", stamp)
    except ProfileStoreError as exc:
        return LoadedProfiles({}, str(exc), stamp)


@dataclass(frozen=True)
class OpenedDraft:
    """A draft to continue in Compose; ``note`` replaces Compose's usual status line when set.

    ``unasked``: the app opens it by itself (at start), so it must not replace
    what the user has begun to type meanwhile.
    """

    saved: SavedDraft
    note: str = ""
    unasked: bool = False


class AppModel:
    """The state of one run of the app, and the signals that tell screens it changed.

    ``owner`` is the app: Textual's signals need a node that is running, and
    they stop when it stops.
    """

    def __init__(
        self,
        owner: DOMNode,
        profiles: LoadedProfiles,
        config: LoadedConfig,
        *,
        initial_profile: str | None = None,
    ) -> None:
        self.config = config
        #: The profile Compose starts with: the one asked for, else the first saved.
        self.initial_profile = initial_profile or next(iter(profiles.profiles), SANDBOX_PROFILE)
        self.history = SessionHistory()
        self.saved_profiles = profiles.profiles
        self.profile_problem = profiles.problem
        self.profiles_file = profiles.stamp
        self.sandbox: Sandbox | None = None
        self.sandbox_profile: Profile | None = None
        self.sandbox_note = ""
        #: The built-in sandbox when another process serves it (``sandbox`` is then None).
        self.sandbox_running: RunningSandbox | None = None
        #: A session (send, test or retry) is running; another is refused until it ends.
        self.busy = False
        #: Compose's form is locked while its message is on its way.
        self.compose_locked = False
        #: Drafts and settings are written here, in order, off the UI loop.
        self.saves = SerialThread("tuimail-saves")
        self._live: dict[SessionRun, Timer | None] = {}
        self._live_views: weakref.WeakSet[TranscriptView] = weakref.WeakSet()
        self._owner = owner

        self.profiles_changed: Signal[ProfilesChanged] = Signal(owner, "profiles_changed")
        self.sandbox_changed: Signal[None] = Signal(owner, "sandbox_changed")
        self.sandbox_session_ended: Signal[SessionRecord] = Signal(owner, "sandbox_session_ended")
        self.session_requested: Signal[SessionRequest] = Signal(owner, "session_requested")
        self.session_started: Signal[SessionRun] = Signal(owner, "session_started")
        self.transcript_grew: Signal[SessionRun] = Signal(owner, "transcript_grew")
        self.session_finished: Signal[SessionRun] = Signal(owner, "session_finished")
        self.send_stopped: Signal[SendStopped] = Signal(owner, "send_stopped")
        self.mailboxes_changed: Signal[None] = Signal(owner, "mailboxes_changed")
        self.draft_opened: Signal[OpenedDraft] = Signal(owner, "draft_opened")
        self.closing: Signal[None] = Signal(owner, "closing")

    # -- profiles -------------------------------------------------------------

    def all_profiles(self) -> dict[str, Profile]:
        """The built-in sandbox first, then the user's (a saved 'sandbox' wins)."""
        profiles: dict[str, Profile] = {}
        if SANDBOX_PROFILE not in self.saved_profiles:
            profiles[SANDBOX_PROFILE] = self.sandbox_profile or builtin_profile()
        profiles.update(self.saved_profiles)
        return profiles

    def is_builtin_sandbox(self, profile: Profile) -> bool:
        """The sandbox profile tuimail made (not one the user saved under that name)."""
        return profile.name == SANDBOX_PROFILE and SANDBOX_PROFILE not in self.saved_profiles

    def sandbox_unavailable(self, profile: Profile) -> bool:
        """The built-in sandbox profile while no sandbox listens (port 0: nowhere)."""
        return self.is_builtin_sandbox(profile) and profile.port == 0

    def uses_outbox(self, profile: Profile) -> bool:
        """Every send is stored first, except to the built-in sandbox: a queued copy could
        be retried later against another run's sandbox. A send it accepted is recorded
        in Sent after the fact instead (:meth:`record_sandbox_send`)."""
        return not self.is_builtin_sandbox(profile)

    async def record_sandbox_send(self, outgoing: OutgoingMessage, transcript: Transcript) -> str:
        """Keep a message the built-in sandbox accepted in Sent, marked as the sandbox's,
        with its transcript (in a thread); its key. Raises
        :class:`~tuimail.outbox.OutboxError` or :class:`~tuimail.user_config.ConfigError`."""
        return await asyncio.to_thread(self.outbox.record_sent, outgoing, transcript)

    def set_profiles(self, loaded: LoadedProfiles, select: str | None = None) -> None:
        """The profiles file was read again (in a worker): every view of profiles follows."""
        self.saved_profiles = loaded.profiles
        self.profile_problem = loaded.problem
        self.profiles_file = loaded.stamp
        self.profiles_changed.publish(ProfilesChanged(select))

    def set_sandbox(
        self,
        sandbox: Sandbox | None,
        profile: Profile | None,
        note: str,
        running: RunningSandbox | None = None,
    ) -> None:
        """The embedded sandbox started, or another process serves it (``running``), or neither."""
        self.sandbox = sandbox
        self.sandbox_profile = profile
        self.sandbox_note = note
        self.sandbox_running = running
        self.sandbox_changed.publish(None)
        self.profiles_changed.publish(ProfilesChanged())

    def sandbox_place(self) -> tuple[Path, Path]:
        """The sandbox's Maildir and session files' directory, whoever serves it.

        F5 lists what the Maildir holds, so it has one to read even when no
        sandbox runs (the default place: a restart finds the messages there).
        """
        if self.sandbox is not None:
            return self.sandbox.maildir_path, self.sandbox.sessions_dir
        running = self.sandbox_running
        if running is not None and running.maildir and running.sessions_dir:
            return Path(running.maildir), Path(running.sessions_dir)
        from tuimail.sandbox.config import SandboxConfig

        default = SandboxConfig()
        return default.resolved_maildir(), default.resolved_sessions_dir()

    # -- the outbox -------------------------------------------------------------

    @functools.cached_property
    def outbox(self) -> Outbox:
        """The durable outbox, opened when first used (it brings the SMTP client).

        Raises :class:`~tuimail.user_config.ConfigError` when config.toml
        cannot be read or its ``[outbox]`` is bad, in the command line's
        words, each time it is asked for: the file is read once, at start-up,
        so a fixed file is used from the next start.
        """
        from tuimail.outbox import Outbox

        return Outbox(policy=user_config.retry_policy(self.config))

    # -- requests from screens --------------------------------------------------

    def start(self, request: SessionRequest) -> bool:
        """Ask the app to run a session; False (and nothing starts) while one runs."""
        if self.busy:
            return False
        self.busy = True
        self.session_requested.publish(request)
        return True

    def open_draft(self, saved: SavedDraft, note: str = "", *, unasked: bool = False) -> None:
        """Continue a draft in Compose (callers check :attr:`compose_locked` first)."""
        self.draft_opened.publish(OpenedDraft(saved, note, unasked))

    # -- sessions ---------------------------------------------------------------

    def begin(self, run: SessionRun) -> None:
        """A session started: it joins the history and every view may show it."""
        self.history.add(run)
        self._live[run] = None
        self.session_started.publish(run)

    def live_feed(self, run: SessionRun) -> Callable[[Entry], None]:
        """The session's ``on_entry`` callback: new entries are announced once per tick.

        A flooding server adds thousands of lines a second; one signal per
        tick keeps the keys answering (views catch up from the transcript).
        """
        return lambda _entry: self._entry_added(run)

    def finish(self, run: SessionRun) -> None:
        """The session ended (``run.report`` says how): the last lines, then the outcome."""
        timer = self._live.pop(run, None)
        if timer is not None:
            timer.stop()
        self.transcript_grew.publish(run)
        self.session_finished.publish(run)

    def follow_live(self, view: TranscriptView) -> None:
        """``view`` catches up whenever the transcript it shows grows in a session."""
        self.transcript_grew.subscribe(view, lambda run: view.transcript_grew(run.transcript))
        self._live_views.add(view)

    @property
    def live_views(self) -> list[TranscriptView]:
        """The mounted views that follow live sessions (see :meth:`follow_live`)."""
        return [view for view in self._live_views if view.is_attached]

    @property
    def live_backlog(self) -> int:
        """Sessions with transcript entries not yet announced to the views (0: none waiting)."""
        return sum(1 for timer in self._live.values() if timer is not None)

    def _entry_added(self, run: SessionRun) -> None:
        if run in self._live and self._live[run] is None:
            self._live[run] = self._owner.set_timer(LIVE_TICK, lambda: self._announce(run))

    def _announce(self, run: SessionRun) -> None:
        if run in self._live:
            self._live[run] = None
        self.transcript_grew.publish(run)


def model_of(node: DOMNode) -> AppModel:
    """The model of the app ``node`` runs in (an app without one is a programming error)."""
    model = getattr(node.app, "model", None)
    if not isinstance(model, AppModel):
        raise TypeError(f"{type(node.app).__name__} has no tuimail AppModel")
    return model
