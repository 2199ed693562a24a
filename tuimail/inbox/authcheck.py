"""What a receiving server would conclude about a captured message: DKIM, SPF, DMARC, spam.

A developer's application signs and sends mail; the sandbox catches it on
loopback, where nothing can be checked for real. This module checks it as a
receiver would, before production does:

* **DKIM**: every ``DKIM-Signature`` is verified with dkimpy; the public key
  is the one in DNS (``selector._domainkey.domain`` TXT) or one the user
  names in a key file (test keys rarely live in DNS). tuimail fetches the
  key itself, through the same resolver as everything else, and hands dkimpy
  the record through its public ``dnsfunc`` argument.
* **SPF** (:mod:`tuimail.inbox.spf`) is evaluated for the envelope sender as
  if the message came from an IP address the user configures: the sandbox's
  client is on 127.0.0.1, so the real one cannot be checked ("simulated
  from IP x" says so wherever the result is shown).
* **DMARC**: the From domain is aligned with each DKIM ``d=`` and with the
  envelope sender's domain, strictly (the same name) and relaxed (the same
  organisational domain); the policy record is looked up at ``_dmarc.`` the
  From domain, then at its organisational domain (RFC 7489 section 6.6.3),
  and read by tuimail/posture/records.py's parser (``tuimail check``'s).
  The organisational domain is the public-suffix-list registrable domain
  (the ``publicsuffixlist`` package, which ships the list and is updated
  with it; a name under a suffix the list does not know, such as ``.test``,
  takes its last label as the suffix).
* **Spam**: optionally, spamd's verdict (:mod:`tuimail.inbox.spamc`).

Results use RFC 8601's words (pass, fail, neutral, none, temperror,
permerror; softfail for SPF) and are written as an ``Authentication-Results``
value. Every DNS question goes through dnspython's async resolver (the
system's, or ``[dns] servers`` / ``--dns-server``), each bounded by the
settings' timeout and each part of the check by a deadline. No Textual here:
the command line calls :func:`check_blocking`, the app the same in a worker.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import ipaddress
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuimail.errors import TuimailError
from tuimail.inbox import spamc
from tuimail.inbox.spf import check_host, sender_domain
from tuimail.posture.records import Dmarc, RecordError, is_dmarc, parse_dmarc

if TYPE_CHECKING:
    import dns.asyncresolver

    from tuimail.user_config import LoadedConfig

#: The ``authserv-id`` of the summary: who did the checking.
AUTHSERV_ID = "tuimail"
#: Seconds for one DNS question (the resolver's lifetime), unless configured.
DEFAULT_DNS_TIMEOUT = 5.0
#: Each part of the check (DKIM, SPF, DMARC, spam) ends within this many DNS timeouts.
PART_DEADLINE = 3
#: At most this many signatures of one message are verified (each may ask DNS).
MAX_SIGNATURES = 8
#: Where config.toml keeps the check's settings: ``[inbox.check]``.
CONFIG_TABLE = ("inbox", "check")
#: A key file this large is not a key.
MAX_KEY_FILE = 64 * 1024


class CheckSettingInvalid(TuimailError):
    """A setting of the check cannot be used: ``setting`` names it, the message says why."""

    def __init__(self, setting: str, why: str) -> None:
        super().__init__(f"{setting}: {why}")
        self.setting = setting
        self.why = why


@dataclass(frozen=True)
class KeyFile:
    """A DKIM public key from a file, for the key record ``name`` (``""``: any signature's)."""

    name: str
    path: Path
    #: The key as DNS would hold it (``v=DKIM1; k=rsa; p=...``).
    record: bytes

    def answers(self, name: str) -> bool:
        return not self.name or self.name == name.rstrip(".").lower()


@dataclass(frozen=True)
class CheckSettings:
    """How to check: the simulated client IP, the resolvers, key files, spamd, the timeout."""

    spf_ip: str = ""
    dns_servers: tuple[str, ...] = ()
    dkim_keys: tuple[KeyFile, ...] = ()
    spamd: tuple[str, int] | None = None
    dns_timeout: float = DEFAULT_DNS_TIMEOUT


# -- settings ------------------------------------------------------------------


def parse_ip(text: str) -> str:
    """An IPv4 or IPv6 address as written back by ``ipaddress``; ValueError in words."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


def key_record(text: str) -> bytes:
    """A DKIM key record from what a key file holds; ValueError in words.

    Accepted: the record itself (``v=DKIM1; k=rsa; p=...``), a zone-file
    line quoting it in pieces (as ``opendkim-genkey`` writes it), or a PEM
    public key, or the PEM private key it belongs to (the public half is
    taken), RSA or Ed25519.
    """
    if "-----BEGIN" in text:
        return _pem_record(text.encode("ascii", "replace"))
    quoted = re.findall(r'"((?:[^"\\]|\\.)*)"', text)
    record = "".join(quoted) if quoted else text
    record = " ".join(record.split())
    if not re.search(r"(^|;)\s*p\s*=", record):
        raise ValueError("it holds no p= tag: not a DKIM key record")
    return record.encode("ascii", "replace")


def _pem_record(data: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    public: Any
    try:
        public = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            public = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError):
            raise ValueError(
                "it is not a PEM public key, nor an unencrypted PEM private key"
            ) from None
    if isinstance(public, rsa.RSAPublicKey):
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)
    raise ValueError("DKIM keys are RSA or Ed25519; this one is neither")


def load_key_file(spec: str) -> KeyFile:
    """``[SELECTOR._domainkey.DOMAIN=]FILE`` read into a :class:`KeyFile` (file I/O).

    Without a name the key answers for every signature. Raises ValueError
    (or OSError) in words.
    """
    from tuimail.small_files import read_small_text

    name, path_text = "", spec
    left, equals, right = spec.partition("=")
    if equals and "._domainkey." in left.lower():
        name, path_text = left.strip().rstrip(".").lower(), right
    if not path_text.strip():
        raise ValueError(f"{spec!r} names no file")
    path = Path(path_text).expanduser()
    try:
        text = read_small_text(path, MAX_KEY_FILE)
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not text") from None
    except OSError as exc:
        raise ValueError(f"{path} cannot be read: {exc.strerror or exc}") from None
    try:
        return KeyFile(name, path, key_record(text))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def settings_from_config(config: LoadedConfig) -> CheckSettings:
    """The check's settings from config.toml: ``[inbox.check]`` and ``[dns] servers``.

    ``[inbox.check]`` holds ``spf_ip`` (the address SPF pretends the
    message came from), ``dkim_keys`` (a list of ``[NAME=]FILE``, as
    ``--dkim-key``), ``spamd`` (``HOST:PORT``) and ``dns_timeout`` (seconds).
    Reads the key files. Raises :class:`CheckSettingInvalid` (or
    :class:`~tuimail.user_config.ConfigError` for ``[dns]``).
    """
    from tuimail.user_config import dns_servers

    servers = tuple(dns_servers(config))
    for server in servers:
        check_dns_server(server, "config.toml [dns] servers")
    table: object = config.tables
    for key in CONFIG_TABLE:
        table = table.get(key, {}) if isinstance(table, Mapping) else None
    where = "config.toml [inbox.check]"
    if not isinstance(table, Mapping):
        raise CheckSettingInvalid(where, "is not a table")
    settings = CheckSettings(dns_servers=servers)
    spf_ip = table.get("spf_ip", "")
    if spf_ip != "":
        if not isinstance(spf_ip, str):
            raise CheckSettingInvalid(f"{where} spf_ip", "is not a string")
        try:
            settings = dataclasses.replace(settings, spf_ip=parse_ip(spf_ip))
        except ValueError as exc:
            raise CheckSettingInvalid(f"{where} spf_ip", str(exc)) from None
    keys = table.get("dkim_keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CheckSettingInvalid(f"{where} dkim_keys", 'is not a list of "[NAME=]FILE"')
    try:
        settings = dataclasses.replace(settings, dkim_keys=tuple(load_key_file(k) for k in keys))
    except ValueError as exc:
        raise CheckSettingInvalid(f"{where} dkim_keys", str(exc)) from None
    spamd = table.get("spamd", "")
    if spamd != "":
        if not isinstance(spamd, str):
            raise CheckSettingInvalid(f"{where} spamd", 'is not a "HOST:PORT" string')
        try:
            settings = dataclasses.replace(settings, spamd=spamc.parse_address(spamd))
        except ValueError as exc:
            raise CheckSettingInvalid(f"{where} spamd", str(exc)) from None
    timeout = table.get("dns_timeout", DEFAULT_DNS_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 60:
        raise CheckSettingInvalid(f"{where} dns_timeout", "is not a number of seconds up to 60")
    return dataclasses.replace(settings, dns_timeout=float(timeout))


def check_dns_server(server: str, setting: str) -> None:
    """``HOST[:PORT]`` as the resolver setup takes it, or :class:`CheckSettingInvalid`."""
    from tuimail.mx import parse_server

    try:
        parse_server(server)
    except ValueError as exc:
        raise CheckSettingInvalid(setting, str(exc)) from None


# -- results -------------------------------------------------------------------


@dataclass(frozen=True)
class Alignment:
    """Whether a domain aligns with the From domain, strictly and relaxed (RFC 7489 3.1)."""

    strict: bool
    relaxed: bool

    def to_json(self) -> dict[str, bool]:
        return {"strict": self.strict, "relaxed": self.relaxed}


@dataclass(frozen=True)
class DkimResult:
    """One signature's verdict: ``result`` in RFC 8601's words, ``reason`` in plain ones."""

    result: str
    reason: str
    domain: str = ""
    selector: str = ""
    algorithm: str = ""
    #: Where the public key came from: "DNS", or the key file's path.
    key_from: str = ""
    alignment: Alignment = Alignment(False, False)

    def to_json(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "reason": self.reason,
            "domain": self.domain,
            "selector": self.selector,
            "algorithm": self.algorithm,
            "key_from": self.key_from,
            "aligned": self.alignment.to_json(),
        }


@dataclass(frozen=True)
class SpfResult:
    """SPF's verdict for the envelope sender, as if sent from ``simulated_ip`` ("": not run)."""

    result: str
    reason: str
    simulated_ip: str = ""
    mail_from: str = ""
    domain: str = ""
    alignment: Alignment = Alignment(False, False)

    def to_json(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "reason": self.reason,
            "simulated_ip": self.simulated_ip or None,
            "mail_from": self.mail_from,
            "domain": self.domain,
            "aligned": self.alignment.to_json(),
        }


@dataclass(frozen=True)
class DmarcResult:
    """DMARC's verdict: the From domain, its policy record, and how each identifier aligned."""

    result: str
    reason: str
    from_domain: str = ""
    organisational_domain: str = ""
    #: The policy that applies (``p=``, or ``sp=`` for a subdomain); "" without a record.
    policy: str = ""
    record_at: str = ""
    adkim: str = "r"
    aspf: str = "r"
    dkim_aligned: bool = False
    spf_aligned: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "reason": self.reason,
            "from_domain": self.from_domain,
            "organisational_domain": self.organisational_domain,
            "policy": self.policy or None,
            "record_at": self.record_at or None,
            "adkim": self.adkim,
            "aspf": self.aspf,
            "dkim_aligned": self.dkim_aligned,
            "spf_aligned": self.spf_aligned,
        }


