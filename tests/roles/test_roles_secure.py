"""Secure (three-party) judging in the roles: codecs, the opened count against the
plaintext reference, and faults through the real contract on the embedded chain.

The models are small real CNN-free classifiers (no training): the check labels are the
plaintext predictions of one of them, so its exact accuracy is known in advance.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import jax
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from tests.mpc.protocol_util import TamperingTransport, member_outcomes

from cipherfuse.chain import ParticipantState, TasksContract, embedded_chain
from cipherfuse.errors import CipherfuseError
from cipherfuse.mpc import (
    Transport,
    in_memory_network,
    plaintext_count,
    quantize_classifier,
    share_model,
)
from cipherfuse.mpc.channel import ChannelConfig
from cipherfuse.mpc.errors import ShareInconsistency
from cipherfuse.mpc.runtime import MemberResult, run_three_members
from cipherfuse.mpc.sharing import reconstruct_model
from cipherfuse.nn import DenseSpec, FlattenSpec, ModelConfig, TrainedModel
from cipherfuse.nn.model import init_params
from cipherfuse.nn.quantize import integer_forward
from cipherfuse.roles.agent import RoleContext
from cipherfuse.roles.behaviour import Judgement
from cipherfuse.roles.clock import run_agents
from cipherfuse.roles.config import demo_task_params
from cipherfuse.roles.contributor import ContributorAgent
from cipherfuse.roles.errors import RoleConfigError, SealError
from cipherfuse.roles.initiator import InitiatorAgent, InitiatorSetup
from cipherfuse.roles.manifest import TaskManifest, VerificationData
from cipherfuse.roles.sealing import (
    box_public_bytes,
    new_box_key,
    open_release,
    open_sealed,
    seal_release,
)
from cipherfuse.roles.secure import (
    BLOB_MAGIC,
    ENVELOPE_BYTES,
    ClaimMaterial,
    CommitteeJob,
    SecureJudge,
    member_bundle,
    open_secure_release,
    parse_secure_blob,
    prepare_secure_claim,
)
from cipherfuse.roles.verifier import VerifierAgent
from cipherfuse.storage import LocalStore

PARAMS = demo_task_params()
Q, P = 1000, 2**7  # the demo's input and weight scales
CONFIG = ModelConfig(
    name="tiny-secure", input_shape=(4, 4, 1), layers=(FlattenSpec(), DenseSpec(8))
)


def tiny_model(key: int, labels: tuple[int, ...] = tuple(range(10))) -> TrainedModel:
    return TrainedModel(CONFIG, init_params(CONFIG, jax.random.PRNGKey(key)), labels)


#: The initiator's release key in the unit tests (a fixed test key).
RELEASE = X25519PrivateKey.from_private_bytes(hashlib.sha256(b"test release key").digest())


def manifest() -> TaskManifest:
    return TaskManifest(
        params="secure",
        key_cid="",
        key_id="",
        verification_cid="bafy-unused",
        threshold=0.7,
        weight_scale=P,
        input_scale=Q,
        fusion_epochs=(1, 1),
        nonce="00" * 16,
        release_key=box_public_bytes(RELEASE).hex(),
    )


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 4, 4, 1), dtype=np.float32)


def labelled_by(model: TrainedModel, x: np.ndarray) -> np.ndarray:
    """Labels = the quantized model's own plaintext predictions (accuracy 1 by design)."""
    qm = quantize_classifier(model, weight_scale=P, input_scale=Q)
    logits = integer_forward(qm, np.rint(x.astype(np.float64) * Q).astype(np.int64))
    return np.argmax(logits, axis=1).astype(np.int64)


def vdata(model: TrainedModel) -> VerificationData:
    fit_x, check_x = images(40, 1), images(60, 2)
    return VerificationData(fit_x, labelled_by(model, fit_x), check_x, labelled_by(model, check_x))


# ---------------------------------------------------------------- codecs and the count


def secure_count(material: ClaimMaterial, judge: SecureJudge) -> tuple[int, int]:
    parsed = parse_secure_blob(material.blob, judge.manifest)
    bundles = tuple(member_bundle(parsed, i, material.box_secrets[i]) for i in range(3))
    x, y = judge.images_for(parsed.labels)
    results = run_three_members(bundles, in_memory_network(timeout=30), x, y)  # type: ignore[arg-type]
    assert len({r.count for r in results}) == 1
    return results[0].count, int(y.shape[0])


