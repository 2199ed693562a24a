"""mailto: links (RFC 6068) as drafts: the RFC's own examples (section 6), and hostile links."""

from __future__ import annotations

import pytest

from tuimail.mailto import MailtoError, check_draft, parse_mailto
from tuimail.message import Draft, build_message

# RFC 6068, section 6.1 (basic examples) and 6.3 (UTF-8), as printed there; each
# with the recipients, subject, body and headers the draft must hold.
RFC_6068_EXAMPLES: list[tuple[str, dict[str, object]]] = [
    ("mailto:chris@example.com", {"to": ["chris@example.com"]}),
    (
        "mailto:infobot@example.com?subject=current-issue",
        {"to": ["infobot@example.com"], "subject": "current-issue"},
    ),
    (
        "mailto:infobot@example.com?body=send%20current-issue",
        {"to": ["infobot@example.com"], "body": "send current-issue"},
    ),
    (
        "mailto:infobot@example.com?body=send%20current-issue%0D%0Asend%20index",
        {"to": ["infobot@example.com"], "body": "send current-issue\nsend index"},
    ),
    (
        "mailto:list@example.org?In-Reply-To=%3C3469A91.D10AF4C@example.com%3E",
        {"to": ["list@example.org"], "headers": [("In-Reply-To", "<3469A91.D10AF4C@example.com>")]},
    ),
    (
        "mailto:majordomo@example.com?body=subscribe%20bamboo-l",
        {"to": ["majordomo@example.com"], "body": "subscribe bamboo-l"},
    ),
    (
        "mailto:joe@example.com?cc=bob@example.com&body=hello",
        {"to": ["joe@example.com"], "cc": ["bob@example.com"], "body": "hello"},
    ),
    (
        "mailto:?to=joe@example.com&cc=bob@example.com&body=hello",
        {"to": ["joe@example.com"], "cc": ["bob@example.com"], "body": "hello"},
    ),
    ("mailto:gorby%25kremvax@example.com", {"to": ["gorby%kremvax@example.com"]}),
    ("mailto:unlikely%3Faddress@example.com?blat=foop", {"to": ["unlikely?address@example.com"]}),
    ("mailto:Mike%26family@example.org", {"to": ["Mike&family@example.org"]}),
    ("mailto:user@example.org?subject=caf%C3%A9", {"to": ["user@example.org"], "subject": "café"}),
    (
        "mailto:user@example.org?subject=%3D%3Futf-8%3FQ%3Fcaf%3DC3%3DA9%3F%3D",
        {"to": ["user@example.org"], "subject": "café"},
    ),
    (
        "mailto:user@example.org?subject=%3D%3Fiso-8859-1%3FQ%3Fcaf%3DE9%3F%3D",
        {"to": ["user@example.org"], "subject": "café"},
    ),
    (
        "mailto:user@example.org?subject=caf%C3%A9&body=caf%C3%A9",
        {"to": ["user@example.org"], "subject": "café", "body": "café"},
    ),
    (
        "mailto:user@%E7%B4%8D%E8%B1%86.example.org?subject=Test&body=NATTO",
        {"to": ["user@xn--99zt52a.example.org"], "subject": "Test", "body": "NATTO"},
    ),
    (
        "mailto:user@xn--99zt52a.example.org?subject=Test&body=NATTO",
        {"to": ["user@xn--99zt52a.example.org"], "subject": "Test", "body": "NATTO"},
    ),
    # Several addresses in the path and in to= (section 2 and 6.1).
    (
        "mailto:addr1@an.example,addr2@an.example?to=addr3@an.example,addr4@an.example",
        {"to": [f"addr{n}@an.example" for n in (1, 2, 3, 4)]},
    ),
]


