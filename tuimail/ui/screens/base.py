"""What every tuimail screen shares: the app's model, reached without knowing the app class."""

from __future__ import annotations

from textual import events
from textual.screen import Screen

from tuimail.ui.model import AppModel, model_of


class ModelScreen(Screen[None]):
    """A screen that reads the app's :class:`~tuimail.ui.model.AppModel` and follows its signals."""

    @property
    def model(self) -> AppModel:
        return model_of(self)

    async def on_event(self, event: events.Event) -> None:
        """A screen mounted as the app stops (a mode switched to just before it quit) stays bare.

        Its widgets are never started then, so a screen's ``on_mount`` would
        find views that refuse a signal (Textual subscribes running nodes
        only) or children never composed, and its ``on_screen_resume`` state
        never set up. Nothing would be shown anyway.
        """
        setting_up = isinstance(event, (events.Mount, events.ScreenResume))
        if setting_up and not self.app.is_running:
            return
        await super().on_event(event)
