"""Deterministic, non-overlapping splits for the paper's case studies.

A split assigns every sample of a :class:`~cipherfuse.data.mnist.Dataset` to at
most one of: the held-out test set, the fusion (verification contributor's)
training set, or one contributor's training / local verification set.

Drawing order, all from one ``numpy`` generator seeded by ``seed``:

1. the test set and the fusion training set, stratified over the 10 classes;
2. the contributors' samples: how many of each label each contributor gets is
   the max-min fair solution of a small linear program (every contributor gets
   exactly its samples from its own labels, no label is used beyond what is
   left, the smallest per-label count is as large as possible and, second,
   the largest as small as possible), rounded to
   integers; the samples themselves are drawn at random. If the request cannot
   be met, :class:`DatasetError` says so.
3. each contributor's samples are split, stratified by label, into training and
   local verification data.

With MNIST's 10,000-image test set, Table III and Table V (1,000 + 1,000 per
contributor) leave room for a 1,000-sample fusion set and a 1,000-sample test
set: 8,000 images in all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cipherfuse.data.errors import DatasetError
from cipherfuse.data.mnist import Dataset

NUM_CLASSES = 10

#: Case Study I, Table III: labels of computing contributors 1-3.
TABLE_III_LABELS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2, 3, 4),
    (0, 6, 7, 8, 9),
    (5, 6, 7, 8, 9),
)
#: Case Study III, Table V: labels of computing contributors 1-3.
TABLE_V_LABELS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2, 3, 4, 5, 6),
    (0, 1, 2, 3, 4, 8, 9),
    (0, 1, 2, 6, 7, 8, 9),
)
ALL_LABELS: tuple[int, ...] = tuple(range(NUM_CLASSES))
#: Case Study IV, second scenario ("similar to Table III"): four federated
#: contributors, three with Table III's partial views and one with all labels.
FEDERATED_PARTIAL_LABELS: tuple[tuple[int, ...], ...] = (*TABLE_III_LABELS, ALL_LABELS)


@dataclass(frozen=True)
class Subset:
    """Samples drawn from a dataset; ``indices`` point into the source dataset."""

    images: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.indices.shape[0])


@dataclass(frozen=True)
class ContributorData:
    """One computing contributor's private data."""

    label_set: tuple[int, ...]
    train: Subset
    verify: Subset


@dataclass(frozen=True)
class CaseSplit:
    """All data of one case study: contributors, the fusion set and the held-out test set."""

    contributors: tuple[ContributorData, ...]
    fusion_train: Subset
    test: Subset
    seed: int

    def all_index_sets(self) -> list[npt.NDArray[np.int64]]:
        """Every part's source indices (for overlap checks)."""
        parts = [self.fusion_train.indices, self.test.indices]
        for c in self.contributors:
            parts += [c.train.indices, c.verify.indices]
        return parts


def _subset(data: Dataset, idx: Sequence[int] | npt.NDArray[np.int64]) -> Subset:
    arr = np.asarray(idx, dtype=np.int64)
    return Subset(images=data.images[arr], labels=data.labels[arr], indices=arr)


def _stratified_quota(counts: npt.NDArray[np.int64], n: int) -> npt.NDArray[np.int64]:
    """Split ``n`` over classes proportionally to ``counts`` (largest remainder)."""
    total = int(counts.sum())
    exact = counts * n / total
    quota = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - quota), kind="stable")
    for k in order[: n - int(quota.sum())]:
        quota[k] += 1
    return np.minimum(quota, counts)


def _take_stratified(pools: list[list[int]], n: int, what: str) -> list[int]:
    counts = np.array([len(p) for p in pools], dtype=np.int64)
    if n > int(counts.sum()):
        raise DatasetError(f"{what}: {n} samples requested but only {int(counts.sum())} remain")
    taken: list[int] = []
    for k, q in enumerate(_stratified_quota(counts, n)):
        taken += pools[k][: int(q)]
        del pools[k][: int(q)]
    return taken


