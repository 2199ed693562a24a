"""Draft -> message: validation, header injection, envelopes, and bytes fit for the wire."""

from __future__ import annotations

import os
from email.message import MIMEPart
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from tests.message_helpers import build, draft, errors_of, parse
from tuimail.addresses import AddressError, parse_address, parse_address_list
from tuimail.cli.send import parse_header_option
from tuimail.message import (
    Draft,
    DraftInvalid,
    build_message,
)

# The same characters the email package would split a line at, plus NUL and controls.
INJECTIONS = {
    "CR": "\r",
    "LF": "\n",
    "CRLF": "\r\n",
    "NUL": "\0",
    "VT": "\v",
    "FF": "\f",
    "FS": "\x1c",
    "NEL": "\x85",
    "LS": "\u2028",
    "PS": "\u2029",
    "BEL": "\x07",
    "DEL": "\x7f",
}
INJECTION_PARAMS = [pytest.param(ch, id=name) for name, ch in INJECTIONS.items()]
CORE_INJECTION_PARAMS = [pytest.param(INJECTIONS[n], id=n) for n in ("CR", "LF", "CRLF", "NUL")]


def text_of(part: MIMEPart | None) -> str:
    """A text part's content with the wire's CRLF turned back into newlines."""
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def assert_wire_safe(data: bytes, *, utf8: bool = False) -> None:
    """CRLF line ends only, no line over 998 octets, no NUL, 7-bit unless SMTPUTF8."""
    assert data.endswith(b"\r\n")
    lines = data.split(b"\r\n")
    for number, line in enumerate(lines, start=1):
        assert len(line) <= 998, f"line {number} is {len(line)} octets"
        assert b"\r" not in line and b"\n" not in line, f"bare CR or LF in line {number}"
        assert b"\0" not in line
    if not utf8:
        assert data.isascii(), "8-bit data without SMTPUTF8"


def header_lines(data: bytes) -> list[bytes]:
    head = data.split(b"\r\n\r\n", 1)[0]
    return head.split(b"\r\n")


def header_names(data: bytes) -> list[str]:
    return [
        line.split(b":", 1)[0].decode().lower()
        for line in header_lines(data)
        if line and not line[:1].isspace()
    ]


# -- a good message -----------------------------------------------------------


def test_a_simple_message() -> None:
    outgoing = build(cc=["Carol <carol@example.com>"], reply_to=["replies@example.com"])
    data = outgoing.to_bytes()
    assert_wire_safe(data)
    assert outgoing.envelope_sender == "alice@example.com"
    assert outgoing.envelope_recipients == ["bob@example.com", "carol@example.com"]
    assert not outgoing.needs_smtputf8
    parsed = parse(data)
    assert str(parsed["From"]) == "Alice <alice@example.com>"
    assert str(parsed["To"]) == "bob@example.com"
    assert str(parsed["Cc"]) == "Carol <carol@example.com>"
    assert str(parsed["Reply-To"]) == "replies@example.com"
    assert parsed["Subject"] == "Hello"
    assert text_of(parsed) == "Hi Bob,\n"
    parsedate_to_datetime(str(parsed["Date"]))
    assert outgoing.message_id == str(parsed["Message-ID"])
    assert outgoing.message_id.startswith("<") and outgoing.message_id.endswith("@example.com>")
    names = header_names(data)
    for name in ("from", "to", "cc", "reply-to", "subject", "date", "message-id", "mime-version"):
        assert names.count(name) == 1, name


def test_message_ids_are_unique() -> None:
    assert build().message_id != build().message_id


def test_address_lists_in_one_field() -> None:
    outgoing = build(to=['bob@example.com, "Doe, Jane" <jane@example.com>', "c@example.com"])
    assert outgoing.envelope_recipients == ["bob@example.com", "jane@example.com", "c@example.com"]
    addresses = parse(outgoing.to_bytes())["To"].addresses
    assert [(a.display_name, a.addr_spec) for a in addresses] == [
        ("", "bob@example.com"),
        ("Doe, Jane", "jane@example.com"),
        ("", "c@example.com"),
    ]


