"""Development keys: deterministic, publicly known private keys for local test chains.

The embedded py-evm chain funds them at genesis and :class:`~cipherfuse.chain.anvil.AnvilNode`
funds them right after start (``anvil_setBalance``; anvil itself runs with no accounts), so
tests, the demo and the testbed sign locally exactly as a real network needs. Anyone can
recompute these keys: never send real ETH to them.
"""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from cipherfuse.chain.errors import ChainParameterError

_DOMAIN = b"cipherfuse development key v1"
#: Most development keys one chain gets.
MAX_DEV_KEYS = 1000


def dev_private_key(index: int) -> bytes:
    """``keccak256("cipherfuse development key v1" || index as 4 bytes)``."""
    if not 0 <= index < MAX_DEV_KEYS:
        raise ChainParameterError(f"dev key index must be in [0, {MAX_DEV_KEYS}), got {index}")
    return keccak(_DOMAIN + index.to_bytes(4, "big"))


def dev_accounts(count: int) -> list[LocalAccount]:
    """The first ``count`` development accounts."""
    if not 0 <= count <= MAX_DEV_KEYS:
        raise ChainParameterError(f"count must be in [0, {MAX_DEV_KEYS}], got {count}")
    return [Account.from_key(dev_private_key(i)) for i in range(count)]
