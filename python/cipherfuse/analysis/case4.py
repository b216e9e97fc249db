"""Case Study IV (paper Sec. VI-E, Figs. 13-14): this paradigm vs federated averaging.

Four nodes with 1,000 MNIST training samples each, in two scenarios: IID
(every node sees all ten labels) and partial labels (nodes 1-3 hold the
Table III label subsets, node 4 all labels; :data:`FEDERATED_PARTIAL_LABELS`).

* **FedAvg** (Flower's ``FedAvg`` strategy and server loop,
  :mod:`cipherfuse.analysis.federated`): the four nodes are clients of a
  server; ``rounds`` rounds of ``local_epochs`` epochs each; the global model
  is tested after every round.
* **This paradigm, one shot**: nodes 1-3 (computing contributors) train their
  private models once and send them to node 4 (the verification contributor,
  the paper's analogue of the FL server, which also learns); node 4 fuses
  them with Strategy II on its own 1,000 samples
  (:func:`cipherfuse.fusion.train_fusion_head`).

All nodes train the same CNN (Table II, contributor 1) with the same
optimizer, learning rate, batch size and augmentation. Bytes are the real
messages: Flower's serialized ``Parameters`` per client and round for FedAvg;
for the one-shot side each private model's file (:func:`model_to_bytes`) once.
Both sides are counted until the final model exists at the aggregator (FedAvg's
global model at the server, the MetaModel at the verifier), as the issue's own
figures count them (three models moved once). Handing the final model to a task
initiator is reported as a second ratio that charges it to both sides: one
global model for FedAvg, the three private models plus the fusion layer's
float32 weights and standardization for the MetaModel. Times are the bytes of
the exchanges on the paper's star network (50 Mbps, 5 ms,
:class:`~cipherfuse.analysis.network.StarNetwork`) and, when possible, measured
over emulated links (:func:`~cipherfuse.analysis.netem.emulate`).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import jax
import numpy as np

from cipherfuse.analysis.experiment import ExperimentError, ExperimentResult, percent
from cipherfuse.analysis.federated import FedAvgConfig, FedAvgResult, run_fedavg
from cipherfuse.analysis.fusion_cases import FUSION, train_contributors
from cipherfuse.analysis.netem import EmulationResult, emulate, emulation_unavailable_reason
from cipherfuse.analysis.network import (
    NetworkError,
    StarNetwork,
    Transfer,
    fedavg_round,
    one_shot_fusion,
    payload_bytes,
)
from cipherfuse.data.mnist import Dataset, portable_source
from cipherfuse.data.partition import (
    FEDERATED_PARTIAL_LABELS,
    CaseSplit,
    iid_split,
    split_by_labels,
)
from cipherfuse.fusion.augment import FusionAugment
from cipherfuse.fusion.features import PlainFeatures
from cipherfuse.fusion.head import FusedHead, FusionConfig, train_fusion_head
from cipherfuse.nn.config import ModelConfig, table2_config
from cipherfuse.nn.serialize import model_to_bytes
from cipherfuse.nn.train import TrainConfig

SCENARIOS: tuple[str, ...] = ("iid", "partial")
#: Node names on the star: the hub is the FL server / the verification contributor.
HUB = "hub"
NODES: tuple[str, ...] = ("node1", "node2", "node3", "node4")


@dataclass(frozen=True)
class Case4Settings:
    """Everything that sizes the experiment.

    Attributes:
        rounds: FedAvg communication rounds.
        local_epochs: FedAvg client epochs per round.
        contributor_epochs: epochs each of our three contributors trains, once
            (30 = ``rounds * local_epochs``: every node does the same local
            training work as a FedAvg client, as the paper matches epochs per
            node, 100 pre-training epochs vs 5 rounds x 20 local epochs; see
            docs/case4.md).
        train: optimizer, batch size and augmentation, shared by all nodes.
        fusion: Strategy II fusion-layer training at the verifier (the
            reproductions' cross-validated :data:`~cipherfuse.analysis.fusion_cases.FUSION`).
        fusion_shift_copies: shifted copies of the verifier's samples for fusion.
        train_per_node: training samples per node (paper: 1,000).
        verify_per_node: each node's local verification samples (only logged).
        test_size: held-out all-label test samples.
        model: the CNN every node trains.
    """

    rounds: int = 30
    local_epochs: int = 1
    contributor_epochs: int = 30
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            learning_rate=1e-3, max_shift=2, target_accuracy=None, progress=False
        )
    )
    fusion: FusionConfig = field(default_factory=lambda: replace(FUSION, progress=False))
    fusion_shift_copies: int = 4
    train_per_node: int = 1000
    verify_per_node: int = 100
    test_size: int = 4000
    model: ModelConfig = field(default_factory=lambda: table2_config(1))

    def validate(self) -> None:
        """Raise :class:`ExperimentError` naming the first bad field."""
        if self.rounds < 1 or self.local_epochs < 1 or self.contributor_epochs < 1:
            raise ExperimentError("rounds, local_epochs and contributor_epochs must be >= 1")
        if self.train_per_node < self.train.batch_size:
            raise ExperimentError(
                f"train_per_node must be >= batch_size={self.train.batch_size}, "
                f"got {self.train_per_node}"
            )
        if self.verify_per_node < 1 or self.test_size < 1 or self.fusion_shift_copies < 0:
            raise ExperimentError("verify_per_node and test_size must be >= 1, shift copies >= 0")
        self.train.validate()
        self.fusion.validate()


#: The full run (about 15-25 minutes on this 2-core machine).
FULL = Case4Settings()
#: ``--quick``: the same code paths, a few rounds and epochs.
QUICK = Case4Settings(
    rounds=3,
    contributor_epochs=2,
    fusion=FusionConfig(
        stage1_epochs=2, stage2_epochs=2, stage2_learning_rate=3e-4, progress=False
    ),
    fusion_shift_copies=1,
    test_size=1000,
)


@dataclass
class OneShotResult:
    """This paradigm's side of a scenario."""

    accuracy: float
    model_bytes: list[int]
    fusion_bytes: int
    contributor_accuracy: list[float]
    seconds: float

    @property
    def exchange_bytes(self) -> int:
        """The one exchange: every private model once, contributors to the verifier."""
        return sum(self.model_bytes)

    @property
    def delivery_bytes(self) -> int:
        """Handing the MetaModel on to an initiator: the private models and the fusion layer."""
        return self.exchange_bytes + self.fusion_bytes


@dataclass
class ScenarioResult:
    """Both paradigms on one data split."""

    scenario: str
    fedavg: FedAvgResult
    one_shot: OneShotResult

    @property
    def rounds_to_match(self) -> int | None:
        """The first FedAvg round whose accuracy reaches the one-shot fusion's (None: never)."""
        return self.fedavg.rounds_to_reach(self.one_shot.accuracy)


def make_split(data: Dataset, scenario: str, settings: Case4Settings, seed: int) -> CaseSplit:
    """Four nodes' data: IID or the partial-label scenario (no fusion set: node 4 fuses)."""
    kwargs: dict[str, Any] = {
        "train_per_contributor": settings.train_per_node,
        "verify_per_contributor": settings.verify_per_node,
        "fusion_train_size": 0,
        "test_size": settings.test_size,
        "seed": seed,
    }
    if scenario == "iid":
        return iid_split(data, len(NODES), **kwargs)
    if scenario == "partial":
        return split_by_labels(data, FEDERATED_PARTIAL_LABELS, **kwargs)
    raise ExperimentError(f"scenario must be one of {SCENARIOS}, got {scenario!r}")


def fusion_layer_bytes(head: FusedHead) -> int:
    """Bytes of the fusion layer as float32: ``A``, ``B`` and the feature standardization."""
    weights = sum(
        np.asarray(leaf, np.float32).nbytes for leaf in jax.tree_util.tree_leaves(head.params)
    )
    return int(weights + head.mean.astype(np.float32).nbytes + head.std.astype(np.float32).nbytes)


def run_one_shot(split: CaseSplit, settings: Case4Settings, seed: int) -> OneShotResult:
    """Contributors 1-3 train once; node 4 fuses their models (Strategy II) on its data."""
    start = time.perf_counter()
    train_cfg = replace(settings.train, max_epochs=settings.contributor_epochs, min_epochs=1)
    trained = train_contributors(split.contributors[:3], [settings.model] * 3, train_cfg, seed)
    models = [r.model for r in trained]
    local_acc = [r.verify_accuracy[-1] for r in trained]
    verifier = split.contributors[3]
    fx, fy = FusionAugment(copies=settings.fusion_shift_copies).apply(verifier.train, seed + 1)
    extractors = [PlainFeatures(m) for m in models]
    head = train_fusion_head(
        [e(fx) for e in extractors],
        fy,
        [m.labels for m in models],
        "II",
        jax.random.key(seed + 7),
        settings.fusion,
        block_weights=[e.output_weights() for e in extractors],
    )
    pred = head.predict_from_features([e(split.test.images) for e in extractors])
    return OneShotResult(
        accuracy=float(np.mean(pred == split.test.labels)),
        model_bytes=[len(model_to_bytes(m)) for m in models],
        fusion_bytes=fusion_layer_bytes(head),
        contributor_accuracy=local_acc,
        seconds=time.perf_counter() - start,
    )


def run_scenario(
    data: Dataset,
    scenario: str,
    settings: Case4Settings,
    seed: int,
    *,
    on_round: Callable[[int, float], None] | None = None,
) -> ScenarioResult:
    """Both paradigms on the same four nodes' data."""
    split = make_split(data, scenario, settings, seed)
    fed = run_fedavg(
        settings.model,
        [(n.train.images, n.train.labels) for n in split.contributors],
        (split.test.images, split.test.labels),
        FedAvgConfig(
            rounds=settings.rounds, local_epochs=settings.local_epochs, train=settings.train
        ),
        jax.random.key(seed + 1000),
        on_round=on_round,
    )
    return ScenarioResult(scenario, fed, run_one_shot(split, settings, seed))


def fedavg_phases(result: FedAvgResult) -> list[list[Transfer]]:
    """One FedAvg round on the star, with the per-client message sizes Flower produced."""
    return fedavg_round(HUB, NODES, result.per_client_bytes)


def one_shot_phases(result: OneShotResult) -> list[list[Transfer]]:
    """The one exchange: contributors 1-3 -> the verifier (at the hub, as FedAvg's server)."""
    return one_shot_fusion(HUB, NODES[:3], result.model_bytes)


@dataclass
class EmulationSummary:
    """Measured vs modelled seconds over the emulated star."""

    fedavg_round_seconds: float
    one_shot_seconds: float
    model_fedavg_round_seconds: float
    model_one_shot_seconds: float
    qdisc: str
    delay_emulated: bool
    repeats: int


def emulate_schedules(
    fed_round: Sequence[Sequence[Transfer]],
    one_shot: Sequence[Sequence[Transfer]],
    network: StarNetwork,
    *,
    repeats: int = 3,
) -> EmulationSummary:
    """Run ``repeats`` FedAvg rounds and ``repeats`` one-shot exchanges over emulated links.

    Medians are reported; the model is evaluated for the links as emulated
    (without the delay when the kernel lacks netem).
    """
    phases = [list(p) for _ in range(repeats) for p in (*fed_round, *one_shot)]
    measured: EmulationResult = emulate(HUB, (HUB, *NODES), phases, network)
    per = len(fed_round) + len(one_shot)
    fed = [sum(measured.phase_seconds[r * per : r * per + len(fed_round)]) for r in range(repeats)]
    ours = [
        sum(measured.phase_seconds[r * per + len(fed_round) : (r + 1) * per])
        for r in range(repeats)
    ]
    as_emulated = network if measured.delay_emulated else replace(network, delay_s=0.0)
    return EmulationSummary(
        fedavg_round_seconds=float(np.median(fed)),
        one_shot_seconds=float(np.median(ours)),
        model_fedavg_round_seconds=as_emulated.schedule_seconds(fed_round),
        model_one_shot_seconds=as_emulated.schedule_seconds(one_shot),
        qdisc=measured.qdisc,
        delay_emulated=measured.delay_emulated,
        repeats=repeats,
    )


def add_scenario_rows(
    out: ExperimentResult, res: ScenarioResult, network: StarNetwork, emu: EmulationSummary | None
) -> None:
    """The scenario's rows: accuracies, rounds, bytes, times, rounds/bytes to match."""
    s = res.scenario
    fed, ours = res.fedavg, res.one_shot
    rounds = len(fed.round_bytes)
    round_time = network.schedule_seconds(fedavg_phases(fed))
    ours_time = network.schedule_seconds(one_shot_phases(ours))
    out.add(
        f"{s}: FedAvg test accuracy (last round)", percent(fed.accuracy[-1]), "%", better="higher"
    )
    out.add(
        f"{s}: FedAvg best test accuracy over rounds",
        percent(max(fed.accuracy)),
        "%",
        better="higher",
    )
    out.add(f"{s}: one-shot fusion test accuracy", percent(ours.accuracy), "%", better="higher")
    out.add(
        f"{s}: accuracy, one-shot minus FedAvg",
        round(percent(ours.accuracy) - percent(fed.accuracy[-1]), 2),
        "points",
        better="higher",
    )
    out.add(f"{s}: FedAvg communication rounds", rounds, "rounds", paper=5)
    out.add(f"{s}: one-shot communication rounds", 1, "rounds", paper=1, better="lower")
    out.add(f"{s}: FedAvg bytes per round", fed.round_bytes[0], "bytes", better="lower")
    out.add(f"{s}: FedAvg bytes, all rounds", fed.bytes_through(rounds), "bytes", better="lower")
    out.add(f"{s}: one-shot bytes", ours.exchange_bytes, "bytes", better="lower")
    out.add(
        f"{s}: FedAvg communication time, all rounds (model)",
        round(round_time * rounds, 4),
        "s",
        better="lower",
    )
    out.add(f"{s}: one-shot communication time (model)", round(ours_time, 4), "s", better="lower")
    need = res.rounds_to_match
    out.add(f"{s}: FedAvg reached the one-shot accuracy", 1 if need is not None else 0, "bool")
    # Not reached: the figures below are lower bounds (all rounds run), flagged by the row above.
    n = need if need is not None else rounds
    out.add(f"{s}: FedAvg rounds to reach one-shot accuracy", n, "rounds", better="lower")
    out.add(
        f"{s}: FedAvg bytes to reach one-shot accuracy",
        fed.bytes_through(n),
        "bytes",
        better="lower",
    )
    out.add(
        f"{s}: byte ratio, FedAvg to reach / one-shot",
        round(fed.bytes_through(n) / ours.exchange_bytes, 2),
        "x",
        better="higher",
    )
    # The final model handed to an initiator on both sides: FedAvg's server sends one
    # global model; the verifier sends the three private models and the fusion layer.
    out.add(
        f"{s}: one-shot bytes, MetaModel also delivered to an initiator",
        ours.exchange_bytes + ours.delivery_bytes,
        "bytes",
        better="lower",
    )
    out.add(
        f"{s}: byte ratio with delivery to an initiator on both sides",
        round(
            (fed.bytes_through(n) + fed.per_client_bytes)
            / (ours.exchange_bytes + ours.delivery_bytes),
            2,
        ),
        "x",
        better="higher",
    )
    out.add(
        f"{s}: FedAvg communication time to reach one-shot accuracy (model)",
        round(round_time * n, 4),
        "s",
        better="lower",
    )
    if emu is not None:
        out.add(
            f"{s}: FedAvg communication time to reach one-shot accuracy (emulated)",
            round(emu.fedavg_round_seconds * n, 4),
            "s",
            better="lower",
        )
        out.add(
            f"{s}: one-shot communication time (emulated)",
            round(emu.one_shot_seconds, 4),
            "s",
            better="lower",
        )


def run_case4(
    data: Dataset,
    *,
    seed: int = 0,
    quick: bool = False,
    scenarios: Sequence[str] = SCENARIOS,
    emulate_links: bool | None = None,
    settings: Case4Settings | None = None,
    network: StarNetwork | None = None,
    on_round: Callable[[str, int, float], None] | None = None,
) -> ExperimentResult:
    """Run Case IV and return its rows (see the module docstring).

    Args:
        quick: use :data:`QUICK` instead of :data:`FULL` (unless ``settings`` is given).
        emulate_links: ``True`` requires the namespace emulation (error if it cannot
            run), ``False`` skips it, ``None`` runs it when possible.
        on_round: progress callback ``(scenario, round, FedAvg accuracy)``.

    Raises:
        ExperimentError: bad settings; FlowerUnavailableError without flwr;
        NetworkError: the emulation was required and failed.
    """
    cfg = settings if settings is not None else (QUICK if quick else FULL)
    cfg.validate()
    net = network if network is not None else StarNetwork()
    bad = [s for s in scenarios if s not in SCENARIOS]
    if bad or not scenarios:
        raise ExperimentError(
            f"scenarios must be a non-empty subset of {SCENARIOS}, got {scenarios}"
        )
    start = time.perf_counter()
    results = []
    for s in scenarios:
        cb = (lambda r, a, s=s: on_round(s, r, a)) if on_round is not None else None
        results.append(run_scenario(data, s, cfg, seed, on_round=cb))

    emu: EmulationSummary | None = None
    reason = emulation_unavailable_reason()
    emulation_note: dict[str, Any]
    if emulate_links is False:
        emulation_note = {"ran": False, "why": "--no-emulate"}
    elif reason is not None:
        if emulate_links:
            raise NetworkError(f"--emulate was requested but {reason}")
        emulation_note = {"ran": False, "why": reason}
    else:
        emu = emulate_schedules(
            fedavg_phases(results[0].fedavg), one_shot_phases(results[0].one_shot), net
        )
        emulation_note = {"ran": True, **emu.__dict__}

    out = ExperimentResult("case4", seed, quick)
    fed0 = results[0].fedavg
    out.add(
        "network: FedAvg round time (model, 50 Mbps star)",
        round(net.schedule_seconds(fedavg_phases(fed0)), 4),
        "s",
        better="lower",
    )
    out.add(
        "network: one-shot exchange time (model, 50 Mbps star)",
        round(net.schedule_seconds(one_shot_phases(results[0].one_shot)), 4),
        "s",
        better="lower",
    )
    if emu is not None:
        out.add("network: FedAvg round time (emulated)", round(emu.fedavg_round_seconds, 4), "s")
        out.add(
            "network: FedAvg round time (model of the emulated links)",
            round(emu.model_fedavg_round_seconds, 4),
            "s",
        )
        out.add("network: one-shot exchange time (emulated)", round(emu.one_shot_seconds, 4), "s")
        out.add(
            "network: one-shot exchange time (model of the emulated links)",
            round(emu.model_one_shot_seconds, 4),
            "s",
        )
    for res in results:
        add_scenario_rows(out, res, net, emu)

    out.meta = {
        "command": f"cipherfuse reproduce case4 --seed {seed}{' --quick' if quick else ''}",
        "data": portable_source(data.source),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "model": cfg.model.name,
        "settings": {
            "rounds": cfg.rounds,
            "local_epochs": cfg.local_epochs,
            "contributor_epochs": cfg.contributor_epochs,
            "learning_rate": cfg.train.learning_rate,
            "batch_size": cfg.train.batch_size,
            "max_shift": cfg.train.max_shift,
            "fusion_epochs": [cfg.fusion.stage1_epochs, cfg.fusion.stage2_epochs],
            "fusion_final_lr_fraction": cfg.fusion.final_lr_fraction,
            "fusion_shift_copies": cfg.fusion_shift_copies,
            "train_per_node": cfg.train_per_node,
            "test_size": cfg.test_size,
        },
        "network": {
            "rate_bps": net.rate_bps,
            "delay_s": net.delay_s,
            "mss": net.mss,
            "header_bytes": net.header_bytes,
        },
        "emulation": emulation_note,
        "curves": {
            r.scenario: {
                "fedavg_accuracy": [round(a, 4) for a in r.fedavg.accuracy],
                "fedavg_round_bytes": r.fedavg.round_bytes,
                "fedavg_seconds": round(r.fedavg.seconds, 1),
                "one_shot_accuracy": round(r.one_shot.accuracy, 4),
                "one_shot_model_bytes": r.one_shot.model_bytes,
                "one_shot_fusion_bytes": r.one_shot.fusion_bytes,
                "one_shot_seconds": round(r.one_shot.seconds, 1),
                "contributor_verify_accuracy": [
                    round(a, 4) for a in r.one_shot.contributor_accuracy
                ],
            }
            for r in results
        },
        "payload_check": {
            "fedavg_round_payload": payload_bytes(fedavg_phases(fed0)),
            "one_shot_payload": payload_bytes(one_shot_phases(results[0].one_shot)),
        },
    }
    return out
