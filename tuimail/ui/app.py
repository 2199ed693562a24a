"""The tuimail app: compose, transcript, accounts and sandbox, on the headless core.

The app owns an :class:`~tuimail.ui.model.AppModel` (profiles, sandbox,
outbox, session history, the busy flag) and runs the SMTP work in workers; the
screens read the model, subscribe to its signals and ask it for sessions, so
they never call the network and never know this class. The embedded sandbox
runs on the app's event loop, so a new user can send at once and see both
sides of the conversation.
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from tuimail import user_config
from tuimail.addresses import mailbox_text
from tuimail.credentials import CredentialStore, KeyringError, Secret
from tuimail.drafts import DraftStore, SavedDraft
from tuimail.errors import TuimailError
from tuimail.message import Draft, DraftInvalid, OutgoingMessage, build_message
from tuimail.profiles import Profile
from tuimail.sandbox_profile import SANDBOX_PROFILE, find_running
from tuimail.terminal_text import escape_terminal_controls
from tuimail.transcript import Transcript
from tuimail.ui import settings, themes
from tuimail.ui.commands import TuimailCommands
from tuimail.ui.history import RunKind, SentState, SessionRun
from tuimail.ui.messages import (
    ConnectionTestRequest,
    SendRequest,
    SendStopped,
    SessionRequest,
)
from tuimail.ui.model import AppModel, profiles_stamp, read_profiles
from tuimail.ui.outside import shown
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.words import (
    NOT_SENT_NO_PASSWORD,
    SIGN_IN_BINDING_ID,
    SIGN_IN_KEY,
    sign_in_again,
    sign_in_key,
)

if TYPE_CHECKING:
    # Imported where first used: the SMTP client and the outbox for the first
    # send, the sandbox server (aiosmtpd) in the worker that starts it. The
    # first screen does not wait for them.
    from textual.theme import Theme

    from tuimail.sandbox import SandboxConfig, SessionRecord
    from tuimail.sandbox_profile import Claim
    from tuimail.session import SessionReport


_SCREENS = {
    "compose": ("compose", "ComposeScreen"),
    "transcript": ("transcript", "TranscriptScreen"),
    "accounts": ("accounts", "AccountsScreen"),
    "sandbox": ("sandbox", "SandboxScreen"),
    "monitor": ("monitor", "MonitorScreen"),
    "mailboxes": ("mailboxes", "MailboxesScreen"),
}


def _screen_class(mode: str) -> type[Screen[None]]:
    import importlib

    module, name = _SCREENS[mode]
    screen_class: type[Screen[None]] = getattr(
        importlib.import_module(f"tuimail.ui.screens.{module}"), name
    )
    return screen_class


def _lazy_screen(mode: str) -> Callable[[], Screen[None]]:
    def make() -> Screen[None]:
        return _screen_class(mode)()

    return make


def sandbox_start_problem(error: Exception) -> str:
    """Why the built-in sandbox did not start, and what the user can do, in the app's words.

    The core's error carries the host, the port and why; the command line
    adds its ``--port`` option (``tuimail serve``), the app what it offers.
    """
    from tuimail.sandbox import PortUnavailable

    if not isinstance(error, PortUnavailable):
        return f"The sandbox could not start: {error}"
    where = f"port {error.port} on {error.host}"
    if error.in_use:
        return (
            f"The sandbox could not start: {where} is already in use by another program "
            "(a mail server, or a 'tuimail serve' that did not answer). Stop that program "
            "and start tuimail again, or send through a saved profile (F4)."
        )
    return (
        f"The sandbox could not start: it may not listen on {where}, since ports below "
        "1024 need privileges. Start tuimail without that port, or send through a saved "
        "profile (F4)."
    )


class NoSecretGiven(TuimailError):
    """The user cancelled the dialog that asked for a profile's password: nothing was tried."""

    def __init__(self, kind: RunKind) -> None:
        super().__init__("no password given")
        self.kind = kind


#: What a password typed at send time is kept under: the account it was typed for. A
#: profile edited to another server or user asks again rather than send it there.
AskedFor = tuple[str, str, str, int]


def asked_for(profile: Profile) -> AskedFor:
    return (profile.name, profile.username, profile.host.lower(), profile.effective_port)


#: Seconds between looks at the profiles file (profiles added from the command line show up).
PROFILES_CHECK = 2.0
#: Seconds between looks at whether the process serving the sandbox this app uses is still there.
SANDBOX_CHECK = 2.0


