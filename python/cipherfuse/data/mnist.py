"""MNIST loading: a given path, the cache, the copy shipped in the package, a download.

Sources are tried in that order (:func:`load_mnist`). The package ships MNIST's
10,000-image test set (``t10k-*.gz``, CC BY-SA 3.0, see ``mnist_t10k/LICENSE.txt``),
md5-checked at every load (:func:`load_bundled_mnist`), so the test split needs no
network. When no source works and the caller allows it, scikit-learn's 8x8 digits,
resampled to 28x28, are the last resort; the returned :class:`Dataset` says so in
``source`` and a :class:`FallbackDatasetWarning` is emitted.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import urllib.error
import urllib.request
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from cipherfuse.data.errors import DatasetError, DownloadError
from cipherfuse.data.idx import read_idx
from cipherfuse.files import atomic_writer

#: Environment variable naming a directory holding the MNIST IDX files.
MNIST_DIR_ENV = "CIPHERFUSE_MNIST_DIR"
#: Environment variable overriding the download cache directory.
CACHE_DIR_ENV = "CIPHERFUSE_CACHE_DIR"

#: Standard public mirrors, tried in order.
DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

#: Published md5 checksums of the gzip files.
MNIST_FILES: dict[str, tuple[str, str, str, str]] = {
    # split: (images file, images md5, labels file, labels md5)
    "train": (
        "train-images-idx3-ubyte.gz",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz",
        "d53e105ee54ea40749a09fcbcd1e9432",
    ),
    "test": (
        "t10k-images-idx3-ubyte.gz",
        "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz",
        "ec29112dd5afa0611ce80d1b7f02629c",
    ),
}

Split = Literal["train", "test"]

#: ``Dataset.source`` of the test set shipped inside the package.
BUNDLED_SOURCE = "MNIST test set shipped with cipherfuse"
#: ``Dataset.source`` of the scikit-learn fallback.
FALLBACK_SOURCE = "sklearn-digits"


class FallbackDatasetWarning(UserWarning):
    """MNIST was unavailable and scikit-learn's digits were used instead."""


@dataclass(frozen=True)
class Dataset:
    """Images and integer labels.

    Attributes:
        images: float32 array ``(n, 28, 28, 1)`` with values in ``[0, 1]``.
        labels: int64 array ``(n,)`` with values in ``0..9``.
        source: where the data came from (a directory, a URL, or ``sklearn-digits``).
    """

    images: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def default_cache_dir() -> Path:
    """The download cache: ``$CIPHERFUSE_CACHE_DIR/mnist`` or ``~/.cache/cipherfuse/mnist``."""
    base = os.environ.get(CACHE_DIR_ENV)
    root = Path(base) if base else Path.home() / ".cache" / "cipherfuse"
    return root / "mnist"


def md5_of(path: Path) -> str:
    """Hex md5 digest of a file (used only to match the published MNIST checksums)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _validate_pair(
    images: npt.NDArray[np.generic], labels: npt.NDArray[np.generic], where: str
) -> Dataset:
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DatasetError(
            f"MNIST images in {where} have shape {images.shape} / dtype {images.dtype}; "
            "expected (n, 28, 28) uint8"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DatasetError(f"MNIST labels in {where} have shape {labels.shape}; expected (n,)")
    if labels.shape[0] != images.shape[0]:
        raise DatasetError(
            f"MNIST files in {where} disagree: {images.shape[0]} images, {labels.shape[0]} labels"
        )
    if labels.size and int(labels.max()) > 9:
        raise DatasetError(f"MNIST labels in {where} contain {int(labels.max())} (> 9)")
    x = (images.astype(np.float32) / 255.0)[..., None]
    return Dataset(images=x, labels=labels.astype(np.int64), source=where)


def load_mnist_dir(directory: str | os.PathLike[str], split: Split = "test") -> Dataset:
    """Load one MNIST split from IDX files (``.gz`` or uncompressed) in ``directory``."""
    directory = Path(directory)
    if split not in MNIST_FILES:
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    img_name, _, lbl_name, _ = MNIST_FILES[split]
    paths = []
    for name in (img_name, lbl_name):
        gz = directory / name
        raw = directory / name.removesuffix(".gz")
        if gz.is_file():
            paths.append(gz)
        elif raw.is_file():
            paths.append(raw)
        else:
            raise DatasetError(f"MNIST file {gz} not found (nor {raw.name})")
    images = read_idx(paths[0])
    labels = read_idx(paths[1])
    if images.ndim != 3:
        raise DatasetError(f"IDX file {paths[0]} is not an image file (ndim {images.ndim})")
    if labels.ndim != 1:
        raise DatasetError(f"IDX file {paths[1]} is not a label file (ndim {labels.ndim})")
    return _validate_pair(images, labels, str(directory))


def bundled_mnist_dir() -> Path:
    """The package folder holding MNIST's test set (``t10k-*-ubyte.gz`` and its licence)."""
    return Path(str(importlib.resources.files("cipherfuse.data") / "mnist_t10k"))


