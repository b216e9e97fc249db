"""The computing contributor: join, train, encrypt, seal, upload, claim, release, withdraw."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from cipherfuse.chain import (
    ClaimStatus,
    ParticipantState,
    Role,
    envelope_commitment,
    seed_commitment,
)
from cipherfuse.roles.agent import FINAL, Agent, RoleContext, objective_uri
from cipherfuse.roles.behaviour import BEHAVIOURS
from cipherfuse.roles.errors import RoleConfigError
from cipherfuse.roles.manifest import TaskManifest, fetch_manifest
from cipherfuse.roles.sealing import make_key_box, seal
from cipherfuse.roles.secure import ClaimMaterial

#: Produces the claim from the manifest and the published HE key (empty in the secure
#: mode): HE-encrypted model bytes (cipherspace judging; sealed here under one key), or
#: the secure mode's :class:`~cipherfuse.roles.secure.ClaimMaterial`.
PayloadMaker = Callable[[TaskManifest, bytes], "bytes | ClaimMaterial"]


class ContributorAgent(Agent):
    """A computing contributor for one task.

    Args:
        make_payload: trains the private model and returns its encrypted bytes
            (see :mod:`cipherfuse.roles.workload`).
        behaviour: ``honest``; Case II ``lazy``/``dishonest`` change what ``make_payload``
            trains (the caller picks it); ``never-release`` keeps the envelope after
            acceptance (the contract then forfeits reward and deposit to the task escrow).
    """

    role = "contributor"

    def __init__(
        self,
        ctx: RoleContext,
        account: str,
        state_dir: Path,
        task_id: int,
        make_payload: PayloadMaker,
        *,
        behaviour: str = "honest",
        start_block: int = 0,
    ) -> None:
        if behaviour not in BEHAVIOURS:
            raise RoleConfigError(f"behaviour must be one of {BEHAVIOURS}, got {behaviour!r}")
        super().__init__(ctx, account, state_dir, start_block=start_block)
        self.task_id = task_id
        self.make_payload = make_payload
        self.behaviour = behaviour

    def step(self) -> bool:
        """Next due action of the life cycle."""
        if self.done:
            return False
        task = self.task(self.task_id)
        now = self.now()
        if "claim_id" in self.state.data:
            return self._follow_claim(int(self.state.data["claim_id"]))
        me = self.tasks.get_participant(self.task_id, self.account)
        if me.role == Role.NONE:
            if now + 1 >= task.join_end:
                self.log("the join window has closed; nothing to do")
                self.done = True
                return False
            self.tasks.join_as_contributor(self.account, self.task_id)
            self.log(f"joined task {self.task_id} (deposit {task.contributor_deposit / 1e18} ETH)")
            return True
        if me.state == ParticipantState.LEFT:
            acted = self.withdraw_credit()
            self.done = self.tasks.credit_of(self.account) == 0
            return acted
        if "sealed_cid" not in self.state.data:
            self._prepare()
            return True
        if me.state == ParticipantState.ACTIVE:
            return self._claim(now, task.join_end, task.claim_end)
        return self._follow_claim(me.claim_id)

    def _prepare(self) -> None:
        manifest = fetch_manifest(self.ctx.store, objective_uri(self.tasks, self.task_id))
        key_blob = self.ctx.store.get(manifest.key_cid) if manifest.key_cid else b""
        what = (
            "sharing the whole model for three-party judging"
            if manifest.params == "secure"
            else "encrypting the first layer"
        )
        self.log(f"training ({self.behaviour}) and {what} ({manifest.params})")
        made = self.make_payload(manifest, key_blob)
        extra: dict[str, str] = {}
        if isinstance(made, ClaimMaterial):
            material = made
        else:
            sealed = seal(made)
            material = ClaimMaterial(sealed.blob, sealed.envelope, (sealed.key,))
            extra["sealing_key"] = sealed.key.hex()
        cid = self.ctx.store.put(material.blob)
        # Everything the claim and the release need is persisted before the claim is sent.
        self.state.update(
            sealed_cid=cid,
            model_hash=material.model_hash.hex(),
            box_secrets=[s.hex() for s in material.box_secrets],
            envelope=material.envelope.hex(),
            # Bound to this task and this claimant: a copy of it fails the judges' check.
            envelope_commitment=envelope_commitment(
                self.task_id, self.account, material.envelope
            ).hex(),
            model_size=len(material.blob),
            seed=os.urandom(32).hex(),
            **extra,
        )
        self.log(f"uploaded sealed model {cid} ({len(material.blob)} bytes)")

    def _claim(self, now: int, join_end: int, claim_end: int) -> bool:
        if now < join_end:
            return False
        if now >= claim_end:
            self.log("the claim window closed before the model was ready; leaving the task")
            ok = self.try_tx(
                "leave", lambda: self.tasks.leave_as_contributor(self.account, self.task_id)
            )
            return ok
        data = self.state.data
        seed = bytes.fromhex(data["seed"])
        claim_id, _ = self.tasks.submit_claim(
            self.account,
            self.task_id,
            data["sealed_cid"],
            bytes.fromhex(data["model_hash"]),
            int(data["model_size"]),
            seed_commitment(self.task_id, self.account, seed),
            bytes.fromhex(data["envelope_commitment"]),
        )
        self.state.update(claim_id=claim_id)
        self.log(f"claimed: claim {claim_id}, model {data['sealed_cid']}")
        return True

    def _follow_claim(self, claim_id: int) -> bool:
        data = self.state.data
        if data.get("claim_id") != claim_id:
            self.state.update(claim_id=claim_id)  # the claim was sent before a crash
        claim = self.claim(claim_id)
        acted = False
        if claim.status == ClaimStatus.AWAITING_SEED:
            if self.chain.block_number() <= claim.draw_block:
                if not self.ctx.dev_chain:
                    return False
                self.chain.mine(1)
            seed = bytes.fromhex(data["seed"])
            drawn: list[Sequence[str]] = []  # the members, once the draw is mined
            if self.try_tx(
                "reveal seed",
                lambda: drawn.append(self.tasks.draw_committee(self.account, claim_id, seed)[0]),
            ):
                self.log(f"revealed the seed; committee of claim {claim_id}: {drawn[0]}")
                acted = True
            claim = self.claim(claim_id)
        if claim.status == ClaimStatus.VOTING and not claim.boxes_posted:
            acted = self._deliver_boxes(claim_id) or acted
        # Settling one's own accepted claim locks its release, so a contributor that means to
        # withhold the envelope (Case II never-release) leaves settling to the others.
        if self.behaviour != "never-release" and self.settle_if_due(claim_id, claim):
            acted = True
            claim = self.claim(claim_id)
        if claim.status == ClaimStatus.ACCEPTED:
            if self.behaviour == "never-release":
                if not data.get("withheld_logged"):
                    self.log(f"claim {claim_id} accepted; withholding the envelope (Case II)")
                    self.state.update(withheld_logged=True)
            elif self.try_tx(
                "lock the release", lambda: self.tasks.commit_release(self.account, claim_id)
            ):
                acted = True
                claim = self.claim(claim_id)
        # Only with the release locked (forfeit ruled out) does the envelope leave this process.
        locked = claim.status == ClaimStatus.RELEASE_PENDING and self.behaviour != "never-release"
        if locked and self.try_tx(
            "release envelope",
            lambda: self.tasks.release_envelope(
                self.account, claim_id, bytes.fromhex(data["envelope"])
            ),
        ):
            self.log(f"released the envelope of claim {claim_id}")
            acted = True
            claim = self.claim(claim_id)
        if claim.status in FINAL:
            acted = self.withdraw_credit() or acted
            self.done = self.tasks.credit_of(self.account) == 0
        return acted

    def _deliver_boxes(self, claim_id: int) -> bool:
        """Post one key box per member, encrypted to its box key from the on-chain directory.

        Member ``i`` of the committee (in its on-chain order) gets ``box_secrets[i]``, or
        the single secret when there is one.
        """
        data = self.state.data
        secrets = [bytes.fromhex(s) for s in data.get("box_secrets", [data.get("sealing_key")])]
        members = self.tasks.committee_of(claim_id)
        if len(secrets) > 1 and len(secrets) != len(members):
            if not data.get("committee_mismatch_logged"):  # said once, not at every step
                self.log(
                    f"claim {claim_id}: {len(secrets)} share secrets for a committee of "
                    f"{len(members)}; secure judging needs a committee of {len(secrets)}"
                )
                self.state.update(committee_mismatch_logged=True)
            return False
        boxes = []
        for i, member in enumerate(members):
            box_key, _ = self.tasks.verifier_key_of(self.task_id, member)
            secret = secrets[i] if len(secrets) > 1 else secrets[0]
            boxes.append(make_key_box(box_key, secret, claim_id=claim_id, member=member))
        if not self.try_tx(
            "post key boxes", lambda: self.tasks.post_key_boxes(self.account, claim_id, boxes)
        ):
            return False
        self.log(f"posted the key boxes of claim {claim_id} to its committee")
        return True

    def wakeups(self) -> list[int]:
        """Join end (to claim) and the claim's deadlines."""
        if self.done:
            return []
        task = self.task(self.task_id)
        if "claim_id" in self.state.data:
            return self.claim_wakeups(self.claim(int(self.state.data["claim_id"])))
        return [task.join_end] if "sealed_cid" in self.state.data else []
