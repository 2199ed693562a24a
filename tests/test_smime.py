"""S/MIME on send: real processes, a real SMTP server, and OpenSSL to check every message.

Certificates come from a CA the tests make (tests/smime_support.py). Each
message tuimail sends is checked by ``openssl cms -verify`` against that CA
and decrypted by ``openssl smime -decrypt`` with the recipient's key, then
read by the email package; the message a server received is the one checked.
"""

from __future__ import annotations

import datetime
import email
import email.policy
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli_helpers import TUIMAIL, files_under, find_leaks, run_tuimail, send_args
from tests.smime_support import Identity, TestCA, openssl, openssl_decrypt, openssl_verify
from tests.smtpservers import ServerThread, Sink
from tuimail import smime
from tuimail.cli import exitcodes

ALICE = "alice@example.test"
BOB = "bob@example.test"
CAROL = "carol@example.test"
BODY = "Grüße from tuimail.\n.leading dot\n"


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    openssl()  # a missing openssl fails under CI=true, skips elsewhere
    return TestCA(tmp_path / "ca")


@pytest.fixture
def people(ca: TestCA, tmp_path: Path) -> dict[str, Identity]:
    """Alice (the sender), Bob and Carol, with Bob's and Carol's certificates in a directory."""
    found = {address: ca.issue(address) for address in (ALICE, BOB, CAROL)}
    directory = tmp_path / "recipients"
    directory.mkdir()
    for address in (BOB, CAROL):
        shutil.copy(found[address].cert_path, directory / f"{address}.pem")
    return found


def smime_send(
    port: int, people: dict[str, Identity], *extra: str
) -> subprocess.CompletedProcess[str]:
    alice = people[ALICE]
    files = (
        "--smime-cert",
        str(alice.cert_path),
        "--smime-key",
        str(alice.key_path),
        "--smime-recipient-certs",
        str(alice.cert_path.parent.parent / "recipients"),
    )
    # The options after the files, so a test's --smime-key replaces Alice's.
    args = send_args(port, "--body", BODY, *files, *extra)
    args[args.index("Alice <alice@example.test>")] = f"Alice <{ALICE}>"
    return run_tuimail(*args)


