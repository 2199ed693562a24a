"""The sandbox's fast path reader gives aiosmtpd's own answer for every argument."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from aiosmtpd.smtp import SMTP

from tuimail.envelope_path import plain_path
from tuimail.sandbox import SandboxSMTP

CASES = [
    "<user@example.test>",
    "<user@example.test> SIZE=2048 BODY=8BITMIME",
    "<user@example.test>\tSIZE=1",
    "<user@example.test>   ",
    "<user@example.test>  (comment) SIZE=1",
    "<user@example.test>(comment)",
    "<user@example.test>\x0bSIZE=1",
    "<user@example.test> \x0b\u3000SIZE=1",
    "<first.last+tag@sub.example.test>",
    "<o'hara!#$%&*/=?^_`{|}~-@example.test>",
    '<"quoted local"@example.test>',
    "<user@[192.0.2.1]>",
    "<@relay.test:user@example.test>",
    "<user@example.test",
    "user@example.test",
    "<>",
    "<> SIZE=10",
    "",
    "<a..b@example.test>",
    "<.a@example.test>",
    "<a.@example.test>",
    "<a@example..test>",
    "<a@>",
    "<@example.test>",
    "<a b@example.test>",
    "<a@b@example.test>",
    "<ünïcode@example.test>",
    "<user@exämple.test>",
    "<user@example.test>>",
    "<user@example.test> <second@example.test>",
    "<user\\@x@example.test>",
    "<user@example.test.>",
    "<" + "x" * 70 + "@example.test>",
]


def reading(kind: type[SMTP], arg: str, local_part_limit: int) -> tuple[str | None, str | None]:
    """``kind._getaddr(arg)``: it reads no state but ``local_part_limit``, so no server is set up."""
    server = kind.__new__(kind)
    server.local_part_limit = local_part_limit
    return server._getaddr(arg)


def aiosmtpd_reading(arg: str, local_part_limit: int = 0) -> tuple[str | None, str | None]:
    return reading(SMTP, arg, local_part_limit)


def sandbox_reading(arg: str, local_part_limit: int = 0) -> tuple[str | None, str | None]:
    return reading(SandboxSMTP, arg, local_part_limit)


@pytest.mark.parametrize("arg", CASES)
@pytest.mark.parametrize("limit", [0, 64])
def test_the_sandbox_reads_each_path_as_aiosmtpd_does(arg: str, limit: int) -> None:
    assert sandbox_reading(arg, limit) == aiosmtpd_reading(arg, limit)


def test_the_fast_path_takes_the_common_forms_and_only_them() -> None:
    assert plain_path("<user@example.test> SIZE=1") == ("user", "example.test", "SIZE=1")
    assert plain_path("<first.last@example.test>") == ("first.last", "example.test", "")
    for unusual in ('<"q"@example.test>', "<user@[192.0.2.1]>", "<>", "<user@example.test> (c)"):
        assert plain_path(unusual) is None


def test_random_paths_are_read_as_aiosmtpd_reads_them() -> None:
    """Paths built from the characters where the two readings could part."""
    rng = random.Random(20261129)
    pieces = [*"aZ0.@<> \t()\"\\[]-+'ü:,\x0b", "SIZE=1"]
    for _ in range(3000):
        body = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        arg = rng.choice(["<", "", "<a@b", "<a.b@c.d", "<a@b.c>"]) + body
        assert outcome(sandbox_reading, arg) == outcome(aiosmtpd_reading, arg), arg


def outcome(read: Callable[[str], tuple[str | None, str | None]], arg: str) -> object:
    """The reading, or the exception's type: aiosmtpd's parser raises IndexError on ``<``."""
    try:
        return read(arg)
    except Exception as error:
        return type(error)
