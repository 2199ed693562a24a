"""What the views say of a message's protection: real gpg keys, mail captured by ``tuimail serve``.

The keyring comes from tests/test_pgp_mime.py (Alice signs; Bob's key is
imported). Mail is sent with ``tuimail send --pgp-sign/--pgp-encrypt``
into the sandbox, then ``tuimail inbox show --json`` says who signed it and
whether the signature holds, in a home that has the key and one that does not.
"""

from __future__ import annotations

import json
import smtplib
import subprocess
from pathlib import Path
from typing import Any

from tests import test_pgp_mime
from tests.cli_helpers import TUIMAIL, run_tuimail, send_args
from tests.test_cli_inbox import serving
from tests.test_pgp_mime import ALICE, BOB, Keyring, _close_home, _new_home
from tuimail.inbox.protection_view import describe, dkim_domains

#: The keyring fixtures of tests/test_pgp_mime.py, shared.
keyring = test_pgp_mime.keyring
gnupghome = test_pgp_mime.gnupghome


def _ids() -> dict[str, str]:
    listed = json.loads(run_tuimail("inbox", "list", "--json").stdout)
    return {entry["subject"]: entry["id"] for entry in listed}


def _protection(message_id: str, env: dict[str, str] | None = None) -> Any:
    result = run_tuimail("inbox", "show", message_id, "--json", "--no-check", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["protection"]


def test_inbox_show_says_signed_by_whom_valid_invalid_or_unknown(
    gnupghome: Keyring, isolated_dirs: Path
) -> None:
    with serving() as port:
        for subject, flags in (("signed", ["--pgp-sign"]), ("sealed", ["--pgp-encrypt"])):
            args = send_args(port, "--body", "Signed and sealed.\n", *flags)
            args[args.index("Hello")] = subject
            sent = run_tuimail(*args, "--no-queue")
            assert sent.returncode == 0, sent.stderr
        raw = subprocess.run(
            [TUIMAIL, "inbox", "show", _ids()["signed"], "--raw"],
            capture_output=True, timeout=30, check=True,
        ).stdout  # fmt: skip
        changed = raw.replace(b"Subject: signed", b"Subject: forged").replace(
            b"Signed and sealed", b"Signed and SEALED"
        )
        assert changed.count(b"SEALED") == 1
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail(ALICE, [BOB], changed)
        ids = _ids()

    good = _protection(ids["signed"])
    assert good["signed"] is True and good["encrypted"] is False
    signature = good["pgp"]["signature"]
    assert signature["verdict"] == "valid"
    assert signature["signer"] == f"Alice <{ALICE}>"
    assert signature["key"] == gnupghome.alice
    assert any(f"signed by Alice <{ALICE}>" in line for line in good["summary"])

    forged = _protection(ids["forged"])
    assert forged["pgp"]["signature"]["verdict"] == "invalid"
    assert "INVALID" in forged["summary"][0]

    # A reader whose keyring lacks Alice's key: signed, but by a key it cannot check.
    stranger = _new_home()
    try:
        unknown = _protection(ids["signed"], env={"GNUPGHOME": str(stranger)})
    finally:
        _close_home(stranger)
    assert unknown["pgp"]["signature"]["verdict"] == "unknown-key"
    assert gnupghome.alice.endswith(unknown["pgp"]["signature"]["key"])

    sealed = _protection(ids["sealed"])
    assert sealed["encrypted"] is True and sealed["pgp"]["decrypted"] is False
    names = {entry["name"] for entry in sealed["pgp"]["encrypted_to"]}
    assert names == {f"Alice <{ALICE}>", f"Bob <{BOB}>"}
    text = run_tuimail("inbox", "show", ids["sealed"], "--no-check")
    line = next(x for x in text.stdout.splitlines() if x.startswith("Protection: "))
    assert line.startswith("Protection: OpenPGP encrypted to ")
    assert f"Alice <{ALICE}>" in line and f"Bob <{BOB}>" in line


def test_decrypting_is_asked_for_and_checks_the_signature_inside(
    gnupghome: Keyring, isolated_dirs: Path
) -> None:
    from tuimail import pgp_mime
    from tuimail.message import Draft, build_message

    draft = Draft(from_address=f"Alice <{ALICE}>", to=[BOB], subject="x", body="inside\n")
    settings = pgp_mime.PgpSettings(sign=True, encrypt=True)
    wire = pgp_mime.protect(build_message(draft), settings).to_bytes()
    closed = describe(wire)
    assert closed.cleartext is None and closed.pgp is not None and not closed.pgp.decrypted
    opened = describe(wire, decrypt=True)
    assert opened.cleartext is not None and b"inside" in opened.cleartext
    assert opened.pgp is not None and opened.pgp.signature is not None
    assert opened.pgp.signature.verdict is pgp_mime.SignatureVerdict.VALID
    assert "decrypted for display" in "\n".join(opened.lines())


def test_plain_mail_says_nothing_and_dkim_domains_are_read_not_trusted() -> None:
    plain = b"From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n"
    assert describe(plain).lines() == []
    signed = b"DKIM-Signature: v=1; a=rsa-sha256;\r\n d=Example.TEST; s=sel; b=abc\r\n" + plain
    assert dkim_domains(signed) == ("example.test",)
    assert describe(signed).line() == "DKIM-signed by example.test (not checked here)"


# -- F5: the line, and decrypting on the key ------------------------------------------------------


def _protected(subject: str, body: str, *, sign: bool = False, encrypt: bool = False) -> bytes:
    from tuimail import pgp_mime
    from tuimail.message import Draft, build_message

    draft = Draft(from_address=f"Alice <{ALICE}>", to=[BOB], subject=subject, body=body)
    return pgp_mime.protect(
        build_message(draft), pgp_mime.PgpSettings(sign=sign, encrypt=encrypt)
    ).to_bytes()


def _captured(*messages: bytes) -> None:
    import mailbox

    from tuimail import paths

    maildir = paths.data_dir() / "sandbox" / "maildir"
    maildir.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(maildir, create=True)
    for message in messages:
        box.add(message)


async def test_f5_shows_who_signed_and_decrypts_only_on_the_key(
    gnupghome: Keyring, isolated_dirs: Path
) -> None:
    from tests.test_sandbox_shared import open_f5
    from tests.test_ui_loop_io import file_calls_on_this_thread
    from tests.ui_support import static_text, wait_for
    from tuimail.ui.app import TuimailApp

    sealed = _protected("Sealed", "The plans are inside.\n", sign=True, encrypt=True)
    other = _protected("Other", "Opened from the palette.\n", encrypt=True)
    signed = _protected("Signed", "In the clear.\n", sign=True)
    _captured(signed, sealed, other)
    app = TuimailApp(start_sandbox=False)
    with file_calls_on_this_thread(isolated_dirs) as log:
        async with app.run_test(size=(120, 40)) as pilot:

            def view() -> str:
                return static_text(app, "#message-view")

            table = await open_f5(pilot, 3)
            table.focus()
            at = {str(table.get_row_at(i)[3]): i for i in range(3)}
            table.move_cursor(row=at["Signed"])
            await wait_for(pilot, lambda: "In the clear" in view(), "the signed message")
            assert f"Protection: OpenPGP signature valid, signed by Alice <{ALICE}>" in view()
            table.move_cursor(row=at["Sealed"])
            await wait_for(pilot, lambda: "Subject: Sealed" in view(), "the sealed message")
            assert "Protection: OpenPGP encrypted to" in view()
            assert "x: decrypt it" in view()
            assert "The plans are inside" not in view()  # never decrypted unasked
            await pilot.press("x")
            await wait_for(pilot, lambda: "The plans are inside" in view(), "the decrypted text")
            assert "decrypted for display with your key (not saved)" in view()
            assert f"signed by Alice <{ALICE}>" in view()
            assert "Subject: Sealed" in view()
            table.move_cursor(row=at["Other"])
            await wait_for(pilot, lambda: "Subject: Other" in view(), "the other message")
            assert "Opened from the palette" not in view()
            await pilot.press("ctrl+p")
            for key in "decrypt the":
                await pilot.press("space" if key == " " else key)
            await pilot.pause(0.3)
            await pilot.press("enter")
            await wait_for(pilot, lambda: "Opened from the palette" in view(), "the palette")
    assert log.calls == []
    data = paths_text(isolated_dirs)
    assert b"The plans are inside" not in data  # nothing decrypted was written anywhere


def paths_text(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())


# -- F7: the sent history says signed by whom and encrypted to whom -------------------------------


async def test_f7_sent_says_signed_by_and_encrypted_to(
    gnupghome: Keyring, isolated_dirs: Path
) -> None:
    import asyncio

    from textual.widgets import DataTable, Static

    from tests.smtpservers import ServerThread, Sink
    from tests.ui_support import open_mailboxes, wait_for, wait_for_mailboxes
    from tuimail.ui.app import TuimailApp

    sink = Sink()
    with ServerThread() as servers:
        port = servers.smtp(sink)
        for subject, flag in (("signed", "--pgp-sign"), ("sealed", "--pgp-encrypt")):
            args = send_args(port, "--body", "Hi\n", flag)
            args[args.index("Hello")] = subject
            result = await asyncio.to_thread(run_tuimail, *args)
            assert result.returncode == 0, result.stderr
    assert len(sink.messages) == 2
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_mailboxes(pilot, "tab-sent")
        table = screen.query_one("#sent-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, "the two sent messages")
        views: dict[str, str] = {}
        for row in range(2):
            subject = str(table.get_row_at(row)[3])
            table.move_cursor(row=row)
            await wait_for_mailboxes(pilot)

            def ready(s: str = subject) -> bool:
                return f"Subject: {s}" in str(screen.query_one("#sent-view", Static).content)

            await wait_for(pilot, ready, "the sent message")
            views[subject] = str(screen.query_one("#sent-view", Static).content)
    assert f"Protection: OpenPGP signature valid, signed by Alice <{ALICE}>" in views["signed"]
    sealed = views["sealed"]
    assert "Protection: OpenPGP encrypted to" in sealed
    assert f"Alice <{ALICE}>" in sealed and f"Bob <{BOB}>" in sealed


# -- Compose's preview: what sending will do ------------------------------------------------------


async def test_compose_preview_says_signed_by_whom_and_encrypted_to_whom(
    gnupghome: Keyring, isolated_dirs: Path
) -> None:
    from textual.widgets import Label

    from tests.ui_support import fill_draft, save_profile, wait_for
    from tuimail.ui.app import TuimailApp
    from tuimail.ui.screens.markdown_preview import MarkdownPreview

    save_profile(
        name="signing",
        host="127.0.0.1",
        port=2525,
        security="none",
        from_address=ALICE,
        pgp_sign=True,
        pgp_encrypt=True,
        pgp_key=gnupghome.alice,
    )
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await fill_draft(pilot, to=BOB, subject="Plans", body="Hi")
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, MarkdownPreview), "the preview")
        words = str(app.screen.query_one("#preview-protection", Label).content)
    assert f"When sent: OpenPGP signed by {gnupghome.alice}" in words
    assert f"OpenPGP encrypted to {BOB} (and to you)" in words


