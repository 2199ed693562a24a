"""Every session of this run: the live transcript, its TLS summary, its outcome."""

from __future__ import annotations

import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, Label, ListItem, ListView, Static

from tuimail import paths
from tuimail.ui.history import RunStatus, SessionRun
from tuimail.ui.outside import shown
from tuimail.ui.screens.base import ModelScreen
from tuimail.ui.screens.dialogs import ExportDialog, ExportRequest, write_export
from tuimail.ui.widgets.mode_bar import ModeBar
from tuimail.ui.widgets.transcript_view import TranscriptView

#: The mark the session list shows before each run.
STATUS_MARKS = {
    RunStatus.RUNNING: "…",
    RunStatus.OK: "✓",
    RunStatus.PARTIAL: "!",
    RunStatus.FAILED: "✗",
}


def run_label(run: SessionRun) -> str:
    """One line of the session list: how it went, when, what, through which profile, to whom."""
    when = time.strftime("%H:%M:%S", time.localtime(run.started))
    return f"{STATUS_MARKS[run.status]} {when} {run.kind} {run.profile_name}: {run.summary}"


class SessionItem(ListItem):
    def __init__(self, run: SessionRun) -> None:
        self.text = Label(shown(run_label(run)), markup=False)
        super().__init__(self.text)
        self.run = run

    def refresh_label(self) -> None:
        self.text.update(shown(run_label(self.run)))


class TranscriptScreen(ModelScreen):
    """Sessions on the left, the chosen transcript on the right."""

    BINDINGS = [
        Binding("ctrl+f", "search", "Filter", id="transcript.search"),
        # Priority: the filter Input binds ctrl+e to "end of line".
        Binding("ctrl+e", "export", "Export", id="transcript.export", priority=True),
        Binding("escape", "clear_search", "Clear filter", show=False, id="transcript.clear"),
    ]

    def compose(self) -> ComposeResult:
        yield ModeBar("transcript")
        with Horizontal():
            with Vertical(id="sessions-pane"):
                yield Label("Sessions", classes="pane-title")
                yield ListView(id="sessions")
            with Vertical(id="transcript-pane"):
                # Certificate names and server replies end up here: not markup.
                yield Static(
                    "No session yet: send a message from Compose (F2).",
                    id="tls-summary",
                    markup=False,
                )
                yield Static("", id="failure", markup=False)
                yield Input(placeholder="filter lines (ctrl+f)", id="filter")
                yield TranscriptView(id="transcript-view")
        yield Footer()

    def on_mount(self) -> None:
        model = self.model
        model.session_started.subscribe(self, self._session_started)
        model.session_finished.subscribe(self, self._session_finished)
        model.follow_live(self.query_one("#transcript-view", TranscriptView))
        self.selected: SessionRun | None = None
        for run in model.history.runs:
            self._add(run)
        if model.history.latest is not None:
            self.select(model.history.latest)

    def _add(self, run: SessionRun) -> None:
        self.query_one("#sessions", ListView).append(SessionItem(run))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Export is greyed until there is a session to export (its key would do nothing)."""
        if action == "export":
            return True if getattr(self, "selected", None) is not None else None
        return True

    def select(self, run: SessionRun) -> None:
        self.selected = run
        self.refresh_bindings()
        view = self.query_one("#transcript-view", TranscriptView)
        view.show(run.transcript)
        sessions = self.query_one("#sessions", ListView)
        for index, item in enumerate(sessions.children):
            if isinstance(item, SessionItem) and item.run is run:
                sessions.index = index
        self._show_outcome(run)

    def _show_outcome(self, run: SessionRun) -> None:
        summary = self.query_one("#tls-summary", Static)
        failure = self.query_one("#failure", Static)
        report = run.report
        if report is None:
            summary.update(f"{run.kind} via {run.profile_name}: running…")
            failure.update("")
            failure.remove_class("-shown")
            return
        if report.tls is not None:
            summary.update("🔒 " + shown(report.tls.summary()))
        else:
            summary.update("plain connection: no TLS")
        summary.set_class(report.tls is None, "-plain")
        if report.failure is not None:
            kind = "temporary, worth retrying" if report.failure.temporary else "permanent"
            failure.update(
                shown(
                    f"✗ {report.failure.stage.value} failed ({kind}): {report.failure.explanation}",
                    keep_newlines=True,  # a multi-line server reply, line by line
                )
            )
            failure.add_class("-shown")
        elif report.delivery is not None and report.delivery.refused:
            refused = "; ".join(f"{r.address}: {r.code} {r.reply}" for r in report.delivery.refused)
            failure.update(shown(f"! sent, but refused for {refused}"))
            failure.add_class("-shown")
        else:
            failure.update("")
            failure.remove_class("-shown")

    @on(ListView.Selected, "#sessions")
    def _chosen(self, event: ListView.Selected) -> None:
        if isinstance(event.item, SessionItem):
            self.select(event.item.run)

    @on(Input.Changed, "#filter")
    def _filter(self, event: Input.Changed) -> None:
        self.query_one("#transcript-view", TranscriptView).set_filter(event.value)

    def action_search(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_search(self) -> None:
        self.query_one("#filter", Input).value = ""

    def action_export(self) -> None:
        if self.selected is None:
            self.notify("No transcript to export yet.", severity="warning")
            return
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.selected.started))
        default = paths.exports_dir() / f"tuimail-{self.selected.profile_name}-{stamp}.txt"
        self.app.push_screen(ExportDialog(default), self._export)

    def _export(self, request: ExportRequest | None) -> None:
        if request is not None and self.selected is not None:
            self.write_export(request, self.selected)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def write_export(self, request: ExportRequest, run: SessionRun) -> None:
        transcript = run.transcript
        text = transcript.to_jsonl() if request.format == "jsonl" else transcript.to_text()
        try:
            (written,) = write_export(request.path, [(request.path.suffix, text.encode("utf-8"))])
        except OSError as exc:
            self.app.call_from_thread(
                self.notify,
                shown(f"Could not write {request.path}: {exc.strerror}"),
                severity="error",
                markup=False,
            )
            return
        kept = "" if written == request.path else " (a file of that name was kept)"
        self.app.call_from_thread(
            self.notify,
            shown(f"Exported {len(transcript)} lines to {written}{kept}"),
            markup=False,
        )

    # -- sessions (from the model's signals) ---------------------------------

    def _session_started(self, run: SessionRun) -> None:
        self._add(run)
        self.select(run)

    def _session_finished(self, run: SessionRun) -> None:
        for item in self.query(SessionItem):
            if item.run is run:
                item.refresh_label()
        if run is self.selected:
            self._show_outcome(run)
