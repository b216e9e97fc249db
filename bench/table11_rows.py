"""Table XI's two paper-parameter rows alone, as paired ratios: ``python bench/table11_rows.py``.

Runs the model, keys and images of ``cipherfuse reproduce table11 --seed 0`` (1,000 MNIST
test images and 1,000 seeded uniform-noise images) through the plain model and the
encrypted interface in interleaved rounds, asserts every encrypted output equal to the
quantized plaintext features, and prints one JSON line: ``ratio_paper`` and
``ratio_paper_dense`` as [median, low, high] of the per-round ratios, and the minimum times.

Options: ``--rounds N`` (15), ``--clock perf_counter|process_time`` (wall time, or the
process's CPU time over all threads: less sensitive to other jobs on a shared machine),
``--save DIR`` (write the encrypted features as .npy, to compare two installed versions
byte for byte), ``--mnist-dir DIR`` (default: $CIPHERFUSE_MNIST_DIR).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from cipherfuse import he
from cipherfuse.analysis.table11 import P, Q, _random_params, _seed
from cipherfuse.analysis.timing import interleaved_times, paired_ratio
from cipherfuse.data import load_mnist
from cipherfuse.fusion.features import quantized_features
from cipherfuse.he.nn import EncryptedModel, cipherspace_features, encrypt_model
from cipherfuse.nn.config import table6_config
from cipherfuse.nn.model import TrainedModel
from cipherfuse.nn.quantize import quantize_model


def main() -> None:
    """Parse the options, run the interleaved rounds, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--clock", choices=("perf_counter", "process_time"), default="perf_counter")
    parser.add_argument("--save", type=Path, default=None)
    parser.add_argument("--mnist-dir", type=Path, default=None)
    args = parser.parse_args()
    cfg = table6_config()
    model = TrainedModel(cfg, _random_params(cfg, 0), tuple(range(10)))
    sk = he.keygen(he.PAPER, m=1, seed=_seed(0, "paper-sk"))
    switch_key = he.identity_switch_key(sk, seed=_seed(0, "paper-M"))
    enc = encrypt_model(model, switch_key, weight_scale=P, input_scale=Q)
    fx = cipherspace_features(EncryptedModel.from_bytes(enc.to_bytes()))
    data = load_mnist("test", path=args.mnist_dir)
    images = np.ascontiguousarray(data.images[:1000], dtype=np.float32)
    dense = np.random.default_rng(0).random(images.shape).astype(np.float32)
    q = quantize_model(model, weight_scale=P, input_scale=Q, n_layers=2)
    quantized = quantized_features(model, q)
    references = {"encrypted": quantized(images), "encrypted-dense": quantized(dense)}

    def check(name: str, out: np.ndarray) -> None:
        if name in references:
            np.testing.assert_array_equal(out, references[name])
            if args.save is not None:
                args.save.mkdir(parents=True, exist_ok=True)
                np.save(args.save / f"{name}.npy", out)

    times = interleaved_times(
        {
            "plain": lambda: model.features(images),
            "encrypted": lambda: fx(images),
            "plain-dense": lambda: model.features(dense),
            "encrypted-dense": lambda: fx(dense),
        },
        args.rounds,
        check=check,
        clock=getattr(time, args.clock),
    )
    rows = {
        "ratio_paper": paired_ratio(times["encrypted"], times["plain"]),
        "ratio_paper_dense": paired_ratio(times["encrypted-dense"], times["plain-dense"]),
    }
    out: dict[str, object] = {
        name: [round(r.median, 3), round(r.low, 3), round(r.high, 3)] for name, r in rows.items()
    }
    out["min_ms"] = {name: round(1e3 * min(t), 1) for name, t in times.items()}
    out["clock"] = args.clock
    print(json.dumps(out))


if __name__ == "__main__":
    main()
