"""``cipherfuse he ...`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import click

import cipherfuse._core as _core
from cipherfuse.he.params import PAPER, SECURE, get_params


@click.group("he")
def he_group() -> None:
    """Integer-vector homomorphic encryption (Zhou–Wornell) tools."""


@he_group.command("selftest")
@click.option(
    "--params",
    "names",
    multiple=True,
    type=click.Choice(["paper", "secure"]),
    help="Parameter sets to test (default: both).",
)
@click.option(
    "--m", default=32, show_default=True, type=click.IntRange(1, 4096), help="Plaintext length."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def selftest(names: tuple[str, ...], m: int, as_json: bool) -> None:
    """Run every HE operation with the C++ kernels and the numpy reference and compare."""
    from cipherfuse.he.selftest import run_selftest

    chosen = [get_params(n) for n in names] if names else [PAPER, SECURE]
    rows = run_selftest(chosen, m=m)
    ok = all(r.correct and r.bit_identical for r in rows)
    if as_json:
        click.echo(
            json.dumps(
                {"ok": ok, "isa": _core.best_isa(), "rows": [r.__dict__ for r in rows]}, indent=2
            )
        )
    else:
        click.echo(f"C++ kernels: isa={_core.best_isa()} threads={_core.default_threads()}")
        click.echo(
            f"{'params':8} {'operation':20} {'correct':8} {'bit-exact':9} "
            f"{'C++ ms':>9} {'numpy ms':>9}"
        )
        for r in rows:
            click.echo(
                f"{r.params:8} {r.operation:20} {r.correct!s:8} "
                f"{r.bit_identical!s:9} {1e3 * r.cpp_seconds:9.2f} "
                f"{1e3 * r.reference_seconds:9.2f}"
            )
        click.echo("selftest: OK" if ok else "selftest: FAILED")
    if not ok:
        raise click.exceptions.Exit(1)


@he_group.command("params")
@click.argument("name", type=click.Choice(["paper", "secure"]))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_params(name: str, as_json: bool) -> None:
    """Show a named parameter set and its security status."""
    p = get_params(name)
    shown = {
        **p.to_dict(),
        "w_log2": 64 - p.plaintext_bits,
        "fresh_noise_bound": int(p.fresh_noise_bound()),
    }
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    for key, value in p.to_dict().items():
        click.echo(f"{key:15} {value}")
    click.echo(f"{'w':15} 2^{shown['w_log2']}")
    click.echo(f"{'fresh noise':15} <= {shown['fresh_noise_bound']}")
    if p.insecure:
        click.echo("WARNING: this parameter set is INSECURE (reproduction only).")


@he_group.command("inspect")
@click.argument("path", type=click.Path(path_type=Path))
def inspect(path: Path) -> None:
    """Validate a serialized key or ciphertext and print what it is."""
    from cipherfuse.he.serialize import load

    obj = load(path)
    click.echo(f"{path}: {type(obj).__name__} (valid, checksum OK)")
    if obj is SECURE or obj is PAPER:
        return
    for name in ("key_id", "m", "noise_bound", "value_bound", "source", "target_id"):
        if hasattr(obj, name):
            click.echo(f"  {name}: {getattr(obj, name)}")