def test_bcc_only_is_enough() -> None:
    outgoing = build(to=[], bcc=["hidden@example.com"])
    assert outgoing.envelope_recipients == ["hidden@example.com"]
    assert "to" not in header_names(outgoing.to_bytes())


# -- header injection ---------------------------------------------------------


@pytest.mark.parametrize("ch", INJECTION_PARAMS)
def test_subject_injection(ch: str) -> None:
    errors = errors_of(subject=f"Hi{ch}Bcc: victim@example.com")
    assert set(errors) == {"subject"}


@pytest.mark.parametrize("ch", CORE_INJECTION_PARAMS)
def test_subject_injection_message_says_why(ch: str) -> None:
    message = errors_of(subject=f"Hi{ch}X")["subject"]
    assert "inject" in message


@pytest.mark.parametrize("ch", INJECTION_PARAMS)
def test_extra_header_value_injection(ch: str) -> None:
    errors = errors_of(headers=[("X-Test", f"a{ch}Bcc: victim@example.com")])
    assert set(errors) == {"header 'X-Test'"}


@pytest.mark.parametrize(
    "name",
    ["X-Test\n", "X-Test\r\nBcc", "X Test", "X-Test:", "", "X-Tëst", "X-Test\0", "\nX-Test"],
)
def test_bad_extra_header_names(name: str) -> None:
    errors = errors_of(headers=[(name, "value")])
    assert set(errors) == {f"header {name!r}"}


def test_header_names_too_long_for_a_line_are_refused() -> None:
    name = "X-" + "a" * 1000
    errors = errors_of(headers=[(name, "v")])
    assert set(errors) == {f"header {name!r}"}
    build(headers=[("X-" + "a" * 74, "v")])


@pytest.mark.parametrize("ch", INJECTION_PARAMS)
@pytest.mark.parametrize("field", ["from", "to", "cc", "bcc", "reply-to"])
def test_display_name_injection(field: str, ch: str) -> None:
    value = f'"Bob{ch}X-Injected: yes" <bob@example.com>'
    key = field.replace("-", "_") if field != "from" else "from_address"
    errors = errors_of(**{key: value if field == "from" else [value]})
    assert set(errors) == {field}


@pytest.mark.parametrize("ch", INJECTION_PARAMS)
@pytest.mark.parametrize("where", ["local", "domain", "unquoted-name"])
@pytest.mark.parametrize("field", ["from", "to", "cc", "bcc", "reply-to"])
def test_address_injection(field: str, where: str, ch: str) -> None:
    value = {
        "local": f"bo{ch}b@example.com",
        "domain": f"bob@exa{ch}mple.com",
        "unquoted-name": f"Bob{ch}Smith <bob@example.com>",
    }[where]
    key = field.replace("-", "_") if field != "from" else "from_address"
    errors = errors_of(**{key: value if field == "from" else [value]})
    assert set(errors) == {field}


@pytest.mark.parametrize("ch", ["\n", "\r", "\x07", "\u2028"])
def test_attachment_file_names_with_controls_are_refused(tmp_path: Path, ch: str) -> None:
    path = tmp_path / f"report{ch}Bcc: x.txt"
    path.write_bytes(b"data")
    errors = errors_of(attachments=[path])
    assert set(errors) == {f"attachment {str(path)!r}"}


def test_tabs_and_unicode_spaces_are_not_controls() -> None:
    outgoing = build(
        subject="a\tb\u00a0c", headers=[("X-Tab", "1\t2")], to=["Bob\tSmith <b@x.com>"]
    )
    parsed = parse(outgoing.to_bytes())
    assert parsed["Subject"] == "a\tb\u00a0c"
    assert parsed["To"].addresses[0].display_name == "Bob Smith"


