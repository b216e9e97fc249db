"""Federated averaging with Flower, in process, for the Case IV comparison.

The real ``flwr`` library does the federated part: its :class:`flwr.server.Server`
round loop, :class:`flwr.server.SimpleClientManager`, the
:class:`flwr.server.strategy.FedAvg` strategy (client selection, weighted
aggregation, centralized evaluation through ``evaluate_fn``) and
:class:`flwr.client.NumPyClient` clients whose parameters travel as Flower
``Parameters`` (``np.save`` bytes, never pickled). What is ours is only the
transport: :class:`InProcessClientProxy` hands ``FitIns`` to the client object
directly instead of over gRPC or Ray, and counts the bytes of every parameter
message. (Flower's own simulation engine needs Ray; on this 2-core machine its
per-round overhead is several seconds and it is not needed to exercise the
strategy.)

Each client trains the same Flax CNN as this paradigm's contributors
(:mod:`cipherfuse.nn`) for ``local_epochs`` epochs per round, with a fresh Adam
state each round.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
import optax  # type: ignore[import-untyped]

from cipherfuse.analysis.experiment import ExperimentError
from cipherfuse.nn.config import ModelConfig
from cipherfuse.nn.model import TrainedModel, init_params
from cipherfuse.nn.train import TrainConfig, make_train_step, train_epoch


class FlowerUnavailableError(ExperimentError, ImportError):
    """The optional ``flwr`` dependency is not installed."""


def require_flwr() -> None:
    """Raise :class:`FlowerUnavailableError` with the install command when flwr is missing."""
    try:
        import flwr  # noqa: F401
    except ImportError as exc:
        raise FlowerUnavailableError(
            "the FedAvg side of Case IV needs Flower: pip install 'cipherfuse[fl]' (flwr==1.41.*)"
        ) from exc


def params_to_ndarrays(params: Any) -> list[npt.NDArray[np.float32]]:
    """A Flax parameter tree as a flat list of float32 arrays (the tree's leaf order)."""
    return [np.asarray(leaf, np.float32) for leaf in jax.tree_util.tree_leaves(params)]


def ndarrays_to_params(template: Any, arrays: list[npt.NDArray[Any]]) -> Any:
    """Put flat arrays back into the shape of ``template`` (shapes are checked)."""
    leaves, treedef = jax.tree_util.tree_flatten(template)
    if len(arrays) != len(leaves):
        raise ExperimentError(f"expected {len(leaves)} parameter arrays, got {len(arrays)}")
    for i, (a, leaf) in enumerate(zip(arrays, leaves, strict=True)):
        if tuple(np.shape(a)) != tuple(np.shape(leaf)):
            raise ExperimentError(
                f"parameter array {i} has shape {np.shape(a)}, expected {np.shape(leaf)}"
            )
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a, jnp.float32) for a in arrays])


@dataclass(frozen=True)
class FedAvgConfig:
    """FedAvg settings.

    Attributes:
        rounds: communication rounds.
        local_epochs: epochs each client trains per round.
        train: learning rate, batch size and augmentation of the local training
            (``max_epochs``/``target_accuracy`` are not used).
    """

    rounds: int = 25
    local_epochs: int = 1
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        """Raise :class:`ExperimentError` naming the first bad field."""
        if self.rounds < 1:
            raise ExperimentError(f"rounds must be >= 1, got {self.rounds}")
        if self.local_epochs < 1:
            raise ExperimentError(f"local_epochs must be >= 1, got {self.local_epochs}")
        self.train.validate()


class LocalTrainer:
    """``epochs`` of Adam minibatch training from given parameters (one jitted step, shared)."""

    def __init__(self, config: ModelConfig, train: TrainConfig) -> None:
        self.config = config
        self.train = train
        self.optimizer = optax.adam(train.learning_rate)
        self.step = make_train_step(config, self.optimizer)

    def __call__(
        self,
        params: Any,
        x: npt.NDArray[np.float32],
        y: npt.NDArray[np.int64],
        epochs: int,
        key: jax.Array,
    ) -> Any:
        """Train ``params`` on ``(x, y)``; deterministic given ``key``."""
        batch = self.train.batch_size
        if x.shape[0] < batch:
            raise ExperimentError(f"a client needs at least batch_size={batch} samples")
        opt_state = self.optimizer.init(params)
        for epoch in range(epochs):
            epoch_key = jax.random.fold_in(key, epoch)
            params, opt_state = train_epoch(
                self.step, params, opt_state, x, y, epoch_key, self.train
            )
        return params


