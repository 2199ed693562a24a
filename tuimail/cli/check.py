"""``tuimail check DOMAIN``: a mail domain's posture, its DNS and its MX hosts, judged."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys

from tuimail.cli import exitcodes
from tuimail.cli.common import CLIError, seconds

_SELECTOR = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 1 to 65535")
    return int(text)


def _selector(text: str) -> str:
    if not _SELECTOR.fullmatch(text) or len(text) > 63:
        raise argparse.ArgumentTypeError(f"{text!r} is not a DKIM selector (letters, digits, -, _)")
    return text


def define_options(check: argparse.ArgumentParser) -> None:
    check.description = (
        "Check a mail domain's posture: its MX hosts and their reverse DNS, a live probe of "
        "each MX on port 25 (STARTTLS, certificate), SPF, DMARC, MTA-STS, TLS-RPT, DANE "
        "and the DKIM keys named. No mail is sent."
    )
    check.epilog = "exit codes (Nagios): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"
    check.add_argument("domain", metavar="DOMAIN")
    check.add_argument(
        "--dkim-selector",
        action="append",
        default=[],
        type=_selector,
        metavar="NAME",
        help="check the DKIM key at NAME._domainkey.DOMAIN (repeatable)",
    )
    check.add_argument(
        "--dns-server",
        metavar="HOST[:PORT]",
        help="the resolver to ask (default: config.toml [dns] servers, else the system's); "
        "DNSSEC is reported only when it validates",
    )
    check.add_argument(
        "--ca-file", metavar="PATH", help="trust this CA for MX and MTA-STS certificates"
    )
    check.add_argument(
        "--mx-port", type=_port, default=25, metavar="N", help="the MX port, for tests only"
    )
    check.add_argument(
        "--mta-sts-port",
        type=_port,
        default=443,
        metavar="N",
        help="the MTA-STS policy server's port, for tests only",
    )
    check.add_argument("--timeout", type=seconds, default=10.0, metavar="S")
    check.add_argument("--warn-days", type=int, default=21, metavar="N")
    check.add_argument("--crit-days", type=int, default=7, metavar="N")
    check.add_argument("--ehlo", metavar="NAME", help="the name given in EHLO to each MX")
    output = check.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON document")
    output.add_argument("--nagios", action="store_true", help="one Nagios plugin line")
    output.add_argument("--openmetrics", action="store_true", help="OpenMetrics text (Prometheus)")
    check.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from tuimail.probe import Status

    try:
        if args.crit_days > args.warn_days:
            raise CLIError("--crit-days must not be more than --warn-days", exitcodes.USAGE)
        return _check(args)
    except CLIError as exc:
        # Nagios convention: a check that cannot run is UNKNOWN (3), whatever the
        # cause, said on standard output: the one stream Nagios and Icinga show.
        from tuimail.terminal_text import escape_controls

        if args.nagios:
            print(escape_controls(f"MAILDOMAIN UNKNOWN - {exc}"))
        else:
            print(escape_controls(f"tuimail: {exc}"), file=sys.stderr)
        return int(Status.UNKNOWN)


def _servers(args: argparse.Namespace) -> tuple[str, ...]:
    from tuimail import user_config
    from tuimail.mx import parse_server

    if args.dns_server:
        servers = [args.dns_server]
    else:
        try:
            servers = user_config.dns_servers(user_config.load_config())
        except user_config.ConfigError as exc:
            raise CLIError(str(exc)) from None
    for server in servers:
        try:
            parse_server(server)
        except ValueError as exc:
            raise CLIError(f"--dns-server: {exc}", exitcodes.USAGE) from None
    return tuple(servers)


def _check(args: argparse.Namespace) -> int:
    from tuimail.addresses import AddressError, ascii_domain
    from tuimail.posture.check import CheckOptions, check_domain
    from tuimail.posture.report import report_lines
    from tuimail.probe import Thresholds
    from tuimail.terminal_text import escape_controls

    try:
        domain = ascii_domain(args.domain.strip())
    except AddressError as exc:
        raise CLIError(str(exc), exitcodes.USAGE) from None
    if not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+", domain) or len(domain) > 253:
        raise CLIError(f"{args.domain!r} is not a domain name (like example.org)", exitcodes.USAGE)
    options = CheckOptions(
        dns_servers=_servers(args),
        mx_port=args.mx_port,
        mta_sts_port=args.mta_sts_port,
        ca_file=args.ca_file or "",
        timeout=args.timeout,
        dkim_selectors=tuple(args.dkim_selector),
        thresholds=Thresholds(warn_days=args.warn_days, crit_days=args.crit_days),
        ehlo_name=args.ehlo or "",
    )
    report = asyncio.run(check_domain(domain, options))
    if args.nagios:
        print(escape_controls(report.nagios()))
    elif args.json:
        from tuimail.console import terminal_json

        print(terminal_json(report.to_json(), indent=2))
    elif args.openmetrics:
        from tuimail.openmetrics import posture_text

        sys.stdout.write(posture_text(report))
    else:
        for line in report_lines(report):
            print(escape_controls(line))
    return int(report.status)
