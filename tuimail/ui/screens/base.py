"""What every tuimail screen shares: the app's model, reached without knowing the app class."""

from __future__ import annotations

from textual.screen import Screen

from tuimail.ui.model import AppModel, model_of


class ModelScreen(Screen[None]):
    """A screen that reads the app's :class:`~tuimail.ui.model.AppModel` and follows its signals."""

    @property
    def model(self) -> AppModel:
        return model_of(self)
