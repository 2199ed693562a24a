"""The command line: every command listed, the options only of those asked for.

Each command's options, and the handlers they lead to, are defined by its own
module (``tuimail.cli.send`` for ``send``...), through its ``define_options``;
:func:`build_parser` imports that module only when the command is defined, so
running one command never imports the code of the others.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Sequence

from tuimail import __version__


def build_parser(define: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The command line, with the options of the commands in ``define`` (default: all).

    Every command is listed either way (for ``tuimail --help``), but defining
    the options of every command and subcommand cost a scripted ``tuimail
    send`` more than its SMTP session did, so :func:`main` defines only the
    one it runs.
    """
    parser = argparse.ArgumentParser(
        prog="tuimail",
        description="The SMTP workbench for the terminal. With no command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"tuimail {__version__}")
    parser.add_argument("--profile", help="profile to open the app with")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (summary, module) in COMMANDS.items():
        command = commands.add_parser(name, help=summary)
        if define is None or name in define:
            # __import__, not importlib.import_module: the import statement's own
            # machinery, so that ``-X importtime`` shows what a command costs.
            __import__(module, fromlist=["define_options"]).define_options(command)
    return parser


def command_in(arguments: Sequence[str]) -> str | None:
    """The command argparse will find in ``arguments``, if it is one of ours.

    Skips the top-level options, and the value of ``--profile`` (or of a
    prefix of it, which argparse also accepts).
    """
    takes_value = False
    for argument in arguments:
        if takes_value:
            takes_value = False
        elif argument.startswith("-"):
            takes_value = len(argument) > 2 and "--profile".startswith(argument)
        else:
            return argument if argument in COMMANDS else None
    return None


#: Each command: its one-line summary, and the module whose ``define_options``
#: defines its options (and, through them, its handlers).
COMMANDS: dict[str, tuple[str, str]] = {
    "send": ("send one message and print the SMTP transcript live", "tuimail.cli.send"),
    "accounts": ("list, add, edit, remove and test profiles", "tuimail.cli.accounts"),
    "probe": (
        "check a server's banner, EHLO, TLS, certificate and latency (Nagios-compatible)",
        "tuimail.cli.probe",
    ),
    "check": (
        "a mail domain's posture: MX, STARTTLS, SPF, DMARC, MTA-STS, TLS-RPT, DANE, DKIM",
        "tuimail.cli.check",
    ),
    "outbox": ("messages waiting to be sent: list, flush, retry, drop", "tuimail.cli.outbox"),
    "serve": (
        "run the sandbox: a local capture SMTP server with transcripts and faults",
        "tuimail.cli.serve",
    ),
    "inbox": (
        "what the sandbox caught: list, show, search, delete, save, release, wait",
        "tuimail.cli.inbox",
    ),
    "doctor": ("check the keyring, config paths and TLS trust store", "tuimail.cli.doctor"),
    "compose": (
        "open the app with a message filled in (options or a mailto: link)",
        "tuimail.cli.compose",
    ),
    "dkim": ("make a DKIM key and the DNS record to publish", "tuimail.cli.dkim"),
    "smime": ("keep an S/MIME key's passphrase in the keyring", "tuimail.cli.smime"),
}


def with_mailto(arguments: Sequence[str]) -> list[str]:
    """``tuimail 'mailto:...'`` (as a desktop's URL handler runs it) as ``tuimail compose``.

    The link stands where a command would: ``compose`` is put before it, so
    the link is that command's argument (and a link never reads as an option).
    """
    arguments = list(arguments)
    takes_value = False
    for index, argument in enumerate(arguments):
        if takes_value:
            takes_value = False
        elif argument.startswith("-"):
            takes_value = len(argument) > 2 and "--profile".startswith(argument)
        else:
            if argument[:7].lower() == "mailto:":
                arguments.insert(index, "compose")
            break
    return arguments
