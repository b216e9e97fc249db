"""Secure judging: the committee judges a claimed model in three-party computation.

With ``--params secure`` (the default) no committee member can read the model it judges.
The contributor quantizes its whole classifier (:func:`cipherfuse.mpc.quantize_classifier`,
the task's scales) and splits it into replicated shares ``W = W0 + W1 + W2 mod 2^64``
with ``W0 = PRG(s0)``, ``W1 = PRG(s1)`` (:func:`cipherfuse.mpc.share_model`). It uploads
one blob::

    b"CFMPC\\x00\\x01" | u32 header length | header | u64 length of A | A | B

``header`` is canonical JSON with the public layout (architecture, scales), the three
share commitments and the declared labels; ``A`` is ``W2`` sealed (AES-256-GCM) under a
fresh key ``K_w``; ``B`` is the trained model file sealed under another fresh key ``K_m``.
The claim's ``modelHash`` is SHA-256 of the whole blob, so every member sees the same
header and commitments. After the committee is drawn, committee position ``i`` receives
a 64-byte secret in its key box (:data:`BOX_SECRET_BYTES`)::

    position 0: s0 | s1        position 1: s1 | K_w        position 2: s0 | K_w

so member ``i`` holds exactly replicated shares ``i`` and ``i + 1`` and nothing else:
member 0 cannot open ``A``, members 1 and 2 miss one seed each. ``K_m`` goes to no member.
The released envelope is ``b"CFENV\\x02" | K_m | K_w | s0 | s1 | SHA-256(blob)`` sealed
to the initiator's release key from the manifest (it is public on chain; only the
initiator opens it, :func:`cipherfuse.roles.sealing.seal_release`); the initiator opens
the model file, quantizes it with the task's scales and checks that it
opens the three share commitments (:func:`open_secure_release`), so the model it receives
is provably the one the committee judged.

The members evaluate the model on the check samples of its declared labels over
authenticated, encrypted channels (:func:`cipherfuse.mpc.channel.connect_committee`;
endpoints and static keys from the on-chain directory: a verifier's registered box key is
also its channel key) and open only the number of correct predictions (argmax over all
classes). The vote is ``count / n >= criterion``. A protocol abort (a silent member, a
wrong share at an opening, inconsistent shares) is a reject vote. What this protects,
against whom, and what it does not: docs/mpc.md.
"""

from __future__ import annotations

import hashlib
import json
import queue
import socket
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cipherfuse.errors import CipherfuseError
from cipherfuse.mpc import (
    MemberBundle,
    Transport,
    quantize_classifier,
    run_member,
    share_model,
)
from cipherfuse.mpc.channel import (
    ChannelConfig,
    MemberEndpoint,
    StaticKey,
    bind_listener,
    connect_committee,
)
from cipherfuse.mpc.encoding import check_classifier
from cipherfuse.mpc.errors import PeerTimeout, ShareInconsistency
from cipherfuse.mpc.runtime import MemberResult
from cipherfuse.mpc.sharing import (
    layout_digest,
    model_layout,
    parameter_shapes,
    share_commitment,
    skeleton_from_layout,
    verify_model,
)
from cipherfuse.nn import TrainedModel
from cipherfuse.nn.serialize import model_from_bytes, model_to_bytes
from cipherfuse.roles.behaviour import Judgement
from cipherfuse.roles.errors import SealError
from cipherfuse.roles.manifest import TaskManifest, VerificationData
from cipherfuse.roles.sealing import (
    KEY_BYTES,
    open_release,
    open_sealed,
    seal,
    seal_release,
)
from cipherfuse.untrusted import parse_json
from cipherfuse.validation import is_strict_int

BLOB_MAGIC = b"CFMPC\x00\x01"
ENVELOPE_MAGIC = b"CFENV\x02"
HEADER_FORMAT = "cipherfuse-mpc-claim"
#: Bytes of the secret in each member's key box (two 32-byte keys or seeds).
BOX_SECRET_BYTES = 2 * KEY_BYTES
ENVELOPE_BYTES = len(ENVELOPE_MAGIC) + 4 * KEY_BYTES + 32
MAX_HEADER_BYTES = 1 << 20
#: Members of a secure committee (replicated secret sharing among three).
COMMITTEE = 3
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


