"""The roles as separate long-running processes against a JSON-RPC node and a shared store.

Each process runs one agent (:func:`run_role`) until it is done, polling the chain, and
writes a small status file (idle or busy, the chain times it waits for, done) that
:func:`run_testbed`'s clock reads to skip idle time on anvil. Configuration comes from
flags or a TOML file (:func:`load_role_config`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cipherfuse.chain import AnvilNode, TasksContract, Withdrawn, http_chain
from cipherfuse.chain.devkeys import dev_accounts
from cipherfuse.chain.events import EventPoller
from cipherfuse.chain.keystore import LIGHT_SCRYPT_N, create_keystore
from cipherfuse.chain.netconfig import NETWORK_KEYS, NetworkConfig, network_config_from
from cipherfuse.errors import ParameterError
from cipherfuse.roles.agent import Agent, RoleContext
from cipherfuse.roles.errors import RoleConfigError, RolesError
from cipherfuse.roles.state import atomic_write_bytes
from cipherfuse.storage import LocalStore

ROLES = ("initiator", "contributor", "verifier")


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
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise :class:`RoleConfigError` naming the first bad setting."""
        if self.role not in ROLES:
            raise RoleConfigError(f"role must be one of {ROLES}, got {self.role!r}")
        if not self.rpc_url.startswith(("http://", "https://")):
            raise RoleConfigError(f"--rpc-url must be an http(s) URL, got {self.rpc_url!r}")
        if self.role != "initiator" and self.task_id < 1:
            raise RoleConfigError("--task-id is required (the id the initiator printed)")
        if not 1 <= self.index <= 3:
            raise RoleConfigError(f"--index must be 1, 2 or 3 (Case I subset), got {self.index}")
        if self.account < 0:
            raise RoleConfigError(
                f"--account must be a role number (or development key index) >= 0, got "
                f"{self.account}"
            )


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
    body.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("workdir", "mnist_dir"):
        if body.get(key) is not None:
            body[key] = Path(body[key])
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
    ctx = RoleContext(tasks, LocalStore(cfg.workdir / "store"), cfg.workdir / "mailbox", log)
    return ctx, signer.address


def build_agent(cfg: RoleConfig, log: Callable[[str], None]) -> Agent:
    """The agent one process runs (data from the same Case I split in every process)."""
    from cipherfuse.roles.config import demo_task_params
    from cipherfuse.roles.contributor import ContributorAgent
    from cipherfuse.roles.demo import (
        DemoConfig,
        demo_split,
        load_demo_data,
        make_contributor_payload,
        verification_data,
    )
    from cipherfuse.roles.initiator import InitiatorAgent, InitiatorSetup
    from cipherfuse.roles.manifest import (
        MAX_VERIFICATION_BYTES,
        VerificationData,
        fetch_manifest,
    )
    from cipherfuse.roles.verifier import VerifierAgent
    from cipherfuse.roles.workload import CipherspaceJudge

    cfg.validate()
    ctx, account = _context(cfg, log)
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
            CipherspaceJudge(manifest, vdata),
            vote_probability=cfg.vote_probability,
        )
    split = demo_split(load_demo_data(cfg.mnist_dir), demo)
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


def _manifest_cid(tasks: TasksContract, task_id: int) -> str:
    from cipherfuse.roles.agent import objective_uri

    return objective_uri(tasks, task_id)


def status_path(workdir: Path, role: str, account: int) -> Path:
    """Where a role process reports idle/busy and its wake-up times."""
    return workdir / "status" / f"{role}-{account}.json"


def run_role(cfg: RoleConfig, log: Callable[[str], None] = print) -> Agent:
    """Run one role until its agent is done (Ctrl-C/SIGTERM stop it; a restart resumes)."""
    agent = build_agent(cfg, log)
    status = status_path(cfg.workdir, cfg.role, cfg.account)

    last_idle = False

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
        last_idle = not acted
        report(last_idle)
        if not acted:
            time.sleep(cfg.poll_seconds)
    report(True)
    return agent


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
    net = cfg.network
    if net is not None:
        argv += ["--keystore", str(net.keystore), "--chain-id", str(net.chain_id)]
        argv += ["--confirmations", str(net.confirmations)]
        if net.password_file is not None:
            argv += ["--password-file", str(net.password_file)]
        if net.password_env is not None:
            argv += ["--password-env", net.password_env]
    return argv