def _check_label_set(label_set: Sequence[int], i: int) -> tuple[int, ...]:
    labels = tuple(int(v) for v in label_set)
    if not labels or len(set(labels)) != len(labels):
        raise DatasetError(f"label_sets[{i}] must be a non-empty set of distinct labels")
    if min(labels) < 0 or max(labels) >= NUM_CLASSES:
        raise DatasetError(f"label_sets[{i}] contains a label outside 0..{NUM_CLASSES - 1}")
    return labels


def _allocate(
    sets: Sequence[tuple[int, ...]], supply: Sequence[int], need: int
) -> list[dict[int, int]]:
    """Per-contributor, per-label sample counts: every contributor gets ``need`` samples
    from its labels, no label is over-used, and the smallest count is as large as
    possible, then the largest as small as possible (a linear program, rounded
    down then topped up)."""
    from scipy.optimize import linprog  # type: ignore[import-untyped]

    pairs = [(c, k) for c, labels in enumerate(sets) for k in labels]
    n = len(pairs)
    # variables: x (one per contributor/label pair), t (smallest x), u (largest x)
    cost = np.zeros(n + 2)
    cost[n] = -1.0  # maximise the smallest count first ...
    cost[n + 1] = 1e-3  # ... then, as a tie-break, keep the largest one small
    a_eq = np.zeros((len(sets), n + 2))
    for j, (c, _) in enumerate(pairs):
        a_eq[c, j] = 1.0
    a_ub = np.zeros((NUM_CLASSES + 2 * n, n + 2))
    for j, (_, k) in enumerate(pairs):
        a_ub[k, j] = 1.0
        a_ub[NUM_CLASSES + j, j] = -1.0  # t - x <= 0
        a_ub[NUM_CLASSES + j, n] = 1.0
        a_ub[NUM_CLASSES + n + j, j] = 1.0  # x - u <= 0
        a_ub[NUM_CLASSES + n + j, n + 1] = -1.0
    b_ub = np.concatenate([np.asarray(supply, dtype=float), np.zeros(2 * n)])
    result = linprog(
        cost,
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=a_eq,
        b_eq=np.full(len(sets), float(need)),
        bounds=[(0, None)] * (n + 2),
        method="highs",
    )
    if result.status != 0:
        raise DatasetError(
            f"cannot give {len(sets)} contributors {need} samples each from their label sets "
            f"with the {sum(supply)} samples left (per label: {list(supply)}). Lower "
            "train_per_contributor/verify_per_contributor, fusion_train_size or test_size, "
            "or use a larger dataset (e.g. the MNIST train split)."
        )
    quotas: list[dict[int, int]] = [dict.fromkeys(labels, 0) for labels in sets]
    left = [int(v) for v in supply]
    fractions: list[tuple[float, int, int]] = []
    for j, (c, k) in enumerate(pairs):
        whole = int(np.floor(result.x[j] + 1e-9))
        quotas[c][k] = whole
        left[k] -= whole
        fractions.append((result.x[j] - whole, c, k))
    fractions.sort(key=lambda item: -item[0])
    for c, labels in enumerate(sets):
        deficit = need - sum(quotas[c].values())
        candidates = [(f, k) for f, cc, k in fractions if cc == c]
        candidates += [(0.0, k) for k in labels]
        for frac, k in candidates:
            if deficit == 0:
                break
            # first one extra sample per label with a fractional LP share, then anything left
            take = min(deficit, left[k], 1 if frac > 0 else deficit)
            quotas[c][k] += take
            left[k] -= take
            deficit -= take
        if deficit:  # pragma: no cover - the LP solution guarantees room
            raise DatasetError(f"contributor {c + 1}: rounding left {deficit} samples unplaced")
    return quotas


