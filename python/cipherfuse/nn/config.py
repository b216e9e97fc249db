"""Small, JSON-able model configurations and the paper's architectures.

A :class:`ModelConfig` is a sequence of layer specs (convolution, pooling,
flatten, dense) followed by an implicit output layer of ``num_classes`` units
(softmax). The output of the last spec is the model's *feature vector*
``f_i``, the input of the fusion layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, cast

from cipherfuse.geometry import same_output_size
from cipherfuse.nn.errors import ModelConfigError

Activation = Literal["relu", "taylor_sigmoid", "none"]
PoolKind = Literal["max", "avg", "sum"]
Padding = Literal["SAME", "VALID"]
ACTIVATIONS: tuple[str, ...] = ("relu", "taylor_sigmoid", "none")
POOL_KINDS: tuple[str, ...] = ("max", "avg", "sum")
PADDINGS: tuple[str, ...] = ("SAME", "VALID")


@dataclass(frozen=True)
class ConvSpec:
    """Convolution with ``features`` filters of size ``kernel`` (one entry per spatial axis)."""

    features: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...] | None = None
    padding: Padding = "SAME"
    activation: Activation = "relu"
    kind: Literal["conv"] = "conv"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel", tuple(self.kernel))
        stride = (1,) * len(self.kernel) if self.stride is None else tuple(self.stride)
        object.__setattr__(self, "stride", stride)

    @property
    def strides(self) -> tuple[int, ...]:
        """The stride per spatial axis (1 when not given)."""
        return self.stride if self.stride is not None else (1,) * len(self.kernel)


@dataclass(frozen=True)
class PoolSpec:
    """Pooling over non-overlapping (by default) ``window``-sized patches, VALID padding."""

    pool: PoolKind
    window: tuple[int, ...]
    stride: tuple[int, ...] | None = None
    kind: Literal["pool"] = "pool"

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", tuple(self.window))
        stride = self.window if self.stride is None else tuple(self.stride)
        object.__setattr__(self, "stride", stride)

    @property
    def strides(self) -> tuple[int, ...]:
        """The stride per spatial axis (the window when not given)."""
        return self.stride if self.stride is not None else self.window


@dataclass(frozen=True)
class FlattenSpec:
    """Flatten all non-batch axes."""

    kind: Literal["flatten"] = "flatten"


@dataclass(frozen=True)
class DenseSpec:
    """Fully connected layer."""

    features: int
    activation: Activation = "relu"
    kind: Literal["dense"] = "dense"


LayerSpec = ConvSpec | PoolSpec | FlattenSpec | DenseSpec


@dataclass(frozen=True)
class ModelConfig:
    """A network: ``input_shape`` (spatial dims + channels, or a flat size), layers, outputs."""

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[LayerSpec, ...]
    num_classes: int = 10

    def __post_init__(self) -> None:
        self.shapes()  # validates

    def shapes(self) -> list[tuple[int, ...]]:
        """Per-layer output shapes (without batch); validates the whole config."""
        if len(self.input_shape) not in (1, 2, 3) or min(self.input_shape) < 1:
            raise ModelConfigError(
                "input_shape must be (features,), (length, channels) or (height, width, "
                f"channels) with positive entries, got {self.input_shape}"
            )
        if self.num_classes < 2:
            raise ModelConfigError(f"num_classes must be >= 2, got {self.num_classes}")
        shape = tuple(self.input_shape)
        out: list[tuple[int, ...]] = []
        for i, spec in enumerate(self.layers):
            shape = _next_shape(spec, shape, i)
            out.append(shape)
        if not out or len(out[-1]) != 1:
            raise ModelConfigError(
                "the last layer must produce a flat feature vector (end with flatten or dense)"
            )
        return out

    @property
    def feature_dim(self) -> int:
        """Length of the feature vector fed to the output layer (and to fusion)."""
        return self.shapes()[-1][0]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (lists, ints, strings) that :meth:`from_dict` inverts."""
        layers = []
        for spec in self.layers:
            entry: dict[str, Any] = {"kind": spec.kind}
            if isinstance(spec, ConvSpec):
                entry.update(
                    features=spec.features,
                    kernel=list(spec.kernel),
                    stride=list(spec.strides),
                    padding=spec.padding,
                    activation=spec.activation,
                )
            elif isinstance(spec, PoolSpec):
                entry.update(pool=spec.pool, window=list(spec.window), stride=list(spec.strides))
            elif isinstance(spec, DenseSpec):
                entry.update(features=spec.features, activation=spec.activation)
            layers.append(entry)
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "layers": layers,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_dict(cls, data: Any) -> ModelConfig:
        """Parse and validate a dict produced by :meth:`to_dict`."""
        try:
            if not isinstance(data, dict) or set(data) != {
                "name",
                "input_shape",
                "layers",
                "num_classes",
            }:
                raise ModelConfigError(
                    f"model config must have exactly name, input_shape, "
                    f"layers, num_classes; got {data!r:.200}"
                )
            layers = tuple(_layer_from_dict(entry, i) for i, entry in enumerate(data["layers"]))
            return cls(
                name=_typed(data["name"], str, "name"),
                input_shape=_int_tuple(data["input_shape"], "input_shape"),
                layers=layers,
                num_classes=_typed(data["num_classes"], int, "num_classes"),
            )
        except (TypeError, KeyError) as exc:
            raise ModelConfigError(f"malformed model config: {exc}") from exc