def testbed_keys(workdir: Path, slots: Sequence[int]) -> tuple[Path, dict[int, Path]]:
    """One keystore per role slot under ``workdir/keys`` and the password file opening them.

    The password is random (written once, mode 0600); the keystores use light scrypt, as
    befits throw-away keys on a local node. Existing files are reused, so a testbed run
    can resume in the same folder.
    """
    import secrets

    keys = workdir / "keys"
    password_file = keys / "password"
    if not password_file.exists():
        atomic_write_bytes(password_file, secrets.token_hex(16).encode() + b"\n", mode=0o600)
    password = password_file.read_text(encoding="utf-8").splitlines()[0]
    paths = {}
    for slot in slots:
        path = keys / f"role-{slot}.json"
        if not path.exists():
            create_keystore(path, password, scrypt_n=LIGHT_SCRYPT_N)
        paths[slot] = path
    return password_file, paths


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
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The paper's 1 + 3 + 3 testbed: anvil plus 7 role processes; returns the outcome.

    ``kill_after_claim=i`` SIGKILLs contributor ``i``'s process once its claim is on chain
    and starts it again (a crash and restart; the outcome must not change).
    """
    from cipherfuse.chain.keystore import keystore_address

    workdir.mkdir(parents=True, exist_ok=True)
    procs: list[tuple[RoleConfig, subprocess.Popen[bytes]]] = []
    password_file, keystores = testbed_keys(workdir, range(1, 8))
    with AnvilNode(accounts=1) as node:
        # The deployer signs with development key 0; each role with its own keystore.
        chain = http_chain(node.url, kind="anvil", dev_accounts=1)
        addresses: list[str] = [chain.accounts[0]]
        for slot in range(1, 8):
            address = keystore_address(keystores[slot])
            if address is None:
                raise RolesError(f"{keystores[slot]} does not name its address")
            chain._rpc("anvil_setBalance", [address, hex(10_000 * 10**18)])
            addresses.append(address)
        tasks, _ = TasksContract.deploy(chain, chain.accounts[0])
        log(f"anvil {node.url}; CipherfuseTasks at {tasks.address}")

        def network(slot: int) -> NetworkConfig:
            return NetworkConfig(
                rpc_url=node.url,
                chain_id=chain.chain_id,
                contract=tasks.address,
                keystore=keystores[slot],
                password_file=password_file,
                confirmations=0,
            )

        base = RoleConfig(
            role="initiator",
            rpc_url=node.url,
            contract=tasks.address,
            account=1,
            workdir=workdir,
            max_epochs=max_epochs,
            mnist_dir=mnist_dir,
            network=network(1),
        )

        def start(cfg: RoleConfig) -> None:
            logf = (workdir / "logs").joinpath(f"{cfg.role}-{cfg.account}.log")
            logf.parent.mkdir(parents=True, exist_ok=True)
            with logf.open("ab") as out:
                proc = subprocess.Popen(
                    _role_argv(cfg), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
            procs.append((cfg, proc))
            log(f"started {cfg.role} (account {cfg.account}) pid {proc.pid}")

        try:
            start(base)
            deadline = time.monotonic() + timeout
            task_id = None
            while task_id is None:
                body = _read_status(status_path(workdir, "initiator", 1))
                task_id = body.get("task_id") if body else None
                _check_alive(procs)
                if time.monotonic() > deadline:
                    raise RolesError("the initiator did not publish a task in time")
                time.sleep(0.5)
            log(f"task {task_id} published")
            for i in range(3):
                start(
                    replace(
                        base,
                        role="verifier",
                        account=5 + i,
                        task_id=task_id,
                        network=network(5 + i),
                    )
                )
            for i in range(3):
                start(
                    replace(
                        base,
                        role="contributor",
                        account=2 + i,
                        task_id=task_id,
                        index=i + 1,
                        behaviour=behaviours[i],
                        network=network(2 + i),
                    )
                )
            drill: Callable[[], bool] | None = None
            if kill_after_claim is not None:
                drill = _kill_after_claim(
                    tasks, int(task_id), procs, kill_after_claim, start, log, addresses
                )
            _drive_clock(chain, workdir, procs, deadline, log, drill)
        finally:
            for _, proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=10)
        return testbed_outcome(tasks, int(task_id), addresses)


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
    workdir: Path,
    procs: list[tuple[RoleConfig, subprocess.Popen[bytes]]],
    deadline: float,
    log: Callable[[str], None],
    drill: Callable[[], bool] | None = None,
) -> None:
    """Advance anvil's time when every live role is idle and waits for a later time."""
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        if drill is not None and drill():
            quiet_since = None
        _check_alive(procs)
        if all(proc.poll() == 0 for _, proc in procs):
            return
        states = [
            _read_status(status_path(workdir, cfg.role, cfg.account))
            for cfg, proc in procs
            if proc.poll() is None
        ]
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
