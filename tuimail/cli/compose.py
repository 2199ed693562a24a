"""``tuimail compose`` and ``tuimail 'mailto:...'``: open the app on a message begun here.

The arguments (and a ``mailto:`` link, RFC 6068) become a
:class:`~tuimail.message.Draft`, checked as the app would check it
(:func:`tuimail.mailto.check_draft`); the app then opens with it in Compose,
where the user reads it and sends it, or not. Nothing is sent from here.
``--print`` prints the draft as JSON instead, for a script (or a person)
that wants to see what a link asks for.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from tuimail.cli import exitcodes
from tuimail.cli.common import CLIError

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
                    "to": draft.to,
                    "cc": draft.cc,
                    "bcc": draft.bcc,
                    "subject": draft.subject,
                    "body": draft.body,
                    "headers": [list(header) for header in draft.headers],
                    "ignored": list(ignored),
                },
                indent=2,
            )
        )
        return exitcodes.OK
    from tuimail.cli import check_app_profile, settle_imports

    if args.profile is not None:
        check_app_profile(args.profile)
    from tuimail.ui.app import run_app

    settle_imports()
    return run_app(profile=args.profile, initial_draft=draft)
