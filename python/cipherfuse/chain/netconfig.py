"""One role's connection to a real network: node, chain id, account, gas, confirmations.

A :class:`NetworkConfig` is read from the flat keys of a role's TOML file (see
``docs/deployment.md`` for the reference) or built from command-line flags; every field is
validated with a one-line :class:`NetworkConfigError`. :meth:`NetworkConfig.open` connects
to the node (checking its chain id before anything is signed), unlocks the keystore and
returns the chain with the account's :class:`~cipherfuse.chain.signer.LocalSigner`.

Storage settings (``storage``, ``ipfs_*``) are role keys, read by
:func:`cipherfuse.roles.config.load_role_config`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from eth_utils.address import is_address

from cipherfuse.chain.errors import ChainError
from cipherfuse.chain.fees import GWEI, FeePolicy
from cipherfuse.chain.keystore import PasswordSource
from cipherfuse.chain.signer import SendPolicy
from cipherfuse.errors import ParameterError
from cipherfuse.validation import strict_int


class NetworkConfigError(ParameterError, ChainError):
    """A network setting is missing or invalid (the message names it)."""


@dataclass(frozen=True)
class NetworkConfig:
    """Settings of one role on one network.

    Attributes:
        rpc_url: the node's JSON-RPC endpoint (``http(s)://`` or ``ws(s)://``).
        chain_id: the chain the role means to use; a node serving another is refused.
        contract: the ``CipherfuseTasks`` address (None before ``cipherfuse deploy``).
        keystore: the account's V3 keystore file.
        password_file: a file whose first line is the keystore password.
        password_env: an environment variable holding it (neither: prompt).
        confirmations: blocks on top of a transaction's block before it counts.
        gas_limit_cap: most gas one transaction may use.
        max_fee_gwei: most gwei per gas ever offered (None: no cap).
        priority_fee_gwei: fixed tip (None: from the node's fee history).
        fee_bump_percent: fee increase of a replacement for a stuck transaction.
        resend_after_s: seconds unmined before a transaction is replaced.
        timeout_s: seconds to wait for one transaction before giving up.
    """

    rpc_url: str
    chain_id: int
    keystore: Path
    contract: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    confirmations: int = 2
    gas_limit_cap: int = 8_000_000
    max_fee_gwei: float | None = None
    priority_fee_gwei: float | None = None
    fee_bump_percent: int = 15
    resend_after_s: float = 180.0
    timeout_s: float = 1800.0

    def __post_init__(self) -> None:
        if not isinstance(self.rpc_url, str) or not self.rpc_url.startswith(
            ("http://", "https://", "ws://", "wss://")
        ):
            raise NetworkConfigError(
                f"rpc_url must be an http(s):// or ws(s):// URL, got {self.rpc_url!r}"
            )
        strict_int(
            self.chain_id, "chain_id", minimum=1, maximum=2**53 - 1, error=NetworkConfigError
        )
        if self.contract is not None and not (
            isinstance(self.contract, str) and is_address(self.contract)
        ):
            raise NetworkConfigError(f"contract must be a 0x address, got {self.contract!r}")
        if self.password_file is not None and self.password_env is not None:
            raise NetworkConfigError("give password_file or password_env, not both")
        if self.password_env is not None and (
            not isinstance(self.password_env, str) or not self.password_env
        ):
            raise NetworkConfigError("password_env must name an environment variable")
        for name, low, high in (
            ("confirmations", 0, 1000),
            ("gas_limit_cap", 21_000, 100_000_000),
            ("fee_bump_percent", 10, 500),
        ):
            strict_int(
                getattr(self, name), name, minimum=low, maximum=high, error=NetworkConfigError
            )
        for name in ("max_fee_gwei", "priority_fee_gwei"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise NetworkConfigError(f"{name} must be a number >= 0, got {value!r}")
        if self.max_fee_gwei is not None and self.max_fee_gwei <= 0:
            raise NetworkConfigError("max_fee_gwei must be > 0")
        for name in ("resend_after_s", "timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value <= 0:
                raise NetworkConfigError(f"{name} must be a number of seconds > 0, got {value!r}")

    def password_source(self) -> PasswordSource:
        """Where the keystore password comes from."""
        return PasswordSource(file=self.password_file, env=self.password_env)

    def send_policy(self) -> SendPolicy:
        """The signer's policy these settings describe."""
        cap = None if self.max_fee_gwei is None else int(self.max_fee_gwei * GWEI)
        tip = None if self.priority_fee_gwei is None else int(self.priority_fee_gwei * GWEI)
        return SendPolicy(
            confirmations=self.confirmations,
            gas_limit_cap=self.gas_limit_cap,
            fees=FeePolicy(max_fee_cap=cap, priority_fee=tip),
            fee_bump_percent=self.fee_bump_percent,
            resend_after_s=float(self.resend_after_s),
            timeout_s=float(self.timeout_s),
            poll_max_s=1.0,
        )

    def open(
        self,
        *,
        journal_dir: Path | None = None,
        kind: str = "rpc",
        prompt: Callable[[str], str] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> tuple[Any, Any]:
        """Connect, check the chain id, unlock the keystore: ``(Chain, LocalSigner)``.

        ``journal_dir`` keeps the account's nonce journal (a role's work folder).

        Raises:
            NodeError: the node does not answer.
            ChainIdMismatchError: the node serves another chain (nothing is signed).
            KeystoreError: missing/corrupt keystore, wrong or unreadable password.
        """
        from cipherfuse.chain.backends import http_chain, websocket_chain
        from cipherfuse.chain.keystore import unlock_keystore

        account = unlock_keystore(self.keystore, self.password_source(), prompt=prompt)
        policy = self.send_policy()
        backend: Any = kind
        if self.rpc_url.startswith(("ws://", "wss://")):
            chain = websocket_chain(self.rpc_url, backend, chain_id=self.chain_id, policy=policy)
        else:
            chain = http_chain(self.rpc_url, backend, chain_id=self.chain_id, policy=policy)
        journal = None
        if journal_dir is not None:
            journal = journal_dir / f"nonces-{account.address}-{self.chain_id}.json"
        return chain, chain.add_account(account, journal_path=journal, log=log)


#: Keys of :class:`NetworkConfig` as they appear in a TOML file.
NETWORK_KEYS = frozenset(f.name for f in fields(NetworkConfig))


def network_config_from(body: Mapping[str, Any], base: Path | None = None) -> NetworkConfig:
    """A :class:`NetworkConfig` from TOML keys; relative paths are taken from ``base``.

    Raises:
        NetworkConfigError: a key is unknown, missing, or out of range.
    """
    unknown = set(body) - NETWORK_KEYS
    if unknown:
        raise NetworkConfigError(
            f"unknown network keys {sorted(unknown)}; allowed: {sorted(NETWORK_KEYS)}"
        )
    values = dict(body)
    for key in ("rpc_url", "chain_id", "keystore"):
        if key not in values:
            raise NetworkConfigError(f"missing required key {key!r}")
    for key in ("keystore", "password_file"):
        if values.get(key) is not None:
            if not isinstance(values[key], str | Path):
                raise NetworkConfigError(f"{key} must be a path string, got {values[key]!r}")
            path = Path(values[key]).expanduser()
            values[key] = path if path.is_absolute() or base is None else base / path
    return NetworkConfig(**values)


def load_network_config(path: Path) -> NetworkConfig:
    """Read a network TOML file (relative paths are relative to the file's folder)."""
    try:
        body = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise NetworkConfigError(f"cannot read config {path}: {exc}") from exc
    try:
        return network_config_from(body, path.parent)
    except NetworkConfigError as exc:
        raise NetworkConfigError(f"{path}: {exc}") from exc


def render_network_config(config: NetworkConfig) -> str:
    """The TOML text of ``config`` (what :func:`load_network_config` reads back)."""
    lines = []
    for f in fields(NetworkConfig):
        value = getattr(config, f.name)
        if value is None:
            continue
        if isinstance(value, Path):
            value = str(value)
        if isinstance(value, tuple):
            lines.append(f"{f.name} = [{', '.join(_toml_str(v) for v in value)}]")
        elif isinstance(value, str):
            lines.append(f"{f.name} = {_toml_str(value)}")
        else:
            lines.append(f"{f.name} = {value}")
    return "\n".join(lines) + "\n"


def _toml_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
