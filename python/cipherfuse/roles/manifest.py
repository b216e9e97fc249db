"""What the initiator publishes off chain: the task manifest and the verification data.

The task's ``objectiveUri`` on chain is the CID of a JSON manifest in the store. The
manifest names the HE parameter set, the CID of the initiator's public key (``he.dumps``),
the CID of the verification data, the accuracy criterion and the quantization scales. The
verification data is an ``.npz`` archive loaded with ``allow_pickle=False`` and
schema-checked. Everything fetched by CID is verified by the store against its hash.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
import zlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cipherfuse.roles.errors import RoleConfigError
from cipherfuse.storage import Store
from cipherfuse.untrusted import parse_json

MANIFEST_FORMAT = "cipherfuse-task-manifest"
MANIFEST_VERSION = 2
PARAM_SETS = ("paper", "secure")
#: Bounds on what a verifier or contributor accepts from the store.
MAX_MANIFEST_BYTES = 64 << 10
MAX_VERIFICATION_BYTES = 1 << 30


@dataclass(frozen=True)
class TaskManifest:
    """The off-chain half of a task (its CID is the on-chain objective URI)."""

    params: str
    key_cid: str
    key_id: str
    verification_cid: str
    threshold: float
    weight_scale: int
    input_scale: int
    fusion_epochs: tuple[int, int]
    nonce: str
    #: The initiator's X25519 release key (64 hex digits) with ``secure`` parameters: the
    #: claims' release envelopes are sealed to it, so a released model goes to the
    #: initiator alone. Empty with ``paper`` parameters, whose models are HE-encrypted.
    release_key: str = ""

    def __post_init__(self) -> None:
        if self.params not in PARAM_SETS:
            raise RoleConfigError(f"params must be one of {PARAM_SETS}, got {self.params!r}")
        if self.params == "secure":
            if len(self.release_key) != 64 or self.release_key.strip("0123456789abcdef"):
                raise RoleConfigError("a secure task's release_key must be 64 lowercase hex digits")
        elif self.release_key:
            raise RoleConfigError("only a secure task has a release_key")
        if not 0.0 < self.threshold <= 1.0:
            raise RoleConfigError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.weight_scale < 1 or self.input_scale < 1:
            raise RoleConfigError("weight_scale and input_scale must be >= 1")

    def to_bytes(self) -> bytes:
        """Canonical JSON."""
        body: dict[str, Any] = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION}
        body.update(asdict(self))
        body["fusion_epochs"] = list(self.fusion_epochs)
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> TaskManifest:
        """Parse and validate; raises :class:`RoleConfigError` naming what is wrong.

        Size and nesting are bounded before parsing, and the bytes must be the canonical
        encoding :meth:`to_bytes` writes for the manifest they describe.
        """
        body = parse_json(
            data, what="the task manifest", max_bytes=MAX_MANIFEST_BYTES, error=RoleConfigError
        )
        fields = {
            "params": str,
            "key_cid": str,
            "key_id": str,
            "verification_cid": str,
            "threshold": float,
            "weight_scale": int,
            "input_scale": int,
            "fusion_epochs": list,
            "nonce": str,
            "release_key": str,
        }
        if (
            not isinstance(body, dict)
            or body.get("format") != MANIFEST_FORMAT
            or body.get("version") != MANIFEST_VERSION
            or set(body) != {"format", "version", *fields}
        ):
            raise RoleConfigError(
                f"not a {MANIFEST_FORMAT} v{MANIFEST_VERSION} document; is the task id right?"
            )
        for name, kind in fields.items():
            if type(body[name]) is not kind:
                raise RoleConfigError(f"task manifest field {name} must be {kind.__name__}")
        epochs = body["fusion_epochs"]
        if len(epochs) != 2 or not all(isinstance(e, int) and 0 <= e <= 1000 for e in epochs):
            raise RoleConfigError("task manifest fusion_epochs must be two integers in 0..1000")
        body["fusion_epochs"] = (epochs[0], epochs[1])
        del body["format"], body["version"]
        manifest = cls(**body)
        if manifest.to_bytes() != bytes(data):
            raise RoleConfigError("the task manifest is not in its canonical encoding")
        return manifest


def new_nonce() -> str:
    """Random hex that makes each manifest (and so its CID) unique."""
    return os.urandom(16).hex()


@dataclass(frozen=True)
class VerificationData:
    """The sample set the initiator gives the verifiers: a fit part and a check part."""

    fit_x: npt.NDArray[np.float32]
    fit_y: npt.NDArray[np.int64]
    check_x: npt.NDArray[np.float32]
    check_y: npt.NDArray[np.int64]

    def to_bytes(self) -> bytes:
        """``.npz`` bytes (no pickled objects)."""
        buf = io.BytesIO()
        np.savez(buf, **{k: getattr(self, k) for k in ("fit_x", "fit_y", "check_x", "check_y")})
        return buf.getvalue()

    @classmethod
    def from_bytes(
        cls, data: bytes, *, max_bytes: int = MAX_VERIFICATION_BYTES
    ) -> VerificationData:
        """Load with ``allow_pickle=False`` and check names, dtypes and shapes.

        Hostile archives are refused before numpy allocates anything: the archive and the
        sum of its members' uncompressed sizes must stay within ``max_bytes``, and each
        member's ``.npy`` header must describe exactly the bytes the member holds.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise RoleConfigError(f"verification data must be bytes, got {type(data).__name__}")
        if len(data) > max_bytes:
            raise RoleConfigError(f"verification data is {len(data)} bytes, over {max_bytes}")
        try:
            _check_npz_members(bytes(data), max_bytes)
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except RoleConfigError:
            raise
        except (
            OSError,
            ValueError,  # also UnicodeDecodeError of member names
            zipfile.BadZipFile,
            EOFError,
            KeyError,
            MemoryError,
            NotImplementedError,  # unsupported zip version or compression method
            RuntimeError,  # an encrypted member
            zlib.error,
            struct.error,
        ) as exc:
            raise RoleConfigError(f"verification data is not a valid .npz archive: {exc}") from exc
        if set(arrays) != {"fit_x", "fit_y", "check_x", "check_y"}:
            raise RoleConfigError(f"verification data holds {sorted(arrays)}, expected 4 arrays")
        for part in ("fit", "check"):
            x, y = arrays[f"{part}_x"], arrays[f"{part}_y"]
            if (
                x.dtype != np.float32
                or y.dtype != np.int64
                or x.ndim != 4
                or y.shape != (x.shape[0],)
                or x.shape[0] == 0
                or not np.isfinite(x).all()
                or y.min() < 0
                or y.max() > 9
            ):
                raise RoleConfigError(f"verification data part {part!r} has a wrong shape/dtype")
        return cls(**arrays)


def _check_npz_members(data: bytes, max_bytes: int) -> None:
    """Every member a plain ``.npy`` whose header matches its size; sizes within bounds."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        if len(members) > 16:
            raise RoleConfigError(f"verification data holds {len(members)} members, expected 4")
        if sum(m.file_size for m in members) > max_bytes:
            raise RoleConfigError(f"verification data unpacks to more than {max_bytes} bytes")
        for member in members:
            with archive.open(member) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise RoleConfigError(f"member {member.filename} has .npy version {version}")
                header_len = fh.tell()
            if dtype.hasobject:
                raise RoleConfigError(f"member {member.filename} holds Python objects")
            need = math.prod(shape) * dtype.itemsize
            if header_len + need != member.file_size:
                raise RoleConfigError(
                    f"member {member.filename} declares {need} data bytes but holds "
                    f"{member.file_size - header_len}"
                )


def fetch_manifest(store: Store, cid: str) -> TaskManifest:
    """Fetch and parse a manifest by CID (the store verifies the bytes and bounds the size)."""
    return TaskManifest.from_bytes(store.get(cid, max_bytes=MAX_MANIFEST_BYTES))