def test_nul_in_body_is_refused() -> None:
    assert set(errors_of(body="a\0b")) == {"body"}


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(DraftInvalid) as info:
        build_message(
            Draft(
                from_address="not an address",
                to=["a@b.com <c@d.com>"],
                cc=["<x@example.com"],
                bcc=["a@b@c.com"],
                reply_to=["(x) r@example.com"],
                subject="a\nb",
                body="\0",
                attachments=[tmp_path / "missing.pdf"],
                headers=[("From", "x@y.com"), ("X-Ok", "fine"), ("X-Bad", "a\rb")],
            )
        )
    fields = [e.field for e in info.value.errors]
    assert set(fields) == {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "body",
        f"attachment {str(tmp_path / 'missing.pdf')!r}",
        "header 'From'",
        "header 'X-Bad'",
    }
    assert len(fields) == len(set(fields))
    for error in info.value.errors:
        assert str(error) in str(info.value)


def test_a_failed_build_changes_nothing(tmp_path: Path) -> None:
    attachment = tmp_path / "a.txt"
    attachment.write_bytes(b"x")
    d = draft(subject="ok\r\nBcc: x@y.com", attachments=[attachment], headers=[("X-A", "b")])
    before = repr(d)
    with pytest.raises(DraftInvalid):
        build_message(d)
    assert repr(d) == before
    d.subject = "ok"
    assert build_message(d).message["Subject"] == "ok"


# -- ambiguous and invalid addresses ------------------------------------------

AMBIGUOUS = [
    '"alice@bank.example" <mallory@evil.example>',
    "alice@bank.example <mallory@evil.example>",
    '"Alice (alice@bank.example)" <mallory@evil.example>',
    '"Bank alice@bank.example" <mallory@evil.example>',
    "<a@b.com",
    "a@b.com>",
    ">a@b.com<",
    "Bob <<a@b.com>>",
    "<a@b.com> <c@d.com>",
    "Bob <a@b.com> extra",
    "Bob <a@b.com>, ",  # fine as a list item, but not as one address
    "a@b.com (Alice)",
    "(Alice) a@b.com",
    "Alice (x) <a@b.com>",
    "Friends: a@b.com, c@d.com;",
    "Friends: a@b.com;",
    "undisclosed-recipients:;",
    "a@b@c.com",
    "a@b.com@c.com",
    '"unclosed <a@b.com>',
    '"A" "B" <a@b.com>',
    '"A"B"C" <a@b.com>',
    '"Alice" Smith <a@b.com>',
    "a@b.com c@d.com",
    "a@b.com;c@d.com",
    "Smith, John <a@b.com>",
    "Bob <>",
    "Bob",
    "a@",
    "@b.com",
    "a b@c.com",
    "a..b@c.com",
    ".a@c.com",
    "a.@c.com",
    '"a b"@c.com',
    "a@b..com",
    "a@-b.com",
    "a@b-.com",
    "a@b_c.com",
    "a@" + "x" * 64 + ".com",
    "x" * 65 + "@b.com",
    "a@[999.1.1.1]",
    "a@[IPv6:not-an-address]",
    "a@[IPv6:1.2.3.4]",
    "a@faß.de",
]


@pytest.mark.parametrize("value", AMBIGUOUS)
def test_ambiguous_or_invalid_addresses_are_refused(value: str) -> None:
    if value.endswith(", "):
        with pytest.raises(AddressError):
            parse_address(value)
        return
    with pytest.raises(AddressError):
        parse_address_list(value)
    errors = errors_of(to=[value])
    assert set(errors) == {"to"}


@pytest.mark.parametrize("field", ["from", "to", "cc", "bcc", "reply-to"])
def test_every_address_field_names_itself(field: str) -> None:
    value = "alice@bank.example <mallory@evil.example>"
    key = field.replace("-", "_") if field != "from" else "from_address"
    errors = errors_of(**{key: value if field == "from" else [value]})
    assert field in errors
    assert "mallory" in errors[field] or "alice" in errors[field]


