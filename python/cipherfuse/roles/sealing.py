"""Sealing an uploaded model until the contract has committed its payment.

The contributor encrypts the (homomorphically encrypted) model bytes with a fresh 256-bit
key ``K`` under AES-256-GCM and uploads only the sealed blob. Its SHA-256 is the claim's
``modelHash``. The *envelope* that opens it is ::

    b"CFENV\\x01" | K (32 bytes) | SHA-256(sealed blob) (32 bytes)

and the claim commits ``keccak256(envelope)``. After acceptance the contributor releases
the envelope on chain (``releaseEnvelope``), where the contract checks it against the
commitment. Committee members receive ``K`` before voting in a *key box*: ``K`` encrypted to
the member's X25519 key (ephemeral-static ECDH, HKDF-SHA256, AES-256-GCM), bound to the
claim id and the member's address. A member checks that the envelope rebuilt from the
boxed ``K`` matches the on-chain commitment and that ``K`` opens the blob, so the only
envelope the contract will accept later is one that opens the model.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_utils.crypto import keccak

from cipherfuse.roles.errors import SealError

SEAL_MAGIC = b"CFSEAL\x00\x01"
ENVELOPE_MAGIC = b"CFENV\x01"
BOX_MAGIC = b"CFBOX\x01"
KEY_BYTES = 32
NONCE_BYTES = 12
ENVELOPE_BYTES = len(ENVELOPE_MAGIC) + KEY_BYTES + 32
_SEAL_HEADER = struct.Struct(f"<{len(SEAL_MAGIC)}s{NONCE_BYTES}s")


@dataclass(frozen=True)
class Sealed:
    """A sealed model: the blob to upload, its hash, the envelope and its commitment."""

    blob: bytes
    key: bytes

    @property
    def model_hash(self) -> bytes:
        """SHA-256 of the sealed blob (the claim's ``modelHash``)."""
        return hashlib.sha256(self.blob).digest()

    @property
    def envelope(self) -> bytes:
        """What the contributor releases on chain after acceptance."""
        return build_envelope(self.key, self.model_hash)

    @property
    def envelope_commitment(self) -> bytes:
        """``keccak256(envelope)``, committed at claim time."""
        return keccak(self.envelope)


def seal(payload: bytes, *, key: bytes | None = None, nonce: bytes | None = None) -> Sealed:
    """Encrypt ``payload`` with AES-256-GCM under a fresh key (or ``key``)."""
    key = os.urandom(KEY_BYTES) if key is None else key
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    if len(key) != KEY_BYTES or len(nonce) != NONCE_BYTES:
        raise SealError(f"key must be {KEY_BYTES} bytes and nonce {NONCE_BYTES} bytes")
    header = _SEAL_HEADER.pack(SEAL_MAGIC, nonce)
    return Sealed(header + AESGCM(key).encrypt(nonce, payload, header), key)


def sealed_size(payload_bytes: int) -> int:
    """Bytes of :func:`seal` output for a ``payload_bytes``-byte payload (header and tag)."""
    return _SEAL_HEADER.size + payload_bytes + 16


def build_envelope(key: bytes, model_hash: bytes) -> bytes:
    """The envelope for sealing key ``key`` of the blob with SHA-256 ``model_hash``."""
    if len(key) != KEY_BYTES or len(model_hash) != 32:
        raise SealError("envelope needs a 32-byte key and a 32-byte model hash")
    return ENVELOPE_MAGIC + key + model_hash


def parse_envelope(envelope: bytes) -> tuple[bytes, bytes]:
    """(key, model hash) of an envelope; raises :class:`SealError` if malformed."""
    if len(envelope) != ENVELOPE_BYTES or not envelope.startswith(ENVELOPE_MAGIC):
        raise SealError(
            f"envelope must be {ENVELOPE_BYTES} bytes starting with {ENVELOPE_MAGIC!r}, "
            f"got {len(envelope)} bytes"
        )
    body = envelope[len(ENVELOPE_MAGIC) :]
    return body[:KEY_BYTES], body[KEY_BYTES:]


def open_sealed(blob: bytes, key: bytes, *, model_hash: bytes | None = None) -> bytes:
    """Decrypt a sealed blob; checks its hash first when ``model_hash`` is given.

    Raises:
        SealError: wrong hash, malformed blob, wrong key or tampered ciphertext.
    """
    if model_hash is not None and hashlib.sha256(blob).digest() != model_hash:
        raise SealError("the sealed blob does not match the model hash committed on chain")
    if len(blob) < _SEAL_HEADER.size + 16 or not blob.startswith(SEAL_MAGIC):
        raise SealError("not a cipherfuse sealed model (bad magic or truncated)")
    if len(key) != KEY_BYTES:
        raise SealError(f"a sealing key is {KEY_BYTES} bytes, got {len(key)}")
    header = blob[: _SEAL_HEADER.size]
    _, nonce = _SEAL_HEADER.unpack(header)
    try:
        return AESGCM(key).decrypt(nonce, blob[_SEAL_HEADER.size :], header)
    except InvalidTag as exc:
        raise SealError("the sealing key does not open this blob (wrong key or tampered)") from exc


def open_with_envelope(blob: bytes, envelope: bytes) -> bytes:
    """Open a blob with a released envelope (checks the hash inside the envelope)."""
    key, model_hash = parse_envelope(envelope)
    return open_sealed(blob, key, model_hash=model_hash)


# ---------------------------------------------------------------- key boxes


def new_box_key() -> X25519PrivateKey:
    """A fresh X25519 key for receiving key boxes."""
    return X25519PrivateKey.generate()


def box_public_bytes(private: X25519PrivateKey) -> bytes:
    """Raw 32-byte public key."""
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _exchange(private: X25519PrivateKey, public: bytes, what: str) -> bytes:
    """X25519 shared secret; a low-order (e.g. all-zero) public key raises :class:`SealError`.

    Such a key makes the shared secret all zeros, known to everyone (RFC 7748, section 6.1);
    ``cryptography`` refuses it with a bare ``ValueError``.
    """
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError as exc:
        raise SealError(f"{what} is a low-order X25519 point (no shared secret): {exc}") from None


def _box_key(shared: bytes, context: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=context).derive(shared)


def _box_context(claim_id: int, member: str) -> bytes:
    return b"cipherfuse-keybox-v1|%d|%s|" % (claim_id, member.lower().encode())


def _seal_to(
    recipient_pub: bytes,
    payload: bytes,
    context: bytes,
    *,
    ephemeral: X25519PrivateKey | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """``payload`` encrypted to ``recipient_pub``: ephemeral-static X25519, HKDF, AES-GCM.

    ``context`` (bound into the key and the associated data) is followed by both public keys.
    The ephemeral key and the nonce are fresh unless given (:func:`seal_release_piece`).
    """
    if len(recipient_pub) != 32:
        raise SealError("a box public key is 32 bytes")
    ephemeral = X25519PrivateKey.generate() if ephemeral is None else ephemeral
    eph_pub = box_public_bytes(ephemeral)
    shared = _exchange(ephemeral, recipient_pub, "the recipient's box key")
    bound = context + recipient_pub + eph_pub
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    sealed = AESGCM(_box_key(shared, bound)).encrypt(nonce, payload, bound)
    return BOX_MAGIC + eph_pub + nonce + sealed


def _open_sealed_to(
    box: bytes, private: X25519PrivateKey, context: bytes, size: int, kind: str, what: str
) -> bytes:
    """The ``size``-byte payload of a :func:`_seal_to` box; :class:`SealError` otherwise.

    ``kind`` names the format in a size error ("a key box"), ``what`` this one instance.
    """
    expected = len(BOX_MAGIC) + 32 + NONCE_BYTES + size + 16
    if len(box) != expected or not box.startswith(BOX_MAGIC):
        raise SealError(f"{kind} is {expected} bytes starting with {BOX_MAGIC!r}")
    body = box[len(BOX_MAGIC) :]
    eph_pub, nonce, sealed = body[:32], body[32 : 32 + NONCE_BYTES], body[32 + NONCE_BYTES :]
    shared = _exchange(private, bytes(eph_pub), f"the ephemeral key of {what}")
    bound = context + box_public_bytes(private) + eph_pub
    try:
        return AESGCM(_box_key(shared, bound)).decrypt(nonce, sealed, bound)
    except InvalidTag as exc:
        raise SealError(f"{what} is not for this key or was altered") from exc


def make_key_box(recipient_pub: bytes, key: bytes, *, claim_id: int, member: str) -> bytes:
    """Encrypt the secret ``key`` (a sealing key or a member's share secret) to
    ``recipient_pub`` for ``member`` of ``claim_id``."""
    return _seal_to(recipient_pub, key, _box_context(claim_id, member))


def open_key_box(
    box: bytes,
    private: X25519PrivateKey,
    *,
    claim_id: int,
    member: str,
    size: int = KEY_BYTES,
) -> bytes:
    """Recover the ``size``-byte secret from a key box addressed to ``member`` for ``claim_id``.

    ``size`` is what the mode boxes: the 32-byte sealing key (cipherspace judging) or a
    member's 64-byte share secret (secure judging, :mod:`cipherfuse.roles.secure`).
    """
    what = f"claim {claim_id}'s key box for {member}"
    context = _box_context(claim_id, member)
    return _open_sealed_to(box, private, context, size, "a key box", what)


#: Bytes of one release piece: a 32-byte secret sealed by :func:`seal_release_piece`.
RELEASE_PIECE_BYTES = len(BOX_MAGIC) + 32 + NONCE_BYTES + KEY_BYTES + 16


def seal_release_piece(
    recipient_pub: bytes, secret: bytes, *, model_hash: bytes, index: int
) -> bytes:
    """The 32-byte ``secret`` sealed to the initiator's release key, deterministically.

    Piece ``index`` of the release envelope of the claim whose blob has SHA-256
    ``model_hash``. The ephemeral key and the nonce are derived from ``secret`` and this
    context (HKDF-SHA256), so whoever holds ``secret`` rebuilds the same bytes: a committee
    member checks the pieces of the secrets it holds against the claim's envelope
    commitment. Only the owner of the release key opens a piece. ``secret`` must be
    uniformly random (a fresh key or seed); a piece reveals nothing else about it, and a
    piece copied to another claim or position does not open.

    Raises:
        SealError: ``secret`` is not 32 bytes, or the recipient key is malformed.
    """
    if len(secret) != KEY_BYTES:
        raise SealError(f"a release piece seals a {KEY_BYTES}-byte secret, got {len(secret)}")
    context = _piece_context(model_hash, index)
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES + NONCE_BYTES,
        salt=None,
        info=b"cipherfuse-release-piece-randomness-v1|" + context + bytes(recipient_pub),
    ).derive(secret)
    ephemeral = X25519PrivateKey.from_private_bytes(derived[:KEY_BYTES])
    return _seal_to(recipient_pub, secret, context, ephemeral=ephemeral, nonce=derived[KEY_BYTES:])


def open_release_piece(
    piece: bytes, private: X25519PrivateKey, *, model_hash: bytes, index: int
) -> bytes:
    """The 32-byte secret of a :func:`seal_release_piece` piece; :class:`SealError` otherwise."""
    context = _piece_context(model_hash, index)
    what = f"release piece {index}"
    return _open_sealed_to(piece, private, context, KEY_BYTES, "a release piece", what)


def _piece_context(model_hash: bytes, index: int) -> bytes:
    if len(model_hash) != 32:
        raise SealError("a release piece is bound to a 32-byte model hash")
    return b"cipherfuse-release-piece-v1|" + model_hash + b"|%d|" % index