@dataclass(frozen=True)
class ClaimMaterial:
    """What a contributor uploads, boxes and later releases for one claim.

    ``box_secrets[i]`` goes to committee position ``i`` (one entry: the same secret to
    every member, the cipherspace mode's sealing key).
    """

    blob: bytes
    envelope: bytes
    box_secrets: tuple[bytes, ...]

    @property
    def model_hash(self) -> bytes:
        """SHA-256 of the blob (the claim's ``modelHash``)."""
        return hashlib.sha256(self.blob).digest()


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def prepare_secure_claim(model: TrainedModel, manifest: TaskManifest) -> ClaimMaterial:
    """The contributor's side: quantize with the task's scales, share, seal, box secrets."""
    quantized = quantize_classifier(
        model, weight_scale=manifest.weight_scale, input_scale=manifest.input_scale
    )
    shared = share_model(quantized)
    b0, b1, _ = shared.bundles
    s0, s1 = b0.seeds[0], b0.seeds[1]
    w2 = b1.words[2]
    header = _canonical(
        {
            "format": HEADER_FORMAT,
            "version": 1,
            "layout": shared.layout,
            "commitments": [c.hex() for c in shared.commitments],
            "labels": [int(v) for v in model.labels],
        }
    )
    sealed_w = seal(np.ascontiguousarray(w2, dtype="<u8").tobytes())
    sealed_m = seal(model_to_bytes(model))
    blob = (
        BLOB_MAGIC
        + _U32.pack(len(header))
        + header
        + _U64.pack(len(sealed_w.blob))
        + sealed_w.blob
        + sealed_m.blob
    )
    digest = hashlib.sha256(blob).digest()
    envelope = ENVELOPE_MAGIC + sealed_m.key + sealed_w.key + s0 + s1 + digest
    release_key = bytes.fromhex(manifest.release_key)
    sealed_envelope = seal_release(release_key, envelope, model_hash=digest)
    secrets = (s0 + s1, s1 + sealed_w.key, s0 + sealed_w.key)
    return ClaimMaterial(blob, sealed_envelope, secrets)


@dataclass(frozen=True)
class SecureBlob:
    """A parsed claim blob: public header and the two sealed sections."""

    layout: dict[str, Any]
    commitments: tuple[bytes, bytes, bytes]
    labels: tuple[int, ...]
    sealed_shares: bytes
    sealed_model: bytes

    @property
    def word_count(self) -> int:
        """Secret parameters of the model (words per share)."""
        shapes = parameter_shapes(skeleton_from_layout(self.layout))
        return sum(int(np.prod(s)) for _, s in shapes)


def parse_secure_blob(blob: bytes, manifest: TaskManifest) -> SecureBlob:
    """Decode an untrusted claim blob; :class:`SealError` (or a typed MPC error) if bad.

    The layout must use the task's scales and end in the output layer; the declared
    labels must be distinct classes of the model.
    """
    head = len(BLOB_MAGIC) + _U32.size
    if len(blob) < head or not blob.startswith(BLOB_MAGIC):
        raise SealError("not a cipherfuse secure-judging claim blob (bad magic or truncated)")
    (hlen,) = _U32.unpack_from(blob, len(BLOB_MAGIC))
    if hlen > MAX_HEADER_BYTES or head + hlen + _U64.size > len(blob):
        raise SealError(f"claim header length {hlen} is out of bounds")
    raw = blob[head : head + hlen]
    body = parse_json(raw, what="claim header", max_bytes=MAX_HEADER_BYTES, error=SealError)
    if (
        not isinstance(body, dict)
        or set(body) != {"format", "version", "layout", "commitments", "labels"}
        or body["format"] != HEADER_FORMAT
        or body["version"] != 1
    ):
        raise SealError(f"claim header is not a {HEADER_FORMAT} v1 document")
    if _canonical(body) != raw:
        raise SealError("claim header is not in its canonical encoding")
    layout = body["layout"]
    skeleton = skeleton_from_layout(layout)  # typed EncodingError on a hostile layout
    classes = check_classifier(skeleton)
    if layout.get("weight_scale") != manifest.weight_scale or (
        layout.get("input_scale") != manifest.input_scale
    ):
        raise SealError("the claimed model's quantization scales differ from the task's")
    commits = body["commitments"]
    if not isinstance(commits, list) or len(commits) != COMMITTEE:
        raise SealError("claim header must carry three share commitments")
    try:
        commitments = tuple(bytes.fromhex(c) for c in commits if isinstance(c, str))
    except ValueError as exc:
        raise SealError("share commitments must be hex") from exc
    if len(commitments) != COMMITTEE or any(len(c) != 32 for c in commitments):
        raise SealError("share commitments must be three 32-byte digests")
    labels = body["labels"]
    if (
        not isinstance(labels, list)
        or not labels
        or len(set(labels)) != len(labels)
        or not all(is_strict_int(v, minimum=0, maximum=classes - 1, exact=True) for v in labels)
    ):
        raise SealError(f"declared labels must be distinct classes in 0..{classes - 1}")
    start = head + hlen
    (alen,) = _U64.unpack_from(blob, start)
    start += _U64.size
    if alen > len(blob) - start:
        raise SealError(f"share section length {alen} is out of bounds")
    return SecureBlob(
        layout,
        (commitments[0], commitments[1], commitments[2]),
        tuple(labels),
        blob[start : start + alen],
        blob[start + alen :],
    )