def test_the_opened_count_equals_the_plaintext_fixed_point_count() -> None:
    reference, other = tiny_model(0), tiny_model(1, labels=(0, 3, 5, 7))
    judge = SecureJudge(manifest(), vdata(reference))
    for model in (reference, other):
        count, n = secure_count(prepare_secure_claim(model, judge.manifest), judge)
        x, y = judge.images_for(model.labels)
        qm = quantize_classifier(model, weight_scale=P, input_scale=Q)
        assert count == plaintext_count(qm, x, y)
        if model is reference:
            assert count == n == 60  # labelled by its own predictions
    assert secure_count(prepare_secure_claim(other, judge.manifest), judge)[0] < n


def test_each_position_holds_exactly_its_two_shares() -> None:
    model = tiny_model(0)
    material = prepare_secure_claim(model, manifest())
    parsed = parse_secure_blob(material.blob, manifest())
    s0_s1 = material.box_secrets[0]
    # Member 0 holds both seeds but cannot open W2: neither seed is the share key.
    for key in (s0_s1[:32], s0_s1[32:]):
        with pytest.raises(SealError):
            open_sealed(parsed.sealed_shares, key)
    # Nobody holds K_m: no member secret opens the model file.
    for secret in material.box_secrets:
        for key in (secret[:32], secret[32:]):
            with pytest.raises(SealError):
                open_sealed(parsed.sealed_model, key)
    bundles = [member_bundle(parsed, i, material.box_secrets[i]) for i in range(3)]
    assert [sorted([*b.seeds, *b.words]) for b in bundles] == [[0, 1], [1, 2], [0, 2]]
    # Two members together reconstruct the model (the documented threshold).
    qm = quantize_classifier(model, weight_scale=P, input_scale=Q)
    rebuilt = reconstruct_model(bundles[1], bundles[2])
    for a, b in zip(rebuilt.layers, qm.layers, strict=True):
        if hasattr(a, "weight"):
            np.testing.assert_array_equal(a.weight, b.weight)  # type: ignore[union-attr]


def test_a_wrong_seed_in_a_box_is_an_inconsistent_share() -> None:
    material = prepare_secure_claim(tiny_model(0), manifest())
    parsed = parse_secure_blob(material.blob, manifest())
    bad = bytearray(material.box_secrets[1])
    bad[0] ^= 1
    with pytest.raises(ShareInconsistency):
        member_bundle(parsed, 1, bytes(bad)).parameter_shares()


def test_the_release_is_checked_against_the_judged_shares() -> None:
    judged, swapped = tiny_model(0), tiny_model(2)
    material = prepare_secure_claim(judged, manifest())
    got = open_secure_release(material.blob, material.envelope, manifest(), RELEASE)
    assert got.labels == judged.labels
    np.testing.assert_array_equal(
        got.params["head"]["kernel"], np.asarray(judged.params["head"]["kernel"])
    )
    # A contributor that shares one model and seals another: the initiator refuses it.
    other = prepare_secure_claim(swapped, manifest())
    parsed, parsed_other = (parse_secure_blob(m.blob, manifest()) for m in (material, other))
    forged = material.blob[: len(material.blob) - len(parsed.sealed_model)] + (
        parsed_other.sealed_model
    )
    env = bytearray(release_plaintext(material))
    env[6:38] = release_plaintext(other)[6:38]  # K_m of the other blob
    env[-32:] = hashlib.sha256(forged).digest()
    pub = box_public_bytes(RELEASE)
    resealed = seal_release(pub, bytes(env), model_hash=hashlib.sha256(forged).digest())
    with pytest.raises(SealError, match="not the model the committee judged"):
        open_secure_release(forged, resealed, manifest(), RELEASE)
    # The sealed envelope is bound to its blob: copied to another claim it does not open.
    with pytest.raises(SealError, match="not for this key or was altered"):
        open_secure_release(other.blob, material.envelope, manifest(), RELEASE)


def release_plaintext(material: ClaimMaterial) -> bytes:
    digest = hashlib.sha256(material.blob).digest()
    return open_release(material.envelope, RELEASE, model_hash=digest, size=ENVELOPE_BYTES)


