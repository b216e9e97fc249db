"""Errors raised by :mod:`cipherfuse.fusion`."""

from __future__ import annotations

from cipherfuse.errors import ParameterError


class FusionError(ParameterError):
    """Fusion inputs are inconsistent (feature sizes, label sets, sample counts) or out of range."""
