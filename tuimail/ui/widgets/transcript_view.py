"""A live transcript: time, direction, line; coloured by direction and reply class.

The view keeps at most ``cap`` lines (older ones are trimmed, and a marker says
so), while the core :class:`~tuimail.transcript.Transcript` keeps the whole
session for export. Colours come from the current theme, so user themes apply.

Live entries are announced by the app's model, at most once per tick, after
the session has already moved on: by the time a view shows a transcript, some
announced entries are in it already. The view therefore remembers how far into
the transcript it has rendered and treats an announcement as a cue to catch
up, so no line is shown twice and none is skipped.

Catching up is paced, so a flood (a hostile server, a huge EHLO) cannot
starve the keyboard: at most ``BATCH`` lines are drawn at once and the rest
after :data:`LIVE_TICK` (the same tick the model announces on), a view whose
screen is not showing catches up when it shows again, and a view far behind
jumps to the last ``cap`` lines. The cap counts transcript
entries, not wrapped screen lines, so the "trimmed" marker is exact.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import RichLog, Static

from tuimail.terminal_text import escape_controls
from tuimail.transcript import Direction, Entry, EventKind, Transcript

DEFAULT_CAP = 2_000
#: Lines drawn at once while catching up; the rest waits for the next tick.
BATCH = 50
#: Seconds between live steps: the model's announcements of new entries, a view's batches.
LIVE_TICK = 0.05


class TranscriptView(Vertical):
    """Shows one transcript, live, optionally filtered by a search string."""

    DEFAULT_CSS = """
    TranscriptView { height: 1fr; }
    TranscriptView > #trimmed { display: none; color: $warning; height: 1; }
    TranscriptView.-trimmed > #trimmed { display: block; }
    TranscriptView > RichLog { height: 1fr; background: $surface; }
    """

    def __init__(self, cap: int = DEFAULT_CAP, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.cap = cap
        self.transcript: Transcript | None = None
        self.filter_text = ""
        self._shown = 0  # entries drawn in the log now
        self._matched = 0  # entries that matched the filter so far (drawn or trimmed)
        self._rendered = 0  # entries of ``transcript`` looked at so far
        self._width = 0
        self._ticking = False
        self._hidden_behind = False  # announced entries wait for the screen to show

    def compose(self) -> ComposeResult:
        yield Static("", id="trimmed")
        # min_width=1: RichLog's default (78) renders every line at least 78
        # cells wide, so lines were cut off behind a scroll bar in narrow panes.
        # No max_lines: RichLog counts wrapped screen lines; the cap is enforced
        # here, in entries, by redrawing the last ``cap`` when 1.5 x cap are shown.
        yield RichLog(
            wrap=True,
            markup=False,
            highlight=False,
            auto_scroll=True,
            min_width=1,
        )

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.refresh_view())
        self.app.screen_change_signal.subscribe(self, self._screen_changed)

    def _screen_changed(self, screen: Screen[object]) -> None:
        """Another screen is on top; if it is this view's, draw what came while hidden."""
        if self._hidden_behind and screen is self.screen and screen.is_current:
            self._catch_up()

    @property
    def log_widget(self) -> RichLog:
        return self.query_one(RichLog)

    def show(self, transcript: Transcript | None) -> None:
        """Display ``transcript`` from its start (or nothing)."""
        self.transcript = transcript
        self.refresh_view()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self.refresh_view()

    def on_resize(self, event: Resize) -> None:
        # Wrapped lines were wrapped for the old width: wrap them again.
        if event.size.width != self._width:
            previous, self._width = self._width, event.size.width
            if previous and self.transcript is not None:
                self.refresh_view()

    def refresh_view(self) -> None:
        """Redraw from the start of the transcript (the last ``cap`` matching entries)."""
        log = self.log_widget
        log.clear()
        self._shown = self._matched = self._rendered = 0
        self._update_marker()
        if self.transcript is None:
            return
        all_entries = list(self.transcript.entries)
        self._rendered = len(all_entries)
        entries = [e for e in all_entries if self._matches(e)]
        self._matched = len(entries)
        for entry in entries[-self.cap :]:
            log.write(self.render_entry(entry))
        self._shown = min(len(entries), self.cap)
        self._update_marker()

    @property
    def shown_entries(self) -> int:
        """How many transcript entries the log holds now (at most ``cap``; after the filter)."""
        return self._shown

    @property
    def backlog(self) -> int:
        """Entries of the shown transcript not looked at yet (0: the view is up to date)."""
        return len(self.transcript.entries) - self._rendered if self.transcript else 0

    def transcript_grew(self, transcript: Transcript) -> None:
        """New entries are in ``transcript``: if it is the one shown, catch up with it.

        The entries announced may already be on screen (they were in the
        transcript when :meth:`show` rendered it): drawing starts after the
        last one drawn.
        """
        if transcript is self.transcript and not self._ticking:
            self._catch_up()

    def _catch_up(self) -> None:
        self._ticking = False
        transcript = self.transcript
        if transcript is None or not self.is_attached:
            return
        self._hidden_behind = not self.screen.is_current
        if self._hidden_behind:
            return  # drawing what nobody sees waits for the screen (see _screen_changed)
        entries = transcript.entries
        if len(entries) - self._rendered > self.cap * 2:
            self.refresh_view()  # far behind: jump to the last cap lines
            return
        end = len(entries)
        drawn = 0
        index = self._rendered
        log = self.log_widget
        while index < end and drawn < BATCH:
            new = entries[index]
            index += 1
            if self._matches(new):
                log.write(self.render_entry(new))
                drawn += 1
        self._rendered = index
        self._matched += drawn
        self._shown += drawn
        if self._shown > self.cap * 3 // 2:
            self._redraw_tail()
        self._update_marker()
        if index < end:
            self._ticking = True
            self.set_timer(LIVE_TICK, self._catch_up)

    def _redraw_tail(self) -> None:
        """Keep the log to the last ``cap`` matching entries (bounded memory)."""
        assert self.transcript is not None
        log = self.log_widget
        log.clear()
        tail: list[Entry] = []
        for entry in reversed(self.transcript.entries[: self._rendered]):
            if self._matches(entry):
                tail.append(entry)
                if len(tail) == self.cap:
                    break
        for entry in reversed(tail):
            log.write(self.render_entry(entry))
        self._shown = len(tail)

    def _update_marker(self) -> None:
        trimmed = self._matched - self._shown
        self.set_class(trimmed > 0, "-trimmed")
        if trimmed > 0:
            self.query_one("#trimmed", Static).update(
                f"▲ {trimmed:,} older lines trimmed from view; export keeps them all"
            )

    def _matches(self, entry: Entry) -> bool:
        return not self.filter_text or self.filter_text.lower() in entry.text.lower()

    def render_entry(self, entry: Entry) -> Text:
        variables = self.app.theme_variables
        style = variables.get("foreground", "")
        if entry.direction is Direction.CLIENT:
            style = variables.get("accent", "cyan")
        elif entry.direction is Direction.SERVER:
            code = entry.reply_code or 0
            style = {
                2: variables.get("success", "green"),
                3: variables.get("primary", "blue"),
                4: variables.get("warning", "yellow"),
                5: variables.get("error", "red"),
            }.get(code // 100, style)
        elif entry.kind in (EventKind.ERROR,):
            style = f"bold {variables.get('error', 'red')}"
        elif entry.kind is EventKind.WARNING:
            style = f"bold {variables.get('warning', 'yellow')}"
        elif entry.kind is EventKind.TLS:
            style = variables.get("success", "green")
        else:
            style = "dim"
        return Text.assemble(
            (f"{entry.elapsed:8.3f} ", "dim"),
            (entry.marker(), f"bold {style}"),
            " ",
            # Wire lines are escaped when captured; event lines quote replies raw.
            (escape_controls(entry.text), style),
        )
