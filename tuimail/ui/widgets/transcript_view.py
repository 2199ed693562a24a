"""A live transcript: time, direction, line; coloured by direction and reply class.

The view keeps at most ``cap`` lines (older ones are trimmed, and a marker says
so), while the core :class:`~tuimail.transcript.Transcript` keeps the whole
session for export. Colours come from the current theme, so user themes apply.

Live entries arrive as messages, after the session has already moved on: by
the time a screen shows a transcript, some entries that are still on their
way as messages are in it already. The view therefore remembers how far into
the transcript it has rendered and treats an entry as a cue to catch up, so
no line is shown twice and none is skipped.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.events import Resize
from textual.widgets import RichLog, Static

from tuimail.transcript import Direction, Entry, EventKind, Transcript

DEFAULT_CAP = 5_000


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
        self._shown = 0
        self._rendered = 0  # entries of ``transcript`` looked at so far
        self._width = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="trimmed")
        # min_width=1: RichLog's default (78) renders every line at least 78
        # cells wide, so lines were cut off behind a scroll bar in narrow panes.
        yield RichLog(
            max_lines=self.cap,
            wrap=True,
            markup=False,
            highlight=False,
            auto_scroll=True,
            min_width=1,
        )

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.refresh_view())

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
        log = self.log_widget
        log.clear()
        self._shown = 0
        self._rendered = 0
        self.remove_class("-trimmed")
        if self.transcript is None:
            return
        all_entries = list(self.transcript.entries)
        self._rendered = len(all_entries)
        entries = [e for e in all_entries if self._matches(e)]
        for entry in entries[-self.cap :]:
            log.write(self.render_entry(entry))
        self._count(len(entries))

    def append(self, entry: Entry) -> None:
        """A live entry arrived: show every entry of the transcript not shown yet.

        ``entry`` must belong to the transcript shown; it may already be on
        screen (it was in the transcript when :meth:`show` rendered it).
        """
        if self.transcript is None:
            return
        entries = self.transcript.entries
        for new in entries[self._rendered :]:
            if self._matches(new):
                self.log_widget.write(self.render_entry(new))
                self._count(1)
        self._rendered = len(entries)

    def _count(self, added: int) -> None:
        self._shown += added
        if self._shown > self.cap:
            trimmed = self._shown - self.cap
            self.add_class("-trimmed")
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
            (entry.text, style),
        )
