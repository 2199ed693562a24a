"""The transcript says when a DKIM signature's domain is not the From address's.

A profile signing with ``dkim_domain = "dkim.test"`` while its From is
``alice@example.test`` makes a signature receivers verify and then do not
count: DMARC wants d= in the From domain's organisation. Nothing said so;
the signature line now does, and a subdomain of the same organisation
(relaxed alignment, RFC 7489 section 3.1.1) passes without a word.
"""

from __future__ import annotations

import pytest

from tests import test_dkim_signing
from tests.cli_helpers import run_tuimail, send_args
from tests.smtpservers import ServerThread, Sink
from tests.test_dkim_signing import DOMAIN, Key

keys = test_dkim_signing.keys


@pytest.mark.parametrize(
    ("sender", "aligned"),
    [
        (f"alice@{DOMAIN}", True),
        (f"alice@mail.{DOMAIN}", True),
        ("alice@example.test", False),
    ],
)
def test_the_signature_line_says_whether_d_is_the_from_domain(
    servers: ServerThread, keys: dict[str, Key], sender: str, aligned: bool
) -> None:
    sink = Sink()
    port = servers.smtp(sink)
    args = send_args(port, "--body", "Hi\n")
    args[args.index("Alice <alice@example.test>")] = f"Alice <{sender}>"
    key = keys["rsa"]
    result = run_tuimail(
        *args,
        "--dkim-domain", DOMAIN, "--dkim-selector", key.selector, "--dkim-key", str(key.path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (line,) = [x for x in result.stdout.splitlines() if "=== DKIM signature" in x]
    warning = (
        f"d={DOMAIN} is not the From domain {sender.split('@')[1]} nor of its organisation: "
        "receivers checking DMARC will not count this signature"
    )
    assert (warning in line) is not aligned, line
    as_json = run_tuimail(
        *args, "--json",
        "--dkim-domain", DOMAIN, "--dkim-selector", key.selector, "--dkim-key", str(key.path),
    )  # fmt: skip
    assert as_json.returncode == 0, as_json.stderr
    assert f'"aligned": {str(aligned).lower()}' in as_json.stdout