@pytest.mark.parametrize(
    ("value", "display", "addr_spec"),
    [
        ("a@b.com", "", "a@b.com"),
        ("<a@b.com>", "", "a@b.com"),
        ("  Bob   Smith   <a@b.com>  ", "Bob Smith", "a@b.com"),
        ('"Doe, John" <a@b.com>', "Doe, John", "a@b.com"),
        ('"Say \\"hi\\"" <a@b.com>', 'Say "hi"', "a@b.com"),
        ('"Back\\\\slash" <a@b.com>', "Back\\slash", "a@b.com"),
        ("J. R. R. Tolkien <a@b.com>", "J. R. R. Tolkien", "a@b.com"),
        ("Zoë <a@b.com>", "Zoë", "a@b.com"),
        ("first.last+tag@sub.example.com", "", "first.last+tag@sub.example.com"),
        ("a@EXAMPLE.COM", "", "a@example.com"),
        ("a@example.com.", "", "a@example.com"),
        ("a@localhost", "", "a@localhost"),
        ("a@[127.0.0.1]", "", "a@[127.0.0.1]"),
        ("a@[IPv6:::1]", "", "a@[IPv6:::1]"),
        ("Bob <a@[IPv6:2001:db8::1]>", "Bob", "a@[IPv6:2001:db8::1]"),
        ("a@bücher.de", "", "a@xn--bcher-kva.de"),
        ("a@xn--bcher-kva.de", "", "a@xn--bcher-kva.de"),
    ],
)
def test_accepted_address_forms(value: str, display: str, addr_spec: str) -> None:
    parsed = parse_address(value)
    assert parsed.display_name == display
    assert parsed.addr_spec == addr_spec
    outgoing = build(to=[value])
    assert outgoing.envelope_recipients == [addr_spec]
    data = outgoing.to_bytes()
    assert_wire_safe(data)
    [address] = parse(data)["To"].addresses
    assert address.display_name == display
    assert address.addr_spec == addr_spec


def test_a_sender_at_an_address_literal_gets_a_valid_message_id() -> None:
    outgoing = build(from_address="a@[IPv6:::1]")
    assert outgoing.message_id.endswith("@[IPv6:::1]>")
    assert parse(outgoing.to_bytes())["Message-ID"] == outgoing.message_id


def test_quoted_names_with_punctuation_survive_folding() -> None:
    # Long enough that the To header must fold, each name short enough to stay quoted.
    names = [f"Doe, {'J' * 40} {i}; (team) [ops]" for i in range(6)]
    to = [f'"{name}" <user{i}@example.com>' for i, name in enumerate(names)]
    data = build(to=to).to_bytes()
    assert_wire_safe(data)
    addresses = parse(data)["To"].addresses
    assert [(a.display_name, a.addr_spec) for a in addresses] == [
        (name, f"user{i}@example.com") for i, name in enumerate(names)
    ]


def test_a_quoted_name_too_long_to_fold_intact_is_refused() -> None:
    # Python's folder would drop the quotes and "Doe" would become a recipient.
    errors = errors_of(to=['"Doe, John ' + "word " * 16 + '" <b@example.com>'])
    assert set(errors) == {"to"}


def test_a_long_name_without_punctuation_is_folded() -> None:
    name = " ".join(["Word"] * 40)
    data = build(to=[f"{name} <b@example.com>"]).to_bytes()
    assert_wire_safe(data)
    assert parse(data)["To"].addresses[0].display_name == name


def test_a_name_too_long_for_a_line_is_refused() -> None:
    assert set(errors_of(to=["x" * 3000 + " <b@example.com>"])) == {"to"}
    assert set(errors_of(from_address='"' + "é" * 3000 + '" <a@example.com>')) == {"from"}