def test_the_public_envelope_opens_the_model_for_the_initiator_alone() -> None:
    """The envelope is public on chain once released; with it, anyone but the initiator
    (a committee member with its box secret included) still cannot open the model file or
    the third share."""
    material = prepare_secure_claim(tiny_model(0), manifest())
    parsed = parse_secure_blob(material.blob, manifest())
    digest = hashlib.sha256(material.blob).digest()
    for outsider in (new_box_key(), X25519PrivateKey.from_private_bytes(bytes(range(32)))):
        with pytest.raises(SealError):
            open_release(material.envelope, outsider, model_hash=digest, size=ENVELOPE_BYTES)
        with pytest.raises(SealError):
            open_secure_release(material.blob, material.envelope, manifest(), outsider)
    # No 32-byte window of the public envelope is a key of the blob's sealed sections.
    for section in (parsed.sealed_model, parsed.sealed_shares):
        for at in range(len(material.envelope) - 31):
            with pytest.raises(SealError):
                open_sealed(section, material.envelope[at : at + 32])
    # The plaintext behind it (what the initiator sees) does open both.
    plain = release_plaintext(material)
    open_sealed(parsed.sealed_model, plain[6:38])
    open_sealed(parsed.sealed_shares, plain[38:70])


def test_a_secure_manifest_needs_a_release_key() -> None:
    with pytest.raises(RoleConfigError, match="release_key"):
        dataclasses.replace(manifest(), release_key="")
    with pytest.raises(RoleConfigError, match="release_key"):
        dataclasses.replace(manifest(), release_key="AB" * 32)
    with pytest.raises(RoleConfigError, match="release_key"):
        dataclasses.replace(manifest(), params="paper")
    assert TaskManifest.from_bytes(manifest().to_bytes()) == manifest()


def test_hostile_blobs_raise_typed_errors_only() -> None:
    material = prepare_secure_claim(tiny_model(0), manifest())
    blob = material.blob
    hlen = int.from_bytes(blob[len(BLOB_MAGIC) : len(BLOB_MAGIC) + 4], "little")
    header_end = len(BLOB_MAGIC) + 4 + hlen
    rng = np.random.default_rng(0)
    cases = [blob[:cut] for cut in range(0, header_end + 9, 7)]
    for _ in range(200):
        flipped = bytearray(blob[: header_end + 8])
        flipped[int(rng.integers(len(flipped)))] ^= 1 << int(rng.integers(8))
        cases.append(bytes(flipped) + blob[header_end + 8 :])
    deep = b"[" * 100_000 + b"]" * 100_000
    cases.append(BLOB_MAGIC + len(deep).to_bytes(4, "little") + deep + bytes(8))
    parsed_ok = 0
    for case in cases:
        try:
            parse_secure_blob(case, manifest())
            parsed_ok += 1
        except CipherfuseError:
            pass
    assert parsed_ok < len(cases)
    wrong_scale = dataclasses.replace(manifest(), weight_scale=P * 2)
    with pytest.raises(SealError, match="scales"):
        parse_secure_blob(blob, wrong_scale)


# ---------------------------------------------------------------- through the contract


class SilentJudge(SecureJudge):
    """A member that registers an endpoint and never takes part in the computation."""

    def submit(self, job: CommitteeJob) -> None:
        return None


class LyingJudge(SecureJudge):
    """A member that sends a wrong share at the final opening and votes accept anyway.

    The frames of the opening are found by a dry run on a model of the same layout: the
    message schedule depends only on the public parameters (layout, number of images).
    """

    lied = 0

    def _run_member(self, job: CommitteeJob, transport: Transport) -> MemberResult:
        dry = share_model(quantize_classifier(tiny_model(5), weight_scale=P, input_scale=Q))
        network = list(in_memory_network(10.0))
        me = job.bundle.party
        counter = TamperingTransport(network[me], lambda _to, _k, data: data)
        network[me] = counter
        member_outcomes(dry.bundles, network, job.images, job.labels)
        # the last four frames are: opening to each peer, outcome to each peer
        opening = {counter.sent_frames - 4, counter.sent_frames - 3}

        def lie(_to: int, k: int, data: bytes) -> bytes:
            if k not in opening:
                return data
            self.lied += 1
            word = (int.from_bytes(data[:8], "little") + 1) % 2**64
            return word.to_bytes(8, "little") + data[8:]

        return super()._run_member(job, TamperingTransport(transport, lie))

    def _evaluate(self, job: CommitteeJob) -> Judgement:
        super()._evaluate(job)
        return Judgement(True, 1.0, None, "accept whatever the count")


