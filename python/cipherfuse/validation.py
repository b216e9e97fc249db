"""Strict integer checks shared by every subpackage's argument and file validation.

A *strict* integer is an ``int`` that is not a ``bool`` (``True`` is an ``int``
in Python, and a flag where a count belongs is a mistake). Each call site
picks what else it accepts: numpy integers (``numpy=True``, returned as
``int``) or, the other way, nothing but ``int`` itself (``exact=True`` refuses
subclasses such as ``IntEnum`` members). Bounds are inclusive.

This module sits at the bottom of the import graph: it imports nothing from
cipherfuse, and numpy only when a check accepts numpy integers (the
:mod:`cipherfuse.analysis.netpeer` processes run without numpy).
"""

from __future__ import annotations

__all__ = ["describe_int", "is_strict_int", "strict_int"]


def is_strict_int(
    value: object,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    numpy: bool = False,
    exact: bool = False,
) -> bool:
    """Whether ``value`` is a strict integer in ``[minimum, maximum]``.

    Args:
        value: anything.
        minimum: the smallest allowed value (``None``: no lower bound).
        maximum: the largest allowed value (``None``: no upper bound).
        numpy: also accept numpy integer scalars (``np.int64(3)``...).
        exact: accept only ``type(value) is int`` (no ``int`` subclass).
    """
    n = _as_int(value, numpy=numpy, exact=exact)
    return n is not None and _within(n, minimum, maximum)


def describe_int(minimum: int | None = None, maximum: int | None = None) -> str:
    """The words for a strict integer within the bounds, e.g. ``an integer in [1, 16]``."""
    if maximum is None:
        if minimum is None:
            return "an integer"
        if minimum in (0, 1):
            return "a non-negative integer" if minimum == 0 else "a positive integer"
        return f"an integer >= {_bound(minimum)}"
    if minimum is None:
        return f"an integer <= {_bound(maximum)}"
    return f"an integer in [{_bound(minimum)}, {_bound(maximum)}]"


def strict_int(
    value: object,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    numpy: bool = False,
    exact: bool = False,
    error: type[Exception] = ValueError,
) -> int:
    """``value`` as an ``int`` when it passes :func:`is_strict_int`, else raise ``error``.

    The message reads ``"<name> must be <describe_int(...)>, got <repr>"``.

    Args:
        value: the value to check.
        name: what the value is, as the message should name it.
        minimum: the smallest allowed value (inclusive; ``None``: unbounded).
        maximum: the largest allowed value (inclusive; ``None``: unbounded).
        numpy: also accept numpy integer scalars (returned as ``int``; an
            ``int`` is returned as it is).
        exact: accept only ``type(value) is int``.
        error: the exception class to raise, called with the message.

    Raises:
        error: ``value`` is a bool, not an integer, or out of bounds.
    """
    n = _as_int(value, numpy=numpy, exact=exact)
    if n is None or not _within(n, minimum, maximum):
        raise error(f"{name} must be {describe_int(minimum, maximum)}, got {value!r:.80}")
    return n


def _as_int(value: object, *, numpy: bool, exact: bool) -> int | None:
    """``value`` as an ``int`` when it is a strict integer of the accepted kinds, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and (not exact or type(value) is int):
        return value
    if numpy:
        import numpy as np  # here: only the callers accepting numpy integers need numpy

        if isinstance(value, np.integer):
            return int(value)
    return None


def _within(n: int, minimum: int | None, maximum: int | None) -> bool:
    return (minimum is None or n >= minimum) and (maximum is None or n <= maximum)


def _bound(n: int) -> str:
    """``n`` in decimal, or as ``2**k`` or ``2**k - 1`` (``k >= 16``) when it is one of those."""
    if n >= 1 << 16 and n & (n - 1) == 0:
        return f"2**{n.bit_length() - 1}"
    if n >= (1 << 16) - 1 and n & (n + 1) == 0:
        return f"2**{n.bit_length()} - 1"
    return str(n)
