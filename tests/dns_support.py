"""A real DNS for tests: Debian's unbound, validating, in front of an authoritative nsd.

Zones are written as zone files (:meth:`DnsServer.add_zone`) and served by
``nsd`` on a loopback port; a zone added with ``signed=True`` is signed with
``ldns-signzone`` and its DS becomes unbound's trust anchor, so its answers
carry the AD bit only because unbound really validated them. ``bogus=True``
changes a record after signing, so unbound answers SERVFAIL. A zone added
with ``local=True`` is unbound's own ``local-data`` instead: its answers never
carry AD. Clients ask unbound at :attr:`DnsServer.address`:`DnsServer.port`.

Each server runs in its own tmp dir on free ports and is stopped by
:meth:`DnsServer.stop` (the fixture does it). Under CI=true a missing binary
fails the test; elsewhere the test is skipped with the reason
(:func:`tests.conftest.require`).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode

#: Seconds each daemon gets to answer its first query.
START_TIMEOUT = 10.0

#: The test zones' ``$TTL``.
TTL = 300

#: Names unbound answers itself by default (RFC 6761 and the loopback reverse
#: zone); a test zone under one of them must switch that default off.
_UNBOUND_DEFAULT_ZONES = ("test.", "invalid.", "localhost.", "127.in-addr.arpa.", "onion.")

#: The Debian packages of each binary, for the skip or failure message.
PACKAGES = {
    "unbound": "unbound",
    "nsd": "nsd",
    "ldns-keygen": "ldnsutils",
    "ldns-signzone": "ldnsutils",
}


class DnsServerError(RuntimeError):
    """The test DNS could not be started; carries the daemon's log."""


def missing_tools() -> list[str]:
    """The binaries (with their Debian packages) that are not installed."""
    found = {name: _which(name) for name in PACKAGES}
    return [f"{name} (Debian package {PACKAGES[name]})" for name, path in found.items() if not path]


def _which(name: str) -> str | None:
    # Debian installs the daemons in /usr/sbin, which a user's PATH may lack.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (DNS needs both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise DnsServerError("no port free for both UDP and TCP on 127.0.0.1")


@dataclass
class Zone:
    """One test zone: its origin and its records in zone-file syntax."""

    name: str
    records: list[str]
    signed: bool = False
    bogus: str | None = None
    local: bool = False
    #: The DS records of the signed zone's key-signing key (unbound's trust anchor).
    trust_anchor: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The zone file: SOA, NS and glue for the fixture's nsd, then the records."""
        origin = self.name
        lines = [
            f"$ORIGIN {origin}",
            f"$TTL {TTL}",
            f"@ IN SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 {TTL}",
            f"@ IN NS ns.{origin}",
            "ns IN A 127.0.0.1",
            *self.records,
        ]
        return "\n".join(lines) + "\n"


def _absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