@pytest.mark.parametrize(("link", "expected"), RFC_6068_EXAMPLES, ids=lambda v: str(v)[:50])
def test_rfc_6068_examples(link: str, expected: dict[str, object]) -> None:
    draft = parse_mailto(link).draft
    want = Draft(**expected)  # type: ignore[arg-type]
    assert draft == want
    # The draft is one the core builds: every value passed its checks.
    built = build_message(Draft(**{**expected, "from_address": "me@example.test"}))  # type: ignore[arg-type]
    assert built.envelope_recipients


def test_unknown_fields_are_ignored_and_listed() -> None:
    link = parse_mailto(
        "mailto:a@example.org?blat=foop&from=boss@bank.example&attach=/etc/passwd"
        "&Reply-To=x@evil.test&X-Mailer=evil&bcc=c@example.org&subject=s&subject=again"
    )
    assert link.ignored == ("blat", "from", "attach", "reply-to", "x-mailer", "subject")
    draft = link.draft
    assert (draft.from_address, draft.reply_to, draft.attachments) == ("", [], [])
    assert (draft.bcc, draft.subject, draft.headers) == (["c@example.org"], "s", [])


@pytest.mark.parametrize(
    ("link", "field"),
    [
        # RFC 6068 section 6.1 calls this one wrong: a second '?' is no separator.
        ("mailto:joe@example.com?cc=bob@example.com?body=hello", "cc"),
        # Section 6.2's quoted local parts: tuimail's address checks accept only dot-atoms.
        ("mailto:%22not%40me%22@example.org", "to"),
        ("mailto:%22oh%5C%5Cno%22@example.org", "to"),
        ("mailto:%22%5C%5C%5C%22it's%5C%20ugly%5C%5C%5C%22%22@example.org", "to"),
        # Header injection, raw or through an encoded word.
        ("mailto:a@example.org?subject=hi%0D%0ABcc:%20x@evil.test", "subject"),
        (
            "mailto:a@example.org?subject=%3D%3Futf-8%3Fq%3Fa%3D0D%3D0ABcc%3A_x%40evil.test%3F%3D",
            "subject",
        ),
        ("mailto:a@example.org?cc=b@example.org%0D%0ABcc:x@evil.test", "cc"),
        ("mailto:a@example.org%0ABcc:x@evil.test", "to"),
        ("mailto:a@example.org?in-reply-to=%3Ca@b%3E%0D%0AX-Evil:%201", "in-reply-to"),
        ("mailto:a@example.org?in-reply-to=not-an-id", "in-reply-to"),
        # An escape sequence for the terminal, a NUL, bytes that are not UTF-8.
        ("mailto:a@example.org?subject=%1B%5D52;c;eA==%07", "subject"),
        ("mailto:a@example.org?body=%00", "body"),
        ("mailto:a@example.org?body=%1B%5B2J", "body"),
        ("mailto:a@example.org?subject=%FF", "subject"),
        ("mailto:a@example.org?subject=100%", "subject"),
        # A spoofing name, and a name the form could not show as it is.
        ("mailto:boss@bank.example%20%3Cx@evil.test%3E", "to"),
        ("http://example.org/", "link"),
    ],
)
def test_hostile_or_broken_links_are_refused(link: str, field: str) -> None:
    with pytest.raises(MailtoError) as caught:
        parse_mailto(link)
    assert caught.value.field == field


def test_the_body_keeps_its_line_breaks_only() -> None:
    draft = parse_mailto("mailto:a@example.org?body=one%0Atwo%0Dthree%0D%0A%09four+five").draft
    assert draft.body == "one\ntwo\nthree\n\tfour+five"  # '+' is a plus, not a space


def test_check_draft_splits_and_checks_what_arguments_give() -> None:
    draft = check_draft(Draft(to=["a@example.org, B <b@example.org>"], subject="hi"))
    assert draft.to == ["a@example.org", "B <b@example.org>"]
    with pytest.raises(MailtoError):
        check_draft(Draft(to=["a@example.org"], subject="a\nBcc: x@evil.test"))
