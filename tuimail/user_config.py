"""config.toml, the user's settings file, read in one place for every face.

``$XDG_CONFIG_HOME/tuimail/config.toml`` holds ``[keymap]`` (the app's keys),
``[monitor]`` (the app's Monitor), ``[outbox]`` (retry timing, for the app
and the command line alike), ``[sandbox]`` (the built-in sandbox's port) and
``[dns]`` (the resolvers direct delivery asks). A file that cannot be read (not
TOML, not a regular file) and a bad ``[outbox]`` table are errors in both faces, with the
same words, wherever the retry timing is needed: a retry schedule the user
did not ask for must not run quietly. The app reads such a file as empty for
its keys and Monitor, and says why once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tuimail import paths
from tuimail.errors import TuimailError
from tuimail.small_files import parse_toml, read_small_text

if TYPE_CHECKING:  # the outbox brings the SMTP client: imported when a policy is asked for
    from tuimail.outbox import RetryPolicy

#: config.toml's tables as read: each user checks the values of its own table.
Config = dict[str, object]


@dataclass(frozen=True)
class LoadedConfig:
    """config.toml as read: its tables, or (``problem``, in words) why it could not be read."""

    tables: Config = field(default_factory=dict)
    problem: str = ""


class ConfigError(TuimailError):
    """A table of config.toml holds a value tuimail cannot use; the message names it."""


def config_file() -> Path:
    return paths.config_dir() / "config.toml"


def load_config() -> LoadedConfig:
    """The file's tables (none when there is no file), or why it cannot be read."""
    path = config_file()
    try:
        return LoadedConfig(parse_toml(read_small_text(path)))
    except FileNotFoundError:
        return LoadedConfig()
    except OSError as exc:
        return LoadedConfig(problem=f"{path} cannot be read: {exc.strerror or exc}")
    except ValueError as exc:  # not UTF-8, not TOML, nested too deep
        return LoadedConfig(problem=f"{path} cannot be read: {exc}")


def retry_policy(config: LoadedConfig | None = None) -> RetryPolicy:
    """The outbox's retry timing from ``[outbox]`` (defaults when the table is absent).

    ``config`` is what :func:`load_config` returned (read now when ``None``).
    Raises :class:`ConfigError` when the file cannot be read, or for a value
    out of range or not a number.
    """
    from tuimail.outbox import RetryPolicy

    if config is None:
        config = load_config()
    if config.problem:
        raise ConfigError(config.problem)
    try:
        return RetryPolicy.from_config(config.tables.get("outbox", {}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config.toml [outbox]: {exc}") from None


#: The built-in sandbox's port when config.toml names none: fixed, so an
#: application under test can be pointed at it (``tuimail serve``'s default too).
DEFAULT_SANDBOX_PORT = 2525


def sandbox_port(config: LoadedConfig) -> tuple[int, str]:
    """The port the built-in sandbox tries first, from ``[sandbox] port``, and a problem.

    The problem (empty when none) says in words why the value was not used;
    the port is then :data:`DEFAULT_SANDBOX_PORT`, since a sandbox on the
    default port is more use than none. ``0`` asks for any free port.
    """
    table = config.tables.get("sandbox", {})
    if not isinstance(table, dict) or "port" not in table:
        if isinstance(table, dict):
            return DEFAULT_SANDBOX_PORT, ""
        return DEFAULT_SANDBOX_PORT, (
            f"config.toml: sandbox is not a table (write [sandbox] with port = ...); "
            f"the sandbox uses port {DEFAULT_SANDBOX_PORT}"
        )
    value = table["port"]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
        return value, ""
    return DEFAULT_SANDBOX_PORT, (
        f"config.toml [sandbox] port = {value!r} is not a port number "
        f"(a whole number from 1 to 65535, or 0 for any free port); "
        f"the sandbox uses port {DEFAULT_SANDBOX_PORT}"
    )


def direct_ehlo_name(config: LoadedConfig) -> str:
    """``[direct] ehlo_name``: the name direct delivery greets MX servers with; "" when unset.

    Unset, direct delivery uses this machine's fully qualified name
    (tuimail/routing.py, ``choose_ehlo_name``). Raises :class:`ConfigError`
    when the file cannot be read or the value is not a string.
    """
    if config.problem:
        raise ConfigError(config.problem)
    table = config.tables.get("direct", {})
    if not isinstance(table, dict):
        raise ConfigError(
            'config.toml: direct is not a table (write [direct] with ehlo_name = "...")'
        )
    value = table.get("ehlo_name", "")
    if not isinstance(value, str):
        raise ConfigError(
            f'config.toml [direct] ehlo_name = {value!r} is not a name like "mail.example.org"'
        )
    return value.strip()


def dns_servers(config: LoadedConfig) -> list[str]:
    """``[dns] servers`` (``["HOST", "HOST:PORT", ...]``): the resolvers to ask; empty: the system's.

    Raises :class:`ConfigError` when the file cannot be read or the value is
    not a list of strings: a lookup through a resolver the user did not
    choose must not happen quietly.
    """
    if config.problem:
        raise ConfigError(config.problem)
    table = config.tables.get("dns", {})
    if not isinstance(table, dict):
        raise ConfigError('config.toml: dns is not a table (write [dns] with servers = ["..."])')
    value = table.get("servers", [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(
            f'config.toml [dns] servers = {value!r} is not a list of "HOST" or "HOST:PORT"'
        )
    return list(value)
