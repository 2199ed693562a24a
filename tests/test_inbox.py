"""The inbox's index against a real Maildir: catching up, search, mailboxes, damage, sharing.

Messages are real files written the way the sandbox writes them
(``maildir.deliver``); other processes are real processes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tuimail.errors import NotFound
from tuimail.inbox import Ambiguous, InboxIndex, MailboxRule, rules_from_config
from tuimail.inbox.index import BATCH
from tuimail.inbox.mailboxes import MailboxRuleInvalid, tags_of
from tuimail.inbox.mime import html_to_text, safe_filename, save_part, view
from tuimail.maildir import deliver

HOSTILE_QUERIES = [
    '"', '""', '"unclosed', "NEAR(", "NEAR(a b", "*", "-", "-x", "a OR", "AND", "^", "(",
    ")", "x:y", "subject:", "from:%", "to:_", "\\", "'", "a' OR 1=1 --", "\x00", "col:x",
    "body*", "{a b}", "+", ":", "tag:\"", "NOT", "a NOT b",
]  # fmt: skip


def message(
    subject: str, to: str = "bob@example.test", body: str = "hello", **headers: str
) -> bytes:
    extra = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    return (
        f"From: Alice <alice@example.test>\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}"
        f"\r\n{body}\r\n"
    ).encode()


@pytest.fixture
def inbox(tmp_path: Path) -> InboxIndex:
    maildir = tmp_path / "maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (tmp_path / "sessions").mkdir()
    return InboxIndex(maildir, tmp_path / "sessions", tmp_path / "inbox.sqlite3")


def subjects(index: InboxIndex, query: str = "") -> list[str]:
    return [e.subject for e in index.page(query).entries]


def test_catches_up_with_a_file_dropped_in_and_one_deleted_by_hand(inbox: InboxIndex) -> None:
    first = deliver(inbox.maildir, message("first"), durable=False)
    assert inbox.refresh()
    assert subjects(inbox) == ["first"]
    assert not inbox.refresh()  # nothing changed: no work
    dropped = deliver(inbox.maildir, message("dropped in"), durable=False)
    assert inbox.refresh()
    assert subjects(inbox) == ["dropped in", "first"]
    (inbox.maildir / "new" / first).unlink()
    assert inbox.refresh()
    assert subjects(inbox) == ["dropped in"]
    # Another program marks it read (Maildir's S flag in cur/).
    os.rename(inbox.maildir / "new" / dropped, inbox.maildir / "cur" / f"{dropped}:2,S")
    inbox.refresh()
    assert inbox.page().entries[0].read
    # A second index object (another process) sees the same.
    other = InboxIndex(inbox.maildir, inbox.sessions_dir, inbox.index_path)
    other.refresh()
    assert [e.id for e in other.page().entries] == [dropped]
    # Deleted through an index that has not seen a rename yet: the file goes all the same.
    stale = other.page().entries[0]
    os.rename(inbox.maildir / "cur" / f"{dropped}:2,S", inbox.maildir / "cur" / f"{dropped}:2,RS")
    assert other.delete([stale]) == 1
    assert not list((inbox.maildir / "cur").iterdir())
    inbox.refresh()
    assert inbox.page().entries == ()


def test_mark_read_sets_the_maildir_flag(inbox: InboxIndex) -> None:
    key = deliver(inbox.maildir, message("to read"), durable=False)
    inbox.refresh()
    assert subjects(inbox, "is:unread") == ["to read"]
    inbox.mark_read(inbox.find(key))
    assert (inbox.maildir / "cur" / f"{key}:2,S").exists()
    assert subjects(inbox, "is:read") == ["to read"]
    inbox.mark_read(inbox.find(key), read=False)
    assert (inbox.maildir / "cur" / f"{key}:2,").exists()
    inbox.refresh()
    assert subjects(inbox, "is:unread") == ["to read"]


def test_session_files_add_the_envelope_session_and_route_by_auth_user(
    inbox: InboxIndex,
) -> None:
    inbox.rules = (MailboxRule("alice-box", auth_user="alice"),)
    key = deliver(inbox.maildir, message("routed"), durable=False)
    inbox.refresh()
    assert inbox.page().entries[0].mailbox == "inbox"  # no session file yet
    newest = inbox.newest_row()
    document = {
        "id": "s1",
        "authenticated_as": "alice",
        "messages": [{"key": key, "mail_from": "bounce@example.test",
                      "rcpt_tos": ["bob+signup@example.test"], "size": 1, "received_at": 1.0}],
    }  # fmt: skip
    (inbox.sessions_dir / "s1.json").write_text(json.dumps(document))
    inbox.refresh()
    entry = inbox.page().entries[0]
    assert (entry.mailbox, entry.session_id, entry.auth_user) == ("alice-box", "s1", "alice")
    assert entry.envelope_to == ("bob+signup@example.test",)
    assert entry.tags == ("signup",)
    # Updated in place: a 'wait --new' begun before the session file came
    # does not take this message for a new one.
    assert inbox.newest_row() == newest == entry.row
    assert inbox.wait_for("", timeout=0.2, after_row=newest) is None
    assert subjects(inbox, "mailbox:alice-box tag:signup") == ["routed"]


def test_mailbox_rules_first_match_wins_and_tags(inbox: InboxIndex) -> None:
    inbox.rules = rules_from_config(
        {
            "sandbox": {
                "mailboxes": [
                    {"name": "billing", "recipient": "*@Billing.Example"},
                    {"name": "marketing", "header": "X-Campaign: spring*"},
                    {"name": "late", "recipient": "*"},
                ]
            }
        }
    )
    deliver(inbox.maildir, message("invoice", to="pay@billing.example"), durable=False)
    deliver(inbox.maildir, message("sale", X_Campaign="Spring-2026"), durable=False)
    deliver(inbox.maildir, message("other", to="carol+a+b@example.test"), durable=False)
    inbox.refresh()
    by_subject = {e.subject: e for e in inbox.page().entries}
    assert by_subject["invoice"].mailbox == "billing"
    assert by_subject["sale"].mailbox == "marketing"
    assert by_subject["other"].mailbox == "late"
    assert by_subject["other"].tags == ("a+b",)
    assert subjects(inbox, "mailbox:billing") == ["invoice"]
    # Other rules: every message is routed again.
    inbox.rules = ()
    inbox.refresh()
    assert {e.mailbox for e in inbox.page().entries} == {"inbox"}
    assert tags_of(["<X+Tag@y>", "plain@y"]) == ("tag",)


def test_bad_mailbox_rules_are_refused_in_words() -> None:
    for entry in ({"name": "x"}, {"name": "a b", "recipient": "*"},
                  {"name": "x", "recipient": "*", "auth_user": "u"}, {"name": "x", "header": "nocolon"}):  # fmt: skip
        with pytest.raises(MailboxRuleInvalid, match=r"config\.toml: mailbox rule 1"):
            rules_from_config({"sandbox": {"mailboxes": [entry]}})


def test_search_by_field_and_text_and_hostile_queries_never_fail(inbox: InboxIndex) -> None:
    deliver(inbox.maildir, message("Quarterly report", body="the numbers are up"), durable=False)
    deliver(inbox.maildir, message("Lunch?", to="carol@example.test", body="NEAR the park"), durable=False)  # fmt: skip
    inbox.refresh()
    assert subjects(inbox, "numbers") == ["Quarterly report"]
    assert subjects(inbox, "num") == ["Quarterly report"]  # as you type: a prefix matches
    assert subjects(inbox, "to:carol") == ["Lunch?"]
    assert subjects(inbox, "from:alice subject:quarterly") == ["Quarterly report"]
    assert subjects(inbox, 'subject:"lunch?"') == ["Lunch?"]
    assert subjects(inbox, "NEAR(") == ["Lunch?"]  # a word to look for, not FTS5 syntax
    assert subjects(inbox, "has:attachment") == []
    for query in HOSTILE_QUERIES:
        inbox.page(query)  # never raises
        inbox.count(query)
    # LIKE's wildcards are literal: nobody's address holds a % sign.
    assert subjects(inbox, "from:%") == []


def test_paging_by_time_without_loading_all(inbox: InboxIndex) -> None:
    for number in range(25):
        deliver(inbox.maildir, message(f"m{number:02}"), durable=False)
    inbox.refresh()
    seen: list[str] = []
    page = inbox.page(limit=10)
    while True:
        seen += [e.subject for e in page.entries]
        if page.next is None:
            break
        page = inbox.page(after=page.next, limit=10)
    assert seen == [f"m{n:02}" for n in reversed(range(25))]


def test_ids_by_unambiguous_prefix(inbox: InboxIndex) -> None:
    one = deliver(inbox.maildir, message("a"), durable=False)
    two = deliver(inbox.maildir, message("b"), durable=False)
    inbox.refresh()
    assert inbox.find(one).id == one
    shared = next(i for i, (a, b) in enumerate(zip(one, two, strict=False)) if a != b)
    assert inbox.find(two[: shared + 1]).id == two
    with pytest.raises(Ambiguous) as caught:
        inbox.find(one[:shared])
    assert set(caught.value.matches) == {one, two}
    for missing in ("zzz", "", "../x"):
        with pytest.raises(NotFound):
            inbox.find(missing)


def test_a_corrupt_index_is_built_again_not_trusted(inbox: InboxIndex) -> None:
    deliver(inbox.maildir, message("kept"), durable=False)
    inbox.refresh()
    inbox.close()
    inbox.index_path.write_bytes(b"this is not SQLite at all" * 100)
    damaged = InboxIndex(inbox.maildir, inbox.sessions_dir, inbox.index_path)
    damaged.refresh()
    assert subjects(damaged) == ["kept"]
    assert "built again" in damaged.rebuilt_because
    # Pages of a real database overwritten in the middle.
    damaged.close()
    data = bytearray(inbox.index_path.read_bytes())
    with sqlite3.connect(inbox.index_path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(inbox.index_path.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)
    inbox.index_path.write_bytes(bytes(data))
    again = InboxIndex(inbox.maildir, inbox.sessions_dir, inbox.index_path)
    again.refresh()
    assert subjects(again) == ["kept"]


INDEXER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tuimail.inbox import InboxIndex
    base = Path(sys.argv[1])
    index = InboxIndex(base / "maildir", base / "sessions", base / "inbox.sqlite3")
    index.refresh()
    print(index.count())
    """
)


