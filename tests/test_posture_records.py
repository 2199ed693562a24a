"""The record parsers of ``tuimail check`` (tuimail/posture/records.py), the TLSA matching
and the change detection of the monitor's posture, on their own."""

from __future__ import annotations

import base64
import hashlib

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tuimail.posture.records import (
    RecordError,
    parse_dkim,
    parse_dmarc,
    parse_spf,
    parse_tlsrpt,
)
from tuimail.posture.state import changes
from tuimail.posture.tlsa import Tlsa, chain_matches


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 -all",
        "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx/24 a:mail.example.org//64 a/24//64 ~all",
        "v=spf1 include:_spf.example.org redirect=example.net",
        "v=spf1 exists:%{i}.%{h}._spf.example.org exp=explain.example.org -all",
        "V=SPF1 MX -ALL",
    ],
)
def test_valid_spf(record: str) -> None:
    parse_spf(record)


@pytest.mark.parametrize(
    ("record", "words"),
    [
        ("v=spf1 foo -all", "not an SPF mechanism"),
        ("v=spf1 ip4:300.1.1.1 -all", "not a valid ip4 network"),
        ("v=spf1 ip4:2001:db8::1 -all", "the address is not IPv4"),
        ("v=spf1 include: -all", "empty domain"),
        ("v=spf1 include -all", "needs a domain"),
        ("v=spf1 all:example.org", "all takes no argument"),
        ("v=spf1 redirect=a.example redirect=b.example", "appears twice"),
        ("v=spf1 exists:%{z}.example.org", "malformed macro"),
        ("v=spf1 a/33", "invalid prefix length"),
        ("v=spf1 a//129", "invalid prefix length"),
        ("v=spf1 a/24/64", "not an SPF mechanism"),
    ],
)
def test_invalid_spf(record: str, words: str) -> None:
    with pytest.raises(RecordError, match=words):
        parse_spf(record)


def test_dmarc() -> None:
    found = parse_dmarc("v=DMARC1; p=quarantine; rua=mailto:a@example.org,mailto:b@example.org")
    assert (found.policy, found.subdomain_policy, found.percent) == (
        "quarantine",
        "quarantine",
        100,
    )
    assert found.rua == ("mailto:a@example.org", "mailto:b@example.org")
    for bad, words in [
        ("v=DMARC1; sp=none", "no p= tag"),
        ("v=DMARC1; p=block", "not none, quarantine or reject"),
        ("v=DMARC1; p=none; pct=101", "pct=101"),
        ("v=DMARC1; p=none; rua=dmarc@example.org", "not a mailto"),
        ("v=DMARC1; p=none; p=reject", "appears twice"),
    ]:
        with pytest.raises(RecordError, match=words):
            parse_dmarc(bad)


def test_tlsrpt() -> None:
    assert parse_tlsrpt("v=TLSRPTv1; rua=mailto:r@example.org,https://r.example.org/") == (
        "mailto:r@example.org",
        "https://r.example.org/",
    )
    with pytest.raises(RecordError, match="no rua"):
        parse_tlsrpt("v=TLSRPTv1;")
    with pytest.raises(RecordError, match="not a mailto: or https:"):
        parse_tlsrpt("v=TLSRPTv1; rua=ftp://r.example.org/")


def test_dkim_key_types() -> None:
    raw = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    key = parse_dkim(f"v=DKIM1; k=ed25519; t=y; p={base64.b64encode(raw).decode()}")
    assert (key.key_type, key.bits, key.testing) == ("ed25519", 256, True)
    assert parse_dkim("v=DKIM1; p=").bits == 0
    with pytest.raises(RecordError, match="not base64"):
        parse_dkim("p=***")
    with pytest.raises(RecordError, match="no p="):
        parse_dkim("v=DKIM1; k=rsa")
    with pytest.raises(RecordError, match="come first"):
        parse_dkim("k=rsa; v=DKIM1; p=")


def test_tlsa_matching() -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("mx.example.org")
    chain = tuple(
        x509.load_pem_x509_certificate(pem.bytes()).public_bytes(Encoding.DER)
        for pem in leaf.cert_chain_pems
    )
    spki = (
        x509.load_der_x509_certificate(chain[0])
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    ee = Tlsa(3, 1, 1, hashlib.sha256(spki).digest())
    full = Tlsa(3, 0, 2, hashlib.sha512(chain[0]).digest())
    pkix = Tlsa(1, 1, 1, hashlib.sha256(spki).digest())  # PKIX-EE: not used for SMTP
    other = Tlsa(3, 1, 1, b"\0" * 32)
    assert chain_matches([ee, other], chain) == [ee]
    assert chain_matches([full], chain) == [full]
    assert chain_matches([pkix, other], chain) == []
    anchor = x509.load_pem_x509_certificate(ca.cert_pem.bytes()).public_bytes(Encoding.DER)
    ta = Tlsa(2, 0, 1, hashlib.sha256(anchor).digest())
    assert chain_matches([ta], chain) == []  # the anchor was not sent
    assert chain_matches([ta], (*chain, anchor)) == [ta]
    assert Tlsa.from_text(ee.to_text()) == ee


def test_changes_between_fingerprints() -> None:
    before = {
        "mta_sts_id": "1",
        "tlsa": {"mx.example.org": ["3 1 1 aa"]},
        "certificates": {"mx.example.org [192.0.2.1]": "aa", "mx2 [192.0.2.2]": "bb"},
    }
    assert changes(None, before) == []
    assert changes(before, before) == []
    after = {
        "mta_sts_id": "2",
        "tlsa": {"mx.example.org": ["3 1 1 bb"]},
        # mx2 did not answer this time: a missing certificate is not a change
        "certificates": {"mx.example.org [192.0.2.1]": "cc"},
    }
    found = changes(before, after)
    assert [(c.what, c.where, c.before, c.after) for c in found] == [
        ("mta-sts id", "the policy", "1", "2"),
        ("tlsa", "mx.example.org", "3 1 1 aa", "3 1 1 bb"),
        ("certificate", "mx.example.org [192.0.2.1]", "aa", "cc"),
    ]
