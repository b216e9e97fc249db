"""Helpers of the protocol tests: three parties in threads, recording and misbehaving transports."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from cipherfuse.mpc.party import Party
from cipherfuse.mpc.randomness import setup_randomness
from cipherfuse.mpc.shares import RSS
from cipherfuse.mpc.transport import Transport, in_memory_network
from cipherfuse.nn.config import ConvSpec, DenseSpec, FlattenSpec, ModelConfig, PoolSpec
from cipherfuse.nn.model import TrainedModel, init_params
from cipherfuse.nn.quantize import QuantizedModel


def run3(
    fn: Callable[[Party], Any],
    *,
    seed: bytes = b"test",
    timeout: float = 30.0,
    wrap: Callable[[Transport], Transport] | None = None,
) -> list[Any]:
    """Run ``fn(party)`` for parties 0, 1, 2 in threads; re-raise the first error."""
    transports = list(in_memory_network(timeout=timeout))
    if wrap is not None:
        transports = [wrap(t) for t in transports]
    results: list[Any] = [None] * 3
    errors: list[BaseException | None] = [None] * 3

    def work(i: int) -> None:
        try:
            party = Party(transports[i], setup_randomness(transports[i], seed=seed))
            results[i] = fn(party)
        except BaseException as exc:
            errors[i] = exc
            transports[i].close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in errors:
        if e is not None:
            raise e
    return results


def opened(results: list[RSS]) -> np.ndarray:
    """Reconstruct three parties' RSS results (checking replicas) as signed integers."""
    from cipherfuse.mpc.shares import reconstruct

    return reconstruct(results).view(np.int64)


class RecordingTransport:
    """Forwards to ``inner`` and keeps every received frame as ``(sender, bytes)``."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.received: list[tuple[int, bytes]] = []

    @property
    def party(self) -> int:
        return self.inner.party

    @property
    def bytes_sent(self) -> int:
        return self.inner.bytes_sent

    def send(self, to: int, data: bytes | bytearray | memoryview) -> None:
        self.inner.send(to, data)

    def recv(self, frm: int) -> bytes:
        frame = self.inner.recv(frm)
        self.received.append((frm, frame))
        return frame

    def close(self) -> None:
        self.inner.close()


class TamperingTransport(RecordingTransport):
    """A deviating party: ``tamper(to, frame_number, data)`` rewrites or drops (None) frames."""

    def __init__(self, inner: Transport, tamper: Callable[[int, int, bytes], bytes | None]) -> None:
        super().__init__(inner)
        self.tamper = tamper
        self.sent_frames = 0

    def send(self, to: int, data: bytes | bytearray | memoryview) -> None:
        out = self.tamper(to, self.sent_frames, bytes(data))
        self.sent_frames += 1
        if out is not None:
            self.inner.send(to, out)


def tiny_config(
    *, features: tuple[int, int] = (4, 3), hidden: int = 6, size: int = 8, pool: str = "max"
) -> ModelConfig:
    """A demo-size CNN: conv, pool, conv, flatten, dense, (head)."""
    return ModelConfig(
        "tiny",
        (size, size, 1),
        (
            ConvSpec(features[0], (3, 3)),
            PoolSpec(pool, (2, 2)),  # type: ignore[arg-type]
            ConvSpec(features[1], (3, 3)),
            FlattenSpec(),
            DenseSpec(hidden),
        ),
    )


def random_classifier(
    config: ModelConfig, key: int, *, weight_scale: int = 32, input_scale: int = 100
) -> QuantizedModel:
    """A randomly initialised model of ``config``, quantized as a whole classifier."""
    from cipherfuse.mpc.encoding import quantize_classifier

    params = init_params(config, jax.random.key(key))
    model = TrainedModel(config, params, tuple(range(config.num_classes)))
    return quantize_classifier(model, weight_scale=weight_scale, input_scale=input_scale)


def random_images(config: ModelConfig, n: int, seed: int, q: int = 100) -> np.ndarray:
    """Public images: int64 in ``0..q`` (``round(q * x)`` of pixels in [0, 1])."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, q + 1, size=(n, *config.input_shape)).astype(np.int64)


def member_outcomes(
    bundles: Any, transports: list[Transport], images: np.ndarray, labels: Any, **kwargs: Any
) -> list[Any]:
    """Each member's result or the exception it raised (members run in threads)."""
    from cipherfuse.mpc.runtime import run_member

    out: list[Any] = [None] * 3

    def work(i: int) -> None:
        try:
            out[i] = run_member(bundles[i], transports[i], images, labels, **kwargs)
        except Exception as exc:
            out[i] = exc
            transports[i].close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out
