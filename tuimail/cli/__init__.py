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

from tuimail.cli import exitcodes
from tuimail.cli.common import CLIError, settle_imports
from tuimail.cli.parser import COMMANDS, build_parser, command_in
from tuimail.closed_pipe import silence

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
    if args.profile is not None:
        check_app_profile(args.profile)
    from tuimail.ui.app import run_app

    settle_imports()
    return run_app(profile=args.profile)


def check_app_profile(name: str) -> None:
    """Refuse ``--profile NAME`` before the app starts when there is no such profile.

    The app would otherwise open on another profile without a word. It is
    checked here, in the launcher, because it reads profiles.toml, and the
    app's loop reads no file. A profiles.toml that cannot be read is left to
    the app, which shows what is wrong with it; only a name that is surely
    unknown is refused (exit 2, as for any bad argument), with the names
    that exist.
    """
    from tuimail.cli import exitcodes
    from tuimail.profiles import ProfileStore, ProfileStoreError
    from tuimail.sandbox_profile import SANDBOX_PROFILE

    try:
        saved = ProfileStore().load()
    except (ProfileStoreError, OSError):
        return
    if name in saved or name == SANDBOX_PROFILE:
        return
    known = [*saved, *([] if SANDBOX_PROFILE in saved else [f"{SANDBOX_PROFILE} (built-in)"])]
    raise CLIError(
        f"no profile named {name!r}; the profiles are: {', '.join(known)} "
        "(see 'tuimail accounts list')",
        exitcodes.USAGE,
    )


def run() -> None:
    """The ``tuimail`` command: :func:`main`, then a quick exit.

    Once the command is done, what is left is tearing down the modules it
    imported, and the garbage collector's passes over every object during that
    teardown cost a 170 ms ``tuimail send`` 25-35 ms on the benchmark machine.
    Frozen objects are left out of those passes. Only here, for the process's
    own command: a caller of :func:`main` (a test, a script) keeps a working
    collector.
    """
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # ``tuimail outbox list | head``: the reader has all it wanted. Exit as
        # a program killed by SIGPIPE would (128 + 13), without a traceback.
        silence(sys.stdout)
        code = exitcodes.CLOSED_PIPE
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
