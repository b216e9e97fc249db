"""Behaviours of the paper's Case II and the verdict type (no learning imports here)."""

from __future__ import annotations

from dataclasses import dataclass

#: ``honest``; ``lazy``: claims an untrained model; ``dishonest``: claims a model trained on
#: permuted labels; ``never-release``: keeps the envelope after acceptance.
BEHAVIOURS: tuple[str, ...] = ("honest", "lazy", "dishonest", "never-release")


@dataclass
class Judgement:
    """A verifier's verdict on one claimed model.

    ``abort``: the member could not judge (its committee's three-party computation
    aborted: a silent or deviating member, not the claimant's fault); it reveals an abort
    ballot, which is neither accept nor reject (``accept`` is then False).
    """

    accept: bool
    accuracy: float
    baseline: float | None
    reason: str
    abort: bool = False