def member_bundle(parsed: SecureBlob, position: int, secret: bytes) -> MemberBundle:
    """Committee position ``position``'s bundle from the blob and its boxed secret.

    Raises:
        SealError: a wrong-sized secret or a share section the boxed key does not open.
    """
    if len(secret) != BOX_SECRET_BYTES:
        raise SealError(f"a secure key box holds {BOX_SECRET_BYTES} bytes, got {len(secret)}")
    first, second = secret[:KEY_BYTES], secret[KEY_BYTES:]
    if position == 0:
        return MemberBundle(0, parsed.layout, parsed.commitments, {0: first, 1: second}, {})
    if position not in (1, 2):
        raise SealError(f"committee position {position} is not 0, 1 or 2")
    words = open_sealed(parsed.sealed_shares, second)
    count = parsed.word_count
    if len(words) != 8 * count:
        raise SealError(f"share section has {len(words)} bytes, expected {8 * count}")
    w2 = np.frombuffer(words, dtype="<u8").astype(np.uint64)
    seeds = {1: first} if position == 1 else {0: first}
    return MemberBundle(position, parsed.layout, parsed.commitments, seeds, {2: w2})


def open_secure_release(
    blob: bytes, sealed_envelope: bytes, manifest: TaskManifest, release_key: X25519PrivateKey
) -> TrainedModel:
    """The initiator's side after release: the model, checked against what was judged.

    The released envelope is sealed to the manifest's ``release_key`` (only its private
    half, the initiator's, opens it: the envelope is public on chain). The model file is
    opened with ``K_m``, quantized with the task's scales, and must open
    the blob's three share commitments with the released seeds (and the blob must hold the
    same ``W2``), and its labels must be the declared ones.

    Raises:
        SealError: a malformed envelope, a blob that is not the claimed one, or a model
            that is not the judged one.
    """
    digest = hashlib.sha256(blob).digest()
    envelope = open_release(sealed_envelope, release_key, model_hash=digest, size=ENVELOPE_BYTES)
    if len(envelope) != ENVELOPE_BYTES or not envelope.startswith(ENVELOPE_MAGIC):
        raise SealError(f"a secure envelope is {ENVELOPE_BYTES} bytes starting {ENVELOPE_MAGIC!r}")
    body = envelope[len(ENVELOPE_MAGIC) :]
    k_m, k_w, s0, s1 = (body[i * KEY_BYTES : (i + 1) * KEY_BYTES] for i in range(4))
    if digest != body[4 * KEY_BYTES :]:
        raise SealError("the blob does not match the hash in the released envelope")
    parsed = parse_secure_blob(blob, manifest)
    model, _ = model_from_bytes(open_sealed(parsed.sealed_model, k_m), name="released model")
    if tuple(model.labels) != parsed.labels:
        raise SealError("the released model's labels differ from the declared ones")
    quantized = quantize_classifier(
        model, weight_scale=manifest.weight_scale, input_scale=manifest.input_scale
    )
    if model_layout(quantized) != parsed.layout or not verify_model(
        quantized, (s0, s1), parsed.commitments
    ):
        raise SealError("the released model is not the model the committee judged")
    words = np.frombuffer(open_sealed(parsed.sealed_shares, k_w), dtype="<u8")
    lh = layout_digest(parsed.layout)
    if share_commitment(lh, 2, words) != parsed.commitments[2]:
        raise SealError("the blob's third share does not match its commitment")
    return model


