"""Exit codes of ``tuimail send``, ``tuimail accounts test`` and ``tuimail accounts login``.

Scripts branch on these, so they are stable and documented here once: the
``--help`` text and docs/commands.md are generated from / checked against this table.
"""

from __future__ import annotations

from tuimail.stages import Stage

OK = 0
USAGE = 2  # argparse's own code for bad arguments
INVALID_MESSAGE = 3
CONFIG = 4
STORE_FAILED = 5
#: ``send --edit``: the user chose to keep the message as a draft; nothing was sent.
EDIT_SAVED = 6
#: ``send --edit``: the user cancelled; nothing was sent or kept.
EDIT_CANCELLED = 7
PARTIAL = 18
#: The profile's OAuth sign-in is missing or no longer works (send, probe, test, outbox).
SIGN_IN_NEEDED = 20
#: ``accounts login``: the user (or the provider) did not allow the sign-in.
SIGN_IN_DENIED = 21
#: ``accounts login``: nobody finished the sign-in in time.
SIGN_IN_TIMED_OUT = 22
#: ``accounts login``: the browser came back with a state tuimail did not send.
SIGN_IN_WRONG_STATE = 23
#: ``accounts login``: the provider could not be reached, or refused or garbled its answer.
SIGN_IN_FAILED = 24
QUEUED = 75  # EX_TEMPFAIL, as sendmail and msmtpq use it
#: Any command whose reader closed its output early (``| head``): 128 + SIGPIPE,
#: as a program killed by the signal would give. ``send`` finishes its session
#: and gives its own code instead.
CLOSED_PIPE = 141

# tuimail/stages.py imports nothing, so this table for --help does not
# import the SMTP session and aiosmtplib.
STAGE_CODES: dict[Stage, int] = {
    Stage.CONNECT: 10,
    Stage.TLS: 11,
    Stage.GREETING: 12,
    Stage.EHLO: 13,
    Stage.AUTH: 14,
    Stage.MAIL: 15,
    Stage.RCPT: 16,
    Stage.DATA: 17,
    # A client's data stage ends with the reply to the final dot.
    Stage.DOT: 17,
}

TABLE: list[tuple[int, str]] = [
    (OK, "sent: the server accepted the message for every recipient"),
    (USAGE, "bad command-line arguments"),
    (INVALID_MESSAGE, "the message is invalid (bad address, header, attachment); nothing was sent"),
    (CONFIG, "profile, settings (config.toml), keyring or password problem; nothing was sent"),
    (
        STORE_FAILED,
        "the outbox could not store the message (data dir read-only or full); nothing was sent",
    ),
    (EDIT_SAVED, "send --edit: saved as a draft, as asked; nothing was sent"),
    (EDIT_CANCELLED, "send --edit: cancelled; nothing was sent or kept"),
    (10, "connect failed (DNS, refused, timeout)"),
    (11, "TLS failed (STARTTLS missing or refused, certificate, handshake)"),
    (12, "the server's greeting was not 220 (e.g. 421 busy, 554)"),
    (13, "EHLO/HELO refused"),
    (14, "authentication failed or refused by policy"),
    (15, "MAIL FROM refused, or the message is too large or needs SMTPUTF8 or 8BITMIME"),
    (16, "every recipient was refused"),
    (17, "DATA refused, or the connection was lost before the final reply"),
    (PARTIAL, "sent, but some recipients were refused (listed in the output)"),
    (
        SIGN_IN_NEEDED,
        "the profile's OAuth sign-in is missing or no longer works: run "
        "'tuimail accounts login NAME' (a queued message stays queued)",
    ),
    (SIGN_IN_DENIED, "accounts login: the sign-in was not allowed at the provider"),
    (SIGN_IN_TIMED_OUT, "accounts login: the sign-in was not finished in time"),
    (
        SIGN_IN_WRONG_STATE,
        "accounts login: the answer did not belong to this sign-in (wrong state): refused",
    ),
    (
        SIGN_IN_FAILED,
        "accounts login: the provider could not be reached, or refused the request",
    ),
    (QUEUED, "not delivered now (temporary failure): queued in the outbox for retry"),
]


def for_stage(stage: Stage) -> int:
    """The exit code of a failure at ``stage``."""
    return STAGE_CODES[stage]


NOTE = (
    "Codes 10-17 name the stage that failed. Through the outbox (the default) they are "
    "given for permanent failures only, and every temporary one gives 75; with --no-queue, "
    "every failure gives its stage's code."
)


def help_text() -> str:
    rows = "\n".join(f"  {code:>3}  {text}" for code, text in TABLE)
    return f"exit codes:\n{rows}\n\n{NOTE}"


#: The codes ``tuimail accounts login`` gives.
LOGIN_CODES = (
    OK,
    USAGE,
    CONFIG,
    SIGN_IN_DENIED,
    SIGN_IN_TIMED_OUT,
    SIGN_IN_WRONG_STATE,
    SIGN_IN_FAILED,
)


#: The codes ``tuimail accounts test`` gives: it sends no mail, so no MAIL to DATA stage.
TEST_CODES = (OK, USAGE, CONFIG, 10, 11, 12, 13, 14, SIGN_IN_NEEDED)


def test_help_text() -> str:
    """The exit codes of ``tuimail accounts test``: 0 once connect, TLS and AUTH went well."""
    words = dict(TABLE)
    words[OK] = "connected, TLS and AUTH (if any) went well; no mail was sent"
    words[CONFIG] = "profile, settings (config.toml), keyring or password problem"
    words[SIGN_IN_NEEDED] = (
        "the profile's OAuth sign-in is missing or no longer works: "
        "run 'tuimail accounts login NAME'"
    )
    rows = "\n".join(f"  {code:>3}  {words[code]}" for code in TEST_CODES)
    return f"exit codes:\n{rows}"


def login_help_text() -> str:
    """The exit codes of ``tuimail accounts login``: 0 once the refresh token is stored."""
    words = dict(TABLE)
    words[OK] = "signed in: the refresh token is in the keyring"
    rows = "\n".join(f"  {code:>3}  {words[code]}" for code in LOGIN_CODES)
    return f"exit codes:\n{rows}"
