"""The egress policy: which addresses a notification may make incman connect to.

Remote URLs come from configuration that managers edit over the API, so by default incman
refuses the addresses where a request could reach what is not a ticketing system (loopback,
link-local, metadata, unspecified, multicast) and allows the private ranges;
`INCMAN_EGRESS_ALLOW` makes exceptions (ranges and syntax: docs/operations.md).

The decision is made on the resolved addresses, never on the host string, and at connect
time: `checked_connection` resolves the host, drops every refused address and connects only
to an address it has just checked. There is no second resolution between the check and the
connect for a DNS rebinding answer to slip into, and every redirect hop is a new connection
that goes through the same check."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from incman.integrations.errors import EgressRefused
from incman.settings import EGRESS_SETTING as SETTING
from incman.settings import IPNetwork, parse_allowance

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services outside the link-local ranges (AWS's IPv6 one, Alibaba Cloud's).
METADATA = tuple(ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200"))


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def refused_because(address: IPAddress) -> str | None:
    """Why the default policy refuses `address`, or None when it allows it."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address in METADATA:
        return "a cloud metadata address"
    if address.is_unspecified or address in ipaddress.ip_network("0.0.0.0/8"):
        return "the unspecified address"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local, where cloud metadata lives" if address.version == 4 else "link-local"
    if address.is_multicast:
        return "multicast"
    return None


@dataclass(frozen=True)
class EgressPolicy:
    """The default refusals, less the allowed networks and host names."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: tuple[str, ...] = field(default=())

    @classmethod
    def from_setting(cls, raw: str) -> EgressPolicy:
        networks, hosts = parse_allowance(raw)
        return cls(networks, hosts)

    def host_allowed(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return any(name == h or (h.startswith("*.") and name.endswith(h[1:])) for h in self.hosts)

    def reason(self, host: str, address: IPAddress) -> str | None:
        """Why a connection to `address` (a resolution of `host`) is refused, or None."""
        why = refused_because(address)
        if why is None or self.host_allowed(host):
            return None
        if any(address.version == n.version and address in n for n in self.networks):
            return None
        return why

    def addresses(self, host: str, port: int) -> list[tuple[Any, ...]]:
        """The getaddrinfo entries of `host` this policy allows (socket.gaierror when the
        name does not resolve); EgressRefused naming the refused ones when none is left."""
        infos = socket.getaddrinfo(host.strip("[]"), port, 0, socket.SOCK_STREAM)
        allowed, refused = [], []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            why = self.reason(host, address)
            if why is None:
                allowed.append(info)
            else:
                refused.append(f"{address} ({why})")
        if not allowed:
            shown = ", ".join(dict.fromkeys(refused))
            where = f"{host} is" if _is_address(host) else f"{host} resolves to"
            raise EgressRefused(
                f"refused by the egress policy: {where} {shown}; "
                f"allow it with {SETTING} if this is where the remote system lives"
            )
        return allowed

    def check_host(self, host: str, port: int) -> None:
        """Refuse a host none of whose addresses is allowed (what a proxy will connect to:
        checked here by resolving the name the same way)."""
        try:
            self.addresses(host, port)
        except socket.gaierror:
            return  # the proxy may know names this machine does not; it answers for itself

    def connect(
        self,
        host: str,
        port: int,
        timeout: float | None,
        source_address: tuple[str, int] | None = None,
        socket_options: Sequence[tuple[int, int, int | bytes]] | None = None,
    ) -> socket.socket:
        """A socket connected to an allowed address of `host` (tried in resolution order),
        never to one this call has not just checked."""
        error: OSError | None = None
        for family, kind, proto, _, sockaddr in self.addresses(host, port):
            sock = socket.socket(family, kind, proto)
            try:
                for option in socket_options or ():
                    sock.setsockopt(*option)
                if timeout is not None:
                    sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        raise error or OSError(f"cannot connect to {host}:{port}")
