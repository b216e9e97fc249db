"""Datasets for the paper's case studies.

* MNIST from validated IDX files (:func:`load_mnist`), with md5-verified download
  and scikit-learn's digits as an explicit offline fallback;
* the case studies' deterministic, disjoint splits (:func:`split_by_labels`,
  :data:`TABLE_III_LABELS`, :data:`TABLE_V_LABELS`, :func:`iid_split`);
* a synthetic fading-channel link-power dataset for Case Study V (:func:`make_fading_sets`).
"""

from cipherfuse.data.errors import DatasetError, DownloadError
from cipherfuse.data.fading import FadingConfig, FadingSet, generate_link_power, make_fading_sets
from cipherfuse.data.idx import parse_idx, read_idx
from cipherfuse.data.mnist import (
    CACHE_DIR_ENV,
    DEFAULT_MIRRORS,
    MNIST_DIR_ENV,
    MNIST_FILES,
    Dataset,
    FallbackDatasetWarning,
    download_mnist,
    load_mnist,
    load_mnist_dir,
    load_sklearn_digits,
    portable_source,
)
from cipherfuse.data.partition import (
    ALL_LABELS,
    FEDERATED_PARTIAL_LABELS,
    TABLE_III_LABELS,
    TABLE_V_LABELS,
    CaseSplit,
    ContributorData,
    Subset,
    iid_split,
    split_by_labels,
)

__all__ = [
    "ALL_LABELS",
    "CACHE_DIR_ENV",
    "DEFAULT_MIRRORS",
    "FEDERATED_PARTIAL_LABELS",
    "MNIST_DIR_ENV",
    "MNIST_FILES",
    "TABLE_III_LABELS",
    "TABLE_V_LABELS",
    "CaseSplit",
    "ContributorData",
    "Dataset",
    "DatasetError",
    "DownloadError",
    "FadingConfig",
    "FadingSet",
    "FallbackDatasetWarning",
    "Subset",
    "download_mnist",
    "generate_link_power",
    "iid_split",
    "load_mnist",
    "load_mnist_dir",
    "load_sklearn_digits",
    "make_fading_sets",
    "parse_idx",
    "portable_source",
    "read_idx",
    "split_by_labels",
]
