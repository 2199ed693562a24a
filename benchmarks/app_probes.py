"""Key presses timed to the first screen update that shows their effect.

A :class:`Probe` is one key: when it was sent, when the app had acted on it
(told at once by a watcher, not through a message queue), and when a screen
update first showed it. :class:`FrameLog` sees every update (through
:func:`benchmarks.app_seam.watching_app`) and settles the waiting probes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.screen import Screen


@dataclass
class Probe:
    kind: str  # "type", "f3" or "f2"
    accepts: Callable[[Screen[Any], str], bool]
    sent: float = 0.0
    event: asyncio.Event = field(default_factory=asyncio.Event)
    shown: float | None = None
    #: When the app had acted on the key (To's value changed, the screen switched).
    handled: float | None = None


@dataclass
class FrameLog:
    """Every screen update the app produced, and the probes waiting to see one."""

    times: list[float] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)

    def acted(self, kind: str) -> None:
        """The app acted on a key of ``kind`` (not necessarily on screen yet)."""
        now = time.perf_counter()
        for probe in self.probes:
            if probe.kind == kind and probe.handled is None:
                probe.handled = now

    def saw(self, screen: Screen[Any], text: str) -> None:
        now = time.perf_counter()
        self.times.append(now)
        for probe in self.probes:
            if probe.shown is None and probe.accepts(screen, text):
                probe.shown = now
                probe.event.set()


def probe_schedule(typing: int) -> list[str]:
    """``typing`` letters typed into To, with a screen switch there and back after every third."""
    schedule: list[str] = []
    for number in range(1, typing + 1):
        schedule += ["type", "f3", "f2"] if number % 3 == 0 else ["type"]
    return schedule


def shows_text(wanted: Screen[Any], text_wanted: str) -> Callable[[Screen[Any], str], bool]:
    """A probe's test: an update of screen ``wanted`` that contains ``text_wanted``."""
    return lambda screen, text: screen is wanted and text_wanted in text


def shows_screen(screen_class: type[Screen[Any]]) -> Callable[[Screen[Any], str], bool]:
    """A probe's test: any update of a screen of ``screen_class``."""
    return lambda screen, _text: isinstance(screen, screen_class)
