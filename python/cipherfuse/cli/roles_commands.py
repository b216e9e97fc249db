"""``cipherfuse demo | node | initiator | contributor | verifier | testbed``: the paradigm."""

from __future__ import annotations

import dataclasses
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


@click.command("node")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="0 picks a free port.")
@click.option("--accounts", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.pass_context
def node_command(ctx: click.Context, port: int, accounts: int) -> None:
    """Start anvil on 127.0.0.1 for a local testbed (same as `cipherfuse chain node`)."""
    from cipherfuse.cli.chain_commands import node_command as chain_node

    ctx.invoke(chain_node, port=port, accounts=accounts)


def _role_options(fn: Any) -> Any:
    options = [
        click.option(
            "--config",
            "config_path",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            default=None,
            help="TOML file with any of these settings (flags override it).",
        ),
        click.option("--rpc-url", default=None, help="JSON-RPC URL of the node (http://...)."),
        click.option("--contract", default=None, help="CipherfuseTasks address."),
        click.option(
            "--account",
            type=int,
            default=None,
            help="Role number for file names; without --keystore also the development key "
            "index (anvil only).",
        ),
        click.option(
            "--keystore",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="V3 keystore of the account this role signs with.",
        ),
        click.option(
            "--password-file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="File whose first line is the keystore password.",
        ),
        click.option(
            "--password-env", default=None, metavar="NAME", help="Variable holding the password."
        ),
        click.option("--chain-id", type=click.IntRange(1), default=None, help="Expected chain id."),
        click.option(
            "--confirmations",
            type=click.IntRange(0, 1000),
            default=None,
            help="Blocks on top of a transaction before it counts.",
        ),
        click.option(
            "--workdir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Shared folder: store/, mailbox/, state/, status/.",
        ),
        click.option("--seed", type=int, default=None, help="Data split seed (same everywhere)."),
        click.option("--max-epochs", type=click.IntRange(1, 100), default=None),
        click.option(
            "--mnist-dir",
            type=click.Path(file_okay=False, exists=True, path_type=Path),
            default=None,
        ),
        click.option("--full", is_flag=True, help="Full-size data (default: the --quick sizes)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _run(role: str, config_path: Path | None, **flags: Any) -> None:
    from cipherfuse.roles.errors import RoleConfigError
    from cipherfuse.roles.process import (
        ROLE_NETWORK_KEYS,
        RoleConfig,
        load_role_config,
        network_from,
        run_role,
    )

    full = flags.pop("full", False)
    flags["quick"] = None if not full else False
    if config_path is not None:
        cfg = load_role_config(config_path, role=role, **flags)
    else:
        network_values = {k: flags.pop(k) for k in list(flags) if k in ROLE_NETWORK_KEYS}
        if network_values.get("keystore") is not None and flags.get("account") is None:
            flags["account"] = 0  # only names the role's status file
        missing = [k for k in ("rpc_url", "contract", "account", "workdir") if flags.get(k) is None]
        if missing:
            names = ", ".join("--" + m.replace("_", "-") for m in missing)
            raise RoleConfigError(f"{role}: give {names} (or --config FILE)")
        cfg = RoleConfig(role=role, **{k: v for k, v in flags.items() if v is not None})
        network = network_from(cfg.rpc_url, cfg.contract, network_values)
        if network is not None:
            cfg = dataclasses.replace(cfg, network=network)
    cfg.validate()
    run_role(cfg, click.echo)


@click.command("initiator")
@_role_options
def initiator_command(config_path: Path | None, **flags: Any) -> None:
    """Run the application initiator until its task is finished (publishes a task)."""
    _run("initiator", config_path, **flags)


@click.command("contributor")
@_role_options
@click.option("--task-id", type=int, default=None, help="The task to join.")
@click.option("--index", type=click.IntRange(1, 3), default=None, help="Case I label subset.")
@click.option(
    "--behaviour",
    type=click.Choice(["honest", "lazy", "dishonest", "never-release"]),
    default=None,
)
def contributor_command(config_path: Path | None, **flags: Any) -> None:
    """Run a computing contributor until its claim is settled and paid."""
    _run("contributor", config_path, **flags)


@click.command("verifier")
@_role_options
@click.option("--task-id", type=int, default=None, help="The task to verify for.")
@click.option("--vote-probability", type=click.FloatRange(0.0, 1.0), default=None)
def verifier_command(config_path: Path | None, **flags: Any) -> None:
    """Run a verification contributor until the task expires and its deposit is back."""
    _run("verifier", config_path, **flags)


@click.command("testbed")
@click.option(
    "--behaviour",
    "behaviours",
    multiple=True,
    type=click.Choice(["honest", "lazy", "dishonest", "never-release"]),
    help="Behaviour of contributors 1, 2, 3 (repeat three times; default honest).",
)
@click.option("--max-epochs", type=click.IntRange(1, 100), default=None)
@click.option(
    "--mnist-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None
)
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option(
    "--kill-after-claim",
    type=click.IntRange(1, 3),
    default=None,
    help="Fault drill: SIGKILL contributor N once it has claimed, then restart it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def testbed_command(
    behaviours: tuple[str, ...],
    max_epochs: int | None,
    mnist_dir: Path | None,
    workdir: Path | None,
    kill_after_claim: int | None,
    as_json: bool,
) -> None:
    """The paper's 1 + 3 + 3 testbed: anvil and 7 role processes; prints the outcome."""
    from cipherfuse.roles.errors import RoleConfigError
    from cipherfuse.roles.process import run_testbed

    if behaviours and len(behaviours) != 3:
        raise RoleConfigError("give --behaviour three times (one per contributor)")
    chosen = (behaviours[0], behaviours[1], behaviours[2]) if behaviours else ("honest",) * 3
    log = (lambda _m: None) if as_json else click.echo
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="cipherfuse-testbed-") as tmp:
            outcome = run_testbed(
                Path(tmp),
                behaviours=chosen,
                max_epochs=max_epochs,
                mnist_dir=mnist_dir,
                kill_after_claim=kill_after_claim,
                log=log,
            )
    else:
        outcome = run_testbed(
            workdir,
            behaviours=chosen,
            max_epochs=max_epochs,
            mnist_dir=mnist_dir,
            kill_after_claim=kill_after_claim,
            log=log,
        )
    click.echo(json.dumps(outcome, indent=1))
