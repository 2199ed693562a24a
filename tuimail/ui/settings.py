"""The app's own settings: key remapping (config) and remembered choices (state).

``$XDG_CONFIG_HOME/tuimail/config.toml`` is the user's to edit (read by
:mod:`tuimail.user_config`; this module applies its ``[keymap]``)::

    [keymap]
    "compose.send" = "ctrl+enter"     # binding id = key(s), comma-separated

``$XDG_STATE_HOME/tuimail/ui.toml`` is tuimail's: the chosen theme.
A broken file is reported once and ignored; it never stops the app.
"""

from __future__ import annotations

import difflib
import json
import tomllib
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import tomli_w
from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode
from textual.keys import KEY_ALIASES, KEY_NAME_REPLACEMENTS, REPLACED_KEYS, Keys, key_to_character

from tuimail import paths
from tuimail.atomic import atomic_write_bytes
from tuimail.small_files import parse_toml, read_small_text
from tuimail.user_config import Config, config_file


def state_file() -> Path:
    return paths.state_dir() / "ui.toml"


def load_state() -> dict[str, object]:
    """What the app remembered; empty when the file is missing or unreadable."""
    try:
        return parse_toml(read_small_text(state_file()))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def save_state(updates: dict[str, object]) -> None:
    state = load_state()
    state.update(updates)
    try:
        paths.ensure_private_dir(state_file().parent)
        atomic_write_bytes(state_file(), tomli_w.dumps(state).encode("utf-8"))
    except OSError:
        pass  # remembering a theme is a convenience, never a reason to fail


#: The modifiers Textual writes before a key's name ("ctrl+shift+a").
MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
#: Keys with a name of their own (Textual's :class:`~textual.keys.Keys` without modifiers).
_NAMED_KEYS = frozenset(
    key.value for key in Keys if "+" not in key.value and not key.value.startswith("<")
)
#: Keys Textual treats as one key (ctrl+m is enter): bound twice, they clash.
_ALIAS_OF = {alias: key for key, aliases in KEY_ALIASES.items() for alias in aliases}
#: Where a binding can be active: the app's keys work on every screen and dialog.
APP_SCOPE = ""


def _character_key(character: str) -> str:
    """A single character as Textual names it in bindings ("?" is "question_mark").

    The same rule as Textual's ``Binding.make_bindings`` (whose helper is private).
    """
    if character.isalnum():
        return character
    try:
        name = unicodedata.name(character).lower().replace("-", "_").replace(" ", "_")
    except ValueError:
        name = character
    return KEY_NAME_REPLACEMENTS.get(name, name)


def _known_name(name: str) -> bool:
    if name in _NAMED_KEYS:
        return True
    return key_to_character(REPLACED_KEYS.get(name, name)) is not None


def parse_key(text: str) -> tuple[str, str]:
    """One key as written in ``[keymap]``: ``(key as Textual names it, "")`` or
    ``("", why it is not a key)``, in words.

    Textual accepts any string and binds it: a key that no keyboard sends
    (``notakey+++``) is shown in the footer and never works.
    """
    key = text.strip()
    if not key:
        return "", "an empty key"
    if len(key) == 1:
        if not key.isprintable():
            return "", f"{key!r} is not a key name"
        return _character_key(key), ""
    *modifiers, name = key.split("+")
    if not name or "" in modifiers:
        return (
            "",
            f"{key!r} is not a key: '+' joins modifiers and a key (ctrl+s); the + key is 'plus'",
        )
    for modifier in modifiers:
        if modifier not in MODIFIERS:
            return (
                "",
                f"{key!r} is not a key: {modifier!r} is not a modifier ({', '.join(MODIFIERS)})",
            )
    if len(set(modifiers)) != len(modifiers):
        return "", f"{key!r} is not a key: a modifier is named twice"
    if len(name) == 1:
        if modifiers and name.isupper():
            return "", f"{key!r} is not a key: after a modifier a letter is written in lower case"
        if not name.isprintable():
            return "", f"{key!r} is not a key"
        name = _character_key(name)
    elif not _known_name(name):
        return "", (
            f"{key!r} is not a key: {name!r} is not a key name "
            "(keys are written like ctrl+s, f5, escape, a or question_mark)"
        )
    return "+".join([*modifiers, name]), ""


def class_bindings(node_class: type[DOMNode]) -> list[Binding]:
    """The bindings a widget, screen or app class has, one per key, as Textual merges them:
    from the base classes down, a class's binding for a key replaces its base's."""
    by_key: dict[str, list[Binding]] = {}
    for base in reversed(node_class.__mro__):
        declared = base.__dict__.get("BINDINGS")
        if not declared:
            continue
        ours: dict[str, list[Binding]] = {}
        for binding in Binding.make_bindings(declared):
            ours.setdefault(binding.key, []).append(binding)
        by_key.update(ours)
    return [binding for bindings in by_key.values() for binding in bindings]


def _quoted(text: str) -> str:
    """``text`` as a TOML string, so the user finds the entry in the file."""
    return json.dumps(text, ensure_ascii=False)