def test_no_sender() -> None:
    assert set(errors_of(from_address="")) == {"from"}
    assert set(errors_of(from_address="   ")) == {"from"}
    assert set(errors_of(from_address="a@example.com, b@example.com")) == {"from"}


@pytest.mark.parametrize(
    "changes",
    [
        {"to": [], "cc": [], "bcc": []},
        {"to": [""], "cc": [" "], "bcc": []},
        {"to": [" , ,"]},
    ],
)
def test_no_recipient_is_a_to_error(changes: dict[str, Any]) -> None:
    errors = errors_of(**changes)
    assert set(errors) == {"to"}
    assert "recipient" in errors["to"]


def test_an_invalid_recipient_is_not_also_reported_as_missing() -> None:
    errors = errors_of(to=["<a@b.com"])
    assert set(errors) == {"to"}
    assert "recipient (To" not in errors["to"]


# -- attachments --------------------------------------------------------------


def attachment_error(path: Path) -> str:
    errors = errors_of(attachments=[path])
    field = f"attachment {str(path)!r}"
    assert set(errors) == {field}
    return errors[field]


def test_missing_attachment(tmp_path: Path) -> None:
    assert "does not exist" in attachment_error(tmp_path / "nope.pdf")


def test_dangling_symlink_attachment(tmp_path: Path) -> None:
    link = tmp_path / "dangling.pdf"
    link.symlink_to(tmp_path / "gone.pdf")
    assert "does not exist" in attachment_error(link)


def test_directory_attachment(tmp_path: Path) -> None:
    directory = tmp_path / "folder"
    directory.mkdir()
    assert "directory" in attachment_error(directory)


def test_unreadable_attachment(tmp_path: Path) -> None:
    # A symlink loop cannot be read even by root.
    loop = tmp_path / "loop.txt"
    loop.symlink_to(loop)
    assert "cannot be read" in attachment_error(loop)

    locked = tmp_path / "locked.txt"
    locked.write_bytes(b"secret")
    locked.chmod(0o000)
    try:
        if not os.access(locked, os.R_OK):  # root (as in CI) reads it anyway
            assert "permission denied" in attachment_error(locked)
    finally:
        locked.chmod(0o600)


def test_fifo_attachment_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert "regular file" in attachment_error(fifo)


def test_device_attachment_is_refused() -> None:
    # /dev/null rather than /dev/zero: a regression attaches nothing instead of eating memory.
    device = Path("/dev/null")
    assert "regular file" in attachment_error(device)


def test_a_file_under_a_file_is_an_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"x")
    attachment_error(plain / "child.txt")


BINARY = bytes(range(256)) * 8 + b"\r\n.\r\nFrom me\n\r\0" + b"x" * 5000 + b"\xff\xfe"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("report.pdf", "application/pdf"),
        ("photo.png", "image/png"),
        # Named as text but neither ASCII nor UTF-8: bytes, not text under a wrong charset.
        ("notes.txt", "application/octet-stream"),
        ("data.unknownext", "application/octet-stream"),
        ("noextension", "application/octet-stream"),
        ("backup.tar.gz", "application/octet-stream"),
        ("saved.eml", "application/octet-stream"),
    ],
)
def test_attachment_types_and_byte_exact_round_trip(
    tmp_path: Path, name: str, content_type: str
) -> None:
    path = tmp_path / name
    path.write_bytes(BINARY)
    outgoing = build(attachments=[path])
    data = outgoing.to_bytes()
    assert_wire_safe(data)
    parsed = parse(data)
    assert parsed.get_content_type() == "multipart/mixed"
    [part] = list(parsed.iter_attachments())
    assert part.get_content_type() == content_type
    assert part.get_filename() == name
    assert part.get_payload(decode=True) == BINARY
    assert text_of(parsed.get_body(("plain",))) == "Hi Bob,\n"


