"""Errors raised by :mod:`cipherfuse.he`."""

from __future__ import annotations

from cipherfuse.errors import CipherfuseError, ParameterError, SerializationError

__all__ = [
    "HEError",
    "KeyMismatchError",
    "NoiseBudgetExceeded",
    "ParameterError",
    "PlaintextOverflow",
    "ResourceLimitExceeded",
    "SerializationError",
]


class HEError(CipherfuseError):
    """Base class of homomorphic-encryption errors."""


class NoiseBudgetExceeded(HEError, ArithmeticError):
    """The worst-case noise of a result could reach w/2, so decryption could be wrong.

    Raised *before* computing. Attributes hold the numbers: ``operation``,
    ``bound`` (the noise bound the result would have) and ``limit`` (w/2).
    """

    def __init__(self, operation: str, bound: int, limit: int, hint: str = "") -> None:
        self.operation = operation
        self.bound = bound
        self.limit = limit
        ratio = bound / limit if limit else float("inf")
        msg = (
            f"{operation}: worst-case noise bound {bound} (2^{bound.bit_length()}) would reach "
            f"the decryption limit w/2 = {limit} (2^{limit.bit_length() - 1}), ratio {ratio:.3g}"
        )
        if hint:
            msg += f"; {hint}"
        super().__init__(msg)


class PlaintextOverflow(HEError, ArithmeticError):
    """A declared plaintext bound would leave [-t/2, t/2): the result would wrap mod t."""


class KeyMismatchError(HEError, ValueError):
    """Operands belong to different keys or parameter sets."""


class ResourceLimitExceeded(HEError, MemoryError):
    """An object (key-switching matrix, tensor) would exceed the configured size limit."""
