"""``python -m tuimail`` runs the same entry point as the ``tuimail`` script."""

from tuimail.cli import run

run()
