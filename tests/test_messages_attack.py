"""Hostile input to message building: encoded-word injection, lossy folding,
text that is not UTF-8, and files that never end."""

from __future__ import annotations

import base64
import email
import os
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import pytest

import tuimail.message
from tests.message_helpers import draft, errors_of, parse
from tuimail.addresses import AddressError, parse_address
from tuimail.drafts import DraftStore, SavedDraft
from tuimail.message import (
    FileProblem,
    OutgoingMessage,
    StoredMessageInvalid,
    build_message,
    check_stored_message,
    read_regular_file,
    read_text_file,
)

# The issue's sample: an encoded word whose text holds CR LF and a header.
INJECTED_Q = "=?utf-8?q?Invoice=0D=0AX-Injected:_yes?="
INJECTED_B = "=?utf-8?b?" + base64.b64encode(b"Invoice\r\nX-Injected: yes").decode() + "?="
INJECTED_LF = "=?iso-8859-1?q?Invoice=0AReply-To:_x@evil.test?="
INJECTED_WORDS = [
    pytest.param(INJECTED_Q, id="q-crlf"),
    pytest.param(INJECTED_B, id="b-crlf"),
    pytest.param(INJECTED_LF, id="latin1-lf"),
    pytest.param("Re: " + INJECTED_Q + " again", id="inside-text"),
    pytest.param("x" + INJECTED_Q, id="glued-to-a-word"),
    pytest.param("=?utf-8?q?a=00b?=", id="nul"),
]


def head_names(data: bytes) -> list[str]:
    return [k.lower() for k in parse(data)]


# -- encoded words that decode to a line break --------------------------------


@pytest.mark.parametrize("word", INJECTED_WORDS)
def test_encoded_word_injection_in_the_subject_is_refused(word: str) -> None:
    errors = errors_of(subject=word)
    assert set(errors) == {"subject"}
    assert "encoded word" in errors["subject"] and "inject" in errors["subject"]


@pytest.mark.parametrize("word", INJECTED_WORDS)
def test_encoded_word_injection_in_an_extra_header_is_refused(word: str) -> None:
    assert set(errors_of(headers=[("X-Ref", word)])) == {"header 'X-Ref'"}


@pytest.mark.parametrize("word", INJECTED_WORDS)
@pytest.mark.parametrize("field", ["from", "to", "cc", "bcc", "reply-to"])
@pytest.mark.parametrize("form", ["quoted", "bare"])
def test_encoded_word_injection_in_a_display_name_is_refused(
    field: str, form: str, word: str
) -> None:
    if form == "bare" and ":" in word:
        word = word.replace(":", "=3A")  # a bare name may not hold ':' itself
    name = f'"{word}"' if form == "quoted" else word
    value = f"{name} <bob@example.com>"
    key = field.replace("-", "_") if field != "from" else "from_address"
    errors = errors_of(**{key: value if field == "from" else [value]})
    assert set(errors) == {field}


@pytest.mark.parametrize("field", ["from", "to", "cc", "bcc", "reply-to"])
def test_an_encoded_word_as_local_part_is_refused(field: str) -> None:
    for local in ("=?utf-8?q?a=0D=0AX-Injected=3A_yes?=", "=?utf-8?q?bob?="):
        value = f"{local}@example.com"
        key = field.replace("-", "_") if field != "from" else "from_address"
        errors = errors_of(**{key: value if field == "from" else [value]})
        assert set(errors) == {field}


def test_address_headers_with_injection_are_refused() -> None:
    value = f'"{INJECTED_Q}" <x@example.com>'
    assert set(errors_of(headers=[("Sender", value)])) == {"header 'Sender'"}


def test_a_harmless_encoded_word_reads_back_as_typed() -> None:
    """What the user typed is what the reader sees: no decoding on the way."""
    subject = "=?utf-8?q?Caf=C3=A9?= and =?utf-8?b?w7w=?="
    name = "=?utf-8?q?Bob?="
    outgoing = build_message(
        draft(
            subject=subject,
            to=[f'"{name}" <bob@example.com>'],
            headers=[("X-Ref", "=?utf-8?q?x?=")],
        )
    )
    parsed = parse(outgoing.to_bytes())
    assert parsed["Subject"] == subject
    assert parsed["X-Ref"] == "=?utf-8?q?x?="
    assert parsed["To"].addresses[0].display_name == name
    assert "x-injected" not in head_names(outgoing.to_bytes())


