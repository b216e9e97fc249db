"""``cipherfuse store ...`` commands: IPFS-compatible content addressing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from cipherfuse.files import atomic_writer
from cipherfuse.storage import LocalStore, compute_cid

_STORE_HELP = "Store directory (default: $CIPHERFUSE_STORE or ~/.cipherfuse/store)."


def _store_dir(store: str | None) -> Path:
    if store:
        return Path(store)
    env = os.environ.get("CIPHERFUSE_STORE")
    return Path(env) if env else Path.home() / ".cipherfuse" / "store"


@click.group("store")
def storage_group() -> None:
    """Content-addressed storage with the same CIDs as Kubo's `ipfs add`."""


@storage_group.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--only-hash", "-n", is_flag=True, help="Print the CID without storing anything.")
@click.option(
    "--cid-version",
    type=click.IntRange(0, 1),
    default=0,
    show_default=True,
    help="0: Qm... (Kubo default); 1: raw leaves, base32 (like --cid-version=1).",
)
@click.option("--store", "store_dir", type=click.Path(file_okay=False), help=_STORE_HELP)
def add_command(file: Path, only_hash: bool, cid_version: int, store_dir: str | None) -> None:
    """Add FILE and print its CID (identical to `ipfs add -Q`)."""
    if only_hash:
        click.echo(compute_cid(file, cid_version))
        return
    store = LocalStore(_store_dir(store_dir), cid_version=cid_version)
    click.echo(store.put(file))


@storage_group.command("get")
@click.argument("cid")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (an existing file only with --force).",
)
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
@click.option("--store", "store_dir", type=click.Path(file_okay=False), help=_STORE_HELP)
def get_command(cid: str, output: Path | None, force: bool, store_dir: str | None) -> None:
    """Write the verified content of CID to stdout or --output (all or nothing)."""
    if output is not None and output.exists() and not force:
        raise click.UsageError(f"{output} exists; add --force to replace it")
    if output is not None and not output.resolve().parent.is_dir():
        raise click.UsageError(f"folder {output.resolve().parent} does not exist")
    store = LocalStore(_store_dir(store_dir))
    if output is None:
        data = store.get(cid)  # verified completely before anything is printed
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    # Private (0600); the file is fsynced, not the folder, which was checked to exist. An
    # integrity error mid-stream leaves no file behind.
    with atomic_writer(output, mode=0o600, sync_folder=False, parents=False) as fh:
        store.get_to_file(cid, fh)
