"""Case IV: Flower's FedAvg against independent numpy references, and the quick
experiment's qualitative result (FedAvg needs more rounds and bytes than one-shot fusion)."""

from __future__ import annotations

import io
import json
import math
from dataclasses import replace

import jax
import numpy as np
import numpy.typing as npt
import pytest
from click.testing import CliRunner

from cipherfuse.analysis.experiment import ExperimentError, ExperimentResult

flwr = pytest.importorskip("flwr", reason="Flower (pip install 'cipherfuse[fl]') is not installed")

from cipherfuse.analysis.case4 import QUICK, make_split, run_case4  # noqa: E402
from cipherfuse.analysis.federated import (  # noqa: E402
    FedAvgConfig,
    TrafficLog,
    make_in_process_proxy,
    params_to_ndarrays,
    run_fedavg,
)
from cipherfuse.cli.main import cli  # noqa: E402
from cipherfuse.data import Dataset  # noqa: E402
from cipherfuse.nn import (  # noqa: E402
    ConvSpec,
    DenseSpec,
    FlattenSpec,
    ModelConfig,
    PoolSpec,
    TrainConfig,
    init_params,
)

#: A smaller CNN than the experiment's (Table II contributor 1) keeps the quick test fast.
SMALL = ModelConfig(
    name="small",
    input_shape=(28, 28, 1),
    layers=(
        ConvSpec(8, (5, 5)),
        PoolSpec("max", (2, 2)),
        ConvSpec(8, (3, 3)),
        PoolSpec("max", (2, 2)),
        FlattenSpec(),
        DenseSpec(32),
    ),
)
TINY = ModelConfig(
    name="tiny",
    input_shape=(28, 28, 1),
    layers=(ConvSpec(4, (3, 3)), PoolSpec("avg", (4, 4)), FlattenSpec(), DenseSpec(16)),
)


def _npy_bytes(arrays: list[npt.NDArray[np.float32]]) -> int:
    """Size of arrays serialized the way Flower's Parameters are (np.save, one per tensor)."""
    total = 0
    for a in arrays:
        buf = io.BytesIO()
        np.save(buf, a, allow_pickle=False)
        total += len(buf.getvalue())
    return total


def _weighted_mean(updates: list[tuple[list[npt.NDArray[np.float32]], int]]) -> list[np.ndarray]:
    weights = np.array([n for _, n in updates], np.float64)
    stacked = [
        np.stack([u[i].astype(np.float64) for u, _ in updates]) for i in range(len(updates[0][0]))
    ]
    return [np.tensordot(weights, s, axes=1) / weights.sum() for s in stacked]


@pytest.mark.parametrize("inplace", [True, False])
def test_flower_fedavg_aggregate_is_the_weighted_mean(inplace: bool) -> None:
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server.strategy import FedAvg

    rng = np.random.default_rng(4)
    shapes = [(5, 3), (7,), (2, 2, 3)]
    sizes = [10, 250, 33, 1]
    updates = [([rng.normal(size=s).astype(np.float32) for s in shapes], n) for n in sizes]
    log = TrafficLog()
    results = [
        (
            make_in_process_proxy(str(i), None, log),
            FitRes(
                status=Status(code=Code.OK, message=""),
                parameters=ndarrays_to_parameters(arrays),
                num_examples=n,
                metrics={},
            ),
        )
        for i, (arrays, n) in enumerate(updates)
    ]
    aggregated, _ = FedAvg(inplace=inplace).aggregate_fit(1, results, [])
    assert aggregated is not None
    got = parameters_to_ndarrays(aggregated)
    for g, want in zip(got, _weighted_mean(updates), strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)
    # and not the plain mean (the weights matter here)
    plain = np.mean([arrays[0] for arrays, _ in updates], axis=0)
    assert not np.allclose(got[0], plain, atol=1e-3)


