"""Attacks on ``tuimail compose --eml`` (tuimail/eml.py) and the builder it feeds
(tuimail/message.py): hostile headers, encoded words and attachment names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import run_tuimail
from tuimail.cli import exitcodes
from tuimail.eml import draft_from_eml
from tuimail.message import MAX_HEADER_VALUE, Draft, DraftInvalid, build_message

BASE = b"From: a@example.test\nTo: b@example.test\n"

#: A child that opens an .eml with a 1 MB Subject and builds it: on the old code the
#: email package's folding took minutes (it grows with the square of the length).
BUILD_HUGE_SUBJECT = """
import sys, tempfile
from pathlib import Path
from tuimail.eml import draft_from_eml
from tuimail.message import DraftInvalid, build_message
raw = b"From: a@example.test\\nTo: b@example.test\\nSubject: " + b"ab " * 350_000 + b"\\n\\nhi\\n"
try:
    build_message(draft_from_eml(raw, Path(tempfile.mkdtemp())))
except DraftInvalid as exc:
    print(exc.errors[0].field, exc.errors[0].message)
else:
    print("built")
"""


def test_a_huge_subject_is_refused_at_once() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BUILD_HUGE_SUBJECT],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr
    assert "at most 262,144 are opened" in result.stdout, result.stdout


def test_a_huge_subject_is_refused_when_built(tmp_path: Path) -> None:
    """A draft from elsewhere (an edited message, a reply) with a Subject too long to fold."""
    draft = Draft(from_address="a@example.test", to=["b@example.test"], subject="ab " * 30_000)
    with pytest.raises(DraftInvalid) as caught:
        build_message(draft)
    assert caught.value.errors[0].message.startswith("is 90,000 characters long")


def test_one_long_header_of_an_opened_eml_is_refused(tmp_path: Path) -> None:
    raw = BASE + b"Subject: x\nX-Long: " + b"ab\n " * 30_000 + b"\n\nbody\n"
    with pytest.raises(DraftInvalid) as caught:
        draft_from_eml(raw, tmp_path)
    assert caught.value.errors[0].message == "a header is longer than 65,536 bytes"


def test_many_long_headers_are_refused_together() -> None:
    headers = [(f"X-Long-{number}", "y " * 8000) for number in range(10)]
    draft = Draft(from_address="a@example.test", to=["b@example.test"], headers=headers)
    with pytest.raises(DraftInvalid) as caught:
        build_message(draft)
    assert any("at most 65,536 are taken" in error.message for error in caught.value.errors)
    # A long value under the limit still goes (the References of a long thread).
    fine = Draft(
        from_address="a@example.test",
        to=["b@example.test"],
        headers=[("References", " ".join(f"<{n}@example.test>" for n in range(500)))],
    )
    assert len(fine.headers[0][1]) < MAX_HEADER_VALUE
    build_message(fine)


@pytest.mark.parametrize(
    "header",
    [
        b"Subject: =?utf-8?q?hi=0D=0ABcc:_evil@example.test?=",
        b"Subject: x\nX-Foo: =?utf-8?q?hi=0D=0ABcc:_evil@example.test?=",
        b"Subject: =?utf-8?b?aGkNCkJjYzogZXZpbEBleGFtcGxlLnRlc3Q=?=",
        b"Subject: =?utf-8?q?hi=1B]0;pwn=07?=",
    ],
)
def test_encoded_line_breaks_and_escapes_are_never_built(tmp_path: Path, header: bytes) -> None:
    """Python 3.11.7's email package lacks the CVE-2024-6923 fix: our checks refuse."""
    draft = draft_from_eml(BASE + header + b"\n\nbody\n", tmp_path)
    with pytest.raises(DraftInvalid):
        build_message(draft)


def _multipart(parts: bytes) -> bytes:
    return (
        BASE + b"Subject: x\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=B\n\n" + parts + b"--B--\n"
    )


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (
            BASE
            + b"Subject: x\nMIME-Version: 1.0\n"
            + b"Content-Type: message/rfc822\n\n" * 3000
            + b"Subject: in\n\nhi\n",
            "has parts nested too deeply to open",
        ),
        (
            _multipart(b"--B\nContent-Type: application/octet-stream\n\nx\n" * 5000),
            "has 5,001 parts; at most 200 are opened",
        ),
        (
            _multipart(
                b"--B\nContent-Type: application/octet-stream\n"
                b'Content-Disposition: attachment; filename="' + b"a b " * 100_000 + b'"\n\nxx\n'
            ),
            "a header is longer than 65,536 bytes",
        ),
    ],
    ids=["nested-3000", "parts-5000", "part-header-400k"],
)
def test_compose_eml_bombs_are_refused_in_words(tmp_path: Path, raw: bytes, words: str) -> None:
    """Each once crashed with a traceback (recursion), or took a minute or more."""
    eml = tmp_path / "bomb.eml"
    eml.write_bytes(raw)
    result = run_tuimail("compose", "--eml", str(eml), "--print", timeout=30)
    assert result.returncode == exitcodes.INVALID_MESSAGE, result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_a_part_name_keeps_no_control_bidi_or_path(tmp_path: Path) -> None:
    raw = _multipart(
        b"--B\nContent-Type: text/plain\n\nhi\n"
        b"--B\nContent-Type: application/octet-stream\nContent-Disposition: attachment; "
        b"filename*=utf-8''..%2F..%2F%1B%5B31mevil%C2%9B%E2%80%AEtxt.exe\n\nxx\n"
        b'--B\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename="'
        + b"n" * 5000
        + b'.pdf"\n\nyy\n'
    )
    draft = draft_from_eml(raw, tmp_path / "parts")
    first, second = draft.attachments
    assert first.parent == second.parent == tmp_path / "parts"
    assert first.name == "_[31mevil__txt.exe"
    assert len(second.name) == 120 and second.name.endswith("n.pdf")


#: A child limited to 1 GiB of address space that attaches one 50 MB file forty times.
ATTACH_MANY_TIMES = """
import resource, sys
from pathlib import Path
from tuimail.message import Draft, DraftInvalid, build_message
resource.setrlimit(resource.RLIMIT_AS, (1024 ** 3, 1024 ** 3))
big = Path(sys.argv[1])
draft = Draft(from_address="a@example.test", to=["b@example.test"], attachments=[big] * 40)
try:
    build_message(draft)
except DraftInvalid as exc:
    print(exc.errors[-1].message)
"""


def test_one_big_file_attached_many_times_is_not_read_many_times(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as file:
        file.truncate(50 * 1024 * 1024)
    result = subprocess.run(
        [sys.executable, "-c", ATTACH_MANY_TIMES, str(big)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "the files together are larger than 64 MiB" in result.stdout