def test_the_read_back_gate_catches_what_the_email_package_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever the interpreter's folder does, bytes that read back with an
    extra header are refused: the gate is the parsed bytes, not the version."""
    real_render = tuimail.message.render

    def injecting_render(message: EmailMessage, needs_smtputf8: bool) -> bytes:
        data = real_render(message, needs_smtputf8)
        return data.replace(b"Subject: Hello\r\n", b"Subject: Hello\r\nX-Injected: yes\r\n")

    monkeypatch.setattr(tuimail.message, "render", injecting_render)
    errors = errors_of()
    assert "reads back intact" in next(iter(errors.values()))


def test_the_read_back_gate_catches_a_changed_address(monkeypatch: pytest.MonkeyPatch) -> None:
    real_render = tuimail.message.render

    def lossy_render(message: EmailMessage, needs_smtputf8: bool) -> bytes:
        data = real_render(message, needs_smtputf8)
        return data.replace(b"To: bob@example.com, carol@example.com", b"To: bob@example.com")

    monkeypatch.setattr(tuimail.message, "render", lossy_render)
    assert set(errors_of(to=["bob@example.com, carol@example.com"])) == {"to"}


# -- folding must not lose recipients -----------------------------------------


def test_a_fold_before_a_non_ascii_name_keeps_every_recipient() -> None:
    """Python 3.11 folded the comma before 'Zoë' into an encoded word here,
    and readers saw two recipients where the envelope had three."""
    for n in range(1, 65):
        to = [f"{'x' * n}@example.com", "Zoë Ünïcode <zoe@example.com>", "b@example.com"]
        outgoing = build_message(draft(to=[", ".join(to)], cc=["Jürgen <j@example.com>"]))
        parsed = parse(outgoing.to_bytes())
        read = [a.addr_spec for a in parsed["To"].addresses + parsed["Cc"].addresses]
        assert read == outgoing.envelope_recipients, n
        names = [a.display_name for a in parsed["To"].addresses]
        assert names == ["", "Zoë Ünïcode", ""]


def test_long_non_ascii_names_fold_between_encoded_words() -> None:
    name = "Müller-Lüdenscheidt " * 8
    to = [f"{name.strip()} <m{i}@example.com>" for i in range(5)]
    outgoing = build_message(draft(to=to))
    data = outgoing.to_bytes()
    assert all(len(line) <= 78 for line in data.split(b"\r\n\r\n")[0].split(b"\r\n"))
    assert rfc2047_names(data, "To") == [name.strip()] * 5
    # Python 3.11's own parser keeps a space between two encoded words; the
    # addresses are still all there.
    assert [a.addr_spec for a in parse(data)["To"].addresses] == outgoing.envelope_recipients


def rfc2047_names(data: bytes, header: str) -> list[str]:
    """Display names as an RFC 2047 reader decodes them (whitespace between
    adjacent encoded words dropped), read with the compat32 parser."""
    raw = email.message_from_bytes(data, policy=policy.compat32)[header]
    pairs = getaddresses([raw.replace("\r\n", "")])
    return [str(make_header(decode_header(name))) for name, _ in pairs]


# -- stored messages (the outbox's gate) --------------------------------------


def good_bytes() -> OutgoingMessage:
    return build_message(draft(cc=["Zoë <zoe@example.com>"], bcc=["hidden@example.com"]))


def test_a_built_message_passes_the_stored_check() -> None:
    outgoing = good_bytes()
    check_stored_message(outgoing.to_bytes())
    check_stored_message(outgoing.to_bytes(), outgoing.envelope_recipients)
    utf8 = build_message(draft(to=["jürgen@example.com"]))
    check_stored_message(utf8.to_bytes(), utf8.envelope_recipients)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ((b"Subject: Hello\r\n", f"Subject: {INJECTED_Q}\r\n".encode()), "carriage return"),
        ((b"Subject: Hello\r\n", b"Subject: Hello\r\nSubject: Two\r\n"), "2 subject headers"),
        ((b"Subject: Hello\r\n", b"Subject: Hello\r\nBcc: hidden@example.com\r\n"), "Bcc"),
        ((b"Subject: Hello\r\n", b"Subject: Hello\nX-Injected: yes\r\n"), "line break"),
        ((b"Subject: Hello\r\n", b"Subject: " + b"x" * 1000 + b"\r\n"), "998"),
        ((b"To: bob@example.com\r\n", b"To: mallory@evil.test\r\n"), "envelope"),
    ],
)
def test_a_tampered_stored_message_is_refused(change: tuple[bytes, bytes], words: str) -> None:
    outgoing = good_bytes()
    data = outgoing.to_bytes()
    assert change[0] in data
    with pytest.raises(StoredMessageInvalid) as info:
        check_stored_message(data.replace(*change), outgoing.envelope_recipients)
    assert words in str(info.value)


def test_a_stored_attachment_name_that_injects_is_refused() -> None:
    data = (
        good_bytes()
        .to_bytes()
        .replace(
            b"Subject: Hello\r\n",
            b'Subject: Hello\r\nContent-Disposition: attachment; filename="'
            + INJECTED_Q.encode()
            + b'"\r\n',
        )
    )
    with pytest.raises(StoredMessageInvalid):
        check_stored_message(data)


# -- text and file names that are not UTF-8 -----------------------------------


def non_utf8_file(tmp_path: Path) -> Path:
    raw = os.fsencode(tmp_path) + b"/r\xe9sum\xe9.txt"  # Latin-1, not UTF-8
    with open(raw, "wb") as file:
        file.write(b"data")
    return Path(os.fsdecode(raw))


def test_an_attachment_name_that_is_not_utf8_is_a_field_error(tmp_path: Path) -> None:
    path = non_utf8_file(tmp_path)
    errors = errors_of(attachments=[path])
    assert errors == {
        f"attachment {str(path)!r}": "the file name is not valid UTF-8; rename the file"
    }


def test_a_draft_with_such_an_attachment_still_saves(tmp_path: Path) -> None:
    path = non_utf8_file(tmp_path)
    store = DraftStore(tmp_path / "drafts")
    saved = SavedDraft(DraftStore.new_id(), "work", draft(attachments=[path], subject="Ünï"))
    store.save(saved)
    loaded = store.load(saved.id)
    assert loaded.draft == saved.draft
    assert os.fsencode(loaded.draft.attachments[0]) == os.fsencode(path)
    assert [d.id for d in store.list()] == [saved.id]


@pytest.mark.parametrize("key", ["subject", "body", "headers", "to", "from_address"])
def test_text_from_non_utf8_bytes_is_a_field_error(key: str) -> None:
    bad = b"caf\xe9".decode("utf-8", "surrogateescape")  # as argv gives it
    value: Any = {
        "subject": bad,
        "body": bad,
        "headers": [("X-A", bad)],
        "to": [f"{bad} <b@example.com>"],
        "from_address": f"{bad}@example.com",
    }[key]
    errors = errors_of(**{key: value})
    assert len(errors) == 1
    assert "UTF-8" in next(iter(errors.values()))
    with pytest.raises(AddressError):
        parse_address(f"{bad} <b@example.com>")


# -- files that never end ------------------------------------------------------


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path, words in (
        (Path("/dev/zero"), "not a regular file"),
        (fifo, "not a regular file"),  # opened without blocking: no writer needed
        (tmp_path, "is a directory"),
        (tmp_path / "missing", "does not exist"),
    ):
        with pytest.raises(FileProblem, match=words):
            read_regular_file(path)


def test_reading_is_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2048)
    assert read_regular_file(big, limit=2048) == b"x" * 2048
    with pytest.raises(FileProblem, match="larger than the limit"):
        read_regular_file(big, limit=2047)


def test_a_text_file_must_be_utf8(tmp_path: Path) -> None:
    path = tmp_path / "body.txt"
    path.write_bytes(b"line 1\r\nline 2\n")
    assert read_text_file(path) == "line 1\nline 2\n"
    path.write_bytes(b"caf\xe9")
    with pytest.raises(FileProblem, match="not UTF-8"):
        read_text_file(path)


@pytest.mark.parametrize(
    "fields",
    [
        {"headers": [["X-A"]]},
        {"headers": [["X-A", 1]]},
        {"to": "bob@example.com"},
        {"attachments": [1]},
        {"subject": None},
    ],
)
def test_a_draft_file_of_the_wrong_shape_is_skipped_not_sent(
    tmp_path: Path, fields: dict[str, Any]
) -> None:
    """A draft read from disk is checked as it loads: a header that is not a
    pair would otherwise crash the send, long after the list showed it."""
    import json

    store = DraftStore(tmp_path / "drafts")
    good = SavedDraft(DraftStore.new_id(), "work", draft())
    store.save(good)
    bad = {"id": "bad", "profile": "work", "saved": 1.0, "draft": {"subject": "x", **fields}}
    (tmp_path / "drafts" / "bad.json").write_text(json.dumps(bad))
    assert [d.id for d in store.list()] == [good.id]
    with pytest.raises((ValueError, TypeError)):
        store.load("bad")


@pytest.mark.parametrize("name", [INJECTED_Q + ".txt", "=?utf-8?q?Caf=C3=A9?=.pdf"])
def test_an_attachment_name_holding_an_encoded_word_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"data")
    errors = errors_of(attachments=[path])
    assert "encoded word" in errors[f"attachment {str(path)!r}"]
