"""Hand-written protobuf wire encoding for the two tiny messages IPFS files use.

dag-pb (``PBNode``/``PBLink``) and UnixFS ``Data`` are encoded byte for byte as
Kubo (boxo/go-codec-dagpb) writes them:

* ``PBNode``: every link (field 2) first, then ``Data`` (field 1) — the dag-pb
  canonical order, which is *not* field-number order.
* ``PBLink``: ``Hash`` (1), ``Name`` (2, always present, empty for file chunks),
  ``Tsize`` (3).
* UnixFS ``Data`` (proto2): ``Type`` (1), ``Data`` (2, omitted when absent),
  ``filesize`` (3), ``blocksizes`` (4, repeated and *not* packed).

Decoding is strict: unknown wire types, truncated fields and varints longer than
ten bytes raise :class:`~cipherfuse.storage.errors.MalformedNodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cipherfuse.storage.errors import MalformedNodeError

UNIXFS_RAW = 0
UNIXFS_DIRECTORY = 1
UNIXFS_FILE = 2

_MAX_VARINT_BYTES = 10


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128 encoding of ``value`` (0 <= value < 2**64)."""
    if value < 0 or value >= 1 << 64:
        raise MalformedNodeError(f"varint value {value} is outside 0..2**64-1")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode an unsigned varint at ``pos``; return ``(value, next_pos)``."""
    value = 0
    shift = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(buf):
            raise MalformedNodeError("truncated varint")
        byte = buf[pos + i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >= 1 << 64:
                raise MalformedNodeError("varint exceeds 64 bits")
            return value, pos + i + 1
        shift += 7
    raise MalformedNodeError("varint longer than 10 bytes")


def _key(field_number: int, wire_type: int) -> bytes:
    return encode_varint((field_number << 3) | wire_type)


def _len_field(field_number: int, payload: bytes | memoryview) -> bytes:
    return _key(field_number, 2) + encode_varint(len(payload)) + bytes(payload)


def _iter_fields(buf: bytes | memoryview) -> list[tuple[int, int, int | memoryview]]:
    """Split a message into ``(field_number, wire_type, value)``; only varint and bytes."""
    view = memoryview(buf)
    fields: list[tuple[int, int, int | memoryview]] = []
    pos = 0
    while pos < len(view):
        key, pos = decode_varint(view, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise MalformedNodeError("protobuf field number 0")
        if wire == 0:
            value, pos = decode_varint(view, pos)
            fields.append((number, wire, value))
        elif wire == 2:
            length, pos = decode_varint(view, pos)
            if pos + length > len(view):
                raise MalformedNodeError("truncated length-delimited field")
            fields.append((number, wire, view[pos : pos + length]))
            pos += length
        else:
            raise MalformedNodeError(f"unsupported protobuf wire type {wire}")
    return fields


@dataclass(frozen=True)
class PBLink:
    """A dag-pb link: the child's CID bytes, its name and its cumulative size."""

    hash: bytes
    tsize: int
    name: str = ""


@dataclass(frozen=True)
class PBNode:
    """A dag-pb node: links to children plus an opaque ``data`` payload."""

    data: bytes | memoryview | None  # decoding returns a zero-copy view into the block
    links: tuple[PBLink, ...] = ()


@dataclass(frozen=True)
class UnixFSData:
    """The UnixFS ``Data`` message carried in a dag-pb node's ``data``."""

    type: int
    data: bytes | memoryview | None = None  # a view into the buffer with ``zero_copy``
    filesize: int | None = None
    blocksizes: tuple[int, ...] = field(default_factory=tuple)


def encode_pblink(link: PBLink) -> bytes:
    """Encode a ``PBLink`` exactly as Kubo does (``Name`` always written)."""
    name = link.name.encode("utf-8")
    return _len_field(1, link.hash) + _len_field(2, name) + _key(3, 0) + encode_varint(link.tsize)


def encode_pbnode(node: PBNode) -> bytes:
    """Encode a ``PBNode`` in dag-pb canonical order: links, then data."""
    parts = [_len_field(2, encode_pblink(link)) for link in node.links]
    if node.data is not None:
        parts.append(_len_field(1, node.data))
    return b"".join(parts)


def decode_pbnode(buf: bytes | memoryview) -> PBNode:
    """Decode and validate a dag-pb ``PBNode``."""
    data: memoryview | None = None
    links: list[PBLink] = []
    for number, wire, value in _iter_fields(buf):
        if number == 2 and wire == 2 and isinstance(value, memoryview):
            if data is not None:
                raise MalformedNodeError("dag-pb link after data")
            links.append(_decode_pblink(value))
        elif number == 1 and wire == 2 and isinstance(value, memoryview):
            if data is not None:
                raise MalformedNodeError("dag-pb node has two data fields")
            data = value
        else:
            raise MalformedNodeError(f"unexpected dag-pb node field {number}/{wire}")
    return PBNode(data=data, links=tuple(links))


def _decode_pblink(buf: memoryview) -> PBLink:
    hash_: bytes | None = None
    name = ""
    tsize: int | None = None
    for number, wire, value in _iter_fields(buf):
        if number == 1 and wire == 2 and isinstance(value, memoryview):
            hash_ = bytes(value)
        elif number == 2 and wire == 2 and isinstance(value, memoryview):
            try:
                name = bytes(value).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MalformedNodeError("dag-pb link name is not UTF-8") from exc
        elif number == 3 and wire == 0 and isinstance(value, int):
            tsize = value
        else:
            raise MalformedNodeError(f"unexpected dag-pb link field {number}/{wire}")
    if hash_ is None:
        raise MalformedNodeError("dag-pb link without a hash")
    return PBLink(hash=hash_, tsize=tsize or 0, name=name)


def encode_unixfs(msg: UnixFSData) -> bytes:
    """Encode a UnixFS ``Data`` message in field order (proto2, unpacked blocksizes)."""
    parts = [_key(1, 0), encode_varint(msg.type)]
    if msg.data is not None:
        parts.append(_len_field(2, msg.data))
    if msg.filesize is not None:
        parts += [_key(3, 0), encode_varint(msg.filesize)]
    for size in msg.blocksizes:
        parts += [_key(4, 0), encode_varint(size)]
    return b"".join(parts)


def decode_unixfs(buf: bytes | memoryview, *, zero_copy: bool = False) -> UnixFSData:
    """Decode a UnixFS ``Data`` message (fields 1-4; mode/mtime etc. are ignored).

    ``data`` is a copy (``bytes``), or with ``zero_copy`` a ``memoryview`` into ``buf``
    (valid as long as ``buf``'s contents are).
    """
    type_: int | None = None
    data: bytes | memoryview | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    for number, wire, value in _iter_fields(buf):
        if number == 1 and wire == 0 and isinstance(value, int):
            type_ = value
        elif number == 2 and wire == 2 and isinstance(value, memoryview):
            data = value if zero_copy else bytes(value)
        elif number == 3 and wire == 0 and isinstance(value, int):
            filesize = value
        elif number == 4 and wire == 0 and isinstance(value, int):
            blocksizes.append(value)
        elif number == 4 and wire == 2 and isinstance(value, memoryview):
            pos = 0
            while pos < len(value):
                size, pos = decode_varint(value, pos)
                blocksizes.append(size)
        # other fields (hashType, fanout, mode, mtime) do not affect file content
    if type_ is None:
        raise MalformedNodeError("UnixFS data without a type")
    return UnixFSData(type=type_, data=data, filesize=filesize, blocksizes=tuple(blocksizes))
