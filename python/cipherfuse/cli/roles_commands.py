"""``cipherfuse demo | node | initiator | contributor | verifier | testbed``: the paradigm."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click

from cipherfuse.cli.options import (
    BEHAVIOURS,
    REQUIRED_UNLESS_CONFIG,
    max_epochs_option,
    mnist_dir_option,
    role_options,
    task_id_option,
)
from cipherfuse.cli.params import SEED

# The role modules pull in JAX and web3; they are imported inside the commands.


def check_writable(path: Path, what: str) -> None:
    """Refuse, before any work, an output file that cannot be written (one-line error)."""
    from cipherfuse.roles.errors import RoleConfigError

    if path.is_dir():
        raise RoleConfigError(f"{what} {path} is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise RoleConfigError(f"{what} {path}: folder {parent} does not exist")
    if path.exists() and not os.access(path, os.W_OK):
        raise RoleConfigError(f"{what} {path} is not writable")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}.", delete=True):
            pass
    except OSError as exc:
        raise RoleConfigError(
            f"{what} {path}: cannot write in {parent} ({exc.strerror}); choose another path"
        ) from exc


def save_report(report_path: Path, report: dict[str, Any]) -> int:
    """Write the report (mode 0644); on failure keep it in a temporary file and say where."""
    from cipherfuse.files import atomic_write_bytes

    body = json.dumps(report, indent=1).encode()
    try:
        atomic_write_bytes(report_path, body, mode=0o644)
    except OSError as exc:
        fd, rescue = tempfile.mkstemp(prefix="cipherfuse-demo-report-", suffix=".json")
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        os.chmod(rescue, 0o644)
        click.echo(
            f"error: cannot write the report to {report_path} ({exc.strerror}); "
            f"it was saved to {rescue} instead",
            err=True,
        )
        return 1
    return 0


@click.command("demo")
@click.option(
    "--quick",
    is_flag=True,
    help="A smaller, faster run (300 training images per contributor, 2 epochs).",
)
@click.option(
    "--params",
    "he_params",
    type=click.Choice(["secure", "paper"]),
    default="secure",
    show_default=True,
    help="secure: the committee judges each model in honest-majority three-party "
    "computation and no member can read it (docs/mpc.md). paper: the paper's IVHE "
    "interface, for reproduction only: INSECURE (k = 1: the secret key falls to least "
    "squares) and every committee member can read the models it judges.",
)
@click.option(
    "--behaviour",
    "behaviours",
    multiple=True,
    type=BEHAVIOURS,
    help="Case II: behaviour of contributors 1, 2, 3 in order (give it three times; "
    "default honest).",
)
@click.option(
    "--vote-probability",
    type=click.FloatRange(0.0, 1.0),
    default=1.0,
    show_default=True,
    help="Case II unreliable verifiers: chance that a vote follows the judgement (else random).",
)
@max_epochs_option(help="Cap on each contributor's epochs (default 10, --quick 2).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Data and training seed.")
@mnist_dir_option(must_exist=True)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where store and state go (default: a temporary folder, removed "
    "afterwards). A folder of an earlier run is refused unless --fresh.",
)
@click.option(
    "--fresh", is_flag=True, help="Clear an earlier run's state in --workdir and start anew."
)
@click.option(
    "--report",
    "--json-out",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("cipherfuse-demo-report.json"),
    show_default=True,
    help="JSON report file (no keys or salts in it).",
)
@click.option(
    "--metamodel-out",
    "metamodel_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("cipherfuse-demo-metamodel.bin"),
    show_default=True,
    help="File for the fused MetaModel (cipherfuse.fusion.serialize.load_metamodel reads it).",
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
    fresh: bool,
    report_path: Path,
    metamodel_path: Path,
    as_json: bool,
) -> None:
    """Run the whole paradigm in one process (a reduced Case I run).

    An embedded chain and store, 1 initiator, 3 computing contributors on the paper's
    Case I label subsets, 3 verifiers, MNIST's test set (shipped; no network needed).
    Prints each step, a summary table and the MetaModel's accuracy, and writes the JSON
    report and the fused MetaModel.
    """
    from cipherfuse.roles.demo import DemoConfig, run_demo
    from cipherfuse.roles.demo_summary import format_summary
    from cipherfuse.roles.errors import RoleConfigError
    from cipherfuse.shutdown import on_hard_exit

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
    check_writable(report_path, "--report")
    check_writable(metamodel_path, "--metamodel-out")
    if fresh and workdir is None:
        raise RoleConfigError("--fresh needs --workdir (the default folder is always new)")
    log = (lambda _m: None) if as_json else click.echo
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix="cipherfuse-demo-")
        try:
            with on_hard_exit(lambda: shutil.rmtree(tmp, ignore_errors=True)):
                report = run_demo(cfg, Path(tmp), log, metamodel_path=metamodel_path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        report = run_demo(cfg, workdir, log, fresh=fresh, metamodel_path=metamodel_path)
    if as_json:
        click.echo(json.dumps(report, indent=1))
    else:
        click.echo(format_summary(report))
    code = save_report(report_path, report)
    if code == 0 and not as_json:
        click.echo(f"report: {report_path}")
    if code:
        raise SystemExit(code)


def _run(role: str, config_path: Path | None, **flags: Any) -> None:
    from cipherfuse.roles.config import (
        ROLE_NETWORK_KEYS,
        RoleConfig,
        load_role_config,
        network_from,
    )
    from cipherfuse.roles.errors import RoleConfigError
    from cipherfuse.roles.process import run_role

    full = flags.pop("full", False)
    flags["quick"] = None if not full else False
    flags["ipfs_bootstrap"] = tuple(flags.get("ipfs_bootstrap") or ()) or None
    if config_path is not None:
        cfg = load_role_config(config_path, role=role, **flags)
    else:
        network_values = {k: flags.pop(k) for k in list(flags) if k in ROLE_NETWORK_KEYS}
        if network_values.get("keystore") is not None and flags.get("account") is None:
            flags["account"] = 0  # only names the role's status file
        needed = ["rpc_url", "contract", "account", "workdir"]
        needed += [] if role == "initiator" else ["task_id"]
        missing = [k for k in needed if flags.get(k) is None]
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
@role_options
def initiator_command(config_path: Path | None, **flags: Any) -> None:
    """Run the application initiator until its task is finished (publishes a task)."""
    _run("initiator", config_path, **flags)


@click.command("contributor")
@role_options
@task_id_option(help=f"The task to join (>= 1). {REQUIRED_UNLESS_CONFIG}")
@click.option(
    "--index", type=click.IntRange(1, 3), default=None, help="Case I label subset (1-3) [1]."
)
@click.option("--behaviour", type=BEHAVIOURS, default=None, help="Case II behaviour [honest].")
def contributor_command(config_path: Path | None, **flags: Any) -> None:
    """Run a computing contributor until its claim is settled and paid."""
    _run("contributor", config_path, **flags)


@click.command("verifier")
@role_options
@task_id_option(help=f"The task to verify for (>= 1). {REQUIRED_UNLESS_CONFIG}")
@click.option(
    "--vote-probability",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Chance that a vote follows the judgement (else random) [1.0].",
)
def verifier_command(config_path: Path | None, **flags: Any) -> None:
    """Run a verification contributor until the task expires and its deposit is back."""
    _run("verifier", config_path, **flags)


@click.command("testbed")
@click.option(
    "--behaviour",
    "behaviours",
    multiple=True,
    type=BEHAVIOURS,
    help="Behaviour of contributors 1, 2, 3 (repeat three times; default honest).",
)
@max_epochs_option(help="Cap on contributors' epochs.")
@mnist_dir_option(must_exist=True)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Testbed folder (default: a temporary folder): swarm.key and roles/<role>-N/, "
    "each role's own folder (keys, state, IPFS node, logs/ with its output).",
)
@click.option(
    "--kill-after-claim",
    type=click.IntRange(1, 3),
    default=None,
    help="Fault drill: SIGKILL contributor N once it has claimed, then restart it.",
)
@click.option(
    "--isolation",
    type=click.Choice(["auto", "netns", "loopback"]),
    default="auto",
    show_default=True,
    help="netns: each role in its own network namespace (root, iproute2); loopback: all "
    "on this host's loopback; auto: netns where possible, else loopback with a warning.",
)
@click.option(
    "--separate-users/--same-user",
    "separate_users",
    default=None,
    help="Run each role as its own user id, its folder mode 0700 (default: where root "
    "allows it, else a warning).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON instead of text.")
def testbed_command(
    behaviours: tuple[str, ...],
    max_epochs: int | None,
    mnist_dir: Path | None,
    workdir: Path | None,
    kill_after_claim: int | None,
    isolation: str,
    separate_users: bool | None,
    as_json: bool,
) -> None:
    """The paper's 1 + 3 + 3 testbed: anvil and 7 role processes.

    Each role runs in its own folder with its own IPFS node; as root, also in its own
    network namespace and as its own user. Prints each claim's outcome, the withdrawals
    and the initiator's MetaModel accuracy. Needs anvil (see `cipherfuse chain node`).
    """
    from cipherfuse.roles.errors import RoleConfigError
    from cipherfuse.roles.testbed import run_testbed

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
                isolation=isolation,
                separate_users=separate_users,
                log=log,
            )
    else:
        outcome = run_testbed(
            workdir,
            behaviours=chosen,
            max_epochs=max_epochs,
            mnist_dir=mnist_dir,
            kill_after_claim=kill_after_claim,
            isolation=isolation,
            separate_users=separate_users,
            log=log,
        )
    if as_json:
        click.echo(json.dumps(outcome, indent=1))
        return
    for c in outcome["claims"]:
        votes = f"{c.get('accept', '-')}/{c.get('reject', '-')}"
        click.echo(
            f"contributor {c['contributor']}: {c.get('outcome', c['state'])} "
            f"(claim {c.get('claim_id', '-')}, votes a/r {votes})"
        )
    for name, wei in outcome["withdrawn_wei"].items():
        click.echo(f"{name:<14} withdrew {wei / 1e18:.4f} ETH")
    steps = outcome["metamodel_accuracy"]
    for step in steps:
        acc = step["accuracy"]
        shown = f"{acc:.3f}" if isinstance(acc, float) else "n/a"
        click.echo(f"after claim {step['claim_id']}: MetaModel test accuracy {shown}")
    final = steps[-1]["accuracy"] if steps else None
    click.echo(
        "MetaModel accuracy: "
        + (f"{final:.3f}" if isinstance(final, float) else "no model was accepted")
        + f" ({len(steps)} model(s) fused); contract balance {outcome['contract_balance_wei']} wei"
    )
