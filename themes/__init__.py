"""Themes shipped with tuimail (installed as the ``tuimail.themes`` package data).

Each ``*.toml`` file here is one Textual theme. Users add their own, in the same
format, to ``$XDG_CONFIG_HOME/tuimail/themes/``.
"""
