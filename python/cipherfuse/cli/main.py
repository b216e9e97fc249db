"""The ``cipherfuse`` command.

Each area registers its command group here; a user mistake ends in a one-line
error and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

from cipherfuse import __version__
from cipherfuse.cli.account_commands import account_group, deploy_command
from cipherfuse.cli.chain_commands import chain_group
from cipherfuse.cli.he_commands import he_group
from cipherfuse.cli.models_commands import models_group
from cipherfuse.cli.report_commands import report_command
from cipherfuse.cli.reproduce_commands import reproduce_group
from cipherfuse.cli.roles_commands import (
    contributor_command,
    demo_command,
    initiator_command,
    testbed_command,
    verifier_command,
)
from cipherfuse.cli.storage_commands import storage_group
from cipherfuse.errors import CipherfuseError
from cipherfuse.shutdown import INTERRUPT_EXIT_STATUS, interrupt_handling

#: Help is laid out for a 120-column terminal (narrower ones wrap, nothing is cut).
HELP_WIDTH = 120


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": HELP_WIDTH}
)
@click.version_option(__version__, prog_name="cipherfuse")
def cli() -> None:
    """Decentralized, verifiable, privacy-preserving model building."""


cli.add_command(he_group)
cli.add_command(storage_group)
cli.add_command(models_group)
cli.add_command(chain_group)
cli.add_command(reproduce_group)
cli.add_command(report_command)
cli.add_command(demo_command)
# `cipherfuse node` is the same command as `cipherfuse chain node` (an alias, not a copy).
cli.add_command(chain_group.commands["node"], "node")
cli.add_command(initiator_command)
cli.add_command(contributor_command)
cli.add_command(verifier_command)
cli.add_command(testbed_command)
cli.add_command(account_group)
cli.add_command(deploy_command)


def _full_short_help(command: click.Command) -> None:
    """Show each command's whole first docstring line in listings.

    Click's default summary stops at the first full stop, so "Case Study I (Figs. 11-12)"
    became "Case Study I (Figs."; the first line is written to stand alone instead.
    """
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _full_short_help(sub)
    if command.short_help is None and command.help:
        first = command.help.strip().split("\n\n", 1)[0]
        command.short_help = " ".join(first.split())


_full_short_help(cli)


#: Exit status of a command stopped by SIGTERM (128 + signal number, as a shell reports it).
SIGTERM_EXIT_STATUS = 128 + signal.SIGTERM


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Further SIGTERMs (a supervisor repeating itself, or one sent to the whole process
    # group) must not interrupt the clean-up this one starts.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(SIGTERM_EXIT_STATUS)


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """While active, SIGTERM raises :class:`SystemExit` (status 143) instead of killing.

    Python's default SIGTERM action ends the process without unwinding, so nodes a
    command started (anvil, IPFS daemons, network namespaces) would outlive it;
    raised as ``SystemExit`` it runs their ``with``/``finally`` clean-up like
    Ctrl-C does. Later SIGTERMs are ignored while that clean-up runs. The exit
    is not instantaneous: Python runs the handler when the main thread is back in
    bytecode (a long C++ or JAX call finishes first) and waits for non-daemon
    threads before exiting. Only the main thread can install handlers; elsewhere
    this does nothing. The previous handler is restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        # None: the previous handler was not installed from Python; use the default.
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _run(argv: list[str] | None) -> int:
    try:
        with sigterm_as_exit():
            cli.main(args=argv, prog_name="cipherfuse", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        # One line, lower-case "error:", the fix named by the option's own message.
        hint = ""
        if exc.ctx is not None:
            hint = f" (see `{exc.ctx.command_path} --help`)"
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            click.echo("interrupted", err=True)
            return INTERRUPT_EXIT_STATUS
        click.echo("aborted", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return INTERRUPT_EXIT_STATUS
    except CipherfuseError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn cipherfuse errors into one-line messages.

    Ctrl-C stops a command with status 130 and no traceback; if the clean-up does not
    finish within a second or two, :mod:`cipherfuse.shutdown` kills what the command
    started and exits. SIGTERM ends a command like Ctrl-C does (:func:`sigterm_as_exit`),
    with exit status 143; ``cipherfuse chain node`` installs its own handler and stops
    its node with status 0. Called as the ``cipherfuse`` program (``argv`` is ``None``),
    an interrupted command ends the process at once, skipping interpreter teardown (the
    place where an interrupted XLA computation can crash).
    """
    with interrupt_handling() as interrupt:
        code = _run(argv)
    if argv is None and (code == INTERRUPT_EXIT_STATUS or interrupt.requested.is_set()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(INTERRUPT_EXIT_STATUS)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
