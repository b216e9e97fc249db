"""Click parameter types shared by the commands: each rejects a bad value in one line.

Click turns a :class:`click.BadParameter` into ``error: Invalid value for '--x': ...``
and exit status 2; :func:`cipherfuse.cli.main.main` prints it on one line.
"""

from __future__ import annotations

import re
from typing import Any

import click

#: The largest seed any command accepts (numpy and JAX seeds are 32-bit).
MAX_SEED = 2**32 - 1

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class AddressType(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 only
    """A 20-byte Ethereum address (``0x`` and 40 hex digits), returned checksummed."""

    name = "ADDRESS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if not _ADDRESS.match(text):
            self.fail(
                f"{text!r} is not a contract address (0x followed by 40 hex digits, as "
                "printed when the contract was deployed)",
                param,
                ctx,
            )
        from eth_utils.address import to_checksum_address

        digits = text[2:]
        mixed = digits != digits.lower() and digits != digits.upper()
        if mixed and to_checksum_address(text) != text:
            self.fail(f"{text!r} has a wrong EIP-55 checksum (mistyped?)", param, ctx)
        return str(to_checksum_address(text))


class HttpUrlType(click.ParamType):  # type: ignore[type-arg]
    """An ``http://`` or ``https://`` URL."""

    name = "URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if not re.match(r"^https?://[^\s/]+", text):
            self.fail(f"{text!r} is not an http(s) URL (e.g. http://127.0.0.1:8545)", param, ctx)
        return text


ADDRESS = AddressType()
HTTP_URL = HttpUrlType()
SEED = click.IntRange(0, MAX_SEED)
ACCOUNT_INDEX = click.IntRange(min=0)
TASK_ID = click.IntRange(min=1)

#: The one description of ``--mnist-dir`` every command uses.
MNIST_DIR_HELP = (
    "Folder with the MNIST IDX files. Default: $CIPHERFUSE_MNIST_DIR if set, else the "
    "download cache (`cipherfuse models fetch-mnist`), else the 10,000-image test set "
    "shipped with cipherfuse."
)
