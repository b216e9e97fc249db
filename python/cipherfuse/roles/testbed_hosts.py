"""Where and as whom each testbed role runs (:class:`TestbedHosts`).

Each of the 7 roles of :func:`~cipherfuse.roles.testbed.run_testbed` gets its own work
folder (:func:`role_folder`), keystore (:func:`role_keystore`) and IPFS node in one private
swarm (:func:`testbed_swarm`), and, where this host allows it (:func:`choose_isolation`),
its own network namespace and its own user.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cipherfuse.chain.keystore import LIGHT_SCRYPT_N, create_keystore
from cipherfuse.chain.netconfig import NetworkConfig
from cipherfuse.files import atomic_write_bytes
from cipherfuse.netns import BuiltOrRemoved
from cipherfuse.roles.config import RoleConfig
from cipherfuse.roles.errors import RoleConfigError


def role_argv(cfg: RoleConfig) -> list[str]:
    """The command line that starts the role process of ``cfg`` (``cipherfuse ROLE ...``)."""
    argv = [
        sys.executable,
        "-m",
        "cipherfuse.cli.main",
        cfg.role,
        "--rpc-url",
        cfg.rpc_url,
        "--contract",
        cfg.contract,
        "--account",
        str(cfg.account),
        "--workdir",
        str(cfg.workdir),
        "--seed",
        str(cfg.seed),
    ]
    if cfg.role != "initiator":
        argv += ["--task-id", str(cfg.task_id)]
    if cfg.role == "contributor":
        argv += ["--index", str(cfg.index), "--behaviour", cfg.behaviour]
    if cfg.role == "verifier":
        argv += ["--vote-probability", str(cfg.vote_probability)]
    if cfg.max_epochs is not None:
        argv += ["--max-epochs", str(cfg.max_epochs)]
    if cfg.mnist_dir is not None:
        argv += ["--mnist-dir", str(cfg.mnist_dir)]
    if not cfg.quick:
        argv += ["--full"]
    argv += ["--storage", cfg.storage, "--fetch-timeout", str(cfg.fetch_timeout)]
    argv += ["--listen-host", cfg.listen_host]
    if cfg.ipfs_peer_network:
        argv += ["--ipfs-peer-network", cfg.ipfs_peer_network]
    if cfg.storage == "ipfs":
        argv += ["--ipfs-port", str(cfg.ipfs_port)]
        argv += ["--ipfs-linger-seconds", str(cfg.ipfs_linger_seconds)]
        if cfg.ipfs_swarm_key is not None:
            argv += ["--ipfs-swarm-key", str(cfg.ipfs_swarm_key)]
        for addr in cfg.ipfs_bootstrap:
            argv += ["--ipfs-bootstrap", addr]
    net = cfg.network
    if net is not None:
        argv += ["--keystore", str(net.keystore), "--chain-id", str(net.chain_id)]
        argv += ["--confirmations", str(net.confirmations)]
        if net.password_file is not None:
            argv += ["--password-file", str(net.password_file)]
        if net.password_env is not None:
            argv += ["--password-env", net.password_env]
    return argv


#: The testbed's roles by slot: (role, number); slot k signs with keystore k.
TESTBED_ROLES: dict[int, tuple[str, int]] = {
    1: ("initiator", 1),
    2: ("contributor", 1),
    3: ("contributor", 2),
    4: ("contributor", 3),
    5: ("verifier", 1),
    6: ("verifier", 2),
    7: ("verifier", 3),
}


def role_folder(workdir: Path, slot: int) -> Path:
    """The own work folder of testbed role ``slot`` (e.g. ``roles/contributor-2``)."""
    role, number = TESTBED_ROLES[slot]
    return workdir / "roles" / (role if role == "initiator" else f"{role}-{number}")


def role_keystore(folder: Path) -> tuple[Path, Path]:
    """A role's keystore and the password file opening it, under ``folder/keys``.

    The password is random (written once, mode 0600); the keystore uses light scrypt, as
    befits a throw-away key on a local node. Existing files are reused, so a testbed run
    can resume in the same folder.
    """

    keys = folder / "keys"
    password_file = keys / "password"
    if not password_file.exists():
        atomic_write_bytes(password_file, secrets.token_hex(16).encode() + b"\n", mode=0o600)
    password = password_file.read_text(encoding="utf-8").splitlines()[0]
    path = keys / "account.json"
    if not path.exists():
        create_keystore(path, password, scrypt_n=LIGHT_SCRYPT_N)
    return password_file, path


#: Where a testbed role's IPFS node listens inside its own network namespace.
NAMESPACE_IPFS_PORT = 4001
#: How the testbed separates its roles (see :func:`choose_isolation`).
ISOLATIONS = ("auto", "netns", "loopback")


def testbed_swarm(
    workdir: Path, folders: Sequence[Path], hosts: dict[Path, str] | None
) -> dict[Path, str]:
    """Set up one private IPFS network for the testbed's roles.

    Generates the swarm key (``workdir/swarm.key``, kept for a resumed run) and gives each
    role folder its own copy, creates each role's node repository (``folder/ipfs``) to
    learn its peer id. Without ``hosts`` each node gets a free loopback port and the dial
    address ``/ip4/127.0.0.1/tcp/PORT/p2p/PEERID``; with ``hosts`` (each folder's address
    in its own network namespace) every node listens on port
    :data:`NAMESPACE_IPFS_PORT` of its address. Returns each folder's dial address.
    """
    import shutil
    import socket

    from cipherfuse.storage.ipfs_node import IpfsNodeStore, read_swarm_key, write_swarm_key

    if not (workdir / "swarm.key").exists():
        write_swarm_key(workdir, os.urandom(32))
    key = read_swarm_key(workdir / "swarm.key")
    sockets = []
    for _ in folders:  # held open together, so the ports are distinct
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [int(s.getsockname()[1]) for s in sockets]
    for sock in sockets:
        sock.close()
    addresses = {}
    for folder, port in zip(folders, ports, strict=True):
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(workdir / "swarm.key", folder / "swarm.key")
        (folder / "swarm.key").chmod(0o600)
        with IpfsNodeStore(folder / "ipfs", swarm_key=key, listen_port=port) as node:
            dial = node.dial_addr()
            if hosts is not None:
                dial = f"/ip4/{hosts[folder]}/tcp/{NAMESPACE_IPFS_PORT}/p2p/{node.peer_id}"
            addresses[folder] = dial
    return addresses


@dataclass(frozen=True)
class TestbedIsolation:
    """How the testbed separates its roles: own network namespaces, own users."""

    __test__ = False  # not a pytest test class

    namespaces: bool
    users: bool
    warnings: tuple[str, ...] = ()


def choose_isolation(
    workdir: Path,
    isolation: str = "auto",
    separate_users: bool | None = None,
    *,
    namespaces_reason: str | bool | None = False,
    users_reason: str | bool | None = False,
) -> TestbedIsolation:
    """Namespaces and users as asked, where this host allows them.

    ``isolation``: ``netns`` (own namespaces, or :class:`RoleConfigError`), ``loopback``
    (all roles on this host's loopback) or ``auto`` (namespaces where they can be made,
    else loopback with a warning). ``separate_users``: True (a user per role, or an
    error), False, or None (where possible, else a warning). The ``*_reason`` arguments
    replace the probes of this host (``False``: probe).
    """
    from cipherfuse.roles.hosts import namespaces_unavailable_reason, users_unavailable_reason

    if isolation not in ISOLATIONS:
        raise RoleConfigError(
            f"isolation must be one of {', '.join(ISOLATIONS)}, got {isolation!r}"
        )
    ns_why = namespaces_unavailable_reason() if namespaces_reason is False else namespaces_reason
    users_why = users_unavailable_reason(workdir) if users_reason is False else users_reason
    warnings = []
    namespaces = False
    if isolation != "loopback":
        if ns_why is None:
            namespaces = True
        elif isolation == "netns":
            raise RoleConfigError(f"--isolation netns: {ns_why}")
        else:
            warnings.append(
                f"WARNING: {ns_why}; the roles share this host's loopback network "
                "(separate processes and ports, no separate hosts)"
            )
    users = False
    if separate_users is not False:
        if users_why is None:
            users = True
        elif separate_users:
            raise RoleConfigError(f"separate users: {users_why}")
        else:
            warnings.append(
                f"WARNING: {users_why}; all roles run as this user, so a role could read "
                "another role's folder"
            )
    return TestbedIsolation(namespaces, users, tuple(warnings))


class TestbedHosts(BuiltOrRemoved):
    """Where and as whom each testbed role runs: its own folder, and (per
    :class:`TestbedIsolation`) its own network namespace and its own user.

    A context manager: entering creates the namespaces (if any), the keystores, the
    user ids and the private IPFS swarm; leaving removes the namespaces again.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, workdir: Path, isolation: TestbedIsolation) -> None:
        from cipherfuse.roles.hosts import TestbedNetwork, role_uids

        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.isolation = isolation
        self.folders = {slot: role_folder(workdir, slot) for slot in TESTBED_ROLES}
        self.network = (
            TestbedNetwork([f.name for f in self.folders.values()])
            if isolation.namespaces
            else None
        )
        self.uids = (
            dict(zip(TESTBED_ROLES, role_uids(workdir, len(TESTBED_ROLES)), strict=True))
            if isolation.users
            else {}
        )
        self.keys: dict[int, tuple[Path, Path]] = {}
        self.swarm: dict[Path, str] = {}
        self._initial_blocks: dict[int, dict[str, int]] = {}

    def _build(self) -> None:
        if self.isolation.users:
            # Others may pass through the testbed folder to their own, never list it.
            self.workdir.chmod(0o711)
            (self.workdir / "roles").mkdir(exist_ok=True)
            (self.workdir / "roles").chmod(0o711)
        if self.network is not None:
            self.network.__enter__()
        self.keys = {slot: role_keystore(self.folders[slot]) for slot in TESTBED_ROLES}
        hosts = None
        if self.network is not None:
            hosts = {f: self.network.address(f.name) for f in self.folders.values()}
        self.swarm = testbed_swarm(self.workdir, list(self.folders.values()), hosts)
        self._initial_blocks = {s: _block_sizes(f / "ipfs") for s, f in self.folders.items()}
        if self.isolation.users:
            from cipherfuse.roles.hosts import give_folder

            for slot, folder in self.folders.items():
                give_folder(folder, self.uids[slot])

    def close(self) -> None:
        """Remove the namespaces (once the processes in them are gone)."""
        if self.network is not None:
            self.network.close()

    @property
    def chain_host(self) -> str:
        """The address the chain node listens on (the host's address on the bridge)."""
        return self.network.host_address if self.network is not None else "127.0.0.1"

    def address(self, slot: int) -> str:
        """Role ``slot``'s own address (its namespace's, or loopback)."""
        if self.network is None:
            return "127.0.0.1"
        return self.network.address(self.folders[slot].name)

    def ipfs_fetched_bytes(self) -> int:
        """Block bytes the roles' nodes fetched from each other since the swarm was set up.

        Every block a node holds beyond its initial repository it either published or
        fetched; each distinct block was published once, so the fetched bytes are all
        new blocks over all nodes less one copy of each distinct new block.
        """
        held = 0
        distinct: dict[str, int] = {}
        for slot, folder in self.folders.items():
            before = self._initial_blocks.get(slot, {})
            for name, size in _block_sizes(folder / "ipfs").items():
                if name not in before:
                    held += size
                    distinct[name] = size
        return held - sum(distinct.values())

    def describe(self) -> dict[str, Any]:
        """Namespaces, addresses and users, for the outcome."""
        names = {slot: f.name for slot, f in self.folders.items()}
        return {
            "namespaces": self.network is not None,
            "users": self.isolation.users,
            "subnet": self.network.subnet if self.network is not None else None,
            "chain_host": self.chain_host,
            "addresses": {names[s]: self.address(s) for s in TESTBED_ROLES},
            "uids": {names[s]: u for s, u in self.uids.items()},
            "warnings": list(self.isolation.warnings),
        }

    def config(
        self, slot: int, rpc_url: str, contract: str, chain_id: int, **changes: Any
    ) -> RoleConfig:
        """Role ``slot``'s settings: every path in its own folder, its own address."""
        folder = self.folders[slot]
        password_file, keystore = self.keys[slot]
        dial = self.swarm[folder]
        return RoleConfig(
            role=TESTBED_ROLES[slot][0],
            rpc_url=rpc_url,
            contract=contract,
            account=slot,
            workdir=folder,
            network=NetworkConfig(
                rpc_url=rpc_url,
                chain_id=chain_id,
                contract=contract,
                keystore=keystore,
                password_file=password_file,
                confirmations=0,
            ),
            storage="ipfs",
            ipfs_swarm_key=folder / "swarm.key",
            ipfs_port=int(dial.split("/")[4]),
            ipfs_bootstrap=tuple(a for f, a in self.swarm.items() if f != folder),
            listen_host=self.address(slot),
            **changes,
        )

    def spawn(
        self, slot: int, argv: Sequence[str], stdout: Any = subprocess.DEVNULL
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` as role ``slot``: in its namespace, as its user, in its folder."""
        from cipherfuse.roles.hosts import give_folder, role_command

        folder = self.folders[slot]
        command = list(argv)
        env = dict(os.environ)
        if self.isolation.users:
            uid = self.uids[slot]
            for sub in ("home", "tmp"):
                (folder / sub).mkdir(exist_ok=True)
            env.update(
                HOME=str(folder / "home"),
                TMPDIR=str(folder / "tmp"),
                XDG_CACHE_HOME=str(folder / "home" / ".cache"),
                PYTHONDONTWRITEBYTECODE="1",
            )
            give_folder(folder, uid)
            command = role_command(uid, command)
        if self.network is not None:
            command = self.network.command(folder.name, command)
        return subprocess.Popen(
            command,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=folder,
            env=env,
        )


def _block_sizes(repo: Path) -> dict[str, int]:
    """Size of each block file of a Kubo repository, by file name (the block's key)."""
    return {p.name: p.stat().st_size for p in (repo / "blocks").rglob("*.data")}