# -- S/MIME: the same report, from openssl and the profile's key ----------------------------------


def test_smime_signed_and_encrypted_as_the_views_say_them(
    tmp_path: Path, isolated_dirs: Path
) -> None:
    import shutil

    from tests.smime_support import TestCA, openssl
    from tests.test_smime import smime_send
    from tuimail import smime

    openssl()
    ca = TestCA(tmp_path / "ca")
    people = {a: ca.issue(a) for a in (ALICE, BOB)}
    directory = tmp_path / "recipients"
    directory.mkdir()
    shutil.copy(people[BOB].cert_path, directory / f"{BOB}.pem")
    with serving() as port:
        for subject, flags in (("signed", ["--smime-sign"]), ("sealed", ["--smime-encrypt"])):
            sent = smime_send(port, people, "--subject", subject, *flags)
            assert sent.returncode == 0, sent.stderr
        ids = _ids()
        raw = subprocess.run(
            [TUIMAIL, "inbox", "show", ids["sealed"], "--raw"],
            capture_output=True, timeout=30, check=True,
        ).stdout  # fmt: skip
    signed = _protection(ids["signed"])
    assert signed["signed"] is True
    verification = signed["smime"]["verification"]
    assert verification["verdict"] == "untrusted" and verification["signer_emails"] == [ALICE]
    sealed = _protection(ids["sealed"])
    assert sealed["encrypted"] is True and sealed["smime"]["decrypted"] is False
    assert sealed["summary"][0].startswith("S/MIME encrypted to 2 certificates")
    bob = smime.load_signer(
        smime.SmimeSettings(
            sign=True,
            encrypt=False,
            cert=str(people[BOB].cert_path),
            key=str(people[BOB].key_path),
            passphrase_command="",
            profile_name="bob",
        )
    )
    assert describe(raw).cleartext is None  # never decrypted unasked
    opened = describe(raw, decrypt=True, smime_signer=bob)
    assert opened.cleartext is not None and b"from tuimail" in opened.cleartext
    assert "decrypted for display with your S/MIME key" in "\n".join(opened.lines())