class DnsServer:
    """unbound (validating) on a loopback port, with nsd behind it for the zones.

    Build the zones with :meth:`add_zone`, then :meth:`start`; ask unbound at
    :attr:`address` and :attr:`port`. :attr:`start_seconds` says what starting
    cost (key generation and signing included).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.address = "127.0.0.1"
        self.port = 0
        self.nsd_port = 0
        self.zones: list[Zone] = []
        self.start_seconds = 0.0
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def server(self) -> str:
        """``HOST:PORT`` as ``--dns-server`` takes it."""
        return f"{self.address}:{self.port}"

    def add_zone(
        self,
        name: str,
        records: list[str],
        *,
        signed: bool = False,
        bogus: str | None = None,
        local: bool = False,
    ) -> Zone:
        """Add a zone; ``records`` are zone-file lines relative to ``name`` (``"@ MX 10 mx1"``).

        ``signed`` signs it (DNSSEC, validated by unbound); ``bogus`` names a
        record line whose data is changed after signing (its answers become
        SERVFAIL); ``local`` serves it from unbound's own ``local-data``.
        """
        if self._processes:
            raise DnsServerError("add zones before start()")
        if local and signed:
            raise DnsServerError("unbound's local-data cannot be signed")
        zone = Zone(_absolute(name), list(records), signed=signed, bogus=bogus, local=local)
        self.zones.append(zone)
        return zone

    def start(self) -> None:
        started = time.monotonic()
        tools = {name: _which(name) or name for name in PACKAGES}
        zones_dir = self.directory / "zones"
        zones_dir.mkdir(parents=True, exist_ok=True)
        for zone in self.zones:
            if not zone.local:
                self._write_zone(zone, zones_dir, tools)
        self.nsd_port = free_port()
        self.port = free_port()
        served = [zone for zone in self.zones if not zone.local]
        if served:
            nsd_conf = self.directory / "nsd.conf"
            nsd_conf.write_text(self._nsd_conf(served, zones_dir))
            self._spawn([tools["nsd"], "-d", "-c", str(nsd_conf)], "nsd")
            self._wait_until_answering(self.nsd_port, served[0].name, "nsd")
        unbound_conf = self.directory / "unbound.conf"
        unbound_conf.write_text(self._unbound_conf())
        self._spawn([tools["unbound"], "-d", "-c", str(unbound_conf)], "unbound")
        probe = self.zones[0].name if self.zones else "."
        self._wait_until_answering(self.port, probe, "unbound")
        self.start_seconds = time.monotonic() - started

    def stop(self) -> None:
        for process in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self._processes.clear()

    def query(self, name: str, rdtype: str, *, dnssec: bool = True) -> dns.message.Message:
        """Ask unbound directly (with the DO bit by default), as a test's own check."""
        request = dns.message.make_query(name, rdtype, want_dnssec=dnssec)
        request.flags |= dns.flags.AD
        return dns.query.udp(request, self.address, port=self.port, timeout=5)

    def _write_zone(self, zone: Zone, zones_dir: Path, tools: dict[str, str]) -> None:
        path = zones_dir / f"{zone.name}zone"
        path.write_text(zone.text())
        if not zone.signed:
            return
        keys = self.directory / "keys"
        keys.mkdir(exist_ok=True)
        ksk = self._run([tools["ldns-keygen"], "-a", "ECDSAP256SHA256", "-k", zone.name], keys)
        zsk = self._run([tools["ldns-keygen"], "-a", "ECDSAP256SHA256", zone.name], keys)
        self._run([tools["ldns-signzone"], "-f", str(path), str(path), ksk, zsk], keys)
        zone.trust_anchor = (keys / f"{ksk}.ds").read_text().strip().splitlines()
        if zone.bogus is not None:
            _falsify(path, zone)

    def _run(self, argv: list[str], cwd: Path) -> str:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=30, check=False)
        if done.returncode != 0:
            raise DnsServerError(f"{argv[0]} failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode().strip()

    def _nsd_conf(self, zones: list[Zone], zones_dir: Path) -> str:
        d = self.directory
        lines = [
            "server:",
            "  ip-address: 127.0.0.1",
            f"  port: {self.nsd_port}",
            '  username: ""',
            '  chroot: ""',
            f'  zonesdir: "{zones_dir}"',
            f'  pidfile: "{d / "nsd.pid"}"',
            f'  xfrdfile: "{d / "xfrd.state"}"',
            f'  zonelistfile: "{d / "zone.list"}"',
            f'  xfrdir: "{d}"',
            f'  logfile: "{d / "nsd.log"}"',
            '  database: ""',
            "  server-count: 1",
            "  verbosity: 1",
            "remote-control:",
            "  control-enable: no",
        ]
        for zone in zones:
            lines += ["zone:", f'  name: "{zone.name}"', f'  zonefile: "{zone.name}zone"']
        return "\n".join(lines) + "\n"

    def _unbound_conf(self) -> str:
        d = self.directory
        lines = [
            "server:",
            "  interface: 127.0.0.1",
            f"  port: {self.port}",
            "  do-ip6: no",
            '  username: ""',
            '  chroot: ""',
            f'  directory: "{d}"',
            f'  pidfile: "{d / "unbound.pid"}"',
            f'  logfile: "{d / "unbound.log"}"',
            "  use-syslog: no",
            "  do-daemonize: no",
            "  num-threads: 1",
            "  access-control: 127.0.0.0/8 allow",
            "  do-not-query-localhost: no",
            '  module-config: "validator iterator"',
            "  val-log-level: 2",
            "  verbosity: 1",
            # No network beyond loopback: never ask the real root servers.
            "  harden-referral-path: no",
            "  minimal-responses: no",
            "  qname-minimisation: no",
        ]
        for default in _UNBOUND_DEFAULT_ZONES:
            lines.append(f'  local-zone: "{default}" nodefault')
        for zone in self.zones:
            if zone.local:
                lines.append(f'  local-zone: "{zone.name}" static')
                for record in _local_records(zone):
                    quote = "'" if '"' in record else '"'
                    lines.append(f"  local-data: {quote}{record}{quote}")
            elif zone.signed:
                lines += [f'  trust-anchor: "{ds}"' for ds in zone.trust_anchor]
            else:
                lines.append(f'  domain-insecure: "{zone.name}"')
        lines += ["remote-control:", "  control-enable: no"]
        for zone in self.zones:
            if not zone.local:
                lines += [
                    "stub-zone:",
                    f'  name: "{zone.name}"',
                    f"  stub-addr: 127.0.0.1@{self.nsd_port}",
                ]
        return "\n".join(lines) + "\n"

    def _spawn(self, argv: list[str], name: str) -> None:
        log = (self.directory / f"{name}.out").open("wb")
        with log:
            process = subprocess.Popen(
                argv, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT
            )
        self._processes.append(process)

    def _wait_until_answering(self, port: int, name: str, daemon: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        request = dns.message.make_query(name, "SOA")
        while True:
            for process in self._processes:
                if process.poll() is not None:
                    self.stop()
                    raise DnsServerError(f"{daemon} exited at start:\n{self._logs()}")
            try:
                answer = dns.query.udp(request, "127.0.0.1", port=port, timeout=0.2)
            except (OSError, dns.exception.Timeout):
                answer = None
            if answer is not None and answer.rcode() != dns.rcode.REFUSED:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise DnsServerError(
                    f"{daemon} did not answer within {START_TIMEOUT:g} s:\n{self._logs()}"
                )
            time.sleep(0.02)

    def _logs(self) -> str:
        parts = []
        for name in ("nsd.out", "nsd.log", "unbound.out", "unbound.log"):
            path = self.directory / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)


def _local_records(zone: Zone) -> list[str]:
    """A local zone's records as absolute names for unbound's ``local-data``."""
    out = []
    for line in zone.text().splitlines():
        if line.startswith("$"):
            continue
        owner, rest = line.split(None, 1)
        owner = (
            zone.name
            if owner == "@"
            else (owner if owner.endswith(".") else f"{owner}.{zone.name}")
        )
        out.append(f"{owner} {TTL} {rest}")
    return out


def _falsify(path: Path, zone: Zone) -> None:
    """Change the data of the signed record that begins like ``zone.bogus``: its RRSIG no longer fits."""
    assert zone.bogus is not None
    owner, rdtype = zone.bogus.split()[0], zone.bogus.split()[-1]
    full = zone.name if owner == "@" else f"{owner}.{zone.name}"
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        fields = line.split()
        if len(fields) >= 5 and fields[0] == full and fields[3] == rdtype and rdtype != "RRSIG":
            last = fields[-1]
            fields[-1] = ("0" if last[0] != "0" else "1") + last[1:]
            lines[index] = "\t".join(fields)
            path.write_text("\n".join(lines) + "\n")
            return
    raise DnsServerError(f"no {zone.bogus!r} record in the signed zone {zone.name}")


def started_dns(directory: Path, build: Callable[[DnsServer], None]) -> DnsServer:
    """A started :class:`DnsServer` with the zones ``build`` adds; skips (or fails under CI) without the binaries."""
    from tests.conftest import require

    missing = missing_tools()
    require(not missing, ", ".join(missing))
    server = DnsServer(directory)
    build(server)
    server.start()
    return server


def serve_policies(
    loop: asyncio.AbstractEventLoop,
    address: str,
    port: int,
    policies: dict[str, str],
    context: ssl.SSLContext,
) -> asyncio.Server:
    """An HTTPS server on ``address``:``port`` (in ``loop``'s thread) answering MTA-STS policies.

    ``policies`` maps the ``Host`` header (``mta-sts.example.test``) to the
    policy text served at ``/.well-known/mta-sts.txt``; anything else is 404.
    ``context`` carries a certificate from the tests' CA. The hosts whose
    policy was served are listed in the returned server's ``policies_served``.
    """
    served: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 2 else ""
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
        }
        host = headers.get("host", "")
        text = policies.get(host) if path == "/.well-known/mta-sts.txt" else None
        if text is None:
            status, body = "404 Not Found", b"not here\n"
        else:
            served.append(host)
            status, body = "200 OK", text.encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        try:
            await writer.drain()
        finally:
            writer.close()

    async def create() -> asyncio.Server:
        return await asyncio.start_server(handle, address, port, ssl=context)

    server = asyncio.run_coroutine_threadsafe(create(), loop).result(5)
    server.policies_served = served  # type: ignore[attr-defined]
    return server
