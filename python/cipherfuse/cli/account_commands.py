"""``cipherfuse account new`` and ``cipherfuse deploy``: keys and the contract on a network."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

# The chain modules pull in web3; they are imported inside the commands so that other
# `cipherfuse` commands start fast.


def _password_options(fn: Any) -> Any:
    options = [
        click.option(
            "--password-file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="File whose first line is the keystore password.",
        ),
        click.option(
            "--password-env",
            default=None,
            metavar="NAME",
            help="Environment variable holding the keystore password.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.group("account")
def account_group() -> None:
    """Local signing accounts (encrypted V3 JSON keystores)."""


@account_group.command("new")
@click.option(
    "--keystore",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("keystore.json"),
    show_default=True,
    help="Where to write the keystore (refuses to overwrite; mode 0600).",
)
@_password_options
@click.option(
    "--light",
    is_flag=True,
    help="Cheap scrypt (n=4096, geth's --lightkdf): development keys only.",
)
def account_new_command(
    keystore: Path, password_file: Path | None, password_env: str | None, light: bool
) -> None:
    """Create a fresh key, encrypt it with a password, print its address."""
    from cipherfuse.chain.keystore import (
        LIGHT_SCRYPT_N,
        STANDARD_SCRYPT_N,
        PasswordSource,
        create_keystore,
    )

    source = PasswordSource(file=password_file, env=password_env)
    if password_file is None and password_env is None:
        password = click.prompt(
            "New keystore password", hide_input=True, confirmation_prompt=True, err=True
        )
    else:
        password = source.read()
    account = create_keystore(
        keystore, password, scrypt_n=LIGHT_SCRYPT_N if light else STANDARD_SCRYPT_N
    )
    click.echo(f"address {account.address}")
    click.echo(f"keystore {keystore} (keep it and its password; fund the address with ETH)")


@click.command("deploy")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Network TOML (rpc_url, chain_id, keystore...); flags override it.",
)
@click.option("--rpc", "rpc_url", default=None, help="JSON-RPC URL of the node.")
@click.option(
    "--keystore",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Keystore of the deploying account.",
)
@_password_options
@click.option(
    "--chain-id",
    type=click.IntRange(1),
    default=None,
    help="Expected chain id (default: the node's, printed).",
)
@click.option("--confirmations", type=click.IntRange(0, 1000), default=None)
@click.option("--max-fee-gwei", type=click.FloatRange(0, min_open=True), default=None)
@click.option(
    "--write-config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the network TOML, with the new contract address, to this file.",
)
def deploy_command(
    config_path: Path | None,
    rpc_url: str | None,
    keystore: Path | None,
    password_file: Path | None,
    password_env: str | None,
    chain_id: int | None,
    confirmations: int | None,
    max_fee_gwei: float | None,
    write_config: Path | None,
) -> None:
    """Deploy the packaged CipherfuseTasks from a keystore account; print its address."""
    from cipherfuse.chain.backends import http_chain, websocket_chain
    from cipherfuse.chain.netconfig import (
        NetworkConfig,
        NetworkConfigError,
        load_network_config,
        render_network_config,
    )
    from cipherfuse.chain.tasks import TasksContract
    from cipherfuse.files import atomic_write_bytes

    flags: dict[str, Any] = {
        "rpc_url": rpc_url,
        "keystore": keystore,
        "password_file": password_file,
        "password_env": password_env,
        "chain_id": chain_id,
        "confirmations": confirmations,
        "max_fee_gwei": max_fee_gwei,
    }
    given = {k: v for k, v in flags.items() if v is not None}
    if config_path is not None:
        base = load_network_config(config_path)
        if "password_file" in given or "password_env" in given:
            base = dataclasses.replace(base, password_file=None, password_env=None)
        config = dataclasses.replace(base, **given)
    else:
        if rpc_url is None or keystore is None:
            raise NetworkConfigError("deploy: give --rpc and --keystore (or --config FILE)")
        if chain_id is None:
            probe = websocket_chain(rpc_url) if rpc_url.startswith("ws") else http_chain(rpc_url)
            given["chain_id"] = probe.chain_id
            click.echo(f"the node serves chain id {probe.chain_id}", err=True)
        if confirmations is None:
            given["confirmations"] = 2
        config = NetworkConfig(**given)
    chain, signer = config.open(log=lambda line: click.echo(line, err=True))
    click.echo(
        f"deploying from {signer.address} ({signer.balance()} wei) on chain {chain.chain_id}",
        err=True,
    )
    tasks, receipt = TasksContract.deploy(chain, signer.address)
    click.echo(tasks.address)
    click.echo(
        f"block {receipt.block_number}, gas {receipt.gas_used}, tx 0x{receipt.tx_hash.hex()}",
        err=True,
    )
    if write_config is not None:
        text = render_network_config(dataclasses.replace(config, contract=tasks.address))
        atomic_write_bytes(write_config, text.encode(), mode=0o644)
        click.echo(f"wrote {write_config}", err=True)