class SecureWorld:
    """The seven roles on the embedded chain with three-party judging (no training)."""

    def __init__(
        self,
        root: Path,
        makers: list[object],
        silent: int | None = None,
        judges: dict[int, type[SecureJudge]] | None = None,
    ) -> None:
        self.chain = embedded_chain(accounts=8)
        self.tasks, _ = TasksContract.deploy(self.chain, self.chain.accounts[0])
        self.store = LocalStore(root / "store")
        self.lines: list[str] = []
        ctx = RoleContext(self.tasks, self.store, self.lines.append)
        self.reference = tiny_model(0)
        data = vdata(self.reference)
        setup = InitiatorSetup(
            params=PARAMS,
            he_params="secure",
            threshold=0.7,
            verification=data,
            test=(data.check_x, data.check_y),
            fusion_epochs=(1, 1),
        )
        acc = list(self.chain.accounts)
        self.initiator = InitiatorAgent(ctx, acc[1], root / "state", setup)
        while self.initiator.task_id is None:
            self.initiator.step()
        task_id = int(self.initiator.task_id)
        from cipherfuse.roles.manifest import fetch_manifest

        m = fetch_manifest(self.store, self.initiator.state.data["manifest_cid"])
        channel = ChannelConfig(timeout=5.0, connect_timeout=5.0)
        self.verifiers = [
            VerifierAgent(
                ctx,
                acc[5 + i],
                root / "state",
                task_id,
                {silent: SilentJudge, **(judges or {})}.get(i, SecureJudge)(
                    m, data, channel=channel
                ),
            )
            for i in range(3)
        ]
        self.contributors = [
            ContributorAgent(ctx, acc[2 + i], root / "state", task_id, maker)  # type: ignore[arg-type]
            for i, maker in enumerate(makers)
        ]

    def run(self) -> None:
        try:
            run_agents([self.initiator, *self.verifiers, *self.contributors], self.chain)
        finally:
            for v in self.verifiers:
                assert isinstance(v.judge, SecureJudge)
                v.judge.close()

    def withdrawn(self, account: str) -> int:
        from cipherfuse.chain import EventPoller, Withdrawn

        return sum(
            e.amount
            for e in EventPoller(self.tasks).poll_typed()
            if isinstance(e, Withdrawn) and e.account == account
        )

    def withdrawn_deposit(self, contributor: int) -> int:
        return self.withdrawn(self.contributors[contributor].account)

    def decisions(self, claim_id: int) -> list[dict[str, object]]:
        return [
            v.state.data["decisions"][str(claim_id)]
            for v in self.verifiers
            if str(claim_id) in v.state.data.get("decisions", {})
        ]


def honest(model: TrainedModel):  # type: ignore[no-untyped-def]
    return lambda m, _key: prepare_secure_claim(model, m)


def test_good_and_bad_models_are_judged_in_three_party_computation(tmp_path: Path) -> None:
    world = SecureWorld(tmp_path, [honest(tiny_model(0)), honest(tiny_model(1))])
    read_boxes = world.tasks.key_boxes_of
    reads_while_judged: list[int] = []

    def key_boxes_of(claim_id: int) -> dict[str, bytes]:
        judges = [v.judge for v in world.verifiers]
        if all(isinstance(j, SecureJudge) and j.submitted(claim_id) for j in judges):
            reads_while_judged.append(claim_id)
        return read_boxes(claim_id)

    world.tasks.key_boxes_of = key_boxes_of  # type: ignore[method-assign]
    world.run()
    # Once a member's computation runs, it stops scanning the chain for its key box.
    assert reads_while_judged == []
    good, bad = (int(c.state.data["claim_id"]) for c in world.contributors)
    assert world.tasks.get_claim(good).status.name == "RELEASED"
    assert world.tasks.get_claim(bad).status.name == "REJECTED"
    for d in world.decisions(good):
        assert d["accept"] is True and d["accuracy"] == 1.0
    x, y = world.verifiers[0].judge.images_for(tuple(range(10)))  # type: ignore[union-attr]
    qm = quantize_classifier(tiny_model(1), weight_scale=P, input_scale=Q)
    for d in world.decisions(bad):
        assert d["accept"] is False and d["accuracy"] == plaintext_count(qm, x, y) / len(y)
    # The initiator received exactly the judged model.
    received = world.initiator.models[good]
    np.testing.assert_array_equal(
        received.params["head"]["kernel"], np.asarray(tiny_model(0).params["head"]["kernel"])
    )
    assert world.tasks.balance() == 0


def corrupt_seed(positions: tuple[int, ...]):  # type: ignore[no-untyped-def]
    """A contributor that boxes a wrong ``s0`` to the given positions (0 and/or 2)."""

    def make(m: TaskManifest, _key: bytes) -> ClaimMaterial:
        material = prepare_secure_claim(tiny_model(0), m)
        secrets = list(material.box_secrets)
        for i in positions:
            secrets[i] = bytes([secrets[i][0] ^ 1]) + secrets[i][1:]  # s0 leads both secrets
        return dataclasses.replace(material, box_secrets=tuple(secrets))

    return make


