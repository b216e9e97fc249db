"""Task terms and role configuration (flags or a TOML file).

:func:`demo_task_params`: the demo's task terms. :class:`RoleConfig`: one role process's
settings, from flags or a TOML file (:func:`load_role_config`), the network keys read by
:func:`network_from`.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cipherfuse.chain import TaskParams
from cipherfuse.chain.netconfig import NETWORK_KEYS, NetworkConfig, network_config_from
from cipherfuse.errors import ParameterError
from cipherfuse.roles.errors import RoleConfigError

ETHER = 10**18


def demo_task_params(window: int = 3600, threshold: float = 0.7) -> TaskParams:
    """The demo's task: 3 paid claims, committee of 3, 1 ETH per accepted model."""
    return TaskParams(
        min_accuracy_bps=round(threshold * 10_000),
        committee_size=3,
        max_claims=3,
        reward_per_model=ETHER,
        verifier_fee=ETHER // 100,
        contributor_deposit=ETHER,  # the contract asks for at least the reward
        verifier_deposit=ETHER // 5,
        join_window=window,
        claim_window=window,
        draw_window=window,
        commit_window=window,
        reveal_window=window,
        release_window=window,
    )


ROLES = ("initiator", "contributor", "verifier")
#: Where a role keeps the content it publishes and fetches (see
#: :func:`~cipherfuse.roles.process.open_role_store`).
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
