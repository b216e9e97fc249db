"""The one JSON shape every ``cipherfuse reproduce <experiment>`` writes.

``{"experiment": str, "seed": int, "quick": bool, "rows": [{"name": str,
"paper": number|null, "ours": number, "unit": str, "better":
"higher"|"lower"|null}, ...]}`` plus an optional ``"meta"`` object (free-form
provenance: command line, data source, hardware, wall time).

One row per table cell the paper reports, plus rows the paper lacks
(``"paper": null``). ``better`` says which direction is an improvement;
``null`` for figures where no direction applies (e.g. absolute times on other
hardware).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cipherfuse.errors import CipherfuseError
from cipherfuse.files import atomic_write_bytes
from cipherfuse.validation import strict_int

Better = Literal["higher", "lower"] | None
_BETTER: tuple[Better, ...] = ("higher", "lower", None)
_ROW_KEYS = {"name", "paper", "ours", "unit", "better"}
_TOP_KEYS = {"experiment", "seed", "quick", "rows"}


def percent(fraction: float) -> float:
    """A fraction as a row value in percent, rounded to 2 decimals."""
    return round(100.0 * fraction, 2)


def models_name(k: int) -> str:
    """The first ``k`` fused models as rows name them: ``{1}``, ``{1,2}``, ``{1,2,3}``."""
    return "{" + ",".join(str(i) for i in range(1, k + 1)) + "}"


class ExperimentError(CipherfuseError, ValueError):
    """An experiment result does not have the documented shape, or an experiment failed."""


def _number(value: Any, what: str, *, nullable: bool) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExperimentError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ExperimentError(f"{what} must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Row:
    """One reported figure: the paper's value (or None), ours, its unit and direction."""

    name: str
    ours: float
    unit: str
    paper: float | None = None
    better: Better = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ExperimentError(f"row name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.unit, str):
            raise ExperimentError(f"row {self.name!r}: unit must be a string")
        _number(self.ours, f"row {self.name!r}: ours", nullable=False)
        _number(self.paper, f"row {self.name!r}: paper", nullable=True)
        if self.better not in _BETTER:
            raise ExperimentError(
                f"row {self.name!r}: better must be 'higher', 'lower' or null, got {self.better!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The row as the JSON object of the documented shape."""
        return {
            "name": self.name,
            "paper": self.paper,
            "ours": self.ours,
            "unit": self.unit,
            "better": self.better,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Row:
        """Validate and build a row from its JSON object."""
        if not isinstance(data, dict) or set(data) != _ROW_KEYS:
            raise ExperimentError(
                f"a row must be an object with exactly the keys {sorted(_ROW_KEYS)}"
            )
        return cls(
            name=data["name"],
            ours=data["ours"],
            unit=data["unit"],
            paper=data["paper"],
            better=data["better"],
        )


@dataclass
class ExperimentResult:
    """An experiment's rows with its seed and whether it ran in ``--quick`` mode."""

    experiment: str
    seed: int
    quick: bool
    rows: list[Row] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def add(
        self,
        name: str,
        ours: float,
        unit: str,
        *,
        paper: float | None = None,
        better: Better = None,
    ) -> Row:
        """Append a row (names must be unique within an experiment) and return it."""
        if any(r.name == name for r in self.rows):
            raise ExperimentError(f"experiment {self.experiment!r} already has a row {name!r}")
        row = Row(name=name, ours=float(ours), unit=unit, paper=paper, better=better)
        self.rows.append(row)
        return row

    def row(self, name: str) -> Row:
        """The row called ``name``."""
        for r in self.rows:
            if r.name == name:
                return r
        raise ExperimentError(f"experiment {self.experiment!r} has no row {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape (``meta`` included when non-empty)."""
        out: dict[str, Any] = {
            "experiment": self.experiment,
            "seed": self.seed,
            "quick": self.quick,
            "rows": [r.to_dict() for r in self.rows],
        }
        if self.meta:
            out["meta"] = self.meta
        return out

    def to_json(self) -> str:
        """Pretty JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> ExperimentResult:
        """Validate a parsed JSON document and build the result."""
        if not isinstance(data, dict) or not _TOP_KEYS <= set(data) <= _TOP_KEYS | {"meta"}:
            raise ExperimentError(
                f"an experiment result must be an object with the keys {sorted(_TOP_KEYS)}"
                " (and optionally 'meta')"
            )
        if not isinstance(data["experiment"], str) or not data["experiment"]:
            raise ExperimentError("'experiment' must be a non-empty string")
        strict_int(data["seed"], "'seed'", error=ExperimentError)
        if not isinstance(data["quick"], bool):
            raise ExperimentError("'quick' must be true or false")
        if not isinstance(data["rows"], list):
            raise ExperimentError("'rows' must be a list")
        meta = data.get("meta", {})
        if not isinstance(meta, dict):
            raise ExperimentError("'meta' must be an object")
        result = cls(data["experiment"], data["seed"], data["quick"], meta=meta)
        for entry in data["rows"]:
            row = Row.from_dict(entry)
            result.add(row.name, row.ours, row.unit, paper=row.paper, better=row.better)
        return result

    @classmethod
    def load(cls, path: Path) -> ExperimentResult:
        """Read and validate a result file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ExperimentError(f"cannot read experiment result {path}: {exc}") from exc
        return cls.from_dict(data)

    def save(self, path: Path) -> None:
        """Write the JSON atomically (temp file in the same directory, fsync, rename)."""
        # 0600; the file is fsynced, not the folder; missing folders are created.
        atomic_write_bytes(path, self.to_json().encode() + b"\n", mode=0o600, sync_folder=False)
