"""What a message's protection says, for every view: signed by whom, encrypted to whom, DKIM.

One answer for the sandbox inbox (F5), the sent history (F7) and
``tuimail inbox show``: :func:`describe` reads the message's bytes and asks

* the user's gpg for an OpenPGP/MIME signature (:func:`tuimail.pgp_mime.verify`:
  valid, invalid, or by a key not in the keyring) and for whom an encrypted
  message is encrypted to (key ids from the message, named by the keyring);
* ``openssl cms -verify`` for an S/MIME signature
  (:func:`tuimail.smime.read_smime`);
* DKIM from the inbox's own check (:mod:`tuimail.inbox.authcheck`) when the
  caller has one, else only which domains signed it, said to be unchecked.

Decrypting is asked for (``decrypt=True``), never automatic; the clear text
stays in the returned report, in memory, never written anywhere. gpg and
openssl run with timeouts; :func:`describe` blocks, so call it in a worker.
Every word in a report is escaped when a face shows it
(:func:`tuimail.ui.outside.shown`, ``terminal_json``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from tuimail import pgp_mime, smime

if TYPE_CHECKING:
    from cryptography import x509

    from tuimail.inbox.authcheck import DkimResult
    from tuimail.profiles import Profile

#: Seconds gpg may take for one step when a view asks (less than sending's: a person waits).
VIEW_TIMEOUT = 20.0
#: Most DKIM-Signature fields read for their domain (a hostile message may carry thousands).
MOST_DKIM_FIELDS = 8


@dataclass(frozen=True)
class PgpView:
    """A message's OpenPGP/MIME: its signature's verdict, the keys it is encrypted to."""

    signature: pgp_mime.PgpVerification | None = None
    encrypted: bool = False
    #: (key id, the keyring's name for it or "") for each key the message is encrypted to.
    encrypted_to: tuple[tuple[str, str], ...] = ()
    decrypted: bool = False
    decrypt_problem: str = ""
    #: Not decrypted because the secret key is locked: its passphrase may be asked for.
    key_locked: bool = False
    #: ... and the passphrase given did not unlock it.
    passphrase_wrong: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "signature": self.signature.to_json() if self.signature else None,
            "encrypted": self.encrypted,
            "encrypted_to": [{"key": k, "name": n} for k, n in self.encrypted_to],
            "decrypted": self.decrypted,
            "decrypt_problem": self.decrypt_problem,
        }


@dataclass(frozen=True)
class ProtectionReport:
    """Signed by whom, encrypted to whom and DKIM, for one message."""

    pgp: PgpView | None = None
    smime: smime.SmimeReading | None = None
    #: The inbox's DKIM verdicts; None when the message was not checked.
    dkim: tuple[DkimResult, ...] | None = None
    #: Domains named by DKIM-Signature fields (read, not verified), when ``dkim`` is None.
    dkim_domains: tuple[str, ...] = ()
    #: The decrypted MIME entity, when decrypting was asked for and worked (display only).
    cleartext: bytes | None = None
    #: Why a valid signature does not vouch for the From address ("" when it does, or
    #: when there is no valid signature): anyone can sign validly as themselves.
    signer_vs_from: str = ""
    #: Whom an S/MIME message is encrypted to, one entry per RecipientInfo, in words.
    smime_encrypted_to: tuple[str, ...] = ()
    #: (field, signed value, outer value) for each of From, To, Cc, Subject that a
    #: signed-only message carries inside its signed part (protected headers, RFC 9788)
    #: with a value other than the one outside.
    header_changes: tuple[tuple[str, str, str], ...] = ()

    def signed_value(self, name: str) -> str | None:
        """The signed value of field ``name`` when it differs from the outer one, else None."""
        return next((signed for n, signed, _ in self.header_changes if n == name), None)

    @property
    def signed(self) -> bool:
        return bool(
            (self.pgp and self.pgp.signature)
            or (self.smime and self.smime.verification)
            or (self.smime and self.smime.summary and self.smime.summary.kind.value == "signed")
        )

    @property
    def encrypted(self) -> bool:
        return bool((self.pgp and self.pgp.encrypted) or self._smime_encrypted)

    @property
    def _smime_encrypted(self) -> bool:
        summary = self.smime.summary if self.smime else None
        return summary is not None and summary.kind is smime.SmimeKind.ENCRYPTED

    def lines(self) -> list[str]:
        """The report in words, a line per finding (none: not signed, not encrypted)."""
        out: list[str] = []
        pgp = self.pgp
        if pgp is not None:
            if pgp.encrypted:
                names = [f"{n} ({k})" if n else f"key {k}" for k, n in pgp.encrypted_to]
                out.append(f"OpenPGP encrypted to {', '.join(names) or 'an unnamed key'}")
                if pgp.decrypted:
                    out.append("  decrypted for display with your key (not saved)")
                elif pgp.decrypt_problem:
                    out.append(f"  not decrypted: {pgp.decrypt_problem}")
            if pgp.signature is not None:
                but = f", but {self.signer_vs_from}" if self.signer_vs_from else ""
                out.append(pgp.signature.words() + but)
        reading = self.smime
        if reading is not None and reading.summary is not None:
            if reading.summary.kind is smime.SmimeKind.ENCRYPTED:
                words = reading.summary.words()
                if self.smime_encrypted_to:
                    count, rest = words.split(" (", 1) if " (" in words else (words, "")
                    named = "; ".join(self.smime_encrypted_to)
                    words = f"{count}: {named}" + (f" ({rest}" if rest else "")
                out.append(words)
                if reading.decrypted is not None:
                    out.append("  decrypted for display with your S/MIME key (not saved)")
                elif reading.decrypt_problem:
                    out.append(f"  not decrypted: {reading.decrypt_problem}")
            if reading.verification is not None:
                but = f"; {self.signer_vs_from}" if self.signer_vs_from else ""
                out.append(reading.verification.words() + but)
        out += [
            f'Signed {name}: "{signed}"; the unsigned {name} outside, "{outer}", differs '
            "(changed in transit or by the sender)"
            for name, signed, outer in self.header_changes
        ]
        out += self.dkim_lines()
        return out

    def dkim_lines(self) -> list[str]:
        if self.dkim is not None:
            if not self.dkim:
                return ["DKIM none: no DKIM-Signature"]
            return [
                f"DKIM {d.result}" + (f" for {d.domain}" if d.domain else "") for d in self.dkim
            ]
        if self.dkim_domains:
            return [f"DKIM-signed by {', '.join(self.dkim_domains)} (not checked here)"]
        return []

    def line(self) -> str:
        """One line for a list or a header block: "" when there is nothing to say."""
        return "; ".join(line.strip() for line in self.lines() if not line.startswith("  "))

    def to_json(self) -> dict[str, object]:
        reading = self.smime
        smime_json: dict[str, object] | None = None
        if reading is not None and reading.summary is not None:
            smime_json = {
                **reading.summary.to_json(),
                "verification": reading.verification.to_json() if reading.verification else None,
                "decrypted": reading.decrypted is not None,
                "decrypt_problem": reading.decrypt_problem,
                "encrypted_to": list(self.smime_encrypted_to),
            }
        return {
            "signed": self.signed,
            "encrypted": self.encrypted,
            "pgp": self.pgp.to_json() if self.pgp else None,
            "smime": smime_json,
            "dkim": [d.to_json() for d in self.dkim] if self.dkim is not None else None,
            "dkim_signed_by": list(self.dkim_domains),
            "signer_vs_from": self.signer_vs_from,
            "signed_headers_differ": [
                {"field": n, "signed": signed, "outside": outer}
                for n, signed, outer in self.header_changes
            ],
            "summary": self.lines(),
        }


_DKIM_DOMAIN = re.compile(rb"(?:^|;)\s*d\s*=\s*([A-Za-z0-9.\-_]+)")


def dkim_domains(message_bytes: bytes) -> tuple[str, ...]:
    """The d= domains of the message's DKIM-Signature fields (read, not verified)."""
    head_end = message_bytes.find(b"\r\n\r\n")
    if head_end < 0:
        head_end = message_bytes.find(b"\n\n")
    head = message_bytes[: head_end if head_end >= 0 else len(message_bytes)]
    fields = re.findall(rb"^DKIM-Signature:(.*(?:\r?\n[ \t].*)*)", head, re.I | re.M)
    found: list[str] = []
    for value in fields[:MOST_DKIM_FIELDS]:
        match = _DKIM_DOMAIN.search(re.sub(rb"\s+", b"", value))
        if match:
            domain = match.group(1).decode("ascii").lower()[:253]
            if domain not in found:
                found.append(domain)
    return tuple(found)


