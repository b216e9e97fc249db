"""The MNIST test set shipped in the package, and the demo's offline data resolution."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from cipherfuse.data import CACHE_DIR_ENV, MNIST_DIR_ENV, DatasetError, FallbackDatasetWarning
from cipherfuse.data import mnist as mnist_module
from cipherfuse.data.mnist import (
    BUNDLED_SOURCE,
    FALLBACK_SOURCE,
    bundled_mnist_dir,
    load_bundled_mnist,
    load_mnist,
)
from cipherfuse.roles.demo import DemoConfig, demo_split, load_demo_data, sizes_for
from cipherfuse.roles.errors import RoleConfigError

# The checksums LeCun et al. publish for the t10k files (written out here, not imported).
T10K_IMAGES_MD5 = "9fb629c4189551a2d022fa330f9573f3"
T10K_LABELS_MD5 = "ec29112dd5afa0611ce80d1b7f02629c"
T10K_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
PACKAGE = Path(mnist_module.__file__).resolve().parents[1]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def test_the_package_ships_the_t10k_files_with_their_licence() -> None:
    folder = bundled_mnist_dir()
    assert _md5(folder / "t10k-images-idx3-ubyte.gz") == T10K_IMAGES_MD5
    assert _md5(folder / "t10k-labels-idx1-ubyte.gz") == T10K_LABELS_MD5
    licence = (folder / "LICENSE.txt").read_text(encoding="utf-8")
    assert "CC BY-SA 3.0" in licence
    assert "LeCun" in licence


def test_the_shipped_set_loads_as_mnist_t10k() -> None:
    data = load_bundled_mnist()
    assert data.source == BUNDLED_SOURCE
    assert data.images.shape == (10_000, 28, 28, 1)
    assert np.bincount(data.labels).tolist() == T10K_COUNTS
    assert data.labels[:2].tolist() == [7, 2]  # MNIST's first two test digits


def test_a_damaged_shipped_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "mnist_t10k"
    shutil.copytree(bundled_mnist_dir(), copy)
    labels = copy / "t10k-labels-idx1-ubyte.gz"
    body = bytearray(labels.read_bytes())
    body[-1] ^= 0x01
    labels.write_bytes(bytes(body))
    monkeypatch.setattr(mnist_module, "bundled_mnist_dir", lambda: copy)
    with pytest.raises(DatasetError, match=r"md5.*reinstall"):
        load_bundled_mnist()


@pytest.fixture
def offline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No $CIPHERFUSE_MNIST_DIR, an empty cache and an empty home: a fresh machine."""
    monkeypatch.delenv(MNIST_DIR_ENV, raising=False)
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the demo's data resolution must not download")

    monkeypatch.setattr(mnist_module, "download_mnist", no_network)
    return tmp_path


def test_demo_data_resolves_offline_to_the_shipped_set(offline_env: Path) -> None:
    loaded = load_demo_data(None)
    assert loaded.warning is None
    assert loaded.data.source == BUNDLED_SOURCE
    assert len(loaded.data) == 10_000


@pytest.mark.parametrize("quick", [False, True])
def test_the_demo_sizes_fit_the_shipped_set(offline_env: Path, quick: bool) -> None:
    cfg = DemoConfig.quick() if quick else DemoConfig()
    data = load_demo_data(None).data
    assert sizes_for(cfg, data) == cfg
    assert cfg.images_needed <= len(data)
    split = demo_split(data, cfg)
    parts = [split.test.indices, split.fusion_train.indices]
    for c in split.contributors:
        assert len(c.train) == cfg.train_size
        assert len(c.verify) == cfg.verify_size
        parts += [c.train.indices, c.verify.indices]
    drawn = np.concatenate(parts)
    assert len(np.unique(drawn)) == len(drawn) == cfg.images_needed  # disjoint
    assert len(split.test) == cfg.test_size
    assert len(split.fusion_train) == cfg.fit_size + cfg.check_size
    # deterministic: the same seed draws the same images
    again = demo_split(data, cfg)
    assert np.array_equal(again.test.indices, split.test.indices)


def test_a_missing_shipped_set_falls_back_loudly_with_sizes_that_fit(
    offline_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mnist_module, "bundled_mnist_dir", lambda: offline_env / "nothing")
    with pytest.warns(FallbackDatasetWarning, match="scikit-learn"):
        loaded = load_demo_data(None)
    assert loaded.data.source == FALLBACK_SOURCE
    assert loaded.warning is not None
    assert loaded.warning.startswith("WARNING:")
    cfg = sizes_for(DemoConfig(), loaded.data)
    assert cfg.images_needed <= len(loaded.data)
    split = demo_split(loaded.data, cfg)
    assert len(split.test) == cfg.test_size


def test_sizes_that_do_not_fit_are_a_config_error(offline_env: Path) -> None:
    data = load_demo_data(None).data
    with pytest.raises(RoleConfigError, match="needs 33500 images"):
        demo_split(data, DemoConfig(train_size=10_000))


def test_load_mnist_test_split_needs_no_network(offline_env: Path) -> None:
    assert load_mnist().source == BUNDLED_SOURCE


def test_no_code_path_looks_for_a_shared_folder() -> None:
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if "../shared" in p.read_text(encoding="utf-8")
        or "shared/data" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []
