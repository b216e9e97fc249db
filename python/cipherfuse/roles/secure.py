"""Secure judging: the committee judges a claimed model in three-party computation.

With ``--params secure`` (the default) no committee member can read the model it judges.
The contributor quantizes its whole classifier (:func:`cipherfuse.mpc.quantize_classifier`,
the task's scales) and splits it into replicated shares ``W = W0 + W1 + W2 mod 2^64``
with ``W0 = PRG(s0)``, ``W1 = PRG(s1)`` (:func:`cipherfuse.mpc.share_model`). It uploads
one blob::

    b"CFMPC\\x00\\x02" | u32 header length | header | u64 length of A | A | B

``header`` is canonical JSON with the public layout (architecture, scales), the three
share commitments and the declared labels; ``A`` is ``W2`` sealed (AES-256-GCM) under a
fresh key ``K_w``; ``B`` is the trained model file sealed under
``K_m = HKDF(s0 | s1 | K_w)`` (:func:`model_file_key`). The claim's ``modelHash`` is
SHA-256 of the whole blob, so every member sees the same header and commitments.

The release envelope is three pieces, ``b"CFENV\\x03" | R(s0) | R(s1) | R(K_w)``, each
secret sealed to the initiator's release key from the manifest, deterministically
(:func:`cipherfuse.roles.sealing.seal_release_piece`: whoever holds the secret rebuilds
its piece, only the initiator opens it). The claim commits to the envelope on chain at
claim time. After the committee is drawn, committee position ``i`` receives its two
secrets and the one piece it cannot rebuild in its key box (:data:`BOX_SECRET_BYTES`)::

    position 0: s0 | s1 | R(K_w)    position 1: s1 | K_w | R(s0)    position 2: s0 | K_w | R(s1)

so member ``i`` holds exactly replicated shares ``i`` and ``i + 1`` and nothing else
(member 0 cannot open ``A``, members 1 and 2 miss one seed each, ``K_m`` needs all three
secrets). Each member rebuilds the envelope from its two secrets and the boxed piece and
checks it against the claim's on-chain envelope commitment (:func:`member_envelope`).
Every secret is held by two members, so with an honest majority the committed envelope
releases exactly the judged shares: a claim whose envelope would not is rejected before
anything is paid. The initiator opens the three pieces, rebuilds the judged integer model
from them and the blob's ``W2`` (checked against the commitments), and takes the model
file when it quantizes to exactly that model, else the judged model itself
(:func:`open_secure_release`): it always receives the model the committee judged.

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
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

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
from cipherfuse.mpc.encoding import (
    check_classifier,
    check_dequantizable,
    dequantize_classifier,
)
from cipherfuse.mpc.errors import PeerTimeout, ShareInconsistency
from cipherfuse.mpc.runtime import MemberResult
from cipherfuse.mpc.sharing import (
    model_layout,
    parameter_shapes,
    reconstruct_model,
    skeleton_from_layout,
    verify_model,
)
from cipherfuse.nn import TrainedModel
from cipherfuse.nn.quantize import QuantizedModel
from cipherfuse.nn.serialize import model_from_bytes, model_to_bytes
from cipherfuse.roles.behaviour import Judgement
from cipherfuse.roles.errors import SealError
from cipherfuse.roles.manifest import TaskManifest, VerificationData
from cipherfuse.roles.sealing import (
    KEY_BYTES,
    RELEASE_PIECE_BYTES,
    open_release_piece,
    open_sealed,
    seal,
    seal_release_piece,
    sealed_size,
)
from cipherfuse.untrusted import parse_json
from cipherfuse.validation import is_strict_int

BLOB_MAGIC = b"CFMPC\x00\x02"
ENVELOPE_MAGIC = b"CFENV\x03"
HEADER_FORMAT = "cipherfuse-mpc-claim"
#: The released secrets, in envelope order: the two seeds and the share key ``K_w``.
RELEASED_SECRETS = ("s0", "s1", "K_w")
#: The released secrets committee position ``i`` holds (indices into the envelope).
HELD_SECRETS = {0: (0, 1), 1: (1, 2), 2: (0, 2)}
#: The envelope piece committee position ``i`` cannot rebuild and receives in its box.
BOXED_PIECE = {0: 2, 1: 0, 2: 1}
#: Bytes of the secret in each member's key box: two 32-byte secrets and one piece.
BOX_SECRET_BYTES = 2 * KEY_BYTES + RELEASE_PIECE_BYTES
ENVELOPE_BYTES = len(ENVELOPE_MAGIC) + len(RELEASED_SECRETS) * RELEASE_PIECE_BYTES
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


def model_file_key(s0: bytes, s1: bytes, k_w: bytes) -> bytes:
    """``K_m``: the key of the blob's model file, derived from all three released secrets."""
    if not len(s0) == len(s1) == len(k_w) == KEY_BYTES:
        raise SealError(f"the released secrets are {KEY_BYTES} bytes each")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=_MODEL_FILE_INFO)
    return hkdf.derive(s0 + s1 + k_w)


