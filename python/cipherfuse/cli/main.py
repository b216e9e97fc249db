"""The ``cipherfuse`` command.

Each area registers its command group here; a user mistake ends in a one-line
error and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import sys

import click

from cipherfuse import __version__
from cipherfuse.cli.chain_commands import chain_group
from cipherfuse.cli.he_commands import he_group
from cipherfuse.cli.models_commands import models_group
from cipherfuse.cli.report_commands import report_command
from cipherfuse.cli.reproduce_commands import reproduce_group
from cipherfuse.cli.storage_commands import storage_group
from cipherfuse.errors import CipherfuseError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cipherfuse")
def cli() -> None:
    """Decentralized, verifiable, privacy-preserving model building."""


cli.add_command(he_group)
cli.add_command(storage_group)
cli.add_command(models_group)
cli.add_command(chain_group)
cli.add_command(reproduce_group)
cli.add_command(report_command)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn cipherfuse errors into one-line messages."""
    try:
        cli.main(args=argv, prog_name="cipherfuse", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except CipherfuseError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
