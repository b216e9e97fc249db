"""Content identifiers: CIDv0 (base58btc ``Qm...``) and CIDv1 (base32 ``b...``).

Only what IPFS files need is supported, and checked strictly:

* hash function sha2-256 (multihash code ``0x12``, 32-byte digest);
* codecs dag-pb (``0x70``) and raw (``0x55``);
* CIDv0 is always dag-pb; CIDv1 strings use lower-case base32 (multibase ``b``),
  as Kubo prints them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from cipherfuse.storage.errors import IntegrityError, InvalidCIDError
from cipherfuse.storage.protobuf import decode_varint, encode_varint

DAG_PB = 0x70
RAW = 0x55
SHA2_256 = 0x12
_DIGEST_LEN = 32
_CODEC_NAMES = {DAG_PB: "dag-pb", RAW: "raw"}

_B58_ALPHABET = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58 encoding (the ``z`` multibase, implicit in CIDv0)."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    out = bytearray()
    while number:
        number, rem = divmod(number, 58)
        out.append(_B58_ALPHABET[rem])
    return (b"1" * zeros + bytes(reversed(out))).decode("ascii")


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; raises :class:`InvalidCIDError` on a foreign character."""
    number = 0
    for char in text.encode("ascii", errors="replace"):
        if char not in _B58_INDEX:
            raise InvalidCIDError(f"{text!r} contains {chr(char)!r}, not a base58btc character")
        number = number * 58 + _B58_INDEX[char]
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


@dataclass(frozen=True)
class CID:
    """A parsed sha2-256 CID. ``str(cid)`` gives the canonical Kubo spelling."""

    version: int
    codec: int
    digest: bytes

    def __post_init__(self) -> None:
        if self.version not in (0, 1):
            raise InvalidCIDError(f"CID version must be 0 or 1, got {self.version}")
        if self.codec not in _CODEC_NAMES:
            raise InvalidCIDError(
                f"CID codec 0x{self.codec:x} is not supported (only dag-pb 0x70 and raw 0x55)"
            )
        if self.version == 0 and self.codec != DAG_PB:
            raise InvalidCIDError("a CIDv0 is always dag-pb; use version 1 for raw blocks")
        if len(self.digest) != _DIGEST_LEN:
            raise InvalidCIDError(f"sha2-256 digest must be 32 bytes, got {len(self.digest)}")

    @classmethod
    def for_block(cls, block: bytes | memoryview, codec: int, version: int) -> CID:
        """The CID of ``block`` (sha2-256) with the given codec and version."""
        return cls(version=version, codec=codec, digest=hashlib.sha256(block).digest())

    @property
    def multihash(self) -> bytes:
        """``<0x12><0x20><digest>``."""
        return bytes((SHA2_256, _DIGEST_LEN)) + self.digest

    @property
    def codec_name(self) -> str:
        """``"dag-pb"`` or ``"raw"``."""
        return _CODEC_NAMES[self.codec]

    def to_bytes(self) -> bytes:
        """Binary form, as stored in a dag-pb link's ``Hash`` field."""
        if self.version == 0:
            return self.multihash
        return encode_varint(1) + encode_varint(self.codec) + self.multihash

    def __str__(self) -> str:
        if self.version == 0:
            return b58encode(self.multihash)
        encoded = base64.b32encode(self.to_bytes()).decode("ascii").rstrip("=").lower()
        return "b" + encoded

    def verify(self, block: bytes | memoryview) -> None:
        """Raise :class:`IntegrityError` unless ``block`` hashes to this CID."""
        actual = hashlib.sha256(block).digest()
        if not hmac.compare_digest(actual, self.digest):
            raise IntegrityError(
                str(self), f"content hashes to sha2-256 {actual.hex()[:16]}..., not the CID's"
            )

    @classmethod
    def from_bytes(cls, raw: bytes) -> CID:
        """Parse the binary form (CIDv0 multihash or CIDv1)."""
        if len(raw) == 34 and raw[0] == SHA2_256 and raw[1] == _DIGEST_LEN:
            return cls(version=0, codec=DAG_PB, digest=bytes(raw[2:]))
        try:
            version, pos = decode_varint(raw, 0)
            codec, pos = decode_varint(raw, pos)
            hash_code, pos = decode_varint(raw, pos)
            length, pos = decode_varint(raw, pos)
        except ValueError as exc:
            raise InvalidCIDError(f"truncated binary CID {raw.hex()}") from exc
        if version != 1:
            raise InvalidCIDError(f"binary CID has version {version}; expected 1")
        if hash_code != SHA2_256 or length != _DIGEST_LEN or len(raw) - pos != _DIGEST_LEN:
            raise InvalidCIDError(
                f"binary CID {raw.hex()} is not a 32-byte sha2-256 multihash (code 0x12)"
            )
        return cls(version=1, codec=codec, digest=bytes(raw[pos:]))

    @classmethod
    def parse(cls, text: str | CID) -> CID:
        """Parse a CID string (``Qm...`` CIDv0 or ``b...`` base32 CIDv1)."""
        if isinstance(text, CID):
            return text
        if not isinstance(text, str) or not text:
            raise InvalidCIDError(f"CID must be a non-empty string, got {text!r}")
        if text.startswith("Qm") and len(text) == 46:
            raw = b58decode(text)
            if len(raw) != 34:
                raise InvalidCIDError(f"{text!r} does not decode to a 34-byte multihash")
            return cls.from_bytes(raw)
        if text[0] == "b":
            body = text[1:].upper()
            try:
                raw = base64.b32decode(body + "=" * (-len(body) % 8))
            except ValueError as exc:
                raise InvalidCIDError(f"{text!r} is not valid base32") from exc
            cid = cls.from_bytes(raw)
            if str(cid) != text:
                raise InvalidCIDError(f"{text!r} is not in canonical lower-case base32")
            return cid
        raise InvalidCIDError(
            f"{text!r} is not a supported CID: expected a 46-character 'Qm...' CIDv0 or a "
            "base32 'b...' CIDv1"
        )
