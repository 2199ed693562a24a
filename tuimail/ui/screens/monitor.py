"""Monitor: every profile's server and the extra targets, probed on a schedule.

A target is a profile or an extra target (``targets.toml``), not an address:
two profiles on one server are two rows, each probed with its own settings.
The table shows each target's status, latency, certificate days and last
check; the selected target's latency history (kept, bounded, in the state dir)
is drawn one mark per probe, with its latest probe transcript below. A target that
changes state raises a notification. A mail domain's row shows its posture
(``tuimail check``'s report, tuimail/posture/), checked in a thread each round;
a change of its MTA-STS id, TLSA records or an MX certificate since the last
check (kept in the state dir) raises a notification. Probing runs in a worker, at most
``concurrency`` targets at a time. The history and ``targets.toml`` are read
and written in threads; what was read comes back as a message.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, DataTable, Footer, Input, Label, Select, Static

from tuimail.errors import NotFound
from tuimail.probe import ProbeReport, ProbeTarget, Status, Thresholds, probe_many
from tuimail.probe_history import ProbeHistory, reached
from tuimail.profiles import Security
from tuimail.targets import TargetError, TargetStore, monitor_targets, owner, split_address
from tuimail.ui.messages import ProfilesChanged
from tuimail.ui.outside import cell, shown
from tuimail.ui.screens.base import ModelScreen
from tuimail.ui.screens.dialogs import FormSelect, not_a_file, typed_path
from tuimail.ui.widgets.mode_bar import ModeBar
from tuimail.ui.widgets.transcript_view import TranscriptView
from tuimail.user_config import Config

if TYPE_CHECKING:
    from tuimail.credentials import Secret
    from tuimail.posture.report import PostureReport
    from tuimail.posture.state import Change

DEFAULT_INTERVAL = 300.0
DEFAULT_CONCURRENCY = 10
_STATUS_STYLE = {
    Status.OK: "$success",
    Status.WARNING: "$warning",
    Status.CRITICAL: "$error",
    Status.UNKNOWN: "$text-muted",
}


@dataclass
class MonitorSettings:
    """``[monitor]`` from config.toml, checked; ``problems`` says what was not used."""

    interval: float = DEFAULT_INTERVAL
    concurrency: int = DEFAULT_CONCURRENCY
    #: The ``concurrency`` config.toml holds when it was refused ("" when it was used).
    concurrency_refused: str = ""
    dns_server: str = ""  # "host" or "host:port"; "" = the system's resolver
    problems: list[str] = field(default_factory=list)


def monitor_settings(config: Config) -> MonitorSettings:
    """The monitor's settings; each bad value is named in words and its default used.

    A hand-edited ``interval = "abc"`` stopped the app when the monitor opened.
    """
    found = MonitorSettings()
    table = config.get("monitor", {})
    if not isinstance(table, dict):
        found.problems.append("[monitor] must be a table; the defaults are used")
        return found
    interval = table.get("interval", DEFAULT_INTERVAL)
    if _is_number(interval) and math.isfinite(interval) and interval >= 0:
        found.interval = float(interval)
    else:
        found.problems.append(
            f"interval = {interval!r}: a number of seconds (0: only when asked) is needed; "
            f"using {DEFAULT_INTERVAL:g}"
        )
    concurrency = table.get("concurrency", DEFAULT_CONCURRENCY)
    if isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency >= 1:
        found.concurrency = concurrency
    else:
        found.concurrency_refused = repr(concurrency)
        found.problems.append(
            f"concurrency = {concurrency!r}: a whole number from 1 is needed; "
            f"using {DEFAULT_CONCURRENCY}"
        )
    dns_server = table.get("dns_server", "")
    if _dns_server_ok(dns_server):
        found.dns_server = str(dns_server)
    else:
        found.problems.append(
            f"dns_server = {dns_server!r}: HOST or HOST:PORT is needed; using the system's"
        )
    return found


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _dns_server_ok(value: object) -> bool:
    if not isinstance(value, str):
        return False
    if not value:
        return True
    host, _, port = value.rpartition(":") if ":" in value else (value, "", "53")
    digits = port.isascii() and port.isdigit()  # "²" is a digit to isdigit(), not to int()
    return bool(host.strip()) and " " not in host and digits and 0 < int(port) < 65536


#: What the address field of the target dialog is called, an example, and the forms
#: it takes, for each kind of target.
TARGET_FORMS = {
    "server": ("Server", "mail.example.com:587", "host, host:port or [IPv6]:port"),
    "mx": (
        "Domain",
        "example.com",
        "a mail domain: each of its MX hosts is probed, on port 25 unless Port says",
    ),
}


class TargetDialog(ModalScreen[ProbeTarget | None]):
    """Add or edit an extra monitor target: one server (``host[:port]``) or a mail
    domain watched through its MX hosts, as ``targets.toml`` allows, with its own
    CA file. The dialog says which forms the address takes."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, target: ProbeTarget | None = None) -> None:
        super().__init__()
        self.target = target

    def compose(self) -> ComposeResult:
        t = self.target
        th = t.thresholds if t else Thresholds()
        kind = "mx" if t and t.mx else "server"
        with Vertical(classes="dialog wide target"):
            yield Label("Edit target" if t else "Add target", classes="title")
            with VerticalScroll(), Grid(classes="form"):
                yield Label("Name")
                yield Input(t.name if t else "", id="target-name", placeholder="relay")
                yield Label("Watch")
                yield FormSelect(
                    [("one server", "server"), ("a mail domain (its MX hosts)", "mx")],
                    value=kind,
                    allow_blank=False,
                    id="target-kind",
                )
                label, example, forms = TARGET_FORMS[kind]
                yield Label(label, id="target-host-label")
                yield Input(t.host if t else "", id="target-host", placeholder=example)
                yield Label("")
                yield Static(forms, id="target-forms", markup=False)
                yield Label("Port")
                yield Input(
                    str(t.port) if t and t.port else "", id="target-port", placeholder="default"
                )
                yield Label("Security")
                yield FormSelect(
                    [("STARTTLS (expected)", "starttls"), ("TLS", "tls"), ("none", "none")],
                    value=t.security.value if t else "starttls",
                    allow_blank=False,
                    id="target-security",
                )
                yield Label("CA file")
                yield Input(
                    t.ca_file if t else "", id="target-ca-file", placeholder="system trust store"
                )
                yield Label("Warn days")
                yield Input(str(th.warn_days), id="warn_days")
                yield Label("Crit days")
                yield Input(str(th.crit_days), id="crit_days")
                yield Label("Warn secs")
                yield Input(f"{th.warn_seconds:g}", id="warn_seconds")
                yield Label("Crit secs")
                yield Input(f"{th.crit_seconds:g}", id="crit_seconds")
            yield Label("", id="target-error", classes="error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="target-save")
                yield Button("Cancel", id="target-cancel")

    def on_mount(self) -> None:
        self.query_one("#target-name", Input).focus()

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        """Enter moves on through the form, as in the account dialog."""
        event.stop()
        self.focus_next()

    @on(Select.Changed, "#target-kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        """The address field's name and the forms it takes follow what is watched."""
        label, example, forms = TARGET_FORMS[str(event.value)]
        self.query_one("#target-host-label", Label).update(label)
        self.query_one("#target-host", Input).placeholder = example
        self.query_one("#target-forms", Static).update(forms)

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def _number(self, widget_id: str, words: str, kind: type[int] | type[float]) -> float:
        text = self._value(widget_id)
        try:
            return kind(text)
        except ValueError:
            whole = "a whole number" if kind is int else "a number"
            raise TargetError(f"{words}: {whole} is needed, not {text!r}") from None

    def _address(self, is_mx: bool) -> tuple[str, int]:
        """The host (or domain) and the port, from the address and the Port field."""
        text = self._value("target-host")
        port_text = self._value("target-port")
        if port_text and not (port_text.isascii() and port_text.isdigit()):
            raise TargetError("port: a whole number from 1 to 65535 (empty: the default)")
        port = int(port_text or 0)
        if not text:
            raise TargetError(f"{TARGET_FORMS['mx' if is_mx else 'server'][0].lower()}: needed")
        if is_mx:
            if ":" in text or "/" in text or "@" in text:
                raise TargetError(
                    f"domain: {text!r} is not a mail domain (e.g. example.com); "
                    "the MX hosts' port goes under Port"
                )
            return text.rstrip("."), port or 25
        host, given = split_address(text)
        if given and port and given != port:
            raise TargetError(f"port: {text} says {given}, Port says {port}; give it once")
        return host, given or port

    def _ca_file(self) -> str:
        """The CA file, checked as the file picker checks a path (in the command
        line's words); "" for the system's trust store."""
        if not self._value("target-ca-file"):
            return ""
        path, problem = typed_path(self._value("target-ca-file"))
        if path is None:
            raise TargetError(f"CA file: {problem}")
        problem = not_a_file(path)
        if problem:
            raise TargetError(f"CA file: {path} {problem}")
        return str(path)

    @on(Button.Pressed, "#target-save")
    def _save(self) -> None:
        error = self.query_one("#target-error", Label)
        is_mx = self.query_one("#target-kind", Select).value == "mx"
        name = self._value("target-name")
        try:
            host, port = self._address(is_mx)
            thresholds = Thresholds(
                int(self._number("warn_days", "warn days", int)),
                int(self._number("crit_days", "crit days", int)),
                self._number("warn_seconds", "warn secs", float),
                self._number("crit_seconds", "crit secs", float),
            )
            target = ProbeTarget(
                host=host,
                port=port,
                security=Security(str(self.query_one("#target-security", Select).value)),
                ca_file=self._ca_file(),
                thresholds=thresholds,
                timeout=self.target.timeout if self.target else 10.0,
                name=name,
                mx=is_mx,
                owner=owner(name),
            )
            from tuimail.targets import validate_target

            validate_target(target)
        except TargetError as exc:
            error.update(shown(exc))
            return
        self.dismiss(target)

    @on(Button.Pressed, "#target-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


#: Eighths of a cell, lowest to highest: one probe's latency against the slowest shown.
_BARS = "▁▂▃▄▅▆▇█"
#: A probe that did not reach the server: no latency to draw.
UNREACHED_MARK = "✗"


def latency_marks(samples: Sequence[float | None]) -> str:
    """One mark per probe, oldest first: a bar scaled to the slowest probe shown, or
    :data:`UNREACHED_MARK` for a probe that did not reach the server.

    Textual's Sparkline stretches its data over the whole width, so a single probe
    (or an unreachable one, whose time was drawn as a latency) filled it with one bar.
    """
    slowest = max((s for s in samples if s is not None), default=0.0)
    marks = []
    for sample in samples:
        if sample is None:
            marks.append(UNREACHED_MARK)
        elif slowest <= 0:
            marks.append(_BARS[0])
        else:
            marks.append(_BARS[min(len(_BARS) - 1, int(sample / slowest * (len(_BARS) - 1)))])
    return "".join(marks)


def latency_caption(samples: Sequence[float | None]) -> str:
    """What the marks show, in words: how many probes, the range, the newest."""
    if not samples:
        return "Latency history: no probe recorded yet"
    reached_ = [s for s in samples if s is not None]
    count = "1 probe" if len(samples) == 1 else f"last {len(samples)} probes, oldest first"
    parts = [f"Latency history: {count}"]
    if reached_:
        low, high = min(reached_), max(reached_)
        parts.append(f"{high:.3f}s" if low == high else f"{low:.3f}s to {high:.3f}s")
    missed = len(samples) - len(reached_)
    if missed:
        parts.append(f"{UNREACHED_MARK}: did not reach the server ({missed})")
    return "; ".join(parts)


class LatencyHistory(Widget):
    """The selected target's latency over its last probes, one cell per probe,
    newest on the right (the newest that fit, on a narrow screen)."""

    DEFAULT_CSS = "LatencyHistory { height: 1; padding: 0 1; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        #: Seconds per probe, oldest first; ``None``: the probe did not reach the server.
        self.samples: list[float | None] = []

    def show(self, samples: Sequence[float | None]) -> None:
        self.samples = list(samples)
        self.refresh()

    def render(self) -> Text:
        width = self.content_size.width
        samples = self.samples[-width:] if width > 0 else self.samples
        colour = self.app.theme_variables.get("error", "red")
        text = Text(no_wrap=True, overflow="crop")
        for mark in latency_marks(samples):
            text.append(mark, style=f"bold {colour}" if mark == UNREACHED_MARK else "")
        return text


class StoresRead(Message, bubble=False):
    """A worker read the extra targets (and, the first time, the probe history)."""

    def __init__(
        self,
        targets: dict[str, ProbeTarget],
        problem: str,
        history: ProbeHistory | None = None,
        probe: ProbeTarget | None = None,
    ) -> None:
        super().__init__()
        self.targets = targets
        self.problem = problem
        self.history = history
        #: A target just saved: probed once it is on screen.
        self.probe = probe


class PostureChecked(Message, bubble=False):
    """A domain's posture was checked (in a thread): the report, what changed, or why not."""

    def __init__(
        self,
        key: str,
        report: PostureReport | None,
        changes: list[Change],
        problem: str = "",
    ) -> None:
        super().__init__()
        self.key = key
        self.report = report
        self.changes = changes
        self.problem = problem


class PosturePanel(VerticalScroll):
    """The selected mail domain's posture: each item's verdict and its problems."""

    DEFAULT_CSS = "PosturePanel { height: auto; max-height: 50%; padding: 0 1; }"

    def compose(self) -> ComposeResult:
        yield Static("", id="posture-text", markup=False)

    def show(self, text: Text) -> None:
        self.query_one("#posture-text", Static).update(text)


class HistoryNotSaved(Message, bubble=False):
    """Writing the probe history (or ``what`` else) failed in the writing thread;
    ``problem`` says why."""

    def __init__(self, problem: str, what: str = "The probe history") -> None:
        super().__init__()
        self.problem = problem
        self.what = what


class MonitorScreen(ModelScreen):
    BINDINGS = [
        Binding("r", "probe_now", "Probe now", id="monitor.probe"),
        Binding("a", "add_target", "Add", id="monitor.add"),
        Binding("e", "edit_target", "Edit", id="monitor.edit"),
        Binding("d", "remove_target", "Remove", id="monitor.remove"),
    ]

    def compose(self) -> ComposeResult:
        yield ModeBar("monitor")
        with Vertical():
            yield Static("", id="monitor-status")
            yield DataTable(id="targets", cursor_type="row", zebra_stripes=True)
            yield Label(latency_caption([]), id="latency-title", classes="pane-title")
            yield LatencyHistory(id="latency")
            yield Static("", id="monitor-detail", markup=False)
            posture = PosturePanel(id="posture")
            posture.display = False  # only on a mail domain's row
            yield posture
            yield TranscriptView(id="probe-view")
        yield Footer()

    def on_mount(self) -> None:
        self.model.profiles_changed.subscribe(self, self._profiles_changed)
        settings = monitor_settings(self.model.config.tables)
        self.interval = settings.interval
        self.concurrency = settings.concurrency
        self.concurrency_refused = settings.concurrency_refused
        self.dns_server = settings.dns_server  # for MX targets; "" = system
        if settings.problems:  # once: the screen is mounted once per run
            self.notify(
                shown("; ".join(settings.problems)),
                title="config.toml [monitor]",
                severity="warning",
                timeout=12,
                markup=False,
            )
        self.history = ProbeHistory()  # until the saved one is read
        self.latest: dict[str, ProbeReport] = {}
        self.targets: list[ProbeTarget] = []
        self.base_targets: list[ProbeTarget] = []
        self._extra: dict[str, ProbeTarget] = {}
        #: Why a mail domain's MX lookup failed in the last round, and when (by its key).
        self.mx_problems: dict[str, tuple[str, float]] = {}
        #: Each mail domain's last posture check (by its key), and why one could not run.
        self.posture: dict[str, PostureReport] = {}
        self.posture_problems: dict[str, str] = {}
        self._posture_running: set[str] = set()
        self._started = False
        self._reads = 0
        table = self.query_one("#targets", DataTable)
        # A fixed width for Status: "CRITICAL" must fit whatever the first value was.
        table.add_column("Status", width=8)
        table.add_columns("Target", "Latency", "Cert days", "Last check")
        self.read_stores(with_history=True)

    # -- targets ------------------------------------------------------------

    @property
    def reading(self) -> bool:
        """The targets or the history asked for are not on screen yet."""
        return self._reads > 0

    def extra_targets(self) -> dict[str, ProbeTarget]:
        """The targets of ``targets.toml`` as last read."""
        return self._extra

    def read_stores(self, *, with_history: bool = False) -> None:
        """Read ``targets.toml`` again (and the history, the first time) in a thread."""
        self._reads += 1
        self._read_stores(with_history)

    @work(thread=True, group="monitor-stores", exit_on_error=False)
    def _read_stores(self, with_history: bool) -> None:
        history = ProbeHistory.load() if with_history else None
        try:
            targets, problem = TargetStore().load(), ""
        except TargetError as exc:
            targets, problem = {}, str(exc)
        self._tell(StoresRead(targets, problem, history))

    def _tell(self, message: Message) -> None:
        """Hand a thread's result to this screen."""
        with contextlib.suppress(RuntimeError):  # the app has stopped: nobody to tell
            self.post_message(message)

    @on(StoresRead)
    def _stores_read(self, read: StoresRead) -> None:
        self._reads -= 1
        if read.history is not None:
            self.history = read.history
        if read.problem:
            self.notify(
                shown(read.problem),
                title="targets.toml",
                severity="error",
                timeout=10,
                markup=False,
            )
        self._extra = read.targets
        self.reload_targets()
        probe = read.targets.get(read.probe.name) if read.probe is not None else None
        if probe is not None:
            self.run_probes([probe])
        if not self._started:
            self._started = True
            if self.interval > 0:  # 0: probe only when asked (r)
                self.action_probe_now()
                self.set_interval(max(self.interval, 5.0), self.action_probe_now)

    def _profiles_changed(self, change: ProfilesChanged) -> None:
        """The app's profiles changed (or the sandbox started): so did the targets."""
        self.read_stores()

    def reload_targets(self) -> None:
        model = self.model
        profiles = {name: p for name, p in model.saved_profiles.items() if name != "sandbox"}
        sandbox = model.sandbox_profile
        if sandbox is not None:
            profiles = {"sandbox": sandbox, **profiles}
        self.base_targets = monitor_targets(profiles, self.extra_targets())
        self.targets = list(self.base_targets)
        table = self.query_one("#targets", DataTable)
        table.clear()
        for target in self.targets:
            table.add_row(*self._cells(target), key=target.key)
        schedule = (
            f"probing every {self.interval:g}s" if self.interval > 0 else "probing on request"
        )
        # Text: the words quote config.toml, which is never markup.
        self.query_one("#monitor-status", Static).update(
            Text(
                shown(
                    f"{len(self.targets)} target(s); {schedule}, {self.at_once()}. "
                    "r: probe now, a: add a target."
                )
            )
        )

    def at_once(self) -> str:
        """How many targets are probed together, in words (and a refused setting, said)."""
        words = "one at a time" if self.concurrency == 1 else f"{self.concurrency} at a time"
        if self.concurrency_refused:
            words += f" (concurrency = {self.concurrency_refused} in config.toml is not used)"
        return words

    def _cells(self, target: ProbeTarget) -> list[Text | str]:
        """A target's row. Its label holds DNS answers: a Text cell, never markup."""
        label = cell(target.label)
        if target.mx:
            failed = self.mx_problems.get(target.key)
            if failed is not None:
                # No MX host to probe: mail to the domain is not delivered now. The
                # row says so itself; a toast fades, and "MX" alone looks pending.
                problem, when = failed
                return [
                    Text(Status.CRITICAL.name, style=self._status_style(Status.CRITICAL)),
                    label,
                    "—",
                    "—",
                    cell(f"{time.strftime('%H:%M:%S', time.localtime(when))} {problem}"),
                ]
            return [Text("MX"), label, "—", "—", cell(f"each MX host of {target.host} below")]
        report = self.latest.get(target.key)
        if report is None:
            records = self.history.records(target)
            if records:
                last = records[-1]
                status = str(last.get("status", "UNKNOWN"))
                return [
                    cell(status),
                    label,
                    f"{float(last.get('total', 0)):.3f}s" if reached(last) else "—",
                    str(last.get("days_left") if last.get("days_left") is not None else "—"),
                    time.strftime("%H:%M:%S", time.localtime(float(last.get("started", 0)))),
                ]
            return [Text("…"), label, "—", "—", "never"]
        days = report.tls.days_left if report.tls else None
        return [
            Text(report.status.name, style=self._status_style(report.status)),
            label,
            f"{report.total:.3f}s" if report.reached else "—",
            str(days) if days is not None else "—",
            time.strftime("%H:%M:%S", time.localtime(report.started)),
        ]

    # -- probing ------------------------------------------------------------

    def action_probe_now(self) -> None:
        if self.base_targets:
            self.run_probes(list(self.base_targets))

    @work(exclusive=True, group="monitor", exit_on_error=False)
    async def run_probes(self, targets: list[ProbeTarget]) -> None:
        for target in targets:
            if target.mx and target.key not in self._posture_running:
                self._posture_running.add(target.key)
                self._check_posture(target, self._dns_servers())
        targets = await self._expand(targets)
        passwords: dict[str, Secret] = {}
        previous = {t.key: caps for t in targets if (caps := self.history.last_capabilities(t))}
        await probe_many(
            targets,
            concurrency=self.concurrency,
            passwords=passwords,
            previous=previous,
            on_report=self._record,
        )
        # A copy is written (in the app's writing thread): the next round adds to this one.
        kept = ProbeHistory(
            self.history.path, {k: list(v) for k, v in self.history.targets.items()}
        )
        self.model.saves.submit(kept.save).add_done_callback(self._history_saved)

    def _history_saved(self, done: Future[None]) -> None:
        """In the writing thread: a failure goes back to the screen as a message."""
        exc = done.exception()
        if exc is not None:
            self._tell(HistoryNotSaved(str(exc)))

    @on(HistoryNotSaved)
    def _history_not_saved(self, failed: HistoryNotSaved) -> None:
        self.notify(
            shown(f"{failed.what} was not saved: {failed.problem}"),
            severity="warning",
            markup=False,
        )

    async def _expand(self, targets: list[ProbeTarget]) -> list[ProbeTarget]:
        """MX targets become one row per MX host (looked up again every round).

        The hosts and their addresses are asked of the monitor's DNS servers
        (:meth:`_dns_servers`) through dnspython; each host is probed at its
        address with its name for TLS. A host without an address is CRITICAL
        at once, saying why, and not probed.
        """
        from tuimail.mx import MXLookupError
        from tuimail.targets import mx_host_targets, unprobed

        servers = self._dns_servers()
        expanded: list[ProbeTarget] = []
        unresolved: list[ProbeReport] = []
        for target in targets:
            if not target.mx:
                expanded.append(target)
                continue
            if isinstance(servers, str):
                self._mx_looked_up(target, f"MX lookup failed: {servers}")
                continue
            try:
                rows = await mx_host_targets(target, servers)
            except MXLookupError as exc:
                self._mx_looked_up(target, f"MX lookup failed: {exc}")
                continue
            self._mx_looked_up(target, "")
            expanded.extend(row.target for row in rows if not row.problem)
            unresolved.extend(unprobed(row) for row in rows if row.problem)
        table = self.query_one("#targets", DataTable)
        for target in [*expanded, *(report.target for report in unresolved)]:
            if target.key not in table.rows:
                table.add_row(*self._cells(target), key=target.key)
                self.targets.append(target)
        for report in unresolved:
            self._record(report)
        return expanded

    # -- a mail domain's posture ------------------------------------------------

    def _dns_servers(self) -> tuple[str, ...] | str:
        """The resolvers for a mail domain's MX hosts and its posture check: the monitor's
        ``dns_server``, else config.toml's ``[dns] servers``, else the system's (empty);
        a string says why none can be used."""
        from tuimail.user_config import ConfigError, dns_servers

        if self.dns_server:
            return (self.dns_server,)
        try:
            return tuple(dns_servers(self.model.config))
        except ConfigError as exc:
            return str(exc)

    @work(thread=True, group="posture", exit_on_error=False)
    def _check_posture(self, target: ProbeTarget, servers: tuple[str, ...] | str) -> None:
        """``tuimail check`` of the domain, in its own thread and event loop; the
        previous fingerprint read and the new one compared there, off the UI loop."""
        import asyncio

        from tuimail.posture import state
        from tuimail.posture.check import CheckOptions, check_domain

        try:
            if isinstance(servers, str):
                self._tell(PostureChecked(target.key, None, [], servers))
                return
            options = CheckOptions(
                dns_servers=servers,
                mx_port=target.port or 25,
                ca_file=target.ca_file,
                timeout=target.timeout,
                thresholds=target.thresholds,
                ehlo_name=target.ehlo_name,
                concurrency=self.concurrency,
            )
            report = asyncio.run(check_domain(target.host, options))
            before = state.load(report.domain)
            fingerprint = report.fingerprint()
            found = state.changes(before, fingerprint)
            # What this round could not see stays as last seen, to compare next time.
            fingerprint = state.merged(before, fingerprint)
        except Exception as exc:  # a resolver that is not an address, or a bug: said, not raised
            self._tell(PostureChecked(target.key, None, [], f"{type(exc).__name__}: {exc}"))
            return
        saved = self.model.saves.submit(state.save, report.domain, fingerprint)
        saved.add_done_callback(self._posture_saved)
        self._tell(PostureChecked(target.key, report, found))

    def _posture_saved(self, done: Future[None]) -> None:
        """In the writing thread: a failure is said (the next check cannot compare)."""
        exc = done.exception()
        if exc is not None:
            self._tell(HistoryNotSaved(str(exc), "The posture kept to notice changes"))

    @on(PostureChecked)
    def _posture_checked(self, checked: PostureChecked) -> None:
        self._posture_running.discard(checked.key)
        target = next((t for t in self.base_targets if t.key == checked.key), None)
        label = target.label if target is not None else checked.key
        if checked.report is None:
            self.posture_problems[checked.key] = checked.problem
        else:
            self.posture_problems.pop(checked.key, None)
            self.posture[checked.key] = checked.report
        for change in checked.changes:
            self.notify(
                shown(
                    f"{label}: the {change.what} of {change.where} changed "
                    f"({change.before} → {change.after})"
                ),
                title="Posture",
                severity="warning",
                timeout=20,
                markup=False,
            )
        self._show_selected()

    def _status_style(self, status: Status) -> str:
        """A Rich style for a state, in the theme's colour for it.

        Some theme variables are not Rich colours (``$text-muted`` is
        ``auto 60%``, which only Textual's CSS understands): those give a dim
        style instead of an error at draw time.
        """
        from rich.color import Color, ColorParseError

        colour = self.app.theme_variables.get(_STATUS_STYLE[status].lstrip("$"), "")
        try:
            Color.parse(colour)
        except ColorParseError:
            return "bold dim"
        return f"bold {colour}"

    def _posture_text(self, target: ProbeTarget) -> Text:
        from tuimail.posture.report import report_lines

        report = self.posture.get(target.key)
        problem = self.posture_problems.get(target.key)
        if problem:
            return Text(shown(f"Posture of {target.host}: not checked: {problem}"))
        if report is None:
            checking = target.key in self._posture_running
            return Text(
                shown(
                    f"Posture of {target.host}: "
                    + ("checking..." if checking else "not checked yet (r: probe now)")
                )
            )
        text = Text()
        for index, line in enumerate(report_lines(report)):
            if index:
                text.append("\n")
            status = line.split()[0] if index else ""
            style = self._status_style(Status[status]) if status in Status.__members__ else ""
            text.append(shown(line), style=style)
        return text

    def _mx_looked_up(self, target: ProbeTarget, problem: str) -> None:
        """Show a mail domain's lookup in its row: CRITICAL with why, or its hosts below.

        The change is also told once in a notification (not at every round).
        """
        before = self.mx_problems.get(target.key)
        if problem:
            self.mx_problems[target.key] = (problem, time.time())
        else:
            self.mx_problems.pop(target.key, None)
        if problem and (before is None or before[0] != problem):
            self.notify(
                shown(f"{target.label}: CRITICAL ({problem})"),
                title="Monitor",
                severity="error",
                timeout=10,
                markup=False,
            )
        table = self.query_one("#targets", DataTable)
        if target.key in table.rows:
            for column, value in zip(table.columns, self._cells(target), strict=True):
                table.update_cell(target.key, column, value, update_width=True)
        self._show_selected()

    def _record(self, report: ProbeReport) -> None:
        key = report.target.key
        before = self.latest.get(key)
        previous_status = before.status.name if before else self._last_status(report.target)
        self.latest[key] = report
        self.history.add(report)
        if previous_status is not None and previous_status != report.status.name:
            severity = "error" if report.status >= Status.CRITICAL else "warning"
            if report.status is Status.OK:
                severity = "information"
            self.notify(
                shown(
                    f"{report.target.label}: {previous_status} → {report.status.name}"
                    + (f" ({report.reasons[0]})" if report.reasons else "")
                ),
                title="Monitor",
                severity=severity,  # type: ignore[arg-type]
                timeout=10,
                markup=False,
            )
        table = self.query_one("#targets", DataTable)
        if key in table.rows:
            for column, value in zip(table.columns, self._cells(report.target), strict=True):
                table.update_cell(key, column, value, update_width=True)
        self._show_selected()

    def _last_status(self, target: ProbeTarget) -> str | None:
        records = self.history.records(target)
        return str(records[-1].get("status")) if records else None

    # -- selection ----------------------------------------------------------

    @on(DataTable.RowHighlighted, "#targets")
    def _highlighted(self) -> None:
        self._show_selected()

    def selected_target(self) -> ProbeTarget | None:
        table = self.query_one("#targets", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((t for t in self.targets if t.key == key), None)

    def _show_selected(self) -> None:
        target = self.selected_target()
        if target is None:
            return
        samples = self.history.latencies(target)
        self.query_one("#latency", LatencyHistory).show(samples)
        caption = latency_caption(samples)
        if target.mx:  # a domain is probed through its hosts, each a row with its history
            caption = "Latency history: on each MX host's row"
        self.query_one("#latency-title", Label).update(Text(caption))
        report = self.latest.get(target.key)
        detail = self.query_one("#monitor-detail", Static)
        view = self.query_one("#probe-view", TranscriptView)
        posture = self.query_one("#posture", PosturePanel)
        posture.display = target.mx
        if target.mx:
            posture.show(self._posture_text(target))
        failed = self.mx_problems.get(target.key) if target.mx else None
        if failed is not None:
            detail.update(
                shown(
                    f"{target.label}: CRITICAL: {failed[0]}. Its mail servers cannot be "
                    "found, so none is probed; the lookup is tried again each round."
                )
            )
            view.show(None)
            return
        if target.mx:
            detail.update(
                shown(
                    f"{target.label}: the mail domain {target.host}, probed through its MX "
                    "hosts (their rows below); its posture:"
                )
            )
            view.show(None)
            return
        if report is None:
            detail.update(shown(f"{target.label}: not probed in this run yet"))
            view.show(None)
            return
        detail.update(shown(report.summary()))
        if view.transcript is not report.transcript:
            view.show(report.transcript)

    # -- editing targets ----------------------------------------------------

    def action_add_target(self) -> None:
        self.app.push_screen(TargetDialog(), self._saved)

    def _selected_extra(self) -> ProbeTarget | None:
        """The selected row's extra target; None on a profile's row (even one whose
        name an extra target shares) or an MX host's."""
        target = self.selected_target()
        extra = self.extra_targets().get(target.name) if target is not None else None
        return (
            extra if target is not None and extra is not None and extra.key == target.key else None
        )

    def _not_an_extra(self, verb: str, done: str) -> None:
        """Say why the selected row cannot be edited or removed here, and where it can."""
        target = self.selected_target()
        if target is not None and target.owner.startswith("target:"):
            domain = target.owner.removeprefix("target:")
            words = f"{target.label} is one of {domain}'s MX hosts: {verb} the row {domain}."
        else:
            words = f"Profiles are {done} on Accounts; only extra targets here."
        self.notify(shown(words), severity="warning", markup=False)

    def action_edit_target(self) -> None:
        target = self._selected_extra()
        if target is None:
            self._not_an_extra("edit", "edited")
            return
        self.app.push_screen(TargetDialog(target), lambda t: self._saved(t, target.name))

    def _saved(self, target: ProbeTarget | None, original: str | None = None) -> None:
        if target is not None:
            self.change_targets(lambda: TargetStore().save(target, replace_name=original), target)

    def action_remove_target(self) -> None:
        target = self._selected_extra()
        if target is None:
            self._not_an_extra("remove", "removed")
            return
        self.latest.pop(target.key, None)
        self.change_targets(lambda: TargetStore().remove(target.name))

    def change_targets(
        self, change: Callable[[], object], probe: ProbeTarget | None = None
    ) -> None:
        """Write ``targets.toml`` (in a thread), then show the targets as they are now."""
        self._reads += 1
        self._change_targets(change, probe)

    @work(thread=True, group="monitor-stores", exit_on_error=False)
    def _change_targets(self, change: Callable[[], object], probe: ProbeTarget | None) -> None:
        try:
            change()
        except (NotFound, TargetError, OSError) as exc:
            self.app.call_from_thread(self._change_failed, str(exc))
            return
        try:
            targets, problem = TargetStore().load(), ""
        except TargetError as exc:
            targets, problem = {}, str(exc)
        self._tell(StoresRead(targets, problem, probe=probe))

    def _change_failed(self, problem: str) -> None:
        self._reads -= 1
        self.notify(shown(problem), severity="error", markup=False)
