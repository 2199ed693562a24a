"""Themes: Textual's built-in ones, tuimail's shipped files, and the user's files.

A theme file is TOML with Textual's theme fields (``name``, ``primary``,
``background``, ..., ``dark``, and an optional ``[variables]`` table, whose
values are checked as the CSS they become, so a bad one is caught here and not
when the theme is chosen). Shipped
themes live in the repository's ``themes/`` directory (installed as
``tuimail.themes``); user themes in ``$XDG_CONFIG_HOME/tuimail/themes/``. A bad
file is reported once, by name, and skipped.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App
from textual.theme import Theme

from tuimail import paths
from tuimail.small_files import parse_toml, read_small_text

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

_THEME_FIELDS = {f.name for f in fields(Theme)}


@dataclass
class ThemesLoaded:
    """The themes read (shipped and the user's) and each file that could not be used."""

    themes: list[Theme] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [theme.name for theme in self.themes]


def user_theme_dir() -> Path:
    return paths.config_dir() / "themes"


def shipped_theme_files() -> list[Traversable]:
    package = importlib.resources.files("tuimail.themes")
    return sorted((f for f in package.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)


def parse_theme(text: str, source: str) -> Theme:
    """A Theme from TOML text; raises ValueError naming what is wrong."""
    try:
        data = parse_toml(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: {exc}") from None
    unknown = sorted(set(data) - _THEME_FIELDS)
    if unknown:
        raise ValueError(f"{source}: unknown theme fields {', '.join(unknown)}")
    if not isinstance(data.get("name"), str) or not isinstance(data.get("primary"), str):
        raise ValueError(f"{source}: a theme needs 'name' and 'primary'")
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ValueError(f"{source}: [variables] must be a table of names and values")
    try:
        theme = Theme(**data)
        generated = theme.to_color_system().generate()  # fails now, not while rendering
    except Exception as exc:  # bad colour strings raise several types
        raise ValueError(f"{source}: {exc}") from None
    for name, value in variables.items():
        problem = _variable_problem(name, value, {**generated, **variables})
        if problem:
            raise ValueError(f"{source}: [variables] {name!r}: {problem}")
    return theme


def _variable_problem(name: str, value: object, variables: Mapping[str, object]) -> str:
    """Why ``value`` cannot be CSS variable ``name`` ("" when it can).

    A variable's value is pasted into Textual's CSS wherever ``$name`` is
    used; a bad one raised only when a widget using it was styled, which
    stopped the app when the theme was chosen, and at every start after.
    So it is parsed here in a declaration of the kind it takes part in: a
    text style for ``*-style`` names, a colour for every other.
    """
    if not isinstance(value, str):
        return f"must be a string of CSS, not {type(value).__name__}"
    from textual.css.stylesheet import Stylesheet

    kind = "text-style" if name.endswith("-style") else "color"
    sheet = Stylesheet(variables={key: str(v) for key, v in variables.items()})
    sheet.add_source(f"Widget {{ {kind}: ${name}; }}", read_from=("theme", name))
    try:
        sheet.parse()
    except Exception:  # the tokenizer and the parser raise several types
        what = "a text style such as 'bold' or 'none'" if kind == "text-style" else "a colour"
        return f"{value!r} is not {what}"
    return ""


def read_all() -> ThemesLoaded:
    """Read and check shipped and user themes (file I/O: before the loop runs, or in a thread)."""
    loaded = ThemesLoaded()
    sources: list[tuple[str, str]] = []
    for resource in shipped_theme_files():
        sources.append((resource.name, resource.read_text("utf-8")))
    directory = user_theme_dir()
    if directory.is_dir():
        for path in sorted(directory.glob("*.toml")):
            try:
                sources.append((str(path), read_small_text(path)))
            except (OSError, UnicodeDecodeError) as exc:
                loaded.problems.append(f"{path}: {exc}")
    for source, text in sources:
        try:
            loaded.themes.append(parse_theme(text, source))
        except ValueError as exc:
            loaded.problems.append(str(exc))
    return loaded


def register_all(app: App[None], loaded: ThemesLoaded | None = None) -> ThemesLoaded:
    """Register the themes read (read now when not given); report each bad file once."""
    loaded = read_all() if loaded is None else loaded
    for theme in loaded.themes:
        app.register_theme(theme)
    return loaded