def _pgp(
    message_bytes: bytes, decrypt: bool, timeout: float, passphrase: str | None = None
) -> tuple[PgpView | None, bytes | None]:
    summary = pgp_mime.summary(message_bytes)
    if summary is None:
        return None, None
    if not summary.encrypted:
        return PgpView(signature=pgp_mime.verify(message_bytes, timeout)), None
    names = pgp_mime.key_names(summary.encrypted_to, timeout)
    to = tuple((k, names.get(k, "")) for k in summary.encrypted_to)
    if not decrypt:
        return PgpView(encrypted=True, encrypted_to=to), None
    try:
        inner, embedded = pgp_mime.decrypted(message_bytes, timeout, passphrase)
    except pgp_mime.DecryptKeyLocked as exc:
        view = PgpView(encrypted=True, encrypted_to=to, decrypt_problem=str(exc))
        return replace(view, key_locked=True, passphrase_wrong=exc.wrong), None
    except pgp_mime.PgpError as exc:
        return PgpView(encrypted=True, encrypted_to=to, decrypt_problem=str(exc)), None
    # Signed then encrypted (RFC 3156 section 6.1), or both at once (section 6.2).
    signature = pgp_mime.verify(inner, timeout) or embedded
    return PgpView(signature, True, to, decrypted=True), inner