@dataclass(frozen=True)
class SpamResult:
    """spamd's verdict, or why there is none (``problem``)."""

    where: str
    verdict: spamc.SpamVerdict | None = None
    problem: str = ""

    def to_json(self) -> dict[str, Any]:
        if self.verdict is None:
            return {"spamd": self.where, "error": self.problem}
        return {"spamd": self.where, **self.verdict.to_json()}

    def words(self) -> str:
        verdict = self.verdict
        if verdict is None:
            return f"not scored: {self.problem}"
        rules = f"; rules: {', '.join(verdict.rules)}" if verdict.rules else ""
        return (
            f"{'SPAM' if verdict.spam else 'not spam'}, score {verdict.score:g} "
            f"(threshold {verdict.threshold:g}, spamd at {self.where}){rules}"
        )


@dataclass(frozen=True)
class Checked:
    """The whole check of one message."""

    dkim: tuple[DkimResult, ...]
    spf: SpfResult
    dmarc: DmarcResult
    spam: SpamResult | None = None
    notes: tuple[str, ...] = field(default=())

    def authentication_results(self) -> str:
        """The verdicts as an ``Authentication-Results`` value (RFC 8601), comments in words."""
        parts = [AUTHSERV_ID]
        if not self.dkim:
            parts.append("dkim=none (no signature)")
        for dkim in self.dkim:
            words = f"dkim={dkim.result}"
            if dkim.result != "pass":
                words += f" ({_comment(dkim.reason)})"
            elif dkim.key_from != "DNS":
                words += f" (key from {_comment(dkim.key_from)})"
            if dkim.domain:
                words += f" header.d={dkim.domain}"
            if dkim.selector:
                words += f" header.s={dkim.selector}"
            if dkim.algorithm:
                words += f" header.a={dkim.algorithm}"
            parts.append(words)
        spf = self.spf
        words = f"spf={spf.result}"
        if spf.simulated_ip:
            words += f" (simulated from IP {spf.simulated_ip})"
        else:
            words += f" ({_comment(spf.reason)})"
        if spf.domain:
            words += f" smtp.mailfrom={spf.domain}"
        parts.append(words)
        dmarc = self.dmarc
        words = f"dmarc={dmarc.result}"
        if dmarc.policy:
            words += f" (p={dmarc.policy})"
        elif dmarc.result != "pass":
            words += f" ({_comment(dmarc.reason)})"
        if dmarc.from_domain:
            words += f" header.from={dmarc.from_domain}"
        parts.append(words)
        return "; ".join(parts)

    def lines(self) -> list[str]:
        """The check in words for the app's view: a verdict a line, its details indented."""
        out = []
        if not self.dkim:
            out.append("DKIM none: the message carries no DKIM-Signature")
        for dkim in self.dkim:
            about = f"d={dkim.domain} s={dkim.selector}" if dkim.domain else "a signature"
            key = f", key from {dkim.key_from}" if dkim.key_from else ""
            out.append(f"DKIM {dkim.result}: {about}{key}")
            out.append(f"  {dkim.reason}")
            if dkim.domain:
                out.append(f"  aligned with From: {_aligned(dkim.alignment)}")
        spf = self.spf
        sender = f"MAIL FROM {spf.mail_from or '<>'}"
        if spf.simulated_ip:
            sender += f", simulated from IP {spf.simulated_ip}"
        out.append(f"SPF {spf.result}: {sender}")
        out.append(f"  {spf.reason}")
        if spf.domain:
            out.append(f"  aligned with From: {_aligned(spf.alignment)}")
        dmarc = self.dmarc
        if dmarc.record_at and dmarc.policy:
            where = (
                f"From {dmarc.from_domain}, policy p={dmarc.policy} at {dmarc.record_at} "
                f"(adkim={dmarc.adkim} aspf={dmarc.aspf})"
            )
        elif dmarc.from_domain:
            where = f"From {dmarc.from_domain}"
        else:
            where = "no From domain"
        out.append(f"DMARC {dmarc.result}: {where}")
        out.append(f"  {dmarc.reason}")
        if self.spam is not None:
            verdict = self.spam.verdict
            word = "error" if verdict is None else ("spam" if verdict.spam else "ham")
            out.append(f"Spam {word}: {self.spam.words()}")
        out += list(self.notes)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "authentication_results": self.authentication_results(),
            "dkim": [d.to_json() for d in self.dkim],
            "spf": self.spf.to_json(),
            "dmarc": self.dmarc.to_json(),
        }


