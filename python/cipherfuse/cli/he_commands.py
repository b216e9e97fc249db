"""``cipherfuse he ...`` commands."""

from __future__ import annotations

import click


@click.group("he")
def he_group() -> None:
    """Integer-vector homomorphic encryption (Zhou–Wornell) tools."""
