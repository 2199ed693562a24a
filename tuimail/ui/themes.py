"""Themes: Textual's built-in ones, tuimail's shipped files, and the user's files.

A theme file is TOML with Textual's theme fields (``name``, ``primary``,
``background``, ..., ``dark``, and an optional ``[variables]`` table). Shipped
themes live in the repository's ``themes/`` directory (installed as
``tuimail.themes``); user themes in ``$XDG_CONFIG_HOME/tuimail/themes/``. A bad
file is reported once, by name, and skipped.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from textual.app import App
from textual.theme import Theme

from tuimail import paths

_THEME_FIELDS = {f.name for f in fields(Theme)}


@dataclass
class ThemesLoaded:
    names: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def user_theme_dir() -> Path:
    return paths.config_dir() / "themes"


def shipped_theme_files() -> list[Any]:
    package = importlib.resources.files("tuimail.themes")
    return sorted((f for f in package.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)


def parse_theme(text: str, source: str) -> Theme:
    """A Theme from TOML text; raises ValueError naming what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: {exc}") from None
    unknown = sorted(set(data) - _THEME_FIELDS)
    if unknown:
        raise ValueError(f"{source}: unknown theme fields {', '.join(unknown)}")
    if not isinstance(data.get("name"), str) or not isinstance(data.get("primary"), str):
        raise ValueError(f"{source}: a theme needs 'name' and 'primary'")
    try:
        theme = Theme(**data)
        theme.to_color_system().generate()  # fails now, not in the middle of rendering
    except Exception as exc:  # bad colour strings raise several types
        raise ValueError(f"{source}: {exc}") from None
    return theme


def register_all(app: App[Any]) -> ThemesLoaded:
    """Register shipped and user themes; report each bad file once."""
    loaded = ThemesLoaded()
    sources: list[tuple[str, str]] = []
    for resource in shipped_theme_files():
        sources.append((resource.name, resource.read_text("utf-8")))
    directory = user_theme_dir()
    if directory.is_dir():
        for path in sorted(directory.glob("*.toml")):
            try:
                sources.append((str(path), path.read_text("utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                loaded.problems.append(f"{path}: {exc}")
    for source, text in sources:
        try:
            theme = parse_theme(text, source)
        except ValueError as exc:
            loaded.problems.append(str(exc))
            continue
        app.register_theme(theme)
        loaded.names.append(theme.name)
    return loaded