def describe(
    message_bytes: bytes,
    *,
    dkim: Sequence[DkimResult] | None = None,
    decrypt: bool = False,
    smime_signer: smime.Signer | None = None,
    smime_ca: Path | None = None,
    timeout: float = VIEW_TIMEOUT,
    pgp_passphrase: str | None = None,
    smime_known: tuple[Sequence[x509.Certificate], Sequence[x509.Certificate]] | None = None,
) -> ProtectionReport:
    """Everything the views say about a message's signatures, encryption and DKIM.

    ``dkim``: the inbox check's verdicts (:attr:`tuimail.inbox.authcheck.Checked.dkim`),
    when the caller ran it. ``decrypt``: open an encrypted message with the
    user's gpg keyring or ``smime_signer`` (the profile's S/MIME key).
    ``pgp_passphrase``: what the user typed for a locked OpenPGP key (given to gpg
    on its stdin, kept nowhere); without it, a locked key sets
    :attr:`PgpView.key_locked`. ``smime_known``: (the user's own certificates,
    the recipients' ones) to name whom an S/MIME message is encrypted to; None
    reads them from every profile (``smime_cert``, ``smime_recipient_certs``). Blocks.
    """
    pgp, cleartext = _pgp(message_bytes, decrypt, timeout, pgp_passphrase)
    reading = None
    if pgp is None and smime.smime_summary(message_bytes) is not None:
        reading = smime.read_smime(
            message_bytes,
            ca_file=smime_ca,
            signer=smime_signer if decrypt else None,
        )
        if not decrypt and reading.decrypt_problem:  # not asked: no reason to give yet
            reading = smime.SmimeReading(reading.summary, verification=reading.verification)
        cleartext = reading.decrypted
    return ProtectionReport(
        pgp=pgp,
        smime=reading,
        dkim=tuple(dkim) if dkim is not None else None,
        dkim_domains=dkim_domains(message_bytes) if dkim is None else (),
        cleartext=cleartext,
        signer_vs_from=_signer_vs_from(message_bytes, pgp, reading, timeout),
        smime_encrypted_to=_smime_encrypted_to(message_bytes, reading, smime_signer, smime_known),
        header_changes=header_changes(message_bytes),
    )


#: The fields compared between a signed part and the message outside it.
COMPARED_FIELDS = ("From", "To", "Cc", "Subject")
#: The most bytes of the signed part's header block read (the rest is not compared).
MOST_SIGNED_HEAD = 64 * 1024


