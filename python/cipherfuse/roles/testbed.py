"""The paper's 1 + 3 + 3 testbed: anvil plus 7 role processes, supervised (:func:`run_testbed`).

Each role runs as its own process (:func:`~cipherfuse.roles.process.run_role`, started
through the command line) in its own work folder, with its own keystore and IPFS node in
one private swarm (:class:`TestbedHosts`), and, where this host allows it, in its own
network namespace and as its own user (:func:`choose_isolation`). The supervisor moves
anvil's clock whenever every live role reports idle and returns the outcome read from the
chain.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cipherfuse.chain import AnvilNode, TasksContract, Withdrawn, http_chain
from cipherfuse.chain.events import EventPoller
from cipherfuse.chain.keystore import LIGHT_SCRYPT_N, create_keystore
from cipherfuse.chain.netconfig import NetworkConfig
from cipherfuse.files import atomic_write_bytes
from cipherfuse.netns import BuiltOrRemoved
from cipherfuse.roles.config import RoleConfig
from cipherfuse.roles.errors import RoleConfigError, RolesError
from cipherfuse.roles.process import status_path


def _role_argv(cfg: RoleConfig) -> list[str]:
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
    import secrets

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


def _read_status(path: Path) -> dict[str, Any] | None:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return body if isinstance(body, dict) else None


def run_testbed(
    workdir: Path,
    *,
    behaviours: tuple[str, str, str] = ("honest", "honest", "honest"),
    max_epochs: int | None = None,
    mnist_dir: Path | None = None,
    timeout: float = 1800.0,
    kill_after_claim: int | None = None,
    fetch_timeout: float = 120.0,
    isolation: str = "auto",
    separate_users: bool | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The paper's 1 + 3 + 3 testbed: anvil plus 7 role processes; returns the outcome.

    Every role has its own work folder under ``workdir/roles/`` (keystore, state, status,
    log and IPFS repository) and its own embedded IPFS node; the nodes form one private
    swarm (a swarm key generated here) and each is given the other six as bootstrap
    peers. The roles share nothing but the anvil node's JSON-RPC endpoint and the swarm.
    Roles that are done keep their node online until the initiator (the last consumer of
    their content) has finished; then the testbed stops them.

    ``isolation`` (see :func:`choose_isolation`): with namespaces every role runs in its
    own Linux network namespace on a bridge, anvil listens on the host's bridge address,
    and each role's IPFS node and committee endpoint listen on its namespace's address.
    ``separate_users``: each role runs as its own user id and its folder is that user's,
    mode 0700 (default: where this host allows it). The outcome's ``isolation`` says
    what was used.

    ``kill_after_claim=i`` SIGKILLs contributor ``i``'s process once its claim is on chain
    and starts it again (a crash and restart; the outcome must not change).
    """
    from cipherfuse.chain.keystore import keystore_address
    from cipherfuse.shutdown import on_hard_exit
    from cipherfuse.storage.ipfs_node import ipfs_node_available

    if not ipfs_node_available():
        raise RoleConfigError(
            "the testbed gives each role its own IPFS node: pip install 'cipherfuse[ipfs]'"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    chosen = choose_isolation(workdir, isolation, separate_users)
    for warning in chosen.warnings:
        log(warning)
    hosts = TestbedHosts(workdir, chosen)
    folders = hosts.folders
    procs: list[tuple[RoleConfig, subprocess.Popen[bytes]]] = []
    nodes: list[AnvilNode] = []

    def kill_everything() -> None:  # Ctrl-C's hard exit: nothing may outlive us
        for _, proc in procs:
            if proc.poll() is None:
                proc.kill()
        for node in nodes:
            if node.pid is not None:
                os.kill(node.pid, 9)
        for _, proc in procs:
            proc.wait(timeout=5)
        hosts.close()

    with (
        on_hard_exit(kill_everything),
        hosts,
        AnvilNode(accounts=1, host=hosts.chain_host) as node,
    ):
        nodes.append(node)
        if hosts.network is not None:
            log(
                f"7 network namespaces {hosts.network.tag}-* on {hosts.network.subnet}; "
                f"anvil on the host side {hosts.chain_host}"
            )
        # The deployer signs with development key 0; each role with its own keystore.
        chain = http_chain(node.url, kind="anvil", dev_accounts=1)
        addresses: list[str] = [chain.accounts[0]]
        for slot in TESTBED_ROLES:
            address = keystore_address(hosts.keys[slot][1])
            if address is None:
                raise RolesError(f"{hosts.keys[slot][1]} does not name its address")
            chain._rpc("anvil_setBalance", [address, hex(10_000 * 10**18)])
            addresses.append(address)
        tasks, _ = TasksContract.deploy(chain, chain.accounts[0])
        log(f"anvil {node.url}; CipherfuseTasks at {tasks.address}")

        def role(slot: int, **changes: Any) -> RoleConfig:
            return hosts.config(
                slot,
                node.url,
                tasks.address,
                chain.chain_id,
                max_epochs=max_epochs,
                mnist_dir=mnist_dir,
                fetch_timeout=fetch_timeout,
                # The others serve until the testbed stops them, once the initiator (the
                # last to fetch: released models) is done (see _drive_clock).
                ipfs_linger_seconds=0.0 if slot == 1 else timeout,
                **changes,
            )

        def start(cfg: RoleConfig) -> None:
            logf = cfg.workdir / "logs" / f"{cfg.role}-{cfg.account}.log"
            logf.parent.mkdir(parents=True, exist_ok=True)
            with logf.open("ab") as out:
                proc = hosts.spawn(cfg.account, _role_argv(cfg), stdout=out)
            procs.append((cfg, proc))
            where = f" at {cfg.listen_host}" if hosts.network is not None else ""
            log(
                f"started {cfg.role} (account {cfg.account}) pid {proc.pid}{where} in {cfg.workdir}"
            )

        initiator = role(1)
        try:
            start(initiator)
            deadline = time.monotonic() + timeout
            task_id = None
            while task_id is None:
                body = _read_status(status_path(initiator.workdir, "initiator", 1))
                task_id = body.get("task_id") if body else None
                _check_alive(procs)
                if time.monotonic() > deadline:
                    raise RolesError("the initiator did not publish a task in time")
                time.sleep(0.5)
            log(f"task {task_id} published")
            for slot in (5, 6, 7):
                start(role(slot, task_id=task_id))
            for i, slot in enumerate((2, 3, 4)):
                start(role(slot, task_id=task_id, index=i + 1, behaviour=behaviours[i]))
            drill: Callable[[], bool] | None = None
            if kill_after_claim is not None:
                drill = _kill_after_claim(
                    tasks, int(task_id), procs, kill_after_claim, start, log, addresses
                )
            _drive_clock(chain, procs, deadline, log, drill)
        finally:
            for _, proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            for _, proc in procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        outcome = testbed_outcome(tasks, int(task_id), addresses)
        outcome["metamodel_accuracy"] = initiator_accuracies(initiator.workdir, addresses[1])
        outcome["role_folders"] = {
            ("initiator" if r == "initiator" else f"{r} {n}"): str(folders[slot])
            for slot, (r, n) in TESTBED_ROLES.items()
        }
        outcome["ipfs_block_bytes"] = {
            name: _tree_bytes(Path(folder) / "ipfs" / "blocks")
            for name, folder in outcome["role_folders"].items()
        }
        outcome["isolation"] = hosts.describe()
        outcome["ipfs_fetched_bytes"] = hosts.ipfs_fetched_bytes()
        if hosts.network is not None:
            outcome["link_bytes"] = hosts.network.link_bytes()
        return outcome


def _block_sizes(repo: Path) -> dict[str, int]:
    """Size of each block file of a Kubo repository, by file name (the block's key)."""
    return {p.name: p.stat().st_size for p in (repo / "blocks").rglob("*.data")}


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def initiator_accuracies(workdir: Path, account: str) -> list[dict[str, Any]]:
    """The initiator process's MetaModel test accuracy after each released claim."""
    from cipherfuse.roles.state import StateFile

    state = StateFile(workdir / "state" / f"initiator-{account}.json", "initiator", account)
    processed = state.data.get("processed", {})
    return [
        {"claim_id": int(k), "accuracy": v.get("accuracy")}
        for k, v in sorted(processed.items(), key=lambda kv: int(kv[0]))
    ]


def _kill_after_claim(
    tasks: TasksContract,
    task_id: int,
    procs: list[tuple[RoleConfig, subprocess.Popen[bytes]]],
    index: int,
    start: Callable[[RoleConfig], None],
    log: Callable[[str], None],
    addresses: Sequence[str],
) -> Callable[[], bool]:
    """A clock hook: once contributor ``index`` has claimed, SIGKILL and restart it."""
    cfg, proc = next((c, p) for c, p in procs if c.role == "contributor" and c.index == index)
    account = addresses[cfg.account]
    fired = False

    def tick() -> bool:
        nonlocal fired
        if fired or tasks.get_participant(task_id, account).claim_id == 0:
            return False
        fired = True
        proc.kill()
        proc.wait()
        procs.remove((cfg, proc))
        # Its last status must not let the clock run while the new process starts up.
        status_path(cfg.workdir, cfg.role, cfg.account).unlink(missing_ok=True)
        log(f"killed contributor {index} (pid {proc.pid}) after its claim; restarting it")
        start(cfg)
        return True

    return tick


def _check_alive(procs: list[tuple[RoleConfig, subprocess.Popen[bytes]]]) -> None:
    for cfg, proc in procs:
        code = proc.poll()
        if code not in (None, 0):
            raise RolesError(
                f"{cfg.role} (account {cfg.account}) exited with {code}; see "
                f"{cfg.workdir / 'logs' / f'{cfg.role}-{cfg.account}.log'}"
            )


def _drive_clock(
    chain: Any,
    procs: list[tuple[RoleConfig, subprocess.Popen[bytes]]],
    deadline: float,
    log: Callable[[str], None],
    drill: Callable[[], bool] | None = None,
) -> None:
    """Advance anvil's time when every live role is idle and waits for a later time.

    Returns once the initiator has exited and every other role has exited or is done
    (a done role may still be serving its content: the caller stops it).
    """
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        if drill is not None and drill():
            quiet_since = None
        _check_alive(procs)
        states = [
            _read_status(status_path(cfg.workdir, cfg.role, cfg.account))
            for cfg, proc in procs
            if proc.poll() is None
        ]
        initiator_gone = all(p.poll() == 0 for c, p in procs if c.role == "initiator")
        if initiator_gone and all(s is not None and s["done"] for s in states):
            return
        # A done role (still serving its content) waits for nothing and reports no more.
        states = [s for s in states if s is None or not s["done"]]
        head = chain.block_number()
        wall = time.time()
        idle = all(
            s is not None
            and s["idle"]
            and s["block"] >= head - 1
            and (s["stepping_since"] is None or wall - s["stepping_since"] < 1.0)
            for s in states
        )
        if not idle:
            quiet_since = None
            time.sleep(0.3)
            continue
        quiet_since = quiet_since or time.monotonic()
        if time.monotonic() - quiet_since < 1.5:
            time.sleep(0.3)
            continue
        now = chain.timestamp()
        times = [t for s in states if s for t in s["wakeups"] if t > now]
        if times:
            log(f"clock: all roles idle; advancing {min(times) - now} s")
            chain.advance_time(min(times) - now)
        quiet_since = None
        time.sleep(0.3)
    raise RolesError("the testbed did not finish in time")


def testbed_outcome(tasks: TasksContract, task_id: int, accounts: Sequence[str]) -> dict[str, Any]:
    """Claims, outcomes and withdrawals read from the chain."""
    withdrawn: dict[str, int] = {}
    for event in EventPoller(tasks).poll_typed():
        if isinstance(event, Withdrawn):
            withdrawn[event.account] = withdrawn.get(event.account, 0) + event.amount
    claims = []
    for i in range(3):
        p = tasks.get_participant(task_id, accounts[2 + i])
        entry: dict[str, Any] = {"contributor": i + 1, "state": p.state.name}
        if p.claim_id:
            c = tasks.get_claim(p.claim_id)
            entry.update(
                claim_id=p.claim_id,
                outcome=c.status.name,
                accept=c.accept_votes,
                reject=c.reject_votes,
                model_size=c.model_size,
            )
        claims.append(entry)
    names = [
        "initiator",
        "contributor 1",
        "contributor 2",
        "contributor 3",
        "verifier 1",
        "verifier 2",
        "verifier 3",
    ]
    return {
        "task_id": task_id,
        "claims": claims,
        "withdrawn_wei": {n: withdrawn.get(accounts[1 + k], 0) for k, n in enumerate(names)},
        "contract_balance_wei": tasks.balance(),
    }
