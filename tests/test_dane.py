"""TLSA matching (tuimail/dane.py) against real certificate chains from a test CA (trustme)."""

from __future__ import annotations

import datetime
import ssl

import trustme

from tuimail import dane
from tuimail.dane import TLSARecord, match, record_for


def _chain(leaf: trustme.LeafCert) -> list[bytes]:
    return [ssl.PEM_cert_to_DER_cert(blob.bytes().decode()) for blob in leaf.cert_chain_pems]


def test_dane_ee_matches_the_leaf_key_whatever_its_name_and_dates() -> None:
    ca = trustme.CA()
    now = datetime.datetime.now(datetime.UTC)
    expired = ca.issue_cert(
        "other.example",
        not_before=now - datetime.timedelta(days=9),
        not_after=now - datetime.timedelta(days=1),
    )
    chain = _chain(expired)
    for selector in (dane.CERT, dane.SPKI):
        for mtype in (dane.FULL, dane.SHA256, dane.SHA512):
            record = record_for(chain[0], dane.DANE_EE, selector, mtype)
            verdict = match([record], chain, "mx.example.org")
            assert verdict.matched, verdict.reason
            assert verdict.record == record
            assert "DANE-EE" in verdict.reason


def test_dane_ee_mismatch_says_which_key_was_presented() -> None:
    ca = trustme.CA()
    chain = _chain(ca.issue_cert("mx.example.org"))
    other = _chain(ca.issue_cert("mx.example.org"))
    record = record_for(other[0])
    verdict = match([record], chain, "mx.example.org")
    assert not verdict.matched
    assert verdict.reason.startswith(f"no TLSA record ({record.text()}) matches the 1 certificate")
    assert record_for(chain[0]).data.hex()[:12] in verdict.reason


def test_dane_ta_matches_a_sent_issuer_and_checks_the_name() -> None:
    root = trustme.CA()
    intermediate = root.create_child_ca()
    chain = _chain(intermediate.issue_cert("mx.example.org"))
    assert len(chain) == 2
    record = record_for(chain[1], dane.DANE_TA, dane.CERT, dane.SHA256)
    verdict = match([record], chain, "MX.example.org.")
    assert verdict.matched, verdict.reason
    wrong = match([record], chain, "other.example.org")
    assert not wrong.matched
    assert "but the certificate is for mx.example.org, not other.example.org" in wrong.reason
    # The leaf's own key as a trust anchor is not a DANE-TA match.
    leaf_as_ta = record_for(chain[0], dane.DANE_TA, dane.SPKI, dane.SHA256)
    assert not match([leaf_as_ta], chain, "mx.example.org").matched


def test_dane_ta_refuses_a_chain_that_is_not_signed_by_the_anchor() -> None:
    root = trustme.CA()
    intermediate = root.create_child_ca()
    chain = _chain(intermediate.issue_cert("mx.example.org"))
    stranger = _chain(trustme.CA().create_child_ca().issue_cert("mx.example.org"))
    # A server sending someone else's issuer after its own leaf.
    forged = [chain[0], stranger[1]]
    record = record_for(stranger[1], dane.DANE_TA, dane.CERT, dane.FULL)
    verdict = match([record], forged, "mx.example.org")
    assert not verdict.matched
    assert "is not issued by certificate 2" in verdict.reason or "bad signature" in verdict.reason


def test_pkix_usages_are_unusable() -> None:
    ca = trustme.CA()
    chain = _chain(ca.issue_cert("mx.example.org"))
    for usage in (dane.PKIX_TA, dane.PKIX_EE):
        record = record_for(chain[0], usage, dane.SPKI, dane.SHA256)
        assert not record.usable
        verdict = match([record], chain, "mx.example.org")
        assert not verdict.matched and "no usable TLSA record" in verdict.reason
    assert not TLSARecord(3, 2, 1, b"x").usable
    assert not TLSARecord(3, 1, 3, b"x").usable


def test_lookup_status_decides_whether_records_count() -> None:
    record = TLSARecord(3, 1, 1, bytes(32))
    secure = dane.TLSALookup("_25._tcp.mx", dane.Status.SECURE, (record,))
    insecure = dane.TLSALookup("_25._tcp.mx", dane.Status.INSECURE, (record,))
    assert secure.applies and secure.usable == (record,)
    assert not insecure.applies and insecure.usable == ()
    assert dane.tlsa_name("mx.example.org.") == "_25._tcp.mx.example.org"
    assert record.text() == "3 1 1 000000000000..."
