"""One interface for the features a fused model consumes.

The initiator computes a private model's feature vector ``f_i`` in plaintext
(:class:`PlainFeatures`); a verifier computes the first layers in cipherspace
and the rest in plaintext (:class:`PrefixFeatures`, given any function that
returns the prefix's decrypted integer output and its scale). The plain
integer reference of that prefix is :func:`quantized_features`. Fusion only
sees the :class:`FeatureExtractor` protocol, so the encrypted implementation
plugs in without changes here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from cipherfuse.fusion.errors import FusionError
from cipherfuse.nn.model import TrainedModel
from cipherfuse.nn.quantize import QuantizedModel, integer_forward, quantize_inputs

FloatArray = npt.NDArray[np.float32]
#: Maps float inputs to (integer outputs of the cipherspace layers, their scale).
PrefixFn = Callable[[FloatArray], tuple[npt.NDArray[np.int64], int]]
#: Inputs per block of :class:`PrefixFeatures`' pipelined forward pass: the prefix of
#: one block (e.g. the C++ cipherspace first block) overlaps the XLA layers of the last.
PIPELINE_BLOCK = 256


@runtime_checkable
class FeatureExtractor(Protocol):
    """Maps inputs to a private model's feature vector ``f_i``."""

    @property
    def feature_dim(self) -> int:
        """Length of ``f_i``."""

    @property
    def labels(self) -> tuple[int, ...]:
        """The labels the private model was trained on (``l_i``)."""

    def __call__(self, x: FloatArray) -> FloatArray:
        """Features ``(n, feature_dim)`` for inputs ``x``."""

    def output_weights(self) -> FloatArray:
        """The private model's output-layer weights for its labels, ``(feature_dim, |l_i|)``."""


@dataclass(frozen=True)
class PlainFeatures:
    """Features computed in plaintext by the model itself (the initiator's view)."""

    model: TrainedModel

    @property
    def feature_dim(self) -> int:
        """Length of ``f_i``."""
        return self.model.config.feature_dim

    @property
    def labels(self) -> tuple[int, ...]:
        """The model's label set."""
        return self.model.labels

    def __call__(self, x: FloatArray) -> FloatArray:
        """Features of ``x``."""
        return self.model.features(x)

    def output_weights(self) -> FloatArray:
        """The model's output-layer weights for its labels (Strategy II's ``W_i``)."""
        return self.model.label_output_weights()


@dataclass(frozen=True)
class PrefixFeatures:
    """Layers ``0..resume_layer-1`` run by ``prefix`` (e.g. in cipherspace), the rest in float.

    ``quantized`` is set when ``prefix`` is the plain integer reference of that
    quantized description (see :func:`quantized_features`); a MetaModel file can
    then rebuild the extractor from the model and its scaling factors.
    """

    model: TrainedModel
    prefix: PrefixFn
    resume_layer: int
    quantized: QuantizedModel | None = None
    #: Optional: ``prefix``'s output already descaled (float32, bit-identical to
    #: :func:`descale` of it), for a prefix that can produce it more cheaply; a new
    #: array on every call (XLA reads it in place).
    descaled_prefix: Callable[[FloatArray], FloatArray] | None = None
    #: Optional: the same values as ``descaled_prefix``, computed while XLA runs the
    #: previous block's remaining layers (e.g. on fewer threads, leaving XLA its own
    #: cores instead of both fighting over all of them).
    overlapped_prefix: Callable[[FloatArray], FloatArray] | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.resume_layer <= len(self.model.config.layers):
            raise FusionError(
                f"resume_layer must be in 1..{len(self.model.config.layers)}, "
                f"got {self.resume_layer}"
            )

    @property
    def feature_dim(self) -> int:
        """Length of ``f_i``."""
        return self.model.config.feature_dim

    @property
    def labels(self) -> tuple[int, ...]:
        """The model's label set."""
        return self.model.labels

    def __call__(self, x: FloatArray) -> FloatArray:
        """Descale the prefix's integer output and finish the forward pass in float.

        In blocks of :data:`PIPELINE_BLOCK` inputs: each block's remaining layers are
        dispatched to XLA, which runs them while the prefix computes the next block
        (with ``overlapped_prefix`` where given; the same values as one call on all
        inputs: every block goes through the same compiled function, padded to the
        same size). The prefix's outputs are fresh arrays, handed to XLA uncopied.
        """
        x = np.asarray(x, np.float32)
        if self.resume_layer == len(self.model.config.layers):
            middle = self._middle(x)
            return middle.reshape(middle.shape[0], -1)
        if x.shape[0] == 0:
            return self.model.features(self._middle(x), start_layer=self.resume_layer)
        pending = [
            self.model.features_async(
                self._middle(x[start : start + PIPELINE_BLOCK], overlapped=start > 0),
                start_layer=self.resume_layer,
                batch_size=PIPELINE_BLOCK,
                private_input=True,
            )
            for start in range(0, x.shape[0], PIPELINE_BLOCK)
        ]
        return np.concatenate([wait() for wait in pending])

    def _middle(self, x: FloatArray, *, overlapped: bool = False) -> FloatArray:
        """The prefix's output for ``x``, descaled to float32 (a new array)."""
        if overlapped and self.overlapped_prefix is not None:
            return self.overlapped_prefix(x)
        if self.descaled_prefix is not None:
            return self.descaled_prefix(x)
        ints, scale = self.prefix(x)
        if scale < 1:
            raise FusionError(f"prefix returned a non-positive scale {scale}")
        return descale(ints, scale)

    def output_weights(self) -> FloatArray:
        """The model's (plaintext) output-layer weights for its labels (Strategy II's ``W_i``)."""
        return self.model.label_output_weights()


#: float32 represents every integer of magnitude <= 2^24 exactly.
_F32_EXACT = 1 << 24


def descale(ints: npt.NDArray[np.int64], scale: int) -> FloatArray:
    """``ints / scale`` rounded once to float32 (the prefix output back in float).

    When every ``|ints|`` and ``scale`` are below 2^24 both are float32 numbers and
    the quotient is computed in float32 directly: a quotient of two float32
    numbers rounded to float64 and then to float32 equals the quotient rounded to
    float32 once (double rounding is innocuous for division when the wider format
    has at least 2p + 2 bits, 53 >= 2 * 24 + 2; Figueroa 1995), so this is
    bit-identical to the float64 route and 3-4x faster. Otherwise the float64 route.
    """
    largest = max(-int(ints.min(initial=0)), int(ints.max(initial=0)))
    if largest < _F32_EXACT and scale < _F32_EXACT:
        out: FloatArray = ints.astype(np.float32)
        np.divide(out, np.float32(scale), out=out)
        return out
    return (ints.astype(np.float64) / scale).astype(np.float32)


def quantized_features(model: TrainedModel, quantized: QuantizedModel) -> PrefixFeatures:
    """Features whose first layers run as the plain integer reference of ``quantized``."""
    if quantized.source != model.config:
        raise FusionError("the quantized description was not made from this model's config")

    def prefix(x: FloatArray) -> tuple[npt.NDArray[np.int64], int]:
        return integer_forward(quantized, quantize_inputs(x, quantized.input_scale)), int(
            quantized.output_scale
        )

    return PrefixFeatures(
        model=model, prefix=prefix, resume_layer=quantized.resume_layer, quantized=quantized
    )