def load_bundled_mnist() -> Dataset:
    """MNIST's 10,000-image test set shipped in the package, md5-checked before parsing.

    Raises:
        DatasetError: a file is missing or its md5 differs from the published one
            (a damaged installation; reinstall cipherfuse).
    """
    directory = bundled_mnist_dir()
    img_name, img_md5, lbl_name, lbl_md5 = MNIST_FILES["test"]
    for name, md5 in ((img_name, img_md5), (lbl_name, lbl_md5)):
        path = directory / name
        if not path.is_file():
            raise DatasetError(f"the shipped MNIST file {path} is missing; reinstall cipherfuse")
        actual = md5_of(path)
        if actual != md5:
            raise DatasetError(
                f"the shipped MNIST file {path} has md5 {actual}, expected {md5}; "
                "reinstall cipherfuse"
            )
    data = load_mnist_dir(directory, "test")
    return Dataset(images=data.images, labels=data.labels, source=BUNDLED_SOURCE)


class _Md5Mismatch(Exception):
    """A mirror served bytes with the wrong md5 (caught in :func:`_fetch_one`)."""


def _fetch_one(name: str, md5: str, dest_dir: Path, mirrors: Sequence[str], timeout: float) -> Path:
    dest = dest_dir / name
    if dest.is_file() and md5_of(dest) == md5:
        return dest
    failures: list[str] = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        try:
            digest = hashlib.md5(usedforsecurity=False)
            # 0600; the file is fsynced, not the folder (created by download_mnist); a
            # wrong md5 raises inside the block, so the temporary file is dropped.
            with (
                atomic_writer(dest, mode=0o600, sync_folder=False, parents=False) as out,
                urllib.request.urlopen(url, timeout=timeout) as resp,
            ):
                while chunk := resp.read(1 << 16):
                    digest.update(chunk)
                    out.write(chunk)
                if digest.hexdigest() != md5:
                    raise _Md5Mismatch(f"{url}: md5 {digest.hexdigest()} != {md5}")
            return dest
        except _Md5Mismatch as exc:
            failures.append(str(exc))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            failures.append(f"{url}: {exc}")
    raise DownloadError(
        f"could not download {name}: " + "; ".join(failures or ["no mirrors given"])
    )


def download_mnist(
    dest_dir: Path,
    split: Split = "test",
    *,
    mirrors: Sequence[str] = DEFAULT_MIRRORS,
    timeout: float = 30.0,
) -> Path:
    """Download one split into ``dest_dir`` (atomically, md5-verified) and return the directory.

    Files already present with the right md5 are kept. Raises :class:`DownloadError`
    listing every mirror's failure when no mirror delivers a matching file.
    """
    if split not in MNIST_FILES:
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    img_name, img_md5, lbl_name, lbl_md5 = MNIST_FILES[split]
    _fetch_one(img_name, img_md5, dest_dir, mirrors, timeout)
    _fetch_one(lbl_name, lbl_md5, dest_dir, mirrors, timeout)
    return dest_dir