def test_in_process_flower_run_averages_the_client_updates(mnist: Dataset) -> None:
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(mnist))
    clients = [
        (mnist.images[idx[:100]], mnist.labels[idx[:100]]),
        (mnist.images[idx[100:250]], mnist.labels[idx[100:250]]),
    ]
    test = (mnist.images[idx[250:750]], mnist.labels[idx[250:750]])
    result = run_fedavg(
        TINY,
        clients,
        test,
        FedAvgConfig(rounds=2, local_epochs=1, train=TrainConfig(learning_rate=1e-2)),
        jax.random.key(3),
        keep_updates=True,
    )
    assert len(result.accuracy) == 3  # initial model + 2 rounds
    updates = result.traffic.updates[2]
    assert sorted(updates) == ["0", "1"]
    assert [updates[c][1] for c in ("0", "1")] == [100, 150]
    expected = _weighted_mean([updates["0"], updates["1"]])
    for got, want in zip(result.final_params, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # local training changed the parameters
    assert not np.allclose(updates["0"][0][0], updates["1"][0][0])
    # bytes: every round, each client receives and returns the whole model as np.save tensors
    per_model = _npy_bytes(result.final_params)
    assert result.per_client_bytes == per_model
    assert result.round_bytes == [2 * 2 * per_model] * 2
    # the final accuracy is the final global model's accuracy on the test set
    from cipherfuse.analysis.federated import evaluate_params, ndarrays_to_params

    params = ndarrays_to_params(init_params(TINY, jax.random.key(0)), result.final_params)
    assert evaluate_params(TINY, params, *test)[1] == result.accuracy[-1]


def test_bad_settings_raise(mnist: Dataset) -> None:
    with pytest.raises(ExperimentError, match="rounds"):
        FedAvgConfig(rounds=0).validate()
    with pytest.raises(ExperimentError, match="scenario"):
        make_split(mnist, "non-iid-ish", QUICK, 0)
    with pytest.raises(ExperimentError, match="scenarios"):
        run_case4(mnist, quick=True, scenarios=("bogus",))
    with pytest.raises(ExperimentError, match="train_per_node"):
        run_case4(mnist, settings=replace(QUICK, train_per_node=10))


def test_partial_split_gives_nodes_their_labels(mnist: Dataset) -> None:
    split = make_split(mnist, "partial", replace(QUICK, train_per_node=200, test_size=500), 0)
    assert [c.label_set for c in split.contributors] == [
        (0, 1, 2, 3, 4),
        (0, 6, 7, 8, 9),
        (5, 6, 7, 8, 9),
        tuple(range(10)),
    ]
    for c in split.contributors:
        assert len(c.train) == 200
        assert set(np.unique(c.train.labels)) <= set(c.label_set)


@pytest.mark.slow
def test_quick_experiment_fedavg_needs_more_rounds_and_bytes(mnist: Dataset) -> None:
    settings = replace(
        QUICK,
        train_per_node=500,
        verify_per_node=50,
        test_size=1000,
        model=SMALL,
        contributor_epochs=5,
    )
    result = run_case4(mnist, seed=0, settings=settings, scenarios=("iid",), quick=True)
    again = ExperimentResult.from_dict(json.loads(result.to_json()))
    assert again.to_dict() == result.to_dict()
    r = {row.name: row.ours for row in result.rows}

    # qualitative: one round for the one-shot fusion, more for FedAvg at equal accuracy
    assert r["iid: one-shot communication rounds"] == 1
    assert r["iid: FedAvg rounds to reach one-shot accuracy"] > 1
    curve = result.meta["curves"]["iid"]["fedavg_accuracy"]
    assert curve[1] < curve_one_shot(result)
    assert r["iid: FedAvg bytes to reach one-shot accuracy"] > r["iid: one-shot bytes"]
    assert r["iid: byte ratio, FedAvg to reach / one-shot"] > 2
    assert r["iid: one-shot fusion test accuracy"] > 40  # chance: 10 %

    # bytes: FedAvg moves the np.save'd CNN twice per client per round (independent count)
    cnn = params_to_ndarrays(init_params(SMALL, jax.random.key(0)))
    per_model = _npy_bytes(cnn)
    raw = sum(a.nbytes for a in cnn)
    assert r["iid: FedAvg bytes per round"] == 2 * 4 * per_model
    assert r["iid: FedAvg bytes, all rounds"] == settings.rounds * 2 * 4 * per_model
    # one-shot: three model files (raw weights + a small header), once, to the verifier
    assert 3 * raw < r["iid: one-shot bytes"] < 3 * raw + 3 * 4096
    # handed on to an initiator: the three models again plus the fusion layer:
    # A (3 x 32 features x 30 hidden), B (30 x 10), mean and std (96 each), float32
    head = 4 * (96 * 30 + 30 * 10 + 2 * 96)
    delivered = r["iid: one-shot bytes, MetaModel also delivered to an initiator"]
    assert delivered == 2 * r["iid: one-shot bytes"] + head
    need = r["iid: FedAvg bytes to reach one-shot accuracy"]
    assert r["iid: byte ratio, FedAvg to reach / one-shot"] == pytest.approx(
        need / r["iid: one-shot bytes"], abs=0.01
    )
    assert r["iid: byte ratio with delivery to an initiator on both sides"] == pytest.approx(
        (need + per_model) / delivered, abs=0.01
    )

    # time on the paper's star, by hand: per phase 4 models over the hub's link + 2 x 5 ms
    wire = per_model + math.ceil(per_model / 1448) * 66
    round_s = 2 * (4 * wire * 8 / 50e6 + 0.01)
    assert r["network: FedAvg round time (model, 50 Mbps star)"] == pytest.approx(round_s, abs=1e-4)
    assert r["iid: FedAvg communication time, all rounds (model)"] == pytest.approx(
        settings.rounds * round_s, abs=1e-3
    )
    # the one exchange is one phase: three equal model files into the verifier's link
    model_file = int(r["iid: one-shot bytes"]) // 3
    wire_file = model_file + math.ceil(model_file / 1448) * 66
    assert r["iid: one-shot communication time (model)"] == pytest.approx(
        3 * wire_file * 8 / 50e6 + 0.01, abs=1e-4
    )
    assert r["iid: FedAvg test accuracy (last round)"] == pytest.approx(100 * curve[-1], abs=0.01)
    if result.meta["emulation"]["ran"]:
        # the emulated links agree with the model of those links
        for what in ("FedAvg round time", "one-shot exchange time"):
            measured = r[f"network: {what} (emulated)"]
            model = r[f"network: {what} (model of the emulated links)"]
            assert measured == pytest.approx(model, rel=0.15)


def curve_one_shot(result: ExperimentResult) -> float:
    return float(result.meta["curves"]["iid"]["one_shot_accuracy"])


def test_cli_lists_case4_and_rejects_bad_options() -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["reproduce", "case4", "--help"])
    assert out.exit_code == 0
    for option in ("--seed", "--quick", "--json", "--out", "--emulate / --no-emulate"):
        assert option in out.output
    bad = runner.invoke(cli, ["reproduce", "case4", "--scenario", "bogus"])
    assert bad.exit_code != 0
    assert "bogus" in bad.output
