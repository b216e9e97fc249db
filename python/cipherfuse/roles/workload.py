"""The learning work of each role: keys, training, encryption, cipherspace judging, fusion.

Everything here reuses :mod:`cipherfuse.nn`, :mod:`cipherfuse.fusion`, :mod:`cipherfuse.he`
and :mod:`cipherfuse.he.nn`; the agents in this package only move bytes and money.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cipherfuse import he
from cipherfuse.fusion import FeatureExtractor, FusionConfig, train_fusion_head
from cipherfuse.he.nn import EncryptedModel, cipherspace_features, decrypt_model, encrypt_model
from cipherfuse.nn import TrainedModel
from cipherfuse.roles.behaviour import Judgement
from cipherfuse.roles.errors import SealError
from cipherfuse.roles.learning import FloatArray, fusion_key
from cipherfuse.roles.manifest import TaskManifest, VerificationData


def encrypt_for_task(
    model: TrainedModel,
    manifest: TaskManifest,
    published_key: he.KeySwitchKey | he.PublicKey,
    *,
    seed: bytes | None = None,
) -> bytes:
    """The contributor's payload: the model with its first layer HE-encrypted, as bytes."""
    enc = encrypt_model(
        model,
        published_key,
        weight_scale=manifest.weight_scale,
        input_scale=manifest.input_scale,
        seed=seed,
    )
    return enc.to_bytes()


def parse_payload(payload: bytes, manifest: TaskManifest) -> EncryptedModel:
    """Parse a payload and check it is encrypted under the task's key and scales."""
    enc = EncryptedModel.from_bytes(payload)
    if enc.key_fingerprint != manifest.key_id or enc.params_name != manifest.params:
        raise SealError(
            f"the model is encrypted under key {enc.key_fingerprint} ({enc.params_name}), "
            f"not the task's {manifest.key_id} ({manifest.params})"
        )
    if enc.weight_scale != manifest.weight_scale or enc.input_scale != manifest.input_scale:
        raise SealError("the model's quantization scales differ from the task's")
    return enc


@dataclass(frozen=True)
class _Member:
    """One model in the verifier's MetaModel: its labels, cached features and ``W_i``."""

    labels: tuple[int, ...]
    fit: FloatArray
    check: FloatArray
    #: The model's plaintext output-layer weights for its labels (Strategy II's ``W_i``).
    weights: FloatArray


class CipherspaceJudge:
    """A verifier's MetaModel in cipherspace, built from the models it has accepted.

    Features of every model are computed once (cipherspace first block, keyless) on the
    verification data's fit and check parts and cached.
    """

    def __init__(self, manifest: TaskManifest, data: VerificationData) -> None:
        self.manifest = manifest
        self.data = data
        self.accepted: dict[int, _Member] = {}
        self.pending: dict[int, _Member] = {}
        s1, s2 = manifest.fusion_epochs
        self.fusion = FusionConfig(stage1_epochs=s1, stage2_epochs=s2, progress=False)

    def features(self, extractor: FeatureExtractor) -> tuple[FloatArray, FloatArray]:
        """Features of the fit and check parts."""
        return extractor(self.data.fit_x), extractor(self.data.check_x)

    def _member(self, enc: EncryptedModel) -> _Member:
        extractor = cipherspace_features(enc)
        fit, check = self.features(extractor)
        return _Member(tuple(enc.labels), fit, check, extractor.output_weights())

    def _meta_accuracy(self, members: list[_Member], tag: str) -> float:
        head = train_fusion_head(
            [m.fit for m in members],
            self.data.fit_y,
            [m.labels for m in members],
            "II",
            fusion_key(tag),
            self.fusion,
            block_weights=[m.weights for m in members],
        )
        pred = head.predict_from_features([m.check for m in members])
        return float(np.mean(pred == self.data.check_y))

    def own_accuracy(self, enc: EncryptedModel, check_features: FloatArray) -> float:
        """The claimed model's own classifier (its plaintext ``head`` layer applied to the
        cipherspace features) on the check samples of its own labels."""
        head = enc.plain_params.get("head")
        if not isinstance(head, dict) or set(head) != {"kernel", "bias"}:
            raise SealError("the model has no plaintext output layer 'head'")
        own = np.isin(self.data.check_y, enc.labels)
        if not own.any():
            return 0.0
        logits = check_features[own] @ np.asarray(head["kernel"]) + np.asarray(head["bias"])
        return float(np.mean(np.argmax(logits, axis=1) == self.data.check_y[own]))

    def judge(self, claim_id: int, payload: bytes) -> Judgement:
        """Vote on a claimed model.

        Every model must first classify the check samples of its own labels with at least
        the task's criterion (its own output layer on cipherspace features: an untrained or
        wrongly trained model fails here). The first model is accepted on that; later ones
        must also improve the MetaModel's accuracy on all check samples.
        """
        enc = parse_payload(payload, self.manifest)
        entry = self._member(enc)
        self.pending[claim_id] = entry
        own = self.own_accuracy(enc, entry.check)
        criterion = self.manifest.threshold
        if own < criterion:
            why = f"own-label accuracy {own:.3f} below the criterion {criterion:.2f}"
            return Judgement(False, own, None, why)
        current = [self.accepted[c] for c in sorted(self.accepted)]
        if not current:
            why = f"first model: own-label accuracy {own:.3f} >= criterion {criterion:.2f}"
            return Judgement(True, own, None, why)
        before = self._meta_accuracy(current, f"base-{sorted(self.accepted)}")
        after = self._meta_accuracy([*current, entry], f"claim-{claim_id}")
        why = f"own-label {own:.3f}; MetaModel {before:.3f} -> {after:.3f}"
        return Judgement(after > before, after, before, why)

    def remember(self, claim_id: int, payload: bytes) -> None:
        """Add an accepted (settled on chain) model to the MetaModel."""
        if claim_id in self.accepted:
            return
        if claim_id in self.pending:
            self.accepted[claim_id] = self.pending.pop(claim_id)
            return
        self.accepted[claim_id] = self._member(parse_payload(payload, self.manifest))


def decrypt_payload(payload: bytes, manifest: TaskManifest, sk: he.SecretKey) -> TrainedModel:
    """The initiator's view after release: the plaintext model."""
    return decrypt_model(parse_payload(payload, manifest), sk)
