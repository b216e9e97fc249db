"""``cipherfuse chain ...`` commands: compile/check the contract, run a local node, inspect."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from types import FrameType

import click

# The chain modules pull in web3; they are imported inside the commands so that other
# `cipherfuse` commands start fast.


@click.group("chain")
def chain_group() -> None:
    """The Ethereum layer: the CipherfuseTasks contract and a local node."""


@chain_group.command("compile")
@click.option(
    "--contracts-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("contracts"),
    show_default=True,
    help="Folder with the Solidity sources and the npm-pinned solc (run `npm ci` there).",
)
@click.option(
    "--artifact-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the JSON artifacts live (default: python/cipherfuse/chain/artifacts).",
)
@click.option("--check", is_flag=True, help="Do not write; fail if the artifacts are stale.")
def compile_command(contracts_dir: Path, artifact_dir: Path | None, check: bool) -> None:
    """Recompile the contracts with the pinned solcjs (evmVersion pinned)."""
    from cipherfuse.chain.compiler import EVM_VERSION, compile_contracts
    from cipherfuse.chain.errors import ArtifactError

    result = compile_contracts(contracts_dir, artifact_dir, check=check)
    if check and result.differing:
        raise ArtifactError(
            f"committed artifacts differ from solcjs {result.compiler}: "
            f"{', '.join(result.differing)}; run `cipherfuse chain compile` and commit"
        )
    verb = "up to date" if not result.differing else "rewritten: " + ", ".join(result.differing)
    click.echo(f"solcjs {result.compiler}, evmVersion {EVM_VERSION}: artifacts {verb}")


@chain_group.command("info")
def info_command() -> None:
    """Show the packaged contract artifacts (compiler, EVM version, sizes)."""
    from cipherfuse.chain.artifacts import CONTRACT_NAMES, load_artifact

    for name in CONTRACT_NAMES:
        art = load_artifact(name)
        runtime = (len(art.deployed_bytecode) - 2) // 2
        click.echo(
            json.dumps(
                {
                    "contract": name,
                    "compiler": art.compiler,
                    "evmVersion": art.evm_version,
                    "runtimeBytes": runtime,
                    "sourceSha256": art.source_sha256,
                }
            )
        )


@chain_group.command("node")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="0 picks a free port.")
@click.option(
    "--accounts",
    type=click.IntRange(0, 1000),
    default=10,
    show_default=True,
    help="Development keys to fund (anvil itself holds no accounts).",
)
def node_command(port: int, accounts: int) -> None:
    """Run anvil on 127.0.0.1 (hardfork pinned) until Ctrl-C or SIGTERM.

    anvil runs without accounts of its own; the first ``--accounts`` cipherfuse
    development keys (publicly known: local use only) are funded with 10 000 ETH each.
    """
    from cipherfuse.chain.anvil import AnvilNode
    from cipherfuse.chain.compiler import EVM_VERSION

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with AnvilNode(port=port, accounts=accounts) as node:
            click.echo(f"anvil pid {node.pid} listening on {node.url} (hardfork {EVM_VERSION})")
            click.echo(f"websocket: {node.ws_url}")
            while not stop.wait(0.5):
                pass
            click.echo("stopping anvil")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@chain_group.command("gas-report")
@click.option(
    "--backend",
    type=click.Choice(["embedded", "anvil"]),
    default="embedded",
    show_default=True,
    help="embedded py-evm, or a fresh anvil started for the run.",
)
@click.option("--verifiers", type=click.IntRange(3, 100), default=3, show_default=True)
@click.option("--contributors", type=click.IntRange(1, 100), default=3, show_default=True)
def gas_report_command(backend: str, verifiers: int, contributors: int) -> None:
    """Run the reference task life cycle and print gas per contract function."""
    from cipherfuse.chain.anvil import AnvilNode
    from cipherfuse.chain.backends import embedded_chain, http_chain
    from cipherfuse.chain.gasreport import run_reference_lifecycle

    accounts = 1 + verifiers + contributors
    if backend == "embedded":
        report = run_reference_lifecycle(
            embedded_chain(accounts), verifiers=verifiers, contributors=contributors
        )
    else:
        with AnvilNode(accounts=accounts) as node:
            report = run_reference_lifecycle(
                http_chain(node.url, kind="anvil", dev_accounts=accounts),
                verifiers=verifiers,
                contributors=contributors,
            )
    click.echo(report.table())
    over = report.over_target()
    if over:
        click.echo(f"over the 1.5x targets: {over}")
