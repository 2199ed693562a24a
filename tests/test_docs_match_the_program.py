"""The documentation against the program, both ways, where a machine can tell.

README.md and docs/*.md are what a new user reads first; docs/commands.md is
the reference for every command, option, profile key and setting. Each test
here fails when the program and its documentation drift apart: an option
added without a word in its command's section, a documented option, choice
or profile key that does not exist, an example command that the parser
refuses, a config.toml example the program would warn about, a link to a
file that is not there. (The exit-code table has its own test in
tests/test_cli_send.py.)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuimail import cli
from tuimail.cli.parser import with_mailto
from tuimail.profiles import Profile

ROOT = Path(__file__).parent.parent
COMMANDS_MD = ROOT / "docs" / "commands.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def reference() -> str:
    return COMMANDS_MD.read_text()


def sections() -> dict[str, str]:
    """docs/commands.md's section of each command (``## `tuimail NAME` ...``), and its intro."""
    text = reference()
    found = {"": text.split("\n## ", 1)[0]}
    for match in re.finditer(r"^## `tuimail (\w+)`.*?(?=^## |\Z)", text, re.M | re.S):
        found[match.group(1)] = match.group(0)
    return found


def mentions(text: str, word: str) -> bool:
    """``word`` (an option, a choice) stands in ``text`` as itself, not inside a longer one."""
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", text) is not None


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(commands.choices)


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.Action]]:
    """Every option of ``parser`` and of its subcommands, with the subcommand's path."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, action


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {o for _path, action in walk(parser) for o in action.option_strings}


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_option_is_documented_in_its_command_section(command: str) -> None:
    section = sections().get(command)
    assert section, f"docs/commands.md has no section ## `tuimail {command}`"
    missing = [
        f"tuimail {' '.join((command, *path))} {option}"
        for path, action in walk(command_parsers()[command])
        for option in action.option_strings
        if option not in ("-h", "--help") and not mentions(section, option)
    ]
    assert not missing, "options missing from docs/commands.md:\n" + "\n".join(missing)


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_action_and_choice_is_documented(command: str) -> None:
    section = sections()[command]
    missing = []
    for path, action in walk(command_parsers()[command]):
        if isinstance(action, argparse._SubParsersAction):
            continue
        for choice in action.choices or ():
            if not mentions(section, str(choice)):
                missing.append(f"{command} {' '.join(path)} {action.option_strings}: {choice}")
    parser = command_parsers()[command]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name in action.choices:
                if f"tuimail {command} {name}" not in section:
                    missing.append(f"tuimail {command} {name}")
    assert not missing, "not in docs/commands.md:\n" + "\n".join(missing)


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_the_synopsis_names_only_options_that_exist(command: str) -> None:
    """The indented block under a command's heading lists its usage: every option there exists."""
    section = sections()[command]
    synopsis = re.search(r"\n\n((?: {4}.*\n)+)", section)
    assert synopsis, f"## `tuimail {command}` starts with no usage block"
    known = option_strings(command_parsers()[command])
    named = re.findall(r"(?<![\w-])--?[a-zA-Z][\w-]*", synopsis.group(1))
    unknown = sorted({o for o in named if o not in known and o not in ("-h", "--help")})
    assert not unknown, f"tuimail {command}'s usage names options it does not have: {unknown}"


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_each_action_usage_lists_its_options(command: str) -> None:
    """`tuimail accounts test NAME [--password-stdin] [--json]`: each action's own line.

    A section can mention `--json` for one action and not for another; the
    usage lines say which takes what. One name of an option is enough there
    (`--quiet` for `-q`); the other tests want every name in the section.
    """
    parser = command_parsers()[command]
    block = re.search(r"\n\n((?: {4}.*\n)+)", sections()[command])
    assert block
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    actions = dict(subs[0].choices) if subs else {command: parser}
    usage: dict[str, str] = {}
    current = None
    for line in block.group(1).splitlines():
        start = re.match(r"\s*tuimail \w+(?: ([\w-]+))?", line)
        if start:
            current = start.group(1) if subs else command
        if current:
            usage[current] = usage.get(current, "") + line + "\n"
    missing = []
    for name, action_parser in actions.items():
        text = usage.get(name, "")
        if "[same options]" in text:  # accounts edit: those of add, and its own
            text += usage.get("add", "")
        for action in action_parser._actions:
            names = [o for o in action.option_strings if o not in ("-h", "--help")]
            if names and not any(mentions(text, o) for o in names):
                missing.append(f"tuimail {command} {name}: {'/'.join(names)}")
    assert not missing, "not on the usage lines of docs/commands.md:\n" + "\n".join(missing)