def _aligned(alignment: Alignment) -> str:
    return (
        f"strict {'yes' if alignment.strict else 'no'}, "
        f"relaxed {'yes' if alignment.relaxed else 'no'}"
    )


def _comment(text: str) -> str:
    """Text safe inside an RFC 8601 comment: no parentheses or backslashes, one line."""
    return " ".join(text.replace("(", "[").replace(")", "]").replace("\\", "/").split())


# -- domains -------------------------------------------------------------------


@functools.cache
def _public_suffixes() -> Any:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def organisational_domain(domain: str) -> str:
    """The registrable domain of ``domain`` by the public suffix list (itself, if it is a suffix)."""
    name = domain.rstrip(".").lower()
    found = _public_suffixes().privatesuffix(name)
    return str(found) if found else name


def alignment(domain: str, from_domain: str) -> Alignment:
    """``domain`` against the From domain: the same name (strict), the same organisation (relaxed)."""
    a, b = domain.rstrip(".").lower(), from_domain.rstrip(".").lower()
    if not a or not b:
        return Alignment(False, False)
    return Alignment(a == b, organisational_domain(a) == organisational_domain(b))


def from_domain(headers: Any) -> tuple[str, str]:
    """The From header's one domain, or ``("", why not)`` (RFC 7489 section 6.6.1)."""
    values = headers.get_all("From") or []
    if not values:
        return "", "the message has no From header"
    if len(values) > 1:
        return "", f"the message has {len(values)} From headers"
    addresses = [address for _name, address in getaddresses([str(v) for v in values]) if address]
    if len(addresses) != 1:
        return "", f"From names {len(addresses)} addresses, DMARC needs exactly one"
    domain = addresses[0].rpartition("@")[2].strip().rstrip(".").lower()
    if not domain or "@" not in addresses[0]:
        return "", f"the From address {addresses[0]!r} has no domain"
    return domain, ""


