"""Early fusion (paper Sec. V-C, Eqs. 8-13).

The feature vectors ``f_i`` of the fused models are concatenated into ``f_c``,
which feeds one hidden layer ``h = A^T f_c`` of size ``sum_i |l_i|`` and a
softmax output ``y = softmax(B^T h)`` over the ``d`` classes (no biases, as in
Eqs. 8-9). Each feature is standardized with the fusion training set's mean
and standard deviation first (the paper is silent; without it the features of
different models live on unrelated scales).

* Strategy I: ``A`` and ``B`` random (LeCun normal), all weights trained.
* Strategy II (gradual): ``A`` starts block-diagonal (block ``i``: ``W_i`` of
  size ``|f_i| x |l_i|``, zero elsewhere, Eq. 10), ``B`` starts as the stacked
  label-selection identities (Eq. 11: hidden unit ``j`` of block ``i`` stands for
  model ``i``'s ``j``-th label and feeds that class's output with weight 1).
  The effective weights are ``A * (M_A + gamma (1 - M_A))`` and
  ``B * (M_B + gamma (1 - M_B))`` with ``M`` the masks of the initial non-zero
  pattern (Eqs. 12-13). Stage one uses ``gamma = 0``: off-block weights do not
  act and, multiplied by zero, get zero gradients, so Adam leaves them unchanged;
  stage two uses ``gamma = 1`` and trains everything (with a fresh Adam state).

The paper initializes ``W_i`` randomly (text under Eq. 10). By default we
depart from that: its Fig. 7 notes that ``f_i`` is the input of private model
``i``'s output layer, whose weights for model ``i``'s labels are exactly a
``|f_i| x |l_i|`` matrix; :func:`fuse` (and every fusion in the package)
therefore starts ``W_i`` from those weights (``block_weights``, rescaled for the
standardized features), so stage one starts from the sum of the private models'
own logits (bias and the constant ``mean @ W_i`` left out, the head has no bias)
and learns from there. Without ``block_weights`` the blocks are random (LeCun
normal), the paper's reading, measured to fuse slightly worse (docs/models.md).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
import optax  # type: ignore[import-untyped]

from cipherfuse.fusion.errors import FusionError
from cipherfuse.fusion.features import FeatureExtractor
from cipherfuse.nn.initializers import (
    INTEGER_ONLY_COMPILE,
    KernelKeyRecorder,
    exact_bucketing,
    fill_kernels,
    zero_params,
)
from cipherfuse.nn.progress import progress
from cipherfuse.nn.transfer import to_device

Strategy = Literal["I", "II"]
FloatArray = npt.NDArray[np.float32]


class FusionHead(nn.Module):
    """``logits = ((f_c @ (A * gate_a)) @ (B * gate_b))``."""

    feature_dim: int
    hidden: int
    num_classes: int
    #: Optional initializer factory ``name -> initializer`` for ``A`` and ``B``
    #: (default: Flax's LeCun normal); :func:`initial_params` uses it to record keys.
    kernel_init: Callable[..., Any] | None = None

    @nn.compact
    def __call__(self, fc: jax.Array, gate_a: jax.Array, gate_b: jax.Array) -> jax.Array:
        """Logits for standardized concatenated features ``fc``."""
        init = nn.initializers.lecun_normal()
        make = self.kernel_init
        a = self.param("A", make("A") if make else init, (self.feature_dim, self.hidden))
        b = self.param("B", make("B") if make else init, (self.hidden, self.num_classes))
        return (fc @ (a * gate_a)) @ (b * gate_b)


@dataclass(frozen=True)
class FusionLayout:
    """Block structure of the fusion layer for models with feature sizes and label sets."""

    feature_dims: tuple[int, ...]
    label_sets: tuple[tuple[int, ...], ...]
    num_classes: int

    def __post_init__(self) -> None:
        if not self.feature_dims or len(self.feature_dims) != len(self.label_sets):
            raise FusionError("need one feature size per label set, and at least one model")
        if min(self.feature_dims) < 1:
            raise FusionError(f"feature sizes must be >= 1, got {self.feature_dims}")
        for i, labels in enumerate(self.label_sets):
            if not labels or len(set(labels)) != len(labels):
                raise FusionError(f"label set {i} must be non-empty and distinct")
            if min(labels) < 0 or max(labels) >= self.num_classes:
                raise FusionError(f"label set {i} has labels outside 0..{self.num_classes - 1}")

    @property
    def feature_dim(self) -> int:
        """``|f_c|``."""
        return sum(self.feature_dims)

    @property
    def hidden(self) -> int:
        """``|h| = sum_i |l_i|``."""
        return sum(len(s) for s in self.label_sets)

    def mask_a(self) -> FloatArray:
        """1 on the diagonal blocks of ``A`` (Eq. 10), 0 elsewhere."""
        mask = np.zeros((self.feature_dim, self.hidden), np.float32)
        r = c = 0
        for dim, labels in zip(self.feature_dims, self.label_sets, strict=True):
            mask[r : r + dim, c : c + len(labels)] = 1.0
            r, c = r + dim, c + len(labels)
        return mask

    def selection_b(self) -> FloatArray:
        """Stacked label-selection identities of Eq. 11: ``B[offset_i + j, l_i[j]] = 1``."""
        b = np.zeros((self.hidden, self.num_classes), np.float32)
        row = 0
        for labels in self.label_sets:
            for label in labels:
                b[row, label] = 1.0
                row += 1
        return b


@dataclass(frozen=True)
class FusionConfig:
    """Fusion training settings.

    Attributes:
        stage1_epochs: Strategy II epochs with ``gamma = 0``.
        stage2_epochs: Strategy II epochs with ``gamma = 1``. Strategy I trains
            ``stage1_epochs + stage2_epochs`` epochs so both see the same data.
        learning_rate: Adam step size (Strategy I, and Strategy II's stage one).
        stage2_learning_rate: Adam step size of Strategy II's stage two
            (``None``: ``learning_rate``). Stage two starts from the trained
            block structure; a smaller step fine-tunes it instead of
            overwriting it.
        batch_size: minibatch size (paper: 50).
        progress: progress bar (``None``: only on a terminal).
        weight_decay: decoupled weight decay (AdamW) of both stages; ``0``: plain
            Adam. Each step shrinks every weight by ``learning_rate *
            weight_decay`` of itself; weights that are zero stay zero, so
            Strategy II's stage one still leaves the off-block weights untouched.
        final_lr_fraction: ``None``: constant step sizes. Otherwise the last
            stage that trains (Strategy I's only stage, Strategy II's stage two)
            decays its step size along a cosine, per minibatch, from its start
            value to ``final_lr_fraction`` times it (``0``: to zero), so the
            head settles instead of ending on whichever minibatch came last.
    """

    stage1_epochs: int = 30
    stage2_epochs: int = 30
    learning_rate: float = 1e-3
    batch_size: int = 50
    progress: bool | None = None
    stage2_learning_rate: float | None = None
    weight_decay: float = 0.0
    final_lr_fraction: float | None = None

    def validate(self) -> None:
        """Raise :class:`FusionError` naming the first bad field."""
        if self.stage1_epochs < 0 or self.stage2_epochs < 0:
            raise FusionError("stage1_epochs and stage2_epochs must be >= 0")
        if self.stage1_epochs + self.stage2_epochs < 1:
            raise FusionError("train at least one epoch in total")
        if not self.learning_rate > 0 or self.batch_size < 1:
            raise FusionError("learning_rate must be > 0 and batch_size >= 1")
        if self.stage2_learning_rate is not None and not self.stage2_learning_rate > 0:
            raise FusionError("stage2_learning_rate must be > 0 (or None)")
        if not 0 <= self.weight_decay <= 100:
            raise FusionError(
                f"weight_decay must be in 0..100 (0: plain Adam), got {self.weight_decay}"
            )
        if self.final_lr_fraction is not None and not 0 <= self.final_lr_fraction <= 1:
            raise FusionError(
                "final_lr_fraction must be in 0..1 (or None for a constant step size), "
                f"got {self.final_lr_fraction}"
            )


@dataclass(frozen=True)
class FusedHead:
    """A trained fusion layer: standardization, weights and the final gates."""

    layout: FusionLayout
    strategy: Strategy
    mean: FloatArray
    std: FloatArray
    params: Any
    seconds: float

    def logits_from_features(self, features: Sequence[FloatArray]) -> FloatArray:
        """Logits from the per-model feature arrays (in fusion order)."""
        fc = _concat(features, self.layout)
        fc = ((fc - self.mean) / self.std).astype(np.float32)
        apply = _apply_fn(self.layout.feature_dim, self.layout.hidden, self.layout.num_classes)
        return np.asarray(apply(self.params, to_device(fc)))

    def predict_from_features(self, features: Sequence[FloatArray]) -> npt.NDArray[np.int64]:
        """Predicted classes from the per-model feature arrays."""
        pred: npt.NDArray[np.int64] = np.argmax(self.logits_from_features(features), axis=1)
        return pred.astype(np.int64)


@dataclass(frozen=True)
class MetaModel:
    """The fused model: the private models' feature extractors and the fusion layer."""

    extractors: tuple[FeatureExtractor, ...]
    head: FusedHead

    def predict(self, x: FloatArray) -> npt.NDArray[np.int64]:
        """Predicted classes for inputs ``x``."""
        return self.head.predict_from_features([e(x) for e in self.extractors])

    def accuracy(self, x: FloatArray, y: npt.ArrayLike) -> float:
        """Fraction of correct predictions."""
        return float(np.mean(self.predict(x) == np.asarray(y)))


def _concat(features: Sequence[FloatArray], layout: FusionLayout) -> FloatArray:
    if len(features) != len(layout.feature_dims):
        raise FusionError(
            f"expected {len(layout.feature_dims)} feature arrays, got {len(features)}"
        )
    n = features[0].shape[0]
    for i, (f, dim) in enumerate(zip(features, layout.feature_dims, strict=True)):
        if f.ndim != 2 or f.shape != (n, dim):
            raise FusionError(f"features[{i}] must have shape ({n}, {dim}), got {f.shape}")
    return np.concatenate([np.asarray(f, np.float32) for f in features], axis=1)


def initial_params(
    layout: FusionLayout,
    strategy: Strategy,
    key: jax.Array,
    blocks: Sequence[npt.ArrayLike] | None = None,
) -> Any:
    """Strategy I: random ``A``, ``B``. Strategy II: Eq. 10 block-diagonal ``A``, Eq. 11 ``B``.

    ``blocks``: Strategy II's ``W_i`` as given, one ``(|f_i|, |l_i|)`` array per
    model (in the units of the head's input); ``None``: random (LeCun normal over
    ``|f_i|``). Strategy I ignores it.
    """
    params = _init_fn(layout.feature_dim, layout.hidden, layout.num_classes)(key)
    if strategy == "I":
        return params
    if strategy != "II":
        raise FusionError(f"strategy must be 'I' or 'II', got {strategy!r}")
    given = _check_blocks(blocks, layout) if blocks is not None else None
    a = np.zeros((layout.feature_dim, layout.hidden), np.float32)
    r = c = 0
    keys = jax.random.split(key, len(layout.feature_dims))
    for i, (k, dim, labels) in enumerate(
        zip(keys, layout.feature_dims, layout.label_sets, strict=True)
    ):
        if given is not None:
            w = given[i]
        else:  # each block with its own fan-in
            w = np.asarray(jax.random.normal(k, (dim, len(labels))) / np.sqrt(dim))
        a[r : r + dim, c : c + len(labels)] = w
        r, c = r + dim, c + len(labels)
    return {"A": jnp.asarray(a), "B": jnp.asarray(layout.selection_b())}


def _check_blocks(blocks: Sequence[npt.ArrayLike], layout: FusionLayout) -> list[FloatArray]:
    """``blocks`` as float32 arrays of the layout's block shapes, or :class:`FusionError`."""
    if len(blocks) != len(layout.feature_dims):
        raise FusionError(
            f"block_weights: expected one array per model ({len(layout.feature_dims)}), "
            f"got {len(blocks)}"
        )
    out = []
    for i, (w, dim, labels) in enumerate(
        zip(blocks, layout.feature_dims, layout.label_sets, strict=True)
    ):
        arr = np.asarray(w, np.float32)
        if arr.shape != (dim, len(labels)):
            raise FusionError(
                f"block_weights[{i}] must have shape (|f_i|, |l_i|) = ({dim}, {len(labels)}), "
                f"got {arr.shape}: pass the model's output-layer weights for its own labels "
                "(FeatureExtractor.output_weights())"
            )
        if not np.isfinite(arr).all():
            raise FusionError(f"block_weights[{i}] has non-finite values")
        out.append(arr)
    return out


@functools.cache
def _apply_fn(feature_dim: int, hidden: int, num_classes: int) -> Callable[[Any, jax.Array], Any]:
    """Jitted ungated forward pass (all gates 1) of one head shape."""
    head = FusionHead(feature_dim, hidden, num_classes)
    ones_a = jnp.ones((feature_dim, hidden))
    ones_b = jnp.ones((hidden, num_classes))

    def apply(params: Any, fc: jax.Array) -> Any:
        return head.apply({"params": params}, fc, ones_a, ones_b)

    return jax.jit(apply)


@functools.cache
def _init_fn(feature_dim: int, hidden: int, num_classes: int) -> Callable[[jax.Array], Any]:
    """LeCun-normal initialization of one head shape, Flax's ``init`` values bit for bit.

    The keys of ``A`` and ``B`` come from a small jitted ``init``, their values from
    the shared bucketed draws of :mod:`cipherfuse.nn.initializers`.
    """

    def init(key: jax.Array, kernel_init: Any = None) -> Any:
        return FusionHead(feature_dim, hidden, num_classes, kernel_init).init(
            key,
            jnp.zeros((1, feature_dim)),
            jnp.ones((feature_dim, hidden)),
            jnp.ones((hidden, num_classes)),
        )["params"]

    if not exact_bucketing():
        return jax.jit(init)

    def keys(key: jax.Array) -> dict[str, jax.Array]:
        recorder = KernelKeyRecorder()
        init(key, recorder)
        return recorder.keys

    jitted_keys = jax.jit(keys, compiler_options=INTEGER_ONLY_COMPILE)
    shapes = {
        "A": jax.ShapeDtypeStruct((feature_dim, hidden), jnp.float32),  # type: ignore[no-untyped-call]
        "B": jax.ShapeDtypeStruct((hidden, num_classes), jnp.float32),  # type: ignore[no-untyped-call]
    }
    return lambda key: fill_kernels(zero_params(shapes), jitted_keys(key))


@functools.cache
def _epoch_fn(
    feature_dim: int,
    hidden: int,
    num_classes: int,
    learning_rate: float,
    weight_decay: float,
    batch: int,
    decay: tuple[float, int] | None = None,
) -> tuple[optax.GradientTransformation, Any]:
    """Adam (AdamW with ``weight_decay > 0``) and a jitted epoch for one head shape.

    ``decay = (fraction, steps)``: the step size follows a cosine from
    ``learning_rate`` to ``fraction * learning_rate`` over ``steps`` minibatches
    (counted by the optimizer state, so it runs on across epochs); ``None``: constant.

    The epoch shuffles the data with its key and runs all full minibatches in one
    ``lax.scan`` (the last partial batch is dropped). Cached, so fusing many times
    (seeds, variants) compiles each shape once; the gates are arguments, so both
    Strategy II stages share the compiled epoch.
    """
    head = FusionHead(feature_dim, hidden, num_classes)
    step_size: float | optax.Schedule = learning_rate
    if decay is not None:
        step_size = optax.cosine_decay_schedule(learning_rate, decay[1], alpha=decay[0])
    if weight_decay > 0:
        optimizer = optax.adamw(step_size, weight_decay=weight_decay)
    else:
        optimizer = optax.adam(step_size)

    def loss_fn(
        p: Any, xb: jax.Array, yb: jax.Array, gate_a: jax.Array, gate_b: jax.Array
    ) -> jax.Array:
        logits = head.apply({"params": p}, xb, gate_a, gate_b)
        loss: jax.Array = optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
        return loss

    @jax.jit
    def epoch(
        p: Any,
        s: optax.OptState,
        fc: jax.Array,
        y: jax.Array,
        gate_a: jax.Array,
        gate_b: jax.Array,
        key: jax.Array,
    ) -> tuple[Any, Any]:
        steps = fc.shape[0] // batch
        order = jax.random.permutation(key, fc.shape[0])[: steps * batch]
        xs = fc[order].reshape(steps, batch, fc.shape[1])
        ys = y[order].reshape(steps, batch)

        def step(carry: tuple[Any, Any], xy: tuple[jax.Array, jax.Array]) -> tuple[Any, None]:
            params, state = carry
            grads = jax.grad(loss_fn)(params, xy[0], xy[1], gate_a, gate_b)
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        (p, s), _ = jax.lax.scan(step, (p, s), (xs, ys))
        return p, s

    return optimizer, epoch


def _train_stage(
    params: Any,
    layout: FusionLayout,
    fc: jax.Array,
    y: jax.Array,
    gates: tuple[jax.Array, jax.Array],
    epochs: int,
    cfg: FusionConfig,
    key: jax.Array,
    desc: str,
    learning_rate: float,
    last: bool,
) -> Any:
    if epochs == 0:
        return params
    batch = min(cfg.batch_size, int(fc.shape[0]))
    decay = None
    if last and cfg.final_lr_fraction is not None:
        decay = (cfg.final_lr_fraction, epochs * (int(fc.shape[0]) // batch))
    optimizer, epoch_fn = _epoch_fn(
        layout.feature_dim,
        layout.hidden,
        layout.num_classes,
        learning_rate,
        cfg.weight_decay,
        batch,
        decay,
    )
    opt_state = optimizer.init(params)
    for epoch in progress(range(epochs), desc=desc, total=epochs, enabled=cfg.progress):
        params, opt_state = epoch_fn(
            params, opt_state, fc, y, *gates, jax.random.fold_in(key, epoch)
        )
    return params


def train_fusion_head(
    features: Sequence[FloatArray],
    y: npt.ArrayLike,
    label_sets: Sequence[Sequence[int]],
    strategy: Strategy,
    key: jax.Array,
    config: FusionConfig | None = None,
    *,
    num_classes: int = 10,
    block_weights: Sequence[npt.ArrayLike] | None = None,
) -> FusedHead:
    """Train the fusion layer on precomputed per-model features.

    Args:
        features: one ``(n, |f_i|)`` array per fused model, in fusion order.
        y: the ``n`` labels (all classes) of the fusing party's training data.
        label_sets: each model's label set ``l_i``.
        strategy: ``"I"`` or ``"II"``.
        key: PRNG key for initialization and shuffling.
        block_weights: Strategy II's ``W_i``: each model's output-layer weights
            for its own labels, ``(|f_i|, |l_i|)``, acting on the raw features
            (:meth:`FeatureExtractor.output_weights`); they are rescaled by the
            features' standard deviations for the standardized input. ``None``:
            random blocks. Strategy I ignores them.
    """
    cfg = config if config is not None else FusionConfig()
    cfg.validate()
    layout = FusionLayout(
        feature_dims=tuple(int(np.shape(f)[1]) if np.ndim(f) == 2 else -1 for f in features),
        label_sets=tuple(tuple(int(v) for v in s) for s in label_sets),
        num_classes=num_classes,
    )
    fc = _concat(features, layout)
    labels = np.asarray(y, np.int64)
    if labels.shape != (fc.shape[0],) or fc.shape[0] == 0:
        raise FusionError(f"y must have shape ({fc.shape[0]},) and be non-empty")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise FusionError(f"y must be in 0..{num_classes - 1}")
    mean = fc.mean(axis=0)
    std = np.maximum(fc.std(axis=0), 1e-6).astype(np.float32)
    x_dev = to_device(((fc - mean) / std).astype(np.float32))
    y_dev = to_device(labels)
    init_key, key1, key2 = jax.random.split(key, 3)
    blocks = None
    if block_weights is not None and strategy == "II":
        raw = _check_blocks(block_weights, layout)
        stds = np.split(std, np.cumsum(layout.feature_dims)[:-1])
        blocks = [s[:, None] * w for s, w in zip(stds, raw, strict=True)]
    params = initial_params(layout, strategy, init_key, blocks)
    start = time.perf_counter()
    ones = (
        jnp.ones((layout.feature_dim, layout.hidden)),
        jnp.ones((layout.hidden, layout.num_classes)),
    )
    if strategy == "I":
        total = cfg.stage1_epochs + cfg.stage2_epochs
        params = _train_stage(
            params,
            layout,
            x_dev,
            y_dev,
            ones,
            total,
            cfg,
            key1,
            "fusion I",
            cfg.learning_rate,
            last=True,
        )
    else:
        gates = gamma_gates(layout, 0.0)
        params = _train_stage(
            params,
            layout,
            x_dev,
            y_dev,
            gates,
            cfg.stage1_epochs,
            cfg,
            key1,
            "fusion II gamma=0",
            cfg.learning_rate,
            last=cfg.stage2_epochs == 0,
        )
        lr2 = cfg.stage2_learning_rate
        lr2 = cfg.learning_rate if lr2 is None else lr2
        params = _train_stage(
            params,
            layout,
            x_dev,
            y_dev,
            ones,
            cfg.stage2_epochs,
            cfg,
            key2,
            "fusion II gamma=1",
            lr2,
            last=True,
        )
    return FusedHead(
        layout=layout,
        strategy=strategy,
        mean=mean.astype(np.float32),
        std=std,
        params=params,
        seconds=time.perf_counter() - start,
    )


def gamma_gates(layout: FusionLayout, gamma: float) -> tuple[jax.Array, jax.Array]:
    """Gates ``M + gamma (1 - M)`` for ``A`` and ``B`` (Eqs. 12-13)."""
    mask_a = layout.mask_a()
    mask_b = (layout.selection_b() != 0).astype(np.float32)
    return (
        jnp.asarray(mask_a + gamma * (1.0 - mask_a)),
        jnp.asarray(mask_b + gamma * (1.0 - mask_b)),
    )


def fuse(
    extractors: Sequence[FeatureExtractor],
    x: FloatArray,
    y: npt.ArrayLike,
    strategy: Strategy,
    key: jax.Array,
    config: FusionConfig | None = None,
) -> MetaModel:
    """Build a MetaModel from feature extractors (plaintext or cipherspace alike).

    Strategy II starts each block ``W_i`` from the extractor's
    :meth:`~FeatureExtractor.output_weights` (the private model's output layer).
    """
    if not extractors:
        raise FusionError("fuse at least one model")
    feats = [e(x) for e in extractors]
    head = train_fusion_head(
        feats,
        y,
        [e.labels for e in extractors],
        strategy,
        key,
        config,
        block_weights=[e.output_weights() for e in extractors],
    )
    return MetaModel(extractors=tuple(extractors), head=head)