_MODEL_FILE_INFO = b"cipherfuse-mpc-model-file-key-v1"


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
    released = (s0, s1, sealed_w.key)
    sealed_m = seal(model_to_bytes(model), key=model_file_key(*released))
    blob = (
        BLOB_MAGIC
        + _U32.pack(len(header))
        + header
        + _U64.pack(len(sealed_w.blob))
        + sealed_w.blob
        + sealed_m.blob
    )
    digest = hashlib.sha256(blob).digest()
    release_key = bytes.fromhex(manifest.release_key)
    pieces = [
        seal_release_piece(release_key, secret, model_hash=digest, index=j)
        for j, secret in enumerate(released)
    ]
    secrets = tuple(
        released[a] + released[b] + pieces[BOXED_PIECE[i]] for i, (a, b) in HELD_SECRETS.items()
    )
    return ClaimMaterial(blob, ENVELOPE_MAGIC + b"".join(pieces), secrets)


def member_envelope(
    position: int, secret: bytes, *, release_key: bytes, model_hash: bytes
) -> bytes:
    """The release envelope committee position ``position`` expects, from its box secret.

    Rebuilds the pieces of the two secrets it holds and takes the boxed third one; the
    member compares the result's commitment with the claim's
    (:func:`cipherfuse.chain.envelope_commitment`). Two honest members together check all
    three pieces of the one envelope the contract will accept.

    Raises:
        SealError: a wrong-sized secret or position, or a malformed release key.
    """
    if position not in HELD_SECRETS:
        raise SealError(f"committee position {position} is not 0, 1 or 2")
    if len(secret) != BOX_SECRET_BYTES:
        raise SealError(f"a secure key box holds {BOX_SECRET_BYTES} bytes, got {len(secret)}")
    pieces = {BOXED_PIECE[position]: secret[2 * KEY_BYTES :]}
    for k, j in enumerate(HELD_SECRETS[position]):
        held = secret[k * KEY_BYTES : (k + 1) * KEY_BYTES]
        pieces[j] = seal_release_piece(release_key, held, model_hash=model_hash, index=j)
    return ENVELOPE_MAGIC + b"".join(pieces[j] for j in range(len(RELEASED_SECRETS)))