# -- the check -----------------------------------------------------------------


class _Collected(logging.Handler):
    """dkimpy's words about a key it refused (it logs them and returns False)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.errors.append(record.getMessage())


#: The largest RSA key a signature is checked with, and the widest public exponent, as
#: OpenSSL bounds them (OPENSSL_RSA_MAX_MODULUS_BITS, OPENSSL_RSA_MAX_PUBEXP_BITS).
MAX_RSA_MODULUS_BITS = 16384
MAX_RSA_EXPONENT_BITS = 64


def _costly_key(record: bytes) -> str:
    """Why the key ``record`` is refused before use ("" when it is not).

    dkimpy checks an RSA signature in pure Python: a record whose modulus and
    exponent are each tens of thousands of bits (40 kB fit in a TXT record or
    a key file) takes minutes of CPU in a thread nothing can stop.
    """
    import dkim

    try:
        pk, _size, _ktag, _tlsrpt = dkim.load_pk_from_dns(b"", lambda _name, timeout=5: record)
    except Exception:  # dkimpy says what is wrong with it when it verifies
        return ""
    if not isinstance(pk, dict):  # Ed25519: fixed size
        return ""
    modulus, exponent = pk.get("modulus"), pk.get("publicExponent")
    if not isinstance(modulus, int) or not isinstance(exponent, int):
        return ""
    if modulus.bit_length() > MAX_RSA_MODULUS_BITS:
        return f"its RSA modulus is too large ({modulus.bit_length()} bits; at most {MAX_RSA_MODULUS_BITS})"
    if exponent.bit_length() > MAX_RSA_EXPONENT_BITS:
        return f"its RSA public exponent is too large ({exponent.bit_length()} bits; at most {MAX_RSA_EXPONENT_BITS})"
    return ""


def _verify_one(raw: bytes, index: int, record: bytes) -> tuple[str, str]:
    """dkimpy's verdict on signature ``index`` with the key ``record`` (CPU work: in a thread)."""
    import dkim

    costly = _costly_key(record)
    if costly:
        return "permerror", f"the key cannot be used: {costly}"
    collected = _Collected()
    # A logger of its own for this one call, outside logging's registry (nothing kept).
    logger = logging.Logger("tuimail.dkim")
    logger.addHandler(collected)
    try:
        verifier = dkim.DKIM(raw, logger=logger, minkey=1024)
        good = verifier.verify(index, dnsfunc=lambda _name, timeout=5: record)
    except dkim.ValidationError as exc:
        text = str(exc)
        if "body hash mismatch" in text:
            return "fail", "the body hash does not match: the body was changed after signing"
        if "expired" in text:
            return "fail", f"the signature has expired ({text})"
        return "neutral", f"the signature is malformed: {text}"
    except dkim.KeyFormatError as exc:
        return "permerror", f"the key cannot be used: {exc}"
    except dkim.NaClNotFoundError:
        return "permerror", "Ed25519 keys need the PyNaCl package, which is not installed"
    except dkim.DKIMException as exc:
        return "neutral", f"the signature cannot be checked: {exc}"
    except Exception as exc:  # dkimpy on hostile input: a verdict, never a crash
        return "neutral", f"the signature cannot be checked: {type(exc).__name__}: {exc}"
    if good:
        return "pass", "the signature verifies"
    if collected.errors:
        return "permerror", f"the key cannot be used: {collected.errors[-1]}"
    return "fail", "the signature does not verify: a signed header was changed, or another key"


