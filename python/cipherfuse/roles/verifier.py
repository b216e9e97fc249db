"""The verification contributor: register, judge drawn claims, vote, withdraw.

A claim is judged in honest-majority three-party computation with the other two members
(:class:`~cipherfuse.roles.secure.SecureJudge`, the secure mode) or, with the paper's
parameters, alone in cipherspace (:class:`~cipherfuse.roles.workload.CipherspaceJudge`).
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cipherfuse.chain import (
    ClaimStatus,
    ClaimSubmitted,
    CommitteeDrawn,
    ParticipantState,
    Role,
    abort_commitment,
    envelope_commitment,
    vote_commitment,
)
from cipherfuse.chain.tasks import BallotState, ClaimInfo
from cipherfuse.errors import CipherfuseError
from cipherfuse.roles.agent import FINAL, Agent, RoleContext
from cipherfuse.roles.behaviour import Judgement
from cipherfuse.roles.errors import RoleConfigError
from cipherfuse.roles.sealing import box_public_bytes, build_envelope, open_key_box, open_sealed
from cipherfuse.roles.secure import (
    BOX_SECRET_BYTES,
    CommitteeJob,
    SecureJudge,
    committee_members,
    member_bundle,
    member_envelope,
    parse_secure_blob,
    session_id,
)
from cipherfuse.validation import strict_int

#: Default bound on a claimed model's sealed blob, read and declared (1 GiB; the largest
#: demo payload is far below).
DEFAULT_MAX_MODEL_BYTES = 1 << 30


class Judge(Protocol):
    """Decides on a claimed model's payload (see :class:`~.workload.CipherspaceJudge`)."""

    def judge(self, claim_id: int, payload: bytes) -> Judgement:
        """The verdict on one claim."""

    def remember(self, claim_id: int, payload: bytes) -> None:
        """Add an accepted model to the MetaModel."""


