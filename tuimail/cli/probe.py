"""``tuimail probe``: check a server (or a domain's MX hosts) without sending mail."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from tuimail.cli import exitcodes
from tuimail.cli.common import (
    CLIError,
    password_for,
    running_sandbox,
    saved_profile,
    seconds,
    split_server,
    threshold_seconds,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from tuimail.mx import MXHost
    from tuimail.probe import ProbeTarget, Thresholds


def define_options(probe: argparse.ArgumentParser) -> None:
    probe.description = (
        "Probe one SMTP server (or a domain's MX hosts): connect, banner, EHLO, "
        "STARTTLS or TLS, the certificate chain, optionally AUTH, QUIT; each stage timed. "
        "No mail is sent."
    )
    probe.epilog = "exit codes (Nagios): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"
    probe.add_argument("server", nargs="?", metavar="HOST[:PORT]")
    probe.add_argument(
        "--mx", metavar="DOMAIN", help="probe the MX hosts of DOMAIN (the best 10) on port 25"
    )
    probe.add_argument("--mx-port", type=int, default=25, metavar="N", help="port for --mx hosts")
    probe.add_argument("--dns-server", metavar="HOST[:PORT]", help="resolver for --mx lookups")
    probe.add_argument("--profile", metavar="NAME", help="probe a profile's server (and its AUTH)")
    probe.add_argument(
        "--target",
        metavar="NAME",
        help="probe an extra monitor target of targets.toml, with its own settings",
    )
    probe.add_argument("--security", choices=["tls", "starttls", "none"])
    probe.add_argument("--ca-file", metavar="PATH")
    probe.add_argument("--warn-days", type=int, default=21, metavar="N")
    probe.add_argument("--crit-days", type=int, default=7, metavar="N")
    probe.add_argument("--warn-seconds", type=threshold_seconds, default=5.0, metavar="S")
    probe.add_argument("--crit-seconds", type=threshold_seconds, default=15.0, metavar="S")
    probe.add_argument("--timeout", type=seconds, default=10.0, metavar="S")
    probe.add_argument("--ehlo", metavar="NAME")
    probe.add_argument(
        "--password-stdin", action="store_true", help="password for --profile's AUTH"
    )
    probe.add_argument(
        "--no-history", action="store_true", help="neither read nor write the history"
    )
    output = probe.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON document")
    output.add_argument("--nagios", action="store_true", help="one Nagios plugin line")
    output.add_argument(
        "--openmetrics",
        action="store_true",
        help="OpenMetrics text (Prometheus, textfile collector)",
    )
    probe.set_defaults(handler=cmd_probe)


def cmd_probe(args: argparse.Namespace) -> int:
    from tuimail.probe import Status, Thresholds

    if args.crit_days > args.warn_days:
        raise CLIError("--crit-days must not be more than --warn-days", exitcodes.USAGE)
    if sum(bool(x) for x in (args.server, args.mx, args.profile, args.target)) != 1:
        raise CLIError(
            "probe one thing: HOST[:PORT], --mx DOMAIN, --profile NAME or --target NAME",
            exitcodes.USAGE,
        )
    thresholds = Thresholds(args.warn_days, args.crit_days, args.warn_seconds, args.crit_seconds)
    try:
        return int(asyncio.run(_probe(args, thresholds)))
    except CLIError as exc:
        # Nagios convention: a check that cannot run is UNKNOWN (3), whatever the
        # cause, said on standard output: the one stream Nagios and Icinga show.
        from tuimail.terminal_text import escape_controls

        if args.nagios:
            print(escape_controls(f"SMTP UNKNOWN - {exc}"))
        else:
            print(escape_controls(f"tuimail: {exc}"), file=sys.stderr)
        return int(Status.UNKNOWN)


def _examined(domain: str, targets: list[ProbeTarget]) -> list[ProbeTarget]:
    """The MX hosts that are probed (the best few), after saying on standard error how
    many more the domain lists (tuimail/mx.py MX_HOSTS_EXAMINED)."""
    from tuimail.mx import MX_HOSTS_EXAMINED
    from tuimail.probe import mx_hosts_left_out
    from tuimail.terminal_text import escape_terminal_controls

    if note := mx_hosts_left_out(domain, len(targets)):
        print(f"tuimail: note: {escape_terminal_controls(note)}", file=sys.stderr)
    return targets[:MX_HOSTS_EXAMINED]


async def _probe(args: argparse.Namespace, thresholds: Thresholds) -> int:
    from tuimail.console import EntryPrinter, print_probe
    from tuimail.mx import MXLookupError
    from tuimail.probe import ProbeTarget, Status, expand_mx, probe, worst
    from tuimail.probe_history import ProbeHistory
    from tuimail.profiles import Security

    security = Security(args.security) if args.security else None
    password = None
    domain = args.mx
    if args.target:
        # The monitor's own target (the same history): its settings are the file's.
        target = _saved_target(args.target)
        targets = [target]
        if target.mx:
            domain = target.host
            try:
                targets = await expand_mx(target, _lookup(args, _monitor_dns_server()))
            except MXLookupError as exc:
                raise CLIError(str(exc)) from None
            targets = _examined(domain, targets)
    elif args.profile:
        profile = running_sandbox(args.profile, "probe") or saved_profile(args.profile)
        target = ProbeTarget.from_profile(profile, thresholds)
        if profile.username:
            password = password_for(profile, args.password_stdin, saved=True, run_command=True)
        targets = [target]
    elif args.mx:
        try:
            hosts = await _lookup(args)(args.mx, timeout=args.timeout)
        except MXLookupError as exc:
            raise CLIError(str(exc)) from None
        targets = [
            ProbeTarget(host=mx.host, port=args.mx_port, security=security or Security.STARTTLS,
                        ca_file=args.ca_file or "", thresholds=thresholds, timeout=args.timeout,
                        ehlo_name=args.ehlo or "", name=f"MX {mx.preference} {mx.host}")
            for mx in hosts
        ]  # fmt: skip
        targets = _examined(args.mx, targets)
    else:
        host, port = split_server(args.server)
        if security is None:
            security = Security.TLS if port == 465 else Security.STARTTLS
        targets = [
            ProbeTarget(host=host, port=port, security=security, ca_file=args.ca_file or "",
                        thresholds=thresholds, timeout=args.timeout, ehlo_name=args.ehlo or "")
        ]  # fmt: skip
    history = None if args.no_history else ProbeHistory.load()
    quiet = args.json or args.nagios or args.openmetrics
    reports = []
    for target in targets:
        printer = None if quiet else EntryPrinter(prefix=f"[{target.label}] " if domain else "")
        previous = history.last_capabilities(target) if history else None
        report = await probe(target, password, on_entry=printer, previous_capabilities=previous)
        reports.append(report)
        if history is not None:
            history.add(report)
    if history is not None:
        try:
            history.save()
        except OSError as exc:
            print(f"tuimail: the probe history was not saved: {exc}", file=sys.stderr)
    status = worst(reports)
    if args.nagios:
        from tuimail.terminal_text import escape_controls

        if len(reports) == 1:
            print(escape_controls(reports[0].nagios()))
        else:
            details = "; ".join(f"{r.target.label} {r.status.name}" for r in reports)
            perf = " ".join(
                f"'{r.target.host}'={r.total:.6f}s;{thresholds.warn_seconds:g};{thresholds.crit_seconds:g};0"
                for r in reports
            )
            print(escape_controls(f"SMTP {status.name} - {domain}: {details} | {perf}"))
    elif args.openmetrics:
        from tuimail.openmetrics import probe_text

        sys.stdout.write(probe_text(reports))
    elif args.json:
        if len(reports) == 1 and not domain:
            document = reports[0].to_json()
        else:
            document = {"domain": domain, "status": status.name, "exit_code": int(status),
                        "targets": [r.to_json() for r in reports]}  # fmt: skip
        from tuimail.console import terminal_json

        print(terminal_json(document, indent=2))
    else:
        for report in reports:
            print_probe(report)
    return int(status if status is not Status.UNKNOWN or reports else Status.UNKNOWN)


def _saved_target(name: str) -> ProbeTarget:
    """The extra target ``name`` of targets.toml, as the monitor watches it."""
    from tuimail.targets import TargetError, TargetStore

    store = TargetStore()
    try:
        targets = store.load()
    except TargetError as exc:
        raise CLIError(str(exc)) from None
    if name not in targets:
        known = ", ".join(sorted(targets)) or "none yet"
        raise CLIError(f"no target {name!r} in {store.path} (its targets: {known})")
    return targets[name]


def _monitor_dns_server() -> str:
    """``dns_server`` of config.toml's ``[monitor]``: the resolver the monitor looks up its
    targets' MX hosts with, so ``--target`` finds the hosts the monitor finds."""
    from tuimail.user_config import load_config

    monitor = load_config().tables.get("monitor", {})
    server = monitor.get("dns_server", "") if isinstance(monitor, dict) else ""
    return server if isinstance(server, str) else ""


def _lookup(
    args: argparse.Namespace, configured: str = ""
) -> Callable[..., Awaitable[list[MXHost]]]:
    """MX lookups through ``--dns-server`` when given (else ``configured``, when given),
    else the system's resolver."""
    from functools import partial

    from tuimail.mx import lookup_mx

    if args.dns_server:
        dns_host, dns_port = split_server(args.dns_server, "--dns-server")
    elif configured:
        dns_host, dns_port = split_server(configured, "dns_server in config.toml [monitor]")
    else:
        return lookup_mx
    return partial(lookup_mx, nameservers=[dns_host], port=dns_port or 53)