async def _txt(resolver: dns.asyncresolver.Resolver, name: str) -> list[bytes] | str:
    """The TXT records at ``name`` (each one's strings joined); a str says a DNS problem."""
    import dns.exception
    import dns.resolver

    try:
        answer = await resolver.resolve(name if name.endswith(".") else name + ".", "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.Timeout:
        return f"no DNS answer in time for {name} TXT"
    except dns.exception.DNSException as exc:
        return f"the TXT lookup of {name} failed: {exc}"
    return [b"".join(rdata.strings) for rdata in answer]


async def _dkim(
    raw: bytes,
    settings: CheckSettings,
    resolver: dns.asyncresolver.Resolver,
    from_dom: str,
    results: list[DkimResult] | None = None,
) -> tuple[DkimResult, ...]:
    """A verdict per DKIM-Signature (the first :data:`MAX_SIGNATURES`), each appended to
    ``results`` as it is reached, so a deadline that ends the part keeps those found."""
    import dkim
    from dkim.util import InvalidTagValueList, parse_tag_value

    try:
        headers = dkim.DKIM(raw).headers
    except Exception as exc:  # a message dkimpy cannot take apart
        return (DkimResult("neutral", f"the message cannot be read for DKIM: {exc}"),)
    signatures = [value for name, value in headers if name.lower() == b"dkim-signature"]
    results = [] if results is None else results
    for index, value in enumerate(signatures[:MAX_SIGNATURES]):
        try:
            tags = parse_tag_value(value)
        except InvalidTagValueList as exc:
            results.append(DkimResult("neutral", f"the signature is malformed: {exc}"))
            continue
        domain = tags.get(b"d", b"").decode("ascii", "replace").strip().lower()
        selector = tags.get(b"s", b"").decode("ascii", "replace").strip().lower()
        algorithm = tags.get(b"a", b"").decode("ascii", "replace").strip().lower()
        about = {
            "domain": domain,
            "selector": selector,
            "algorithm": algorithm,
            "alignment": alignment(domain, from_dom),
        }
        if not domain or not selector:
            results.append(DkimResult("neutral", "the signature lacks d= or s=", **about))
            continue
        name = f"{selector}._domainkey.{domain}"
        key_file = next((k for k in settings.dkim_keys if k.answers(name)), None)
        if key_file is not None:
            record, key_from = key_file.record, str(key_file.path)
        else:
            key_from = "DNS"
            found = await _txt(resolver, name)
            if isinstance(found, str):
                results.append(DkimResult("temperror", found, key_from=key_from, **about))
                continue
            if not found:
                words = f"no key at {name}"
                results.append(DkimResult("permerror", words, key_from=key_from, **about))
                continue
            record = found[0]
        result, reason = await asyncio.to_thread(_verify_one, raw, index, record)
        results.append(DkimResult(result, reason, key_from=key_from, **about))
    return tuple(results)


async def _spf(
    settings: CheckSettings,
    resolver: dns.asyncresolver.Resolver,
    mail_from: str,
    from_dom: str,
) -> SpfResult:
    _sender, domain = sender_domain(mail_from, "")
    domain = domain.rstrip(".").lower()
    aligned = alignment(domain, from_dom)
    if not settings.spf_ip:
        return SpfResult(
            "none",
            "not evaluated: the message came over loopback, and no IP address to "
            "simulate it from is set ([inbox.check] spf_ip)",
            mail_from=mail_from,
            domain=domain,
            alignment=aligned,
        )
    outcome = await check_host(resolver, settings.spf_ip, mail_from)
    return SpfResult(
        str(outcome.result),
        outcome.reason,
        simulated_ip=settings.spf_ip,
        mail_from=mail_from,
        domain=domain,
        alignment=aligned,
    )


@dataclass(frozen=True)
class _Policy:
    """A DMARC record found (``record``), or the lookup's temporary (``problem``) or
    permanent (``broken``) error, at the name ``at``."""

    at: str
    record: Dmarc | None = None
    problem: str = ""
    broken: str = ""


async def _dmarc_record(resolver: dns.asyncresolver.Resolver, domain: str) -> _Policy | None:
    """The DMARC record for ``domain`` (RFC 7489 section 6.6.3); None when there is none."""
    names = [domain]
    organisation = organisational_domain(domain)
    if organisation != domain:
        names.append(organisation)
    for name in names:
        at = f"_dmarc.{name}"
        found = await _txt(resolver, at)
        if isinstance(found, str):
            return _Policy(at, problem=found)
        texts = [text.decode("utf-8", "replace") for text in found]
        records = [text for text in texts if is_dmarc(text)]
        if len(records) > 1:
            return None  # several records: DMARC is not applied (RFC 7489 6.6.3, step 5)
        if records:
            try:
                return _Policy(at, parse_dmarc(records[0]))
            except RecordError as exc:
                return _Policy(at, broken=f"the DMARC record at {at} is broken: {exc}")
    return None


def _dmarc(
    from_dom: str,
    problem: str,
    policy: _Policy | None,
    dkim: tuple[DkimResult, ...],
    spf: SpfResult,
) -> DmarcResult:
    if problem:
        return DmarcResult("permerror", problem)
    organisation = organisational_domain(from_dom)
    base = DmarcResult("", "", from_domain=from_dom, organisational_domain=organisation)
    if policy is not None and (policy.problem or policy.broken):
        return dataclasses.replace(
            base,
            result="temperror" if policy.problem else "permerror",
            reason=policy.problem or policy.broken,
            record_at=policy.at,
        )
    record = policy.record if policy is not None else None
    tags: dict[str, str] = record.tags if record is not None else {}
    adkim = "s" if tags.get("adkim", "r").lower() == "s" else "r"
    aspf = "s" if tags.get("aspf", "r").lower() == "s" else "r"

    def aligned(a: Alignment, mode: str) -> bool:
        return a.strict if mode == "s" else a.relaxed

    dkim_aligned = any(d.result == "pass" and aligned(d.alignment, adkim) for d in dkim)
    spf_aligned = spf.result == "pass" and aligned(spf.alignment, aspf)
    how = []
    if dkim_aligned:
        how.append("DKIM passed for an aligned d=")
    if spf_aligned:
        how.append("SPF passed for an aligned MAIL FROM")
    if not how:
        passing = [d.domain for d in dkim if d.result == "pass"]
        if passing:
            how.append(f"DKIM passed only for d={', '.join(passing)}, not aligned with {from_dom}")
        else:
            how.append("no DKIM signature passed")
        if spf.result == "pass":
            how.append(f"SPF passed for {spf.domain}, not aligned with {from_dom}")
        elif spf.simulated_ip:
            how.append(f"SPF did not pass ({spf.result})")
        else:
            how.append("SPF was not evaluated")
    found = dataclasses.replace(
        base, adkim=adkim, aspf=aspf, dkim_aligned=dkim_aligned, spf_aligned=spf_aligned
    )
    if policy is None or record is None:
        reason = (
            f"{from_dom} (organisation {organisation}) publishes no DMARC record; "
            f"with relaxed alignment: {'; '.join(how)}"
        )
        return dataclasses.replace(found, result="none", reason=reason)
    subdomain = policy.at != f"_dmarc.{from_dom}"
    chosen = record.subdomain_policy if subdomain else record.policy
    passed = dkim_aligned or spf_aligned
    result = "pass" if passed else "fail"
    if not passed and (any(d.result == "temperror" for d in dkim) or spf.result == "temperror"):
        result = "temperror"
    outcome = "" if passed else f"; a receiver applies p={chosen}"
    reason = f"{'; '.join(how)}{outcome}"
    return dataclasses.replace(
        found, result=result, reason=reason, policy=chosen, record_at=policy.at
    )


async def _bounded(seconds: float, part: Any, what: str) -> Any:
    """``part`` awaited within ``seconds``; a str saying so when it takes longer."""
    try:
        async with asyncio.timeout(seconds):
            return await part
    except TimeoutError:
        return f"{what} took longer than {seconds:g} s"


async def check(raw: bytes, envelope_from: str | None, settings: CheckSettings) -> Checked:
    """Check the message as a receiver would (DKIM, SPF, DMARC, and spamd when configured).

    ``envelope_from`` is the MAIL FROM the sandbox recorded (``""`` for the
    null sender), or None when no session file tells it: the Return-Path
    header stands in then. Never raises for what DNS or the message says.
    """
    import dns.exception

    from tuimail.mx import make_resolver

    resolver: Any
    try:
        resolver = make_resolver(settings.dns_servers, settings.dns_timeout)
    except (dns.exception.DNSException, OSError, ValueError) as exc:
        # No resolver (no /etc/resolv.conf, say): every lookup is a temporary error.
        resolver = _NoResolver(f"no DNS resolver can be used: {exc}")
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
        from_dom, problem = from_domain(headers)
    except Exception as exc:  # the email package on hostile input
        headers, from_dom, problem = None, "", f"the headers cannot be read: {exc}"
    notes: list[str] = []
    mail_from = envelope_from
    if mail_from is None:
        named = headers.get_all("Return-Path") if headers is not None else None
        return_path = [a for _n, a in getaddresses([str(v) for v in named or []]) if a]
        mail_from = return_path[0] if return_path else ""
        notes.append(
            "No session file tells the envelope sender: SPF used the Return-Path header"
            if return_path
            else "No session file tells the envelope sender: SPF had none to check"
        )
    deadline = settings.dns_timeout * PART_DEADLINE
    dkim_found: list[DkimResult] = []

    async def spam() -> SpamResult | None:
        if settings.spamd is None:
            return None
        host, port = settings.spamd
        where = f"{host}:{port}"
        try:
            verdict = await spamc.symbols(raw, host, port, timeout=spamc.DEFAULT_TIMEOUT)
        except spamc.SpamdError as exc:
            return SpamResult(where, problem=str(exc))
        return SpamResult(where, verdict)

    dkim_done, spf_done, policy, spam_done = await asyncio.gather(
        _bounded(deadline, _dkim(raw, settings, resolver, from_dom, dkim_found), "DKIM"),
        _bounded(deadline, _spf(settings, resolver, mail_from, from_dom), "SPF"),
        _bounded(deadline, _dmarc_record(resolver, from_dom), "the DMARC lookup")
        if from_dom
        else _none(),
        spam(),
    )
    if isinstance(dkim_done, str):  # the signatures checked in time keep their verdicts
        dkim_done = (*dkim_found, DkimResult("temperror", f"{dkim_done}; the rest not checked"))
    if isinstance(spf_done, str):
        spf_done = SpfResult(
            "temperror", spf_done, simulated_ip=settings.spf_ip, mail_from=mail_from
        )
    if isinstance(policy, str):
        policy = _Policy(f"_dmarc.{from_dom}", problem=policy)
    dmarc = _dmarc(from_dom, problem, policy, dkim_done, spf_done)
    return Checked(dkim_done, spf_done, dmarc, spam_done, tuple(notes))


class _NoResolver:
    """Stands in for the resolver when none can be set up: each question fails in words."""

    def __init__(self, why: str) -> None:
        self.why = why

    async def resolve(self, *_args: object, **_kwargs: object) -> Any:
        import dns.exception

        raise dns.exception.DNSException(self.why)  # type: ignore[no-untyped-call]


async def _none() -> None:
    return None


def check_blocking(raw: bytes, envelope_from: str | None, settings: CheckSettings) -> Checked:
    """:func:`check` on its own event loop: for the command line, or a worker thread."""
    return asyncio.run(check(raw, envelope_from, settings))


def envelope_sender(envelope_from: str, envelope_to: Sequence[str], session_id: str) -> str | None:
    """The recorded MAIL FROM, or None when the index knows no session of the message."""
    return envelope_from if (session_id or envelope_to or envelope_from) else None


__all__ = [
    "CheckSettingInvalid",
    "CheckSettings",
    "Checked",
    "KeyFile",
    "check",
    "check_blocking",
    "load_key_file",
    "settings_from_config",
]
