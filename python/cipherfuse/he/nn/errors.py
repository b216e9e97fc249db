"""Errors of :mod:`cipherfuse.he.nn` (the HE errors of :mod:`cipherfuse.he` apply too)."""

from __future__ import annotations

from cipherfuse.he.errors import HEError


class CipherspaceError(HEError, ValueError):
    """An encrypted-layer operation cannot give a correct result for these inputs/parameters."""
