"""Reply, reply-all and forward drafts from real messages (one a server captured, one
from sent/) and from a hostile one; every draft is built by the core to prove it passes."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from tests.smtpservers import ServerThread, Sink
from tuimail.message import Draft, build_message
from tuimail.outbox import Outbox, Result
from tuimail.profiles import Profile, Security
from tuimail.replies import (
    MAX_TEXT,
    forward,
    own_addresses,
    read_original,
    reply,
    reply_all,
    write_forward_attachment,
)

ME = own_addresses(['"Me" <me@example.test>', "other-me@example.test", "not an address"])


def built(draft: Draft, sender: str = "me@example.test") -> EmailMessage:
    """The draft as the core builds it (it raises if any value fails its checks)."""
    if not draft.from_address:
        draft.from_address = sender
    data = build_message(draft).to_bytes()
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def captured_and_sent(tmp_path: Path, servers: ServerThread) -> tuple[bytes, bytes]:
    """One message sent for real: the bytes the server captured, and the copy in sent/."""
    sink = Sink()
    port = servers.smtp(sink)
    outbox = Outbox(tmp_path / "data")
    profile = Profile(name="local", host="127.0.0.1", port=port, security=Security.NONE)
    draft = Draft(
        from_address='"Bob Sender" <bob@example.org>',
        to=["Me <me@example.test>", "Carol <carol@example.org>"],
        cc=["dave@example.org", "other-me@example.test", "carol@example.org"],
        reply_to=["Bob's list <list@example.org>"],
        subject="Lunch plans",
        body="Shall we meet at noon?\n\nBob\n",
        headers=[("References", "<first@example.org>")],
    )
    queued = outbox.enqueue(profile, build_message(draft), follows_profile=False)
    assert (await outbox.attempt(queued.key)).result is Result.SENT
    [(_key, sent)] = outbox.sent()
    return sink.messages[0].content, sent


async def test_reply_to_a_captured_message(tmp_path: Path, servers: ServerThread) -> None:
    captured, _ = await captured_and_sent(tmp_path, servers)
    original = read_original(captured)
    draft = reply(original, ME)
    assert draft.to == ["Bob's list <list@example.org>"]  # Reply-To wins over From
    assert draft.subject == "Re: Lunch plans"
    assert draft.from_address == "Me <me@example.test>"  # the identity it was sent to
    message_id = original.message_id
    assert message_id.startswith("<") and message_id.endswith("@example.org>")
    assert dict(draft.headers) == {
        "In-Reply-To": message_id,
        "References": f"<first@example.org> {message_id}",
    }
    assert draft.body.endswith("Bob Sender wrote:\n> Shall we meet at noon?\n>\n> Bob\n"), (
        draft.body
    )
    assert "\nOn " in draft.body
    message = built(draft)
    assert message["In-Reply-To"] == message_id
    # Replying to the reply does not double the prefix.
    again = reply(read_original(build_message(draft).to_bytes()), ME)
    assert again.subject == "Re: Lunch plans"


async def test_reply_all_drops_own_addresses_and_duplicates(
    tmp_path: Path, servers: ServerThread
) -> None:
    captured, _ = await captured_and_sent(tmp_path, servers)
    draft = reply_all(read_original(captured), ME)
    assert draft.to == ["Bob's list <list@example.org>"]
    assert draft.cc == ["Carol <carol@example.org>", "dave@example.org"]
    built(draft)


async def test_reply_to_a_sent_message_goes_to_its_recipients(
    tmp_path: Path, servers: ServerThread
) -> None:
    _, sent = await captured_and_sent(tmp_path, servers)
    bob = own_addresses(["bob@example.org"])  # the user is Bob, looking at Sent
    draft = reply(read_original(sent), bob)
    assert draft.to == ["Me <me@example.test>", "Carol <carol@example.org>"]
    built(draft, "bob@example.org")


async def test_forward_inline_and_attached(tmp_path: Path, servers: ServerThread) -> None:
    captured, _ = await captured_and_sent(tmp_path, servers)
    original = read_original(captured)
    inline = forward(original)
    assert inline.subject == "Fwd: Lunch plans" and inline.to == []
    assert "---------- Forwarded message ----------\n" in inline.body
    assert "\nFrom: Bob Sender <bob@example.org>\n" in inline.body
    assert "\nSubject: Lunch plans\n" in inline.body
    assert "\nCc: dave@example.org, other-me@example.test, carol@example.org\n" in inline.body
    assert inline.body.endswith("Shall we meet at noon?\n\nBob\n")
    inline.to = ["erin@example.org"]
    built(inline)  # it builds (and now has a sender)
    again = forward(read_original(build_message(inline).to_bytes()))
    assert again.subject == "Fwd: Lunch plans"  # not doubled
    path = write_forward_attachment(original, tmp_path / "forwards")
    assert path.name == "Lunch plans.eml" and path.read_bytes() == captured
    assert path.stat().st_mode & 0o777 == 0o600
    assert write_forward_attachment(original, tmp_path / "forwards").name == "Lunch plans-2.eml"
    attached = forward(original, attachment=path)
    assert (attached.subject, attached.body, attached.attachments) == (
        "Fwd: Lunch plans",
        "",
        [path],
    )
    attached.to = ["erin@example.org"]
    attached.from_address = "me@example.test"
    wire = build_message(attached).to_bytes()
    [part] = list(message_from_bytes(wire, policy=policy.default).iter_attachments())
    assert part.get_filename() == "Lunch plans.eml"
    assert part.get_content_type() == "message/rfc822"  # the captured bytes, as they are
    assert b'filename="Lunch plans.eml"\r\n\r\n' + captured in wire


HOSTILE = (
    b"From: =?utf-8?q?Boss=0D=0ABcc:_x@evil.test?= <boss@bank.example>\r\n"
    b'Reply-To: "boss@bank.example" <x@evil.test>, =?utf-8?q?=1B]52;c;eA=3D=3D=07?= <ok@example.org>\r\n'
    b"To: me@example.test, undisclosed-recipients:;, bad\x1b[2J@example.org, <a@b@c>\r\n"
    b"Cc: " + b", ".join(b"u%d@example.org" % n for n in range(5000)) + b"\r\n"
    b"Subject: =?utf-8?q?Invoice=0D=0ABcc:_x@evil.test=0D=0A?= " + b"A" * 100_000 + b"\r\n"
    b"Message-ID: <ok@example.org>\r\nIn-Reply-To: <a@b>\r\n"
    b"References: <r1@example.org>\r\n <bad id>\r\n\t<r2@example.org>" + b" <x@y>" * 1000 + b"\r\n"
    b"Date: not a date\r\n"
    b"Content-Type: text/plain; charset=x-unknown\r\n"
    b"\r\nHi\x00 there\r\n\x1b[2Jcleared\r\n"
)


def test_a_hostile_message_cannot_inject_into_the_draft() -> None:
    original = read_original(HOSTILE)
    assert "\n" not in original.subject and "\r" not in original.subject
    assert len(original.subject) <= MAX_TEXT
    for draft in (reply(original, ME), reply_all(original, ME), forward(original)):
        if not (draft.to or draft.cc):
            draft.to = ["erin@example.org"]
        message = built(draft)
        assert message["Bcc"] is None
        assert [name.lower() for name in message].count("subject") == 1
    answer = reply(original, ME)
    # The spoofing name is dropped; the escape sequence in a name too; both addresses stay.
    assert answer.to == ["x@evil.test", "ok@example.org"]
    assert answer.subject.startswith("Re: Invoice Bcc: x@evil.test ")
    everyone = reply_all(original, ME)
    assert len(everyone.cc) == 100  # a bound on addresses read from one header
    assert "me@example.test" not in " ".join(everyone.cc)
    references = dict(answer.headers)["References"].split()
    assert len(references) == 20 and references[0] == "<r1@example.org>"
    assert references[-1] == "<ok@example.org>"
    assert "\x00" not in answer.body
    assert original.skipped  # the addresses refused are listed, escaped
    assert all(text.isprintable() for text in original.skipped)
