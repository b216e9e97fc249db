"""Fixtures shared by every test area: where the MNIST test set lies.

:func:`find_mnist_dir` is the one lookup of the MNIST test set (``t10k-*-ubyte.gz``) for
the tests and benchmarks, in this order:

1. ``$CIPHERFUSE_MNIST_DIR`` when set (an error there fails the test: it was asked for);
2. ``../shared/data/mnist`` beside the repository;
3. the copy shipped in the package (:func:`cipherfuse.data.mnist.bundled_mnist_dir`,
   the same files, published md5).

A test that needs it takes the ``mnist_dir`` or ``mnist`` fixture; where none of the
three holds the files, the test is skipped with the places looked at. The benchmarks
(``bench/conftest.py``) use the same fixtures and :func:`locate_mnist_dir`.

The persistent JAX compilation cache (:mod:`cipherfuse.nn.compilation_cache`) is pointed
at a temporary folder for the session, before anything imports ``cipherfuse.nn``, so the
tests never write into the user's cache folder (subprocesses started by tests inherit the
setting). A cache folder given explicitly in ``CIPHERFUSE_JAX_CACHE_DIR`` (or ``off``) is
kept.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_CACHE_ENV = "CIPHERFUSE_JAX_CACHE_DIR"  # cipherfuse.nn.compilation_cache.ENV_VAR

if _CACHE_ENV not in os.environ:
    _session_cache = tempfile.mkdtemp(prefix="cipherfuse-test-jax-cache-")
    os.environ[_CACHE_ENV] = _session_cache
    atexit.register(shutil.rmtree, _session_cache, True)

import pytest  # noqa: E402  (after the cache setting, as every cipherfuse import below)

from cipherfuse.data import MNIST_DIR_ENV, Dataset, load_mnist  # noqa: E402
from cipherfuse.data.mnist import bundled_mnist_dir  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The data folder beside the repository (``<repo>/../shared/data/mnist``).
SIBLING_MNIST_DIR = (REPO_ROOT / ".." / "shared" / "data" / "mnist").resolve()
#: The two files of the MNIST test split.
MNIST_TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _has_test_set(folder: Path) -> bool:
    return all((folder / name).is_file() for name in MNIST_TEST_FILES)


def _places() -> list[Path]:
    return [SIBLING_MNIST_DIR, bundled_mnist_dir()]


def locate_mnist_dir() -> Path | None:
    """The folder of the MNIST test set, or ``None`` where no place holds it.

    ``$CIPHERFUSE_MNIST_DIR`` is returned as it is when set (whatever it holds): a loader
    given that folder then names what is wrong with it.
    """
    env = os.environ.get(MNIST_DIR_ENV)
    if env:
        return Path(env)
    return next((folder for folder in _places() if _has_test_set(folder)), None)


def find_mnist_dir() -> Path:
    """The folder of the MNIST test set (see the module docstring for the order).

    Calls :func:`pytest.fail` when ``$CIPHERFUSE_MNIST_DIR`` names a folder without the
    files, and :func:`pytest.skip` when no place holds them.
    """
    folder = locate_mnist_dir()
    if folder is None:
        pytest.skip(
            f"MNIST test set not found (${MNIST_DIR_ENV} unset; looked in "
            + ", ".join(str(p) for p in _places())
            + ")"
        )
    if not _has_test_set(folder):
        pytest.fail(f"${MNIST_DIR_ENV}={folder} does not hold {', '.join(MNIST_TEST_FILES)}")
    return folder


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder of the MNIST test set (:func:`find_mnist_dir`)."""
    return find_mnist_dir()


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path) -> Dataset:
    """The MNIST test set, 10,000 images, loaded from :func:`find_mnist_dir`'s folder."""
    return load_mnist(path=mnist_dir)
