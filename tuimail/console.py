"""Plain-terminal output for the command-line faces of tuimail.

The CLI prints the same transcript entries the app shows, as they happen.
Colour only when writing to a terminal and ``NO_COLOR`` is unset.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from tuimail.session import SessionReport
from tuimail.transcript import Direction, Entry, EventKind

_RESET = "\033[0m"
_COLOURS = {
    "client": "\033[36m",  # cyan
    "2": "\033[32m",  # green
    "3": "\033[34m",  # blue
    "4": "\033[33m",  # yellow
    "5": "\033[31m",  # red
    "event": "\033[2m",  # dim
    "warn": "\033[33;1m",
    "error": "\033[31;1m",
}


def use_colour(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


class EntryPrinter:
    """Transcript subscriber that prints each entry as text or JSON Lines."""

    def __init__(self, stream: TextIO | None = None, *, as_json: bool = False, prefix: str = ""):
        self.stream = stream or sys.stdout
        self.as_json = as_json
        self.prefix = prefix
        self.colour = use_colour(self.stream) and not as_json

    def __call__(self, entry: Entry) -> None:
        if self.as_json:
            record = entry.to_json()
            if self.prefix:
                record["session"] = self.prefix
            line = json.dumps(record, ensure_ascii=False)
        else:
            line = self.prefix + entry.to_text()
            if self.colour:
                line = _colourise(entry, line)
        self.stream.write(line + "\n")
        self.stream.flush()


def _colourise(entry: Entry, line: str) -> str:
    if entry.direction is Direction.CLIENT:
        key = "client"
    elif entry.direction is Direction.SERVER:
        key = entry.text[:1] if entry.text[:1] in "2345" else "event"
    elif entry.kind is EventKind.ERROR:
        key = "error"
    elif entry.kind is EventKind.WARNING:
        key = "warn"
    else:
        key = "event"
    return f"{_COLOURS[key]}{line}{_RESET}"


def print_json(record: dict[str, Any], stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()


def summarise(report: SessionReport, stream: TextIO | None = None) -> None:
    """The human outcome after the transcript: sent, partially sent, or why not."""
    out = stream or sys.stderr
    failure = report.failure
    delivery = report.delivery
    if failure is not None:
        kind = "temporary" if failure.temporary else "permanent"
        out.write(f"tuimail: failed at {failure.stage.value} ({kind}): {failure.explanation}\n")
        return
    if delivery is not None:
        out.write(
            f"tuimail: sent {delivery.message_id} ({delivery.size:,} bytes) to "
            f"{', '.join(delivery.accepted)}: {delivery.reply}\n"
        )
        for refusal in delivery.refused:
            kind = "temporary" if refusal.temporary else "permanent"
            out.write(
                f"tuimail: refused ({kind}) {refusal.address}: {refusal.code} {refusal.reply}\n"
            )
    else:
        who = f" as {report.authenticated_as}" if report.authenticated_as else ""
        security = report.tls.version if report.tls else "no TLS"
        out.write(f"tuimail: connection test passed ({security}{who}); no mail was sent\n")


def print_probe(report: Any, stream: TextIO | None = None) -> None:
    """The human summary of a probe, after its transcript."""
    out = stream or sys.stdout
    target = report.target
    out.write(f"\n{target.label}: {report.status.name}\n")
    for reason in report.reasons:
        out.write(f"  - {reason}\n")
    if report.banner:
        out.write(f"  banner        {report.banner.splitlines()[0]}\n")
    if report.timings:
        stages = "  ".join(f"{k} {v * 1000:.1f}ms" for k, v in report.timings.items())
        out.write(f"  timings       {stages}  (total {report.total * 1000:.1f}ms)\n")
    if report.capabilities:
        names = " ".join(
            f"{k.upper()}{'=' + v.strip() if v.strip() else ''}"
            for k, v in report.capabilities.items()
        )
        out.write(f"  capabilities  {names}\n")
    tls = report.tls
    if tls is not None:
        out.write(f"  TLS           {tls.version}, {tls.cipher} ({tls.bits} bits)\n")
        trust = "trusted" if tls.trust.trusted else "NOT trusted"
        match = "matches" if tls.trust.hostname_matches else "does NOT match"
        out.write(f"  trust         {trust}; the host name {match} {target.host}\n")
        for depth, cert in enumerate(tls.chain):
            out.write(f"  cert[{depth}]       {cert.subject}\n")
            out.write(f"                issued by {cert.issuer}\n")
            if cert.names:
                out.write(f"                names {', '.join(cert.names)}\n")
            out.write(
                f"                valid {cert.not_before:%Y-%m-%d} to {cert.not_after:%Y-%m-%d} "
                f"({cert.days_left()} days left)\n"
            )
    if report.auth:
        out.write(f"  auth          {report.auth}\n")
    out.flush()
