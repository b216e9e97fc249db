"""A party of the three-party computation: index, transport, randomness, cost accounting.

Communication primitives (every protocol is built from these):

* :meth:`Party.reshare` turns a 3-out-of-3 additive sharing ``z_i`` (one word per
  element from each party) into replicated shares: party ``i`` sends ``z_i`` to party
  ``i - 1`` and receives ``z_{i+1}`` from party ``i + 1``. One round, output-sized.
* :meth:`Party.open` reveals a shared tensor to all three with a cross-check: each
  party's missing component ``x_{i+2}`` is held by *both* other parties, and both send
  it; different values stop the protocol (:class:`ProtocolAbort`), so a single
  deviating party cannot make an honest one accept a wrong opened value.

Every received frame has an exact expected length; a frame of another length is a
deviation of its (authenticated) sender and raises :class:`ProtocolAbort` naming it.
:class:`CostMeter` counts rounds and bytes sent per labelled phase (layer).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from cipherfuse.mpc.errors import ProtocolAbort
from cipherfuse.mpc.randomness import PairwiseRandomness
from cipherfuse.mpc.shares import RSS, BoolRSS
from cipherfuse.mpc.transport import PARTIES, Transport

U64Array = npt.NDArray[np.uint64]


@dataclass
class PhaseCost:
    """Rounds, payload bytes sent, wall seconds and this thread's CPU seconds in one phase.

    CPU seconds count this party's own work (its kernels run on its thread), so they
    stay meaningful on a loaded machine where wall seconds include waiting for a core.
    """

    rounds: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0


@dataclass
class CostMeter:
    """Per-phase cost of one party; ``phase`` labels what runs now."""

    phases: dict[str, PhaseCost] = field(default_factory=dict)
    phase: str = "setup"

    def charge(self, rounds: int, nbytes: int) -> None:
        """Add ``rounds`` and ``nbytes`` to the current phase."""
        cost = self.phases.setdefault(self.phase, PhaseCost())
        cost.rounds += rounds
        cost.bytes_sent += nbytes

    @property
    def rounds(self) -> int:
        """Total rounds."""
        return sum(c.rounds for c in self.phases.values())

    @property
    def bytes_sent(self) -> int:
        """Total payload bytes sent."""
        return sum(c.bytes_sent for c in self.phases.values())


def _words(frame: bytes, count: int, sender: int) -> U64Array:
    if len(frame) != 8 * count:
        raise ProtocolAbort(
            f"party {sender} sent {len(frame)} bytes where {8 * count} were due", blamed=sender
        )
    words: U64Array = np.frombuffer(frame, dtype="<u8").astype(np.uint64, copy=False)
    return words


class Party:
    """Party ``transport.party`` of the computation, with its pairwise randomness."""

    def __init__(self, transport: Transport, randomness: PairwiseRandomness) -> None:
        if transport.party != randomness.party:
            raise ValueError("transport and randomness belong to different parties")
        self.index = transport.party
        self.transport = transport
        self.rand = randomness
        self.cost = CostMeter()
        self._turn = 0

    def next_leader(self) -> int:
        """A rotating party index (0, 1, 2, 0, ...), the same at all three parties.

        Protocols whose traffic falls mostly on one party take turns with it, so the
        busiest party's load is the average.
        """
        leader = self._turn % PARTIES
        self._turn += 1
        return leader

    @property
    def next(self) -> int:
        """Party ``i + 1``."""
        return (self.index + 1) % PARTIES

    @property
    def prev(self) -> int:
        """Party ``i - 1``."""
        return (self.index - 1) % PARTIES

    @contextlib.contextmanager
    def phase(self, label: str) -> Iterator[None]:
        """Charge the costs (and wall time) inside the block to ``label``."""
        saved = self.cost.phase
        self.cost.phase = label
        self.cost.phases.setdefault(label, PhaseCost())
        start, cpu_start = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.cost.phases[label].seconds += time.perf_counter() - start
            self.cost.phases[label].cpu_seconds += time.thread_time() - cpu_start
            self.cost.phase = saved

    # -- raw word exchange -------------------------------------------------------------
    def send_words(self, to: int, words: U64Array) -> None:
        """Send a flat uint64 array to party ``to`` as one frame (little-endian).

        The transport gets a view of the words, not a copy: :meth:`Transport.send` seals
        (TCP) or copies (in memory) the frame before it returns.
        """
        data = np.ascontiguousarray(words, dtype="<u8").data.cast("B")
        self.transport.send(to, data)
        self.cost.charge(0, data.nbytes)

    def recv_words(self, frm: int, count: int) -> U64Array:
        """Receive exactly ``count`` words from party ``frm``."""
        return _words(self.transport.recv(frm), count, frm)

    def round(self) -> None:
        """Count one communication round in the current phase."""
        self.cost.charge(1, 0)

    # -- resharing and opening ---------------------------------------------------------
    def reshare(self, z: U64Array) -> RSS:
        """3-out-of-3 ``z_i`` (any shape) to replicated ``(z_i, z_{i+1})``; one round."""
        flat = np.ascontiguousarray(z, dtype=np.uint64).reshape(-1)
        self.send_words(self.prev, flat)
        got = self.recv_words(self.next, flat.size)
        self.round()
        return RSS(flat.reshape(z.shape), got.reshape(z.shape))

    def reshare_bool(self, z: U64Array) -> BoolRSS:
        """Boolean counterpart of :meth:`reshare` (the words are XOR shares)."""
        r = self.reshare(z)
        return BoolRSS(r.first, r.second)

    def open(self, x: RSS) -> U64Array:
        """Reveal ``x`` to all three parties, cross-checking the missing component.

        Raises:
            ProtocolAbort: the two copies of the missing component differ (one of the two
                other parties deviated; this party cannot tell which, so ``blamed`` is
                ``None``), or a frame had the wrong length (``blamed`` is its sender).
        """
        first = np.ascontiguousarray(x.first).reshape(-1)
        second = np.ascontiguousarray(x.second).reshape(-1)
        self.send_words(self.next, first)  # party i+1 misses x_i
        self.send_words(self.prev, second)  # party i-1 misses x_{i+1}
        from_next = self.recv_words(self.next, first.size)
        from_prev = self.recv_words(self.prev, first.size)
        self.round()
        if not np.array_equal(from_next, from_prev):
            bad = int(np.count_nonzero(from_next != from_prev))
            raise ProtocolAbort(
                f"party {self.index}: parties {self.next} and {self.prev} sent different "
                f"values of share x_{(self.index + 2) % PARTIES} ({bad} of {first.size} words)",
                blamed=None,
            )
        with np.errstate(over="ignore"):
            total: U64Array = first + second + from_next
        return total.reshape(x.shape)
