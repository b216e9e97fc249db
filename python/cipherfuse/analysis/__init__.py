"""Reproduction of the paper's experiments, the federated-learning comparison and reports.

Every experiment returns an :class:`~cipherfuse.analysis.experiment.ExperimentResult`
(one JSON shape for all), so tables, checks and ``docs/results.md`` are generated.
"""

from cipherfuse.analysis.experiment import ExperimentError, ExperimentResult, Row

__all__ = ["ExperimentError", "ExperimentResult", "Row"]
