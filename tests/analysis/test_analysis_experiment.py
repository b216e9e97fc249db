"""The experiment JSON shape: round trip, validation, atomic save."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cipherfuse.analysis.experiment import ExperimentError, ExperimentResult, Row


def _result() -> ExperimentResult:
    r = ExperimentResult("case1", seed=3, quick=True)
    r.add("strategy II, 3 models", 0.958, "fraction", paper=0.958, better="higher")
    r.add("wall time", 12.5, "s")
    return r


def test_round_trip_has_exactly_the_documented_shape(tmp_path: Path) -> None:
    r = _result()
    path = tmp_path / "sub" / "case1.json"
    r.save(path)
    data = json.loads(path.read_text())
    assert set(data) == {"experiment", "seed", "quick", "rows"}
    assert data["rows"][1] == {
        "name": "wall time",
        "paper": None,
        "ours": 12.5,
        "unit": "s",
        "better": None,
    }
    back = ExperimentResult.load(path)
    assert back.to_dict() == r.to_dict()
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["case1.json"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("seed"), "keys"),
        (lambda d: d.update(quick="yes"), "quick"),
        (lambda d: d["rows"][0].update(ours="0.9"), "ours"),
        (lambda d: d["rows"][0].update(ours=float("nan")), "finite"),
        (lambda d: d["rows"][0].update(better="up"), "better"),
        (lambda d: d["rows"][0].update(extra=1), "exactly the keys"),
        (lambda d: d["rows"].append(dict(d["rows"][0])), "already has a row"),
    ],
)
def test_malformed_documents_are_rejected(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = _result().to_dict()
    mutate(data)
    with pytest.raises(ExperimentError, match=message):
        ExperimentResult.from_dict(data)


def test_row_lookup_and_unknown_row() -> None:
    r = _result()
    assert r.row("wall time").ours == 12.5
    with pytest.raises(ExperimentError, match="no row"):
        r.row("missing")
    with pytest.raises(ExperimentError):
        Row(name="", ours=1.0, unit="s")
