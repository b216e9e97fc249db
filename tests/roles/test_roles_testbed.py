"""The paper's 1 + 3 + 3 testbed as 7 processes on anvil (secure three-party judging over
channels between the verifier processes), with a contributor process killed (SIGKILL)
after its claim and restarted: the outcome and the money must be as defined.

Every role has its own work folder and its own embedded IPFS node (one private swarm);
what a role fetches from another comes through IPFS, not a shared folder. As root (with
iproute2) every role runs in its own network namespace and as its own user: the roles
reach anvil only on the host's bridge address and each other only on their own."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cipherfuse.chain import NodeError, find_anvil
from cipherfuse.chain.keystore import keystore_address
from cipherfuse.roles.config import demo_task_params
from cipherfuse.roles.hosts import namespaces_unavailable_reason, users_unavailable_reason
from cipherfuse.roles.testbed import run_testbed

REPO = Path(__file__).resolve().parents[2]
PARAMS = demo_task_params()


@pytest.fixture(scope="module")
def outcome() -> Iterator[dict[str, Any]]:
    try:
        os.environ.setdefault("CIPHERFUSE_ANVIL", str(find_anvil(REPO)))
    except NodeError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide anvil (.ci/setup.d/chain.sh runs npm ci): {exc}")
        pytest.skip(str(exc))
    lines: list[str] = []
    # Under /tmp, not pytest's 0700 tmp folder: the roles' own users must reach their folders.
    root = Path(tempfile.mkdtemp(prefix="cipherfuse-testbed-", dir="/tmp"))
    try:
        result = run_testbed(
            root,
            behaviours=("honest", "honest", "lazy"),
            max_epochs=3,
            timeout=900,
            kill_after_claim=1,
            log=lines.append,
        )
        result["log"] = lines
        result["root"] = root
        yield result
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_seven_processes_reach_the_defined_outcomes(outcome: dict[str, Any]) -> None:
    claims = {c["contributor"]: c for c in outcome["claims"]}
    assert claims[1]["outcome"] == "RELEASED" and claims[2]["outcome"] == "RELEASED"
    assert claims[3]["outcome"] == "REJECTED"
    assert any("killed contributor 1" in line for line in outcome["log"])
    steps = outcome["metamodel_accuracy"]
    # One MetaModel step per released claim, in claim-id order (which contributor claims
    # first depends on the kill and restart).
    released = sorted([claims[1]["claim_id"], claims[2]["claim_id"]])
    assert [s["claim_id"] for s in steps] == released
    assert all(isinstance(s["accuracy"], float) and s["accuracy"] > 0.3 for s in steps)


def test_testbed_money_is_as_defined_and_nothing_is_left(outcome: dict[str, Any]) -> None:
    w = outcome["withdrawn_wei"]
    assert w["contributor 1"] == PARAMS.contributor_deposit + PARAMS.reward_per_model
    assert w["contributor 2"] == PARAMS.contributor_deposit + PARAMS.reward_per_model
    assert w["contributor 3"] == 0
    for i in (1, 2, 3):
        assert w[f"verifier {i}"] == PARAMS.verifier_deposit + 3 * PARAMS.verifier_fee
    paid = 2 * PARAMS.reward_per_model + 9 * PARAMS.verifier_fee
    assert w["initiator"] == PARAMS.budget - paid + PARAMS.contributor_deposit
    assert outcome["contract_balance_wei"] == 0


def test_no_two_roles_share_a_folder(outcome: dict[str, Any]) -> None:
    root: Path = outcome["root"]
    folders = {name: Path(f).resolve() for name, f in outcome["role_folders"].items()}
    assert len(folders) == 7
    for a, fa in folders.items():
        for b, fb in folders.items():
            if a != b:  # disjoint: neither folder lies inside the other
                assert fa not in fb.parents and fb not in fa.parents and fa != fb, (a, b)
    # The testbed's own folder holds the role folders and the swarm key (and the roles'
    # user ids), nothing shared.
    users = outcome["isolation"]["users"]
    expected = ["roles", "swarm.key"] + (["role-users.json"] if users else [])
    assert sorted(p.name for p in root.iterdir()) == sorted(expected)
    assert sorted(p.name for p in (root / "roles").iterdir()) == sorted(
        f.name for f in folders.values()
    )
    for name, folder in folders.items():
        role = name.split()[0]
        assert (folder / "keys" / "account.json").is_file()
        assert (folder / "swarm.key").read_bytes() == (root / "swarm.key").read_bytes()
        assert (folder / "ipfs" / "config").is_file()  # its own node's repository
        assert not (folder / "store").exists() and not (folder / "mailbox").exists()
        # Its state files are its own account's only, its status file its own role's.
        address = keystore_address(folder / "keys" / "account.json")
        assert address is not None
        state = [p.name for p in (folder / "state").iterdir()]
        assert state and all(address.lower() in n.lower() for n in state), (name, state)
        status = [p.name for p in (folder / "status").iterdir() if not p.name.startswith(".")]
        assert status and all(n.startswith(role + "-") for n in status), (name, status)


def test_roles_fetched_what_others_published_through_ipfs(outcome: dict[str, Any]) -> None:
    blocks = outcome["ipfs_block_bytes"]
    claimed = sum(c.get("model_size", 0) for c in outcome["claims"])
    assert claimed > 0
    for i in (1, 2, 3):
        # A verifier publishes nothing: what its node holds it fetched from the swarm (the
        # task manifest, the verification data and every claimed model it judged).
        assert blocks[f"verifier {i}"] >= claimed, blocks
    assert blocks["initiator"] > 0 and all(blocks[f"contributor {i}"] > 0 for i in (1, 2, 3))


def test_roles_ran_as_separate_hosts_where_this_host_allows(outcome: dict[str, Any]) -> None:
    iso = outcome["isolation"]
    names = [Path(f).name for f in outcome["role_folders"].values()]
    if namespaces_unavailable_reason() is not None:
        assert not iso["namespaces"] and iso["warnings"]
        return
    assert iso["namespaces"] and iso["chain_host"].startswith("10.")
    addresses = iso["addresses"]
    assert sorted(addresses) == sorted(names) and len(set(addresses.values())) == 7
    log = "\n".join(outcome["log"])
    for name, folder in outcome["role_folders"].items():
        here = addresses[Path(folder).name]
        # Its IPFS node listened on its own namespace address (the role's own log says so).
        role_log = "".join(p.read_text() for p in (Path(folder) / "logs").iterdir())
        assert "IPFS node" in role_log and f" on {here} port 4001" in role_log, name
    assert "anvil http://" + iso["chain_host"] in log
    if users_unavailable_reason(outcome["root"]) is None:
        uids = iso["uids"]
        assert iso["users"] and len(set(uids.values())) == 7
        for folder in outcome["role_folders"].values():
            st = Path(folder).stat()
            assert st.st_uid == uids[Path(folder).name] and st.st_mode & 0o777 == 0o700
