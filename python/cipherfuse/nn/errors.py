"""Errors raised by :mod:`cipherfuse.nn`."""

from __future__ import annotations

from cipherfuse.errors import ParameterError, SerializationError


class ModelConfigError(ParameterError):
    """A model configuration is malformed (unknown layer kind, bad shape, ...)."""


class ModelFileError(SerializationError):
    """A model file is corrupt, truncated, of an unknown version or inconsistent with its config."""


class QuantizationError(ParameterError):
    """Quantization parameters are out of range or integer arithmetic would overflow int64."""