def split_by_labels(
    data: Dataset,
    label_sets: Sequence[Sequence[int]],
    *,
    train_per_contributor: int = 1000,
    verify_per_contributor: int = 1000,
    fusion_train_size: int = 1000,
    test_size: int = 1000,
    seed: int = 0,
) -> CaseSplit:
    """Draw a case study's disjoint data split (see the module docstring).

    Args:
        data: the source dataset.
        label_sets: one label set per computing contributor (e.g. :data:`TABLE_III_LABELS`).
        train_per_contributor: training samples per contributor (paper: 1,000).
        verify_per_contributor: local verification samples per contributor (paper: 1,000).
        fusion_train_size: all-label samples the fusing party trains the MetaModel on.
        test_size: all-label held-out samples the MetaModel is evaluated on.
        seed: the split is a pure function of the data and this seed.

    Raises:
        DatasetError: a size is negative or the data cannot supply the request.
    """
    sizes = {
        "train_per_contributor": train_per_contributor,
        "verify_per_contributor": verify_per_contributor,
        "fusion_train_size": fusion_train_size,
        "test_size": test_size,
    }
    for name, value in sizes.items():
        if value < 0:
            raise DatasetError(f"{name} must be >= 0, got {value}")
    if train_per_contributor == 0:
        raise DatasetError("train_per_contributor must be >= 1")
    sets = [_check_label_set(s, i) for i, s in enumerate(label_sets)]
    rng = np.random.default_rng(seed)
    pools: list[list[int]] = []
    for k in range(NUM_CLASSES):
        members = np.flatnonzero(data.labels == k)
        pools.append([int(v) for v in rng.permutation(members)])

    test_idx = _take_stratified(pools, test_size, "test set")
    fusion_idx = _take_stratified(pools, fusion_train_size, "fusion training set")

    need = train_per_contributor + verify_per_contributor
    quotas = _allocate(sets, [len(p) for p in pools], need)
    drawn: list[list[int]] = []
    for c, labels in enumerate(sets):
        own: list[int] = []
        for label in labels:
            q = int(quotas[c][label])
            own += pools[label][:q]
            del pools[label][:q]
        drawn.append(own)

    contributors = []
    for c, labels in enumerate(sets):
        own_idx = np.array(drawn[c], dtype=np.int64)
        per_class: list[list[int]] = []
        for k in range(NUM_CLASSES):
            members = own_idx[data.labels[own_idx] == k]
            per_class.append([int(v) for v in rng.permutation(members)])
        train_idx = _take_stratified(per_class, train_per_contributor, f"contributor {c + 1}")
        verify_idx = [i for pool in per_class for i in pool]
        contributors.append(
            ContributorData(
                label_set=labels,
                train=_subset(data, rng.permutation(np.array(train_idx, dtype=np.int64))),
                verify=_subset(data, rng.permutation(np.array(verify_idx, dtype=np.int64))),
            )
        )
    return CaseSplit(
        contributors=tuple(contributors),
        fusion_train=_subset(data, rng.permutation(np.array(fusion_idx, dtype=np.int64))),
        test=_subset(data, rng.permutation(np.array(test_idx, dtype=np.int64))),
        seed=seed,
    )


def iid_split(
    data: Dataset,
    n_contributors: int,
    *,
    train_per_contributor: int = 1000,
    verify_per_contributor: int = 1000,
    fusion_train_size: int = 1000,
    test_size: int = 1000,
    seed: int = 0,
) -> CaseSplit:
    """IID split for the federated comparison: every contributor sees all 10 labels."""
    if n_contributors < 1:
        raise DatasetError(f"n_contributors must be >= 1, got {n_contributors}")
    return split_by_labels(
        data,
        [ALL_LABELS] * n_contributors,
        train_per_contributor=train_per_contributor,
        verify_per_contributor=verify_per_contributor,
        fusion_train_size=fusion_train_size,
        test_size=test_size,
        seed=seed,
    )