def test_inconsistent_shares_seen_by_two_members_are_rejected(tmp_path: Path) -> None:
    world = SecureWorld(tmp_path, [corrupt_seed((0, 2))])
    world.run()
    claim_id = int(world.contributors[0].state.data["claim_id"])
    assert world.tasks.get_claim(claim_id).status.name == "REJECTED"
    decisions = {v.account: v.state.data["decisions"][str(claim_id)] for v in world.verifiers}
    positions = world.tasks.committee_of(claim_id)
    for member in (positions[0], positions[2]):  # their own shares fail: the claimant's fault
        d = decisions[member]
        assert d["accept"] is False and not d["abort"] and "my shares" in str(d["reason"])
    assert decisions[positions[1]]["abort"] is True  # a peer's report is not attributable
    assert world.withdrawn_deposit(0) == 0


def test_inconsistent_shares_seen_by_one_member_are_inconclusive(tmp_path: Path) -> None:
    world = SecureWorld(tmp_path, [corrupt_seed((2,))])
    world.run()
    claim_id = int(world.contributors[0].state.data["claim_id"])
    claim = world.tasks.get_claim(claim_id)
    assert claim.status.name == "INCONCLUSIVE"
    assert (claim.accept_votes, claim.reject_votes) == (0, 1)
    assert world.withdrawn_deposit(0) == PARAMS.contributor_deposit


def test_a_silent_member_is_slashed_and_nobody_honest_loses(tmp_path: Path) -> None:
    """The silent member never votes and loses its deposit; the two others time out and
    reveal abort ballots: the claim is inconclusive, the honest contributor gets its deposit
    back and the honest members their fees."""
    world = SecureWorld(tmp_path, [honest(tiny_model(0))], silent=1)
    world.run()
    claim_id = int(world.contributors[0].state.data["claim_id"])
    assert world.tasks.get_claim(claim_id).status.name == "INCONCLUSIVE"
    decisions = world.decisions(claim_id)
    assert len(decisions) == 2
    assert all(d["abort"] and "silent" in str(d["reason"]) for d in decisions)
    task_id = int(world.initiator.task_id or 0)
    silent = world.verifiers[1].account
    assert world.tasks.get_participant(task_id, silent).state == ParticipantState.SLASHED
    assert world.withdrawn_deposit(0) == PARAMS.contributor_deposit
    for i in (0, 2):
        account = world.verifiers[i].account
        assert world.withdrawn(account) == PARAMS.verifier_deposit + PARAMS.verifier_fee
    assert world.withdrawn(silent) == 0
    assert world.tasks.balance() == 0


def test_a_wrong_share_at_the_opening_leaves_a_bad_model_unreleased(tmp_path: Path) -> None:
    """A member that wants a bad model accepted lies at the opening of the count: both
    honest members see two different copies of the same component, abort and reveal abort
    ballots; the liar's accept is no majority, so the claim ends inconclusive, the model is
    not released and no honest party loses anything."""
    world = SecureWorld(tmp_path, [honest(tiny_model(1))], judges={1: LyingJudge})
    world.run()
    liar = world.verifiers[1].judge
    assert isinstance(liar, LyingJudge) and liar.lied == 2
    claim_id = int(world.contributors[0].state.data["claim_id"])
    claim = world.tasks.get_claim(claim_id)
    assert claim.status.name == "INCONCLUSIVE"
    assert (claim.accept_votes, claim.reject_votes) == (1, 0)
    honest_members = (world.verifiers[0], world.verifiers[2])
    for member in honest_members:
        d = member.state.data["decisions"][str(claim_id)]
        assert d["abort"] is True and "ProtocolAbort" in str(d["reason"])
    assert claim_id not in world.initiator.models
    assert world.withdrawn_deposit(0) == PARAMS.contributor_deposit
    for member in honest_members:
        assert world.withdrawn(member.account) == PARAMS.verifier_deposit + PARAMS.verifier_fee
    assert world.tasks.balance() == 0


def test_a_hostile_blob_is_a_reject_vote_not_a_dead_judge(tmp_path: Path) -> None:
    def junk(m: TaskManifest, _key: bytes) -> ClaimMaterial:
        material = prepare_secure_claim(tiny_model(0), m)
        return dataclasses.replace(material, blob=BLOB_MAGIC + b"\xff\xff\xff\x7f" + b"{")

    world = SecureWorld(tmp_path, [junk])
    world.run()
    claim_id = int(world.contributors[0].state.data["claim_id"])
    assert world.tasks.get_claim(claim_id).status.name == "REJECTED"
    assert all(
        isinstance(d["reason"], str) and "unusable claim" in d["reason"]
        for d in world.decisions(claim_id)
    )