def test_saved_mail_attachment_round_trips(tmp_path: Path) -> None:
    mail = b"From: x@example.com\r\nSubject: old\r\n\r\nold body\r\n"
    path = tmp_path / "old.eml"
    path.write_bytes(mail)
    wire = build(attachments=[path]).to_bytes()
    [part] = list(parse(wire).iter_attachments())
    # A saved mail goes as message/rfc822, byte for byte (RFC 2046 5.2.1: 7bit, never base64).
    assert part.get_content_type() == "message/rfc822"
    assert part["Content-Transfer-Encoding"] == "7bit"
    assert b'filename="old.eml"\r\n\r\n' + mail in wire
    assert part.get_content()["Subject"] == "old"


def test_several_attachments_and_odd_names(tmp_path: Path) -> None:
    names = ["résumé 2024.pdf", 'quote".txt', "semi;colon,comma.bin", "n" * 150 + ".dat", "empty"]
    paths = []
    for i, name in enumerate(names):
        path = tmp_path / name
        path.write_bytes(b"" if name == "empty" else bytes([i]) * (i * 1000 + 1))
        paths.append(path)
    data = build(attachments=paths).to_bytes()
    assert_wire_safe(data)
    parts = list(parse(data).iter_attachments())
    assert [p.get_filename() for p in parts] == names
    assert [p.get_payload(decode=True) for p in parts] == [p.read_bytes() for p in paths]


# -- Bcc ----------------------------------------------------------------------


def test_bcc_is_in_the_envelope_only() -> None:
    outgoing = build(
        to=["bob@example.com"],
        cc=["carol@example.com"],
        bcc=["Secret Sam <sam@hidden.example>", "dave@hidden.example", "zoë@bücher.de"],
    )
    assert outgoing.envelope_recipients == [
        "bob@example.com",
        "carol@example.com",
        "sam@hidden.example",
        "dave@hidden.example",
        "zoë@xn--bcher-kva.de",
    ]
    data = outgoing.to_bytes()
    lowered = data.lower()
    assert "bcc" not in header_names(data)
    assert b"bcc" not in lowered
    for secret in (b"sam@", b"secret sam", b"dave@", b"hidden.example", "zoë".encode(), b"bcher"):
        assert secret not in lowered
    assert outgoing.message["Bcc"] is None


def test_bcc_is_refused_as_an_extra_header() -> None:
    for name in ("Bcc", "BCC", "bcc"):
        assert set(errors_of(headers=[(name, "x@example.com")])) == {f"header {name!r}"}


# -- the bytes on the wire ----------------------------------------------------


def test_long_lines_are_encoded_below_998_octets() -> None:
    body = "x" * 5000 + "\n" + "é" * 3000 + " ascii\n" + "short line\n" + "y" * 999 + "\n"
    subject = "s" * 3000
    outgoing = build(subject=subject, body=body)
    data = outgoing.to_bytes()
    assert_wire_safe(data)
    parsed = parse(data)
    assert parsed["Subject"] == subject
    assert text_of(parsed) == body


def test_long_subject_with_words_and_non_ascii() -> None:
    for subject in ("word " * 600 + "end", "ü" * 3000, "ascii " + "漢字" * 800):
        outgoing = build(subject=subject)
        data = outgoing.to_bytes()
        assert_wire_safe(data)
        assert parse(data)["Subject"] == subject


def test_long_extra_header_value() -> None:
    for value in ("v" * 3000, " ".join(["wörd"] * 500)):
        data = build(headers=[("X-Long", value)]).to_bytes()
        assert_wire_safe(data)
        assert parse(data)["X-Long"] == value


def test_many_recipients_fold() -> None:
    to = [f"recipient{i}@example.com" for i in range(300)]
    outgoing = build(to=to)
    data = outgoing.to_bytes()
    assert_wire_safe(data)
    assert outgoing.envelope_recipients == to
    assert [a.addr_spec for a in parse(data)["To"].addresses] == to