# ------------------------------------------------------------------ committee member


def encode_endpoint(host: str, port: int) -> bytes:
    """The on-chain committee endpoint ``host:port`` (ASCII)."""
    return f"{host}:{port}".encode("ascii")


def decode_endpoint(raw: bytes) -> tuple[str, int]:
    """``(host, port)`` of an untrusted on-chain endpoint; :class:`SealError` if malformed."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise SealError("a committee endpoint must be ASCII host:port") from exc
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SealError(f"committee endpoint {text[:64]!r} is not host:port")
    return host, int(port)


def session_id(chain_id: int, contract: str, claim_id: int, model_hash: bytes) -> bytes:
    """The channel session of one claim's committee (the same for its three members)."""
    h = hashlib.sha256(b"cipherfuse-mpc-session-v1")
    h.update(chain_id.to_bytes(32, "big"))
    h.update(bytes.fromhex(contract.removeprefix("0x")))
    h.update(claim_id.to_bytes(32, "big"))
    h.update(model_hash)
    return h.digest()


@dataclass(frozen=True)
class CommitteeJob:
    """One claim for this member: its bundle, the public inputs and its peers."""

    claim_id: int
    bundle: MemberBundle
    members: tuple[MemberEndpoint, MemberEndpoint, MemberEndpoint]
    session: bytes
    images: np.ndarray
    labels: np.ndarray


