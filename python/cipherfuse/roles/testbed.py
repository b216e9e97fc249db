"""The paper's 1 + 3 + 3 testbed: anvil plus 7 role processes, supervised (:func:`run_testbed`).

Each role runs as its own process (:func:`~cipherfuse.roles.process.run_role`, started
through the command line) in its own work folder, with its own keystore and IPFS node in
one private swarm, and, where this host allows it, in its own network namespace and as its
own user (:mod:`~cipherfuse.roles.testbed_hosts`). The supervisor moves
anvil's clock whenever every live role reports idle and returns the outcome read from the
chain.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cipherfuse.chain import AnvilNode, TasksContract, Withdrawn, http_chain
from cipherfuse.chain.events import EventPoller
from cipherfuse.roles.config import RoleConfig
from cipherfuse.roles.errors import RoleConfigError, RolesError
from cipherfuse.roles.process import status_path
from cipherfuse.roles.testbed_hosts import TESTBED_ROLES, TestbedHosts, choose_isolation, role_argv


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
                proc = hosts.spawn(cfg.account, role_argv(cfg), stdout=out)
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
