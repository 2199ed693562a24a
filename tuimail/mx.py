"""A mail domain's MX hosts, to probe each one on port 25 (dnspython)."""

from __future__ import annotations

from dataclasses import dataclass

from tuimail.errors import TuimailError


class MXLookupError(TuimailError):
    """The domain's mail servers could not be found; says why."""


@dataclass(frozen=True)
class MXHost:
    preference: int
    host: str


async def lookup_mx(
    domain: str, *, nameservers: list[str] | None = None, port: int = 53, timeout: float = 5.0
) -> list[MXHost]:
    """MX hosts by preference; a domain without MX falls back to itself (RFC 5321 5.1)."""
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    resolver = dns.asyncresolver.Resolver(configure=nameservers is None)
    if nameservers is not None:
        try:
            resolver.nameservers = nameservers
        except ValueError:  # dnspython takes addresses (and URLs), not host names
            shown = ", ".join(nameservers)
            raise MXLookupError(
                f"the DNS server {shown!r} is not an IP address; give the resolver's address"
            ) from None
        resolver.port = port
    resolver.lifetime = timeout
    try:
        answer = await resolver.resolve(domain, "MX")
    except dns.resolver.NXDOMAIN:
        raise MXLookupError(f"{domain} does not exist (NXDOMAIN)") from None
    except dns.resolver.NoAnswer:
        return [MXHost(0, domain.rstrip("."))]
    except dns.exception.Timeout:
        raise MXLookupError(f"no DNS answer for {domain} within {timeout:g} seconds") from None
    except dns.exception.DNSException as exc:
        raise MXLookupError(f"DNS lookup for {domain} failed: {exc}") from None
    hosts = sorted(
        (MXHost(int(r.preference), str(r.exchange).rstrip(".")) for r in answer),
        key=lambda mx: (mx.preference, mx.host),
    )
    if len(hosts) == 1 and hosts[0].host in ("", "."):
        raise MXLookupError(f"{domain} says it accepts no mail (null MX, RFC 7505)")
    return hosts
