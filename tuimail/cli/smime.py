"""``tuimail smime``: keep an S/MIME key's passphrase in the keyring; ``send``'s ``--smime-*``.

The options are applied with the other signing options by
tuimail/cli/protection.py; signing and encrypting are tuimail/smime.py's.
"""

from __future__ import annotations

import argparse
import sys

from tuimail.cli import exitcodes
from tuimail.cli.common import CLIError, read_password


def define_options(smime: argparse.ArgumentParser) -> None:
    smime.description = (
        "S/MIME: store the passphrase of a profile's smime_key in the keyring "
        "(service tuimail, entry PROFILE/smime-key-passphrase)."
    )
    commands = smime.add_subparsers(dest="smime_command", metavar="ACTION", required=True)
    store = commands.add_parser(
        "passphrase", help="store the passphrase of PROFILE's S/MIME key in the keyring"
    )
    store.add_argument("profile", metavar="PROFILE")
    store.add_argument(
        "--passphrase-stdin",
        action="store_true",
        help="read it from the first line of standard input instead of asking",
    )
    store.set_defaults(handler=cmd_passphrase)


def add_smime_options(send: argparse.ArgumentParser) -> None:
    """``send``'s options that sign or encrypt with S/MIME, or change the profile's files."""
    group = send.add_argument_group(
        "S/MIME (default: the profile's smime_sign, smime_encrypt, smime_cert, smime_key, "
        "smime_recipient_certs)"
    )
    group.add_argument("--smime-sign", action="store_true", help="sign (multipart/signed, sha-256)")
    group.add_argument(
        "--smime-encrypt",
        action="store_true",
        help="encrypt to every recipient's certificate (AES-256); refused if one lacks one",
    )
    group.add_argument("--smime-cert", metavar="PATH", help="your certificate (PEM)")
    group.add_argument(
        "--smime-key", metavar="PATH", help="your private key (PEM), readable by its owner only"
    )
    group.add_argument(
        "--smime-recipient-certs",
        metavar="DIR",
        help="a directory of recipients' certificates (PEM), found by e-mail address",
    )


def cmd_passphrase(args: argparse.Namespace) -> int:
    """Keep the passphrase in the keyring for a saved profile; it is never printed."""
    from tuimail.cli.common import saved_profile
    from tuimail.credentials import CredentialStore, KeyringError
    from tuimail.smime import passphrase_entry

    saved_profile(args.profile)
    secret = read_password(args.passphrase_stdin, "S/MIME key passphrase: ")
    entry = passphrase_entry(args.profile)
    try:
        CredentialStore().set(entry, secret)
    except KeyringError as exc:
        raise CLIError(f"the passphrase could not be stored: {exc}") from None
    print(
        f"tuimail: stored the S/MIME key's passphrase in the keyring "
        f"(service tuimail, entry {entry!r})",
        file=sys.stderr,
    )
    return exitcodes.OK