def _typed(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ModelConfigError(f"{what} must be {kind.__name__}, got {value!r:.80}")
    return value


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list | tuple):
        raise ModelConfigError(f"{what} must be a list of ints, got {value!r:.80}")
    return tuple(_typed(v, int, what) for v in value)


def _choice(value: Any, options: tuple[str, ...], what: str) -> Any:
    if value not in options:
        raise ModelConfigError(f"{what} must be one of {options}, got {value!r:.80}")
    return value


def _layer_from_dict(entry: Any, i: int) -> LayerSpec:
    if not isinstance(entry, dict):
        raise ModelConfigError(f"layers[{i}] must be a dict")
    kind = entry.get("kind")
    expected = {
        "conv": {"kind", "features", "kernel", "stride", "padding", "activation"},
        "pool": {"kind", "pool", "window", "stride"},
        "flatten": {"kind"},
        "dense": {"kind", "features", "activation"},
    }
    if kind not in expected or set(entry) != expected[kind]:
        raise ModelConfigError(f"layers[{i}] has unknown kind or fields: {entry!r:.200}")
    w = f"layers[{i}]"
    if kind == "conv":
        return ConvSpec(
            features=_typed(entry["features"], int, f"{w}.features"),
            kernel=_int_tuple(entry["kernel"], f"{w}.kernel"),
            stride=_int_tuple(entry["stride"], f"{w}.stride"),
            padding=cast(Padding, _choice(entry["padding"], PADDINGS, f"{w}.padding")),
            activation=cast(Activation, _choice(entry["activation"], ACTIVATIONS, w)),
        )
    if kind == "pool":
        return PoolSpec(
            pool=cast(PoolKind, _choice(entry["pool"], POOL_KINDS, f"{w}.pool")),
            window=_int_tuple(entry["window"], f"{w}.window"),
            stride=_int_tuple(entry["stride"], f"{w}.stride"),
        )
    if kind == "flatten":
        return FlattenSpec()
    return DenseSpec(
        features=_typed(entry["features"], int, f"{w}.features"),
        activation=cast(Activation, _choice(entry["activation"], ACTIVATIONS, w)),
    )