@dataclass(frozen=True)
class SecureBlob:
    """A parsed claim blob: public header and the two sealed sections."""

    layout: dict[str, Any]
    commitments: tuple[bytes, bytes, bytes]
    labels: tuple[int, ...]
    sealed_shares: bytes
    sealed_model: bytes
    #: Secret parameters of the model (words per share), counted once while parsing.
    word_count: int


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
    start = head + hlen
    (alen,) = _U64.unpack_from(blob, start)
    start += _U64.size
    if not sealed_size(0) <= alen <= len(blob) - start:
        raise SealError(f"share section length {alen} is out of bounds")
    layout = body["layout"]
    # Typed EncodingError on a hostile layout; its size is bounded by the uploaded words.
    skeleton = skeleton_from_layout(layout, max_words=(alen - sealed_size(0)) // 8)
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
    words = sum(int(np.prod(shape)) for _, shape in parameter_shapes(skeleton))
    if alen != sealed_size(8 * words):
        why = f"the layout's {words} words take {sealed_size(8 * words)}"
        raise SealError(f"share section has {alen} bytes; {why}")
    check_dequantizable(skeleton)  # the float model the initiator may receive is this one
    return SecureBlob(
        layout,
        (commitments[0], commitments[1], commitments[2]),
        tuple(labels),
        blob[start : start + alen],
        blob[start + alen :],
        words,
    )


def member_bundle(parsed: SecureBlob, position: int, secret: bytes) -> MemberBundle:
    """Committee position ``position``'s bundle from the blob and its boxed secret.

    Raises:
        SealError: a wrong-sized secret or a share section the boxed key does not open.
    """
    if len(secret) != BOX_SECRET_BYTES:
        raise SealError(f"a secure key box holds {BOX_SECRET_BYTES} bytes, got {len(secret)}")
    return _bundle(parsed, position, secret[:KEY_BYTES], secret[KEY_BYTES : 2 * KEY_BYTES])


def _bundle(parsed: SecureBlob, position: int, first: bytes, second: bytes) -> MemberBundle:
    """Position ``position``'s bundle from the two released secrets it holds."""
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


def envelope_pieces(envelope: bytes) -> list[bytes]:
    """The three sealed pieces of a secure release envelope, in :data:`RELEASED_SECRETS` order.

    Raises:
        SealError: not a secure envelope (wrong size or magic).
    """
    if len(envelope) != ENVELOPE_BYTES or not envelope.startswith(ENVELOPE_MAGIC):
        raise SealError(f"a secure envelope is {ENVELOPE_BYTES} bytes starting {ENVELOPE_MAGIC!r}")
    body = envelope[len(ENVELOPE_MAGIC) :]
    n = RELEASE_PIECE_BYTES
    return [body[j * n : (j + 1) * n] for j in range(len(RELEASED_SECRETS))]


@dataclass(frozen=True)
class SecureRelease:
    """What the initiator receives for an accepted secure claim.

    Attributes:
        judged: the integer model the committee judged, rebuilt from the released shares.
        model: the contributor's model file when it quantizes to exactly ``judged``, else
            ``judged`` mapped back to float32 (:func:`dequantize_classifier`).
        problem: why the model file was not used (empty when it was).
    """

    judged: QuantizedModel
    model: TrainedModel
    problem: str = ""


def open_secure_release(
    blob: bytes, envelope: bytes, manifest: TaskManifest, release_key: X25519PrivateKey
) -> SecureRelease:
    """The initiator's side after release: the model the committee judged.

    Opens the envelope's three pieces with the initiator's ``release_key`` (the envelope
    is public on chain; only this key opens it), expands ``W0, W1`` from the seeds, opens
    ``W2`` with ``K_w`` and checks all three against the blob's commitments; their sum is
    the judged model. The model file (``K_m`` from the three secrets) is taken if it
    quantizes with the task's scales to exactly that model and carries the declared
    labels; otherwise the judged model itself is returned, with the reason.

    Raises:
        SealError: a malformed envelope or blob, or shares that are not the judged ones.
    """
    digest = hashlib.sha256(blob).digest()
    s0, s1, k_w = (
        open_release_piece(piece, release_key, model_hash=digest, index=j)
        for j, piece in enumerate(envelope_pieces(envelope))
    )
    parsed = parse_secure_blob(blob, manifest)
    holders = (_bundle(parsed, 0, s0, s1), _bundle(parsed, 1, s1, k_w))
    try:
        for holder in holders:
            holder.parameter_shares()  # all three shares against their commitments
    except ShareInconsistency as exc:
        raise SealError(
            f"the released shares are not the ones the committee judged: {exc}"
        ) from exc
    judged = reconstruct_model(*holders)
    try:
        model, _ = model_from_bytes(
            open_sealed(parsed.sealed_model, model_file_key(s0, s1, k_w)), name="released model"
        )
        if tuple(model.labels) != parsed.labels:
            raise SealError("its labels differ from the declared ones")
        quantized = quantize_classifier(
            model, weight_scale=manifest.weight_scale, input_scale=manifest.input_scale
        )
        if model_layout(quantized) != parsed.layout or not verify_model(
            quantized, (s0, s1), parsed.commitments
        ):
            raise SealError("it does not quantize to the judged model")
    except CipherfuseError as exc:
        problem = f"the contributor's model file is not used ({exc}); the judged model is"
        return SecureRelease(judged, dequantize_classifier(judged, parsed.labels), problem)
    return SecureRelease(judged, model)


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
    """One claim for this member: its bundle, the public inputs and its peers.

    ``refusal`` is why this member refuses the claimant's material although its shares
    open (its release envelope does not match the claim's commitment): the member still
    connects, so that its peers abort at once, and votes reject.
    """

    claim_id: int
    bundle: MemberBundle
    members: tuple[MemberEndpoint, MemberEndpoint, MemberEndpoint]
    session: bytes
    images: np.ndarray
    labels: np.ndarray
    refusal: str | None = None


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
        except Exception as exc:  # a bug must not stop the member from voting either
            return _failure_verdict(exc, refusal=job.refusal, own_shares_ok=own_shares_ok)
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
        return run_member(job.bundle, transport, job.images, job.labels, refuse=job.refusal)

    def remember(self, claim_id: int, payload: bytes) -> None:
        """Nothing to remember: secure judging decides on accuracy alone (docs/mpc.md)."""


def _failure_verdict(exc: Exception, *, refusal: str | None, own_shares_ok: bool) -> Judgement:
    """The vote of a member whose computation did not end in a count.

    A member that refused the claimant's material, or whose own shares do not match the
    claim's commitments, votes reject (the claimant is at fault, whatever the peers did);
    any other failure is an abort ballot (a peer's report is not attributable).
    """
    if refusal is not None:
        return Judgement(False, 0.0, None, f"rejected: {refusal}"[:500])
    if not own_shares_ok and isinstance(exc, ShareInconsistency):
        why = f"rejected: my shares do not match the claim's commitments ({exc})"
        return Judgement(False, 0.0, None, why[:500])
    if isinstance(exc, PeerTimeout):
        return _aborted(f"member {exc.peer} silent: {exc}")
    if isinstance(exc, CipherfuseError | OSError | ValueError):
        return _aborted(f"{type(exc).__name__}: {exc}")
    return _aborted(f"unexpected {type(exc).__name__}: {exc}")


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
