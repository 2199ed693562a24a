"""tuimail: the SMTP workbench for the terminal.

The package root is the headless core. Only :mod:`tuimail.ui` imports Textual,
so scripts, tests and the ``tuimail send`` command stay fast and display-free.
"""

__version__ = "0.1.0"
