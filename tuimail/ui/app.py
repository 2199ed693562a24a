"""The tuimail app: compose, transcript, accounts and sandbox, on the headless core.

SMTP work runs in workers on the app and reports through messages, which the
app hands to every screen that listens; the screens never call the network.
The embedded sandbox runs on the app's event loop, so a new user can send at
once and see both sides of the conversation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from tuimail.credentials import CredentialStore, KeyringError, Secret
from tuimail.message import Draft, DraftInvalid, build_message
from tuimail.profiles import Profile, ProfileStore, ProfileStoreError
from tuimail.sandbox_profile import SANDBOX_PROFILE, builtin_profile, find_running
from tuimail.terminal_text import escape_terminal_controls
from tuimail.transcript import Transcript
from tuimail.ui import settings, themes
from tuimail.ui.commands import TuimailCommands
from tuimail.ui.history import SessionHistory, SessionRun
from tuimail.ui.messages import (
    ProfilesChanged,
    SandboxSessionEnded,
    SessionFinished,
    SessionStarted,
    TranscriptEntry,
)
from tuimail.ui.outside import shown
from tuimail.ui.screens.compose import ComposeScreen

if TYPE_CHECKING:
    # Imported where first used: the SMTP client and the outbox for the first
    # send, the sandbox server (aiosmtpd) in the worker that starts it. The
    # first screen does not wait for them.
    from tuimail.outbox import Outbox, OutboxError, RetryPolicy
    from tuimail.sandbox import Sandbox, SandboxConfig, SessionRecord
    from tuimail.session import SessionReport


_SCREENS = {
    "compose": ("compose", "ComposeScreen"),
    "transcript": ("transcript", "TranscriptScreen"),
    "accounts": ("accounts", "AccountsScreen"),
    "sandbox": ("sandbox", "SandboxScreen"),
    "monitor": ("monitor", "MonitorScreen"),
    "mailboxes": ("mailboxes", "MailboxesScreen"),
}


def _screen_class(mode: str) -> Any:
    import importlib

    module, name = _SCREENS[mode]
    return getattr(importlib.import_module(f"tuimail.ui.screens.{module}"), name)


def _lazy_screen(mode: str) -> Callable[[], Screen[Any]]:
    def make() -> Screen[Any]:
        return cast("Screen[Any]", _screen_class(mode)())

    return make


#: Seconds between live transcript messages during a session.
LIVE_TICK = 0.03


class TuimailApp(App[None]):
    """The SMTP workbench."""

    # Absolute: Textual resolves a relative CSS_PATH against the file of the
    # class being run, so a subclass elsewhere (a test, a plugin) lost all styles.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "tuimail"
    COMMANDS = App.COMMANDS | {TuimailCommands}
    MODES: ClassVar[dict[str, Any]] = {
        "compose": ComposeScreen,
        # The others are imported when first shown: start-up pays for Compose only.
        **{
            mode: _lazy_screen(mode)
            for mode in ("transcript", "accounts", "sandbox", "monitor", "mailboxes")
        },
    }
    DEFAULT_MODE = "compose"
    # The function keys are priority bindings: TextArea takes F5-F7 and would
    # otherwise keep the body's cursor from ever leaving for the sandbox inbox.
    BINDINGS = [
        Binding("f1", "help", "Help", id="app.help", priority=True),
        Binding(
            "f2", "switch_mode('compose')", "Compose", id="app.compose", show=False, priority=True
        ),
        Binding(
            "f3",
            "switch_mode('transcript')",
            "Transcript",
            id="app.transcript",
            show=False,
            priority=True,
        ),
        Binding(
            "f4",
            "switch_mode('accounts')",
            "Accounts",
            id="app.accounts",
            show=False,
            priority=True,
        ),
        Binding(
            "f5", "switch_mode('sandbox')", "Sandbox", id="app.sandbox", show=False, priority=True
        ),
        Binding(
            "f6", "switch_mode('monitor')", "Monitor", id="app.monitor", show=False, priority=True
        ),
        Binding(
            "f7",
            "switch_mode('mailboxes')",
            "Outbox, drafts, sent",
            id="app.mailboxes",
            show=False,
            priority=True,
        ),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(
        self,
        *,
        profile: str | None = None,
        start_sandbox: bool = True,
        sandbox_config: SandboxConfig | None = None,
    ) -> None:
        self.history = SessionHistory()
        self.saved_profiles: dict[str, Profile] = {}
        self.profile_problem = ""
        self.sandbox: Sandbox | None = None
        self.sandbox_profile: Profile | None = None
        self.sandbox_note = ""
        self.sending = False
        self._listeners: list[Screen[Any]] = []
        self._start_sandbox = start_sandbox
        self._sandbox_config = sandbox_config
        self.config = settings.load_config()
        self._load_profiles()
        self.initial_profile = self._initial_profile(profile)
        super().__init__()
        self.theme_problems: list[str] = []

    @functools.cached_property
    def outbox(self) -> Outbox:
        """The durable outbox, opened when first used (it brings the SMTP client)."""
        from tuimail.outbox import Outbox

        return Outbox(policy=_retry_policy(self.config))

    # -- start-up -----------------------------------------------------------

    def _initial_profile(self, requested: str | None) -> str:
        if requested:
            return requested
        return next(iter(self.saved_profiles), SANDBOX_PROFILE)

    def _load_profiles(self) -> None:
        try:
            self.saved_profiles = ProfileStore().load()
            self.profile_problem = ""
        except ProfileStoreError as exc:
            self.saved_profiles = {}
            self.profile_problem = str(exc)

    def all_profiles(self) -> dict[str, Profile]:
        """The built-in sandbox first, then the user's (a saved 'sandbox' wins)."""
        profiles: dict[str, Profile] = {}
        if SANDBOX_PROFILE not in self.saved_profiles:
            profiles[SANDBOX_PROFILE] = self.sandbox_profile or builtin_profile()
        profiles.update(self.saved_profiles)
        return profiles

    def sandbox_unavailable(self, profile: Profile) -> bool:
        """The built-in sandbox profile while no sandbox listens (port 0: nowhere)."""
        return (
            profile.name == SANDBOX_PROFILE
            and SANDBOX_PROFILE not in self.saved_profiles
            and profile.port == 0
        )

    def on_load(self) -> None:
        if self._start_sandbox:
            # In a worker, so the first screen never waits for it; started before
            # that screen is built, so its first frame usually shows the port
            # already (a later update redraws the From selector).
            self.run_worker(self._bring_up_sandbox(), group="sandbox", exit_on_error=False)

    async def on_event(self, event: events.Event) -> None:
        """A paste arrives with its terminal controls escaped (``\\x1b``), line ends kept.

        Input and TextArea draw what they hold as it is: an ESC sequence in
        pasted text (copied from a web page or a log) would go back to the
        terminal and be obeyed. The paste is changed once, here, for every field.
        """
        if isinstance(event, events.Paste) and not event.is_forwarded:
            text = event.text.replace("\r\n", "\n").replace("\r", "\n")
            event.text = escape_terminal_controls(text)
        await super().on_event(event)

    async def on_mount(self) -> None:
        loaded = themes.register_all(self)
        self.theme_problems = loaded.problems
        # Problems quote file names, TOML errors and "[keymap]": never markup.
        for problem in loaded.problems:
            self.notify(
                shown(problem),
                title="Theme not loaded",
                severity="warning",
                timeout=8,
                markup=False,
            )
        chosen = settings.load_state().get("theme")
        if isinstance(chosen, str) and chosen in self.available_themes:
            self.theme = chosen
        elif isinstance(chosen, str):
            self.notify(
                shown(
                    f"The theme {chosen!r} chosen last time is not available; using the default."
                ),
                title="Theme",
                severity="warning",
                timeout=8,
                markup=False,
            )
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        for problem in settings.apply_keymap(self, self.config):
            self.notify(shown(problem), title="Keymap", severity="warning", timeout=8, markup=False)
        if self.profile_problem:
            self.notify(
                shown(self.profile_problem),
                title="Profiles not loaded",
                severity="error",
                timeout=10,
                markup=False,
            )
        self.set_interval(60, self.flush_due)

    async def _bring_up_sandbox(self) -> None:
        running = await asyncio.to_thread(find_running)
        if running is not None:
            self.sandbox_profile = running
            self.sandbox_note = (
                f"Using the running 'tuimail serve' at {running.address}; "
                "its terminal shows what it receives."
            )
            self._refresh_profile_views()
            return
        from tuimail.sandbox import Sandbox, SandboxConfig, SandboxError

        config = self._sandbox_config or SandboxConfig(port=0)
        sandbox = Sandbox(config, on_session_end=self._sandbox_session_ended)
        try:
            await sandbox.start()
        except SandboxError as exc:
            self.sandbox_note = f"The sandbox could not start: {exc}"
            self.notify(shown(self.sandbox_note), severity="error", markup=False)
            return
        self.sandbox = sandbox
        self.sandbox_profile = sandbox.client_profile()
        self._refresh_profile_views()

    async def on_unmount(self) -> None:
        if self.sandbox is not None:
            await self.sandbox.stop(grace=2)

    def _remember_theme(self, theme: Any) -> None:
        settings.save_state({"theme": self.theme})

    def _sandbox_session_ended(self, record: SessionRecord) -> None:
        self._broadcast(SandboxSessionEnded(record))

    # -- screens that listen ------------------------------------------------

    def listen(self, screen: Screen[Any]) -> None:
        """A screen asks for session events (called from its ``on_mount``)."""
        self._listeners.append(screen)

    def _listening_screens(self) -> list[Screen[Any]]:
        return [screen for screen in self._listeners if screen.is_attached]

    def _broadcast(self, message: Message) -> None:
        for screen in self._listening_screens():
            screen.post_message(dataclasses.replace(message))  # type: ignore[type-var]

    def on_session_started(self, message: SessionStarted) -> None:
        self._broadcast(message)

    def on_transcript_entry(self, message: TranscriptEntry) -> None:
        self._broadcast(message)

    def on_session_finished(self, message: SessionFinished) -> None:
        self._broadcast(message)

    def profiles_changed(self, select: str | None = None) -> None:
        self._load_profiles()
        self._refresh_profile_views(select)
        self._broadcast(ProfilesChanged())

    def _refresh_profile_views(self, select: str | None = None) -> None:
        """Each screen that shows profiles reloads them (its ``reload_profiles``)."""
        for screen in self._listening_screens():
            reload = getattr(screen, "reload_profiles", None)
            if reload is not None and screen.is_mounted:
                reload(select)

    # -- SMTP work ------------------------------------------------------------

    def start_send(self, profile: Profile, draft: Draft) -> None:
        self.sending = True
        self.run_session("send", profile, draft)

    def start_test(self, profile: Profile) -> None:
        self.sending = True
        self.run_session("test", profile, None)

    def start_retry(self, key: str) -> None:
        self.sending = True
        self.run_retry(key)

    @work(exclusive=True, group="smtp", exit_on_error=False)
    async def run_retry(self, key: str) -> SessionReport:
        """Send one outbox message now (a failed one too: the user asked)."""
        from tuimail.session import SessionReport

        queued = await asyncio.to_thread(self.outbox.requeue, key)
        profile = Profile.from_toml_table(
            queued.profile_name, {k: v for k, v in queued.profile.items() if k != "name"}
        )
        # Only a message queued through a saved profile may use that profile's
        # stored password (a --server one never borrows one); the outbox asks
        # for it, in a thread, when the attempt starts and reads the profile.
        run = SessionRun(
            "retry", profile.name, ", ".join(queued.recipients), Transcript(title=f"retry {key}")
        )
        run.outbox_key = key
        self.history.add(run)
        self.post_message(SessionStarted(run))

        deliver_live = self._live_feed(run)

        outcome = await self.outbox.attempt(
            key,
            passwords=lambda current: CredentialStore().get(current.name),
            on_entry=deliver_live,
            transcript=run.transcript,
        )
        run.outbox_state = outcome.state
        run.report = outcome.report or SessionReport(run.transcript)
        self.post_message(SessionFinished(run))
        return run.report

    @work(exclusive=True, group="outbox-flush", exit_on_error=False)
    async def flush_due(self) -> None:
        """Every minute: send what is due in the outbox, as 'tuimail outbox flush' would."""
        if self.sending:
            return
        import time

        due = [q for q in await asyncio.to_thread(self.outbox.entries) if q.due(time.time())]
        if not due:
            return

        # The outbox asks for a password only for a message that follows a
        # saved profile, when its attempt starts, and in a thread.
        def password(profile: Profile) -> Secret | None:
            if profile.name not in self.saved_profiles:
                return None
            return CredentialStore().get(profile.name)

        outcomes = await self.outbox.flush(password)
        sent = sum(1 for o in outcomes if o.state == "sent")
        if sent:
            self.notify(f"Sent {sent} queued message(s) from the outbox.", title="Outbox")
        for outcome in outcomes:
            if outcome.state in ("failed", "possibly-delivered"):
                what = "may have been delivered" if outcome.state != "failed" else "failed"
                self.notify(
                    shown(f"A queued message {what}: {outcome.detail} (F7 to retry or delete)"),
                    title="Outbox",
                    severity="error",
                    timeout=15,
                    markup=False,
                )
        for screen in self._listening_screens():
            reload = getattr(screen, "reload_mailboxes", None)
            if reload is not None and screen.is_mounted:
                reload()

    async def action_quit(self) -> None:
        """Save the draft being written, then leave (the timer may not have fired yet)."""
        for screen in self._listening_screens():
            if isinstance(screen, ComposeScreen) and screen.is_mounted:
                screen.save_draft_now()
        self.exit()

    def open_draft(self, saved: Any) -> None:
        """Continue a draft (or an outbox message turned back into one) in Compose.

        Callers check :meth:`compose_locked` first: the form being sent is not replaced.
        """
        self.switch_mode("compose")
        for screen in self._listening_screens():
            if isinstance(screen, ComposeScreen):
                screen.load_draft(saved)

    @work(exclusive=True, group="smtp", exit_on_error=False)
    async def run_session(self, kind: str, profile: Profile, draft: Draft | None) -> SessionReport:
        """Build (off the loop), fetch the password (off the loop), then talk SMTP."""
        from tuimail.outbox import OutboxError
        from tuimail.session import SessionReport, check_account, send

        outgoing = None
        if draft is not None:
            try:
                outgoing = await asyncio.to_thread(build_message, draft)
            except DraftInvalid as exc:
                self.call_later(self._draft_invalid, exc)
                raise
        password = await self._password_for(profile)
        summary = ", ".join(outgoing.envelope_recipients) if outgoing else profile.address
        run = SessionRun(kind, profile.name, summary, Transcript(title=f"{kind} {profile.name}"))
        self.history.add(run)
        self.post_message(SessionStarted(run))

        deliver_live = self._live_feed(run)

        if outgoing is not None and password is None and profile.needs_password:
            # Refused before it is queued: a queued copy would wait in the outbox
            # while the draft stays here, and both would go once a password is saved.
            from tuimail.session import SessionFailure, Stage

            report = SessionReport(
                run.transcript,
                failure=SessionFailure(
                    Stage.AUTH,
                    f"no password is stored for the profile {profile.name!r}; "
                    "add it on Accounts (F4). Nothing was sent",
                    temporary=False,
                ),
            )
        elif outgoing is not None and self._uses_outbox(profile):
            try:
                queued = await asyncio.to_thread(self.outbox.enqueue, profile, outgoing)
            except OutboxError as exc:
                run.report = SessionReport(run.transcript)
                run.outbox_state = "not stored"
                self.call_later(self._store_failed, exc)
                self.post_message(SessionFinished(run))
                raise
            run.outbox_key = queued.key
            try:
                outcome = await self.outbox.attempt(
                    queued.key,
                    password,
                    on_entry=deliver_live,
                    transcript=run.transcript,
                    outgoing=outgoing,
                )
            except Exception:
                await self._after_broken_attempt(queued.key)
                raise
            run.outbox_state = await self._one_home(queued.key, outcome.state, outcome.report)
            report = outcome.report or SessionReport(run.transcript)
        elif outgoing is not None:
            report = await send(
                profile, outgoing, password, on_entry=deliver_live, transcript=run.transcript
            )
        else:
            report = await check_account(
                profile, password, on_entry=deliver_live, transcript=run.transcript
            )
        run.report = report
        self.post_message(SessionFinished(run))
        return report

    async def _one_home(self, key: str, state: str, report: SessionReport | None) -> str:
        """A message Compose sent that failed for good goes back to Compose, not the outbox.

        Compose keeps the draft after such a failure, so the user can fix it;
        a copy left in the outbox too would be sent again by a retry there,
        and the fixed draft once more by Send. Returns the run's outbox state:
        "returned" when the outbox copy is gone. A message some server accepted
        (``report.delivery``) stays where the outbox put it.
        """
        from tuimail.outbox import MessageNotFound, OutboxError

        if state == "skipped":
            # Not tried by this send: another process (or the flush timer) holds
            # the message. It is the outbox's now; Compose lets go of its copy.
            return "queued"
        if state != "failed" or (report is not None and report.delivery is not None):
            return state
        try:
            await asyncio.to_thread(self.outbox.drop, key)
        except (MessageNotFound, OSError, OutboxError):
            return state  # still in the outbox: Compose clears, the outbox is its home
        return "returned"

    async def _after_broken_attempt(self, key: str) -> None:
        """The attempt itself raised: give the message one home.

        Compose keeps the draft and says why the session stopped. If the
        outbox copy was never tried, it goes (or the flush timer would send
        it beside the draft). If it was, the server may have it: the outbox
        copy is its home, shown on F7, and Compose's copy goes instead.
        """
        from tuimail.outbox import MessageNotFound, OutboxError, State

        try:
            entry = await asyncio.to_thread(self.outbox.get, key)
            untried = entry.state is State.QUEUED and not entry.attempts
            if untried:
                await asyncio.to_thread(self.outbox.drop, key)
                return
        except (MessageNotFound, OSError, OutboxError):
            return  # gone, or unreadable: the draft in Compose is what is left
        for screen in self._listening_screens():
            if isinstance(screen, ComposeScreen):
                screen.forget_draft()
                screen.clear_draft()
        self.notify(
            "The session stopped after the message was tried; it is kept in the outbox (F7).",
            title="Outbox",
            severity="warning",
            timeout=12,
        )

    def compose_locked(self) -> bool:
        """Compose is sending its message (its form is locked until that ends)."""
        return any(
            isinstance(screen, ComposeScreen) and screen.is_mounted and screen.form_locked
            for screen in self._listening_screens()
        )

    def _live_feed(self, run: SessionRun) -> Callable[[Any], None]:
        """The session's transcript callback: at most one message per ``LIVE_TICK``.

        Views catch up from the transcript itself, so a burst of lines costs one
        message, not three per line: a flooding server cannot starve the keys.
        """
        scheduled = False

        def post() -> None:
            nonlocal scheduled
            scheduled = False
            self.post_message(TranscriptEntry(run, run.transcript.entries[-1]))

        def feed(entry: Any) -> None:
            nonlocal scheduled
            if not scheduled:
                scheduled = True
                self.set_timer(LIVE_TICK, post)

        return feed

    def _uses_outbox(self, profile: Profile) -> bool:
        """Every send is stored first, except to the sandbox, whose port changes each run."""
        return not (profile.name == SANDBOX_PROFILE and SANDBOX_PROFILE not in self.saved_profiles)

    def _store_failed(self, exc: OutboxError) -> None:
        for screen in self._listening_screens():
            if isinstance(screen, ComposeScreen):
                screen.set_status(f"✗ {exc} Your draft is kept.", "error")

    async def _password_for(self, profile: Profile) -> Secret | None:
        if not profile.username or profile.name == SANDBOX_PROFILE:
            return None
        try:
            return await asyncio.to_thread(CredentialStore().get, profile.name)
        except KeyringError as exc:
            self.notify(
                shown(f"{exc.message}. {exc.fix}"),
                title="Keyring",
                severity="error",
                timeout=12,
                markup=False,
            )
            raise

    def _draft_invalid(self, exc: DraftInvalid) -> None:
        for screen in self._listening_screens():
            if isinstance(screen, ComposeScreen):
                screen.show_field_errors([(e.field, e.message) for e in exc.errors])

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "smtp":
            return
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self.sending = False
        if event.state is WorkerState.ERROR:
            from tuimail.outbox import OutboxError

            error = event.worker.error
            handled = (DraftInvalid, KeyringError, OutboxError)  # each already explained
            if not isinstance(error, handled):
                self.notify(
                    shown(f"The session stopped: {error}"),
                    severity="error",
                    timeout=10,
                    markup=False,
                )
            for screen in self._listening_screens():
                if isinstance(screen, ComposeScreen):
                    screen.lock_form(False)
                    if isinstance(error, KeyringError):
                        screen.set_status(f"keyring: {error.message}", "error")
                    elif isinstance(error, OutboxError):
                        screen.set_status(f"✗ {error} Your draft is kept.", "error")
                    elif not isinstance(error, DraftInvalid):
                        # Not left at "sending via …" for ever.
                        screen.set_status(f"✗ the session stopped: {error}", "error")

    # -- actions --------------------------------------------------------------

    def action_help(self) -> None:
        """F1 opens the help; on the help screen it closes it (no help on help)."""
        from tuimail.ui.screens.dialogs import HelpScreen  # dialogs: when first opened

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HelpScreen(self.key_table()))

    def key_table(self) -> list[tuple[str, str]]:
        """Every binding with an id, with its key as remapped by the user's keymap."""
        keymap = self.config.get("keymap", {})
        keymap = keymap if isinstance(keymap, dict) else {}
        rows: list[tuple[str, str]] = []
        owners: list[tuple[str, list[Any]]] = [("", list(self.BINDINGS))]
        owners += [(mode, list(_screen_class(mode).BINDINGS)) for mode in self.MODES]
        for mode, bindings in owners:
            for binding in bindings:
                if not isinstance(binding, Binding) or not binding.id:
                    continue
                key = str(keymap.get(binding.id, binding.key))
                where = f" ({mode})" if mode else ""
                rows.append((key, f"{binding.description}{where}  [id {binding.id}]"))
        return rows


def _retry_policy(config: dict[str, Any]) -> RetryPolicy:
    from tuimail.outbox import RetryPolicy

    try:
        return RetryPolicy.from_config(config.get("outbox", {}))
    except (TypeError, ValueError):
        return RetryPolicy()


def run_app(profile: str | None = None) -> int:
    """Run the app; its exit status says whether it stopped on an error (1), not always 0."""
    app = TuimailApp(profile=profile)
    app.run()
    return app.return_code or 0
