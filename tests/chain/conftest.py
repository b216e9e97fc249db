"""Fixtures: every chain test runs on the embedded py-evm chain and on a real anvil node."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cipherfuse.chain import AnvilNode, Chain, NodeError, TasksContract, embedded_chain, http_chain
from cipherfuse.chain.anvil import find_anvil

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = 40


def anvil_binary_or_skip() -> Path:
    """The pinned anvil; skipped locally without it, a failure in CI."""
    try:
        return find_anvil(REPO_ROOT)
    except NodeError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide anvil (.ci/setup.d/chain.sh runs npm ci): {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[AnvilNode]:
    """One anvil process for the session (tests isolate themselves with snapshots)."""
    node = AnvilNode(accounts=ACCOUNTS, binary=anvil_binary_or_skip())
    node.start()
    yield node
    node.stop()


@pytest.fixture(params=["embedded", "anvil"])
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    """A fresh chain state with ``ACCOUNTS`` funded accounts, on each backend."""
    if request.param == "embedded":
        yield embedded_chain(ACCOUNTS)
        return
    node: AnvilNode = request.getfixturevalue("anvil_node")
    anvil = http_chain(node.url, kind="anvil", dev_accounts=ACCOUNTS)
    snap = anvil.snapshot()
    yield anvil
    anvil.revert(snap)


@pytest.fixture
def tasks(chain: Chain) -> TasksContract:
    """A freshly deployed CipherfuseTasks."""
    contract, _ = TasksContract.deploy(chain, chain.accounts[0])
    return contract