@dataclass
class TrafficLog:
    """Bytes of Flower parameter messages per round: server->client and client->server."""

    down: dict[int, dict[str, int]] = field(default_factory=dict)
    up: dict[int, dict[str, int]] = field(default_factory=dict)
    updates: dict[int, dict[str, tuple[list[npt.NDArray[Any]], int]]] = field(default_factory=dict)
    keep_updates: bool = False
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def round_bytes(self, server_round: int) -> int:
        """All parameter bytes moved in one round (both directions)."""
        return sum(self.down.get(server_round, {}).values()) + sum(
            self.up.get(server_round, {}).values()
        )


def make_client(
    cid: str,
    template: Any,
    trainer: LocalTrainer,
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    key: jax.Array,
    local_epochs: int,
) -> Any:
    """A :class:`flwr.client.NumPyClient` that trains the CNN on its own data."""
    from flwr.client import NumPyClient

    class CnnClient(NumPyClient):
        def get_parameters(self, config: dict[str, Any]) -> list[npt.NDArray[np.float32]]:
            return params_to_ndarrays(template)

        def fit(
            self, parameters: list[npt.NDArray[Any]], config: dict[str, Any]
        ) -> tuple[list[npt.NDArray[np.float32]], int, dict[str, Any]]:
            server_round = int(config.get("server_round", 0))
            params = ndarrays_to_params(template, parameters)
            params = trainer(params, x, y, local_epochs, jax.random.fold_in(key, server_round))
            return params_to_ndarrays(params), int(x.shape[0]), {}

    _ = cid
    return CnnClient()


def make_in_process_proxy(cid: str, client: Any, log: TrafficLog) -> Any:
    """A :class:`flwr.server.client_proxy.ClientProxy` calling ``client`` (a Flower
    ``Client``) directly; records message sizes and errors in ``log``."""
    from flwr.common import Code, DisconnectRes, FitIns, FitRes, parameters_to_ndarrays
    from flwr.server.client_proxy import ClientProxy

    class InProcessClientProxy(ClientProxy):
        def get_properties(self, ins: Any, timeout: Any, group_id: Any) -> Any:
            return client.get_properties(ins)

        def get_parameters(self, ins: Any, timeout: Any, group_id: Any) -> Any:
            return client.get_parameters(ins)

        def fit(self, ins: FitIns, timeout: Any, group_id: Any) -> FitRes:
            rnd = int(group_id) if group_id is not None else 0
            try:
                res: FitRes = client.fit(ins)
            except Exception as exc:
                with log._lock:
                    log.errors.append(f"client {cid}, round {rnd}: {exc!r}")
                raise
            with log._lock:
                log.down.setdefault(rnd, {})[cid] = sum(len(t) for t in ins.parameters.tensors)
                log.up.setdefault(rnd, {})[cid] = sum(len(t) for t in res.parameters.tensors)
                if res.status.code != Code.OK:
                    log.errors.append(f"client {cid}, round {rnd}: {res.status.message}")
                if log.keep_updates:
                    log.updates.setdefault(rnd, {})[cid] = (
                        parameters_to_ndarrays(res.parameters),
                        int(res.num_examples),
                    )
            return res

        def evaluate(self, ins: Any, timeout: Any, group_id: Any) -> Any:
            return client.evaluate(ins)

        def reconnect(self, ins: Any, timeout: Any, group_id: Any) -> Any:
            return DisconnectRes(reason="")

    return InProcessClientProxy(cid)


@dataclass
class FedAvgResult:
    """Test accuracy after every round (index 0: the initial model) and the traffic."""

    accuracy: list[float]
    round_bytes: list[int]
    per_client_bytes: int
    seconds: float
    final_params: list[npt.NDArray[np.float32]]
    traffic: TrafficLog

    def rounds_to_reach(self, target: float) -> int | None:
        """The first round whose global model reaches ``target`` accuracy (None: never)."""
        for rnd, acc in enumerate(self.accuracy):
            if rnd > 0 and acc >= target:
                return rnd
        return None

    def bytes_through(self, rounds: int) -> int:
        """Parameter bytes moved in rounds ``1..rounds``."""
        return sum(self.round_bytes[:rounds])


