"""Opportunistic OpenPGP sending a message unencrypted says so, in one line, and why.

A profile with ``pgp_encrypt_opportunistic`` encrypts whenever every
recipient has a usable key (tests/test_pgp_mime.py's keyring: Bob has one,
Carol none). A message to both goes in clear, as the mode promises; the
transcript (the app's, and the one kept with the sent copy) and
``tuimail send``'s output must say it went unencrypted and name Carol.
Real gpg, a real SMTP server on loopback, the real command.
"""

from __future__ import annotations

from pathlib import Path

from tests import test_pgp_mime
from tests.cli_helpers import run_tuimail
from tests.smtpservers import ServerThread, Sink
from tests.test_pgp_mime import ALICE, Keyring
from tests.ui_support import fill_draft, save_profile, wait_for_run
from tuimail.ui.app import TuimailApp

keyring = test_pgp_mime.keyring
gnupghome = test_pgp_mime.gnupghome

BOB, CAROL = "bob@example.test", "carol@example.test"


def _profile(port: int) -> None:
    save_profile(
        name="opportunist",
        host="127.0.0.1",
        port=port,
        security="none",
        from_address=ALICE,
        pgp_encrypt_opportunistic=True,
    )


def test_send_says_the_message_goes_unencrypted_and_why(
    gnupghome: Keyring, servers: ServerThread, isolated_dirs: Path
) -> None:
    sink = Sink()
    _profile(servers.smtp(sink))
    result = run_tuimail(
        "send", "--profile", "opportunist", "--to", BOB, "--to", CAROL,
        "--subject", "Hello", "--body", "In clear.\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (received,) = sink.messages
    assert b"BEGIN PGP MESSAGE" not in received.content
    said = [line for line in (result.stdout + result.stderr).splitlines() if "UNENCRYPTED" in line]
    assert len(said) == 1, result.stdout + result.stderr
    assert CAROL in said[0] and "no key in the keyring" in said[0], said
    assert f"{BOB} (" not in said[0], said  # Bob has a key: not named as lacking one
    # When every recipient has a key, nothing of the kind is said.
    sealed = run_tuimail(
        "send", "--profile", "opportunist", "--to", BOB, "--subject", "Hi", "--body", "x\n"
    )  # fmt: skip
    assert sealed.returncode == 0, sealed.stderr
    assert "UNENCRYPTED" not in sealed.stdout + sealed.stderr
    assert b"BEGIN PGP MESSAGE" in sink.messages[-1].content


async def test_the_app_transcript_says_it(
    gnupghome: Keyring, servers: ServerThread, isolated_dirs: Path
) -> None:
    sink = Sink()
    _profile(servers.smtp(sink))
    app = TuimailApp(start_sandbox=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await fill_draft(pilot, to=f"{BOB}, {CAROL}", subject="Hello", body="In clear")
        await pilot.press("ctrl+s")
        run = await wait_for_run(pilot)
    texts = [entry.text for entry in run.transcript.entries if "UNENCRYPTED" in entry.text]
    assert len(texts) == 1, [e.text for e in run.transcript.entries]
    assert CAROL in texts[0] and BOB + " (" not in texts[0], texts
    (received,) = sink.messages
    assert b"BEGIN PGP MESSAGE" not in received.content
    kept = b"".join(
        p.read_bytes()
        for p in (isolated_dirs).rglob("*")
        if "sent-transcripts" in str(p) and p.is_file()
    )
    assert b"UNENCRYPTED" in kept, "the transcript kept with the sent copy does not say it"
