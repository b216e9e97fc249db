"""MPyC (the maintained honest-majority MPC framework) on the Case I CNN: the peer baseline.

Times a three-party secure forward of contributor 1's Table II CNN (215,678 secret
weights, MPyC fixed point l=32, f=16, public MNIST images, only the label opened) with
MPyC's own ``-M3`` local processes; see ``bench/mpyc_cnn.py`` for the network and the
command line. One round on three images: MPyC needs about 20 s per image.
The labels are checked against the float64 forward of the same weights.

Run: ``pytest bench/bench_mpc_mpyc.py --benchmark-only`` (skipped without ``mpyc``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("mpyc", reason="the MPyC baseline needs `pip install mpyc` (the bench extra)")

from bench.mpyc_cnn import run_mpyc_cnn

if TYPE_CHECKING:
    from bench.conftest import Benchmark

IMAGES = 3


def test_mpyc_case1_cnn(benchmark: Benchmark, mnist_dir: Path) -> None:
    reports: list[list[dict[str, Any]]] = []

    def run() -> None:
        reports.append(run_mpyc_cnn(mnist_dir, IMAGES, timeout=600))

    benchmark.group = "mpc-case1-cnn-per-image"
    benchmark.extra_info.update(role="baseline", images=IMAGES, framework="MPyC 0.11 -M3")
    benchmark.pedantic(run, rounds=1)
    parties = reports[-1]
    for report in parties:
        assert report["weights"] == 215_678
        assert report["labels"] == report["plaintext_labels"]
    benchmark.extra_info["seconds_per_image"] = [round(r["seconds_per_image"], 1) for r in parties]
    benchmark.extra_info["mb_sent_per_image"] = [
        round(r["bytes_per_image"] / 1e6, 2) for r in parties
    ]