def test_the_top_level_options_are_documented() -> None:
    intro = sections()[""]
    top = cli.build_parser()
    for action in top._actions:
        for option in action.option_strings:
            if option not in ("-h", "--help"):
                assert mentions(intro, option), f"tuimail {option} is not in docs/commands.md"


def profile_table() -> dict[str, list[str]]:
    """The rows of docs/commands.md's profile-settings table: key -> its cells."""
    rows = {}
    for line in sections()["accounts"].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 4:
            rows[cells[0].strip("`")] = cells
    return rows


def test_every_profile_key_is_in_the_profile_table_and_no_other() -> None:
    keys = {f.name for f in dataclasses.fields(Profile)} - {"name", "extra"}
    table = profile_table()
    assert sorted(keys - set(table)) == [], "profile keys missing from docs/commands.md"
    assert sorted(set(table) - keys) == [], "docs/commands.md lists keys profiles do not have"


def test_each_profile_key_is_set_by_the_options_the_table_names() -> None:
    """The "set with" column: each option named there exists and sets that very key."""
    parsers = command_parsers()["accounts"]._actions
    sub = next(a for a in parsers if isinstance(a, argparse._SubParsersAction)).choices
    dests: dict[str, str] = {}
    for name in ("add", "edit"):
        for action in sub[name]._actions:
            for option in action.option_strings:
                dests[option] = action.dest
    table = profile_table()
    for key, (_key, _default, set_with, _what) in table.items():
        for option in re.findall(r"`(--[\w-]+)`", set_with):
            assert option in dests, f"{key}: accounts add/edit has no {option}"
            assert dests[option] == key, f"{key}: {option} sets {dests[option]}, not {key}"
    flagged = {dest for option, dest in dests.items() if option.startswith("--")}
    for key in table:
        if key in flagged:
            assert "`--" in table[key][2], f"{key} has an accounts option the table does not name"


def code_blocks(text: str) -> Iterator[str]:
    """Fenced blocks, and blocks indented by four or more spaces after a blank line."""
    for match in re.finditer(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S):
        yield match.group(1)
    without_fences = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    for match in re.finditer(r"(?:^|\n)\n((?: {4,}\S.*\n(?:\n(?= {4,}\S))?)+)", without_fences):
        yield match.group(1)


def example_commands() -> Iterator[tuple[str, str]]:
    """Every example command line of README.md and docs/*.md: (file, the line)."""
    for path in DOCS:
        for block in code_blocks(path.read_text()):
            lines = block.splitlines()
            index = 0
            while index < len(lines):
                line = lines[index].strip().removeprefix("$ ")
                while line.endswith("\\") and index + 1 < len(lines):
                    index += 1
                    line = line[:-1] + " " + lines[index].strip()
                index += 1
                if line.startswith("tuimail ") or line == "tuimail":
                    yield path.relative_to(ROOT).as_posix(), line


def is_example(words: list[str]) -> bool:
    """A command to run, not a usage line (``[--json]``, ``ID...``) or program output."""
    if any(mark in word for word in words for mark in ("[", "(", "...", "COMMAND")):
        return False
    if len(words) == 1:
        return True
    second = words[1]
    return second in cli.COMMANDS or second.startswith("-") or second.lower().startswith("mailto:")


