"""Honest-majority three-party computation over the ring Z_2^64 (replicated secret sharing).

Each secret ring element ``x`` is split as ``x = x0 + x1 + x2 mod 2^64``; party ``i``
holds the pair ``(x_i, x_{i+1})`` (indices mod 3), so any one party's shares are
independent of ``x`` and any two reconstruct it. The committee of a claim judges the
claimed model this way without any single member being able to read it.

Modules (a DAG, lower ones first): :mod:`errors`, :mod:`transport` (how the three
parties exchange bytes), :mod:`kernels` (local share arithmetic on uint64 arrays, C++
with a numpy reference).
"""

from __future__ import annotations

from cipherfuse.mpc.errors import (
    ChannelError,
    MpcError,
    PeerTimeout,
    ProtocolAbort,
    ShareInconsistency,
)

__all__ = [
    "ChannelError",
    "MpcError",
    "PeerTimeout",
    "ProtocolAbort",
    "ShareInconsistency",
]
