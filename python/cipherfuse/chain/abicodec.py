"""Direct ABI encoding of a contract's calls and decoding of their results.

web3's contract objects look a function up in the ABI, validate and normalise the arguments
and build a call object every time they are used; on the embedded py-evm chain that costs
several milliseconds per call, a fifth of a view call's time. :class:`FunctionCodec` resolves
every function of an ABI once (selector, input and output types) and then encodes and decodes
with eth-abi alone. Results have web3's Python types: integers, ``bool``, ``bytes``, ``str``,
tuples for structs and several outputs, lists for arrays, and checksummed addresses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError, EncodingError
from eth_utils.crypto import keccak
from web3 import Web3

from cipherfuse.chain.errors import ChainError, ChainParameterError


def abi_type(param: dict[str, Any]) -> str:
    """The canonical type string of one ABI parameter (tuples spelled out, arrays kept)."""
    kind = str(param["type"])
    if not kind.startswith("tuple"):
        return kind
    inner = ",".join(abi_type(c) for c in param["components"])
    return f"({inner}){kind[len('tuple') :]}"


def _checksummed(kind: str, value: Any, param: dict[str, Any]) -> Any:
    """``value`` with every address in it checksummed, as web3 returns it."""
    if kind.endswith("]"):
        element_kind = kind[: kind.rindex("[")]
        return [_checksummed(element_kind, v, param) for v in value]
    if kind == "address":
        return Web3.to_checksum_address(value)
    if kind.startswith("tuple"):
        return tuple(
            _checksummed(str(c["type"]), v, c)
            for c, v in zip(param["components"], value, strict=True)
        )
    return value


@dataclass(frozen=True)
class _Function:
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[dict[str, Any], ...]
    output_types: tuple[str, ...]


class FunctionCodec:
    """Encoder of calls to, and decoder of results from, the functions of one ABI.

    Raises:
        ChainError: the ABI has two functions of one name (overloads are not supported).
    """

    def __init__(self, abi: Sequence[dict[str, Any]]) -> None:
        self._functions: dict[str, _Function] = {}
        for entry in abi:
            if entry.get("type") != "function":
                continue
            name = str(entry["name"])
            if name in self._functions:
                raise ChainError(f"the ABI overloads {name!r}; FunctionCodec needs unique names")
            inputs = tuple(abi_type(p) for p in entry.get("inputs", []))
            outputs = tuple(entry.get("outputs", []))
            signature = f"{name}({','.join(inputs)})"
            self._functions[name] = _Function(
                keccak(text=signature)[:4], inputs, outputs, tuple(abi_type(p) for p in outputs)
            )

    def _function(self, name: str) -> _Function:
        fn = self._functions.get(name)
        if fn is None:
            raise ChainParameterError(f"the contract has no function {name!r}")
        return fn

    def encode(self, name: str, args: Sequence[Any]) -> bytes:
        """Call data of ``name(*args)``: the selector and the ABI-encoded arguments.

        Raises:
            ChainParameterError: unknown function, wrong number of arguments, or an argument
                that does not fit its ABI type.
        """
        fn = self._function(name)
        if len(args) != len(fn.inputs):
            raise ChainParameterError(
                f"{name} takes {len(fn.inputs)} arguments ({', '.join(fn.inputs)}), got {len(args)}"
            )
        try:
            return fn.selector + abi_encode(list(fn.inputs), list(args))
        except (EncodingError, TypeError, ValueError, OverflowError) as exc:
            raise ChainParameterError(f"arguments of {name} do not fit its ABI: {exc}") from exc

    def decode(self, name: str, data: bytes) -> Any:
        """The result of ``name`` from its returned bytes: the value itself for one output, a
        tuple for several, None for none.

        Raises:
            ChainError: the bytes are not a valid encoding of the function's outputs.
        """
        fn = self._function(name)
        try:
            values = abi_decode(list(fn.output_types), bytes(data))
        except (DecodingError, ValueError, OverflowError) as exc:
            raise ChainError(f"undecodable result of {name}: {exc}") from exc
        result = tuple(
            _checksummed(str(p["type"]), v, p) for p, v in zip(fn.outputs, values, strict=True)
        )
        if not result:
            return None
        return result[0] if len(result) == 1 else result
