"""Honest-majority three-party computation over the ring Z_2^64 (replicated secret sharing).

Each secret ring element ``x`` is split as ``x = x0 + x1 + x2 mod 2^64``; party ``i``
holds the pair ``(x_i, x_{i+1})`` (indices mod 3), so any one party's shares are
independent of ``x`` and any two reconstruct it. The committee of a claim judges the
claimed model this way without any single member being able to read it: only the
number of correct predictions on the public verification set is opened.

The roles call two functions (see docs/mpc.md):

* contributor: :func:`share_model` (a :class:`QuantizedModel` from
  :func:`quantize_classifier`) gives the three :class:`MemberBundle` s (``to_bytes``)
  and the public commitments;
* member: :func:`run_member` with its bundle, a connected :class:`Transport` and the
  verification set returns a :class:`MemberResult` with the opened count.

Modules (a DAG, lower ones first): :mod:`errors`, :mod:`allocator` (keeps freed
memory in the heap while a member judges), :mod:`transport`, :mod:`kernels`
(local share arithmetic), :mod:`randomness` (pairwise ChaCha20 keys), :mod:`shares`
(replicated shares, local operations), :mod:`plan` (the evaluation plan and its
plaintext twin), :mod:`encoding` (models and images in the ring), :mod:`linear`
(ring convolutions), :mod:`party` (resharing, cross-checked opening, costs),
:mod:`arith` (products, truncation), :mod:`boolean` (sign tests, ReLU, max, argmax),
:mod:`sharing` (model bundles, commitments), :mod:`evaluate` (the secure forward),
:mod:`runtime` (a member's whole side; three members in threads).
"""

from __future__ import annotations

from cipherfuse.mpc.encoding import plaintext_count, quantize_classifier, required_sign_bits
from cipherfuse.mpc.errors import (
    ChannelError,
    EncodingError,
    MpcError,
    PeerTimeout,
    ProtocolAbort,
    ShareInconsistency,
)
from cipherfuse.mpc.runtime import MemberResult, run_member, secure_count_in_process
from cipherfuse.mpc.sharing import MemberBundle, SharedModel, reconstruct_model, share_model
from cipherfuse.mpc.transport import Transport, in_memory_network

__all__ = [
    "ChannelError",
    "EncodingError",
    "MemberBundle",
    "MemberResult",
    "MpcError",
    "PeerTimeout",
    "ProtocolAbort",
    "ShareInconsistency",
    "SharedModel",
    "Transport",
    "in_memory_network",
    "plaintext_count",
    "quantize_classifier",
    "reconstruct_model",
    "required_sign_bits",
    "run_member",
    "secure_count_in_process",
    "share_model",
]
