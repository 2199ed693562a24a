"""``--spamd [V6]:PORT`` with its ``]`` missing is refused in words; ``[::1:7830``
was read as the IPv6 address ``::1:7830`` on spamd's default port, another
host than the one meant, without a word."""

from __future__ import annotations

import pytest

from tuimail.inbox.spamc import parse_address


@pytest.mark.parametrize("typed", ["[::1", "[::1:7830", "[", "[]:783"])
def test_an_unclosed_or_empty_bracket_is_refused(typed: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address(typed)


def test_the_written_forms_still_parse() -> None:
    assert parse_address("[::1]:7830") == ("::1", 7830)
    assert parse_address("[::1]") == ("::1", 783)
    assert parse_address("127.0.0.1:7830") == ("127.0.0.1", 7830)
    assert parse_address("spamd.test") == ("spamd.test", 783)
