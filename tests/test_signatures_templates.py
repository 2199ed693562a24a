"""A new message's start: the profile's signature, a template, and how text attachments go.

Through ``tuimail send`` and a real server where the command line is
concerned, and through the core functions the app calls.
"""

from __future__ import annotations

import datetime
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.cli_helpers import run_tuimail, send_args
from tests.smtpservers import ServerThread, Sink
from tuimail.cli import exitcodes
from tuimail.errors import NotFound
from tuimail.message import Draft, DraftInvalid, build_message
from tuimail.profiles import Profile
from tuimail.signatures import SignatureUnreadable, body_with_signature
from tuimail.templates import (
    TemplateFields,
    TemplateNameInvalid,
    apply_template,
    fields_for,
    list_templates,
    load_template,
    parse_template,
)


def write_profile(config: Path, port: int, extra: str = "") -> None:
    profiles = config / "tuimail" / "profiles.toml"
    profiles.parent.mkdir(parents=True, exist_ok=True)
    profiles.write_text(
        f'[profiles.work]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        f'from_address = "alice@example.test"\ndisplay_name = "Alice Liddell"\n{extra}'
    )


def parsed(content: bytes) -> EmailMessage:
    message = message_from_bytes(content, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body_of(content: bytes) -> str:
    text = parsed(content).get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")


# -- signatures ----------------------------------------------------------------


def test_the_signature_goes_below_dash_dash_space() -> None:
    profile = Profile(name="p", host="h", signature="Alice\nexample.org\n")
    assert body_with_signature("Hello Bob,\n\n", profile) == (
        "Hello Bob,\n\n-- \nAlice\nexample.org\n"
    )
    # An empty message starts with room to write above the signature.
    assert body_with_signature("", profile) == "\n\n-- \nAlice\nexample.org\n"
    # Starting twice never stacks two; a signature with its own separator gets no second.
    once = body_with_signature("Hi", profile)
    assert body_with_signature(once, profile) == once
    own = Profile(name="p", host="h", signature="-- \nAlice")
    assert body_with_signature("Hi", own) == "Hi\n\n-- \nAlice\n"
    assert body_with_signature("Hi", Profile(name="p", host="h")) == "Hi"


def test_a_signature_file_relative_to_the_config_dir(isolated_dirs: Path) -> None:
    config = isolated_dirs / "config" / "tuimail"
    config.mkdir(parents=True)
    (config / "sig.txt").write_text("Alice\r\nfrom a file\r\n\r\n")
    profile = Profile(name="p", host="h", signature_file="sig.txt")
    assert body_with_signature("Hi\n", profile) == "Hi\n\n-- \nAlice\nfrom a file\n"
    missing = Profile(name="p", host="h", signature_file="nope.txt")
    with pytest.raises(SignatureUnreadable, match="does not exist"):
        body_with_signature("Hi", missing)
    fifo = Profile(name="p", host="h", signature_file=str(config))
    with pytest.raises(SignatureUnreadable, match="directory"):
        body_with_signature("Hi", fifo)


def test_send_adds_the_profiles_signature_unless_told_not_to(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    write_profile(isolated_dirs / "config", port, 'signature = "Alice\\nTea at four"\n')
    base = ["send", "--profile", "work", "--to", "bob@example.test", "--subject", "s"]
    assert run_tuimail(*base, "--body", "See you.\n").returncode == 0
    assert run_tuimail(*base, "--no-signature", "--body", "See you.\n").returncode == 0
    with_signature, without = (body_of(m.content) for m in sink.messages)
    assert with_signature == "See you.\n\n-- \nAlice\nTea at four\n"
    assert without == "See you.\n"


def test_an_unreadable_signature_file_stops_the_send_and_says_how_to_go_on(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    write_profile(isolated_dirs / "config", port, 'signature_file = "/nonexistent/sig"\n')
    result = run_tuimail("send", "--profile", "work", "--to", "bob@example.test", "--body", "x")
    assert result.returncode == exitcodes.CONFIG
    assert "does not exist" in result.stderr and "--no-signature" in result.stderr
    assert sink.messages == []


# -- templates -------------------------------------------------------------------

WEEKLY = (
    "Subject: Weekly report $date for $to_names\n"
    "Cc: team@example.test\n"
    "X-Report: ${profile}\n"
    "\n"
    "Hello $to_names,\n"
    "\n"
    "From $from_name <$from>: ${__class__} $__init__ ${date.__class__} {0.__class__}\n"
    "$unknown stays, $$ is a dollar, $date.__class__ is the date and text.\n"
)


def test_send_from_a_template(servers: ServerThread, isolated_dirs: Path) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    write_profile(isolated_dirs / "config", port, 'signature = "A."\n')
    templates = isolated_dirs / "config" / "tuimail" / "templates"
    templates.mkdir()
    (templates / "weekly").write_text(WEEKLY)
    result = run_tuimail(
        "send", "--profile", "work", "--to", "Bob Builder <bob@example.test>",
        "--template", "weekly",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [received] = sink.messages
    assert received.rcpt_tos == ["bob@example.test", "team@example.test"]
    message = parsed(received.content)
    today = datetime.date.today().isoformat()
    assert message["Subject"] == f"Weekly report {today} for Bob Builder"
    assert message["X-Report"] == "work"
    assert body_of(received.content) == (
        "Hello Bob Builder,\n"
        "\n"
        "From Alice Liddell <alice@example.test>: ${__class__} $__init__ "
        "${date.__class__} {0.__class__}\n"
        f"$unknown stays, $ is a dollar, {today}.__class__ is the date and text.\n"
        "\n-- \nA.\n"
    )


@pytest.mark.parametrize("name", ["../profiles.toml", "a/b", "..", ".hidden", "/etc/passwd"])
def test_a_template_is_a_name_not_a_path(servers: ServerThread, name: str) -> None:
    result = run_tuimail(*send_args(servers.smtp(Sink()), "--template", name, "--body", "x"))
    assert result.returncode == exitcodes.USAGE
    assert "not a path" in result.stderr
    with pytest.raises(TemplateNameInvalid):
        load_template(name)


def test_an_unknown_template_names_the_ones_there_are(
    servers: ServerThread, isolated_dirs: Path
) -> None:
    templates = isolated_dirs / "config" / "tuimail" / "templates"
    templates.mkdir(parents=True)
    (templates / "weekly").write_text("Subject: w\n\nx\n")
    (templates / "thanks.txt").write_text("Thank you!\n")
    (templates / ".swp").write_text("editor junk")
    (templates / "folder").mkdir()
    assert list_templates() == ["thanks.txt", "weekly"]
    with pytest.raises(NotFound, match="weekly"):
        load_template("monthly")
    result = run_tuimail(*send_args(servers.smtp(Sink()), "--template", "monthly"))
    assert result.returncode == exitcodes.CONFIG
    assert "no template named 'monthly'" in result.stderr and "thanks.txt" in result.stderr


def test_a_field_value_cannot_start_a_header_of_its_own() -> None:
    template = parse_template("t", "Subject: for $to_names\nX-Tag: t\n\nbody\n")
    draft = Draft(from_address="a@example.test", to=["b@example.test"])
    # Values come from typed fields; one holding a line break stays inside the
    # Subject, where the message's checks refuse it, and adds no header.
    fields = TemplateFields(to_names=("Bob\nBcc: eve@example.test",))
    filled = apply_template(draft, template, fields)
    assert filled.headers == [("X-Tag", "t")] and filled.bcc == []
    with pytest.raises(DraftInvalid) as refused:
        build_message(filled)
    assert [e.field for e in refused.value.errors] == ["subject"]


def test_a_template_without_headers_is_all_body() -> None:
    template = parse_template("thanks", "Thank you, $to_names!\n")
    draft = Draft(to=["bob@example.test"], subject="kept", body="my own words")
    filled = apply_template(draft, template, fields_for(draft, "p", "2026-01-01"))
    assert filled.subject == "kept"
    assert filled.body == "Thank you, bob@example.test!\n\nmy own words"


# -- text attachments ------------------------------------------------------------


def test_a_non_ascii_text_attachment_carries_its_charset(
    servers: ServerThread, tmp_path: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    utf8 = tmp_path / "naïve résumé.txt"
    utf8.write_text("naïve résumé\n", encoding="utf-8")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("naïve\n".encode("latin-1"))
    ascii_text = tmp_path / "plain.txt"
    ascii_text.write_text("plain\n")
    result = run_tuimail(
        *send_args(
            port, "--body", "x", "--attach", str(utf8), "--attach", str(latin1),
            "--attach", str(ascii_text),
        )
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    parts = list(parsed(sink.messages[0].content).iter_attachments())
    assert [p.get_filename() for p in parts] == ["naïve résumé.txt", "latin1.txt", "plain.txt"]
    first, second, third = parts
    assert first.get_content_type() == "text/plain"
    assert first.get_content_charset() == "utf-8"
    assert first.get_content() == "naïve résumé\n"
    # Not UTF-8 and not ASCII: sent as bytes rather than under a wrong charset.
    assert second.get_content_type() == "application/octet-stream"
    assert second.get_payload(decode=True) == "naïve\n".encode("latin-1")
    assert third.get_content_type() == "text/plain"
    assert third.get_content_charset() == "us-ascii"
