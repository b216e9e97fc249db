"""Bounded parsing of untrusted JSON: size and nesting are checked before the parser runs.

Python's ``json`` module parses nested arrays and objects recursively in C. Importing
:mod:`cipherfuse.chain` (through web3's dependencies) raises the interpreter's recursion
limit to 100,000, so a document nested some 70,000 levels deep overflows the C stack and
kills the process (SIGSEGV) instead of raising ``RecursionError``. Every cipherfuse decoder
of bytes that can come from another party therefore parses JSON through
:func:`parse_json`, which first measures the nesting with a cheap linear scan (strings are
skipped, so brackets inside them do not count) and refuses anything deeper than
``max_depth`` or longer than ``max_bytes`` with a typed error.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from cipherfuse.errors import CipherfuseError, SerializationError

#: Deepest nesting any cipherfuse document uses is below 10; 64 leaves ample room.
MAX_JSON_DEPTH = 64
#: Default size bound of one JSON document (headers, manifests, cards, state files).
MAX_JSON_BYTES = 16 << 20

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def json_depth(data: bytes) -> int:
    """The deepest bracket nesting of ``data`` (strings skipped); linear time, no recursion.

    For malformed text (an unterminated string) the result may over-count, never under-count
    the nesting the parser would reach.
    """
    stripped = _STRING.sub(b"", data)
    if not stripped:
        return 0
    steps = _OPEN[np.frombuffer(stripped, dtype=np.uint8)].astype(np.int64)
    return max(int(np.cumsum(steps).max(initial=0)), 0)


def parse_json(
    data: bytes | bytearray | memoryview | str,
    *,
    what: str,
    max_depth: int = MAX_JSON_DEPTH,
    max_bytes: int = MAX_JSON_BYTES,
    error: type[CipherfuseError] = SerializationError,
) -> Any:
    """``json.loads`` for untrusted input, with a size and a nesting bound checked first.

    Args:
        data: UTF-8 JSON bytes (or text).
        what: names the document in error messages.
        max_depth: the deepest allowed nesting of arrays and objects.
        max_bytes: the largest allowed encoded size.
        error: the :class:`~cipherfuse.errors.SerializationError` subclass to raise.

    Raises:
        error: not text, too large, too deep, not UTF-8, not JSON, or a number too long
            to convert.
    """
    if isinstance(data, str):
        raw = data.encode("utf-8", "surrogatepass")
    elif isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:
        raise error(f"{what} must be JSON text, got {type(data).__name__}")
    if len(raw) > max_bytes:
        raise error(f"{what} is {len(raw)} bytes, more than the {max_bytes}-byte limit")
    depth = json_depth(raw)
    if depth > max_depth:
        raise error(f"{what} nests {depth} levels deep, more than the limit of {max_depth}")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and int() digit limits on huge numbers.
        raise error(f"{what} is not valid UTF-8 JSON: {exc}") from None
