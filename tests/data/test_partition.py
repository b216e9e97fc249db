"""Case-study splits: sizes, label sets, disjointness, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest

from cipherfuse.data import (
    FEDERATED_PARTIAL_LABELS,
    TABLE_III_LABELS,
    TABLE_V_LABELS,
    CaseSplit,
    Dataset,
    DatasetError,
    iid_split,
    split_by_labels,
)


def _check_split(split: CaseSplit, data: Dataset, n_train: int, n_verify: int) -> None:
    parts = split.all_index_sets()
    joined = np.concatenate(parts)
    assert len(set(joined.tolist())) == joined.size, "splits overlap"
    for c in split.contributors:
        assert len(c.train) == n_train
        assert len(c.verify) == n_verify
        for part in (c.train, c.verify):
            assert set(part.labels.tolist()) == set(c.label_set)
            np.testing.assert_array_equal(part.labels, data.labels[part.indices])
            np.testing.assert_array_equal(part.images, data.images[part.indices])
        # stratified: per-label counts of train and verify differ by at most one
        tr = np.bincount(c.train.labels, minlength=10) * n_verify
        ve = np.bincount(c.verify.labels, minlength=10) * n_train
        assert np.all(np.abs(tr - ve) <= max(n_train, n_verify))


@pytest.mark.parametrize("label_sets", [TABLE_III_LABELS, TABLE_V_LABELS])
def test_paper_split(mnist: Dataset, label_sets: tuple[tuple[int, ...], ...]) -> None:
    split = split_by_labels(mnist, label_sets, seed=3)
    _check_split(split, mnist, 1000, 1000)
    assert [c.label_set for c in split.contributors] == list(label_sets)
    assert len(split.test) == 1000
    assert len(split.fusion_train) == 1000
    for part in (split.test, split.fusion_train):
        counts = np.bincount(part.labels, minlength=10)
        # stratified over all ten classes, proportional to the source
        expected = np.bincount(mnist.labels) / len(mnist) * 1000
        assert np.all(np.abs(counts - expected) <= 1)
    # every label a contributor owns gets a fair share (no label starved)
    for c in split.contributors:
        counts = np.bincount(c.train.labels, minlength=10)[list(c.label_set)]
        assert counts.min() >= 0.8 * 1000 / len(c.label_set)


def test_split_is_deterministic(mnist: Dataset) -> None:
    a = split_by_labels(mnist, TABLE_III_LABELS, seed=7)
    b = split_by_labels(mnist, TABLE_III_LABELS, seed=7)
    c = split_by_labels(mnist, TABLE_III_LABELS, seed=8)
    for x, y in zip(a.all_index_sets(), b.all_index_sets(), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.test.indices, c.test.indices)


def test_iid_and_partial_label_splits(mnist: Dataset) -> None:
    iid = iid_split(mnist, 4, train_per_contributor=500, verify_per_contributor=200)
    _check_split(iid, mnist, 500, 200)
    for c in iid.contributors:
        assert np.bincount(c.train.labels, minlength=10).min() >= 45
    partial = split_by_labels(
        mnist, FEDERATED_PARTIAL_LABELS, train_per_contributor=500, verify_per_contributor=200
    )
    _check_split(partial, mnist, 500, 200)


def test_infeasible_request_is_explained(mnist: Dataset) -> None:
    with pytest.raises(DatasetError, match="train_per_contributor"):
        split_by_labels(mnist, [(0,), (0,)], train_per_contributor=500, verify_per_contributor=0)


@pytest.mark.parametrize(
    ("label_sets", "kwargs", "match"),
    [
        ([(0, 0, 1)], {}, "distinct"),
        ([()], {}, "non-empty"),
        ([(3, 10)], {}, "outside"),
        ([(1, 2)], {"test_size": -1}, "test_size"),
        ([(1, 2)], {"train_per_contributor": 0}, "train_per_contributor"),
        ([(1, 2)], {"test_size": 20_000}, "test set"),
    ],
)
def test_bad_arguments(
    mnist: Dataset, label_sets: list[tuple[int, ...]], kwargs: dict[str, int], match: str
) -> None:
    with pytest.raises(DatasetError, match=match):
        split_by_labels(mnist, label_sets, **kwargs)


def test_iid_needs_contributors(mnist: Dataset) -> None:
    with pytest.raises(DatasetError, match="n_contributors"):
        iid_split(mnist, 0)