def _flat(table: dict[str, object], prefix: str = "") -> list[tuple[str, object]]:
    """``compose.send = "x"`` without quotes is a table in TOML: read as the id it spells."""
    entries: list[tuple[str, object]] = []
    for name, value in table.items():
        binding_id = f"{prefix}{name}"
        if isinstance(value, dict):
            entries += _flat(value, f"{binding_id}.")
        else:
            entries.append((binding_id, value))
    return entries


@dataclass(frozen=True)
class _Bound:
    """One binding of one scope (a screen, a dialog, the app)."""

    scope: str
    binding: Binding

    @property
    def name(self) -> str:
        words = _quoted(self.binding.description or self.binding.action)
        return f"{words} ({self.binding.id})" if self.binding.id else f"Textual's {words}"


def check_keymap(
    keymap: object, scopes: Mapping[str, Sequence[Binding]]
) -> tuple[dict[str, str], list[str]]:
    """``[keymap]`` checked against the bindings of each scope: ``(keymap, problems)``.

    ``scopes`` maps a screen's or dialog's name to its bindings and
    :data:`APP_SCOPE` to the app's, which are active everywhere. An entry is
    dropped, and named in ``problems`` once, when its id is no binding's, a key
    does not parse, a printable key is given to a binding that works while
    typing, or a key is already another binding's where both are active: that
    binding keeps its default key, and no other binding loses its key to it.
    """
    where = f"{config_file()}: [keymap]"
    if not isinstance(keymap, dict):
        return {}, [f"{config_file()}: [keymap] must be a table"]
    bound = [_Bound(scope, b) for scope, bindings in scopes.items() for b in bindings]
    by_id: dict[str, list[_Bound]] = {}
    for entry in bound:
        if entry.binding.id:
            by_id.setdefault(entry.binding.id, []).append(entry)
    problems: list[str] = []
    wanted: dict[str, list[str]] = {}
    written: dict[str, str] = {}
    for binding_id, value in _flat(keymap):
        setting = f"{where} {_quoted(binding_id)}"
        if binding_id not in by_id:
            close = difflib.get_close_matches(binding_id, list(by_id), n=1)
            hint = f" (did you mean {_quoted(close[0])}?)" if close else ""
            problems.append(f"{setting} is not a binding id; F1 lists them{hint}")
            continue
        default = by_id[binding_id][0].binding
        keeps = f"so {default.description or binding_id} keeps {default.key}"
        if not isinstance(value, str) or not value.strip():
            problems.append(f'{setting} must be a key name string such as "ctrl+s"; {keeps}')
            continue
        keys: list[str] = []
        problem = ""
        for text in value.split(","):
            key, problem = parse_key(text)
            if problem:
                break
            typed = len(key) == 1 or ("+" not in key and key_to_character(key) is not None)
            if typed and any(entry.binding.priority for entry in by_id[binding_id]):
                problem = (
                    f"{text.strip()!r} is typed into text fields, and this binding works "
                    "while typing: it needs a modifier (ctrl+...) or a function key"
                )
                break
            key = _ALIAS_OF.get(key, key)
            if key not in keys:
                keys.append(key)
        if problem:
            problems.append(f"{setting} = {_quoted(value)}: {problem}; {keeps}")
            continue
        wanted[binding_id] = keys
        written[binding_id] = value

    def keys_of(entry: _Bound) -> list[str]:
        binding = entry.binding
        if binding.id in wanted:
            return wanted[binding.id]
        return [_ALIAS_OF.get(binding.key, binding.key)]

    def clash(binding_id: str) -> tuple[str, _Bound] | None:
        mine = by_id[binding_id]
        scopes_of = {entry.scope for entry in mine}
        overlapping = set(scopes) if APP_SCOPE in scopes_of else scopes_of | {APP_SCOPE}
        for key in wanted[binding_id]:
            for entry in bound:
                others = entry.scope in overlapping and entry.binding.id != binding_id
                if others and key in keys_of(entry):
                    return key, entry
        return None

    # The latest entry that clashes goes first: an earlier one in the file keeps its key.
    settled = False
    while not settled:
        settled = True
        for binding_id in reversed(list(wanted)):
            found = clash(binding_id)
            if found is None:
                continue
            key, other = found
            default = by_id[binding_id][0].binding
            problems.append(
                f"{where} {_quoted(binding_id)} = {_quoted(written[binding_id])}: "
                f"{key} is already the key of {other.name}; "
                f"so {default.description or binding_id} keeps {default.key}"
            )
            del wanted[binding_id]
            settled = False
            break
    return {binding_id: ",".join(keys) for binding_id, keys in wanted.items()}, problems


def apply_keymap(
    app: App[None], config: Config, scopes: Callable[[], Mapping[str, Sequence[Binding]]]
) -> tuple[dict[str, str], list[str]]:
    """Install ``[keymap]`` from config.toml's tables, checked by :func:`check_keymap`.

    Returns the keymap installed and the problems to report. ``scopes`` is
    called only when there is a keymap: it imports every screen.
    """
    keymap = config.get("keymap")
    if keymap is None:
        return {}, []
    used, problems = check_keymap(keymap, scopes() if isinstance(keymap, dict) else {})
    if used:
        app.set_keymap(used)
    return used, problems