def evaluate_params(
    config: ModelConfig, params: Any, x: npt.NDArray[np.float32], y: npt.NDArray[np.int64]
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``params`` on ``(x, y)``."""
    logits = TrainedModel(config, params, tuple(range(config.num_classes))).logits(x)
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-logp[np.arange(len(y)), y].mean())
    return loss, float(np.mean(np.argmax(logits, axis=1) == y))


def run_fedavg(
    config: ModelConfig,
    clients: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]],
    test: tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]],
    fedavg: FedAvgConfig,
    key: jax.Array,
    *,
    keep_updates: bool = False,
    on_round: Callable[[int, float], None] | None = None,
) -> FedAvgResult:
    """Run Flower's FedAvg over ``clients`` (one ``(x, y)`` per client) for ``fedavg.rounds``.

    Every client is selected every round (``fraction_fit=1``); the global model
    is evaluated on ``test`` after every round by the strategy's ``evaluate_fn``.

    Raises:
        FlowerUnavailableError: flwr is not installed.
        ExperimentError: bad settings, or a client failed in some round.
    """
    require_flwr()
    from flwr.common import ndarrays_to_parameters
    from flwr.server import Server, SimpleClientManager
    from flwr.server.strategy import FedAvg

    fedavg.validate()
    if not clients:
        raise ExperimentError("FedAvg needs at least one client")
    logging.getLogger("flwr").setLevel(logging.WARNING)
    init_key, client_key = jax.random.split(key)
    template = init_params(config, init_key)
    trainer = LocalTrainer(config, fedavg.train)
    log = TrafficLog(keep_updates=keep_updates)
    manager = SimpleClientManager()
    for i, (x, y) in enumerate(clients):
        cid = str(i)
        numpy_client = make_client(
            cid,
            template,
            trainer,
            np.asarray(x, np.float32),
            np.asarray(y, np.int64),
            jax.random.fold_in(client_key, i),
            fedavg.local_epochs,
        )
        manager.register(make_in_process_proxy(cid, numpy_client.to_client(), log))
    test_x, test_y = np.asarray(test[0], np.float32), np.asarray(test[1], np.int64)
    accuracy: list[float] = []

    def evaluate_fn(
        server_round: int,
        arrays: list[npt.NDArray[Any]],
        _: dict[str, bool | bytes | float | int | str],
    ) -> tuple[float, dict[str, bool | bytes | float | int | str]] | None:
        loss, acc = evaluate_params(config, ndarrays_to_params(template, arrays), test_x, test_y)
        accuracy.append(acc)
        if on_round is not None:
            on_round(server_round, acc)
        return loss, {"accuracy": acc}

    n = len(clients)
    strategy = FedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=n,
        min_evaluate_clients=n,
        min_available_clients=n,
        evaluate_fn=evaluate_fn,
        on_fit_config_fn=lambda rnd: {"server_round": rnd},
        fit_metrics_aggregation_fn=lambda _: {},
        accept_failures=False,
        initial_parameters=ndarrays_to_parameters(params_to_ndarrays(template)),
    )
    server = Server(client_manager=manager, strategy=strategy)
    start = time.perf_counter()
    server.fit(num_rounds=fedavg.rounds, timeout=None)
    seconds = time.perf_counter() - start
    if log.errors:
        raise ExperimentError("FedAvg client failures: " + "; ".join(log.errors[:3]))
    rounds = fedavg.rounds
    missing = [r for r in range(1, rounds + 1) if len(log.up.get(r, {})) != n]
    if missing or len(accuracy) != rounds + 1:
        raise ExperimentError(f"FedAvg rounds {missing} did not collect all {n} clients")
    from flwr.common import parameters_to_ndarrays

    return FedAvgResult(
        accuracy=accuracy,
        round_bytes=[log.round_bytes(r) for r in range(1, rounds + 1)],
        per_client_bytes=next(iter(log.up[1].values())),
        seconds=seconds,
        final_params=[np.asarray(a, np.float32) for a in parameters_to_ndarrays(server.parameters)],
        traffic=log,
    )
