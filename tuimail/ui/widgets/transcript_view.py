"""A live transcript: time, direction, line; coloured by direction and reply class.

The view keeps at most ``cap`` entries (older ones are trimmed, and a marker
says so), while the core :class:`~tuimail.transcript.Transcript` keeps the
whole session for export. Colours come from the current theme, so user themes
apply. A line too long for the pane wraps under its text, after the time and
direction (a hanging indent), so the left column stays readable.

Live entries are announced by the app's model, at most once per
:data:`LIVE_TICK`, after the session has already moved on: by the time a view
shows a transcript, some announced entries are in it already. The view
therefore remembers how far into the transcript it has looked and treats an
announcement as a cue to catch up, so no line is shown twice and none is
skipped.

Catching up is coalesced, so a flood (a hostile server, a huge EHLO, an
application under test mailing the sandbox) cannot starve the keyboard: each
announcement takes everything that arrived since the last one in one step,
keeps only the last ``cap`` of it (the rest is counted by the marker and never
drawn), and :class:`TranscriptLines` draws only the screen lines that are
visible, when a frame is composed. A view whose screen is not showing catches
up when it shows again. The cap counts transcript entries, not wrapped screen
lines, so the "trimmed" marker is exact.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from rich.cells import cell_len, get_character_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.events import Resize
from textual.geometry import Size
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from tuimail.terminal_text import escape_controls
from tuimail.transcript import Direction, Entry, EventKind, Transcript

DEFAULT_CAP = 2_000
#: Seconds between live steps: the model's announcements of new entries.
LIVE_TICK = 0.05
#: Below this many columns for the text, the time is left out so the text keeps its room.
MIN_TEXT_WIDTH = 12
#: Entries whose wrapped lines are kept ready (a few screens' worth).
STRIP_CACHE = 512


def wrap_offsets(text: str, width: int) -> list[int]:
    """Where each line after the first starts when ``text`` wraps at ``width`` cells.

    Lines break after a space (the spaces at a break are dropped) and a word
    longer than the line is cut. The same offsets count a line's height and
    draw it, so the scroll height always matches what is drawn.
    """
    width = max(width, 1)
    size = len(text)
    offsets: list[int] = []
    if text.isascii():  # one cell per character (controls were escaped)
        if size <= width:
            return offsets
        start = 0
        while size - start > width:
            cut = text.rfind(" ", start + 1, start + width + 1)
            following = start + width if cut == -1 else cut + 1
            while following < size and text[following] == " ":
                following += 1
            if following >= size:
                break
            offsets.append(following)
            start = following
        return offsets
    if cell_len(text) <= width:
        return offsets
    start = used = 0
    space = -1  # the last space on the current line
    index = 0
    while index < size:
        char = text[index]
        cells = get_character_cell_size(char)
        if used + cells > width and index > start:
            following = index + 1 if char == " " else (space + 1 if space > start else index)
            while following < size and text[following] == " ":
                following += 1
            if following >= size:
                break
            offsets.append(following)
            start, space = following, -1
            used = cell_len(text[start:index]) if index > start else 0
            index = max(index, start)
            continue
        if char == " ":
            space = index
        used += cells
        index += 1
    return offsets


class TranscriptLines(ScrollView, can_focus=True):
    """Entries as wrapped screen lines, drawn only where they are visible.

    It holds entries, not rendered lines: adding one costs the count of its
    wrapped lines (for the scroll height), and a frame draws the few lines in
    view, from a small cache. Its :class:`TranscriptView` gives each entry's
    colours (:meth:`TranscriptView.entry_style`, from the theme). The scroll
    bar's gutter is kept even while no bar shows, so the wrap width does not
    change (and every line wrap again) when the bar comes and goes.
    """

    DEFAULT_CSS = """
    TranscriptLines {
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-gutter: stable;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._entries: list[Entry] = []
        #: Screen line where each entry starts, and one past the last line.
        self._starts: list[int] = [0]
        self._heights: list[int] = []
        self._wrap_width = 0
        self._strips: LRUCache[int, tuple[Entry, list[Strip]]] = LRUCache(STRIP_CACHE)
        self._styles: dict[str, tuple[Style, Style, Style]] = {}
        #: The end is in view: new lines scroll in (until the reader scrolls up).
        self._following = True
        #: Entries whose screen lines were made (each once, until the width or theme changes).
        self.entries_drawn = 0

    # -- what it holds ---------------------------------------------------------

    @property
    def entries(self) -> Sequence[Entry]:
        return self._entries

    @property
    def line_count(self) -> int:
        """Screen lines of every entry held, once wrapped at the current width."""
        return self._starts[-1]

    @property
    def lines(self) -> list[Strip]:
        """Every screen line held (all of them rendered: for tests and benchmarks)."""
        return [strip for index in range(len(self._entries)) for strip in self._strips_of(index)]

    def clear(self) -> None:
        """Hold nothing; what comes next is followed to its end, as a new transcript is."""
        self._entries = []
        self._heights = []
        self._restart()
        self.scroll_to(y=0, animate=False, immediate=True, force=True)
        self._following = True

    def extend(self, entries: Sequence[Entry], keep: int) -> None:
        """Add ``entries`` at the end, keeping the last ``keep``; follow the end if it was shown."""
        if not entries:
            return
        following = self._following
        if self._content_width() != self._wrap_width:
            self._restart()
        if len(entries) > keep:
            entries = entries[-keep:]
        dropped = max(len(self._entries) + len(entries) - keep, 0)
        heights = [self._height(entry) for entry in entries]
        if dropped:
            removed_lines = self._starts[dropped]
            self._entries = self._entries[dropped:] + list(entries)
            self._heights = self._heights[dropped:] + heights
            self._restart()
            if not following:  # the lines being read stay in view
                self.scroll_to(
                    y=max(self.scroll_y - removed_lines, 0),
                    animate=False,
                    immediate=True,
                    force=True,
                )
        else:
            self._entries.extend(entries)
            self._heights.extend(heights)
            self._starts.extend(list(accumulate(heights, initial=self._starts[-1]))[1:])
            self._resize_virtual()
        if following:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)

    def restyle(self) -> None:
        """The theme changed: draw every line again in its colours."""
        self._styles.clear()
        self._strips.clear()
        self.refresh()

    # -- layout ------------------------------------------------------------------

    def _content_width(self) -> int:
        return self.scrollable_content_region.width

    def _layout(self, entry: Entry, width: int) -> tuple[str, str, int]:
        """The time (left out where the pane is too narrow), the marker, and the text's columns."""
        elapsed = f"{entry.elapsed:8.3f} "
        marker = entry.marker()
        text_width = width - len(elapsed) - len(marker) - 1
        if text_width < MIN_TEXT_WIDTH:
            elapsed = ""
            text_width = width - len(marker) - 1
        return elapsed, marker, max(text_width, 1)

    @staticmethod
    def _body(entry: Entry) -> str:
        # Wire lines are escaped when captured; event lines quote replies raw.
        return escape_controls(entry.text).expandtabs(8)

    def _height(self, entry: Entry) -> int:
        """Screen lines ``entry`` takes at the wrap width (1 until the width is known)."""
        if not self._wrap_width:
            return 1
        return len(wrap_offsets(self._body(entry), self._layout(entry, self._wrap_width)[2])) + 1

    def _restart(self) -> None:
        """Count lines again (after a trim, a clear or a new width): where each entry starts."""
        width = self._content_width()
        if width != self._wrap_width:
            self._wrap_width = width
            self._strips.clear()
            self._heights = [self._height(entry) for entry in self._entries]
        self._starts = list(accumulate(self._heights, initial=0))
        self._resize_virtual()

    def _resize_virtual(self) -> None:
        self.virtual_size = Size(self._wrap_width, self._starts[-1])
        self.refresh()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        # A position, not a layout: the marker line appearing above makes the
        # pane shorter (and the end further) without the reader scrolling.
        super().watch_scroll_y(old_value, new_value)
        self._following = new_value >= self.max_scroll_y

    def on_resize(self, _event: Resize) -> None:
        if self._content_width() != self._wrap_width:
            self._restart()
            if self._following:
                self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)

    # -- drawing -------------------------------------------------------------------

    def _strips_of(self, index: int) -> list[Strip]:
        """The screen lines of entry ``index``: the first after its time and marker, the rest under its text."""
        entry = self._entries[index]
        cached = self._strips.get(id(entry))
        if cached is not None and cached[0] is entry:
            return cached[1]
        width = max(self._wrap_width, 1)
        elapsed, marker, text_width = self._layout(entry, width)
        time_style, marker_style, text_style = self._style_of(entry)
        body = self._body(entry)
        indent = " " * (len(elapsed) + len(marker) + 1)
        breaks = [0, *wrap_offsets(body, text_width), len(body)]
        self.entries_drawn += 1
        strips = []
        for begin, end in itertools.pairwise(breaks):
            text = body[begin:end].rstrip(" ") if end < len(body) else body[begin:end]
            lead = (
                [Segment(elapsed, time_style), Segment(marker, marker_style), Segment(" ")]
                if begin == 0
                else [Segment(indent)]
            )
            strips.append(Strip([*lead, Segment(text, text_style)]).adjust_cell_length(width))
        self._strips.set(id(entry), (entry, strips))
        return strips

    def _style_of(self, entry: Entry) -> tuple[Style, Style, Style]:
        """The time's, the marker's and the text's style (parsed once per colour)."""
        view = self.parent
        text_style = view.entry_style(entry) if isinstance(view, TranscriptView) else ""
        found = self._styles.get(text_style)
        if found is None:
            found = (Style.parse("dim"), Style.parse(f"bold {text_style}"), Style.parse(text_style))
            self._styles[text_style] = found
        return found

    def render_line(self, y: int) -> Strip:
        line = self.scroll_offset.y + y
        width = self._content_width()
        if line >= self._starts[-1]:
            return Strip.blank(width, self.rich_style)
        index = bisect_right(self._starts, line) - 1
        strips = self._strips_of(index)
        strip = strips[min(line - self._starts[index], len(strips) - 1)]
        return strip.crop_extend(0, width, None).apply_style(self.rich_style)