def test_two_processes_indexing_at_once_make_one_sound_index(
    inbox: InboxIndex, tmp_path: Path
) -> None:
    for number in range(600):  # more than one batch each
        deliver(inbox.maildir, message(f"m{number}", body=f"word{number}"), durable=False)
    runs = [
        subprocess.Popen([sys.executable, "-c", INDEXER, str(tmp_path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        assert out.strip() == "600"
    with sqlite3.connect(inbox.index_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (600,)
        assert db.execute("SELECT count(*) FROM texts").fetchone() == (600,)
    inbox.refresh()
    assert subjects(inbox, "word599") == ["m599"]


CRASHER = INDEXER.replace(
    "index.refresh()",
    textwrap.dedent(
        """
        import os
        from tuimail.inbox import index as module
        insert, inserted = module.InboxIndex._insert, []
        def dying(self, *args):
            insert(self, *args)
            inserted.append(1)
            if len(inserted) == module.BATCH + 10:  # inside the second batch's transaction
                os._exit(9)
        module.InboxIndex._insert = dying
        index.refresh()
        """
    ),
)


def test_a_crash_mid_update_leaves_an_index_that_finishes_the_work(
    inbox: InboxIndex, tmp_path: Path
) -> None:
    for number in range(1200):
        deliver(inbox.maildir, message(f"m{number}"), durable=False)
    run = subprocess.run(
        [sys.executable, "-c", CRASHER, str(tmp_path)], capture_output=True, timeout=120
    )
    assert run.returncode == 9, run.stderr
    with sqlite3.connect(inbox.index_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # The first batch was committed; the second, cut short, left nothing.
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (BATCH,)
        assert db.execute("SELECT count(*) FROM texts").fetchone() == (BATCH,)
    inbox.refresh()
    assert inbox.count() == 1200
    assert len({e.id for e in inbox.page(limit=2000).entries}) == 1200


def test_html_as_text_drops_scripts_and_shows_links() -> None:
    html = (
        "<html><head><style>p{color:red}</style><title>t</title></head><body>"
        "<script>alert(1)</script><p>Hello&nbsp;<b>you</b></p>"
        '<a href="https://example.test/x">click</a><img src="http://track" alt="logo"></body>'
    )
    text = html_to_text(html)
    assert "alert" not in text and "color" not in text
    assert "Hello you" in text
    assert "click <https://example.test/x>" in text
    assert "[image: logo]" in text


def test_attachment_names_are_sanitised_and_nothing_is_overwritten(tmp_path: Path) -> None:
    assert safe_filename("../../etc/passwd", "f") == "passwd"
    assert safe_filename("/abs", "f") == "abs"
    assert safe_filename("\x1b[31mred", "f") == "[31mred"
    assert safe_filename("..\\..\\win.ini", "f") == "win.ini"
    assert safe_filename("..", "part-2") == "part-2"
    assert safe_filename("a\u202egnp.exe", "f") == "agnp.exe"
    first = save_part(tmp_path, "passwd", b"1")
    second = save_part(tmp_path, "passwd", b"2")
    assert (first.name, second.name) == ("passwd", "passwd-2")
    assert first.read_bytes() == b"1"


def test_view_lists_the_mime_tree_and_attachments() -> None:
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["From"] = "a@example.test"
    mail["Subject"] = "parts"
    mail.set_content("plain text")
    mail.add_alternative("<p>html <b>text</b></p>", subtype="html")
    mail.add_attachment(b"\x00\x01", maintype="application", subtype="octet-stream",
                        filename="../../etc/passwd")  # fmt: skip
    shown = view(mail.as_bytes())
    assert shown.text.strip() == "plain text"
    assert shown.html_text == "html text"
    assert shown.parts[0].content_type == "multipart/mixed"
    assert [a.filename for a in shown.attachments] == ["../../etc/passwd"]
