"""Plain-terminal output for the command-line faces of tuimail.

The CLI prints the same transcript entries the app shows, as they happen.
Colour only when writing to a terminal and ``NO_COLOR`` is unset.

Every line goes out through :func:`~tuimail.terminal_text.escape_controls`:
banners, replies, certificate names and DNS answers are chosen by someone
else, and a raw ``ESC`` in them would retitle or clear the user's terminal.
JSON output is escaped the same way, as JSON (``\\uXXXX``), so it stays JSON.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from tuimail.closed_pipe import silence
from tuimail.session import Remedy, SessionReport
from tuimail.terminal_text import escape_controls
from tuimail.transcript import Direction, Entry, EventKind

if TYPE_CHECKING:
    from tuimail.probe import ProbeReport, TLSReport

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
        self.reader_gone = False

    def __call__(self, entry: Entry) -> None:
        if self.as_json:
            record = entry.to_json()
            if self.prefix:
                record["session"] = self.prefix
            line = terminal_json(record)
        else:
            # Event lines quote replies ("*** data failed: 554 ..."): escaped here.
            line = escape_controls(self.prefix + entry.to_text())
            if self.colour:
                line = _colourise(entry, line)
        if self.reader_gone:
            return
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except BrokenPipeError:
            # ``tuimail send ... | head``: the reader left, the session goes on.
            # Raising here would abort a conversation half-way for want of an
            # audience (the transcript is still kept with the sent message).
            self.reader_gone = True
            silence(self.stream)


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


def terminal_json(document: object, *, indent: int | None = None) -> str:
    """``document`` as JSON that is safe on a terminal and still the same JSON.

    ``json.dumps`` escapes C0 controls but writes DEL, C1 controls (``\\x9b``
    is a CSI) and bidi overrides raw. Outside strings JSON is printable ASCII,
    so every non-printable character left is inside a string, where its
    ``\\uXXXX`` form means the same.
    """
    text = json.dumps(document, ensure_ascii=False, indent=indent)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == "\n" else json.dumps(ch)[1:-1] for ch in text)


def print_json(record: dict[str, Any], stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(terminal_json(record) + "\n")
    out.flush()


def _write_lines(out: TextIO, lines: list[str]) -> None:
    """Each line escaped: these summaries quote what servers said."""
    for line in lines:
        out.write(escape_controls(line) + "\n")


def summarise(
    report: SessionReport,
    stream: TextIO | None = None,
    *,
    remedies: Mapping[Remedy, str] | None = None,
) -> None:
    """The human outcome after the transcript: sent, partially sent, or why not.

    ``remedies``: the words of each remedy for this command (its flags);
    without them a failure ends with the profile's words.
    """
    out = stream or sys.stderr
    _write_lines(out, _outcome_lines(report, remedies))
    out.flush()


def _outcome_lines(
    report: SessionReport, remedies: Mapping[Remedy, str] | None = None
) -> list[str]:
    failure = report.failure
    delivery = report.delivery
    if failure is not None:
        kind = "temporary" if failure.temporary else "permanent"
        explanation = failure.explanation
        remedy = failure.remedy
        if remedies is not None and remedy is not None and remedy in remedies:
            explanation = f"{failure.problem}; {remedies[remedy]}"
        return [f"tuimail: failed at {failure.stage.value} ({kind}): {explanation}"]
    if delivery is None:
        who = f" as {report.authenticated_as}" if report.authenticated_as else ""
        security = report.tls.version if report.tls else "no TLS"
        return [f"tuimail: connection test passed ({security}{who}); no mail was sent"]
    lines = [
        f"tuimail: sent {delivery.message_id} ({delivery.size:,} bytes) to "
        f"{', '.join(delivery.accepted)}: {delivery.reply}"
    ]
    for refusal in delivery.refused:
        kind = "temporary" if refusal.temporary else "permanent"
        lines.append(f"tuimail: refused ({kind}) {refusal.address}: {refusal.code} {refusal.reply}")
    lines += [f"tuimail: note: {note}" for note in delivery.notes]
    return lines


def print_probe(report: ProbeReport, stream: TextIO | None = None) -> None:
    """The human summary of a probe, after its transcript."""
    out = stream or sys.stdout
    _write_lines(out, ["", *_probe_lines(report)])
    out.flush()


def _probe_lines(report: ProbeReport) -> list[str]:
    target = report.target
    lines = [f"{target.label}: {report.status.name}"]
    lines += [f"  - {reason}" for reason in report.reasons]
    if report.banner:
        lines.append(f"  banner        {report.banner.splitlines()[0]}")
    if report.timings:
        stages = "  ".join(f"{k} {v * 1000:.1f}ms" for k, v in report.labelled_timings().items())
        lines.append(f"  timings       {stages}  (total {report.total * 1000:.1f}ms)")
    if report.capabilities:
        names = " ".join(
            f"{k.upper()}{'=' + v.strip() if v.strip() else ''}"
            for k, v in report.capabilities.items()
        )
        lines.append(f"  capabilities  {names}")
    if report.tls is not None:
        lines += _tls_lines(report.tls, target.host)
    if report.auth:
        lines.append(f"  auth          {report.auth}")
    return lines


def _tls_lines(tls: TLSReport, host: str) -> list[str]:
    trust = "trusted" if tls.trust.trusted else "NOT trusted"
    match = "matches" if tls.trust.hostname_matches else "does NOT match"
    lines = [
        f"  TLS           {tls.version}, {tls.cipher} ({tls.bits} bits)",
        f"  trust         {trust}; the host name {match} {host}",
    ]
    for depth, cert in enumerate(tls.chain):
        lines.append(f"  cert[{depth}]       {cert.subject}")
        lines.append(f"                issued by {cert.issuer}")
        if cert.names:
            lines.append(f"                names {', '.join(cert.names)}")
        lines.append(
            f"                valid {cert.not_before:%Y-%m-%d} to {cert.not_after:%Y-%m-%d} "
            f"({cert.days_left()} days left)"
        )
    return lines
