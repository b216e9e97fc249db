"""Training a contributor's model: optax Adam, jitted pure steps, explicit PRNG keys.

Defaults follow the paper (Tables II and VI): Adam, learning rate 1e-4, batch
size 50, and training stops as soon as the accuracy on the contributor's local
verification data reaches the task's criterion (Case I: 90 %) or after
``max_epochs`` epochs (paper: 100).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
import optax  # type: ignore[import-untyped]

from cipherfuse.nn.augment import augment_images, augment_range_problem
from cipherfuse.nn.config import ModelConfig
from cipherfuse.nn.errors import ModelConfigError
from cipherfuse.nn.initializers import INTEGER_ONLY_COMPILE
from cipherfuse.nn.model import (
    ConfigCNN,
    Params,
    TrainedModel,
    init_params,
    precompile_forward,
)
from cipherfuse.nn.progress import progress
from cipherfuse.nn.transfer import to_device


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters.

    Attributes:
        learning_rate: Adam step size (paper: 1e-4).
        batch_size: minibatch size (paper: 50). The last partial batch of each
            (reshuffled) epoch is dropped so every step has the same shape.
        max_epochs: epoch cap (paper: 100).
        target_accuracy: stop once local verification accuracy (over the model's
            own labels) reaches this; ``None`` trains all ``max_epochs``.
        min_epochs: train at least this many epochs before checking the target.
        progress: show a progress bar (``None``: only on a terminal).
        max_shift: data augmentation: each epoch, every training image is
            translated by a random offset in ``-max_shift..max_shift`` pixels
            per axis (zero fill; images only). ``0`` (default) trains on the
            data as given.
        max_rotation: augmentation: each epoch, every image is also rotated by a
            random angle in ``±max_rotation`` degrees (bilinear, zero fill;
            images only; ``0`` = no rotation).
        max_scale: augmentation: ... and scaled by a random factor in
            ``1 ± max_scale`` about its centre (``0`` = no scaling).
    """

    learning_rate: float = 1e-4
    batch_size: int = 50
    max_epochs: int = 100
    target_accuracy: float | None = 0.9
    min_epochs: int = 1
    progress: bool | None = None
    max_shift: int = 0
    max_rotation: float = 0.0
    max_scale: float = 0.0

    @property
    def augments(self) -> bool:
        """Whether training images are transformed each epoch."""
        return bool(self.max_shift or self.max_rotation or self.max_scale)

    def validate(self) -> None:
        """Raise :class:`ModelConfigError` naming the first bad field."""
        problem = augment_range_problem(self.max_shift, self.max_rotation, self.max_scale)
        if problem is not None:
            raise ModelConfigError(problem)
        if not self.learning_rate > 0:
            raise ModelConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.batch_size < 1:
            raise ModelConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_epochs < 1 or not 1 <= self.min_epochs <= self.max_epochs:
            raise ModelConfigError(
                f"need 1 <= min_epochs <= max_epochs, got {self.min_epochs}, {self.max_epochs}"
            )
        if self.target_accuracy is not None and not 0 < self.target_accuracy <= 1:
            raise ModelConfigError(f"target_accuracy must be in (0, 1], got {self.target_accuracy}")


@dataclass(frozen=True)
class TrainResult:
    """The trained model and how training went."""

    model: TrainedModel
    epochs: int
    reached_target: bool
    verify_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0