def test_every_example_command_is_accepted_by_the_parser() -> None:
    refused = []
    checked = 0
    for where, line in example_commands():
        words = shlex.split(line, comments=True)
        for stop in ("|", "&", "&&", ";", "<", ">"):
            if stop in words:
                words = words[: words.index(stop)]
        if not is_example(words):
            continue
        checked += 1
        errors = io.StringIO()
        try:
            with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
                cli.build_parser().parse_args(with_mailto(words[1:]))
        except SystemExit as exit:
            if exit.code:
                refused.append(f"{where}: {line}\n    {errors.getvalue().strip().splitlines()[-1]}")
    assert checked > 30, f"only {checked} example commands found: is the extraction broken?"
    assert not refused, "example commands the parser refuses:\n" + "\n".join(refused)


def test_commands_named_in_the_text_have_those_options() -> None:
    """`tuimail outbox flush --all` in a sentence: the command exists and takes the option.

    Such a span is often a fragment (`tuimail send --from`, `tuimail check`),
    so only an unknown option, command or action counts, not a missing value.
    """
    wrong = []
    for path in DOCS:
        text = re.sub(r"\s*\n\s*", " ", path.read_text())
        for span in re.findall(r"`(tuimail [^`]+)`", text):
            words = shlex.split(span)
            for stop in ("|", "&", "&&", ";", "<", ">"):
                if stop in words:
                    words = words[: words.index(stop)]
            if not is_example(words):
                continue
            # `tuimail accounts add/edit --x`: each action of the pair.
            choices = words[2].split("/") if len(words) > 2 and "/" in words[2] else [None]
            for choice in choices:
                arguments = words[1:] if choice is None else [words[1], choice, *words[3:]]
                errors = io.StringIO()
                try:
                    with (
                        contextlib.redirect_stderr(errors),
                        contextlib.redirect_stdout(io.StringIO()),
                    ):
                        cli.build_parser().parse_args(with_mailto(arguments))
                except SystemExit:
                    said = errors.getvalue()
                    if "unrecognized arguments" in said or "invalid choice" in said:
                        wrong.append(f"{path.relative_to(ROOT)}: `{span}`: {said.strip()[-120:]}")
    assert not wrong, "\n".join(wrong)


def test_the_python_example_of_the_readme_sends(capsys: pytest.CaptureFixture[str]) -> None:
    """README.md's "Using the core from Python", run as written (on a free port, not 2525)."""
    from aiosmtpd.smtp import SMTP

    from tests.smtpservers import ServerThread, Sink

    blocks = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)
    assert len(blocks) == 1
    sink = Sink()
    with ServerThread() as servers:
        port = servers.start(lambda: SMTP(sink))
        code = blocks[0].replace("port=2525", f"port={port}")
        assert code != blocks[0], "the example no longer sends to port 2525"
        exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.rstrip().endswith("True None")
    assert "-> MAIL FROM:<a@example.test>" in printed
    assert [m.rcpt_tos for m in sink.messages] == [["b@example.test"]]


def toml_example(header: str) -> dict[str, object]:
    """The config.toml example in docs/commands.md that starts with ``header``."""
    for block in code_blocks(reference()):
        text = "\n".join(line.strip() for line in block.splitlines())
        if text.startswith(header):
            return tomllib.loads(text)
    raise AssertionError(f"docs/commands.md has no config.toml example starting {header}")


def test_every_config_table_the_code_reads_is_documented() -> None:
    """A ``[table]`` of config.toml that some module reads is named in docs/commands.md."""
    from tuimail.inbox.authcheck import CONFIG_TABLE

    read = {".".join(CONFIG_TABLE)}
    for path in (ROOT / "tuimail").rglob("*.py"):
        read.update(re.findall(r"(?:tables|config)\.get\(\"(\w+)\"", path.read_text()))
    assert {"keymap", "outbox", "sandbox", "dns"} <= read, "the search found too little"
    text = reference()
    assert sorted(t for t in read if f"[{t}]" not in text and f"[[{t}." not in text) == []


