"""``tuimail doctor``: check the keyring, config paths and TLS trust store."""

from __future__ import annotations

import argparse

from tuimail.cli import exitcodes


def define_options(doctor: argparse.ArgumentParser) -> None:
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(handler=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from tuimail.console import terminal_json
    from tuimail.doctor import run_checks
    from tuimail.terminal_text import escape_controls

    checks = run_checks()
    if args.json:
        print(terminal_json([c.to_json() for c in checks], indent=2))
    else:
        for check in checks:
            mark = "ok  " if check.ok else "FAIL"
            # Details quote paths, backends and library errors: escaped.
            print(escape_controls(f"[{mark}] {check.name}: {check.detail}"))
            if not check.ok and check.fix:
                print(escape_controls(f"       fix: {check.fix}"))
    return exitcodes.OK if all(c.ok for c in checks) else 1
