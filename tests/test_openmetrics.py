"""``--openmetrics``: what tuimail writes, read back by prometheus_client's OpenMetrics parser.

The parser is a real one nobody here wrote: it refuses a missing ``# EOF``, a
family without its ``# TYPE``, a unit that the name does not end with, and a
label value escaped wrongly.
"""

from __future__ import annotations

import socket
from typing import Any

from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests.cli_helpers import run_tuimail
from tests.conftest import Certs
from tests.smtpservers import ServerThread, Sink
from tuimail.openmetrics import escape_label, probe_text
from tuimail.probe import ProbeTarget, probe
from tuimail.profiles import Security


def families(text: str) -> dict[str, Any]:
    """The families the parser read, by name (the parser raises on anything malformed)."""
    parsed = text_string_to_metric_families(text)  # type: ignore[no-untyped-call]
    return {family.name: family for family in parsed}


def test_probe_openmetrics_is_read_by_prometheus(servers: ServerThread, certs: Certs) -> None:
    port = servers.smtp(Sink(), tls_context=certs.good)
    done = run_tuimail(
        "probe", f"127.0.0.1:{port}", "--ca-file", str(certs.ca_file), "--no-history",
        "--openmetrics",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.endswith("# EOF\n")
    found = families(done.stdout)
    labels = {"target": f"127.0.0.1:{port}", "host": "127.0.0.1", "port": str(port)}
    (up,) = found["tuimail_probe_up"].samples
    assert (up.labels, up.value) == (labels, 1)
    (status,) = found["tuimail_probe_status"].samples
    assert status.value == 0
    stages = {s.labels["stage"]: s.value for s in found["tuimail_probe_stage_seconds"].samples}
    assert set(stages) >= {"connect", "banner", "ehlo", "tls", "quit"}
    assert all(0 <= seconds < 5 for seconds in stages.values())
    assert found["tuimail_probe_stage_seconds"].unit == "seconds"
    (expiry,) = found["tuimail_probe_certificate_expiry_timestamp_seconds"].samples
    assert expiry.value > 4_000_000_000  # trustme's certificates last for ever
    (tls,) = found["tuimail_probe_tls_info"].samples
    assert found["tuimail_probe_tls_info"].type == "gauge"
    assert tls.labels["version"] == "TLSv1.3" and tls.value == 1
    # Every family says what it is.
    assert all(family.documentation for family in found.values())


def test_a_server_down_is_up_0() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    done = run_tuimail("probe", f"127.0.0.1:{port}", "--no-history", "--openmetrics")
    assert done.returncode == 2
    found = families(done.stdout)
    assert found["tuimail_probe_up"].samples[0].value == 0
    assert found["tuimail_probe_status"].samples[0].value == 2
    assert found["tuimail_probe_tls_info"].samples == []


async def test_label_values_are_escaped() -> None:
    name = 'a "quoted" \\ name\nwith a newline'
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    report = await probe(
        ProbeTarget(host="127.0.0.1", port=port, security=Security.NONE, timeout=2, name=name)
    )
    text = probe_text([report])
    assert escape_label(name) in text
    found = families(text)
    assert found["tuimail_probe_up"].samples[0].labels["target"] == name