def _next_shape(spec: LayerSpec, shape: tuple[int, ...], i: int) -> tuple[int, ...]:
    where = f"layers[{i}] ({spec.kind})"
    if isinstance(spec, FlattenSpec):
        return (math.prod(shape),)
    if isinstance(spec, DenseSpec):
        if len(shape) != 1:
            raise ModelConfigError(f"{where} needs a flat input; add a flatten layer first")
        if spec.features < 1 or spec.activation not in ACTIVATIONS:
            raise ModelConfigError(f"{where}: features must be >= 1 and activation known")
        return (spec.features,)
    spatial, channels = shape[:-1], shape[-1]
    if len(shape) < 2:
        raise ModelConfigError(f"{where} needs a spatial input, got flat shape {shape}")
    dims = spec.kernel if isinstance(spec, ConvSpec) else spec.window
    strides = spec.strides
    if len(dims) != len(spatial) or len(strides) != len(spatial):
        raise ModelConfigError(
            f"{where}: kernel/window and stride need {len(spatial)} entries, got {dims}, {strides}"
        )
    if min(dims) < 1 or min(strides) < 1:
        raise ModelConfigError(f"{where}: kernel/window and stride entries must be >= 1")
    if isinstance(spec, ConvSpec):
        if spec.features < 1 or spec.activation not in ACTIVATIONS:
            raise ModelConfigError(f"{where}: features must be >= 1 and activation known")
        if spec.padding == "SAME":
            out = tuple(same_output_size(s, t) for s, t in zip(spatial, strides, strict=True))
        elif spec.padding == "VALID":
            out = tuple((s - k) // t + 1 for s, k, t in zip(spatial, dims, strides, strict=True))
        else:
            raise ModelConfigError(f"{where}: padding must be SAME or VALID")
        channels = spec.features
    else:
        if spec.pool not in POOL_KINDS:
            raise ModelConfigError(f"{where}: pool must be one of {POOL_KINDS}")
        out = tuple((s - k) // t + 1 for s, k, t in zip(spatial, dims, strides, strict=True))
    if min(out) < 1:
        raise ModelConfigError(f"{where}: output would be empty for input shape {shape}")
    return (*out, channels)


def table2_config(contributor: int) -> ModelConfig:
    """Case Study I (Table II): contributor 1, 2 or 3. Max pooling, ReLU, FC 500, 10 outputs.

    "2x2" in the table is read as the 2x2 pooling that follows each convolution
    (the only reading that gives the stated 7x7 output); convolutions are SAME, stride 1.
    """
    filters = {1: (32, 16, 8), 2: (64, 32, 16), 3: (32, 32, 16)}
    kernels = {1: (5, 5, 2), 2: (5, 5, 2), 3: (5, 10, 4)}
    if contributor not in filters:
        raise ModelConfigError(f"contributor must be 1, 2 or 3, got {contributor}")
    f, k = filters[contributor], kernels[contributor]
    return ModelConfig(
        name=f"table2-contributor{contributor}",
        input_shape=(28, 28, 1),
        layers=(
            ConvSpec(f[0], (k[0], k[0])),
            PoolSpec("max", (2, 2)),
            ConvSpec(f[1], (k[1], k[1])),
            PoolSpec("max", (2, 2)),
            ConvSpec(f[2], (k[2], k[2])),
            FlattenSpec(),
            DenseSpec(500),
        ),
    )


def table6_config(pool: PoolKind = "avg", activation: Activation = "relu") -> ModelConfig:
    """Case Study III (Table VI): conv 32@5x5, pool 2x2, conv 16@5x5, pool 2x2, 784 features.

    The first layer runs in cipherspace, so pooling is average (or sum), never max.
    """
    if pool == "max":
        raise ModelConfigError("Table VI models run their first layer in cipherspace: use avg/sum")
    return ModelConfig(
        name="table6",
        input_shape=(28, 28, 1),
        layers=(
            ConvSpec(32, (5, 5), activation=activation),
            PoolSpec(pool, (2, 2)),
            ConvSpec(16, (5, 5), activation=activation),
            PoolSpec(pool, (2, 2)),
            FlattenSpec(),
        ),
    )


def case5_config(window: int = 64, channels: int = 1) -> ModelConfig:
    """Case Study V: two 1-D ReLU convolutions with average pooling over a link-power window.

    ``channels``: input channels per time step (the case reproduction feeds 2: the
    positive and negative parts of the centred power, so inputs are non-negative).
    """
    return ModelConfig(
        name="case5" if channels == 1 else f"case5-{channels}ch",
        input_shape=(window, channels),
        layers=(
            ConvSpec(16, (5,)),
            PoolSpec("avg", (2,)),
            ConvSpec(32, (5,)),
            PoolSpec("avg", (2,)),
            FlattenSpec(),
        ),
        num_classes=2,
    )
