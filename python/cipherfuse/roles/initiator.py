"""The application initiator: keys, task publication, settlement, decryption, fusion, refunds."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cipherfuse import he
from cipherfuse.chain import ClaimStatus, ClaimSubmitted, TaskParams, TaskPublished
from cipherfuse.chain.errors import ChainError, ContractRevertError
from cipherfuse.errors import CipherfuseError
from cipherfuse.files import atomic_write_bytes
from cipherfuse.fusion import FusionConfig, MetaModel
from cipherfuse.nn import TrainedModel
from cipherfuse.roles.agent import FINAL, Agent, RoleContext
from cipherfuse.roles.errors import RoleConfigError, SealError
from cipherfuse.roles.learning import (
    FloatArray,
    IntArray,
    fuse_plain_model,
    he_keys,
    plain_features,
)
from cipherfuse.roles.manifest import TaskManifest, VerificationData, new_nonce
from cipherfuse.roles.sealing import box_public_bytes, new_box_key, open_with_envelope
from cipherfuse.roles.secure import COMMITTEE, open_secure_release


@dataclass(frozen=True)
class InitiatorSetup:
    """What the initiator brings: the task's terms and its data."""

    params: TaskParams
    he_params: str
    threshold: float
    verification: VerificationData
    test: tuple[FloatArray, IntArray]
    weight_scale: int = 2**7
    input_scale: int = 1000
    fusion_epochs: tuple[int, int] = (6, 12)


#: Turns (manifest, released payload, secret key) into a plaintext model.
Decryptor = Callable[[bytes, TaskManifest, he.SecretKey], TrainedModel]


