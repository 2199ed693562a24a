"""The client tap: the client's raw bytes as the server saw them, as transcript lines."""

from __future__ import annotations

from tuimail.line_framer import MAX_LINE, LineFramer, cut_note
from tuimail.sandbox.record import SessionRecord
from tuimail.smtp_data import find_data_end
from tuimail.terminal_text import decode_for_terminal
from tuimail.transcript import ConversationRedactor, Direction, EventKind

#: Client bytes held while the tap waits for the server's answer to DATA or
#: STARTTLS; a client that sends more without waiting is recorded as it comes.
MAX_HELD = 4 * MAX_LINE


class ClientTap:
    """Turns the client's raw bytes into transcript lines, summarising message data.

    Message content is counted without being split into Python lines, so a
    10 MB attachment costs the transcript almost nothing.

    The tap sees the client's bytes as they arrive, before the server has
    read them, so what a line *is* can depend on an answer not given yet:
    after ``DATA`` the next bytes are message content only if the server says
    ``354``, and after ``STARTTLS`` they are discarded unread if it says
    ``220`` (RFC 3207 4.2; aiosmtpd clears its buffer at the handshake). So
    after either command the tap holds the bytes that follow until the
    server's answer is known (:meth:`server_reply`), or, after a ``220`` to
    STARTTLS, until TLS is established (:meth:`tls_started`).
    """

    def __init__(self, record: SessionRecord, redactor: ConversationRedactor) -> None:
        self.record = record
        self.redactor = redactor
        self.secure = False
        self._lines = LineFramer(self._line_cut)
        #: The bytes not recorded yet (the framer's buffer).
        self._pending = self._lines.buffer
        #: The command whose answer decides what the held bytes are, or "".
        self._held_by = ""
        #: STARTTLS was answered 220: what comes before TLS is discarded plaintext.
        self._before_tls = False
        #: Message data has just begun: a final dot may open it, with no CRLF before.
        self._data_start = False
        self._greeted = False

    def feed(self, data: bytes) -> None:
        self._lines.feed(data)
        self._drain()

    def _drain(self) -> None:
        while self._pending:
            if self._held_by or self._before_tls:
                if len(self._pending) <= MAX_HELD:
                    return
                # A client that floods instead of waiting for the answer: its
                # bytes are recorded now, so the tap's memory stays bounded.
                if self._before_tls:
                    self._discard_plaintext()
                    return
                self._held_by = ""
            if self.redactor.in_data:
                if not self._consume_data():
                    return
                continue
            raw = self._lines.next_line()
            if raw is None:
                return
            self._line(raw)
            command = raw.strip().upper()
            if command == b"DATA" or (command == b"STARTTLS" and not self.secure):
                self._held_by = command.decode()

    def _line_cut(self, dropped: int) -> None:
        self.record.transcript.event(EventKind.INFO, cut_note(dropped))

    def server_reply(self, line: str) -> None:
        """The server said ``line`` (already seen by the redactor); release held bytes."""
        if line[3:4] == "-":
            return
        if not self._greeted:
            self._greeted = True
            return
        code = line[:3]
        if self._held_by == "DATA" and (code == "354" or code[:1] in ("4", "5")):
            self._held_by = ""
            self._data_start = code == "354"
        elif self._held_by == "STARTTLS" and code[:1] in ("2", "4", "5"):
            self._held_by = ""
            self._before_tls = code == "220"
        else:
            return
        self._drain()

    def tls_started(self) -> None:
        """TLS is up: whatever the client sent before it was plaintext, discarded unread."""
        if self._pending and (self._before_tls or self._held_by == "STARTTLS"):
            self._discard_plaintext()
        self._before_tls = False
        self._held_by = ""
        self.secure = True

    def _discard_plaintext(self) -> None:
        """Record the bytes sent between the 220 to STARTTLS and TLS, as the plaintext they were."""
        held = len(self._pending)
        # Framed as any line is (an over-long one cut, with its note), up to
        # the last one, whose end never comes: the next bytes are TLS.
        while (raw := self._lines.next_line()) is not None:
            if raw:
                self._line(raw)
        last = self._lines.flush()
        if last is not None:
            self._line(last)
        self.record.transcript.event(
            EventKind.WARNING,
            f"{held:,} bytes of plaintext sent after the 220 to STARTTLS, before the "
            "TLS handshake, were discarded unread (RFC 3207 4.2)",
        )

    def _consume_data(self) -> bool:
        """Count message data up to the final dot; False when more bytes are needed."""
        pending = self._pending
        data, end = find_data_end(pending, at_start=self._data_start)
        if data or end is not None:
            self._data_start = False
        self.redactor.data_bytes += data
        self.redactor.data_lines += pending.count(b"\n", 0, data)
        if end is None:
            del pending[:data]
            return False
        del pending[:end]
        self._line(b".")
        return True

    def _line(self, raw: bytes) -> None:
        text = decode_for_terminal(_as_aiosmtpd_splits(raw))
        # Known passwords are masked in the whole line, before the transcript
        # cuts a long one: a cut through a password would show its start.
        text = self.record.transcript.scrub(text)[0]
        result = self.redactor.client_line(text)
        if result is not None:
            shown, redacted = result
            self.record.transcript.add(
                Direction.CLIENT, shown, secure=self.secure, redacted=redacted
            )


def _as_aiosmtpd_splits(raw: bytes) -> bytes:
    """An AUTH line with its words joined by single spaces, as aiosmtpd splits them.

    aiosmtpd splits AUTH's argument with ``str.split()``, at any whitespace
    (CR, tab, form feed, the \\x1c-\\x1f separators): ``AUTH PLAIN<CR>blob``
    authenticates with ``blob``. The redactor splits at spaces, and the line
    it sees has its control characters escaped, so it would show the blob.
    Any line whose first word is AUTH is rewritten (masking a malformed one
    too is the safe side); other lines are left exactly as sent.
    """
    text = raw.decode("utf-8", "surrogateescape")
    words = text.split(None, 2)
    if not words or words[0].upper() != "AUTH" or text == " ".join(words):
        return raw
    return " ".join(words).encode("utf-8", "surrogateescape")
