"""Command-line faces of tuimail: one function per subcommand, no business logic.

Heavy modules are imported inside the subcommand that needs them, so
``tuimail send`` never pays for Textual and ``tuimail --help`` is instant.

The package is split so that a command pays only for its own code, too:
:mod:`tuimail.cli.parser` lists the commands, and each command group lives
in its own module (:mod:`~tuimail.cli.send`, :mod:`~tuimail.cli.accounts`,
:mod:`~tuimail.cli.probe`, :mod:`~tuimail.cli.outbox`, :mod:`~tuimail.cli.serve`,
:mod:`~tuimail.cli.doctor`), which defines that command's options and its
handlers. :func:`main` imports only the module of the command it runs;
:mod:`tuimail.cli.common` holds what several commands share.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence

from tuimail.cli.common import CLIError, settle_imports
from tuimail.cli.parser import COMMANDS, build_parser, command_in

__all__ = [
    "COMMANDS",
    "CLIError",
    "build_parser",
    "command_in",
    "main",
    "run",
    "settle_imports",
]


def cmd_app(args: argparse.Namespace) -> int:
    from tuimail.ui.app import run_app

    settle_imports()
    return run_app(profile=args.profile)


def run() -> None:
    """The ``tuimail`` command: :func:`main`, then a quick exit.

    Once the command is done, what is left is tearing down the modules it
    imported, and the garbage collector's passes over every object during that
    teardown cost a 170 ms ``tuimail send`` 25-35 ms on the benchmark machine.
    Frozen objects are left out of those passes. Only here, for the process's
    own command: a caller of :func:`main` (a test, a script) keeps a working
    collector.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = command_in(arguments)
    parser = build_parser(define=[command] if command else [])
    args = parser.parse_args(arguments)
    handler = getattr(args, "handler", cmd_app)
    try:
        return int(handler(args))
    except CLIError as exc:
        print(f"tuimail: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("tuimail: interrupted", file=sys.stderr)
        return 130
