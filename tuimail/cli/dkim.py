"""``tuimail dkim``: make a DKIM key and the DNS record to publish; keep a key in the keyring.

Also the ``--dkim-*`` options of ``tuimail send``; they are applied with the
other signing options by tuimail/cli/protection.py, and the signing itself
is tuimail/dkim_signing.py's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tuimail.cli import exitcodes
from tuimail.cli.common import CLIError

if TYPE_CHECKING:
    pass

#: The file name of a key ``keygen`` writes, in ``--out``.
KEY_FILE_NAME = "{domain}_{selector}.pem"


def define_options(dkim: argparse.ArgumentParser) -> None:
    dkim.description = (
        "DKIM keys: make one and print the DNS TXT record to publish (keygen), "
        "or keep one in the keyring instead of a file (import-key)."
    )
    dkim.epilog = (
        "exit codes: 0 done, 2 bad arguments, 4 the key could not be written, read or stored"
    )
    commands = dkim.add_subparsers(dest="dkim_command", metavar="ACTION", required=True)
    keygen = commands.add_parser(
        "keygen", help="make a private key and print the TXT record to publish"
    )
    keygen.add_argument("domain", metavar="DOMAIN", help="the signing domain (d=)")
    keygen.add_argument("selector", metavar="SELECTOR", help="the selector (s=), e.g. mail2026")
    keygen.add_argument(
        "--type",
        choices=["rsa", "ed25519"],
        default="rsa",
        dest="key_type",
        help="rsa (the default; every receiver checks it) or ed25519 (RFC 8463)",
    )
    keygen.add_argument(
        "--bits", type=int, default=2048, metavar="N", help="RSA key size (default 2048)"
    )
    where = keygen.add_mutually_exclusive_group()
    where.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write the key in DIR (default: the config dir's dkim/); a file is never replaced",
    )
    where.add_argument(
        "--keyring",
        metavar="PROFILE",
        help="store the key in the keyring for PROFILE instead of a file",
    )
    keygen.set_defaults(handler=cmd_keygen)
    store = commands.add_parser(
        "import-key", help="store a key file's key in the keyring for a profile"
    )
    store.add_argument("profile", metavar="PROFILE")
    store.add_argument(
        "key_file", metavar="KEYFILE", help="a PEM private key ('-': standard input)"
    )
    store.set_defaults(handler=cmd_import_key)


def add_dkim_options(send: argparse.ArgumentParser) -> None:
    """``send``'s options that sign with DKIM, or change the profile's signing."""
    group = send.add_argument_group(
        "DKIM signing (default: the profile's dkim_domain, dkim_selector, dkim_key)"
    )
    group.add_argument("--dkim-domain", metavar="DOMAIN", help="the signing domain (d=)")
    group.add_argument("--dkim-selector", metavar="NAME", help="the selector (s=)")
    group.add_argument(
        "--dkim-key",
        metavar="PATH",
        help="the PEM private key (RSA or Ed25519), readable by its owner only",
    )


def _dns_name(value: str, what: str) -> str:
    from tuimail.profiles import DKIM_NAME_RE

    name = value.rstrip(".").lower() if what == "DOMAIN" else value
    if len(name) > 253 or not DKIM_NAME_RE.fullmatch(name):
        raise CLIError(
            f"{what}: {value!r} is not a DNS name (letters, digits, '-' and '.')", exitcodes.USAGE
        )
    return name


def cmd_keygen(args: argparse.Namespace) -> int:
    """Make the key, keep it (a new 0600 file, or the keyring), print the record."""
    from tuimail.dkim_signing import KeyType, generate_key, zone_line

    domain = _dns_name(args.domain, "DOMAIN")
    selector = _dns_name(args.selector, "SELECTOR")
    kind = KeyType(args.key_type)
    if kind is KeyType.RSA and not 1024 <= args.bits <= 8192:
        raise CLIError("--bits: an RSA key of 1024 to 8192 bits (2048 is usual)", exitcodes.USAGE)
    if kind is KeyType.ED25519 and args.bits != 2048:
        raise CLIError("--bits is for RSA keys: an Ed25519 key has one size", exitcodes.USAGE)
    if args.keyring:
        from tuimail.cli.common import saved_profile

        saved_profile(args.keyring)  # a typo must not store a key nobody uses
    key = generate_key(kind, args.bits)
    if args.keyring:
        kept = _store_in_keyring(args.keyring, key.private_pem.reveal().decode("ascii"))
        setting = 'dkim_key = "keyring"'
    else:
        path = _write_key_file(args.out, domain, selector, key.private_pem)
        kept = f"wrote the private key to {path} (mode 0600)"
        setting = f"dkim_key = {json.dumps(str(path))}"
    print(f"tuimail: {kept}", file=sys.stderr)
    print(
        f"tuimail: publish this TXT record at {selector}._domainkey.{domain}, then sign with "
        f'a profile that has dkim_domain = "{domain}", dkim_selector = "{selector}", '
        f"{setting} (or send --dkim-domain, --dkim-selector, --dkim-key):",
        file=sys.stderr,
    )
    print(zone_line(domain, selector, key.record))
    return exitcodes.OK


def _write_key_file(out: Path | None, domain: str, selector: str, key: object) -> Path:
    from tuimail import paths
    from tuimail.dkim_signing import SigningKey, write_new_key

    assert isinstance(key, SigningKey)
    directory = out if out is not None else paths.config_dir() / "dkim"
    try:
        paths.ensure_private_dir(directory, tighten=out is None)
    except OSError as exc:
        raise CLIError(f"cannot make the directory {directory}: {exc.strerror or exc}") from None
    path = (directory / KEY_FILE_NAME.format(domain=domain, selector=selector)).absolute()
    try:
        write_new_key(path, key)
    except FileExistsError:
        raise CLIError(
            f"{path} exists and is never replaced (a published record may belong to it): "
            "choose another selector, or another --out DIR"
        ) from None
    except OSError as exc:
        raise CLIError(f"cannot write the key to {path}: {exc.strerror or exc}") from None
    return path


def _store_in_keyring(profile_name: str, pem: str) -> str:
    from tuimail.credentials import CredentialStore, KeyringError, Secret
    from tuimail.dkim_signing import key_entry

    entry = key_entry(profile_name)
    try:
        CredentialStore().set(entry, Secret(pem))
    except KeyringError as exc:
        raise CLIError(f"the key could not be stored: {exc}") from None
    return f"stored the private key in the keyring (service tuimail, entry {entry!r})"


def cmd_import_key(args: argparse.Namespace) -> int:
    """Check a key and keep it in the keyring for a saved profile (the file stays)."""
    from tuimail.cli.common import saved_profile
    from tuimail.dkim_signing import MAX_KEY_FILE, DkimKeyError, parse_key, read_key_file

    saved_profile(args.profile)
    try:
        if args.key_file == "-":
            pem = sys.stdin.buffer.read(MAX_KEY_FILE + 1)
            if len(pem) > MAX_KEY_FILE:
                raise DkimKeyError("on standard input", "is far larger than a private key")
            key = parse_key(pem, "on standard input")
        else:
            pem = read_key_file(Path(args.key_file))
            key = parse_key(pem, repr(args.key_file))
    except DkimKeyError as exc:
        raise CLIError(str(exc)) from None
    try:
        text = pem.decode("ascii")
    except UnicodeDecodeError:
        raise CLIError("the key file holds more than a PEM key (non-ASCII bytes)") from None
    del pem, key
    print(f"tuimail: {_store_in_keyring(args.profile, text)}", file=sys.stderr)
    print(
        f'tuimail: set dkim_key = "keyring" in the profile {args.profile!r} (profiles.toml) '
        "to sign with it; the key file can then be deleted",
        file=sys.stderr,
    )
    return exitcodes.OK
