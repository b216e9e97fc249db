"""Click option groups shared by several commands.

:func:`experiment_options` declares ``--seed``, ``--quick``, ``--json`` and ``--out`` once
for every ``cipherfuse reproduce <experiment>`` command; each command keeps its own help
texts (what "quick" means differs per experiment). :data:`role_options` (chain and
account, storage and IPFS node, data) is the one declaration of the flags of the
``initiator``, ``contributor`` and ``verifier`` processes; :func:`mnist_dir_option`,
:func:`max_epochs_option` and :func:`task_id_option` the options several commands share.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from click.decorators import FC

from cipherfuse.cli.params import (
    ACCOUNT_INDEX,
    ADDRESS,
    HTTP_URL,
    MNIST_DIR_HELP,
    SEED,
    TASK_ID,
)


def experiment_options(
    *,
    quick_help: str,
    json_help: str,
    out_help: str,
    seed_help: str | None = None,
    out_file_okay: bool = False,
) -> Callable[[FC], FC]:
    """Add the options every experiment command takes, in the order shown by ``--help``:

    - ``--seed`` (:data:`~cipherfuse.cli.params.SEED`, default 0) -> parameter ``seed``;
    - ``--quick`` (flag) -> ``quick``: the experiment's short mode, same code paths;
    - ``--json`` (flag) -> ``as_json``: print the JSON result instead of a table;
    - ``--out DIR`` (default none) -> ``out``: also save ``<DIR>/<experiment>.json``
      (see :func:`cipherfuse.cli.experiment_output.emit`).

    ``out_file_okay`` keeps a command whose ``--out`` was declared as a plain path (shown
    as ``PATH`` rather than ``DIRECTORY``) as it was.
    """

    def decorate(fn: FC) -> FC:
        fn = click.option(
            "--out",
            type=click.Path(file_okay=out_file_okay, path_type=Path),
            default=None,
            help=out_help,
        )(fn)
        fn = click.option("--json", "as_json", is_flag=True, help=json_help)(fn)
        fn = click.option("--quick", is_flag=True, help=quick_help)(fn)
        fn = click.option("--seed", type=SEED, default=0, show_default=True, help=seed_help)(fn)
        return fn

    return decorate


def _stack(options: list[Callable[[FC], FC]]) -> Callable[[FC], FC]:
    """One decorator applying ``options`` so that ``--help`` lists them in this order."""

    def decorate(fn: FC) -> FC:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def mnist_dir_option(
    *, must_exist: bool = False, file_okay: bool = False, help: str = MNIST_DIR_HELP
) -> Callable[[FC], FC]:
    """``--mnist-dir DIR`` (default none) -> parameter ``mnist_dir`` (:class:`~pathlib.Path`).

    ``must_exist`` makes click refuse a missing folder before the command starts;
    ``file_okay`` keeps the commands whose option was declared as a plain path as they were.
    """
    return click.option(
        "--mnist-dir",
        type=click.Path(exists=must_exist, file_okay=file_okay, path_type=Path),
        default=None,
        help=help,
    )


def max_epochs_option(*, help: str, most: int = 100) -> Callable[[FC], FC]:
    """``--max-epochs N`` (1 to ``most``, default none) -> parameter ``max_epochs``."""
    return click.option("--max-epochs", type=click.IntRange(1, most), default=None, help=help)


#: What a computing contributor does in Case II (``--behaviour``).
BEHAVIOURS = click.Choice(["honest", "lazy", "dishonest", "never-release"])

#: Suffix of the role options that a ``--config`` file may give instead.
REQUIRED_UNLESS_CONFIG = "[required unless --config gives it]"


def task_id_option(*, help: str) -> Callable[[FC], FC]:
    """``--task-id N`` (>= 1, default none) -> parameter ``task_id``."""
    return click.option("--task-id", type=TASK_ID, default=None, help=help)


#: Where the role finds the chain and which account it signs with.
role_chain_options = _stack(
    [
        click.option(
            "--config",
            "config_path",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            default=None,
            help="TOML file with any of these settings (flags override it).",
        ),
        click.option(
            "--rpc-url",
            type=HTTP_URL,
            default=None,
            help=f"JSON-RPC URL of the node. {REQUIRED_UNLESS_CONFIG}",
        ),
        click.option(
            "--contract",
            type=ADDRESS,
            default=None,
            help=f"CipherfuseTasks address (0x + 40 hex digits). {REQUIRED_UNLESS_CONFIG}",
        ),
        click.option(
            "--account",
            type=ACCOUNT_INDEX,
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
    ]
)

#: The role's own folder and content store (local, or its own IPFS node).
role_storage_options = _stack(
    [
        click.option(
            "--workdir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="This role's own folder: state/, status/, its store/ or ipfs/ node "
            f"repository. {REQUIRED_UNLESS_CONFIG}",
        ),
        click.option(
            "--storage",
            type=click.Choice(["local", "ipfs", "kubo"]),
            default=None,
            help="Content store: local (WORKDIR/store, one machine), ipfs (own embedded "
            "Kubo node in WORKDIR/ipfs) or kubo (own Kubo daemon at --kubo-api) [local].",
        ),
        click.option(
            "--kubo-api",
            default=None,
            metavar="URL",
            help="HTTP RPC API of this role's own Kubo daemon (kubo storage), e.g. "
            "http://127.0.0.1:5001.",
        ),
        click.option(
            "--ipfs-swarm-key",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            default=None,
            help="swarm.key of the task's private IPFS network (ipfs storage).",
        ),
        click.option(
            "--ipfs-bootstrap",
            multiple=True,
            metavar="MULTIADDR",
            help="Peer to connect to, /ip4/A.B.C.D/tcp/PORT/p2p/PEERID (repeatable).",
        ),
        click.option(
            "--ipfs-port",
            type=click.IntRange(0, 65535),
            default=None,
            help="TCP port of this role's IPFS node on --listen-host (0: any free port) [0].",
        ),
        click.option(
            "--listen-host",
            default=None,
            metavar="IPV4",
            help="Address this role's IPFS node and committee endpoint listen on and "
            "announce [127.0.0.1].",
        ),
        click.option(
            "--ipfs-peer-network",
            default=None,
            metavar="CIDR",
            help="Peers the IPFS node may talk to besides loopback [the /24 around "
            "--listen-host; loopback only for 127.0.0.1].",
        ),
        click.option(
            "--fetch-timeout",
            type=click.FloatRange(min=0.0, min_open=True),
            default=None,
            help="Seconds a fetch waits for a provider before it fails [60].",
        ),
        click.option(
            "--ipfs-linger-seconds",
            type=click.FloatRange(min=0.0),
            default=None,
            help="Once done, keep serving this role's content this long [0].",
        ),
    ]
)

#: The data and training settings every role process shares.
role_data_options = _stack(
    [
        click.option(
            "--seed", type=SEED, default=None, help="Data split seed, the same everywhere [0]."
        ),
        max_epochs_option(help="Cap on a contributor's epochs."),
        mnist_dir_option(must_exist=True),
        click.option(
            "--full",
            is_flag=True,
            help="The demo's full sizes (default: the sizes of `cipherfuse demo --quick`).",
        ),
    ]
)

#: Every option of ``cipherfuse initiator | contributor | verifier``, in ``--help`` order:
#: chain and account, storage, then data.
role_options = _stack([role_chain_options, role_storage_options, role_data_options])
