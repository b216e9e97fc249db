"""Behaviours of the paper's Case II and the verdict type (no learning imports here)."""

from __future__ import annotations

from dataclasses import dataclass

#: ``honest``; ``lazy``: claims an untrained model; ``dishonest``: claims a model trained on
#: permuted labels; ``never-release``: keeps the envelope after acceptance.
BEHAVIOURS: tuple[str, ...] = ("honest", "lazy", "dishonest", "never-release")


@dataclass
class Judgement:
    """A verifier's verdict on one claimed model."""

    accept: bool
    accuracy: float
    baseline: float | None
    reason: str
