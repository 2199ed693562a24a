"""``tuimail compose`` and ``tuimail 'mailto:...'``: open the app on a message begun here.

The arguments (and a ``mailto:`` link, RFC 6068, or an .eml file) become a
:class:`~tuimail.message.Draft`, checked as the app would check it
(:func:`tuimail.mailto.check_draft`); the app then opens with it in Compose,
where the user reads it and sends it, or not. Nothing is sent from here.
``--print`` prints the draft as JSON instead, for a script (or a person)
that wants to see what a link asks for.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tuimail.cli import exitcodes
from tuimail.cli.common import CLIError
from tuimail.errors import TuimailError

if TYPE_CHECKING:
    from tuimail.message import Draft


def define_options(compose: argparse.ArgumentParser) -> None:
    compose.description = (
        "Open the app's Compose with a message filled in, from these options or a "
        "mailto: link (RFC 6068). Nothing is sent until you send it there."
    )
    compose.add_argument(
        "link", nargs="?", metavar="MAILTO", help="a mailto: link, as a browser passes it"
    )
    compose.add_argument(
        "--to", action="append", default=[], metavar="ADDR", help="recipient (repeatable)"
    )
    compose.add_argument("--cc", action="append", default=[], metavar="ADDR")
    compose.add_argument("--bcc", action="append", default=[], metavar="ADDR")
    compose.add_argument("--subject", metavar="TEXT", help="the subject (replaces the link's)")
    compose.add_argument("--body", metavar="TEXT", help="the message text (replaces the link's)")
    compose.add_argument(
        "--eml",
        metavar="PATH",
        help="open this message (an .eml file; '-' reads standard input): its headers "
        "and text in the fields, its other parts as attachments",
    )
    compose.add_argument(
        "--print",
        dest="print_draft",
        action="store_true",
        help="print the message as JSON instead of opening the app",
    )
    compose.set_defaults(handler=cmd_compose)


def draft_from_args(args: argparse.Namespace) -> tuple[Draft, tuple[str, ...]]:
    """The checked draft the arguments ask for, and the link's ignored fields.

    Raises :class:`~tuimail.cli.common.CLIError` (exit 3) naming what is wrong.
    """
    from tuimail.mailto import MailtoError, check_draft, is_mailto, parse_mailto
    from tuimail.message import Draft

    if args.eml is not None:
        return _eml_draft(args), ()
    draft = Draft()
    ignored: tuple[str, ...] = ()
    try:
        if args.link is not None:
            if not is_mailto(args.link):
                raise CLIError(
                    f"{args.link!r} is not a mailto: link; give addresses with --to",
                    exitcodes.USAGE,
                )
            link = parse_mailto(args.link)
            draft, ignored = link.draft, link.ignored
        draft.to += args.to
        draft.cc += args.cc
        draft.bcc += args.bcc
        if args.subject is not None:
            draft.subject = args.subject
        if args.body is not None:
            draft.body = args.body
        return check_draft(draft), ignored
    except MailtoError as exc:
        raise CLIError(f"cannot compose this message: {exc}", exitcodes.INVALID_MESSAGE) from None


def _eml_draft(args: argparse.Namespace) -> Draft:
    """The draft of ``--eml``, as the palette's "Open an .eml file" makes it (tuimail/eml.py).

    Its headers fill the fields and its other parts are saved as attachments
    (in the data dir's ``opened/``); the app checks them when the message is
    sent, as it does an .eml opened there. ``--to``, ``--cc`` and ``--bcc``
    add to its recipients, ``--subject`` and ``--body`` replace its own: those
    are checked here as for any ``compose``.
    """
    from tuimail.drafts import DraftStore
    from tuimail.eml import draft_from_eml, opened_parts_dir, prune_opened
    from tuimail.mailto import MailtoError, check_draft
    from tuimail.message import MAX_MESSAGE_BYTES, Draft, read_regular_file
    from tuimail.small_files import NotReadable

    if args.link is not None:
        raise CLIError("give a mailto: link or --eml, not both", exitcodes.USAGE)
    if args.eml == "-":
        raw = sys.stdin.buffer.read(MAX_MESSAGE_BYTES + 1)
        if len(raw) > MAX_MESSAGE_BYTES:
            limit = MAX_MESSAGE_BYTES // (1024 * 1024)
            raise CLIError(
                f"--eml: the message on standard input is larger than the limit of {limit} MiB",
                exitcodes.INVALID_MESSAGE,
            )
    else:
        try:
            raw = read_regular_file(Path(args.eml))
        except NotReadable as exc:
            raise CLIError(f"--eml: {args.eml!r} {exc.words}", exitcodes.INVALID_MESSAGE) from None
    try:
        given = check_draft(
            Draft(
                to=args.to,
                cc=args.cc,
                bcc=args.bcc,
                subject=args.subject or "",
                body=args.body or "",
            )
        )
    except MailtoError as exc:
        raise CLIError(f"cannot compose this message: {exc}", exitcodes.INVALID_MESSAGE) from None
    prune_opened()  # the parts of .eml files opened before, once no draft uses them
    try:
        draft = draft_from_eml(raw, opened_parts_dir(DraftStore.new_id()))
    except OSError as exc:
        raise CLIError(f"--eml: the message's parts could not be saved: {exc}") from None
    except (TuimailError, ValueError) as exc:
        raise CLIError(
            f"--eml: not a message tuimail can open: {exc}", exitcodes.INVALID_MESSAGE
        ) from None
    draft.to += given.to
    draft.cc += given.cc
    draft.bcc += given.bcc
    if args.subject is not None:
        draft.subject = given.subject
    if args.body is not None:
        draft.body = given.body
    return draft


def _terminal_as_stdin() -> None:
    """After ``--eml -`` read standard input, give the app the terminal there instead.

    The app reads its keys from standard input, which was the message's pipe.
    """
    try:
        fd = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        raise CLIError(
            "--eml - read the message from standard input, and the app then needs a "
            "terminal: none was found (use --print to see the message as JSON)",
            exitcodes.USAGE,
        ) from None
    os.dup2(fd, 0)
    os.close(fd)


def cmd_compose(args: argparse.Namespace) -> int:
    from tuimail.terminal_text import escape_controls

    draft, ignored = draft_from_args(args)
    if ignored:
        names = ", ".join(sorted(set(ignored)))
        print(
            escape_controls(f"tuimail: the link's fields {names} are ignored"),
            file=sys.stderr,
        )
    if args.print_draft:
        from tuimail.console import terminal_json

        print(
            terminal_json(
                {
                    "from": draft.from_address,
                    "reply_to": draft.reply_to,
                    "to": draft.to,
                    "cc": draft.cc,
                    "bcc": draft.bcc,
                    "subject": draft.subject,
                    "body": draft.body,
                    "headers": [list(header) for header in draft.headers],
                    "attachments": [str(path) for path in draft.attachments],
                    "ignored": list(ignored),
                },
                indent=2,
            )
        )
        return exitcodes.OK
    from tuimail.cli import check_app_profile, settle_imports

    if args.profile is not None:
        check_app_profile(args.profile)
    if args.eml == "-":
        _terminal_as_stdin()
    from tuimail.ui.app import run_app

    settle_imports()
    return run_app(profile=args.profile, initial_draft=draft)