def load_sklearn_digits() -> Dataset:
    """scikit-learn's 1,797 bundled 8x8 digits, nearest-neighbour resampled to 28x28 in [0, 1]."""
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]

    bunch = load_digits()
    small = np.asarray(bunch.images, dtype=np.float32) / 16.0
    idx = (np.arange(28) * 8) // 28
    big = small[:, idx][:, :, idx]
    return Dataset(
        images=big[..., None].astype(np.float32),
        labels=np.asarray(bunch.target, dtype=np.int64),
        source=FALLBACK_SOURCE,
    )


def load_mnist(
    split: Split = "test",
    *,
    path: str | os.PathLike[str] | None = None,
    cache_dir: Path | None = None,
    download: bool = True,
    mirrors: Sequence[str] = DEFAULT_MIRRORS,
    allow_fallback: bool = False,
    timeout: float = 30.0,
) -> Dataset:
    """Load MNIST, trying in order: ``path`` (or ``$CIPHERFUSE_MNIST_DIR``), the cache,
    the shipped copy (test split only), a download.

    Args:
        split: ``"test"`` (10,000 images) or ``"train"`` (60,000).
        path: a directory with the IDX files; an error there is raised, not skipped,
            because the caller asked for exactly that directory.
        cache_dir: where downloads go; default :func:`default_cache_dir`.
        download: whether to try the mirrors when the cache lacks the files.
        mirrors: base URLs to try in order.
        allow_fallback: when every source fails, return scikit-learn's digits
            (``source == "sklearn-digits"``, with a :class:`FallbackDatasetWarning`)
            instead of raising.
        timeout: per-request timeout in seconds for downloads.

    Raises:
        DatasetError: the given directory's files are missing or corrupt, or
            nothing was reachable and ``allow_fallback`` is false.
    """
    if path is None and os.environ.get(MNIST_DIR_ENV):
        path = Path(os.environ[MNIST_DIR_ENV])
    if path is not None:
        return load_mnist_dir(path, split)
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    problems: list[str] = []
    try:
        return load_mnist_dir(cache, split)
    except DatasetError as exc:
        problems.append(f"cache: {exc}")
    if split == "test":
        try:
            return load_bundled_mnist()
        except DatasetError as exc:
            problems.append(f"shipped copy: {exc}")
    if download:
        try:
            download_mnist(cache, split, mirrors=mirrors, timeout=timeout)
            return load_mnist_dir(cache, split)
        except DatasetError as exc:
            problems.append(f"download: {exc}")
    if allow_fallback:
        warnings.warn(
            "MNIST unavailable (" + " | ".join(problems) + "); using scikit-learn's 8x8 "
            "digits resampled to 28x28 instead. Accuracies are not comparable to the paper's.",
            FallbackDatasetWarning,
            stacklevel=2,
        )
        return load_sklearn_digits()
    raise DatasetError(
        "MNIST not found: " + " | ".join(problems) + f". Put the IDX files in a directory and "
        f"pass path= or set ${MNIST_DIR_ENV}, or allow_fallback=True for scikit-learn digits."
    )


def portable_source(source: str) -> str:
    """``Dataset.source`` as published results should record it: without a machine's path.

    The shipped copy, the scikit-learn fallback and URLs are returned unchanged. A
    directory becomes ``"MNIST IDX files in a local directory (...)"`` saying, for each
    split whose ``.gz`` files it holds, whether they carry the published md5, so a
    result says which data it was measured on without naming where that data lay.
    """
    if source in (BUNDLED_SOURCE, FALLBACK_SOURCE) or "://" in source:
        return source
    directory = Path(source)
    checks: list[str] = []
    if directory.is_dir():
        for split, (img_name, img_md5, lbl_name, lbl_md5) in MNIST_FILES.items():
            img, lbl = directory / img_name, directory / lbl_name
            if img.is_file() and lbl.is_file():
                same = md5_of(img) == img_md5 and md5_of(lbl) == lbl_md5
                checks.append(f"{split}: {'published md5' if same else 'md5 not the published'}")
    detail = "; ".join(checks) if checks else "md5 not checked"
    return f"MNIST IDX files in a local directory ({detail})"
