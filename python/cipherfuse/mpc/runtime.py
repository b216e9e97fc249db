"""Running the secure count: one member's side, and all three in threads for tests.

A member calls :func:`run_member` with its :class:`~cipherfuse.mpc.sharing.MemberBundle`
(or its bytes), a connected :class:`~cipherfuse.mpc.transport.Transport` and the public
verification set. The steps are:

1. pairwise keys (:func:`~cipherfuse.mpc.randomness.setup_randomness`, 32 bytes each);
2. share consistency: each member checks its two shares against the commitments, then
   the three exchange ``(ok, c_0, c_1, c_2)``; any failure or disagreement raises
   :class:`ShareInconsistency` at every honest member before anything is computed;
3. the secure evaluation in batches of images (:func:`cipherfuse.mpc.evaluate.secure_hits`),
   the per-image hits summed locally (and, if asked, per label);
4. one cross-checked opening of the count(s) only (:meth:`Party.open`), and one byte
   each way confirming the outcome (:func:`confirm_outcome`), so that the honest
   members agree on an abort.

:func:`secure_count_in_process` runs the three members in threads over
:func:`~cipherfuse.mpc.transport.in_memory_network`; :func:`plaintext_count` (from
:mod:`cipherfuse.mpc.encoding`) is the reference it must equal.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from cipherfuse.mpc.allocator import retain_freed_memory
from cipherfuse.mpc.boolean import DEFAULT_SIGN_BIT, SignMethod
from cipherfuse.mpc.encoding import check_classifier, plaintext_count
from cipherfuse.mpc.errors import (
    ChannelError,
    EncodingError,
    MpcError,
    ProtocolAbort,
    ShareInconsistency,
)
from cipherfuse.mpc.evaluate import secure_hits
from cipherfuse.mpc.linear import LinearKernel
from cipherfuse.mpc.party import CostMeter, Party
from cipherfuse.mpc.randomness import setup_randomness
from cipherfuse.mpc.shares import RSS
from cipherfuse.mpc.sharing import MemberBundle, share_model
from cipherfuse.mpc.transport import PARTIES, Transport, in_memory_network
from cipherfuse.nn.quantize import IntArray, QuantizedModel

#: Images evaluated together. Smaller batches keep a sign test's bit planes in cache
#: (measured for Case I: 50 images per batch cost ~35 % less CPU than 250) at the price of
#: more rounds (a fixed number per batch); memory is ~0.4 MB per image and party.
DEFAULT_BATCH = 50


@dataclass(frozen=True)
class MemberResult:
    """What a member learns: the opened count (and per-label counts if asked), and costs."""

    party: int
    count: int
    per_label: tuple[int, ...] | None
    cost: CostMeter = field(compare=False)


def check_consistency(
    party: Party, bundle: MemberBundle, *, refuse: str | None = None
) -> tuple[QuantizedModel, dict[str, RSS]]:
    """Step 2 above: own shares vs commitments, then the commitment triples of all three.

    ``refuse`` (a reason) reports this member's shares as unusable to both peers, as a
    failed own check does, and raises :class:`ShareInconsistency` with it: for what the
    caller checked itself (the roles' release envelope), so the peers abort at once.
    """
    try:
        skeleton, params = bundle.parameter_shares()
        ok = b"\x01"
        failure: ShareInconsistency | None = None
    except ShareInconsistency as exc:
        ok, failure = b"\x00", exc
    if failure is None and refuse is not None:
        ok, failure = b"\x00", ShareInconsistency(refuse, blamed=None)
    message = ok + b"".join(bundle.commitments)
    with party.phase("consistency"):
        for peer in (party.next, party.prev):
            party.transport.send(peer, message)
            party.cost.charge(0, len(message))
        replies = {peer: party.transport.recv(peer) for peer in (party.next, party.prev)}
        party.round()
    if failure is not None:
        raise failure
    for peer, reply in replies.items():
        if len(reply) != len(message):
            raise ShareInconsistency(
                f"member {peer} sent a malformed commitment triple", blamed=peer
            )
        if reply[:1] != b"\x01":
            raise ShareInconsistency(
                f"member {peer} reports shares that do not match the commitments", blamed=None
            )
        if reply[1:] != message[1:]:
            raise ShareInconsistency(
                f"members {party.index} and {peer} hold different commitments", blamed=None
            )
    return skeleton, params


def confirm_outcome(party: Party, *, ok: bool) -> None:
    """Tell both peers whether this member accepted the opening; abort if either did not.

    One round of one byte each way. With at most one deviating member, an honest member
    that detected a wrong opened share makes the other honest member abort too, so the
    honest members agree on the outcome (a deviating member can always force an abort).

    Raises:
        ProtocolAbort: a peer reported an abort or sent something other than one status byte.
    """
    status = b"\x01" if ok else b"\x00"
    for peer in (party.next, party.prev):
        party.transport.send(peer, status)
        party.cost.charge(0, 1)
    replies = {peer: party.transport.recv(peer) for peer in (party.next, party.prev)}
    party.round()
    for peer, reply in replies.items():
        if reply not in (b"\x00", b"\x01"):
            raise ProtocolAbort(f"member {peer} sent a malformed outcome", blamed=peer)
        if ok and reply == b"\x00":
            raise ProtocolAbort(f"member {peer} detected a deviation at the opening", blamed=None)


def run_member(
    bundle: MemberBundle | bytes,
    transport: Transport,
    images: IntArray,
    labels: npt.ArrayLike,
    *,
    sign_bit: int = DEFAULT_SIGN_BIT,
    batch: int = DEFAULT_BATCH,
    per_label: bool = False,
    seed: bytes | None = None,
    sign_method: SignMethod = "two_addends",
    linear_kernel: LinearKernel = "gemm",
    retain_memory: bool = True,
    refuse: str | None = None,
) -> MemberResult:
    """One member's whole side of the secure count; returns the opened count.

    Args:
        bundle: this member's bundle (``party`` must equal ``transport.party``).
        transport: connected to the two other members.
        images: the public verification inputs, int64 ``round(q * x)``.
        labels: their public labels.
        sign_bit: the comparisons' bit (63: exact for all values; smaller: a public
            bound of the task, see :func:`cipherfuse.mpc.encoding.required_sign_bits`).
        batch: images per evaluation batch.
        per_label: also open the number of correct predictions per label.
        seed: makes the pairwise keys reproducible (tests, benchmarks only).
        sign_method: the sign-test circuit (:data:`cipherfuse.mpc.boolean.SIGN_METHODS`;
            all three members must agree; same count).
        linear_kernel: the local linear-layer kernel
            (:data:`cipherfuse.mpc.linear.LINEAR_KERNELS`; same count).
        retain_memory: first call :func:`cipherfuse.mpc.allocator.retain_freed_memory`
            (process-wide: freed batch temporaries stay in the heap instead of being
            mapped and page-faulted anew; about a quarter of a member process's CPU
            time for the Case I CNN). ``False`` leaves the allocator as it is.
        refuse: a reason this member refuses the claimant's material, found by the
            caller's own checks: reported to the peers at the consistency step (they
            abort) and raised as :class:`ShareInconsistency` before any computation.

    Raises:
        ShareInconsistency: inconsistent shares (before any computation).
        ProtocolAbort: a deviation at an opening or a malformed message.
        PeerTimeout / ChannelError: a member stopped answering or closed its channel.
    """
    if isinstance(bundle, bytes):
        bundle = MemberBundle.from_bytes(bundle)
    if bundle.party != transport.party:
        raise EncodingError(
            f"bundle of member {bundle.party} on party {transport.party}'s transport"
        )
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    x = np.ascontiguousarray(images, dtype=np.int64)
    if x.shape[0] != lab.shape[0] or x.shape[0] == 0:
        raise EncodingError(f"{x.shape[0]} images and {lab.shape[0]} labels")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if retain_memory:
        retain_freed_memory()
    with_setup = Party(transport, setup_randomness(transport, seed=seed))
    party = with_setup
    party.cost.charge(1, 32)
    skeleton, params = check_consistency(party, bundle, refuse=refuse)
    classes = check_classifier(skeleton)
    if lab.size and (lab.min() < 0 or lab.max() >= classes):
        raise EncodingError(f"labels must be in 0..{classes - 1}")
    totals: RSS | None = None
    for start in range(0, x.shape[0], batch):
        hits = secure_hits(
            party,
            skeleton,
            params,
            x[start : start + batch],
            lab[start : start + batch],
            sign_bit=sign_bit,
            sign_method=sign_method,
            linear_kernel=linear_kernel,
        )
        onehot = (lab[start : start + batch, None] == np.arange(classes)[None, :]).astype(np.uint64)
        with np.errstate(over="ignore"):
            rows = [hits.first.sum(dtype=np.uint64)[None], hits.second.sum(dtype=np.uint64)[None]]
            if per_label:
                rows[0] = np.concatenate(
                    [rows[0], (hits.first[:, None] * onehot).sum(axis=0, dtype=np.uint64)]
                )
                rows[1] = np.concatenate(
                    [rows[1], (hits.second[:, None] * onehot).sum(axis=0, dtype=np.uint64)]
                )
            part = RSS(rows[0], rows[1])
            totals = part if totals is None else totals + part
    assert totals is not None
    with party.phase("open"):
        try:
            opened = party.open(totals).view(np.int64)
        except ProtocolAbort as exc:
            confirm_outcome(party, ok=False)
            raise exc
        confirm_outcome(party, ok=True)
    counts = tuple(int(v) for v in opened)
    return MemberResult(
        party=party.index,
        count=counts[0],
        per_label=counts[1:] if per_label else None,
        cost=party.cost,
    )


def run_three_members(
    bundles: tuple[MemberBundle | bytes, MemberBundle | bytes, MemberBundle | bytes],
    transports: tuple[Transport, Transport, Transport],
    images: IntArray,
    labels: npt.ArrayLike,
    **kwargs: object,
) -> tuple[MemberResult, MemberResult, MemberResult]:
    """Run :func:`run_member` for the three parties in threads; re-raise a member's error.

    A member that fails closes its transport, so the others stop too. If several fail,
    the most specific error is raised (a deviation before a closed channel).
    """
    results: list[MemberResult | None] = [None] * PARTIES
    errors: list[BaseException | None] = [None] * PARTIES

    def work(i: int) -> None:
        try:
            results[i] = run_member(bundles[i], transports[i], images, labels, **kwargs)  # type: ignore[arg-type]
        except BaseException as exc:
            errors[i] = exc
            transports[i].close()

    threads = [
        threading.Thread(target=work, args=(i,), name=f"mpc-party-{i}") for i in range(PARTIES)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    raised = [e for e in errors if e is not None]
    if raised:
        specific = [
            e for e in raised if isinstance(e, MpcError) and not isinstance(e, ChannelError)
        ]
        raise (specific or raised)[0]
    return results[0], results[1], results[2]  # type: ignore[return-value]


def secure_count_in_process(
    model: QuantizedModel,
    images: IntArray,
    labels: npt.ArrayLike,
    *,
    seed: bytes | None = None,
    timeout: float = 60.0,
    **kwargs: object,
) -> tuple[MemberResult, MemberResult, MemberResult]:
    """Share ``model`` and run the three members in threads over an in-memory network."""
    shared = share_model(model, seed=seed)
    transports = in_memory_network(timeout=timeout)
    return run_three_members(shared.bundles, transports, images, labels, seed=seed, **kwargs)


__all__ = [
    "DEFAULT_BATCH",
    "MemberResult",
    "check_consistency",
    "confirm_outcome",
    "plaintext_count",
    "run_member",
    "run_three_members",
    "secure_count_in_process",
]