def make_train_step(config: ModelConfig, optimizer: optax.GradientTransformation) -> Any:
    """A jitted pure step ``(params, opt_state, x, y) -> (params, opt_state, loss)``."""
    module = ConfigCNN(config)

    def loss_fn(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
        logits = module.apply({"params": params}, x)
        loss: jax.Array = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss

    @jax.jit
    def step(
        params: Params, opt_state: optax.OptState, x: jax.Array, y: jax.Array
    ) -> tuple[Params, optax.OptState, jax.Array]:
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


@functools.cache
def _cached_step(config: ModelConfig, learning_rate: float) -> tuple[Any, Any]:
    """Adam's jitted ``init`` and step at ``learning_rate``, compiled once per (config, rate).

    Run eagerly, ``init`` would compile a zero fill for every parameter shape; its
    state is zeros (no arithmetic), so it compiles at XLA's lowest optimization level.
    """
    optimizer = optax.adam(learning_rate)
    init = jax.jit(optimizer.init, compiler_options=INTEGER_ONLY_COMPILE)
    return init, make_train_step(config, optimizer)


def precompile_training(
    config: ModelConfig, train_config: TrainConfig | None = None, *, verify_size: int = 500
) -> None:
    """Compile what :func:`train_classifier` will run for ``config``, without running it.

    The training step for ``train_config``'s learning rate and batch shape, Adam's
    ``init``, the parameter initialization and the forward pass that measures the
    verification accuracy on ``verify_size`` images (:meth:`TrainedModel.logits`'
    batches) are traced and compiled (or loaded from the persistent compilation cache)
    on abstract shapes: nothing is computed. A later :func:`train_classifier` with the
    same configurations finds the executables in JAX's in-memory caches, so a caller can
    run this in a background thread while it does other work (the demo compiles the
    next contributors' steps while the first one trains). Results do not depend on it.
    """
    cfg = train_config if train_config is not None else TrainConfig()
    cfg.validate()
    if verify_size < 1:
        raise ModelConfigError(f"verify_size must be >= 1, got {verify_size}")
    init_state, step = _cached_step(config, cfg.learning_rate)
    # A raw uint32 key, like the split keys train_classifier passes (the same executables).
    params = init_params(config, jax.random.PRNGKey(0))
    state = jax.eval_shape(init_state, params)
    init_state.lower(params).compile()
    labels = jax.dtypes.canonicalize_dtype(np.int64)  # what to_device makes of int64
    batch = (cfg.batch_size, *config.input_shape)
    step.lower(
        params,
        state,
        jax.ShapeDtypeStruct(batch, jnp.float32),  # type: ignore[no-untyped-call]
        jax.ShapeDtypeStruct((cfg.batch_size,), labels),  # type: ignore[no-untyped-call]
    ).compile()
    precompile_forward(config, params, verify_size)


def train_epoch(
    step: Any,
    params: Params,
    opt_state: optax.OptState,
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    key: jax.Array,
    config: TrainConfig,
) -> tuple[Params, optax.OptState]:
    """One epoch of minibatch training; deterministic given ``key``.

    The samples are visited in the order ``jax.random.permutation(key, n)``, in
    ``n // config.batch_size`` full batches (the last partial batch is dropped).
    When ``config`` augments, the whole epoch's images are first transformed
    with a numpy generator seeded from ``jax.random.fold_in(key, 1)``.

    Args:
        step: a jitted pure step from :func:`make_train_step`.
        params: the parameters to start from.
        opt_state: the optimizer state to start from.
        x: training inputs, ``(n, *input_shape)`` float32.
        y: their integer labels, ``(n,)``.
        key: this epoch's PRNG key (callers fold the epoch number into theirs).
        config: the batch size and augmentation ranges.

    Returns:
        The parameters and optimizer state after the epoch's last step.
    """
    order = np.asarray(jax.random.permutation(key, x.shape[0]))
    epoch_x = x
    if config.augments:
        seed = int(jax.random.randint(jax.random.fold_in(key, 1), (), 0, 2**31 - 1))
        epoch_x = augment_images(
            np.random.default_rng(seed), x, config.max_shift, config.max_rotation, config.max_scale
        )
    batch = config.batch_size
    for b in range(x.shape[0] // batch):
        idx = order[b * batch : (b + 1) * batch]
        params, opt_state, _ = step(params, opt_state, to_device(epoch_x[idx]), to_device(y[idx]))
    return params, opt_state


def accuracy(
    model: TrainedModel,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    restrict_to_labels: bool = False,
) -> float:
    """Fraction of correct predictions."""
    pred = model.predict(x, restrict_to_labels=restrict_to_labels)
    return float(np.mean(pred == np.asarray(y)))


def train_classifier(
    config: ModelConfig,
    train_x: npt.ArrayLike,
    train_y: npt.ArrayLike,
    verify_x: npt.ArrayLike,
    verify_y: npt.ArrayLike,
    key: jax.Array,
    train_config: TrainConfig | None = None,
    *,
    labels: tuple[int, ...] | None = None,
    desc: str = "train",
) -> TrainResult:
    """Train ``config`` from scratch on ``(train_x, train_y)``.

    Args:
        key: PRNG key; initialization and every epoch's shuffle derive from it.
        labels: the label set the contributor owns (default: the labels present in
            ``train_y``); the local verification accuracy is over these labels.

    Raises:
        ModelConfigError: bad hyper-parameters or data shapes.
    """
    cfg = train_config if train_config is not None else TrainConfig()
    cfg.validate()
    tx = np.asarray(train_x, np.float32)
    ty = np.asarray(train_y, np.int64)
    vx = np.asarray(verify_x, np.float32)
    vy = np.asarray(verify_y, np.int64)
    for name, arr in (("train_x", tx), ("verify_x", vx)):
        if arr.shape[1:] != config.input_shape:
            raise ModelConfigError(
                f"{name} has sample shape {arr.shape[1:]}, model expects {config.input_shape}"
            )
    if ty.shape != (tx.shape[0],) or vy.shape != (vx.shape[0],) or vx.shape[0] == 0:
        raise ModelConfigError("labels must be 1-D and match their inputs; verify set non-empty")
    if tx.shape[0] < cfg.batch_size:
        raise ModelConfigError(f"need at least batch_size={cfg.batch_size} training samples")
    if ty.min() < 0 or ty.max() >= config.num_classes:
        raise ModelConfigError(f"train_y must be in 0..{config.num_classes - 1}")
    if cfg.augments and len(config.input_shape) != 3:
        raise ModelConfigError(
            "max_shift, max_rotation and max_scale augment images only (input shape (h, w, c))"
        )
    own = labels if labels is not None else tuple(int(v) for v in np.unique(ty))

    init_key, shuffle_key = jax.random.split(key)
    params = init_params(config, init_key)
    init_state, step = _cached_step(config, cfg.learning_rate)
    opt_state = init_state(params)
    history: list[float] = []
    reached = False
    start = time.perf_counter()
    model = TrainedModel(config, params, own)
    epochs = 0
    for epoch in progress(
        range(cfg.max_epochs), desc=desc, total=cfg.max_epochs, enabled=cfg.progress
    ):
        epoch_key = jax.random.fold_in(shuffle_key, epoch)
        params, opt_state = train_epoch(step, params, opt_state, tx, ty, epoch_key, cfg)
        epochs = epoch + 1
        model = TrainedModel(config, params, own)
        acc = accuracy(model, vx, vy, restrict_to_labels=True)
        history.append(acc)
        if (
            cfg.target_accuracy is not None
            and epochs >= cfg.min_epochs
            and acc >= cfg.target_accuracy
        ):
            reached = True
            break
    return TrainResult(
        model=model,
        epochs=epochs,
        reached_target=reached,
        verify_accuracy=history,
        seconds=time.perf_counter() - start,
    )