def test_non_ascii_everywhere_but_the_local_part_stays_7bit(tmp_path: Path) -> None:
    path = tmp_path / "übersicht.txt"
    path.write_text("Grüße\n", encoding="utf-8")
    outgoing = build(
        from_address="Jürgen Müller <juergen@bücher.de>",
        to=["Zoë <zoe@münchen.example>"],
        subject="Grüße aus München ☃",
        body="Hallo Zoë,\nviele Grüße ☃\n" + "ä" * 2000 + "\n",
        headers=[("X-Note", "naïve café")],
        attachments=[path],
    )
    assert not outgoing.needs_smtputf8
    data = outgoing.to_bytes()
    assert_wire_safe(data, utf8=False)
    parsed = parse(data)
    assert parsed["Subject"] == "Grüße aus München ☃"
    assert parsed["From"].addresses[0].display_name == "Jürgen Müller"
    assert parsed["X-Note"] == "naïve café"
    assert text_of(parsed.get_body(("plain",))) == "Hallo Zoë,\nviele Grüße ☃\n" + "ä" * 2000 + "\n"
    [part] = list(parsed.iter_attachments())
    assert part.get_filename() == "übersicht.txt"
    assert part.get_payload(decode=True) == "Grüße\n".encode()


def test_idn_domains_become_punycode() -> None:
    outgoing = build(from_address="a@bücher.de", to=["b@münchen.example"], cc=["c@ÉXAMPLE.ORG"])
    assert outgoing.envelope_sender == "a@xn--bcher-kva.de"
    assert outgoing.envelope_recipients == ["b@xn--mnchen-3ya.example", "c@xn--xample-9ua.org"]
    assert not outgoing.needs_smtputf8
    data = outgoing.to_bytes()
    assert_wire_safe(data)
    assert b"From: a@xn--bcher-kva.de\r\n" in data
    assert b"xn--mnchen-3ya.example" in data
    assert outgoing.message_id.endswith("@xn--bcher-kva.de>")


@pytest.mark.parametrize("field", ["from", "to", "cc", "bcc", "reply-to"])
def test_non_ascii_local_part_needs_smtputf8(field: str) -> None:
    address = "jürgen@example.com"
    key = field.replace("-", "_") if field != "from" else "from_address"
    outgoing = build(**{key: address if field == "from" else [address]})
    assert outgoing.needs_smtputf8
    data = outgoing.to_bytes()
    assert_wire_safe(data, utf8=True)
    if field != "bcc":
        assert "jürgen@example.com".encode() in data
    else:
        assert "jürgen".encode() not in data


def test_smtputf8_message_still_keeps_lines_short() -> None:
    outgoing = build(
        to=["ü@example.com"],
        subject="é" * 3000,
        body="漢" * 5000 + "\n",
        headers=[("X-Long", "ö" * 3000)],
    )
    assert outgoing.needs_smtputf8
    data = outgoing.to_bytes()
    assert_wire_safe(data, utf8=True)
    # Only headers may carry 8-bit; the body is still transfer-encoded.
    assert data.split(b"\r\n\r\n", 1)[1].isascii()


def test_ascii_message_has_no_smtputf8() -> None:
    assert not build().needs_smtputf8


# -- extra headers ------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "From",
        "to",
        "CC",
        "Bcc",
        "Reply-To",
        "Subject",
        "MIME-Version",
        "Content-Type",
        "content-transfer-encoding",
        "Content-Disposition",
    ],
)
def test_managed_headers_are_refused(name: str) -> None:
    errors = errors_of(headers=[(name, "x@example.com")])
    assert set(errors) == {f"header {name!r}"}
    assert "cannot be set" in errors[f"header {name!r}"]


def test_extra_headers_are_added_in_order() -> None:
    outgoing = build(
        headers=[("X-Mailer-Test", "one"), ("X-Mailer-Test", "two"), ("List-Id", "<l.example>")]
    )
    parsed = parse(outgoing.to_bytes())
    assert parsed.get_all("X-Mailer-Test") == ["one", "two"]
    assert parsed["List-Id"] == "<l.example>"


