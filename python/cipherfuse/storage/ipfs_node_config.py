"""The Kubo configuration that confines an embedded node to the loopback interface."""

from __future__ import annotations

from typing import Any

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


def harden_config(config: dict[str, Any]) -> None:
    """Rewrite a Kubo config in place so the node talks to 127.0.0.1 only.

    No bootstrap peers, listen on 127.0.0.1 only, no mDNS (multicast), no UPnP/NAT-PMP,
    no relays, hole punching or AutoNAT, no delegated HTTP routing, and a swarm
    address filter that refuses to dial or accept anything outside 127.0.0.0/8.
    """
    config["Bootstrap"] = []
    addresses = config.setdefault("Addresses", {})
    addresses["Swarm"] = ["/ip4/127.0.0.1/tcp/0"]
    addresses["Announce"] = []
    addresses["AppendAnnounce"] = []
    addresses["NoAnnounce"] = list(NON_LOOPBACK_FILTERS)
    addresses["API"] = []
    addresses["Gateway"] = []
    config.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
    swarm = config.setdefault("Swarm", {})
    swarm["DisableNatPortMap"] = True
    swarm["RelayClient"] = {"Enabled": False}
    swarm["RelayService"] = {"Enabled": False}
    swarm["EnableHolePunching"] = False
    swarm["AddrFilters"] = list(NON_LOOPBACK_FILTERS)
    config["AutoNAT"] = {"ServiceMode": "disabled"}
    routing = config.setdefault("Routing", {})
    routing["Type"] = "none"
    routing["Routers"] = None
    routing["Methods"] = None