def parsed(data: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def body_text(entity: bytes) -> str:
    part = parsed(entity)
    text = part.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")


def nothing_queued(isolated_dirs: Path) -> bool:
    outbox = isolated_dirs / "data" / "tuimail" / "outbox"
    return not outbox.exists() or not [p for p in outbox.rglob("*") if p.is_file()]


def test_a_signed_message_verifies_with_openssl(
    servers: ServerThread, ca: TestCA, people: dict[str, Identity], tmp_path: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    result = smime_send(port, people, "--smime-sign", "--no-queue")
    assert result.returncode == 0, result.stderr
    assert f"=== S/MIME signed as alice <{ALICE}>" in result.stdout
    (received,) = sink.messages
    message = parsed(received.content)
    assert message.get_content_type() == "multipart/signed"
    assert message.get_param("protocol") == "application/pkcs7-signature"
    assert message.get_param("micalg") == "sha-256"
    assert message["Subject"] == "Hello" and message["To"] == BOB
    signed_part, signature = message.iter_parts()
    assert signature.get_content_type() == "application/pkcs7-signature"
    # The signed part is 7-bit (quoted-printable), so no relay can change it.
    assert signed_part["Content-Transfer-Encoding"] == "quoted-printable"
    content = openssl_verify(received.content, ca, tmp_path)
    assert body_text(content) == BODY
    assert received.content.isascii()

    good = smime.verify_smime(received.content, ca.ca_file)
    assert good.verdict is smime.Verdict.VALID, good
    assert good.signer_emails == (ALICE,)
    assert smime.verify_smime(received.content).verdict is smime.Verdict.UNTRUSTED
    other_ca = TestCA(tmp_path / "other-ca")
    assert smime.verify_smime(received.content, other_ca.ca_file).verdict is smime.Verdict.UNTRUSTED
    changed = received.content.replace(b"leading dot", b"leading d0t", 1)
    assert changed != received.content
    assert smime.verify_smime(changed, ca.ca_file).verdict is smime.Verdict.INVALID
    assert smime.verify_smime(b"Subject: x\r\n\r\nplain\r\n").verdict is smime.Verdict.NOT_SIGNED


def test_sign_then_encrypt_reads_back_with_each_recipients_key(
    servers: ServerThread, ca: TestCA, people: dict[str, Identity], tmp_path: Path
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    result = smime_send(
        port, people, "--cc", CAROL, "--smime-sign", "--smime-encrypt", "--no-queue"
    )
    assert result.returncode == 0, result.stderr
    # Bob, Carol, and Alice herself (so her sent copy stays readable).
    assert "=== S/MIME encrypted to 3 certificates" in result.stdout
    (received,) = sink.messages
    assert sorted(received.rcpt_tos) == [BOB, CAROL]
    message = parsed(received.content)
    assert message.get_content_type() == "application/pkcs7-mime"
    assert message.get_param("smime-type") == "enveloped-data"
    assert b"leading dot" not in received.content and b"Gr=C3=BC" not in received.content
    source = tmp_path / "enc.eml"
    source.write_bytes(received.content)
    printed = subprocess.run(
        [openssl(), "cms", "-cmsout", "-print", "-in", str(source)],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert "aes-256-cbc" in printed.stdout
    for reader in (BOB, CAROL):
        inner = openssl_decrypt(received.content, people[reader], tmp_path)
        assert parsed(inner).get_content_type() == "multipart/signed"
        assert body_text(openssl_verify(inner, ca, tmp_path)) == BODY
        assert smime.verify_smime(inner, ca.ca_file).verdict is smime.Verdict.VALID
    alice = people[ALICE]
    signer = smime.load_signer(
        smime.SmimeSettings(True, False, str(alice.cert_path), str(alice.key_path))
    )
    mine = smime.decrypt_smime(received.content, signer)
    assert smime.verify_smime(mine, ca.ca_file).verdict is smime.Verdict.VALID
    stranger = ca.issue("dave@example.test")
    other = smime.load_signer(
        smime.SmimeSettings(True, False, str(stranger.cert_path), str(stranger.key_path))
    )
    with pytest.raises(smime.SmimeError, match="cannot be decrypted"):
        smime.decrypt_smime(received.content, other)
    # What a view shows: decrypted with Bob's key (from his profile), the inner signature checked.
    from tuimail.profiles import Profile

    bob = people[BOB]
    bob_profile = Profile(name="bob", host="h", smime_cert=str(bob.cert_path),
                          smime_key=str(bob.key_path))  # fmt: skip
    reading = smime.read_smime(
        received.content, ca_file=ca.ca_file, signer=smime.signer_of(bob_profile)
    )
    assert reading.decrypted is not None and reading.decrypt_problem == ""
    assert reading.verification is not None
    assert reading.verification.verdict is smime.Verdict.VALID
    assert reading.verification.signer_emails == (ALICE,)
    unreadable = smime.read_smime(received.content, ca_file=ca.ca_file, signer=other)
    assert unreadable.decrypted is None and "cannot be decrypted" in unreadable.decrypt_problem
    keyless = smime.read_smime(received.content)
    assert keyless.summary is not None and keyless.summary.recipients == 3
    assert keyless.decrypt_problem == "no S/MIME key of yours to decrypt it with"


def test_encrypting_only_and_a_queued_retry_sends_the_same_bytes(
    servers: ServerThread, ca: TestCA, people: dict[str, Identity], tmp_path: Path,
    isolated_dirs: Path,
) -> None:  # fmt: skip
    sink = Sink(rcpt_replies={BOB: "451 4.7.1 greylisted, try again later"})
    port = servers.smtp(sink)
    first = smime_send(port, people, "--smime-encrypt")
    assert first.returncode == exitcodes.QUEUED, first.stderr
    assert "=== S/MIME encrypted to 2 certificates" in first.stdout
    sink.rcpt_replies.clear()
    flushed = run_tuimail("outbox", "flush", "--all", "--verbose")
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    (received,) = sink.messages
    inner = openssl_decrypt(received.content, people[BOB], tmp_path)
    assert parsed(inner).get_content_type() == "text/plain"
    assert body_text(inner) == BODY


def test_refusals_send_and_queue_nothing(
    servers: ServerThread, ca: TestCA, people: dict[str, Identity], tmp_path: Path,
    isolated_dirs: Path,
) -> None:  # fmt: skip
    sink = Sink()
    port = servers.smtp(sink)
    recipients = tmp_path / "recipients"
    ec = ca.issue("erin@example.test", kind="ec", name="erin")
    shutil.copy(ec.cert_path, recipients / "erin.pem")
    now = datetime.datetime.now(datetime.UTC)
    old = ca.issue(
        "olga@example.test",
        valid_from=now - datetime.timedelta(days=30),
        valid_to=now - datetime.timedelta(days=2),
        name="olga",
    )
    shutil.copy(old.cert_path, recipients / "olga.pem")
    early = ca.issue("fred@example.test", valid_from=now + datetime.timedelta(days=3), name="fred")
    shutil.copy(early.cert_path, recipients / "fred.pem")
    cases: list[tuple[tuple[str, ...], int, str]] = [
        (("--smime-encrypt", "--cc", "nobody@example.test"), exitcodes.INVALID_MESSAGE,
         "nobody@example.test: no certificate for it"),
        (("--smime-encrypt", "--cc", "erin@example.test"), exitcodes.INVALID_MESSAGE,
         "needs an RSA certificate"),
        (("--smime-encrypt", "--cc", "olga@example.test"), exitcodes.INVALID_MESSAGE,
         "its certificate expired on"),
        (("--smime-encrypt", "--cc", "fred@example.test"), exitcodes.INVALID_MESSAGE,
         "its certificate is not valid until"),
        (("--smime-encrypt", "--bcc", CAROL), exitcodes.INVALID_MESSAGE,
         "refused with Bcc recipients (carol@example.test)"),
    ]  # fmt: skip
    for extra, code, words in cases:
        result = smime_send(port, people, *extra)
        assert result.returncode == code, (extra, result.stderr)
        assert words in result.stderr and "nothing was sent" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""

    alice = people[ALICE]
    open_key = tmp_path / "open.key"
    open_key.write_bytes(alice.key_path.read_bytes())
    open_key.chmod(0o644)
    for key, words in (
        (tmp_path, "is a directory"),
        (tmp_path / "missing.key", "does not exist"),
        (open_key, "can be read or changed by other users (mode 0644)"),
        (people[BOB].key_path, "does not belong to the certificate"),
    ):
        result = smime_send(port, people, "--smime-sign", "--smime-key", str(key))
        assert result.returncode == exitcodes.CONFIG, (key, result.stderr)
        assert words.lower() in result.stderr.lower() and "nothing was sent" in result.stderr, (
            result.stderr
        )
    assert sink.messages == []
    assert nothing_queued(isolated_dirs)


def test_a_passphrase_from_a_command_or_the_keyring_and_a_wrong_one(
    servers: ServerThread, ca: TestCA, tmp_path: Path, isolated_dirs: Path
) -> None:
    from tests.ui_support import save_profile

    locked = ca.issue(ALICE, passphrase=b"correct horse", name="locked")
    sink = Sink()
    port = servers.smtp(sink)
    fields = dict(host="127.0.0.1", port=port, security="none", from_address=ALICE,
                  smime_cert=str(locked.cert_path), smime_key=str(locked.key_path),
                  smime_sign=True)  # fmt: skip
    save_profile(name="wrong", smime_passphrase_command="printf 'battery staple'", **fields)
    save_profile(name="right", smime_passphrase_command="printf 'correct horse'", **fields)
    save_profile(name="keyring", **fields)
    message = ("--to", BOB, "--subject", "Hello", "--body", "b")
    wrong = run_tuimail("send", "--profile", "wrong", *message)
    assert wrong.returncode == exitcodes.CONFIG, wrong.stderr
    assert "the passphrase does not open it" in wrong.stderr
    assert "battery" not in wrong.stderr + wrong.stdout
    empty = run_tuimail("send", "--profile", "keyring", *message)
    assert empty.returncode == exitcodes.CONFIG, empty.stderr
    assert "keyring/smime-key-passphrase" in empty.stderr
    assert sink.messages == [] and nothing_queued(isolated_dirs)
    right = run_tuimail("send", "--profile", "right", *message)
    assert right.returncode == 0, right.stderr
    outputs = {"stdout": right.stdout.encode(), "stderr": right.stderr.encode()}
    # (profiles.toml names the command that prints it; the outbox and logs never hold it.)
    stored = files_under(isolated_dirs / "data", isolated_dirs / "state")
    assert stored and find_leaks("correct horse", {**outputs, **stored}) == []
    (received,) = sink.messages
    assert smime.verify_smime(received.content, ca.ca_file).verdict is smime.Verdict.VALID


def test_every_wrong_passphrase_is_named_so_even_one_that_decrypts_to_noise(
    ca: TestCA, tmp_path: Path
) -> None:
    """About one wrong passphrase in 256 decrypts with valid padding, and OpenSSL
    then says "could not deserialize"; the user must still hear it is the passphrase."""
    from cryptography.hazmat.primitives import serialization

    locked = ca.issue(ALICE, passphrase=b"correct horse", name="locked")
    pem = locked.key_path.read_bytes()
    for attempt in range(20_000):
        noisy = f"wrong {attempt}"
        try:
            serialization.load_pem_private_key(pem, password=noisy.encode())
        except ValueError as exc:
            if "deserialize" in str(exc):
                break
    else:
        pytest.fail("no wrong passphrase decrypted to noise in 20,000 tries")
    settings = smime.SmimeSettings(
        True, False, str(locked.cert_path), str(locked.key_path),
        passphrase_command=f"printf '{noisy}'",
    )  # fmt: skip
    with pytest.raises(smime.SmimeKeyError, match="the passphrase does not open it"):
        smime.load_signer(settings)
    garbled = tmp_path / "garbled.key"
    garbled.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    garbled.chmod(0o600)
    unlocked = smime.SmimeSettings(True, False, str(locked.cert_path), str(garbled))
    with pytest.raises(smime.SmimeKeyError, match="is not a PEM private key"):
        smime.load_signer(unlocked)


def test_the_passphrase_stored_in_the_keyring_opens_the_key(
    ca: TestCA, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tuimail smime passphrase PROFILE`` stores it; signing reads it from there."""
    import io

    import keyring

    from tests.test_oauth_account_limits import MemoryKeyring
    from tests.ui_support import save_profile
    from tuimail.cli import main

    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    monkeypatch.setenv("TUIMAIL_ALLOW_UNSAFE_KEYRING", "1")
    locked = ca.issue(ALICE, passphrase=b"correct horse", name="locked")
    save_profile(name="mine", host="127.0.0.1", smime_cert=str(locked.cert_path),
                 smime_key=str(locked.key_path), smime_sign=True)  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert main(["smime", "passphrase", "mine", "--passphrase-stdin"]) == exitcodes.OK
    assert "entry 'mine/smime-key-passphrase'" in capsys.readouterr().err
    assert memory.values == {("tuimail", "mine/smime-key-passphrase"): "correct horse"}
    settings = smime.SmimeSettings(True, False, str(locked.cert_path), str(locked.key_path),
                                   profile_name="mine")  # fmt: skip
    assert smime.load_signer(settings).cert == locked.cert
    memory.values[("tuimail", "mine/smime-key-passphrase")] = "wrong"
    with pytest.raises(smime.SmimeKeyError, match="the passphrase does not open it"):
        smime.load_signer(settings)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"smime_sign": True}, "smime_cert: is needed to sign with S/MIME"),
        ({"smime_encrypt": True}, "smime_recipient_certs: is needed to encrypt"),
        ({"smime_cert": "c.pem"}, "smime_key: is needed with the other"),
    ],
)
def test_smime_settings_are_checked_with_the_profile(fields: dict[str, object], words: str) -> None:
    from tuimail.profiles import Profile, ProfileError

    with pytest.raises(ProfileError) as caught:
        Profile(name="p", host="h", **fields)  # type: ignore[arg-type]
    assert words == f"{caught.value.field_name}: {caught.value.message}"[: len(words)]


def test_options_need_their_files(servers: ServerThread) -> None:
    port = servers.smtp(Sink())
    result = run_tuimail(*send_args(port, "--body", "x"), "--smime-sign")
    assert result.returncode == exitcodes.USAGE
    assert "--smime-cert: is needed to sign with S/MIME" in result.stderr


def test_pgp_mime_and_smime_together_are_refused(people: dict[str, Identity]) -> None:
    from dataclasses import replace

    from tuimail.message import Draft, build_message
    from tuimail.profiles import Profile
    from tuimail.protection import ProtectionConflict, protected

    alice = people[ALICE]
    profile = Profile(name="p", host="h", smime_sign=True, smime_cert=str(alice.cert_path),
                      smime_key=str(alice.key_path))  # fmt: skip
    outgoing = build_message(Draft(from_address=ALICE, to=[BOB], subject="s", body="b"))
    pgp_wrapped = outgoing.to_bytes().replace(
        b"Content-Type: text/plain",
        b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; x=text/plain',
    )
    with pytest.raises(ProtectionConflict, match="already OpenPGP-signed or encrypted"):
        protected(profile, replace(outgoing, wire_bytes=pgp_wrapped))
    with pytest.raises(ProtectionConflict, match="both PGP/MIME and S/MIME"):
        protected(replace(profile, pgp_sign=True), outgoing)
    assert smime.smime_summary(protected(profile, outgoing).to_bytes()) is not None


def test_inbox_show_json_says_what_openssl_found(
    ca: TestCA, people: dict[str, Identity], isolated_dirs: Path
) -> None:
    """Signed, changed after signing, encrypted: as the sandbox captured them."""
    import json
    import smtplib

    from tests.test_cli_inbox import serving

    with serving() as port:
        signed = smime_send(port, people, "--smime-sign", "--subject", "signed")
        assert signed.returncode == 0, signed.stderr
        encrypted = smime_send(port, people, "--smime-encrypt", "--subject", "sealed")
        assert encrypted.returncode == 0, encrypted.stderr
        listed = json.loads(run_tuimail("inbox", "list", "--json").stdout)
        ids = {entry["subject"]: entry["id"] for entry in listed}
        raw = subprocess.run(
            [TUIMAIL, "inbox", "show", ids["signed"], "--raw"],
            capture_output=True, timeout=30, check=True,
        ).stdout  # fmt: skip
        changed = raw.replace(b"Subject: signed", b"Subject: forged").replace(
            b"leading dot", b"leading d0t"
        )
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail(ALICE, [BOB], changed)
        listed = json.loads(run_tuimail("inbox", "list", "--json").stdout)
        ids = {entry["subject"]: entry["id"] for entry in listed}

    def shown(subject: str) -> dict[str, object]:
        result = run_tuimail("inbox", "show", ids[subject], "--json")
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)["smime"]
        assert isinstance(document, dict)
        return document

    good = shown("signed")
    assert good["kind"] == "signed" and good["signer"] == f"alice <{ALICE}>"
    # No CA is given to the sandbox's view: the signature is intact, its signer unvouched.
    assert good["verification"] == {
        "verdict": "untrusted",
        "signer": f"alice <{ALICE}>",
        "signer_emails": [ALICE],
        "detail": "no CA file given",
    }
    forged = shown("forged")
    assert isinstance(forged["verification"], dict)
    assert forged["verification"]["verdict"] == "invalid"
    assert shown("sealed") == {"kind": "encrypted", "signer": "", "recipients": 2}


async def test_compose_offers_sign_and_encrypt_for_a_profile_with_smime_files(
    servers: ServerThread, ca: TestCA, people: dict[str, Identity], tmp_path: Path
) -> None:
    from textual.widgets import Checkbox

    from tests.ui_support import fill_draft, save_profile, wait_for_run
    from tuimail.transcript import EventKind
    from tuimail.ui.app import TuimailApp
    from tuimail.ui.widgets.smime_toggle import SmimeToggle

    sink = Sink()
    port = servers.smtp(sink)
    alice = people[ALICE]
    save_profile(name="plain", host="127.0.0.1", port=port, security="none",
                 from_address=ALICE)  # fmt: skip
    save_profile(name="secure", host="127.0.0.1", port=port, security="none",
                 from_address=ALICE, smime_cert=str(alice.cert_path),
                 smime_key=str(alice.key_path), smime_sign=True,
                 smime_recipient_certs=str(tmp_path / "recipients"))  # fmt: skip
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(120, 30)) as pilot:
        from textual.widgets import Select

        toggle = app.screen.query_one(SmimeToggle)
        select = app.screen.query_one("#profile", Select)
        select.value = "plain"
        await pilot.pause()
        assert not toggle.display or not toggle.has_class("-available")
        select.value = "secure"
        await pilot.pause()
        assert toggle.has_class("-available")
        sign = toggle.query_one("#smime-sign", Checkbox)
        encrypt = toggle.query_one("#smime-encrypt", Checkbox)
        assert sign.value and not encrypt.value  # as the profile says
        await fill_draft(pilot, to=BOB, subject="Hello", body="From the app")
        await pilot.click("#smime-encrypt")
        await pilot.pause()
        assert encrypt.value
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot, 1)
    (received,) = sink.messages
    assert parsed(received.content).get_content_type() == "application/pkcs7-mime"
    inner = openssl_decrypt(received.content, people[BOB], tmp_path)
    assert body_text(openssl_verify(inner, ca, tmp_path)).strip() == "From the app"
    notes = [e.text for e in run.transcript if e.kind is EventKind.INFO and "S/MIME" in e.text]
    assert notes == ["S/MIME encrypted to 2 certificates (anything signed inside is hidden too)"]
