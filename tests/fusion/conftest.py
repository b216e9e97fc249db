"""Fixtures for the fusion tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cipherfuse.data import MNIST_DIR_ENV, Dataset, load_mnist

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def mnist() -> Dataset:
    env = os.environ.get(MNIST_DIR_ENV)
    path = Path(env) if env else (REPO_ROOT / ".." / "shared" / "data" / "mnist").resolve()
    return load_mnist(path=path)