class TranscriptView(Vertical):
    """Shows one transcript, live, optionally filtered by a search string."""

    DEFAULT_CSS = """
    TranscriptView { height: 1fr; }
    TranscriptView > #trimmed { display: none; color: $warning; height: 1; width: 1fr; }
    TranscriptView.-trimmed > #trimmed { display: block; }
    TranscriptView > TranscriptLines { height: 1fr; background: $surface; }
    """

    def __init__(self, cap: int = DEFAULT_CAP, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.cap = cap
        self.transcript: Transcript | None = None
        self.filter_text = ""
        self._matched = 0  # entries that matched the filter so far (drawn or trimmed)
        self._rendered = 0  # entries of ``transcript`` looked at so far
        self._hidden_behind = False  # announced entries wait for the screen to show
        #: Times the view took in new entries (one per announcement, however many arrived).
        self.catch_ups = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="trimmed")
        yield TranscriptLines()

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.log_widget.restyle())
        self.app.screen_change_signal.subscribe(self, self._screen_changed)

    def _screen_changed(self, screen: Screen[object]) -> None:
        """Another screen is on top; if it is this view's, draw what came while hidden."""
        if self._hidden_behind and screen is self.screen and screen.is_current:
            self._catch_up()

    @property
    def log_widget(self) -> TranscriptLines:
        return self.query_one(TranscriptLines)

    def show(self, transcript: Transcript | None) -> None:
        """Display ``transcript`` from its start (or nothing)."""
        self.transcript = transcript
        self.refresh_view()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self.refresh_view()

    def refresh_view(self) -> None:
        """Show the transcript from its start again (the last ``cap`` matching entries)."""
        lines = self.log_widget
        lines.clear()
        self._matched = self._rendered = 0
        if self.transcript is not None:
            entries = self.transcript.entries
            self._rendered = len(entries)
            matching = self._matching(entries)
            self._matched = len(matching)
            lines.extend(matching[-self.cap :], self.cap)
        self._update_marker()

    @property
    def shown_entries(self) -> int:
        """How many transcript entries the view holds now (at most ``cap``; after the filter)."""
        return len(self.log_widget.entries)

    @property
    def backlog(self) -> int:
        """Entries of the shown transcript not looked at yet (0: the view is up to date)."""
        return len(self.transcript.entries) - self._rendered if self.transcript else 0

    def transcript_grew(self, transcript: Transcript) -> None:
        """New entries are in ``transcript``: if it is the one shown, catch up with it.

        The entries announced may already be on screen (they were in the
        transcript when :meth:`show` rendered it): taking them starts after
        the last one taken.
        """
        if transcript is self.transcript:
            self._catch_up()

    def _catch_up(self) -> None:
        """Take every entry that arrived since the last step, at once (only the last ``cap`` are kept)."""
        transcript = self.transcript
        if transcript is None or not self.is_attached:
            return
        self._hidden_behind = not self.screen.is_current
        if self._hidden_behind:
            return  # drawing what nobody sees waits for the screen (see _screen_changed)
        entries = transcript.entries
        if len(entries) == self._rendered:
            return
        new = self._matching(entries[self._rendered :])
        self._rendered = len(entries)
        self._matched += len(new)
        self.log_widget.extend(new, self.cap)
        self.catch_ups += 1
        self._update_marker()

    def _update_marker(self) -> None:
        trimmed = self._matched - self.shown_entries
        if trimmed > 0:
            # One line of fixed size: a new count needs no layout of the screen
            # (during a flood it changes at every step); showing it does.
            self.query_one("#trimmed", Static).update(
                f"▲ {trimmed:,} older lines trimmed from view; export keeps them all",
                layout=not self.has_class("-trimmed"),
            )
        self.set_class(trimmed > 0, "-trimmed")

    def _matching(self, entries: Sequence[Entry]) -> Sequence[Entry]:
        """The entries that contain the filter text (any case); all of them without a filter."""
        if not self.filter_text:
            return entries
        needle = self.filter_text.lower()
        return [entry for entry in entries if needle in entry.text.lower()]

    def entry_style(self, entry: Entry) -> str:
        """The style of an entry's marker and text: by direction, reply class or event kind."""
        variables = self.app.theme_variables
        style = variables.get("foreground", "")
        if entry.direction is Direction.CLIENT:
            return variables.get("accent", "cyan")
        if entry.direction is Direction.SERVER:
            code = entry.reply_code or 0
            return {
                2: variables.get("success", "green"),
                3: variables.get("primary", "blue"),
                4: variables.get("warning", "yellow"),
                5: variables.get("error", "red"),
            }.get(code // 100, style)
        if entry.kind is EventKind.ERROR:
            return f"bold {variables.get('error', 'red')}"
        if entry.kind is EventKind.WARNING:
            return f"bold {variables.get('warning', 'yellow')}"
        if entry.kind is EventKind.TLS:
            return variables.get("success", "green")
        return "dim"