class VerifierAgent(Agent):
    """A verification contributor for one task.

    Args:
        judge: a :class:`SecureJudge` (three-party judging with the committee; this agent
            registers its listening endpoint) or a cipherspace judge of a payload.
        vote_probability: the paper's unreliable verifier (Case II): with probability
            ``1 - vote_probability`` the vote is a coin flip instead of the judgement
            (1.0: always honest).
        stop_after_commit: fault injection: commit votes but never reveal them.
        max_model_bytes: the most bytes read for one claimed model (default
            :data:`DEFAULT_MAX_MODEL_BYTES`); a claim that declares more is rejected before
            any download, and a blob whose size differs from the declared one is rejected too.
    """

    role = "verifier"

    def __init__(
        self,
        ctx: RoleContext,
        account: str,
        state_dir: Path,
        task_id: int,
        judge: Judge | SecureJudge,
        *,
        vote_probability: float = 1.0,
        stop_after_commit: bool = False,
        start_block: int = 0,
        max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES,
    ) -> None:
        if not 0.0 <= vote_probability <= 1.0:
            raise RoleConfigError(f"vote_probability must be in [0, 1], got {vote_probability}")
        strict_int(max_model_bytes, "max_model_bytes", minimum=1, exact=True, error=RoleConfigError)
        self.max_model_bytes = max_model_bytes
        super().__init__(ctx, account, state_dir, start_block=start_block)
        self.task_id = task_id
        self.judge = judge
        self.vote_probability = vote_probability
        self.stop_after_commit = stop_after_commit
        if "box_key" not in self.state.data:
            raw = X25519PrivateKey.generate().private_bytes_raw()
            self.state.update(box_key=raw.hex(), decisions={})
        self._joined = False
        self._ballots: dict[int, BallotState] = {}
        self.box_key = X25519PrivateKey.from_private_bytes(
            bytes.fromhex(self.state.data["box_key"])
        )
        self.endpoint = b""
        if isinstance(judge, SecureJudge):
            # The registered box key is also this member's static channel key; the port is
            # kept across restarts (it is registered on chain).
            port = int(self.state.data.get("mpc_port", 0))
            self.endpoint = judge.bind(bytes.fromhex(self.state.data["box_key"]), port)
            if port != judge.port:
                self.state.update(mpc_port=judge.port)

    def busy(self) -> bool:
        """Whether a three-party computation for one of its claims is running."""
        return isinstance(self.judge, SecureJudge) and self.judge.busy()

    def background_results(self) -> int:
        """Verdicts of three-party computations so far."""
        return self.judge.verdicts() if isinstance(self.judge, SecureJudge) else 0

    # ------------------------------------------------------------ life cycle
    def step(self) -> bool:
        """Next due actions."""
        if self.done:
            return False
        task = self.task(self.task_id)
        now = self.now()
        if not self._joined:
            me = self.tasks.get_participant(self.task_id, self.account)
            if me.role == Role.NONE:
                if now + 1 >= task.join_end:
                    self.log("the join window has closed; nothing to do")
                    self.done = True
                    return False
                # The box key is registered on chain with the deposit (bound to this account).
                self.tasks.join_as_verifier(
                    self.account, self.task_id, box_public_bytes(self.box_key), self.endpoint
                )
                self.log(f"registered (deposit {task.verifier_deposit / 1e18} ETH)")
                self._joined = True
                return True
            self._joined = True
        self._collect_duties()
        acted = False
        for claim_id in list(self.state.data.get("claims", [])):
            if int(claim_id) not in self.finished:
                acted = self._duty(int(claim_id), now) or acted
        pending = [c for c in self.state.data.get("claims", []) if int(c) not in self.finished]
        if now > task.expiry and not pending:
            me = self.tasks.get_participant(self.task_id, self.account)
            unsettled = self.tasks.get_task(self.task_id).unsettled_claims
            if me.state == ParticipantState.ACTIVE and unsettled == 0:
                acted = (
                    self.try_tx(
                        "retire", lambda: self.tasks.retire_verifier(self.account, self.task_id)
                    )
                    or acted
                )
            acted = self.withdraw_credit() or acted
            me = self.tasks.get_participant(self.task_id, self.account)
            self.done = (
                me.state != ParticipantState.ACTIVE and self.tasks.credit_of(self.account) == 0
            )
        return acted

    def _collect_duties(self) -> None:
        claims: list[int] = list(self.state.data.get("claims", []))
        undrawn: list[int] = list(self.state.data.get("undrawn", []))
        new = False
        for event in self.poller.poll_typed():
            if isinstance(event, ClaimSubmitted) and event.task_id == self.task_id:
                undrawn.append(event.claim_id)
                new = True
            elif isinstance(event, CommitteeDrawn):
                if event.claim_id in undrawn:
                    undrawn.remove(event.claim_id)
                    new = True
                if self.account in event.members and event.claim_id not in claims:
                    claims.append(event.claim_id)
                    new = True
        if new:
            self.state.update(claims=claims, undrawn=undrawn)

    def _ballot(self, claim_id: int) -> BallotState:
        if claim_id not in self._ballots:
            self._ballots[claim_id] = self.tasks.ballot_of(claim_id, self.account)[1]
        return self._ballots[claim_id]

    def _duty(self, claim_id: int, now: int) -> bool:
        claim = self.claim(claim_id)
        if claim.task_id != self.task_id:
            self.finished.add(claim_id)
            return False
        ballot = self._ballot(claim_id)
        decisions: dict[str, dict[str, object]] = self.state.data.setdefault("decisions", {})
        acted = False
        if ballot == BallotState.MEMBER and now <= claim.commit_deadline:
            if str(claim_id) not in decisions:
                decision = self._decide(claim_id, claim, now)
                if decision is None:
                    return False
                decisions[str(claim_id)] = decision
                self.state.save()  # the salt is on disk before the commitment is sent
            d = decisions[str(claim_id)]
            salt = bytes.fromhex(str(d["salt"]))
            commitment = (
                abort_commitment(claim_id, self.account, salt)
                if d.get("abort")
                else vote_commitment(claim_id, self.account, bool(d["accept"]), salt)
            )
            if self.try_tx(
                f"commit vote on claim {claim_id}",
                lambda: self.tasks.commit_vote(self.account, claim_id, commitment),
            ):
                self.log(f"committed a hidden vote on claim {claim_id}")
                acted = True
            self._ballots.pop(claim_id, None)
        elif (
            ballot == BallotState.COMMITTED
            and claim.commit_deadline < now <= claim.reveal_deadline
            and not self.stop_after_commit
        ):
            d = decisions[str(claim_id)]
            salt = bytes.fromhex(str(d["salt"]))
            if self.try_tx(
                f"reveal vote on claim {claim_id}",
                lambda: (
                    self.tasks.reveal_abort(self.account, claim_id, salt)
                    if d.get("abort")
                    else self.tasks.reveal_vote(self.account, claim_id, bool(d["accept"]), salt)
                ),
            ):
                shown = "abort" if d.get("abort") else ("accept" if d["accept"] else "reject")
                self.log(f"revealed: {shown} claim {claim_id}")
                acted = True
            self._ballots.pop(claim_id, None)
            claim = self.claim(claim_id)
        if not self.stop_after_commit:
            if acted:
                claim = self.claim(claim_id)
            acted = self.settle_if_due(claim_id, claim) or acted
            if acted:
                claim = self.claim(claim_id)
        if claim.status in (ClaimStatus.ACCEPTED, ClaimStatus.RELEASED):
            self._remember(claim_id, claim)
        if claim.status in FINAL or claim.status == ClaimStatus.ACCEPTED:
            self.finished.add(claim_id)
        return acted

    def _decide(self, claim_id: int, claim: ClaimInfo, now: int) -> dict[str, object] | None:
        """Judge a claim; None while waiting for the key box."""
        judge = self.judge
        if isinstance(judge, SecureJudge) and judge.submitted(claim_id):
            # Its computation runs (or ended): no need to read the key boxes again, an
            # event scan of the chain on every step of a running computation.
            ended = judge.poll(claim_id)
            return None if ended is None else self._decision(claim_id, ended)
        box = self.tasks.key_boxes_of(claim_id).get(self.account) if claim.boxes_posted else None
        task = self.task(self.task_id)
        if box is None:
            if now < claim.commit_deadline - task.commit_window // 2:
                return None
            verdict = Judgement(False, 0.0, None, "no key box from the claimant in time")
            key_hex = ""
        elif claim.model_size > self.max_model_bytes:
            reason = f"declared model size {claim.model_size} exceeds {self.max_model_bytes} bytes"
            verdict, key_hex = Judgement(False, 0.0, None, reason), ""
        elif isinstance(self.judge, SecureJudge):
            pending = self._judge_secure(claim_id, claim, box, self.judge, now)
            if pending is None:
                return None
            verdict, key_hex = pending, ""
        else:
            verdict, key_hex = self._judge(claim_id, claim, box)
        return self._decision(claim_id, verdict, key_hex)

    def _decision(self, claim_id: int, verdict: Judgement, key_hex: str = "") -> dict[str, object]:
        """The decision to persist for ``verdict``: the vote (honest or, for an unreliable
        verifier, a coin flip), a fresh salt and the claim's sealing key (cipherspace)."""
        accept = verdict.accept
        honest = True
        salt = os.urandom(32)
        if self.vote_probability < 1.0 and not verdict.abort:
            rng = random.Random(hashlib.sha256(salt).digest())
            if rng.random() >= self.vote_probability:
                honest = False
                accept = rng.random() < 0.5
        shown = "abort" if verdict.abort else ("accept" if accept else "reject")
        self.log(
            f"claim {claim_id}: {verdict.reason} -> {shown}"
            + ("" if honest else " (unreliable: random vote)")
        )
        return {
            "accept": accept,
            "abort": verdict.abort,
            "salt": salt.hex(),
            "accuracy": verdict.accuracy,
            "baseline": verdict.baseline,
            "reason": verdict.reason,
            "honest": honest,
            "key": key_hex,
        }

    def fetch_model(self, claim: ClaimInfo, *, expected_size: int | None = None) -> bytes:
        """The claim's sealed blob, read with a byte limit (a DAG bomb fails fast).

        ``expected_size``, when known (a size the claim commits to), must match exactly;
        otherwise at most :attr:`max_model_bytes` bytes are read.
        """
        return self.ctx.store.get(
            claim.model_cid, max_bytes=self.max_model_bytes, expected_size=expected_size
        )

    def _judge(self, claim_id: int, claim: ClaimInfo, box: bytes) -> tuple[Judgement, str]:
        """Judge untrusted input: whatever it is, the outcome is a vote, never a dead judge.

        Every decoder raises a typed :class:`CipherfuseError` on hostile bytes; anything
        else that escapes decoding the claimant's data (a bug in a dependency, memory
        exhaustion) is also a reject vote, so a poisoned claim cannot stop its committee
        from committing and get them slashed.
        """
        try:
            key = open_key_box(box, self.box_key, claim_id=claim_id, member=self.account)
            envelope = build_envelope(key, claim.model_hash)
            # The commitment binds task and claimant: a claim copied from another fails here.
            if envelope_commitment(claim.task_id, claim.claimant, envelope) != (
                claim.envelope_commitment
            ):
                return Judgement(False, 0.0, None, "boxed key does not match the commitment"), ""
            blob = self.fetch_model(claim, expected_size=claim.model_size)
            if len(blob) != claim.model_size:
                reason = f"blob has {len(blob)} bytes, the claim declared {claim.model_size}"
                return Judgement(False, 0.0, None, reason), ""
            payload = open_sealed(blob, key, model_hash=claim.model_hash)
            assert not isinstance(self.judge, SecureJudge)
            return self.judge.judge(claim_id, payload), key.hex()
        except CipherfuseError as exc:
            return Judgement(False, 0.0, None, f"unusable model: {exc}"), ""
        except Exception as exc:
            why = f"unusable model (unexpected {type(exc).__name__}: {exc})"
            return Judgement(False, 0.0, None, why[:500]), ""

    def _judge_secure(
        self, claim_id: int, claim: ClaimInfo, box: bytes, judge: SecureJudge, now: int
    ) -> Judgement | None:
        """Start (or poll) this member's side of the claim's three-party computation.

        Returns None while it runs. Claims start in claim-id order: an earlier claim of
        this member still waiting for its key box holds later ones back, and so does an
        earlier claim of the task whose committee is not drawn yet (this member may be on
        it; the draws can land in any order), until half of this claim's commit window
        is left. So the members of overlapping committees do not wait on each other in a
        cycle. Hostile input (box, blob, directory entries) is a reject verdict, never an
        exception.
        """
        verdict = judge.poll(claim_id)
        if verdict is not None or judge.submitted(claim_id):
            return verdict
        task = self.task(self.task_id)
        if now < claim.commit_deadline - task.commit_window // 2:
            for earlier in map(int, self.state.data.get("undrawn", [])):
                if earlier < claim_id and self.claim(earlier).status == ClaimStatus.AWAITING_SEED:
                    return None
        decisions = self.state.data.get("decisions", {})
        for earlier in map(int, self.state.data.get("claims", [])):
            waiting = (
                earlier < claim_id
                and earlier not in self.finished
                and str(earlier) not in decisions
                and not judge.submitted(earlier)
            )
            if waiting and self.claim(earlier).status == ClaimStatus.VOTING:
                return None
        try:
            members = self.tasks.committee_of(claim_id)
            position = [m.lower() for m in members].index(self.account.lower())
            secret = open_key_box(
                box, self.box_key, claim_id=claim_id, member=self.account, size=BOX_SECRET_BYTES
            )
            blob = self.fetch_model(claim, expected_size=claim.model_size)
            if hashlib.sha256(blob).digest() != claim.model_hash:
                return Judgement(False, 0.0, None, "the blob does not match the claimed hash")
            parsed = parse_secure_blob(blob, judge.manifest)
            bundle = member_bundle(parsed, position, secret)
            expected = member_envelope(
                position,
                secret,
                release_key=bytes.fromhex(judge.manifest.release_key),
                model_hash=claim.model_hash,
            )
            refusal = None
            # The one envelope the contract will accept must release the shares judged here.
            if envelope_commitment(claim.task_id, claim.claimant, expected) != (
                claim.envelope_commitment
            ):
                refusal = (
                    "the claim's envelope commitment does not release my shares to the "
                    "initiator (the paid model would not be the judged one)"
                )
            directory = [self.tasks.verifier_key_of(self.task_id, m) for m in members]
            peers = committee_members(directory)
            images, labels = judge.images_for(parsed.labels)
        except CipherfuseError as exc:
            return Judgement(False, 0.0, None, f"unusable claim: {exc}")
        except Exception as exc:
            why = f"unusable claim (unexpected {type(exc).__name__}: {exc})"
            return Judgement(False, 0.0, None, why[:500])
        session = session_id(self.chain.chain_id, self.tasks.address, claim_id, claim.model_hash)
        judge.submit(CommitteeJob(claim_id, bundle, peers, session, images, labels, refusal))
        self.log(
            f"claim {claim_id}: joined its three-party judging as member {position} "
            f"({labels.shape[0]} check images of labels {list(parsed.labels)})"
        )
        return None

    def _remember(self, claim_id: int, claim: ClaimInfo) -> None:
        d = self.state.data.get("decisions", {}).get(str(claim_id))
        if not d or not d.get("key"):
            return
        try:
            payload = open_sealed(
                self.fetch_model(claim, expected_size=claim.model_size),
                bytes.fromhex(str(d["key"])),
                model_hash=claim.model_hash,
            )
            self.judge.remember(claim_id, payload)
        except Exception as exc:
            self.log(f"cannot add accepted claim {claim_id} to the MetaModel: {exc}")

    def wakeups(self) -> list[int]:
        """Half of the commit window (missing key box), the vote deadlines, expiry."""
        if self.done:
            return []
        task = self.task(self.task_id)
        times = [task.expiry + 1]
        for claim_id in self.state.data.get("claims", []):
            if int(claim_id) in self.finished:
                continue
            claim = self.claim(int(claim_id))
            if claim.status == ClaimStatus.VOTING:
                times.append(claim.commit_deadline - task.commit_window // 2)
            times += self.claim_wakeups(claim)
        return times