class InitiatorAgent(Agent):
    """The application initiator of one task (publishes it on the first step).

    With ``setup.he_params == "secure"`` the committee judges in three-party computation
    and no HE key exists; with ``"paper"`` the initiator generates the paper's IVHE keys
    and decrypts each released model.
    """

    role = "initiator"

    def __init__(
        self,
        ctx: RoleContext,
        account: str,
        state_dir: Path,
        setup: InitiatorSetup,
        *,
        start_block: int = 0,
        decrypt: Decryptor | None = None,
    ) -> None:
        super().__init__(ctx, account, state_dir, start_block=start_block)
        self.setup = setup
        self.decrypt = decrypt
        self.models: dict[int, TrainedModel] = {}
        #: claim -> its model's features of the fusion-fit and the test images
        self._features: dict[int, tuple[FloatArray, FloatArray]] = {}
        #: The latest MetaModel fused from the decrypted models (None before the first).
        self.metamodel: MetaModel | None = None
        self.sk_path = self.state_dir / f"initiator-{account}.sk"
        #: The X25519 key secure claims' release envelopes are sealed to (raw, 0600).
        self.release_key_path = self.state_dir / f"initiator-{account}.release-key"

    @property
    def task_id(self) -> int | None:
        """The published task's id (None before publication)."""
        value = self.state.data.get("task_id")
        return None if value is None else int(value)

    # ------------------------------------------------------------ publication
    def _prepare(self) -> None:
        s = self.setup
        store = self.ctx.store
        key_cid = key_id = release_key = ""
        if s.he_params == "secure":
            if s.params.committee_size != COMMITTEE:
                raise RoleConfigError(
                    f"secure judging needs a committee of {COMMITTEE}, "
                    f"not {s.params.committee_size}"
                )
            self.log("secure judging: the committee judges in three-party computation (no HE key)")
            private = new_box_key()
            atomic_write_bytes(self.release_key_path, private.private_bytes_raw(), mode=0o600)
            release_key = box_public_bytes(private).hex()
        else:
            sk, key_blob = he_keys(s.he_params)
            he.save(sk, self.sk_path)
            self.sk_path.chmod(0o600)
            key_cid, key_id = store.put(key_blob), sk.key_id
            self.log(f"generated {s.he_params} HE keys (key id {sk.key_id}); public key {key_cid}")
        manifest = TaskManifest(
            params=s.he_params,
            key_cid=key_cid,
            key_id=key_id,
            verification_cid=store.put(s.verification.to_bytes()),
            threshold=s.threshold,
            weight_scale=s.weight_scale,
            input_scale=s.input_scale,
            fusion_epochs=s.fusion_epochs,
            nonce=new_nonce(),
            release_key=release_key,
        )
        cid = store.put(manifest.to_bytes())
        self.state.update(manifest_cid=cid, processed={}, accuracies=[])
        self.log(f"uploaded verification data {manifest.verification_cid}, manifest {cid}")

    def _publish(self) -> None:
        cid = self.state.data["manifest_cid"]
        # A crash after the transaction but before the state write: find our own task.
        for event in self.poller.poll_typed():
            if (
                isinstance(event, TaskPublished)
                and event.objective_uri == cid
                and event.initiator == self.account
            ):
                self.state.update(task_id=event.task_id)
                return
        task_id, _ = self.tasks.publish_task(self.account, cid, self.setup.params)
        self.state.update(task_id=task_id)
        self.log(
            f"published task {task_id}: budget {self.setup.params.budget / 1e18} ETH escrowed, "
            f"committee {self.setup.params.committee_size}, criterion {self.setup.threshold:.0%}"
        )

    # ------------------------------------------------------------ life cycle
    def step(self) -> bool:
        """Next due actions."""
        if self.done:
            return False
        if "manifest_cid" not in self.state.data:
            self._prepare()
            return True
        task_id = self.task_id
        if task_id is None:
            self._publish()
            return True
        acted = False
        claims: list[int] = list(self.state.data.get("claims", []))
        found = [
            e.claim_id
            for e in self.poller.poll_typed()
            if isinstance(e, ClaimSubmitted) and e.task_id == task_id and e.claim_id not in claims
        ]
        if found:
            claims += found
            self.state.update(claims=claims)
        final = True
        for claim_id in claims:
            if claim_id in self.finished:
                continue
            claim = self.claim(claim_id)
            acted = self.settle_if_due(claim_id, claim) or acted
            claim = self.claim(claim_id)
            lapse = claim.release_deadline + self.task(task_id).release_window
            if (claim.status == ClaimStatus.ACCEPTED and self.now() > claim.release_deadline) or (
                claim.status == ClaimStatus.RELEASE_PENDING and self.now() > lapse
            ):
                if self.try_tx(
                    f"forfeit claim {claim_id}",
                    functools.partial(self.tasks.forfeit_unreleased, self.account, claim_id),
                ):
                    self.log(
                        f"claim {claim_id}: envelope not released; claim forfeited to the escrow"
                    )
                    acted = True
                claim = self.claim(claim_id)
            if (
                claim.status == ClaimStatus.RELEASED
                and str(claim_id) not in self.state.data["processed"]
            ):
                self._receive(claim_id)
                acted = True
            if claim.status in FINAL and (
                claim.status != ClaimStatus.RELEASED
                or str(claim_id) in self.state.data["processed"]
            ):
                self.finished.add(claim_id)
            final = final and claim.status in FINAL
        task = self.task(task_id)
        if self.now() > task.expiry and final:
            if not self.state.data.get("reclaimed"):
                self._reclaim(task_id)
                self.state.update(reclaimed=True)
                acted = True
            acted = self.withdraw_credit() or acted
            self.done = self.tasks.credit_of(self.account) == 0
        return acted

    def _reclaim(self, task_id: int) -> None:
        """Reclaim the unspent budget; a fully spent budget is the normal case, not an error."""
        try:
            self.tasks.reclaim_budget(self.account, task_id)
        except ContractRevertError as exc:
            if exc.error_name == "NothingToReclaim":
                self.log("reclaim: nothing to reclaim (no unspent escrow left)")
                return
            self.log(f"reclaim: not done ({exc})")
            return
        except ChainError as exc:
            self.log(f"reclaim: not done ({exc})")
            return
        self.log("reclaimed the unspent budget")

    def _receive(self, claim_id: int) -> None:
        claim = self.claim(claim_id)
        manifest = TaskManifest.from_bytes(self.ctx.store.get(self.state.data["manifest_cid"]))
        record: dict[str, object] = {"claimant": claim.claimant, "cid": claim.model_cid}
        try:
            blob = self.ctx.store.get(claim.model_cid, expected_size=claim.model_size)
            envelope = self.tasks.envelope_of(claim_id)
            if manifest.params == "secure":
                # Checked against the share commitments: the model the committee judged.
                release = open_secure_release(blob, envelope, manifest, self._release_key())
                model = release.model
                if release.problem:
                    record["model_file"] = release.problem
                    self.log(f"claim {claim_id}: {release.problem}")
            else:
                payload = open_with_envelope(blob, envelope)
                sk = he.load(self.sk_path)
                assert isinstance(sk, he.SecretKey)
                model = self._decryptor()(payload, manifest, sk)
        except CipherfuseError as exc:
            record["error"] = str(exc)
            self.log(f"claim {claim_id}: the released model cannot be opened: {exc}")
        else:
            self.models[claim_id] = model
            self._features.pop(claim_id, None)
            record["labels"] = list(model.labels)
            record["accuracy"] = self._meta_accuracy()
            self.log(
                f"claim {claim_id}: received {model.config.name} (labels {list(model.labels)}); "
                f"MetaModel of {len(self.models)} model(s): test accuracy {record['accuracy']:.3f}"
            )
        processed = dict(self.state.data["processed"])
        processed[str(claim_id)] = record
        self.state.update(processed=processed)

    def _release_key(self) -> X25519PrivateKey:
        try:
            raw = self.release_key_path.read_bytes()
        except OSError as exc:
            why = f"the release key {self.release_key_path} is unreadable: {exc}"
            raise SealError(why) from exc
        if len(raw) != 32:
            raise SealError(f"the release key {self.release_key_path} is not 32 bytes")
        return X25519PrivateKey.from_private_bytes(raw)

    def _decryptor(self) -> Decryptor:
        if self.decrypt is not None:
            return self.decrypt
        from cipherfuse.roles.workload import decrypt_payload

        return decrypt_payload

    def _meta_accuracy(self) -> float:
        v = self.setup.verification
        fit = (np.concatenate([v.fit_x, v.check_x]), np.concatenate([v.fit_y, v.check_y]))
        s1, s2 = self.setup.fusion_epochs
        fusion = FusionConfig(stage1_epochs=s1, stage2_epochs=s2, progress=False)
        claims = sorted(self.models)
        for c in claims:  # each model's features once, not at every fusion
            if c not in self._features:
                self._features[c] = plain_features(self.models[c], fit[0], self.setup.test[0])
        self.metamodel, accuracy = fuse_plain_model(
            [self.models[c] for c in claims],
            fit,
            self.setup.test,
            fusion,
            f"initiator-{claims}",
            features=[self._features[c] for c in claims],
        )
        return accuracy

    def wakeups(self) -> list[int]:
        """Per-claim deadlines and the task's expiry."""
        task_id = self.task_id
        if self.done or task_id is None:
            return []
        times = [self.task(task_id).expiry + 1]
        for claim_id in self.state.data.get("claims", []):
            if int(claim_id) not in self.finished:
                times += self.claim_wakeups(self.claim(int(claim_id)))
        return times
