"""Every observation the benchmarks make of the running app, and the only place they make it.

The benchmarks read the app's public seam (``app.model.begin`` and
``live_feed``, ``AppModel.live_views``, ``TranscriptView.shown_entries``, the
model's sandbox) and a few Textual internals. A rename there must not make a
benchmark silently measure something else, so each read goes through one
function here, and a missing name raises :class:`BenchmarkError` naming it
(:func:`_needs`), never a fallback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from benchmarks.common import BenchmarkError

if TYPE_CHECKING:
    from textual.driver import Driver
    from textual.message_pump import MessagePump
    from textual.screen import Screen

    from tuimail.transcript import Entry, Transcript
    from tuimail.ui.app import TuimailApp
    from tuimail.ui.screens.monitor import MonitorScreen
    from tuimail.ui.widgets.transcript_view import TranscriptView


@contextlib.contextmanager
def _needs(name: str) -> Iterator[None]:
    """Turn a missing attribute into a :class:`BenchmarkError` that names ``name``."""
    try:
        yield
    except AttributeError as exc:
        raise BenchmarkError(
            f"the benchmark needs {name}, which is gone ({exc}); update benchmarks/app_seam.py"
        ) from exc


# -- tuimail: the app's public seam (tuimail/ui/model.py) ------------------------


def start_live_session(app: TuimailApp, transcript: Transcript) -> None:
    """Start a send session on ``transcript`` as the app's worker does: kept, announced, fed live."""
    from tuimail.ui.history import RunKind, SessionRun

    run = SessionRun(RunKind.SEND, "sandbox", "flood@example.test", transcript)
    with _needs("TuimailApp.model.begin / live_feed (the live transcript's throttled feed)"):
        app.model.begin(run)
        feed: Callable[[Entry], None] = app.model.live_feed(run)
    transcript.subscribe(feed)


def listening_screens(app: TuimailApp) -> list[Screen[Any]]:
    """The screens whose views follow live sessions."""
    with _needs("AppModel.live_views (the views showing live transcripts)"):
        views = app.model.live_views
    return list({id(view.screen): view.screen for view in views}.values())


def entries_shown(view: TranscriptView) -> int:
    """Transcript entries a view draws now (its cap counts these, not wrapped lines)."""
    with _needs("TranscriptView.shown_entries (entries a view shows)"):
        return view.shown_entries


def lines_drawn(view: TranscriptView) -> int:
    """Screen lines in a view's log (wrapped entries count once per line)."""
    return len(view.log_widget.lines)


def sandbox_settled(app: TuimailApp) -> bool:
    """The embedded sandbox is up, or its failure is known."""
    with _needs("AppModel.sandbox / sandbox_note"):
        return app.model.sandbox is not None or bool(app.model.sandbox_note)


def probes_done(monitor: MonitorScreen) -> tuple[int, int]:
    """(targets probed so far, targets) of the monitor screen."""
    with _needs("MonitorScreen.latest / targets"):
        return len(monitor.latest), len(monitor.targets)


# -- Textual: public names -----------------------------------------------------------


def queued_messages(pump: MessagePump) -> int:
    """Messages waiting in a pump's queue (idle = 0 everywhere; see also TuimailApp.is_idle)."""
    with _needs("MessagePump.message_queue_size (Textual)"):
        return pump.message_queue_size


# -- Textual: private names with no public way -------------------------------------


def driver(app: TuimailApp) -> Driver:
    """The app's driver: injecting a key through it is what its input thread does."""
    with _needs("App._driver (Textual)"):
        found = app._driver
    if found is None:
        raise BenchmarkError("the app has no driver (not running)")
    return found


def screen_text(screen: Screen[Any]) -> str:
    """The plain text of everything ``screen`` shows now: Textual renders it only inside."""
    with _needs("Screen._compositor (Textual)"):
        return "\n".join(strip.text for strip in screen._compositor.render_strips())


def watching_app(saw: Callable[[Screen[Any], str], None]) -> TuimailApp:
    """A TuimailApp (sandbox off) that reports every screen update, as terminal output, to ``saw``.

    Textual offers no hook after a frame is composed; ``App._display`` is where
    the compositor hands one over, and ``CompositorUpdate`` is its type. The
    headless driver writes nothing, so the escape sequences a terminal would
    get are made here (part of a frame's cost) and searched for what a probe expects.
    """
    with _needs("textual._compositor.CompositorUpdate (Textual)"):
        from textual._compositor import CompositorUpdate

    from tuimail.ui.app import TuimailApp

    if not hasattr(TuimailApp, "_display"):
        raise BenchmarkError("App._display (Textual) is gone; update benchmarks/app_seam.py")

    class WatchedApp(TuimailApp):
        def _display(self, screen: Screen[Any], renderable: Any) -> None:
            super()._display(screen, renderable)
            if renderable is None or self._batch_count:
                return
            text = ""
            if isinstance(renderable, CompositorUpdate):
                text = renderable.render_segments(self.console)
            saw(screen, text)

    return WatchedApp(start_sandbox=False)