def test_date_and_message_id_can_be_overridden() -> None:
    date = "Mon, 01 Jan 2024 10:00:00 +0000"
    outgoing = build(headers=[("Date", date), ("message-id", "<fixed.id@example.com>")])
    data = outgoing.to_bytes()
    assert_wire_safe(data)
    names = header_names(data)
    assert names.count("date") == 1
    assert names.count("message-id") == 1
    parsed = parse(data)
    assert parsed["Date"] == date
    assert parsed["Message-ID"] == "<fixed.id@example.com>"
    assert outgoing.message_id == "<fixed.id@example.com>"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Date", "yesterday"),
        ("Date", ""),
        ("Message-ID", "not-an-id"),
        ("Message-ID", "<no-at-sign>"),
        ("Message-ID", "<a@b> <c@d>"),
        ("Message-ID", "<" + "a" * 2000 + "@example.com>"),
    ],
)
def test_invalid_date_and_message_id_overrides_are_refused(name: str, value: str) -> None:
    assert set(errors_of(headers=[(name, value)])) == {f"header {name!r}"}


def test_single_instance_headers_are_not_repeated() -> None:
    date = "Mon, 01 Jan 2024 10:00:00 +0000"
    errors = errors_of(headers=[("Date", date), ("Date", date)])
    assert set(errors) == {"header 'Date'"}
    errors = errors_of(headers=[("Sender", "a@example.com"), ("Sender", "b@example.com")])
    assert set(errors) == {"header 'Sender'"}


def test_address_headers_are_parsed_strictly() -> None:
    outgoing = build(headers=[("Sender", "Secretary <sec@bücher.de>")])
    parsed = parse(outgoing.to_bytes())
    assert str(parsed["Sender"]) == "Secretary <sec@xn--bcher-kva.de>"
    errors = errors_of(headers=[("Sender", "boss@bank.example <mallory@evil.example>")])
    assert set(errors) == {"header 'Sender'"}
    assert set(errors_of(headers=[("Sender", "")])) == {"header 'Sender'"}
    assert build(headers=[("Sender", "sëc@example.com")]).needs_smtputf8


@pytest.mark.parametrize("name", ["From", "to", "Cc", "BCC", "Reply-To", "Subject"])
def test_a_header_the_draft_sets_names_its_field_not_an_option(name: str) -> None:
    """The core names the draft field; each face words it (the command line as an option)."""
    with pytest.raises(DraftInvalid) as info:
        build(headers=[(name, "x@example.test")])
    [error] = info.value.errors
    assert error.instead == name.lower()
    assert error.message.endswith(f"use the {name.lower().title()} field instead")
    assert "--" not in error.message


def test_parse_header_option() -> None:
    assert parse_header_option("X-Test:  some value ") == ("X-Test", "some value")
    assert parse_header_option("X-Url: http://a:b@c") == ("X-Url", "http://a:b@c")
    with pytest.raises(DraftInvalid) as info:
        parse_header_option("no colon here")
    assert [e.field for e in info.value.errors] == ["--header"]


# -- the envelope -------------------------------------------------------------


def test_duplicate_recipients_appear_once_in_the_envelope() -> None:
    outgoing = build(
        to=["bob@example.com", "Bob <bob@EXAMPLE.com>", "carol@example.com"],
        cc=["carol@example.com", "dave@example.com"],
        bcc=["bob@example.com", "dave@example.com", "erin@example.com"],
    )
    assert outgoing.envelope_recipients == [
        "bob@example.com",
        "carol@example.com",
        "dave@example.com",
        "erin@example.com",
    ]
    assert b"erin" not in outgoing.to_bytes()


def test_envelope_sender_is_the_bare_address() -> None:
    outgoing = build(from_address='"Alice, the Sender" <Alice@Example.COM>')
    assert outgoing.envelope_sender == "Alice@example.com"