class SecureJudge:
    """A verifier's three-party judge: one background worker, claims in submission order.

    The agent calls :meth:`bind` once (its static key, the port to listen on), then
    :meth:`submit` for each claim whose key box arrived and :meth:`poll` until the
    verdict is there. Claims run one at a time, in the order submitted (every member
    submits in claim-id order, so committees never wait on each other in a cycle).

    Args:
        manifest: the task (criterion, scales).
        data: the verification data; the check part is the judged set.
        host: the address this member listens on.
        announce: the host it registers on chain for the other members to dial (default
            ``host``; give the public address when ``host`` is ``0.0.0.0`` or behind NAT).
        channel: timeouts and limits of the committee channels.
    """

    def __init__(
        self,
        manifest: TaskManifest,
        data: VerificationData,
        *,
        host: str = "127.0.0.1",
        announce: str | None = None,
        channel: ChannelConfig | None = None,
    ) -> None:
        self.manifest = manifest
        self.data = data
        self.host = host
        self.announce = announce or host
        self.channel = channel or ChannelConfig(timeout=60.0, connect_timeout=120.0)
        self._key: StaticKey | None = None
        self._port = 0
        self._listener: socket.socket | None = None
        self._jobs: queue.Queue[CommitteeJob] = queue.Queue()
        self._lock = threading.Lock()
        self._submitted: set[int] = set()
        self._verdicts: dict[int, Judgement] = {}
        self._worker: threading.Thread | None = None

    # ------------------------------------------------------------ set-up
    def bind(self, static_private: bytes, port: int = 0) -> bytes:
        """Listen on ``host:port`` (0: a free port); returns the endpoint to register."""
        self._key = StaticKey.from_private(static_private)
        self._listener = bind_listener(self.host, port)
        self._port = int(self._listener.getsockname()[1])
        return encode_endpoint(self.announce, self._port)

    @property
    def port(self) -> int:
        """The port this member listens on (0 before :meth:`bind`)."""
        return self._port

    def close(self) -> None:
        """Stop listening (the worker finishes its current claim)."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    # ------------------------------------------------------------ claims
    def images_for(self, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The check samples of ``labels`` as public ring inputs ``round(q * x)``."""
        own = np.isin(self.data.check_y, list(labels))
        x = np.rint(np.asarray(self.data.check_x[own], np.float64) * self.manifest.input_scale)
        return x.astype(np.int64), np.asarray(self.data.check_y[own], np.int64)

    def submit(self, job: CommitteeJob) -> None:
        """Queue ``job``; its verdict appears in :meth:`poll`."""
        with self._lock:
            if job.claim_id in self._submitted:
                return
            self._submitted.add(job.claim_id)
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name="cipherfuse-secure-judge", daemon=True
                )
                self._worker.start()
        self._jobs.put(job)

    def submitted(self, claim_id: int) -> bool:
        """Whether ``claim_id`` was submitted."""
        with self._lock:
            return claim_id in self._submitted

    def poll(self, claim_id: int) -> Judgement | None:
        """The verdict on ``claim_id`` once its computation ended, else None."""
        with self._lock:
            return self._verdicts.get(claim_id)

    def busy(self) -> bool:
        """Whether a submitted claim has no verdict yet."""
        with self._lock:
            return len(self._verdicts) < len(self._submitted)

    def verdicts(self) -> int:
        """How many submitted claims have their verdict."""
        with self._lock:
            return len(self._verdicts)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            verdict = self._evaluate(job)
            with self._lock:
                self._verdicts[job.claim_id] = verdict

    def _take_listener(self) -> socket.socket:
        with self._lock:
            listener, self._listener = self._listener, None
        return listener if listener is not None else bind_listener(self.host, self._port)

    def _evaluate(self, job: CommitteeJob) -> Judgement:
        """Run this member's side; any failure is a reject verdict with its reason."""
        assert self._key is not None, "bind() first"
        n = int(job.labels.shape[0])
        if n == 0:
            return Judgement(False, 0.0, None, "no check samples of the declared labels")
        try:
            job.bundle.parameter_shares()
            own_shares_ok = True
        except ShareInconsistency:
            own_shares_ok = False  # the claimant's fault: its box or blob is wrong
        except CipherfuseError as exc:
            return Judgement(False, 0.0, None, f"unusable shares: {exc}")
        try:
            listener = self._take_listener()
            with connect_committee(
                job.bundle.party,
                self._key,
                job.members,
                job.session,
                self.channel,
                listener=listener,
            ) as transport:
                result = self._run_member(job, transport)
        except ShareInconsistency as exc:
            if not own_shares_ok:
                why = f"rejected: my shares do not match the claim's commitments ({exc})"
                return Judgement(False, 0.0, None, why)
            return _aborted(f"{type(exc).__name__}: {exc}")  # a peer's report: unattributable
        except PeerTimeout as exc:
            return _aborted(f"member {exc.peer} silent: {exc}")
        except (CipherfuseError, OSError, ValueError) as exc:
            return _aborted(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug must not stop the member from voting
            return _aborted(f"unexpected {type(exc).__name__}: {exc}")
        accuracy = result.count / n
        criterion = self.manifest.threshold
        verdict = ">=" if accuracy >= criterion else "below"
        why = (
            f"three-party count {result.count}/{n} on the declared labels: accuracy "
            f"{accuracy:.3f} {verdict} the criterion {criterion:.2f}"
        )
        return Judgement(accuracy >= criterion, accuracy, None, why)

    def _run_member(self, job: CommitteeJob, transport: Transport) -> MemberResult:
        """This member's side of the computation over the connected committee."""
        return run_member(job.bundle, transport, job.images, job.labels)

    def remember(self, claim_id: int, payload: bytes) -> None:
        """Nothing to remember: secure judging decides on accuracy alone (docs/mpc.md)."""


def _aborted(why: str) -> Judgement:
    """The verdict of a member whose computation aborted: an abort ballot."""
    return Judgement(False, 0.0, None, f"protocol aborted ({why})"[:500], abort=True)


def committee_members(
    keys: Sequence[tuple[bytes, bytes]],
) -> tuple[MemberEndpoint, MemberEndpoint, MemberEndpoint]:
    """The three members' endpoints from the on-chain directory ``(box key, endpoint)``.

    Raises:
        SealError: not three members, or a malformed endpoint or key.
    """
    if len(keys) != COMMITTEE:
        raise SealError(f"secure judging needs a committee of {COMMITTEE}, got {len(keys)}")
    members = []
    for key, raw in keys:
        host, port = decode_endpoint(raw)
        try:
            members.append(MemberEndpoint(host, port, key))
        except (ValueError, CipherfuseError) as exc:
            raise SealError(f"committee member key or endpoint is unusable: {exc}") from exc
    return members[0], members[1], members[2]