def header_changes(message_bytes: bytes) -> tuple[tuple[str, str, str], ...]:
    """Protected headers (RFC 9788) of a ``multipart/signed`` message that differ outside.

    A sender that signs with protected headers copies From, To, Cc and Subject
    into the signed part; what is outside is covered by nothing, so a relay or
    the sender's own software may change it after signing. Only fields the
    signed part carries are compared; values are decoded (RFC 2047), their
    white space folded, escaped and cut before they are returned. Reads only
    the two header blocks, each bounded.
    """
    from email.parser import BytesHeaderParser
    from email.policy import compat32

    from tuimail.part_headers import part_header_problem
    from tuimail.terminal_text import escape_controls

    wire = message_bytes if b"\r\n" in message_bytes else message_bytes.replace(b"\n", b"\r\n")
    head_end = wire.find(b"\r\n\r\n")
    if head_end < 0 or head_end > MOST_SIGNED_HEAD:
        return ()
    parser = BytesHeaderParser(policy=compat32)
    outer = parser.parsebytes(wire[: head_end + 4])
    if outer.get_content_type() != "multipart/signed" or part_header_problem(outer)[0]:
        return ()
    boundary = outer.get_boundary()
    if not boundary:
        return ()
    marker = b"\r\n--" + boundary.encode("ascii", "replace") + b"\r\n"
    start = (b"\r\n" + wire[head_end + 4 :]).find(marker)
    if start < 0:
        return ()
    body = wire[head_end + 4 + start - 2 + len(marker) :]
    inner_end = body.find(b"\r\n\r\n", 0, MOST_SIGNED_HEAD)
    if inner_end < 0:
        return ()
    inner = parser.parsebytes(body[: inner_end + 4])
    if part_header_problem(inner)[0]:
        return ()

    def value(message: object, name: str) -> str | None:
        from email.header import decode_header, make_header

        raw = message.get_all(name)  # type: ignore[attr-defined]
        if not raw:
            return None
        try:
            text = ", ".join(str(make_header(decode_header(str(v)))) for v in raw)
        except (ValueError, LookupError, UnicodeError):
            text = ", ".join(str(v) for v in raw)
        return " ".join(text.split())

    changes: list[tuple[str, str, str]] = []
    for name in COMPARED_FIELDS:
        signed = value(inner, name)
        if signed is None:
            continue
        outside = value(outer, name) or ""
        if signed != outside and not _same_addresses(name, signed, outside):
            changes.append(
                (name, escape_controls(signed)[:300], escape_controls(outside)[:300] or "(none)")
            )
    return tuple(changes)


def _same_addresses(name: str, one: str, other: str) -> bool:
    """Two address fields naming the same people, however quoted or spaced."""
    if name == "Subject":
        return False
    from email.utils import getaddresses

    def people(value: str) -> list[tuple[str, str]]:
        return [(n.strip(), a.lower()) for n, a in getaddresses([value])]

    return people(one) == people(other)


def _smime_encrypted_to(
    message_bytes: bytes,
    reading: smime.SmimeReading | None,
    signer: smime.Signer | None,
    known: tuple[Sequence[x509.Certificate], Sequence[x509.Certificate]] | None,
) -> tuple[str, ...]:
    """Each RecipientInfo of an S/MIME encrypted message named (tuimail/smime.py)."""
    summary = reading.summary if reading is not None else None
    if summary is None or summary.kind is not smime.SmimeKind.ENCRYPTED:
        return ()
    ids = smime.enveloped_recipients_of(message_bytes)
    if not ids:
        return ()
    if known is None:
        from tuimail.profiles import ProfileError, ProfileStore, ProfileStoreError

        try:
            known = smime.known_certificates(ProfileStore().load().values())
        except (ProfileError, ProfileStoreError, OSError):
            known = ([], [])
    own = [signer.cert] if signer is not None else []
    return smime.recipient_names(ids, [*own, *known[0]], known[1])


def from_addresses(message_bytes: bytes) -> list[str]:
    """The addresses of the message's own From field, lower case (the outer one: what a
    view shows as the author, also of a message decrypted for display). Read from the
    bytes as UTF-8: an SMTPUTF8 message's From is (the email package's compat32 reading
    turns it into replacement characters)."""
    from email.utils import getaddresses

    head_end = message_bytes.find(b"\r\n\r\n")
    head = message_bytes[:head_end] if head_end >= 0 else message_bytes
    fields = re.findall(rb"^From[ \t]*:(.*(?:\r?\n[ \t].*)*)", head, re.I | re.M)
    values = [re.sub(rb"\r?\n", b"", f).decode("utf-8", "replace") for f in fields[:4]]
    found = [a.lower() for _, a in getaddresses(values) if a]
    return list(dict.fromkeys(found))[:8]


