"""Secure (three-party) judging in the roles: codecs, the opened count against the
plaintext reference, and faults through the real contract on the embedded chain.

The models are small real CNN-free classifiers (no training): the check labels are the
plaintext predictions of one of them, so its exact accuracy is known in advance.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
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
from cipherfuse.mpc.errors import EncodingError, ShareInconsistency
from cipherfuse.mpc.runtime import MemberResult, run_three_members
from cipherfuse.mpc.sharing import reconstruct_model
from cipherfuse.nn import DenseSpec, FlattenSpec, ModelConfig, TrainedModel
from cipherfuse.nn.model import init_params
from cipherfuse.nn.quantize import integer_forward
from cipherfuse.nn.serialize import model_to_bytes
from cipherfuse.roles.agent import RoleContext
from cipherfuse.roles.behaviour import Judgement
from cipherfuse.roles.clock import run_agents
from cipherfuse.roles.config import demo_task_params
from cipherfuse.roles.contributor import ContributorAgent
from cipherfuse.roles.errors import RoleConfigError, SealError
from cipherfuse.roles.initiator import InitiatorAgent, InitiatorSetup
from cipherfuse.roles.manifest import TaskManifest, VerificationData
from cipherfuse.roles.sealing import (
    RELEASE_PIECE_BYTES,
    box_public_bytes,
    new_box_key,
    open_release_piece,
    open_sealed,
    seal,
    seal_release_piece,
)
from cipherfuse.roles.secure import (
    BLOB_MAGIC,
    BOXED_PIECE,
    ENVELOPE_MAGIC,
    HELD_SECRETS,
    ClaimMaterial,
    CommitteeJob,
    SecureJudge,
    envelope_pieces,
    member_bundle,
    member_envelope,
    model_file_key,
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
    for key in (s0_s1[:32], s0_s1[32:64]):
        with pytest.raises(SealError):
            open_sealed(parsed.sealed_shares, key)
    # Nobody holds K_m: it needs all three released secrets and each member holds two.
    for position, secret in enumerate(material.box_secrets):
        held = (secret[:32], secret[32:64])
        for key in held:
            with pytest.raises(SealError):
                open_sealed(parsed.sealed_model, key)
        windows = [
            view[at : at + 32]
            for view in (secret, material.envelope)
            for at in range(len(view) - 31)
        ]
        a, b = HELD_SECRETS[position]
        for guess in windows:
            trio = [b""] * 3
            trio[a], trio[b], trio[3 - a - b] = held[0], held[1], guess
            with pytest.raises(SealError):
                open_sealed(parsed.sealed_model, model_file_key(*trio))
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


def release_plaintext(material: ClaimMaterial) -> tuple[bytes, bytes, bytes]:
    """What the initiator reads from the envelope: ``s0, s1, K_w``."""
    digest = hashlib.sha256(material.blob).digest()
    s0, s1, k_w = (
        open_release_piece(piece, RELEASE, model_hash=digest, index=j)
        for j, piece in enumerate(envelope_pieces(material.envelope))
    )
    return s0, s1, k_w


def envelope_of(pieces: list[bytes]) -> bytes:
    return ENVELOPE_MAGIC + b"".join(pieces)


def test_the_release_is_the_judged_model() -> None:
    judged = tiny_model(0)
    material = prepare_secure_claim(judged, manifest())
    release = open_secure_release(material.blob, material.envelope, manifest(), RELEASE)
    assert release.problem == ""
    assert release.model.labels == judged.labels
    np.testing.assert_array_equal(
        release.model.params["head"]["kernel"], np.asarray(judged.params["head"]["kernel"])
    )
    reference = quantize_classifier(judged, weight_scale=P, input_scale=Q)
    for got, want in zip(release.judged.layers, reference.layers, strict=True):
        if hasattr(want, "weight"):
            np.testing.assert_array_equal(got.weight, want.weight)  # type: ignore[union-attr]
            np.testing.assert_array_equal(got.bias, want.bias)  # type: ignore[union-attr]
    # The envelope is bound to its blob: copied to another claim it does not open.
    other = prepare_secure_claim(tiny_model(2), manifest())
    with pytest.raises(SealError, match="not for this key or was altered"):
        open_secure_release(other.blob, material.envelope, manifest(), RELEASE)


def test_a_model_file_that_is_not_the_judged_model_yields_the_judged_model() -> None:
    """A contributor that shares one model and seals another (or junk) as its model file:
    the initiator still receives the judged model, mapped back to floats."""
    judged, swapped = tiny_model(0), tiny_model(2)
    material = prepare_secure_claim(judged, manifest())
    parsed = parse_secure_blob(material.blob, manifest())
    s0, s1, k_w = release_plaintext(material)
    for payload in (model_to_bytes(swapped), b"not a model file"):
        sealed = seal(payload, key=model_file_key(s0, s1, k_w))
        forged = material.blob[: len(material.blob) - len(parsed.sealed_model)] + sealed.blob
        digest = hashlib.sha256(forged).digest()
        pub = box_public_bytes(RELEASE)
        envelope = envelope_of(
            [
                seal_release_piece(pub, v, model_hash=digest, index=j)
                for j, v in enumerate((s0, s1, k_w))
            ]
        )
        release = open_secure_release(forged, envelope, manifest(), RELEASE)
        assert "model file is not used" in release.problem
        assert release.model.labels == judged.labels
        expected = np.rint(np.asarray(judged.params["head"]["kernel"], np.float64) * P) / P
        np.testing.assert_array_equal(np.asarray(release.model.params["head"]["kernel"]), expected)


def test_released_shares_that_are_not_the_judged_ones_are_refused() -> None:
    material = prepare_secure_claim(tiny_model(0), manifest())
    other = prepare_secure_claim(tiny_model(0), manifest())  # same model, fresh seeds
    digest = hashlib.sha256(material.blob).digest()
    pub = box_public_bytes(RELEASE)
    secrets = list(release_plaintext(material))
    for j, replacement in enumerate(release_plaintext(other)):
        wrong = list(secrets)
        wrong[j] = replacement
        envelope = envelope_of(
            [seal_release_piece(pub, v, model_hash=digest, index=i) for i, v in enumerate(wrong)]
        )
        with pytest.raises(SealError):
            open_secure_release(material.blob, envelope, manifest(), RELEASE)


def test_each_member_rebuilds_the_committed_envelope() -> None:
    """Every position rebuilds exactly the committed envelope from its box; an envelope
    with one wrong piece differs for exactly the two members that hold its secret."""
    material = prepare_secure_claim(tiny_model(0), manifest())
    digest = hashlib.sha256(material.blob).digest()
    pub = box_public_bytes(RELEASE)

    def rebuilt(secrets: tuple[bytes, ...]) -> list[bytes]:
        return [
            member_envelope(i, secrets[i], release_key=pub, model_hash=digest) for i in range(3)
        ]

    assert rebuilt(material.box_secrets) == [material.envelope] * 3
    # Deterministic, but bound to claim and position: another hash or index, other bytes.
    s0 = material.box_secrets[0][:32]
    assert (
        seal_release_piece(pub, s0, model_hash=digest, index=0)
        == envelope_pieces(material.envelope)[0]
    )
    assert (
        seal_release_piece(pub, s0, model_hash=bytes(32), index=0)
        != envelope_pieces(material.envelope)[0]
    )
    assert (
        seal_release_piece(pub, s0, model_hash=digest, index=1)
        != envelope_pieces(material.envelope)[0]
    )
    for j in range(3):
        pieces = envelope_pieces(material.envelope)
        pieces[j] = seal_release_piece(pub, bytes(range(32)), model_hash=digest, index=j)
        cheat = envelope_of(pieces)
        # The cheating contributor boxes the bad piece to the member that cannot rebuild it.
        boxes = list(material.box_secrets)
        blind = next(i for i, k in BOXED_PIECE.items() if k == j)
        boxes[blind] = boxes[blind][:64] + pieces[j]
        caught = {i for i, env in enumerate(rebuilt(tuple(boxes))) if env != cheat}
        assert caught == {i for i, held in HELD_SECRETS.items() if j in held}


def test_the_public_envelope_opens_the_model_for_the_initiator_alone() -> None:
    """The envelope is public on chain once released; with it, anyone but the initiator
    (a committee member with its box secret included) still cannot open the model file or
    the third share."""
    material = prepare_secure_claim(tiny_model(0), manifest())
    parsed = parse_secure_blob(material.blob, manifest())
    digest = hashlib.sha256(material.blob).digest()
    for outsider in (new_box_key(), X25519PrivateKey.from_private_bytes(bytes(range(32)))):
        for j, piece in enumerate(envelope_pieces(material.envelope)):
            with pytest.raises(SealError):
                open_release_piece(piece, outsider, model_hash=digest, index=j)
        with pytest.raises(SealError):
            open_secure_release(material.blob, material.envelope, manifest(), outsider)
    # No 32-byte window of the public envelope is a key of the blob's sealed sections.
    for section in (parsed.sealed_model, parsed.sealed_shares):
        for at in range(len(material.envelope) - 31):
            with pytest.raises(SealError):
                open_sealed(section, material.envelope[at : at + 32])
    # The plaintext behind it (what the initiator sees) does open both.
    s0, s1, k_w = release_plaintext(material)
    open_sealed(parsed.sealed_model, model_file_key(s0, s1, k_w))
    open_sealed(parsed.sealed_shares, k_w)


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


def bad_boxed_piece(position: int):  # type: ignore[no-untyped-def]
    """An honest envelope, but a wrong envelope piece boxed to ``position``."""

    def make(m: TaskManifest, _key: bytes) -> ClaimMaterial:
        material = prepare_secure_claim(tiny_model(0), m)
        secrets = list(material.box_secrets)
        secrets[position] = secrets[position][:64] + bytes(RELEASE_PIECE_BYTES)
        return dataclasses.replace(material, box_secrets=tuple(secrets))

    return make


@pytest.mark.parametrize(
    "maker", [corrupt_seed((2,)), bad_boxed_piece(1)], ids=["wrong-seed", "wrong-boxed-piece"]
)
def test_a_claimant_fault_seen_by_one_member_is_inconclusive(tmp_path: Path, maker) -> None:  # type: ignore[no-untyped-def]
    """One member's shares or boxed envelope piece are wrong: it rejects, the two others
    abort, the claim is inconclusive and the contributor gets its deposit back."""
    world = SecureWorld(tmp_path, [maker])
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


def envelope_cheat(piece: int, *, box_it: bool = True):  # type: ignore[no-untyped-def]
    """A contributor whose committed envelope releases a wrong secret at ``piece``.

    With ``box_it`` the bad piece also goes into the box of the member that cannot rebuild
    it (the smart cheat); without, only the committed envelope is wrong.
    """

    def make(m: TaskManifest, _key: bytes) -> ClaimMaterial:
        material = prepare_secure_claim(tiny_model(0), m)
        pieces = envelope_pieces(material.envelope)
        pieces[piece] = seal_release_piece(
            bytes.fromhex(m.release_key),
            bytes(range(32)),
            model_hash=material.model_hash,
            index=piece,
        )
        secrets = list(material.box_secrets)
        if box_it:
            blind = next(i for i, k in BOXED_PIECE.items() if k == piece)
            secrets[blind] = secrets[blind][:64] + pieces[piece]
        return ClaimMaterial(material.blob, envelope_of(pieces), tuple(secrets))

    return make


@pytest.mark.parametrize("piece", [0, 2])
def test_an_envelope_that_would_not_release_the_judged_model_is_rejected(
    tmp_path: Path, piece: int
) -> None:
    """The envelope gap: a claim whose committed envelope does not release the judged
    shares (here a wrong ``s0`` or ``K_w``, boxed so that the one member that cannot rebuild
    that piece sees nothing wrong) is rejected by the two members that hold the secret;
    nothing is paid and nothing is released."""
    world = SecureWorld(tmp_path, [envelope_cheat(piece)])
    world.run()
    claim_id = int(world.contributors[0].state.data["claim_id"])
    claim = world.tasks.get_claim(claim_id)
    assert claim.status.name == "REJECTED"
    assert (claim.accept_votes, claim.reject_votes) == (0, 2)
    decisions = {v.account: v.state.data["decisions"][str(claim_id)] for v in world.verifiers}
    positions = world.tasks.committee_of(claim_id)
    for i, member in enumerate(positions):
        d = decisions[member]
        if piece in HELD_SECRETS[i]:
            assert d["accept"] is False and not d["abort"]
            assert "envelope commitment does not release my shares" in str(d["reason"])
        else:
            assert d["abort"] is True  # its peers refused: not attributable from its view
    assert world.withdrawn_deposit(0) == 0
    assert claim_id not in world.initiator.models
    # The two majority voters earn their fees; the aborting member is not slashed (an abort
    # ballot is paid only when a claim ends inconclusive).
    for i, member in enumerate(positions):
        fee = PARAMS.verifier_fee if piece in HELD_SECRETS[i] else 0
        assert world.withdrawn(member) == PARAMS.verifier_deposit + fee
    assert world.tasks.balance() == 0


def test_an_accepted_claim_with_a_junk_model_file_still_delivers_the_judged_model(
    tmp_path: Path,
) -> None:
    """The model file is the one part no member can check: with junk there, the claim is
    accepted and paid as judged, and the initiator receives the judged model."""

    def make(m: TaskManifest, _key: bytes) -> ClaimMaterial:
        material = prepare_secure_claim(tiny_model(0), m)
        parsed = parse_secure_blob(material.blob, m)
        s0, s1 = material.box_secrets[0][:32], material.box_secrets[0][32:64]
        k_w = material.box_secrets[1][32:64]
        junk = seal(b"junk", key=model_file_key(s0, s1, k_w)).blob
        blob = material.blob[: len(material.blob) - len(parsed.sealed_model)] + junk
        digest = hashlib.sha256(blob).digest()
        pub = bytes.fromhex(m.release_key)
        pieces = [
            seal_release_piece(pub, v, model_hash=digest, index=j)
            for j, v in enumerate((s0, s1, k_w))
        ]
        secrets = tuple(material.box_secrets[i][:64] + pieces[BOXED_PIECE[i]] for i in range(3))
        return ClaimMaterial(blob, envelope_of(pieces), secrets)

    world = SecureWorld(tmp_path, [make])
    world.run()
    claim_id = int(world.contributors[0].state.data["claim_id"])
    assert world.tasks.get_claim(claim_id).status.name == "RELEASED"
    received = world.initiator.models[claim_id]
    expected = np.rint(np.asarray(tiny_model(0).params["head"]["kernel"], np.float64) * P) / P
    np.testing.assert_array_equal(np.asarray(received.params["head"]["kernel"]), expected)
    record = world.initiator.state.data["processed"][str(claim_id)]
    assert "model file is not used" in str(record["model_file"])


def test_the_gas_report_uses_the_secure_modes_sizes() -> None:
    """The chain's gas report (and the fixed gas limits checked against it) measures key
    boxes and envelopes of the default mode's sizes."""
    from cipherfuse.chain import gasreport
    from cipherfuse.roles.sealing import make_key_box

    material = prepare_secure_claim(tiny_model(0), manifest())
    box = make_key_box(
        box_public_bytes(new_box_key()),
        material.box_secrets[0],
        claim_id=1,
        member="0x" + "11" * 20,
    )
    assert len(box) == gasreport.KEY_BOX_BYTES
    assert len(material.envelope) == gasreport.ENVELOPE_BYTES


