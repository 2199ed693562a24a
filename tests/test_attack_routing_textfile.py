"""``--openmetrics`` read by Prometheus' own textfile collector: Debian's node_exporter.

The output is meant for the textfile collector (docs/commands.md). That
collector reads the Prometheus text format, whose parser refuses a family
type it does not know (``info``) and with it the whole file: nothing of
tuimail's reaches Prometheus. A real node_exporter, on a loopback port,
reads what ``tuimail probe`` wrote, and its own metrics say whether it could.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

from tests.cli_helpers import run_tuimail
from tests.conftest import Certs, require_tool
from tests.dns_support import free_port
from tests.smtpservers import ServerThread, Sink


def scrape(textfiles: Path) -> str:
    """node_exporter's /metrics, with only its textfile collector, reading ``textfiles``."""
    exporter = require_tool("prometheus-node-exporter", "prometheus-node-exporter")
    port = free_port()
    process = subprocess.Popen(
        [
            exporter, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
            "--collector.textfile", f"--collector.textfile.directory={textfiles}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        ends = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as got:
                    return str(got.read().decode())
            except OSError:
                assert time.monotonic() < ends, "node_exporter did not answer"
                time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(10)


def test_probe_openmetrics_is_read_by_the_textfile_collector(
    servers: ServerThread, certs: Certs, tmp_path: Path
) -> None:
    port = servers.smtp(Sink(), tls_context=certs.good)
    done = run_tuimail(
        "probe", f"127.0.0.1:{port}", "--ca-file", str(certs.ca_file), "--no-history",
        "--openmetrics",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    (textfiles / "tuimail.prom").write_text(done.stdout)
    metrics = scrape(textfiles)
    assert "node_textfile_scrape_error 0" in metrics, metrics[-2000:]
    assert f'tuimail_probe_up{{host="127.0.0.1",port="{port}",target="127.0.0.1:{port}"}} 1' in (
        metrics
    )
    assert 'tuimail_probe_tls_info{cipher="' in metrics
    assert 'version="TLSv1.3"} 1' in metrics
