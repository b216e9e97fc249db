"""MPyC peer baseline: a secure forward of the Case I CNN (contributor 1) with 3 parties.

Not library code: the helper behind ``bench/bench_mpc_mpyc.py`` and the MPyC figure in
docs/mpc-network.md. The network is :func:`cipherfuse.nn.config.table2_config` (1):
conv 32@5x5 SAME + ReLU, 2x2 max pool, conv 16@5x5 + ReLU, 2x2 max pool, conv 8@2x2 +
ReLU, flatten (392), dense 500 + ReLU, dense 10, argmax: 215,678 weights, all secret
(input by party 0 with a fixed seed, He-scaled Gaussian values), in MPyC's 32-bit
fixed point with 16 fractional bits (``SecFxp(l=32, f=16)``, a truncation after each
secret product). Images are public MNIST test images (integer pixels 0..255, so the
first convolution is a public x secret product without communication, as in the
cipherfuse protocol); only the predicted label of each image is opened.

Run with MPyC's local processes (each party writes ``party-<i>.json`` to ``--report-dir``)::

    python bench/mpyc_cnn.py -M3 --images 2 --report-dir /tmp/mpyc-cnn

or from Python: :func:`run_mpyc_cnn` (spawns the command above, returns the figures).
MNIST is read from ``--mnist DIR`` (default ``$CIPHERFUSE_MNIST_DIR``); under pytest,
``bench_mpc_mpyc.py`` passes the ``mnist_dir`` fixture of ``tests/conftest.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from cipherfuse.nn.config import ModelConfig

#: The weights' seed: the float64 forward gives the first three test images three
#: different labels (4, 0, 6) with top-two logit margins of 18-27 % of the largest logit,
#: far above the fixed-point error, so the label check can fail.
SEED = 2
FIXED_POINT_BITS = 32
FRACTION_BITS = 16
#: (filters, kernel) of the three convolutions and the dense width of contributor 1.
CONVS = ((32, 5), (16, 5), (8, 2))
DENSE = 500
CLASSES = 10


def case1_weights(seed: int = SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """He-scaled random (kernel, bias) pairs with the shapes of the Case I CNN (1)."""
    from cipherfuse.nn.config import table2_config

    config = table2_config(1)
    rng = np.random.default_rng(seed)
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    channels = 1
    for filters, kernel in CONVS:
        fan_in = kernel * kernel * channels
        layers.append(
            (rng.normal(0, np.sqrt(2 / fan_in), (fan_in, filters)), rng.normal(0, 0.01, filters))
        )
        channels = filters
    flat = 7 * 7 * channels  # two 2x2 pools: 28 -> 7
    layers.append((rng.normal(0, np.sqrt(2 / flat), (flat, DENSE)), rng.normal(0, 0.01, DENSE)))
    layers.append(
        (rng.normal(0, np.sqrt(2 / DENSE), (DENSE, CLASSES)), rng.normal(0, 0.01, CLASSES))
    )
    count = sum(w.size + b.size for w, b in layers)
    expected = _config_weight_count(config)
    if count != expected:
        raise AssertionError(f"{count} weights, the Case I CNN has {expected}")
    return layers


def _config_weight_count(config: ModelConfig) -> int:
    from cipherfuse.nn.config import ConvSpec, DenseSpec

    total, shape = 0, config.input_shape
    for spec, out in zip(config.layers, config.shapes(), strict=True):
        if isinstance(spec, ConvSpec):
            total += int(np.prod(spec.kernel)) * shape[-1] * spec.features + spec.features
        elif isinstance(spec, DenseSpec):
            total += shape[0] * spec.features + spec.features
        shape = out
    return total + shape[0] * config.num_classes + config.num_classes


def im2col_index(size: int, channels: int, kernel: int) -> np.ndarray:
    """Gather indices of SAME-padded ``kernel`` patches of a (size, size, channels) map.

    Index ``size * size * channels`` points at an appended zero (the padding).
    """
    pad_lo = (kernel - 1) // 2
    zero = size * size * channels
    index = np.full((size * size, kernel * kernel * channels), zero, dtype=np.int64)
    for r in range(size):
        for c in range(size):
            col = 0
            for dr in range(kernel):
                for dc in range(kernel):
                    rr, cc = r + dr - pad_lo, c + dc - pad_lo
                    for ch in range(channels):
                        if 0 <= rr < size and 0 <= cc < size:
                            index[r * size + c, col] = (rr * size + cc) * channels + ch
                        col += 1
    return index


def pool_index(size: int, channels: int) -> list[np.ndarray]:
    """The four gather index arrays of a 2x2 max pool of a (size, size, channels) map."""
    half = size // 2
    r, c, ch = np.meshgrid(np.arange(half), np.arange(half), np.arange(channels), indexing="ij")
    return [
        (((2 * r + dr) * size + (2 * c + dc)) * channels + ch).reshape(-1)
        for dr in (0, 1)
        for dc in (0, 1)
    ]


def plain_forward(image: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]]) -> int:
    """The same network in float64 on integer pixels (the reference for the secure labels)."""
    x = image.astype(np.float64).reshape(-1)
    size, channels = 28, 1
    for i, (filters, kernel) in enumerate(CONVS):
        w, b = layers[i]
        patches = np.concatenate([x, [0.0]])[im2col_index(size, channels, kernel)]
        x = np.maximum(patches @ w + b, 0).reshape(-1)
        channels = filters
        if i < 2:
            x = np.max(np.stack([x[idx] for idx in pool_index(size, channels)]), axis=0)
            size //= 2
    w, b = layers[3]
    x = np.maximum(x @ w + b, 0)
    w, b = layers[4]
    return int(np.argmax(x @ w + b))


async def _secure_main(args: argparse.Namespace) -> None:
    from mpyc.runtime import mpc

    from cipherfuse.data.mnist import load_mnist_dir

    secfxp = mpc.SecFxp(FIXED_POINT_BITS, FRACTION_BITS)
    await mpc.start()
    data = load_mnist_dir(args.mnist, "test")
    images = np.rint(data.images[: args.images].reshape(-1, 28, 28) * 255).astype(np.int64)
    # the model with its first kernel divided by 255, so that integer pixels enter
    plain = case1_weights()
    plain[0] = (plain[0][0] / 255, plain[0][1])
    layers = []
    for w, b in plain:
        # party 0 owns the model; the others input nothing. integral=False on every
        # party: MPyC infers it from the local values otherwise (True for the zeros of
        # parties 1 and 2, False for party 0's weights), and the parties then take
        # different branches of np_matmul (a secure truncation on party 0 only) and
        # wait for each other forever at the second convolution.
        w_in = secfxp.array(w if mpc.pid == 0 else np.zeros_like(w), integral=False)
        b_in = secfxp.array(b if mpc.pid == 0 else np.zeros_like(b), integral=False)
        layers.append((mpc.input(w_in, senders=0), mpc.input(b_in, senders=0)))
    for w, b in layers:  # the weights are in before the clock starts
        await mpc.gather(w, b)
    indices = {
        (size, channels, kernel): im2col_index(size, channels, kernel)
        for size, channels, kernel in ((28, 1, 5), (14, 32, 5), (7, 16, 2))
    }
    pools = {(28, 32): pool_index(28, 32), (14, 16): pool_index(14, 16)}
    sent_before = _bytes_sent(mpc)
    start = time.perf_counter()
    labels = []
    for image in images:
        x: Any = None
        size, channels = 28, 1
        for i, (filters, kernel) in enumerate(CONVS):
            w, b = layers[i]
            if i == 0:  # public image x secret kernel: local
                patches = np.concatenate([image.reshape(-1), [0]])[indices[(28, 1, 5)]]
                y = mpc.np_matmul(patches, w) + b
            else:
                flat = mpc.np_concatenate((x, secfxp.array(np.zeros(1))))
                y = mpc.np_matmul(flat[indices[(size, channels, kernel)]], w) + b
            x = mpc.np_maximum(y, 0).reshape(-1)
            channels = filters
            if i < 2:
                a, bq, c, d = (x[idx] for idx in pools[(size, channels)])
                x = mpc.np_maximum(mpc.np_maximum(a, bq), mpc.np_maximum(c, d))
                size //= 2
        w, b = layers[3]
        x = mpc.np_maximum(mpc.np_matmul(x, w) + b, 0)
        w, b = layers[4]
        logits = mpc.np_matmul(x, w) + b
        labels.append(int(await mpc.output(mpc.np_argmax(logits))))
    seconds = time.perf_counter() - start
    sent = _bytes_sent(mpc) - sent_before
    expected = [plain_forward(img, plain) for img in images]
    await mpc.shutdown()
    report = {
        "party": mpc.pid,
        "images": len(images),
        "seconds": seconds,
        "seconds_per_image": seconds / len(images),
        "bytes_sent": sent,
        "bytes_per_image": sent / len(images),
        "labels": labels,
        "plaintext_labels": expected,
        "weights": int(sum(w.size + b.size for w, b in plain)),
        "fixed_point": [FIXED_POINT_BITS, FRACTION_BITS],
    }
    Path(args.report_dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(args.report_dir, f".party-{mpc.pid}.json.tmp")
    tmp.write_text(json.dumps(report))
    tmp.replace(Path(args.report_dir, f"party-{mpc.pid}.json"))


def _bytes_sent(mpc: Any) -> int:
    return sum(p.protocol.nbytes_sent for p in mpc.parties if p.pid != mpc.pid and p.protocol)


def _free_base_port(parties: int = 3) -> int:
    """A base port with ``parties`` consecutive free ports (MPyC's default, 11365, is shared
    by every MPyC run on the host, so two runs at once would connect to each other)."""
    import random
    import socket

    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(20000, 60000)
        try:
            for port in range(base, base + parties):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range for MPyC")


def run_mpyc_cnn(mnist_dir: Path, images: int = 1, timeout: float = 600.0) -> list[dict[str, Any]]:
    """Run the secure forward on ``images`` MNIST test images (from ``mnist_dir``) with
    ``-M3``; per-party reports."""
    mnist = str(mnist_dir)
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "-M3",
            "-B",
            str(_free_base_port()),
            "--no-log",
            "--images",
            str(images),
            "--mnist",
            mnist,
            "--report-dir",
            out,
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        # MPyC's -M3 party 0 starts parties 1 and 2: one process group, killed as one
        process = subprocess.Popen(command, env=env, start_new_session=True)
        paths = [Path(out, f"party-{i}.json") for i in range(3)]
        try:
            if process.wait(timeout) != 0:
                raise RuntimeError(f"MPyC party 0 exited with {process.returncode}")
            deadline = time.monotonic() + 60
            while not all(p.exists() for p in paths) and time.monotonic() < deadline:
                time.sleep(0.1)  # parties 1 and 2 write their reports after party 0
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return [json.loads(p.read_text()) for p in paths]


def main() -> None:
    from mpyc.runtime import mpc  # parses and strips MPyC's own options from sys.argv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1)
    parser.add_argument("--mnist", default=os.environ.get("CIPHERFUSE_MNIST_DIR", ""))
    parser.add_argument("--report-dir", required=True)
    args = parser.parse_args()
    mpc.run(_secure_main(args))


if __name__ == "__main__":
    main()