def test_the_documented_outbox_settings_are_the_ones_read() -> None:
    from tuimail.outbox import RetryPolicy

    table = toml_example("[outbox]")["outbox"]
    assert isinstance(table, dict)
    assert set(table) == set(RetryPolicy.LIMITS)
    policy = RetryPolicy.from_config(table)
    assert dataclasses.asdict(policy) == {k: float(v) for k, v in table.items()}


def test_the_documented_sandbox_settings_are_accepted() -> None:
    from tuimail.inbox.mailboxes import rules_from_config
    from tuimail.sandbox.config import CHAOS_KEYS, chaos_from_table

    table = toml_example("[sandbox]\nthrottle")["sandbox"]
    found, problems = chaos_from_table(table)
    assert problems == [] and found
    section = sections()["serve"]
    assert all(mentions(section, key) for key in CHAOS_KEYS)
    rules = rules_from_config(toml_example("[[sandbox.mailboxes]]"))
    assert [rule.name for rule in rules] == ["alice", "billing", "newsletters"]


def test_the_documented_monitor_settings_are_accepted() -> None:
    from tuimail.ui.screens.monitor import monitor_settings

    settings = monitor_settings(toml_example("[monitor]"))
    assert settings.problems == []


def test_the_documented_keymap_is_accepted() -> None:
    """The example remaps keys without a warning: no key it gives is another binding's."""
    from tuimail.ui import settings
    from tuimail.ui.app import TuimailApp

    keymap = toml_example("[keymap]")["keymap"]
    assert isinstance(keymap, dict)
    used, problems = settings.check_keymap(keymap, TuimailApp().binding_scopes())
    assert problems == []
    assert set(used) == set(keymap)


def test_the_keys_in_the_readme_are_the_apps() -> None:
    """Every key README.md's table of the app names is bound on some screen of it."""
    from tuimail.ui.app import TuimailApp

    bound = {
        binding.key for bindings in TuimailApp().binding_scopes().values() for binding in bindings
    }
    table = "\n".join(
        line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `")
    )
    assert table, "README.md has no table of the app's keys"
    aliases = {"/": "slash"}
    # `enter` on a row is the table's own selection, not a binding: not checked.
    named = re.findall(r"`((?:ctrl\+)?[A-Za-z0-9/]+)`", table)
    keys = [
        aliases.get(word, word.lower() if re.fullmatch(r"F\d+", word) else word)
        for word in named
        if re.fullmatch(r"ctrl\+\w|F\d+|[a-zA-Z/]", word)
    ]
    assert len(keys) > 20
    assert sorted(set(keys) - bound) == []


def test_every_file_of_the_repository_the_docs_name_exists() -> None:
    """`tuimail/smtp_stepper.py`, `tests/ui_support.py`, `tuimail/ui/`: still there.

    A path under a user's directory (`~/.config/tuimail/profiles.toml`,
    `$XDG_DATA_HOME/tuimail/drafts/`) is not the repository's and is not
    checked; nor is a name without an extension or a final slash (the
    benchmarks' `tuimail/minimal` is a ratio, not a file).
    """
    cited = re.compile(
        r"(?<![\w/~.}$-])((?:tuimail|tests|benchmarks|share|themes|docs|\.ci)/[\w./-]*)"
    )
    missing = []
    for path in DOCS:
        for name in cited.findall(path.read_text()):
            name = name.rstrip(".")
            if (name.endswith("/") or re.search(r"\.\w+$", name)) and not (ROOT / name).exists():
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert not missing, "files the docs name that are not in the repository:\n" + "\n".join(missing)


def test_every_link_between_the_docs_leads_to_a_file() -> None:
    broken = []
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
            if re.match(r"[a-z]+:", target):  # https:, mailto:, javascript: (an example)
                continue
            if not (path.parent / target).exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, "links to missing files:\n" + "\n".join(broken)