class TuimailApp(App[None]):
    """The SMTP workbench."""

    # Absolute: Textual resolves a relative CSS_PATH against the file of the
    # class being run, so a subclass elsewhere (a test, a plugin) lost all styles.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "tuimail"
    COMMANDS = App.COMMANDS | {TuimailCommands}
    MODES: ClassVar[dict[str, str | Callable[[], Screen[None]]]] = {
        "compose": ComposeScreen,
        # The others are imported when first shown: start-up pays for Compose only.
        **{
            mode: _lazy_screen(mode)
            for mode in ("transcript", "accounts", "sandbox", "monitor", "mailboxes")
        },
    }
    DEFAULT_MODE = "compose"
    #: A short terminal gives every screen the class ``-short``: dialogs lay out tighter
    #: there (app.tcss), so their fields and buttons fit at 40x12; ``-roomy`` lets a
    #: dialog show more before it scrolls.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (20, "-tall"), (32, "-roomy")]
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
        # Offered (and shown in the footer) only while a profile waits for its OAuth
        # sign-in again (check_action): the one key from the notice to the Sign in button.
        Binding(SIGN_IN_KEY, "sign_in", "Sign in again", id=SIGN_IN_BINDING_ID, priority=True),
    ]

    def __init__(
        self,
        *,
        profile: str | None = None,
        start_sandbox: bool = True,
        sandbox_config: SandboxConfig | None = None,
        initial_draft: Draft | None = None,
    ) -> None:
        """``initial_draft``: a message to open in Compose at start (``tuimail compose``,
        a ``mailto:`` link), instead of the draft left open last time."""
        self._initial_draft = initial_draft
        # Read before the event loop runs (the first screen shows them): once it
        # runs, files are read and written in threads only.
        loaded = read_profiles()
        config = user_config.load_config()
        self._themes = themes.read_all()
        self._state = settings.load_state()
        self._start_sandbox = start_sandbox
        self._sandbox_config = sandbox_config
        #: Held while this app serves the data dir's built-in sandbox.
        self._sandbox_claim: Claim | None = None
        #: One look at who serves the sandbox at a time (the timer, a send).
        self._sandbox_lock = asyncio.Lock()
        #: The app is stopping: a sandbox that finishes starting now is stopped again.
        self._stopping = False
        super().__init__()
        #: Everything the screens read; they subscribe to its signals.
        self.model = AppModel(self, loaded, config, initial_profile=profile)
        self.theme_problems: list[str] = []
        #: ``[keymap]`` as installed: the entries config.toml holds that passed the checks.
        self.keymap: dict[str, str] = {}
        #: Passwords typed at send time for profiles that keep none ("ask at send time"):
        #: in memory for this run only, never in a file, a log or on screen.
        self._asked_secrets: dict[AskedFor, Secret] = {}
        #: The dialogs given a footer of their own (see :meth:`_footer_for_dialog`).
        self._dialogs_with_footer: weakref.WeakSet[Screen[object]] = weakref.WeakSet()
        #: The profile whose OAuth sign-in a run found missing or revoked, until it signs
        #: in again (or a run through it succeeds): what the sign-in key opens.
        self.sign_in_waiting: str | None = None
        #: While its account dialog is open from the sign-in key: the profile, and a
        #: digest of the refresh token it had then (:meth:`_stored_sign_in`).
        self._sign_in_before: tuple[str, str | None] | None = None

    def tell(
        self,
        text: object,
        *,
        title: str = "",
        severity: SeverityLevel = "error",
        timeout: float | None = None,
    ) -> None:
        """A notification quoting outside text (file names, TOML errors, server replies).

        Escaped and never parsed as markup: such text may hold ``[`` or an ESC.
        """
        self.notify(shown(text), title=title, severity=severity, timeout=timeout, markup=False)

    # -- start-up -----------------------------------------------------------

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
        loaded = themes.register_all(self, self._themes)
        self.theme_problems = loaded.problems
        # Problems quote file names, TOML errors and "[keymap]": never markup.
        for problem in loaded.problems:
            self.tell(problem, title="Theme not loaded", severity="warning", timeout=8)
        chosen = self._state.get("theme")
        if isinstance(chosen, str) and chosen in self.available_themes:
            self.theme = chosen
        elif isinstance(chosen, str):
            self.tell(
                f"The theme {chosen!r} chosen last time is not available; using the default.",
                title="Theme",
                severity="warning",
                timeout=8,
            )
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.screen_change_signal.subscribe(self, self._footer_for_dialog)
        self.screen_change_signal.subscribe(self, self._look_for_new_sign_in)
        model = self.model
        self.keymap, problems = settings.apply_keymap(
            self, model.config.tables, self.binding_scopes
        )
        for problem in problems:
            self.tell(problem, title="Keymap", severity="warning", timeout=12)
        if model.profile_problem:
            self.tell(model.profile_problem, title="Profiles not loaded", timeout=10)
        self._check_outbox_config()
        model.session_requested.subscribe(self, self._run_request, immediate=True)
        self.set_interval(60, self.flush_due)
        self.set_interval(PROFILES_CHECK, self.check_profiles)
        if self._start_sandbox:
            self.set_interval(SANDBOX_CHECK, self.check_sandbox)
        if self._initial_draft is not None:
            self.call_after_refresh(self._open_initial_draft, self._initial_draft)
        else:
            self.reopen_draft()

    def _footer_for_dialog(self, screen: Screen[object]) -> None:
        """A dialog shows its own keys at the foot of the terminal.

        Without a footer of its own, the screen's footer under it stays in
        view and lists that screen's keys (``a Add``, ``^s Send``), which do
        nothing while the dialog is up. The command palette has its own
        help, and is left as Textual draws it.
        """
        from textual.screen import ModalScreen, SystemModalScreen
        from textual.widgets import Footer

        if not isinstance(screen, ModalScreen) or isinstance(screen, SystemModalScreen):
            return
        if screen in self._dialogs_with_footer:
            return
        self._dialogs_with_footer.add(screen)
        screen.mount(Footer())

    def _check_outbox_config(self) -> None:
        """An unreadable config.toml or a bad ``[outbox]`` is said at once, in the command
        line's words (sends through the outbox are refused)."""
        config = self.model.config
        if not config.problem and "outbox" not in config.tables:
            # The defaults: nothing to say, and no import of the outbox before the
            # first screen (it brings the SMTP client, tuimail/session.py).
            return
        try:
            user_config.retry_policy(self.model.config)
        except user_config.ConfigError as exc:
            self.tell(
                f"{exc}. Sends through the outbox are refused until it is fixed.",
                title="config.toml",
                timeout=15,
            )

    async def _bring_up_sandbox(self, gone: str = "") -> None:
        """Serve the built-in sandbox, or use the one another process serves.

        It is one per data dir (see :func:`~tuimail.sandbox_profile.claim_or_find`):
        a running one ('tuimail serve', another app, a 'tuimail send') is
        used; else this app takes the claim and serves it. ``gone`` says whose
        sandbox stopped, when this app takes over serving it.
        """
        from tuimail.sandbox_profile import RunningSandbox, SandboxBusy, claim_or_find

        if self._sandbox_config is not None:
            # A config given by whoever built the app: a sandbox of its own, used as given.
            running = await asyncio.to_thread(find_running)
            if running is not None:
                note = (
                    f"Using the running 'tuimail serve' at {running.address}; "
                    "its terminal shows what it receives."
                )
                self.model.set_sandbox(None, running, note)
                return
            await self._start_sandbox_here(None, "")
            return
        try:
            found = await asyncio.to_thread(claim_or_find)
        except (SandboxBusy, OSError) as exc:
            self.model.sandbox_note = f"The sandbox could not start: {exc}"
            self.tell(self.model.sandbox_note)
            self.model.sandbox_changed.publish(None)
            return
        if isinstance(found, RunningSandbox):
            note = f"Served by {found.server_words}; F5 lists what its Maildir holds."
            self.model.set_sandbox(None, found.profile(), note, running=found)
            return
        await self._start_sandbox_here(found, gone)

    async def _start_sandbox_here(self, claim: Claim | None, gone: str) -> None:
        """Start the sandbox on this app's loop (``claim``: as the data dir's built-in one)."""
        from dataclasses import replace

        from tuimail.faults import FaultPlan
        from tuimail.sandbox import Sandbox, SandboxConfig, SandboxError, announce
        from tuimail.sandbox.builtin import settings_of, start_builtin
        from tuimail.sandbox.config import chaos_from_table

        # A fixed port (config.toml's [sandbox] port, else 2525) so an
        # application under test can be pointed at it; a taken one falls back
        # to any free port, and the note says so here and on F5. A config
        # given by whoever built the app is used as given, port and all.
        config = self._sandbox_config or SandboxConfig()
        port, problem = config.port, ""
        chaos: dict[str, Any] = {}
        if self._sandbox_config is None:
            port, problem = user_config.sandbox_port(self.model.config)
            # The throttle, recipient limit and accept probability of [sandbox].
            chaos, problems = chaos_from_table(self.model.config.tables.get("sandbox", {}))
            problem = "; ".join(p for p in (problem, *problems) if p)
        if problem:
            self.tell(problem, title="config.toml", severity="warning", timeout=15)
        accept = float(chaos.pop("accept_probability", 1.0))

        def make(port: int) -> Sandbox:
            return Sandbox(
                replace(config, port=port, **chaos),
                faults=FaultPlan(accept_probability=accept),
                on_session_end=self._sandbox_session_ended,
            )

        try:
            if self._sandbox_config is None:
                sandbox, note = await start_builtin(port, make)
            else:
                sandbox, note = make(port), ""
                await sandbox.start()
        except SandboxError as exc:
            if claim is not None:
                await asyncio.to_thread(claim.release)
            self.model.sandbox_note = sandbox_start_problem(exc)
            self.tell(self.model.sandbox_note)
            self.model.set_sandbox(None, None, self.model.sandbox_note)
            return
        if self._stopping:  # the app quit while it started: nobody would stop it
            await sandbox.stop(grace=0)
            if claim is not None:
                await asyncio.to_thread(claim.release)
            return
        if claim is not None:
            settings = settings_of(sandbox.config, sandbox.faults)
            claim.port = sandbox.port
            self._sandbox_claim = claim
            try:
                await asyncio.to_thread(announce, sandbox, "app", settings)
            except OSError as exc:
                unfound = f"other tuimail processes cannot find it ({exc.strerror or exc})"
                note = f"{note}; {unfound}" if note else unfound
        if note:
            self.tell(f"The sandbox: {note}.", title="Sandbox", severity="warning", timeout=15)
        if gone:
            took_over = (
                f"{gone} stopped serving the sandbox; this app serves it now "
                f"on {sandbox.client_profile().address}"
            )
            self.tell(f"{took_over}.", title="Sandbox", severity="information", timeout=10)
            note = f"{took_over}. {note}" if note else took_over
        self.model.set_sandbox(sandbox, sandbox.client_profile(), note)

    @work(group="sandbox-check", exit_on_error=False)
    async def check_sandbox(self) -> None:
        """Every :data:`SANDBOX_CHECK` s: is the sandbox this app uses still served?

        When the process serving it has gone (an app that quit, a send that
        ended), this app takes over serving it, with a note; when another
        took over meanwhile, the app follows it to its port. A check still
        at work makes the next one step aside rather than cancelling it
        (an exclusive worker would): a take-over cut off halfway could hold
        the sandbox's lock without serving it.
        """
        if self._sandbox_lock.locked():
            return
        await self.sandbox_in_use()

    async def sandbox_in_use(self) -> Profile | None:
        """The built-in sandbox's profile now, after taking over serving it if its server went."""
        from tuimail.sandbox_profile import running_sandbox

        model = self.model
        using = model.sandbox_running
        if model.sandbox is not None or using is None or self._sandbox_config is not None:
            return model.sandbox_profile
        async with self._sandbox_lock:
            using = model.sandbox_running
            if model.sandbox is not None or using is None:
                return model.sandbox_profile
            found = await asyncio.to_thread(running_sandbox)
            if found is None:
                await self._bring_up_sandbox(gone=using.server_words)
            elif (found.pid, found.port) != (using.pid, using.port):
                note = f"Served by {found.server_words}; F5 lists what its Maildir holds."
                model.set_sandbox(None, found.profile(), note, running=found)
        return model.sandbox_profile

    async def on_unmount(self) -> None:
        """Stop the sandbox, and let the last draft and settings writes land first; the
        pages of captured mail written for the browser go with them (older than a
        minute: one just opened may still be loading; tuimail/inbox/browser.py)."""
        from tuimail.inbox.browser import prune_browser_pages

        self._stopping = True
        self.model.saves.submit(prune_browser_pages)
        await self.model.saves.finish()
        self.model.saves.close()
        if self.model.sandbox is not None:
            claim, self._sandbox_claim = self._sandbox_claim, None
            if claim is not None:
                from tuimail.sandbox import withdraw

                await asyncio.to_thread(withdraw)  # nobody new finds it while it stops
            await self.model.sandbox.stop(grace=2)
            if claim is not None:
                await asyncio.to_thread(claim.release)  # the next user serves it

    def _remember_theme(self, theme: Theme) -> None:
        """Remember the theme for the next start (in the writing thread: the latest wins)."""
        self.model.saves.submit(lambda: settings.save_state({"theme": theme.name}))

    def _sandbox_session_ended(self, record: SessionRecord) -> None:
        self.model.sandbox_session_ended.publish(record)

    # -- profiles changed outside the app -----------------------------------

    def on_app_focus(self, event: events.AppFocus) -> None:
        """Back from another window (perhaps 'tuimail accounts add'): look at the file."""
        self.check_profiles()

    @work(thread=True, exclusive=True, group="profiles", exit_on_error=False)
    def check_profiles(self) -> None:
        """Read the profiles file again if it changed since it was read (in a thread).

        Called on focus and every :data:`PROFILES_CHECK` seconds, so a profile
        added or edited from the command line shows up in a running app, also
        in a terminal that does not report focus.
        """
        if profiles_stamp() == self.model.profiles_file:
            return
        loaded = read_profiles()
        self.call_from_thread(self.model.set_profiles, loaded)

    # -- the draft left open last time ----------------------------------------

    @work(thread=True, exclusive=True, group="drafts", exit_on_error=False)
    def reopen_draft(self) -> None:
        """Read the draft Compose held when the app last stopped (in a thread), and
        continue it there: quitting mid-message must not hide it away in F7. Then the
        parts of .eml files no draft uses any more are removed (tuimail/eml.py)."""
        from tuimail.eml import prune_opened

        saved = DraftStore().latest()
        if saved is not None:
            self.call_from_thread(self._reopen, saved)
        prune_opened()

    def _open_initial_draft(self, draft: Draft) -> None:
        """The message the command line began, in Compose; From is the profile's unless given.

        The draft left open last time stays in F7's list."""
        profile = self.model.all_profiles().get(self.model.initial_profile)
        if not draft.from_address and profile is not None and profile.from_address:
            draft.from_address = mailbox_text(profile.display_name, profile.from_address)
        saved = SavedDraft(DraftStore.new_id(), self.model.initial_profile, draft)
        self.model.open_draft(
            saved, "Opened from the command line; nothing is sent until you send it"
        )

    def _reopen(self, saved: SavedDraft) -> None:
        if self.model.compose_locked:
            return  # cannot happen this early; a message on its way keeps its form
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(saved.saved))
        note = f"Reopened your draft from {when}; F7 lists all drafts"
        self.model.open_draft(saved, note, unasked=True)

    # -- SMTP work ------------------------------------------------------------

    def _run_request(self, request: SessionRequest) -> None:
        """A screen asked the model for a session (the model set the busy flag)."""
        if isinstance(request, SendRequest):
            self.run_session(RunKind.SEND, request.profile, request.draft)
        elif isinstance(request, ConnectionTestRequest):
            self.run_session(RunKind.TEST, request.profile, None)
        else:
            self.run_retry(request.key)

    @work(exclusive=True, group="smtp", exit_on_error=False)
    async def run_retry(self, key: str) -> SessionReport:
        """Send one outbox message now (a failed one too: the user asked)."""
        from tuimail.session import SessionReport

        outbox = self.model.outbox
        waiting = await asyncio.to_thread(outbox.get, key)
        saved = self.model.saved_profiles.get(waiting.profile_name)
        if waiting.follows_profile and saved is not None and saved.ask_at_send:
            # Asked before the message is made due again: Escape leaves it as it was.
            await self._asked_secret(saved, RunKind.RETRY)
        queued = await asyncio.to_thread(outbox.requeue, key)
        profile = Profile.from_toml_table(
            queued.profile_name, {k: v for k, v in queued.profile.items() if k != "name"}
        )
        # Only a message queued through a saved profile may use that profile's
        # stored password (a --server one never borrows one); the outbox asks
        # for it, in a thread, when the attempt starts and reads the profile.
        run = SessionRun(
            RunKind.RETRY,
            profile.name,
            ", ".join(queued.recipients),
            Transcript(title=f"retry {key}"),
        )
        run.outbox_key = key
        self.model.begin(run)
        outcome = await outbox.attempt(
            key,
            passwords=self._stored_secret,
            on_entry=self.model.live_feed(run),
            transcript=run.transcript,
        )
        self._forget_if_refused(profile, outcome.report)
        run.outbox_state = SentState.of(outcome.result)
        self._tell_if_sign_in_needed(profile.name, outcome.report, queued=True)
        run.report = outcome.report or SessionReport(run.transcript)
        self.model.finish(run)
        return run.report

    @work(exclusive=True, group="outbox-flush", exit_on_error=False)
    async def flush_due(self) -> None:
        """Every minute: send what is due in the outbox, as 'tuimail outbox flush' would."""
        if self.model.busy:
            return
        import time

        from tuimail.outbox import Result

        try:
            outbox = self.model.outbox
        except user_config.ConfigError:
            return  # said at start-up; nothing is sent on a schedule the user did not ask for
        due = [q for q in await asyncio.to_thread(outbox.entries) if q.due(time.time())]
        if not due:
            return
        saved = set(self.model.saved_profiles)

        # The outbox asks for a password only for a message that follows a
        # saved profile, when its attempt starts, and in a thread.
        def password(profile: Profile) -> Secret | None:
            if profile.name not in saved:
                return None
            # A profile that asks: the password typed in this run, if any (the timer
            # asks nobody; F7's retry asks when there is none).
            return self._stored_secret(profile)

        outcomes = await outbox.flush(password)
        sent = sum(1 for o in outcomes if o.result is Result.SENT)
        if sent:
            self.notify(f"Sent {sent} queued message(s) from the outbox.", title="Outbox")
        told: set[str] = set()
        for outcome in outcomes:
            waits_for = outcome.report.failure if outcome.report is not None else None
            if waits_for is not None and waits_for.needs_sign_in:
                name = next((q.profile_name for q in due if q.key == outcome.key), "")
                if name and name not in told:
                    told.add(name)
                    self._tell_if_sign_in_needed(name, outcome.report, queued=True)
            if outcome.result in (Result.FAILED, Result.POSSIBLY_DELIVERED):
                what = (
                    "may have been delivered" if outcome.result is not Result.FAILED else "failed"
                )
                self.tell(
                    f"A queued message {what}: {outcome.detail} (F7 to retry or delete)",
                    title="Outbox",
                    timeout=15,
                )
        self.model.mailboxes_changed.publish(None)

    async def action_quit(self) -> None:
        """Save the draft being written, then leave (the timer may not have fired yet)."""
        self.model.closing.publish(None)
        self.exit()

    @work(exclusive=True, group="smtp", exit_on_error=False)
    async def run_session(
        self, kind: RunKind, profile: Profile, draft: Draft | None
    ) -> SessionReport:
        """Build (off the loop), fetch the password (off the loop), then talk SMTP."""
        from tuimail.outbox import OutboxError
        from tuimail.protection import protected
        from tuimail.session import SessionReport, check_account, send

        model = self.model
        if model.is_builtin_sandbox(profile) and model.sandbox_running is not None:
            # Another process served it when the screen asked: it may have gone since.
            profile = await self.sandbox_in_use() or profile
        outgoing = None
        protection_notes: list[str] = []  # e.g. opportunistic OpenPGP going unencrypted
        if draft is not None:
            outgoing = await asyncio.to_thread(build_message, draft)
            # Signing and encryption, if the profile asks, before the outbox stores it.
            outgoing = await self._protected(
                functools.partial(protected, notes=protection_notes), profile, outgoing
            )
        password = await self._password_for(profile)
        if password is None and profile.ask_at_send and not model.is_builtin_sandbox(profile):
            password = await self._asked_secret(profile, kind)
        summary = ", ".join(outgoing.envelope_recipients) if outgoing else profile.address
        run = SessionRun(kind, profile.name, summary, Transcript(title=f"{kind} {profile.name}"))
        model.begin(run)
        deliver_live = model.live_feed(run)
        for note in dict.fromkeys(protection_notes):  # said once, though asked again
            from tuimail.transcript import EventKind

            run.transcript.event(EventKind.INFO, note)

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
        elif outgoing is not None and model.uses_outbox(profile):
            try:
                outbox = model.outbox
                queued = await asyncio.to_thread(outbox.enqueue, profile, outgoing)
            except (OutboxError, user_config.ConfigError):
                run.report = SessionReport(run.transcript)
                run.outbox_state = SentState.NOT_STORED
                model.finish(run)
                raise
            run.outbox_key = queued.key
            try:
                outcome = await outbox.attempt(
                    queued.key,
                    password,
                    on_entry=deliver_live,
                    transcript=run.transcript,
                    outgoing=outgoing,
                )
            except Exception:
                await self._after_broken_attempt(queued.key)
                raise
            run.outbox_state = await self._one_home(
                queued.key, SentState.of(outcome.result), outcome.report
            )
            report = outcome.report or SessionReport(run.transcript)
        elif outgoing is not None:
            report = await send(
                profile, outgoing, password, on_entry=deliver_live, transcript=run.transcript
            )
            if report.delivery is not None:  # the sandbox took it: Sent shows it (F7)
                try:
                    run.outbox_key = await model.record_sandbox_send(outgoing, run.transcript)
                except (OutboxError, user_config.ConfigError) as exc:
                    self.tell(str(exc), title="Sent", severity="warning", timeout=12)
        else:
            report = await check_account(
                profile, password, on_entry=deliver_live, transcript=run.transcript
            )
        self._forget_if_refused(profile, report)
        self._tell_if_sign_in_needed(
            profile.name, report, queued=run.outbox_state is SentState.QUEUED
        )
        run.report = report
        model.finish(run)
        return report

    def _tell_if_sign_in_needed(
        self, profile_name: str, report: SessionReport | None, *, queued: bool
    ) -> None:
        """The profile's OAuth sign-in is missing or revoked: remember it (the sign-in key
        opens its account dialog) and say which key, not the command line's command.

        A run through the waiting profile that succeeds shows the sign-in is back.
        """
        failure = report.failure if report is not None else None
        if report is not None and failure is None and self.sign_in_waiting == profile_name:
            self._sign_in_done()
        if failure is not None and failure.needs_sign_in:
            self.sign_in_waiting = profile_name
            self.refresh_bindings()
            self.notify(
                sign_in_again(profile_name, sign_in_key(self.keymap), queued=queued),
                title="Sign in again",
                severity="warning",
                timeout=30,
                markup=False,
            )

    async def _one_home(
        self, key: str, state: SentState, report: SessionReport | None
    ) -> SentState:
        """A message Compose sent that failed for good goes back to Compose, not the outbox.

        Compose keeps the draft after such a failure, so the user can fix it;
        a copy left in the outbox too would be sent again by a retry there,
        and the fixed draft once more by Send. Returns the run's outbox state:
        RETURNED when the outbox copy is gone. A message some server accepted
        (``report.delivery``) stays where the outbox put it.
        """
        from tuimail.outbox import MessageNotFound, OutboxError

        if state is SentState.SKIPPED:
            # Not tried by this send: another process (or the flush timer) holds
            # the message. It is the outbox's now; Compose lets go of its copy.
            return SentState.QUEUED
        if state is not SentState.FAILED or (report is not None and report.delivery is not None):
            return state
        try:
            await asyncio.to_thread(self.model.outbox.drop, key)
        except (MessageNotFound, OSError, OutboxError):
            return state  # still in the outbox: Compose clears, the outbox is its home
        return SentState.RETURNED

    async def _after_broken_attempt(self, key: str) -> None:
        """The attempt itself raised: give the message one home.

        Compose keeps the draft and says why the session stopped. If the
        outbox copy was never tried, it goes (or the flush timer would send
        it beside the draft). If it was, the server may have it: the outbox
        copy is its home, shown on F7, and Compose's copy goes instead.
        """
        from tuimail.outbox import MessageNotFound, OutboxError, State

        outbox = self.model.outbox
        try:
            entry = await asyncio.to_thread(outbox.get, key)
            untried = entry.state is State.QUEUED and not entry.attempts
            if untried:
                await asyncio.to_thread(outbox.drop, key)
                return
        except (MessageNotFound, OSError, OutboxError):
            return  # gone, or unreadable: the draft in Compose is what is left
        self.model.send_stopped.publish(SendStopped(kept_in_outbox=True))
        self.notify(
            "The session stopped after the message was tried; it is kept in the outbox (F7).",
            title="Outbox",
            severity="warning",
            timeout=12,
        )

    async def _password_for(self, profile: Profile) -> Secret | None:
        """The keyring's password for ``profile``, or the one typed in this run if it asks.

        None for a profile whose secret comes from a command, whatever the
        keyring holds: the session runs the command (a password left in the
        keyring from before must not win over it).
        """
        if not profile.username or profile.name == SANDBOX_PROFILE:
            return None
        if not profile.secret_in_keyring:
            return self._asked_secrets.get(asked_for(profile)) if profile.ask_at_send else None
        try:
            return await asyncio.to_thread(CredentialStore().get, profile.name)
        except KeyringError as exc:
            self.tell(f"{exc.message}. {exc.fix}", title="Keyring", timeout=12)
            raise

    def _stored_secret(self, profile: Profile) -> Secret | None:
        """The outbox's password for a message following ``profile`` (called in a thread):
        the keyring's, or the one typed in this run for a profile that asks."""
        if profile.ask_at_send:
            return self._asked_secrets.get(asked_for(profile))
        if not profile.secret_in_keyring:
            return None
        return CredentialStore().get(profile.name)

    async def _asked_secret(self, profile: Profile, kind: RunKind) -> Secret:
        """The password typed in this run for ``profile``, asked for in a masked dialog
        when there is none yet. Raises :class:`NoSecretGiven` when cancelled."""
        remembered = self._asked_secrets.get(asked_for(profile))
        if remembered is not None:
            return remembered
        from tuimail.ui.screens.dialogs import SecretDialog

        confirm = "Test" if kind is RunKind.TEST else "Send"
        secret = await self.push_screen(SecretDialog(profile, confirm), wait_for_dismiss=True)
        if secret is None:
            raise NoSecretGiven(kind)
        self._asked_secrets[asked_for(profile)] = secret
        return secret

    async def _protected(
        self, protect: Callable[..., OutgoingMessage], profile: Profile, built: OutgoingMessage
    ) -> OutgoingMessage:
        """``protect`` in a thread; a locked OpenPGP key's passphrase asked for, masked.

        gpg runs with loopback pinentry (tuimail/pgp_mime.py), so it never
        draws on the terminal; the passphrase goes to gpg's stdin for this
        message only. Cancelling stops the send with gpg's reason.
        """
        from tuimail.pgp_mime import PassphraseNeeded
        from tuimail.ui.widgets.pgp_controls import PassphraseDialog

        passphrase: str | None = None
        while True:
            try:
                return await asyncio.to_thread(protect, profile, built, passphrase)
            except PassphraseNeeded as exc:
                dialog = PassphraseDialog(f"{exc}. Its passphrase:")
                passphrase = await self.push_screen(dialog, wait_for_dismiss=True)
                if passphrase is None:
                    raise

    def _forget_if_refused(self, profile: Profile, report: SessionReport | None) -> None:
        """A typed password the server refused is not offered again: the next send asks."""
        from tuimail.stages import Stage

        failure = report.failure if report is not None else None
        if failure is not None and failure.stage is Stage.AUTH:
            self._asked_secrets.pop(asked_for(profile), None)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "smtp":
            return
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self.model.busy = False
        if event.state is WorkerState.ERROR:
            self._session_failed(event.worker.error)

    def _session_failed(self, error: BaseException | None) -> None:
        """A session's worker raised: say why, once, and let Compose unlock its form."""
        from tuimail.outbox import OutboxError

        explained = (
            DraftInvalid,
            KeyringError,
            OutboxError,
            user_config.ConfigError,
            NoSecretGiven,
        )
        if not isinstance(error, explained):
            self.tell(f"The session stopped: {error}", timeout=10)
        if isinstance(error, NoSecretGiven):
            if error.kind is RunKind.SEND:
                stopped = SendStopped(NOT_SENT_NO_PASSWORD)
            else:
                stopped = SendStopped()
                what = "Not tested" if error.kind is RunKind.TEST else "Not sent"
                self.notify(f"{what}: no password given.", severity="warning")
        elif isinstance(error, DraftInvalid):
            errors = tuple((e.field, e.message) for e in error.errors)
            stopped = SendStopped(field_errors=errors)
        elif isinstance(error, KeyringError):
            stopped = SendStopped(f"keyring: {error.message}")
        elif isinstance(error, (OutboxError, user_config.ConfigError)):
            stopped = SendStopped(f"✗ {error} Your draft is kept.")
        else:
            # Not left at "sending via …" for ever.
            stopped = SendStopped(f"✗ the session stopped: {error}")
        self.model.send_stopped.publish(stopped)

    @property
    def is_idle(self) -> bool:
        """Nothing waits to be shown: no live announcement due, every live view up to date,
        no message queued on the app, a live view or its screen (tests wait for this)."""
        model = self.model
        if model.live_backlog or self.message_queue_size:
            return False
        return not any(
            view.backlog or view.message_queue_size or view.screen.message_queue_size
            for view in model.live_views
        )

    # -- actions --------------------------------------------------------------

    def action_help(self) -> None:
        """F1 opens the help; on the help screen it closes it (no help on help)."""
        from tuimail.ui.screens.dialogs import HelpScreen  # dialogs: when first opened

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HelpScreen(self.key_table()))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The sign-in key is there (in the footer too) only while a profile waits for its
        sign-in, and not over a dialog (it would open a second one); the command palette
        offers it too (:mod:`tuimail.ui.commands` asks here)."""
        if action == "sign_in":
            from textual.screen import ModalScreen, SystemModalScreen

            screen = self.screen
            over_dialog = isinstance(screen, ModalScreen) and not isinstance(
                screen, SystemModalScreen
            )
            return self.sign_in_waiting is not None and not over_dialog
        return True

    async def action_sign_in(self) -> None:
        """Open the account dialog of the profile waiting for a sign-in, as F4 then e does,
        with its Sign in button focused; a new sign-in stored there ends the wait."""
        from textual.widgets import Button

        from tuimail.ui.screens.accounts import AccountsScreen
        from tuimail.ui.screens.dialogs import AccountDialog

        name = self.sign_in_waiting
        if name is None or not self.check_action("sign_in", ()):
            return
        if name not in self.model.saved_profiles:
            self._sign_in_done()
            self.notify(shown(f"{name} is no longer a saved profile."), markup=False)
            return
        before = await asyncio.to_thread(self._stored_sign_in, name)
        await self.switch_mode("accounts")
        accounts = self.screen
        if not isinstance(accounts, AccountsScreen):
            return
        accounts.reload(select=name)
        accounts.action_edit()
        dialog = self.screen
        if not isinstance(dialog, AccountDialog):
            return

        def focus_sign_in() -> None:
            buttons = dialog.query("#sign-in").results(Button)
            for button in buttons:
                button.focus()

        dialog.call_after_refresh(focus_sign_in)
        # Whether it signs in there is seen as the sign-in's dialog closes: the stored
        # refresh token is another one then (the revoked one stays until replaced).
        self._sign_in_before = (name, before)

    @staticmethod
    def _stored_sign_in(name: str) -> str | None:
        """A digest of the profile's stored refresh token (in a thread: the keyring),
        to tell a new sign-in from the revoked one without keeping the token."""
        import hashlib

        from tuimail.credentials import KeyringError
        from tuimail.oauth_account import OAuthSecrets

        try:
            token = OAuthSecrets().refresh_token(name)
        except KeyringError:
            return None
        return None if token is None else hashlib.sha256(token.reveal().encode()).hexdigest()

    def _look_for_new_sign_in(self, _screen: Screen[object]) -> None:
        """While the sign-in key's account dialog is open: has a new sign-in been stored?"""
        if self._sign_in_before is not None:
            self._check_new_sign_in(*self._sign_in_before)

    @work(exclusive=True, group="sign-in-check", exit_on_error=False)
    async def _check_new_sign_in(self, name: str, before: str | None) -> None:
        after = await asyncio.to_thread(self._stored_sign_in, name)
        if after is not None and after != before and self.sign_in_waiting == name:
            self._sign_in_done()

    def _sign_in_done(self) -> None:
        """The waiting profile has signed in again: the key goes from the footer."""
        self.sign_in_waiting = None
        self._sign_in_before = None
        self.refresh_bindings()

    def deliver_screenshot(
        self,
        filename: str | None = None,
        path: str | None = None,
        time_format: str | None = None,
    ) -> str | None:
        """The palette's Screenshot: an SVG into the data dir's ``exports/`` (or ``path``),
        written in a thread, and a notice saying where it went.

        Textual's own saves into ``~/Downloads``, which many systems lack ("Failed
        to save screenshot"), and writes on the UI loop. An existing file is never
        replaced (:func:`~tuimail.ui.screens.dialogs.write_export`).
        """
        from tuimail import paths

        when = time.strftime(time_format or "%Y-%m-%dT%H_%M_%S")
        name = filename or f"{self.title}-screenshot-{when}.svg"
        stem = name.removesuffix(".svg")
        directory = Path(path).expanduser() if path else paths.exports_dir()
        svg = self.export_screenshot().encode("utf-8")
        self._write_screenshot(directory / stem, svg)
        return None

    @work(thread=True, group="screenshot", exit_on_error=False)
    def _write_screenshot(self, target: Path, svg: bytes) -> None:
        from tuimail.ui.screens.dialogs import write_export

        try:
            written = write_export(target, [(".svg", svg)])
        except OSError as exc:
            where = exc.filename or target.parent
            self.call_from_thread(
                self.tell,
                f"The screenshot was not saved: {where}: {exc.strerror or exc}",
                title="Screenshot",
            )
            return
        self.call_from_thread(
            self.tell,
            f"Saved the screenshot to {written[0]}",
            title="Screenshot",
            severity="information",
            timeout=10,
        )

    def binding_scopes(self) -> dict[str, list[Binding]]:
        """The bindings of the app and of each screen and dialog, as ``[keymap]`` is checked
        against them (:func:`tuimail.ui.settings.check_keymap`). Imports every screen."""
        import importlib
        import inspect

        app_bindings = settings.class_bindings(type(self))
        if self.ENABLE_COMMAND_PALETTE:
            app_bindings.append(
                Binding(self.COMMAND_PALETTE_BINDING, "command_palette", "Command palette")
            )
        scopes = {settings.APP_SCOPE: app_bindings}
        modules = [module for module, _name in _SCREENS.values()] + ["dialogs"]
        for module_name in modules:
            module = importlib.import_module(f"tuimail.ui.screens.{module_name}")
            for name, member in inspect.getmembers(module, inspect.isclass):
                if issubclass(member, Screen) and member.__module__ == module.__name__:
                    scopes[name] = settings.class_bindings(member)
        return scopes

    def key_table(self) -> list[tuple[str, str]]:
        """Every binding with an id, with its key as remapped by the user's keymap."""
        keymap = self.keymap
        rows: list[tuple[str, str]] = []
        owners: list[tuple[str, list[BindingType]]] = [("", list(self.BINDINGS))]
        owners += [(mode, list(_screen_class(mode).BINDINGS)) for mode in self.MODES]
        for mode, bindings in owners:
            for binding in bindings:
                if not isinstance(binding, Binding) or not binding.id:
                    continue
                key = str(keymap.get(binding.id, binding.key))
                where = f" ({mode})" if mode else ""
                rows.append((key, f"{binding.description}{where}  [id {binding.id}]"))
        return rows


def run_app(profile: str | None = None, initial_draft: Draft | None = None) -> int:
    """Run the app; its exit status says whether it stopped on an error (1), not always 0.

    ``initial_draft`` opens in Compose (see :class:`TuimailApp`)."""
    app = TuimailApp(profile=profile, initial_draft=initial_draft)
    app.run()
    return app.return_code or 0