def test_a_layout_larger_than_the_uploaded_shares_is_refused_before_any_allocation() -> None:
    """A header may declare any architecture; its size is bounded by the share section the
    contributor actually uploaded: a 2^27-parameter output layer over a tiny blob is refused
    while its layout is parsed, before a weight array exists. A layout one word off the
    uploaded share section is refused too."""
    material = prepare_secure_claim(tiny_model(0), manifest())
    blob = material.blob
    hlen = int.from_bytes(blob[len(BLOB_MAGIC) : len(BLOB_MAGIC) + 4], "little")
    start = len(BLOB_MAGIC) + 4

    def with_widths(hidden: int, classes: int) -> bytes:
        header = json.loads(blob[start : start + hlen])
        first, last = header["layout"]["layers"][1], header["layout"]["layers"][2]
        first["weight_shape"] = [first["weight_shape"][0], hidden]
        last["weight_shape"] = [hidden, classes]
        raw = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        return BLOB_MAGIC + len(raw).to_bytes(4, "little") + raw + blob[start + hlen :]

    with pytest.raises(EncodingError, match="layout declares more than"):
        parse_secure_blob(with_widths(8, 2**23), manifest())
    with pytest.raises(SealError, match="share section has"):
        parse_secure_blob(with_widths(7, 10), manifest())  # 27 words fewer than uploaded
    parse_secure_blob(blob, manifest())  # the honest blob still parses
