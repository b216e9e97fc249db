"""The Kubo configuration that confines an embedded node to loopback and one peer network."""

from __future__ import annotations

import ipaddress
from typing import Any

from cipherfuse.errors import ParameterError

# Deny-list covering every IPv4 address outside 127.0.0.0/8, and all of IPv6.
NON_LOOPBACK_FILTERS = [
    "/ip4/0.0.0.0/ipcidr/2",
    "/ip4/64.0.0.0/ipcidr/3",
    "/ip4/96.0.0.0/ipcidr/4",
    "/ip4/112.0.0.0/ipcidr/5",
    "/ip4/120.0.0.0/ipcidr/6",
    "/ip4/124.0.0.0/ipcidr/7",
    "/ip4/126.0.0.0/ipcidr/8",
    "/ip4/128.0.0.0/ipcidr/1",
    "/ip6/::/ipcidr/0",
]

LOOPBACK_NETWORK = "127.0.0.0/8"


def parse_peer_network(text: str) -> ipaddress.IPv4Network:
    """An IPv4 network ``a.b.c.d/n`` the node may talk to (strict: no host bits set).

    Raises:
        ParameterError: not an IPv4 network in CIDR notation.
    """
    try:
        return ipaddress.IPv4Network(text, strict=True)
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError) as exc:
        raise ParameterError(
            f"peer network must be IPv4 CIDR like 10.1.2.0/24 (no host bits), got {text!r}"
        ) from exc


def default_peer_network(listen_host: str) -> str:
    """The peers a node listening on ``listen_host`` talks to by default: loopback for a
    loopback address, else the /24 around it (one LAN or one testbed bridge)."""
    host = ipaddress.IPv4Address(listen_host)
    if host.is_loopback:
        return LOOPBACK_NETWORK
    return str(ipaddress.IPv4Network(f"{host}/24", strict=False))


def deny_filters(peer_network: str) -> list[str]:
    """Kubo ``AddrFilters`` refusing every address outside loopback and ``peer_network``
    (and all of IPv6): the complement of the two networks as ``/ip4/A/ipcidr/N`` lines."""
    allowed = {parse_peer_network(LOOPBACK_NETWORK), parse_peer_network(peer_network)}
    remaining = [ipaddress.IPv4Network("0.0.0.0/0")]
    for net in allowed:
        next_round: list[ipaddress.IPv4Network] = []
        for block in remaining:
            if net.subnet_of(block):
                next_round.extend(block.address_exclude(net))
            elif not block.subnet_of(net):
                next_round.append(block)
        remaining = next_round
    ordered = sorted(remaining, key=lambda n: int(n.network_address))
    return [f"/ip4/{n.network_address}/ipcidr/{n.prefixlen}" for n in ordered] + [
        "/ip6/::/ipcidr/0"
    ]


def harden_config(
    config: dict[str, Any],
    *,
    listen_host: str = "127.0.0.1",
    peer_network: str = LOOPBACK_NETWORK,
) -> None:
    """Rewrite a Kubo config in place so the node talks to its peer network only.

    No bootstrap peers, listen on ``listen_host`` only, no mDNS (multicast), no
    UPnP/NAT-PMP, no relays, hole punching or AutoNAT, no delegated HTTP routing, and a
    swarm address filter that refuses to dial or accept anything outside 127.0.0.0/8 and
    ``peer_network`` (by default loopback only).
    """
    filters = deny_filters(peer_network)
    config["Bootstrap"] = []
    addresses = config.setdefault("Addresses", {})
    addresses["Swarm"] = [f"/ip4/{ipaddress.IPv4Address(listen_host)}/tcp/0"]
    addresses["Announce"] = []
    addresses["AppendAnnounce"] = []
    addresses["NoAnnounce"] = list(filters)
    addresses["API"] = []
    addresses["Gateway"] = []
    config.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
    swarm = config.setdefault("Swarm", {})
    swarm["DisableNatPortMap"] = True
    swarm["RelayClient"] = {"Enabled": False}
    swarm["RelayService"] = {"Enabled": False}
    swarm["EnableHolePunching"] = False
    swarm["AddrFilters"] = list(filters)
    config["AutoNAT"] = {"ServiceMode": "disabled"}
    routing = config.setdefault("Routing", {})
    routing["Type"] = "none"
    routing["Routers"] = None
    routing["Methods"] = None
