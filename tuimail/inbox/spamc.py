"""A spam score from a running SpamAssassin ``spamd``, over its SPAMC protocol on asyncio.

The protocol is small (SpamAssassin's ``spamd/PROTOCOL``): the client sends
``SYMBOLS SPAMC/1.5``, a ``Content-length`` header, a blank line and the
message; spamd answers ``SPAMD/1.1 0 EX_OK``, a ``Spam: True ; 7.5 / 5.0``
header, a blank line and the names of the rules that fired, separated by
commas. tuimail speaks it itself (no Python client of it is maintained):
every read is bounded in size, the whole exchange in time, and a message
larger than spamc's own default limit (500 KB) is not sent, as spamc would
not send it either.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from tuimail.errors import TuimailError

#: spamd's port when ``--spamd`` names none.
DEFAULT_PORT = 783
#: spamc's default largest message (its ``-s``): larger ones are not scanned.
MAX_MESSAGE = 500 * 1024
#: The longest header line and answer body read from spamd.
MAX_LINE = 8 * 1024
MAX_BODY = 64 * 1024
#: The most rules kept from an answer, and the longest rule name (SpamAssassin's are
#: under 30 characters; a hostile spamd's 60 kB name would fill the screen).
MOST_RULES = 200
MOST_RULE_CHARS = 64
#: Seconds for connecting, sending the message and reading the verdict.
DEFAULT_TIMEOUT = 30.0

_SPAM = re.compile(
    r"^\s*(True|False|Yes|No)\s*;\s*(-?[0-9]+(?:\.[0-9]+)?)\s*/\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$",
    re.I,
)


class SpamdError(TuimailError):
    """spamd could not be asked, or answered something else than a verdict; says why in words."""


@dataclass(frozen=True)
class SpamVerdict:
    """spamd's verdict: spam or not, the score against the threshold, the rules that fired."""

    spam: bool
    score: float
    threshold: float
    rules: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "spam": self.spam,
            "score": self.score,
            "threshold": self.threshold,
            "rules": list(self.rules),
        }


def parse_address(text: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[V6]:PORT`` as a host and a port; ValueError in words."""
    value = text.strip()
    host, port = value, DEFAULT_PORT
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket:  # "[::1:7830" is not the address ::1:7830 on the default port
            raise ValueError(f"{text!r} is not HOST:PORT ([V6]:PORT needs its ])")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r} is not HOST:PORT")
            port = _port(rest[1:], text)
    elif value.count(":") == 1:
        host, _, number = value.partition(":")
        port = _port(number, text)
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host, port


def _port(number: str, text: str) -> int:
    if not number.isdigit() or not 0 < int(number) < 65536:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return int(number)


async def symbols(
    message: bytes, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT
) -> SpamVerdict:
    """Ask spamd at ``host``:``port`` for its verdict on ``message``.

    Raises :class:`SpamdError` with words for a refused connection, a
    timeout, a message too large to scan or an answer that is not a verdict.
    """
    if len(message) > MAX_MESSAGE:
        raise SpamdError(
            f"not scanned: the message is {len(message):,} bytes, more than spamc's "
            f"{MAX_MESSAGE // 1024} KB limit"
        )
    where = f"spamd at {host}:{port}"
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=MAX_LINE)
            writer.write(
                b"SYMBOLS SPAMC/1.5\r\n"
                + f"Content-length: {len(message)}\r\n\r\n".encode("ascii")
                + message
            )
            await writer.drain()
            return await _answer(reader, where)
    except TimeoutError:
        raise SpamdError(f"{where} did not answer within {timeout:g} s") from None
    except (asyncio.LimitOverrunError, ValueError):
        raise SpamdError(f"{where} sent a line longer than {MAX_LINE:,} bytes") from None
    except asyncio.IncompleteReadError:
        raise SpamdError(f"{where} closed the connection before its answer ended") from None
    except OSError as exc:
        raise SpamdError(f"{where} cannot be reached: {exc.strerror or exc}") from None
    finally:
        if writer is not None:
            writer.close()


async def _answer(reader: asyncio.StreamReader, where: str) -> SpamVerdict:
    status = (await reader.readline()).decode("latin-1").strip()
    fields = status.split(None, 2)
    if len(fields) < 2 or not fields[0].startswith("SPAMD/"):
        raise SpamdError(f"{where} answered something else than SPAMD: {status[:80]!r}")
    if fields[1] != "0":
        raise SpamdError(f"{where} refused the check: {status[:200]}")
    headers: dict[str, str] = {}
    for _ in range(50):
        line = (await reader.readline()).decode("latin-1")
        if not line.endswith("\n"):
            raise asyncio.IncompleteReadError(b"", None)
        if not line.strip():
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise SpamdError(f"{where} sent too many header lines")
    verdict = _SPAM.match(headers.get("spam", ""))
    if verdict is None:
        raise SpamdError(f"{where} sent no verdict (no Spam: header)")
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit() or int(length_text) > MAX_BODY:
        raise SpamdError(f"{where} announced a body of {length_text[:20]!r} bytes")
    body = await reader.readexactly(int(length_text))
    text = body.decode("utf-8", "replace")
    named = (rule.strip() for rule in text.split(",") if rule.strip())
    rules = tuple(_cut(rule) for _, rule in zip(range(MOST_RULES), named, strict=False))
    return SpamVerdict(
        spam=verdict.group(1).lower() in ("true", "yes"),
        score=float(verdict.group(2)),
        threshold=float(verdict.group(3)),
        rules=rules,
    )


def _cut(rule: str) -> str:
    return rule if len(rule) <= MOST_RULE_CHARS else rule[: MOST_RULE_CHARS - 1] + "…"