def _signer_vs_from(
    message_bytes: bytes,
    pgp: PgpView | None,
    reading: smime.SmimeReading | None,
    timeout: float,
) -> str:
    """The words added to a valid signature's line when its signer is not (or not
    provably) every From address: a signature made by anyone's own key is valid, so
    "valid" alone would lend the stranger's signature to the name in From."""
    from tuimail.terminal_text import escape_controls

    def shown(address: str) -> str:  # the message's own words: escaped and cut
        return escape_controls(address)[:200]

    authors = from_addresses(message_bytes)
    signature = pgp.signature if pgp is not None else None
    if signature is not None and signature.verdict is pgp_mime.SignatureVerdict.VALID:
        if not authors:
            return "the message has no From address to match"
        for address in authors:
            status = pgp_mime.user_id_status(signature.key, address, timeout)
            if status is pgp_mime.KeyStatus.TRUSTED:
                continue
            if status is pgp_mime.KeyStatus.UNTRUSTED:
                return (
                    f"the key's user id for the From address {shown(address)} is not "
                    "certified by anyone you trust"
                )
            if status is pgp_mime.KeyStatus.MISSING:
                return f"that key does not name the From address {shown(address)}"
            return f"that key's user id for the From address {shown(address)} is {status.value}"
        return ""
    verification = reading.verification if reading is not None else None
    if verification is not None and verification.verdict in (
        smime.Verdict.VALID,
        smime.Verdict.UNTRUSTED,
    ):
        if not authors:
            return "the message has no From address to match"
        held = {e.lower() for e in verification.signer_emails}
        missing = [a for a in authors if a not in held]
        if missing:
            return f"the certificate does not name the From address {shown(missing[0])}"
    return ""


def with_outer_headers(message_bytes: bytes, cleartext: bytes) -> bytes:
    """The decrypted entity under the message's own From, To, Subject (not its Content-*),
    so a view shows who wrote it over what was inside. In memory, for display.

    A field the message has outside is not taken from inside too: the sender
    chose what is inside, and an inner "From: someone else" would otherwise be
    shown next to the real one. The one exception is the Subject hidden as
    "..." (protected headers, tuimail/pgp_mime.py): the inner Subject is the real one.
    """
    head_end = message_bytes.find(b"\r\n\r\n")
    head = message_bytes[:head_end] if head_end >= 0 else b""
    fields = re.split(rb"\r\n(?![ \t])", head) if head else []
    kept = [f for f in fields if not f.lower().startswith((b"content-", b"mime-version:")) and f]
    inner = cleartext if b"\r\n" in cleartext else cleartext.replace(b"\n", b"\r\n")
    inner_end = inner.find(b"\r\n\r\n")
    if inner_end >= 0:
        hidden = f"subject: {pgp_mime.HIDDEN_SUBJECT}".encode()
        if any(f.lower().strip() == hidden for f in kept):
            kept = [f for f in kept if not f.lower().startswith(b"subject:")]
        outside = {f.split(b":", 1)[0].strip().lower() for f in kept}
        inner_fields = re.split(rb"\r\n(?![ \t])", inner[:inner_end])
        chosen = [f for f in inner_fields if f.split(b":", 1)[0].strip().lower() not in outside]
        inner = b"\r\n".join(chosen) + inner[inner_end:]
    return b"\r\n".join(kept) + (b"\r\n" if kept else b"") + inner


def planned(profile: Profile, recipients: Sequence[str]) -> list[str]:
    """What sending with ``profile`` (this message's toggles applied) will do, in the same
    words the views use for what arrived: for Compose's preview, before anything is made.
    Pure: no gpg, no files (the recipients' keys are Compose's own line)."""
    to = ", ".join(recipients) or "(no recipients yet)"
    out: list[str] = []
    if profile.pgp_sign:
        out.append(f"OpenPGP signed by {profile.pgp_key or 'the key of the From address'}")
    if profile.pgp_encrypt:
        out.append(f"OpenPGP encrypted to {to} (and to you)")
    elif profile.pgp_encrypt_opportunistic:
        out.append(
            f"OpenPGP encrypted to {to} (and to you) if each has a usable key in your "
            "keyring and there is no Bcc; else sent unencrypted"
        )
    if profile.pgp_protected_headers and (profile.pgp_encrypt or profile.pgp_encrypt_opportunistic):
        out.append(
            f'Subject shown outside as "{pgp_mime.HIDDEN_SUBJECT}" when encrypted '
            "(protected headers: the real one is inside)"
        )
    if profile.smime_sign:
        out.append(f"S/MIME signed with {Path(profile.smime_cert).name or 'your certificate'}")
    if profile.smime_encrypt:
        out.append(f"S/MIME encrypted to {to}")
    if profile.dkim_domain:
        out.append(f"DKIM-signed by {profile.dkim_domain} (selector {profile.dkim_selector})")
    return out or ["not signed, not encrypted"]
