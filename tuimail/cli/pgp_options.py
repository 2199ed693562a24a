"""``send``'s OpenPGP options (tuimail/pgp_mime.py), and the passphrase asked at the terminal.

``--pgp-sign``, ``--pgp-encrypt`` and ``--pgp-key`` override the profile's
``pgp_sign``, ``pgp_encrypt`` and ``pgp_key`` (tuimail/cli/protection.py
applies them); a locked key is unlocked with a passphrase typed at the
terminal, masked, never echoed or logged.
"""

from __future__ import annotations

import argparse
import sys


def add_pgp_options(send: argparse.ArgumentParser) -> None:
    """The options, in their own group of ``send --help``."""
    group = send.add_argument_group(
        "OpenPGP (PGP/MIME through your gpg; default: the profile's pgp_sign, pgp_encrypt, pgp_key)"
    )
    group.add_argument(
        "--pgp-sign", action="store_true", help="sign the message (multipart/signed)"
    )
    group.add_argument(
        "--pgp-encrypt",
        action="store_true",
        help="encrypt to every recipient's key in your keyring; refused if one has none",
    )
    group.add_argument(
        "--pgp-key", metavar="ID", help="the key to sign with (id, fingerprint or address)"
    )


def ask_passphrase(words: str) -> str | None:
    """A passphrase typed at the terminal (masked), or None when there is no terminal."""
    import getpass

    if not sys.stdin.isatty():
        return None
    try:
        return getpass.getpass(f"{words}; passphrase (not shown): ")
    except (EOFError, KeyboardInterrupt):
        return None
