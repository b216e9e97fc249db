"""``cipherfuse demo | node | initiator | contributor | verifier | testbed``: the paradigm."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import click

# The role modules pull in JAX and web3; they are imported inside the commands.


def _summary(report: dict[str, Any]) -> str:
    lines = [
        "",
        f"{'contributor':<12} {'labels':<17} {'behaviour':<14} {'claim':>5} "
        f"{'votes a/r':>9} {'outcome':<10} {'epochs':>6} {'local acc':>9}",
    ]
    for c in report["claims"]:
        labels = ",".join(str(v) for v in c.get("labels", [])) or "-"
        acc = c.get("local_accuracy")
        lines.append(
            f"{c['contributor']:<12} {labels:<17} {c['behaviour']:<14} "
            f"{c.get('claim_id', '-')!s:>5} "
            f"{str(c.get('accept_votes', '-')) + '/' + str(c.get('reject_votes', '-')):>9} "
            f"{c.get('outcome', c['participant_state']):<10} {c.get('epochs', '-')!s:>6} "
            f"{(f'{acc:.3f}' if isinstance(acc, float) and acc == acc else '-'):>9}"
        )
    lines.append("")
    lines.append(f"{'party':<14} {'withdrawn ETH':>14} {'balance change ETH (incl. gas)':>31}")
    for name, b in report["balances"].items():
        lines.append(
            f"{name:<14} {b['withdrawn_wei'] / 1e18:>14.4f} {b['balance_change_wei'] / 1e18:>31.4f}"
        )
    lines.append("")
    for step in report["metamodel_accuracy"]:
        acc = step["accuracy"]
        shown = f"{acc:.3f}" if isinstance(acc, float) else "n/a"
        lines.append(f"after claim {step['claim_id']}: MetaModel test accuracy {shown}")
    final = report["final_accuracy"]
    lines.append(
        "MetaModel accuracy: "
        + (f"{final:.3f}" if isinstance(final, float) else "no model was accepted")
        + f" ({report['accepted_models']} model(s)); contract balance "
        f"{report['contract_balance_wei']} wei; {report['seconds']} s"
    )
    return "\n".join(lines)


@click.command("demo")
@click.option("--quick", is_flag=True, help="Small data and few epochs (CI-sized).")
@click.option(
    "--params",
    "he_params",
    type=click.Choice(["paper", "secure"]),
    default="paper",
    show_default=True,
    help="HE parameter set. paper is the paper's protocol and INSECURE (k = 1: the secret "
    "key falls to least squares, tests/he/test_security.py).",
)
@click.option(
    "--behaviour",
    "behaviours",
    multiple=True,
    type=click.Choice(["honest", "lazy", "dishonest", "never-release"]),
    help="Case II: behaviour of contributors 1, 2, 3 in order (repeat; default honest).",
)
@click.option(
    "--vote-probability",
    type=click.FloatRange(0.0, 1.0),
    default=1.0,
    show_default=True,
    help="Case II unreliable verifiers: chance that a vote follows the judgement (else random).",
)
@click.option("--max-epochs", type=click.IntRange(1, 100), default=None, help="Epoch cap.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--mnist-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="MNIST IDX folder (default: $CIPHERFUSE_MNIST_DIR, then ../shared/data/mnist, then "
    "scikit-learn's digits).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where store, mailbox and state go (default: a temporary folder).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("cipherfuse-demo-report.json"),
    show_default=True,
    help="JSON report file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of text.")
def demo_command(
    quick: bool,
    he_params: str,
    behaviours: tuple[str, ...],
    vote_probability: float,
    max_epochs: int | None,
    seed: int,
    mnist_dir: Path | None,
    workdir: Path | None,
    report_path: Path,
    as_json: bool,
) -> None:
    """The whole paradigm in one process: embedded chain and store, 1 initiator,
    3 contributors (Case I), 3 verifiers, MNIST."""
    from cipherfuse.roles.demo import DemoConfig, run_demo
    from cipherfuse.roles.errors import RoleConfigError
    from cipherfuse.roles.state import atomic_write_bytes

    if behaviours and len(behaviours) != 3:
        raise RoleConfigError(
            f"give --behaviour three times (one per contributor), not {len(behaviours)}"
        )
    overrides: dict[str, Any] = {"he_params": he_params, "seed": seed, "mnist_dir": mnist_dir}
    overrides["vote_probability"] = vote_probability
    if behaviours:
        overrides["behaviours"] = tuple(behaviours)
    if max_epochs is not None:
        overrides["max_epochs"] = max_epochs
    cfg = DemoConfig.quick(**overrides) if quick else DemoConfig(**overrides)
    cfg.validate()
    log = (lambda _m: None) if as_json else click.echo
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="cipherfuse-demo-") as tmp:
            report = run_demo(cfg, Path(tmp), log)
    else:
        report = run_demo(cfg, workdir, log)
    atomic_write_bytes(report_path, json.dumps(report, indent=1).encode(), mode=0o644)
    if as_json:
        click.echo(json.dumps(report, indent=1))
    else:
        click.echo(_summary(report))
        click.echo(f"report: {report_path}")
